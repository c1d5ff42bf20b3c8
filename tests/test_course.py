"""The Hugging Face course's configs (zoo_configs/course/) train as the README's commands say."""

from __future__ import annotations

from pathlib import Path

from rlhub.evaluation import evaluate
from rlhub.experiment import TrainOptions, train
from rlhub.run_folder import Manifest, load_agent

COURSE = Path(__file__).resolve().parents[1] / "zoo_configs" / "course"


def test_q_learning_solves_the_non_slippery_lake_with_the_course_settings(tmp_path):
    result = train(TrainOptions("q_learning", "FrozenLake-v1", conf_file=COURSE / "q_learning_frozenlake_no_slippery.yml",
                                log_folder=tmp_path, seed=0, eval_freq=-1, verbose=0))
    assert Manifest.read(result.run_dir).env_kwargs == {"map_name": "4x4", "is_slippery": False}
    assert result.timesteps < 100_000  # 10000 episodes of a few steps, not the 1M-step upper bound
    agent = load_agent(result.run_dir)
    assert evaluate(agent.model, agent.env, n_episodes=20).mean == 1.0
