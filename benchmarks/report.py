"""Markdown tables of benchmark results (benchmarks/results/*.json), for docs/performance.md.

.venv/bin/python benchmarks/report.py deploy preflight probe backup
"""

from __future__ import annotations

import json
import sys
import typing as t

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
        metrics = sorted({m for values in data["medians"].values() for m in values})
        print(table(data["medians"], metrics) + "\n")
        print(ratios(data["ratios"]) + "\n")
        if "overhead" in data:
            print(f"overhead: {data['overhead']}\n")
        for key in ("maintenance_s", "wall_s"):
            print(f"runs ({key}): {runs_line(data['runs'], key)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
