"""The environment factory: ids, wrappers, frame stacking, normalisation, errors."""

import numpy as np
import pytest

from rlhub.config import WrapperChain, resolve_dotted
from rlhub.envs import UnknownEnvironmentError, ensure_registered, make_vec_env


def test_module_prefixed_id_imports_the_registering_package():
    assert ensure_registered("pybullet_envs_gymnasium:HopperBulletEnv-v0") == "HopperBulletEnv-v0"


def test_bullet_ids_register_their_package_without_a_prefix():
    env = make_vec_env("InvertedPendulumBulletEnv-v0", n_envs=1, seed=0)
    assert env.observation_space.shape == (5,)
    env.close()


def test_unknown_env_suggests_near_ids():
    with pytest.raises(UnknownEnvironmentError, match="Did you mean 'Pendulum-v1'"):
        ensure_registered("Pendulum-v0")


def test_wrappers_frame_stack_and_normalize_compose():
    wrapper = WrapperChain([(resolve_dotted("sb3_contrib.common.wrappers.TimeFeatureWrapper"), {})])
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0, wrapper=wrapper, frame_stack=3, normalize={"gamma": 0.9})
    obs = env.reset()
    assert obs.shape == (2, 3 * 4)  # 3 observations + the time feature, stacked 3 times
    env.step(np.zeros((2, 1)))
    assert env.training and env.gamma == 0.9
    env.close()


def test_frozen_statistics_for_evaluation(tmp_path):
    env = make_vec_env("Pendulum-v1", n_envs=1, seed=0, normalize={})
    env.reset()
    for _ in range(50):
        env.step(np.zeros((1, 1)))
    env.save(str(tmp_path / "vec_normalize.pkl"))
    frozen = make_vec_env("Pendulum-v1", n_envs=1, seed=0, normalize={}, training=False,
                          vec_normalize_path=tmp_path / "vec_normalize.pkl")
    assert not frozen.training and not frozen.norm_reward
    np.testing.assert_allclose(frozen.obs_rms.mean, env.obs_rms.mean)
