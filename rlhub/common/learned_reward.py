"""Learned rewards: a small network that rewards transitions, saved as data, and the environment
wrapper that trains any algorithm on it.

Shared by the algorithms that learn a reward (AIRL exports one, GAIL's discriminator is one) and
by ``rlhub train``, which trains any algorithm on a saved one (``-params reward_model:PATH``), so a
third party's algorithm can export or use one the same way.

A reward model file is a ``torch.save`` of plain values and tensors (its inputs, layer widths, the
spaces it was learned in, the weights), read back with ``torch.load(weights_only=True)`` under a
size cap: nothing in it is imported or called, whoever wrote it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn
from torch import nn

#: What a reward model reads: the state; the state and action; the state and the next state.
INPUTS = ("state", "state_action", "state_next_state")
#: How a reward model's raw output ``l`` becomes the reward, read as a discriminator's logit
#: ``l = log D - log(1 - D)``: as it is, ``-log(1 - D)`` (always positive: it pays for surviving, which
#: tasks that end on failure need) or ``log D`` (always negative).
OUTPUTS: dict[str, Callable[[th.Tensor], th.Tensor]] = {
    "log(D)-log(1-D)": lambda logits: logits,
    "-log(1-D)": lambda logits: nn.functional.softplus(logits),
    "log(D)": lambda logits: -nn.functional.softplus(-logits),
}
FORMAT = "rlhub.reward_model"
#: Bounds on a file: the bytes read, and the network it may describe (widths, layers).
MAX_FILE_BYTES = 64 << 20
MAX_WIDTH, MAX_LAYERS = 4096, 8


class RewardModelError(ValueError):
    """A reward model file that is not one, or does not fit the environment."""


@dataclass(frozen=True)
class Transitions:
    """Transitions, leading axis the transition (NumPy arrays, or tensors on a device).

    :param observations: (N, *observation_shape)
    :param actions: (N,) for Discrete actions, (N, action_dim) for Box, as the environment got them
    :param next_observations: (N, *observation_shape), the terminal observation where an episode ended
    :param terminations: (N,) 1 where the episode terminated (not where a time limit cut it)
    """

    observations: Any
    actions: Any
    next_observations: Any
    terminations: Any

    def __len__(self) -> int:
        return len(self.observations)

    def to_tensors(self, action_space: spaces.Space[Any], device: th.device | str) -> Transitions:
        """Float32 tensors on ``device``; Discrete actions int64 (B,), Box actions float32 (B, action_dim)."""
        actions = th.as_tensor(np.asarray(self.actions), device=device)
        discrete = isinstance(action_space, spaces.Discrete)
        return Transitions(
            th.as_tensor(np.asarray(self.observations), dtype=th.float32, device=device),
            actions.long().reshape(-1) if discrete else actions.float().reshape(len(actions), -1),
            th.as_tensor(np.asarray(self.next_observations), dtype=th.float32, device=device),
            th.as_tensor(np.asarray(self.terminations), dtype=th.float32, device=device),
        )


class TransitionEncoder(nn.Module):
    """Flat observations standardised with given statistics (saved as buffers, so a reward means the
    same after loading); Discrete actions one-hot, Box actions rescaled from their bounds to [-1, 1].

    :param observation_space: a Box
    :param action_space: Discrete or Box
    :param observation_mean: the mean observation of the data the model learns from (default 0)
    :param observation_std: its spread (default 1; floored so a constant feature stays finite)
    """

    def __init__(self, observation_space: spaces.Space[Any], action_space: spaces.Space[Any],
                 observation_mean: np.ndarray | None = None, observation_std: np.ndarray | None = None) -> None:
        super().__init__()
        self.observation_size = int(np.prod(observation_space.shape))
        mean = np.zeros(self.observation_size) if observation_mean is None else observation_mean
        std = np.ones(self.observation_size) if observation_std is None else np.maximum(observation_std, 1e-3)
        self.register_buffer("observation_mean", th.as_tensor(mean, dtype=th.float32).reshape(-1))
        self.register_buffer("observation_std", th.as_tensor(std, dtype=th.float32).reshape(-1))
        self.n_actions = int(action_space.n) if isinstance(action_space, spaces.Discrete) else None
        if self.n_actions is None:
            low, high = (th.as_tensor(bound, dtype=th.float32).reshape(-1) for bound in (action_space.low, action_space.high))
            bounded = th.isfinite(low) & th.isfinite(high)
            self.register_buffer("action_center", th.where(bounded, (high + low) / 2, th.zeros_like(low)))
            self.register_buffer("action_half_range", th.where(bounded, (high - low) / 2, th.ones_like(low)))
            self.action_size = int(np.prod(action_space.shape))
        else:
            self.action_size = self.n_actions

    def observations(self, observations: th.Tensor) -> th.Tensor:
        return (observations.reshape(len(observations), -1) - self.observation_mean) / self.observation_std

    def actions(self, actions: th.Tensor) -> th.Tensor:
        if self.n_actions is not None:
            return nn.functional.one_hot(actions, self.n_actions).float()
        return (actions.reshape(len(actions), -1) - self.action_center) / self.action_half_range


def mlp(input_size: int, net_arch: list[int], output_size: int = 1) -> nn.Sequential:
    """Linear layers of widths ``net_arch`` with ReLU between them, then a linear output."""
    layers: list[nn.Module] = []
    for width in net_arch:
        layers += [nn.Linear(input_size, width), nn.ReLU()]
        input_size = width
    layers.append(nn.Linear(input_size, output_size))
    return nn.Sequential(*layers)


class RewardModel(nn.Module):
    """``r(s)``, ``r(s, a)`` or ``r(s, s')``: an MLP over encoded transitions, one number each.

    :param observation_space: a Box
    :param action_space: Discrete or Box
    :param inputs: one of :data:`INPUTS`
    :param net_arch: hidden layer widths
    :param observation_mean: see :class:`TransitionEncoder`
    :param observation_std: see :class:`TransitionEncoder`
    :param output: how :meth:`reward` turns the network's output into the reward, one of :data:`OUTPUTS`
        (``forward`` gives the raw output)
    """

    def __init__(self, observation_space: spaces.Space[Any], action_space: spaces.Space[Any], inputs: str,
                 net_arch: list[int], observation_mean: np.ndarray | None = None,
                 observation_std: np.ndarray | None = None, output: str = "log(D)-log(1-D)") -> None:
        super().__init__()
        if inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {', '.join(INPUTS)}, got {inputs!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        self.observation_space, self.action_space = observation_space, action_space
        self.inputs, self.net_arch, self.output = inputs, list(net_arch), output
        self.encoder = TransitionEncoder(observation_space, action_space, observation_mean, observation_std)
        extra = {"state": 0, "state_action": self.encoder.action_size,
                 "state_next_state": self.encoder.observation_size}[inputs]
        self.net = mlp(self.encoder.observation_size + extra, self.net_arch)

    def forward(self, batch: Transitions) -> th.Tensor:
        parts = [self.encoder.observations(batch.observations)]
        if self.inputs == "state_action":
            parts.append(self.encoder.actions(batch.actions))
        elif self.inputs == "state_next_state":
            parts.append(self.encoder.observations(batch.next_observations))
        return self.net(th.cat(parts, dim=1)).squeeze(1)

    def reward(self, batch: Transitions) -> th.Tensor:
        """(B,) the reward of each transition: the output form of the network's output."""
        return OUTPUTS[self.output](self(batch))

    def save(self, path: str | Path) -> Path:
        """Write the model as plain values and tensors (see the module's docstring)."""
        action = ({"kind": "Discrete", "n": int(self.action_space.n)} if isinstance(self.action_space, spaces.Discrete)
                  else {"kind": "Box", "low": th.as_tensor(self.action_space.low),
                        "high": th.as_tensor(self.action_space.high)})
        th.save({"format": FORMAT, "version": 1, "inputs": self.inputs, "output": self.output, "net_arch": self.net_arch,
                 "observation_shape": list(self.observation_space.shape), "action": action,
                 "state_dict": {name: tensor.cpu() for name, tensor in self.state_dict().items()}}, path)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> RewardModel:
        """Read a file :meth:`save` wrote, as data; :class:`RewardModelError` for anything else."""
        path = Path(path)
        if not path.is_file():
            raise RewardModelError(f"reward model {path} does not exist")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise RewardModelError(f"reward model {path} is over {MAX_FILE_BYTES >> 20} MB; a reward network is far smaller")
        try:
            stored = th.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001  # torch answers a foreign or damaged file with many kinds
            raise RewardModelError(f"{path} is not a reward model file ({type(error).__name__}: {str(error)[:200]})") from None
        try:
            if not isinstance(stored, dict) or stored.get("format") != FORMAT or stored.get("version") != 1:
                raise RewardModelError("it holds no rlhub reward model (version 1)")
            net_arch, shape, action = stored["net_arch"], stored["observation_shape"], stored["action"]
            if not (isinstance(net_arch, list) and len(net_arch) <= MAX_LAYERS
                    and all(isinstance(width, int) and 0 < width <= MAX_WIDTH for width in net_arch)):
                raise RewardModelError(f"its net_arch must be at most {MAX_LAYERS} widths of 1 to {MAX_WIDTH}")
            if not (isinstance(shape, list) and all(isinstance(size, int) and 0 < size for size in shape)
                    and int(np.prod(shape)) <= 1 << 16):
                raise RewardModelError("its observation_shape is not a small positive shape")
            observation_space = spaces.Box(-np.inf, np.inf, shape=tuple(shape), dtype=np.float32)
            if action.get("kind") == "Discrete" and isinstance(action.get("n"), int) and 0 < action["n"] <= 1 << 16:
                action_space: spaces.Space[Any] = spaces.Discrete(action["n"])
            elif action.get("kind") == "Box" and all(isinstance(action.get(k), th.Tensor) for k in ("low", "high")) \
                    and action["low"].shape == action["high"].shape and action["low"].numel() <= 1 << 16:
                action_space = spaces.Box(action["low"].numpy(), action["high"].numpy(), dtype=np.float32)
            else:
                raise RewardModelError("its action space is neither a Discrete nor a Box")
            widths = [int(np.prod(shape)) * 2 + int(np.prod(action_space.shape or (action_space.n,))), *net_arch, 1]
            if sum(a * b for a, b in zip(widths, widths[1:])) > MAX_FILE_BYTES // 4:  # more weights than it can hold
                raise RewardModelError("it describes a network larger than a reward model file holds")
            model = cls(observation_space, action_space, stored["inputs"], net_arch, output=stored["output"])
            model.load_state_dict(stored["state_dict"], strict=True)
        except RewardModelError as error:
            raise RewardModelError(f"{path}: {error}") from None
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            raise RewardModelError(f"{path} is not a valid reward model ({type(error).__name__}: {str(error)[:200]})") from None
        return model.eval()

    def check_fits(self, observation_space: spaces.Space[Any], action_space: spaces.Space[Any], where: str) -> None:
        """Raise :class:`RewardModelError` unless the model reads this environment's transitions."""
        fits = (isinstance(observation_space, spaces.Box)
                and int(np.prod(observation_space.shape)) == self.encoder.observation_size
                and type(action_space) is type(self.action_space)
                and (self.encoder.n_actions == int(getattr(action_space, "n", -1)) if self.encoder.n_actions is not None
                     else int(np.prod(action_space.shape)) == self.encoder.action_size))
        if not fits:
            raise RewardModelError(f"{where} was learned on observations {self.observation_space.shape} and actions "
                                   f"{self.action_space}, not this environment's {observation_space} / {action_space}")


#: ``reward(transitions as arrays) -> (N,) rewards``
RewardFunction = Callable[[Transitions], np.ndarray]


class RewardVecEnv(VecEnvWrapper):
    """Step ``venv``, but reward each transition with ``reward_function``. The environment's own reward
    is not lost: the ``Monitor`` below still records it, so SB3's ``rollout/ep_rew_mean`` and rlhub's
    evaluations report the true return; the learned one's episode returns are tracked here.

    :param venv: the environment, observations as arrays (Box spaces)
    :param reward_function: the reward of a batch of transitions (one per sub-environment)
    :param capacity: steps (of all sub-environments) kept until :meth:`take_transitions`, for a learner
        of the reward (a discriminator, a curiosity module); the oldest go first, so memory stays bounded
        if nobody takes them. 0: keep none
    """

    def __init__(self, venv: VecEnv, reward_function: RewardFunction, capacity: int = 0) -> None:
        super().__init__(venv)
        self.reward_function = reward_function
        self._last_observations: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._learned_returns = np.zeros(self.num_envs)
        #: learned returns of the latest finished episodes
        self.episode_learned_returns: deque[float] = deque(maxlen=100)
        self._steps: deque[Transitions] = deque(maxlen=capacity)  # maxlen 0 keeps nothing

    def reset(self) -> VecEnvObs:
        observations = self.venv.reset()
        self._last_observations = np.asarray(observations)
        self._learned_returns[:] = 0.0
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        observations, true_rewards, dones, infos = self.venv.step_wait()
        assert self._last_observations is not None and self._actions is not None, "step before reset"
        next_observations = np.array(observations, copy=True)
        terminations = np.zeros(self.num_envs, dtype=np.float32)
        for index in np.flatnonzero(dones):
            next_observations[index] = infos[index]["terminal_observation"]
            terminations[index] = not infos[index].get("TimeLimit.truncated", False)
        step = Transitions(self._last_observations, self._actions, next_observations, terminations)
        learned = np.asarray(self.reward_function(step), dtype=np.float32).reshape(self.num_envs)
        self._steps.append(step)
        self._learned_returns += learned
        for index in np.flatnonzero(dones):
            self.episode_learned_returns.append(float(self._learned_returns[index]))
            self._learned_returns[index] = 0.0
        self._last_observations = np.asarray(observations)
        return observations, self.combine(np.asarray(true_rewards), learned, infos), dones, infos

    def combine(self, true_rewards: np.ndarray, learned_rewards: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        """The reward the learner gets: the learned one (a subclass may mix in the environment's own)."""
        return learned_rewards

    @property
    def n_kept(self) -> int:
        """Transitions (of all sub-environments) kept since the last :meth:`take_transitions`."""
        return len(self._steps) * self.num_envs

    def take_transitions(self) -> Transitions:
        """Every transition kept since the last call (see ``capacity``), and forget them."""
        steps = list(self._steps)
        self._steps.clear()
        if not steps:
            raise RuntimeError("no transitions since the last take: step the environment first")
        return Transitions(*(np.concatenate([getattr(step, name) for step in steps])
                             for name in ("observations", "actions", "next_observations", "terminations")))


def reward_model_env(venv: VecEnv, path: str | Path) -> RewardVecEnv:
    """``venv`` rewarded by the reward model at ``path`` (checked against its spaces first)."""
    model = RewardModel.load(path)
    model.check_fits(venv.observation_space, venv.action_space, f"reward model {path}")

    def reward(step: Transitions) -> np.ndarray:
        with th.no_grad():
            return model.reward(step.to_tensors(model.action_space, "cpu")).numpy()

    return RewardVecEnv(venv, reward)
