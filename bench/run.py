"""Run every benchmark in bench/ and summarise: ``python bench/run.py [--quick] [name ...]``.

Each ``bench_*.py`` runs in its own process (so one bench's memory or threads cannot skew the
next), prints its own figures and ratios against a baseline measured in the same run, and exits
non-zero when it misses a goal. This runner only sequences them and collects the verdicts.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes: a smoke run")
    parser.add_argument("names", nargs="*", help="only these benches (e.g. events server)")
    args = parser.parse_args(argv)

    benches = sorted(HERE.glob("bench_*.py"))
    if args.names:
        benches = [b for b in benches if b.stem.removeprefix("bench_") in args.names]
    verdicts: list[tuple[str, int, float]] = []
    for bench in benches:
        print(f"\n=== {bench.stem} ===", flush=True)
        started = time.perf_counter()
        cmd = [sys.executable, str(bench)] + (["--quick"] if args.quick else [])
        code = subprocess.call(cmd, cwd=HERE.parent)
        verdicts.append((bench.stem, code, time.perf_counter() - started))

    print("\n=== summary ===")
    for name, code, seconds in verdicts:
        print(f"{name:24s} {'ok' if code == 0 else f'MISSED (exit {code})':18s} {seconds:7.1f} s")
    return 0 if all(code == 0 for _, code, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
