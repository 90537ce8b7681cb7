"""A minimal, valid PDF writer (Helvetica text, one content stream per page) for smoke documents."""

from __future__ import annotations

import zlib


def _escape(line: str) -> bytes:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")


def make_pdf(pages: list[str], compress: bool | list[bool] = False) -> bytes:
    """Return a PDF whose page i shows the lines of pages[i]."""
    flags = compress if isinstance(compress, list) else [compress] * len(pages)
    objects: list[bytes] = []
    n_pages = len(pages)
    # 1 catalog, 2 pages, 3 font, then (page, content) pairs
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, text in enumerate(pages):
        ops = [b"BT", b"/F1 12 Tf", b"14 TL", b"72 760 Td"]
        for line in text.split("\n"):
            ops.append(b"(" + _escape(line) + b") Tj T*")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        if flags[i]:
            stream = zlib.compress(stream)
            header = f"<< /Length {len(stream)} /Filter /FlateDecode >>".encode()
        else:
            header = f"<< /Length {len(stream)} >>".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(header + b"\nstream\n" + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


SMOKE_PAGES = [
    "Ablage-System Testdokument\nRechnung Nr. 2024-0042",
    "Seite 2: Betrag 119,00 EUR (inkl. MwSt.)",
]
SMOKE_TEXT = "\f".join(SMOKE_PAGES)

# The smoke document of the "ocrdesk" build (fixtures/ocrdesk/): one Flate-compressed page.
OCRDESK_SMOKE_PAGES = ["OCRdesk Eingangsbeleg 0815 geprueft"]
OCRDESK_SMOKE_TEXT = "\f".join(OCRDESK_SMOKE_PAGES)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    # pdfgen.py TARGET.pdf [ocrdesk]: TARGET.pdf and TARGET.expected.txt
    target = Path(sys.argv[1])
    if sys.argv[2:] == ["ocrdesk"]:
        target.write_bytes(make_pdf(OCRDESK_SMOKE_PAGES, compress=True))
        target.with_suffix(".expected.txt").write_text(OCRDESK_SMOKE_TEXT)
    else:
        target.write_bytes(make_pdf(SMOKE_PAGES, compress=[False, True]))
        target.with_suffix(".expected.txt").write_text(SMOKE_TEXT)
