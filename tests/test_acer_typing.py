"""The policy-gradient plugin (ACER, REINFORCE, their shared rollout) type-checks with ``mypy --strict``
and carries no ``type: ignore``."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "plugins" / "rlhub_policy_gradient"



def test_no_type_ignore_in_the_package():
    ignored = [f"{path.relative_to(PACKAGE)}:{number}" for path in sorted(PACKAGE.rglob("*.py"))
               for number, line in enumerate(path.read_text().splitlines(), 1) if "type: ignore" in line]
    assert not ignored, f"type: ignore in {', '.join(ignored)}"


def test_package_passes_mypy_strict():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install mypy)")
    # setup.cfg's [mypy] section says what is checked and how strictly
    result = subprocess.run([sys.executable, "-m", "mypy"], capture_output=True, text=True, cwd=PACKAGE.parents[1],
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
