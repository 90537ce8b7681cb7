"""Markdown tables of benchmark results (benchmarks/results/*.json), for docs/performance.md.

.venv/bin/python benchmarks/report.py deploy deploy-nomigration deploy-zero-downtime-patch growth preflight

Deploy results measured under load (``--load``) also get a table of what the users saw; growth results
get bench_growth's table of steps.
"""

from __future__ import annotations

import json
import sys
import typing as t

import bench_growth as bg
import benchlib as bl


def fmt(value: t.Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def table(medians: dict[str, dict[str, t.Any]], metrics: list[str]) -> str:
    lines = ["| contestant | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for contestant, values in medians.items():
        lines.append(f"| {contestant} | " + " | ".join(fmt(values.get(m)) for m in metrics) + " |")
    return "\n".join(lines)


def ratios(data: dict[str, dict[str, t.Any]]) -> str:
    return "\n".join(
        f"- {pair}: " + ", ".join(f"{metric} {fmt(value)}" for metric, value in values.items())
        for pair, values in data.items()
    )


def runs_line(runs: list[dict[str, t.Any]], key: str) -> str:
    per: dict[str, list[str]] = {}
    for run in runs:
        per.setdefault(str(run["contestant"]), []).append(fmt(run.get(key)) + ("" if run.get("ok", True) else "!"))
    return "; ".join(f"{name}: {', '.join(values)}" for name, values in per.items())


def _not_200(reads: dict[str, t.Any]) -> int:
    """hey's answers other than 200, and the requests that got no HTTP answer at all."""
    statuses = reads.get("statuses") or {}
    return int(sum(n for code, n in statuses.items() if code != "200") + sum((reads.get("errors") or {}).values()))


def _median_of(values: list[t.Any]) -> float | None:
    return bl.median([v for v in values if v is not None])


def _max_of(values: list[t.Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return max(present) if present else None


def load_table(runs: list[dict[str, t.Any]]) -> str:
    """Per contestant, over its rounds: the window, what the write load and hey's reads saw, the OCR jobs.

    Counts are summed over the rounds (a failed request in any round shows); latencies are the median of
    the rounds' 99th percentiles and the largest maximum of any round.
    """
    header = (
        "| contestant | rounds | maintenance s (median) | users' outage per round s | wall s (median) "
        "| writes / **failed** | hey reads / **not 200** | OCR jobs / not completed "
        "| write latency ms p99 / max | read latency ms p99 / max |"
    )
    lines = [header, "|---" * 10 + "|"]
    per: dict[str, list[dict[str, t.Any]]] = {}
    for run in runs:
        per.setdefault(str(run["contestant"]), []).append(run)
    for contestant, own in per.items():
        loads = [run.get("write_load") or {} for run in own]
        reads = [load.get("reads") or {} for load in loads]
        maintenance = _median_of([run.get("maintenance_s") for run in own])
        write_p99 = _median_of([(load.get("latency") or {}).get("p99_ms") for load in loads])
        write_max = _max_of([(load.get("latency") or {}).get("max_ms") for load in loads])
        read_p99 = _median_of([(r.get("latency") or {}).get("p99_ms") for r in reads])
        read_max = _max_of([(r.get("latency") or {}).get("max_ms") for r in reads])
        writes = sum(int(x.get("requests") or 0) for x in loads)
        failed = sum(len(x.get("failed") or []) for x in loads)
        asked = sum(int(x.get("responses") or 0) + sum((x.get("errors") or {}).values()) for x in reads)
        jobs = sum(int(x.get("jobs") or 0) for x in loads)
        unfinished = sum(len(x.get("jobs_not_completed") or []) for x in loads)
        not_200 = sum(_not_200(x) for x in reads)
        cells = [
            contestant + ("" if all(run.get("ok") for run in own) else " (a round failed)"),
            str(len(own)),
            "none" if not maintenance else fmt(maintenance),
            ", ".join(fmt(run.get("user_outage_s")) for run in own),
            fmt(_median_of([run.get("wall_s") for run in own])),
            f"{writes} / **{failed}**",
            f"{asked} / **{not_200}**",
            f"{jobs} / {unfinished}",
            f"{fmt(write_p99)} / {fmt(write_max)}",
            f"{fmt(read_p99)} / {fmt(read_max)}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(names: list[str]) -> int:
    for name in names:
        data = json.loads((bl.RESULTS / f"{name}.json").read_text(encoding="utf-8"))
        machine = data["machine"]
        print(f"### {name} ({machine['date']}, {data.get('rounds')} rounds, {data.get('elapsed_s')} s)\n")
        if "summaries" in data:
            for comparison, summary in data["summaries"].items():
                print(f"#### {comparison}\n")
                print(table(summary["medians"], ["wall_s"]) + "\n")
                print(ratios(summary["ratios"]) + "\n")
                runs = [r for r in data["runs"] if r["comparison"] == comparison]
                print(f"runs (wall_s): {runs_line(runs, 'wall_s')}\n")
            continue
        if data.get("benchmark") == "growth":
            print(bg.markdown_table(data["runs"]) + "\n")
            print(ratios(data["ratios"]) + "\n")
            continue
        metrics = sorted({m for values in data["medians"].values() for m in values})
        print(table(data["medians"], metrics) + "\n")
        print(ratios(data["ratios"]) + "\n")
        if "overhead" in data:
            print(f"overhead: {data['overhead']}\n")
        for key in ("maintenance_s", "wall_s"):
            print(f"runs ({key}): {runs_line(data['runs'], key)}\n")
        if any(run.get("write_load") for run in data["runs"]):
            print(load_table(data["runs"]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
