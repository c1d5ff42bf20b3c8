"""`rlhub benchmark`: every row checked before any trains, results.md kept row by row, console and table agree."""

import pytest
from click.testing import CliRunner

from rlhub.cli import main


def benchmark(tmp_path, rows, expect=0):
    suite = tmp_path / "suite.yml"
    suite.write_text("rows:\n" + "".join(f"  - {row}\n" for row in rows))
    result = CliRunner().invoke(main, ["benchmark", str(suite), "-o", str(tmp_path / "out")])
    if expect is not None:
        assert result.exit_code == expect, result.output
    return result


def table_rows(markdown):
    """The table's header and rows as lists of cells."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines]


def test_every_bad_row_is_reported_before_any_trains(tmp_path):
    result = benchmark(tmp_path, [
        "{algo: a2c, env: CartPole-v1, timesteps: 200}",  # a good row first: it must not train either
        "{algo: nosuch, env: CartPole-v1, timesteps: 200}",
        "{algo: ppo, env: NoSuchEnv-v0, timesteps: 200}",
        "{algo: dqn, env: Pendulum-v1, timesteps: 200}",
        "{algo: ppo, env: CartPole-v1, timesteps: 200, hyperparams: {n_step: 3}}",
        "{algo: a2c, env: CartPole-v1, timesteps: 200, peer: nosuch_peer}",
    ], expect=2)
    assert "5 benchmark row(s) cannot run" in result.output
    for expected in ("row 2 (nosuch on CartPole-v1): Unknown algorithm 'nosuch'",
                     "row 3 (ppo on NoSuchEnv-v0): Unknown environment", "row 4 (dqn on Pendulum-v1): dqn cannot learn",
                     "row 5 (ppo on CartPole-v1):", "'n_step'", "row 6 (nosuch_peer on CartPole-v1)"):
        assert expected in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "runs").exists()


def test_results_md_keeps_the_rows_done_before_a_late_failure(tmp_path):
    # batch_size 1 passes the config check but PPO's constructor refuses it: a failure mid-suite.
    result = benchmark(tmp_path, ["{algo: a2c, env: CartPole-v1, timesteps: 200, eval_episodes: 2}",
                                  "{algo: ppo, env: CartPole-v1, timesteps: 256, hyperparams: {batch_size: 1}}"],
                       expect=None)
    assert result.exit_code != 0 and "batch_size" in f"{result.output}{result.exception!r}"
    rows = table_rows((tmp_path / "out" / "results.md").read_text())
    assert [row[:2] for row in rows[1:]] == [["a2c", "CartPole-v1"]]
    assert not list((tmp_path / "out").glob(".*partial*"))  # written atomically


def test_console_row_line_says_what_the_table_says(tmp_path):
    result = benchmark(tmp_path, ["{algo: a2c, env: CartPole-v1, timesteps: 200, seeds: [0, 1], eval_episodes: 3}"])
    header, row = table_rows(result.output)
    console = next(line for line in result.output.splitlines() if line.startswith("[benchmark] algo a2c;"))
    for name, value in zip(header, row, strict=True):
        assert f"{name} {value}" in console, (name, value, console)
    assert "over seeds" in header[4]  # the std is across seeds, not across one seed's episodes
    assert table_rows((tmp_path / "out" / "results.md").read_text()) == [header, row]


@pytest.mark.parametrize("only", ["sac", "Pendulum-v1"])
def test_only_matching_no_row_is_a_clear_error(tmp_path, only):
    suite = tmp_path / "suite.yml"
    suite.write_text("rows:\n  - {algo: a2c, env: CartPole-v1, timesteps: 200}\n")
    result = CliRunner().invoke(main, ["benchmark", str(suite), "-o", str(tmp_path / "out"), "--only", only])
    assert result.exit_code == 2 and f"has the algo or env {only}" in result.output


def test_a_row_can_print_random_actions_and_be_judged_on_its_median(tmp_path):
    result = benchmark(tmp_path, [
        "{algo: a2c, env: CartPole-v1, timesteps: 300, seeds: [0, 1, 2], eval_episodes: 3, bar: 1, "
        "bar_statistic: median, random_baseline: true}"])
    header, row = table_rows(result.output)
    cells = dict(zip(header, row, strict=True))
    returns = [float(line.split("return ")[1].split(" ")[0]) for line in result.output.splitlines()
               if line.startswith("[benchmark]   seed")]
    assert float(cells["median"]) == pytest.approx(sorted(returns)[1], abs=0.05)
    assert cells["met"] == "yes" and 8 <= float(cells["random"]) <= 50  # CartPole's random play lasts ~22 steps
    assert float(cells["steps/CPU s"]) > 0
    assert "bar_statistic must be mean or median" in benchmark(
        tmp_path, ["{algo: a2c, env: CartPole-v1, timesteps: 300, bar_statistic: max}"], expect=2).output
