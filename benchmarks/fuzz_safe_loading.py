"""The fuzz tests of the safe readers (``tests/test_safe_loading_fuzz.py``), run long.

Runs every fuzz test with ``--examples`` cases (Hypothesis' ``max_examples``) in survey mode: a case
that breaks a property (something ran, over the memory or time budget, an unclear error) is counted
by kind instead of stopping the test, so one run gives the whole picture. Prints, per target, how
many cases ran, how many loaded and how many were refused with a clear error (by type), the
failures by kind with the shortest case that showed each, the slowest case and the peak memory.

    python benchmarks/fuzz_safe_loading.py                  # 5000 cases a test
    python benchmarks/fuzz_safe_loading.py --examples 500 -k "pickle or config"
    python benchmarks/fuzz_safe_loading.py --strict         # stop at the first failure and shrink it

Exit status: 0 when no case failed (pytest's status with ``--strict``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEST_FILE = Path(__file__).resolve().parent.parent / "tests" / "test_safe_loading_fuzz.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000, help="cases per fuzz test (default 5000)")
    parser.add_argument("-k", dest="select", default="test_fuzz or seeds or payloads",
                        help="pytest -k expression selecting the tests (default: the fuzz tests, the seeds and "
                             "the payloads; test_found_failures and test_harness_catches fail cases on purpose)")
    parser.add_argument("--strict", action="store_true", help="fail (and shrink) at the first broken property")
    parser.add_argument("--memory-mb", type=int, help="memory budget per case (default: the tests' 64)")
    parser.add_argument("--seconds", type=float, help="time budget per case (default: the tests' 5)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        stats_path = Path(scratch) / "stats.json"
        env = {**os.environ, "RLHUB_FUZZ_EXAMPLES": str(args.examples), "RLHUB_FUZZ_STATS": str(stats_path),
               "RLHUB_FUZZ_KNOWN_BUGS": "1"}  # the strategies keep the inputs that find known bugs, to count them
        if not args.strict:
            env["RLHUB_FUZZ_SURVEY"] = "1"
        if args.memory_mb:
            env["RLHUB_FUZZ_MEMORY_MB"] = str(args.memory_mb)
        if args.seconds:
            env["RLHUB_FUZZ_SECONDS"] = str(args.seconds)
        command = [sys.executable, "-m", "pytest", str(TEST_FILE), "-q", "-p", "no:cacheprovider",
                   "--hypothesis-show-statistics"]
        command += ["-k", args.select]
        start = time.perf_counter()
        status = subprocess.call(command, env=env, cwd=TEST_FILE.parent.parent)
        wall = time.perf_counter() - start
        stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}

    print(f"\nFuzzing the safe readers: {args.examples} cases a test, {wall:.0f} s in all.\n")
    print("| target | cases | loaded | refused (clear error) | failed | slowest case (s) | peak traced memory (MiB) |")
    print("|---|---|---|---|---|---|---|")
    failed = 0
    for target, row in stats.items():
        refused = ", ".join(f"{name} {count}" for name, count in sorted(row["errors"].items(), key=lambda kv: -kv[1]))
        print(f"| {target} | {row['cases']} | {row['loaded']} | {row['rejected']} ({refused or '-'}) | {row['failed']} "
              f"| {row['slowest_s']:.2f} | {row['peak_bytes'] / 2**20:.1f} |")
        failed += row["failed"]
    for target, row in stats.items():
        print(f"\n{target}:\n  slowest case ({row['slowest_s']:.2f} s): {row['slowest_case'][:240]}")
        print(f"  peak memory case ({row['peak_bytes'] / 2**20:.1f} MiB): {row['peak_case'][:240]}")
        for kind, (count, case, message) in sorted(row["failures"].items(), key=lambda kv: -kv[1][0]):
            print(f"  FAILED {count}x [{kind}]\n    {message[:300]}\n    shortest case: {case[:400]}")
    if args.strict:
        return status
    return 1 if failed or status not in (0, 5) else 0


if __name__ == "__main__":
    sys.exit(main())
