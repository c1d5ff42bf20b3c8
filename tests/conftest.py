"""Shared fixtures."""

import pytest
from hub_server import HubServer, point_client_at


@pytest.fixture(scope="session")
def _hub_server():
    with HubServer() as server:
        yield server


@pytest.fixture
def hub_server(_hub_server, tmp_path_factory, monkeypatch):
    """A loopback Hugging Face Hub, emptied for each test, with ``huggingface_hub`` pointed at it
    (``HF_ENDPOINT``, ``HF_HUB_DISABLE_XET=1``, a dummy ``HF_TOKEN``, ``HF_HOME`` in a temp dir)."""
    _hub_server.state.reset()
    point_client_at(_hub_server, tmp_path_factory.mktemp("hf_home"), monkeypatch)
    yield _hub_server


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Small networks train fastest on one thread, and the suite runs two workers (pytest -n 2)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ppo_cartpole_run(tmp_path_factory):
    """A short ppo run on CartPole-v1, trained (and signed) on this machine."""
    from rlhub.experiment import TrainOptions, train

    return train(TrainOptions("ppo", "CartPole-v1", n_timesteps=256, log_folder=tmp_path_factory.mktemp("own") / "logs",
                              seed=0, eval_freq=-1, verbose=0, device="cpu")).run_dir


@pytest.fixture(scope="module")
def ppo_cartpole_package(ppo_cartpole_run, tmp_path_factory):
    """That agent as ``push-to-hub`` uploads it: a legitimate download."""
    from rlhub import hub

    folder = tmp_path_factory.mktemp("packaged") / "ppo-CartPole-v1"
    hub.package(ppo_cartpole_run, folder, n_eval_episodes=1, video_length=0, device="cpu")
    return folder
