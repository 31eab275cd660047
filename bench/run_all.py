"""Run every benchmark in turn (each appends its figures to bench/RESULTS.md).

``python -m bench.run_all`` (or ``make bench``); takes about ten minutes.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    ["bench.passthrough"],
    ["bench.cache_hit"],
    ["bench.instructions"],
    ["bench.cassette_replay"],
    ["bench.quota_drain"],
    ["bench.quota_reserve"],
    ["bench.logging_overhead"],
    ["bench.load_hold"],
]


def main() -> int:
    failed = 0
    for args in BENCHMARKS:
        print(f"== python -m {' '.join(args)}", flush=True)  # noqa: T201
        failed += subprocess.run([sys.executable, "-m", *args], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
