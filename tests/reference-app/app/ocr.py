"""Deterministic stand-in for OCR: text extraction from plain text and simple PDFs.

Plain text is returned as is. For a PDF, each content stream (inflated when
/FlateDecode) is read for its text operators (Tj, TJ, ', "), line breaks come
from T*, Td/TD with a vertical move and ET, and pages are joined with a form
feed, so page_count = 1 + text.count("\\f").
"""

from __future__ import annotations

import re
import zlib

FORM_FEED = "\f"


class UnsupportedDocument(ValueError):
    """The document is neither plain text nor a PDF with extractable text."""


def extract_text(data: bytes, content_type: str, filename: str) -> str:
    name = filename.lower()
    if data.startswith(b"%PDF") or content_type == "application/pdf" or name.endswith(".pdf"):
        return extract_pdf_text(data)
    if content_type.startswith("text/") or name.endswith((".txt", ".md", ".csv")):
        return decode_text(data)
    raise UnsupportedDocument(f"cannot extract text from {content_type or 'unknown type'} ({filename})")


def page_count(text: str) -> int:
    return 1 + text.count(FORM_FEED)


def decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_STREAM_RE = re.compile(rb"<<(.*?)>>\s*stream\r?\n(.*?)\r?\n?endstream", re.DOTALL)


def extract_pdf_text(data: bytes) -> str:
    if not data.startswith(b"%PDF"):
        raise UnsupportedDocument("not a PDF file (no %PDF header)")
    pages: list[str] = []
    for match in _STREAM_RE.finditer(data):
        header, body = match.group(1), match.group(2)
        if b"/FlateDecode" in header:
            try:
                body = zlib.decompress(body)
            except zlib.error:
                continue
        elif b"/Filter" in header:
            continue  # images and other encodings carry no text operators
        if b"BT" not in body:
            continue
        pages.append(_content_stream_text(body))
    if not pages:
        raise UnsupportedDocument("PDF has no text content streams (scanned image?)")
    return FORM_FEED.join(pages)


_ESCAPES = {ord("n"): "\n", ord("r"): "\r", ord("t"): "\t", ord("b"): "\b", ord("f"): "\f"}
_DELIMS = b"()<>[]{}/%"
_WHITESPACE = b" \t\r\n\f\x00"


def _read_literal(buf: bytes, i: int) -> tuple[str, int]:
    """Read a (string) starting after '('; return text and index after ')'."""
    out: list[str] = []
    depth = 1
    while i < len(buf):
        c = buf[i]
        if c == 0x5C:  # backslash
            i += 1
            if i >= len(buf):
                break
            e = buf[i]
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
            elif 0x30 <= e <= 0x37:
                digits = bytes([e])
                while len(digits) < 3 and i + 1 < len(buf) and 0x30 <= buf[i + 1] <= 0x37:
                    i += 1
                    digits += bytes([buf[i]])
                out.append(chr(int(digits, 8)))
            elif e in (0x0A, 0x0D):
                if e == 0x0D and i + 1 < len(buf) and buf[i + 1] == 0x0A:
                    i += 1
            else:
                out.append(chr(e))
        elif c == 0x28:
            depth += 1
            out.append("(")
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return "".join(out), i + 1
            out.append(")")
        else:
            out.append(chr(c))
        i += 1
    return "".join(out), i


def _decode_pdf_string(raw: str) -> str:
    b = raw.encode("latin-1")
    if b.startswith(b"\xfe\xff"):
        return b[2:].decode("utf-16-be", errors="replace")
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _content_stream_text(buf: bytes) -> str:
    lines: list[str] = []
    line: list[str] = []
    operands: list[object] = []
    array: list[object] | None = None

    def newline() -> None:
        lines.append("".join(line).rstrip())
        line.clear()

    i = 0
    n = len(buf)
    while i < n:
        c = buf[i]
        if c in _WHITESPACE:
            i += 1
        elif c == 0x25:  # % comment
            while i < n and buf[i] not in b"\r\n":
                i += 1
        elif c == 0x28:
            s, i = _read_literal(buf, i + 1)
            (array if array is not None else operands).append(_decode_pdf_string(s))
        elif c == 0x3C and i + 1 < n and buf[i + 1] == 0x3C:
            i += 2  # dictionary start (inline image params etc.): ignore
        elif c == 0x3E and i + 1 < n and buf[i + 1] == 0x3E:
            i += 2
        elif c == 0x3C:
            j = buf.find(b">", i)
            j = n if j < 0 else j
            hexdigits = re.sub(rb"\s", b"", buf[i + 1 : j])
            if len(hexdigits) % 2:
                hexdigits += b"0"
            text = _decode_pdf_string(bytes.fromhex(hexdigits.decode("ascii", "ignore")).decode("latin-1"))
            (array if array is not None else operands).append(text)
            i = j + 1
        elif c == 0x5B:
            array = []
            i += 1
        elif c == 0x5D:
            operands.append(array if array is not None else [])
            array = None
            i += 1
        elif c == 0x2F:  # name
            j = i + 1
            while j < n and buf[j] not in _WHITESPACE and buf[j] not in _DELIMS:
                j += 1
            operands.append(buf[i:j].decode("latin-1"))
            i = j
        else:
            j = i
            while j < n and buf[j] not in _WHITESPACE and buf[j] not in _DELIMS:
                j += 1
            if j == i:
                j = i + 1
            token = buf[i:j].decode("latin-1")
            i = j
            try:
                number = float(token)
            except ValueError:
                pass
            else:
                (array if array is not None else operands).append(number)
                continue
            _apply_operator(token, operands, line, newline)
            operands.clear()
    if line:
        newline()
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


def _apply_operator(op: str, operands: list[object], line: list[str], newline: object) -> None:
    assert callable(newline)
    if op == "Tj" and operands and isinstance(operands[-1], str):
        line.append(operands[-1])
    elif op == "TJ" and operands and isinstance(operands[-1], list):
        for item in operands[-1]:
            if isinstance(item, str):
                line.append(item)
            elif isinstance(item, float) and item < -200:
                line.append(" ")
    elif op in ("'", '"'):
        newline()
        if operands and isinstance(operands[-1], str):
            line.append(operands[-1])
    elif op == "T*":
        newline()
    elif op in ("Td", "TD") and len(operands) >= 2 and isinstance(operands[-1], float):
        if operands[-1] != 0:
            newline()
    elif (op == "Tm" and line) or (op == "ET" and line):
        newline()
