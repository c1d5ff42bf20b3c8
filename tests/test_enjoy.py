"""`rlhub enjoy`: Ctrl-C sums up the episodes played; no display means no rendering."""

import os
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from rlhub.cli import main


def _as_from_a_terminal() -> None:
    # A job started in the background by a non-interactive shell (as CI runs the suite) inherits SIGINT
    # ignored, and Python then leaves it ignored: the child would never see the Ctrl-C a terminal sends.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_prints_the_summary_of_the_episodes_played(ppo_cartpole_run):
    process = subprocess.Popen(
        [sys.executable, "-m", "rlhub.cli", "enjoy", "-f", str(ppo_cartpole_run), "--no-render", "-n", "100000000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_as_from_a_terminal)
    try:
        lines = []
        for line in process.stdout:  # ends early only if enjoy dies
            lines.append(line)
            if line.startswith("episode 1:"):
                process.send_signal(signal.SIGINT)
                break
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    output = "".join(lines) + stdout
    assert process.returncode == 130, output + stderr
    summary = next(line for line in output.splitlines() if line.startswith("mean return"))
    played = sum(line.startswith("episode ") for line in output.splitlines())
    assert f"over {played} episodes" in summary
    assert "Interrupted" in stderr and "Traceback" not in stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux needs $DISPLAY or $WAYLAND_DISPLAY")
def test_without_a_display_enjoy_plays_without_rendering(ppo_cartpole_run, monkeypatch):
    import rlhub.run_folder

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    render_modes = []
    load_agent = rlhub.run_folder.load_agent
    monkeypatch.setattr(rlhub.run_folder, "load_agent",
                        lambda *args, **kwargs: render_modes.append(kwargs["render_mode"]) or load_agent(*args, **kwargs))
    result = CliRunner().invoke(main, ["enjoy", "-f", str(ppo_cartpole_run), "--n-episodes", "2"])
    assert result.exit_code == 0, result.output
    assert "No display ($DISPLAY and $WAYLAND_DISPLAY are unset): playing without rendering" in result.output
    assert render_modes == [None] and "mean return" in result.output
