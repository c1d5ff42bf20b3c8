"""MiniGrid: MiniGridCNN (rlhub_curiosity.common.minigrid_cnn) reads the symbolic view one-hot through
small convolutions, refuses a view scaled as pixels, and a policy built on it learns through ``rlhub
train``'s config path; agents there are judged on sampled actions, as in the RL Zoo."""

from __future__ import annotations

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid ids)
import numpy as np
import pytest
import torch as th
from minigrid.wrappers import ImgObsWrapper
from rlhub_curiosity.common.minigrid_cnn import CODE_SIZES, MiniGridCNN
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.vec_env import VecTransposeImage

from rlhub.cli import main
from rlhub.envs import plays_stochastically

POLICY_KWARGS = ("policy_kwargs:dict(features_extractor_class=rlhub_curiosity.common.minigrid_cnn.MiniGridCNN, "
                 "normalize_images=False)")


def channels_first_view_space() -> gym.spaces.Box:
    space = ImgObsWrapper(gym.make("MiniGrid-DoorKey-5x5-v0")).observation_space
    assert is_image_space(space)  # so SB3 transposes it to channels first, as MiniGridCNN expects
    return VecTransposeImage.transpose_space(space)


def test_each_code_is_a_category_of_its_own():
    extractor = MiniGridCNN(channels_first_view_space(), features_dim=32)
    view = th.zeros((1, 3, 7, 7))
    objects = [view.clone() for _ in range(CODE_SIZES[0])]
    for code, observation in enumerate(objects):
        observation[0, 0, 3, 3] = code
    with th.no_grad():
        features = th.cat([extractor(observation) for observation in objects])
    assert extractor.cnn[0].in_channels == sum(CODE_SIZES)  # one input plane per value of each code
    assert features.shape == (CODE_SIZES[0], 32)
    assert len({tuple(row.tolist()) for row in features}) == CODE_SIZES[0]


def test_a_view_scaled_as_pixels_is_refused_with_the_fix():
    extractor = MiniGridCNN(channels_first_view_space())
    with pytest.raises(ValueError, match="normalize_images=False"):
        extractor(th.full((1, 3, 7, 7), 2 / 255))


def test_a_view_that_is_not_minigrids_is_refused():
    with pytest.raises(ValueError, match="ImgObsWrapper"):
        MiniGridCNN(gym.spaces.Box(0, 255, (147, 1, 1), np.uint8))


def test_ppo_on_it_learns_a_minigrid_room_through_the_cli(tmp_path):
    from click.testing import CliRunner

    result = CliRunner().invoke(main, [
        "train", "--algo", "ppo", "--env", "minigrid:MiniGrid-Empty-5x5-v0", "-n", "12288", "--seed", "0",
        "-f", str(tmp_path), "--eval-freq", "-1", "--eval-episodes", "10", "-q", "--no-progress",
        "-params", "env_wrapper:minigrid.wrappers.ImgObsWrapper", "n_envs:8", "n_steps:64", "batch_size:256",
        "n_epochs:4", "learning_rate:0.001", "ent_coef:0.01", POLICY_KWARGS,
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Evaluation (stochastic)" in result.output
    mean_return = float(result.output.split("mean return ")[1].split()[0])
    # the shortest path (5 steps of 100) scores 0.955
    assert mean_return >= 0.9, result.output


@pytest.mark.parametrize("env_id, stochastic", [
    ("minigrid:MiniGrid-DoorKey-8x8-v0", True), ("MiniGrid-Empty-5x5-v0", True), ("BabyAI-GoToObj-v0", True),
    ("BreakoutNoFrameskip-v4", True), ("ALE/Pong-v5", True), ("CartPole-v1", False), ("Pendulum-v1", False),
])
def test_atari_and_minigrid_agents_play_sampled_actions_by_default(env_id, stochastic):
    assert plays_stochastically(env_id) is stochastic


def test_its_mission_text_is_refused_before_training_with_the_wrapper_to_use(tmp_path):
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["train", "--algo", "ppo", "--env", "minigrid:MiniGrid-Empty-5x5-v0", "-n", "64",
                                       "-f", str(tmp_path), "-q", "--no-progress"])
    assert result.exit_code != 0 and "observation entry 'mission', a MissionSpace space" in result.output
    assert "minigrid.wrappers.ImgObsWrapper" in result.output and not list(tmp_path.iterdir())
