"""The attack bars of "Downloaded agents are data": each finding re-run through the CLI, measured.

Runs ``tests/test_hub_attacks.py`` (every case a real ``rlhub`` process against the loopback Hub)
and prints, per command, its exit code, peak memory, CPU and wall time and the error's last line.

    python benchmarks/hostile_agents.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "attacks.jsonl"
        os.environ["RLHUB_ATTACK_REPORT"] = str(report)
        status = pytest.main([str(root / "tests" / "test_hub_attacks.py"), "-q", "-p", "no:cacheprovider", "-n", "0"])
        rows = [json.loads(line) for line in report.read_text().splitlines()] if report.is_file() else []
    print("\n| command | exit | peak memory (MB) | CPU (s) | wall (s) | last line |\n|---|---|---|---|---|---|")
    for row in rows:
        last = (row["output"] or [""])[0].replace("|", "/")[:140]
        print(f"| `rlhub {row['command'][:90]}` | {row['exit_code']} | {row['peak_memory_mb']:.0f} | "
              f"{row['cpu_seconds']:.1f} | {row['wall_seconds']:.1f} | {last} |")
    rejected = [row for row in rows if row["exit_code"] == 2]
    if rejected:
        print(f"\n{len(rows)} runs, {len(rejected)} rejected; rejected runs: peak memory at most "
              f"{max(row['peak_memory_mb'] for row in rejected):.0f} MB, CPU at most "
              f"{max(row['cpu_seconds'] for row in rejected):.1f} s, wall at most "
              f"{max(row['wall_seconds'] for row in rejected):.1f} s")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
