"""Run the issue-16 benchmarks one after another and print one markdown table of their figures.

    .venv/bin/python bench/run_all.py [--quick] [--only webhooks checkout_http ...]
        [--skip contention] [--extra] [--out table.md] [--logs DIR]

Each benchmark runs as its own subprocess (its own scratch database, API processes and
pgbench), its output passed through to this terminal and kept in `--logs` (default a
temporary directory, named at the end). Every benchmark prints `RESULT {json}` lines beside its
own figures (bench/_results.py); the table is built from those: figure | measured | limit |
ratio | goal met?. A limit is the issue's goal or one measured in the same run (pgbench on the
same statements); a figure without a goal (peak RSS, CPU per request, the comparison
strategies) shows no verdict.

`--quick` runs smaller sizes (a few minutes in all, figures noisier); the default sizes are the
ones the README's figures come from. `--extra` adds bench/http_cpu.py (Python CPU per request,
in-process). A benchmark that fails is named in the table's footnote and the others still run;
the exit status is then 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import Result, parse, table

HERE = Path(__file__).resolve().parent

# name -> (arguments at full size, arguments with --quick)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "webhooks": ([], ["--deliveries", "3000", "--captures", "400", "--seconds", "5"]),
    "outbox": (["--relays", "2"], ["--relays", "2", "--seconds", "4", "--rows", "10000"]),
    "checkout": (["--processes", "2"], ["--processes", "2", "--seconds", "6"]),
    "checkout_http": ([], ["--seconds", "6"]),
    "availability_http": ([], ["--requests", "30", "--warmup", "5"]),
    "contention": ([], ["--requests", "200"]),
}
EXTRA: dict[str, tuple[list[str], list[str]]] = {
    "http_cpu": ([], ["--requests", "150", "--warmup", "30"]),
}


def run_one(name: str, args: list[str], log: Path) -> tuple[list[Result], int, float]:
    """Run bench/<name>.py, echoing and logging its output; its RESULT lines, exit code, s."""
    command = [sys.executable, str(HERE / f"{name}.py"), *args]
    print(f"\n### {name}: {' '.join(command[1:])}", flush=True)
    began = time.monotonic()
    lines: list[str] = []
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=HERE.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            out.write(line)
            lines.append(line)
        code = process.wait()
    return parse("".join(lines)), code, time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, minutes in all")
    known = [*BENCHMARKS, *EXTRA]
    parser.add_argument("--only", nargs="+", choices=known, help="run just these")
    parser.add_argument("--skip", nargs="+", choices=known, default=[])
    parser.add_argument("--extra", action="store_true", help="also " + ", ".join(EXTRA))
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("--logs", type=Path, help="directory for each benchmark's output")
    options = parser.parse_args()

    chosen = {**BENCHMARKS, **(EXTRA if options.extra else {})}
    if options.only:
        chosen = {
            name: sizes for name, sizes in {**BENCHMARKS, **EXTRA}.items() if name in options.only
        }
    logs = options.logs or Path(tempfile.mkdtemp(prefix="reckon-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    notes: list[str] = []
    for name, (full, quick) in chosen.items():
        if name in options.skip:
            continue
        found, code, seconds = run_one(name, quick if options.quick else full, logs / f"{name}.log")
        results.extend(found)
        if code != 0:
            notes.append(f"`{name}` failed (exit {code}); see {logs / f'{name}.log'}")
        elif not found:
            notes.append(f"`{name}` printed no RESULT lines")
        print(f"### {name}: {seconds:.0f} s, exit {code}", flush=True)

    rendered = table(results)
    if notes:
        rendered += "\n\n" + "\n".join(f"- {note}" for note in notes)
    size = "quick sizes" if options.quick else "full sizes"
    print(f"\n## Issue 16 figures ({size}; outputs in {logs})\n\n{rendered}\n", flush=True)
    if options.out:
        options.out.write_text(rendered + "\n")
    sys.exit(1 if notes else 0)


if __name__ == "__main__":
    main()
