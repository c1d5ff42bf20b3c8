"""PettingZoo Parallel environments as rlhub environments: one Gymnasium env per PettingZoo env, whose
observations and actions are dicts keyed by agent, so SB3's own vectorisers, Monitor, evaluation and
video recording run multi-agent games unchanged.

Why not SuperSuit: its ``pettingzoo_env_to_vec_env_v1`` turns each agent into one env of a vector
(parameter sharing) and needs every agent to have the same spaces. Centralised critics need the
joint step, and speaker-listener's agents differ, so the joint step is kept as one Gymnasium env
(Dict spaces) and SB3's ``DummyVecEnv``/``SubprocVecEnv`` run copies of it.

The env's reward is the agents' summed reward (what SB3's Monitor, evaluation and the benchmark
report: the total return); each agent's own is in ``info["agent_rewards"]``, and at an episode's
end in ``info["return_<agent>"]``, which Monitor writes to its file (``info_keywords``).
"""

from __future__ import annotations

import importlib
import importlib.util
import types
from collections.abc import Mapping
from functools import cache
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper


def split_env_id(env_id: str) -> tuple[str, str] | None:
    """``("mpe2", "simple_spread_v3")`` for ``"mpe2:simple_spread_v3"``; None for an id that cannot name
    a PettingZoo module (no ``:``, or a Gymnasium-style ``Name-v0`` after it)."""
    module, sep, name = env_id.partition(":")
    if not sep or not name.isidentifier() or name.startswith("_") or not module:
        return None
    return module, name


@cache
def parallel_env_module(env_id: str) -> types.ModuleType | None:
    """The PettingZoo environment module ``env_id`` names (``mpe2:simple_spread_v3`` is the module
    ``mpe2.simple_spread_v3`` with its ``parallel_env``), or None for a Gymnasium id.

    A ``module:EnvId`` that Gymnasium registers on importing ``module`` stays a Gymnasium id.
    """
    parts = split_env_id(env_id)
    if parts is None:
        return None
    package, name = parts
    try:
        importlib.import_module(package)
    except ImportError:
        return None  # the Gymnasium path reports the missing package
    if name in gym.registry:
        return None
    full_name = f"{package}.{name}"
    try:
        found = importlib.util.find_spec(full_name) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return None
    module = importlib.import_module(full_name)
    return module if callable(getattr(module, "parallel_env", None)) else None  # else Gymnasium's error reports it


def is_multi_agent(env_id: str) -> bool:
    """Whether ``env_id`` names a PettingZoo Parallel environment."""
    return parallel_env_module(env_id) is not None


def env_keywords(env_id: str) -> set[str] | None:
    """The keyword arguments the PettingZoo env takes (its ``raw_env``'s, where ``parallel_env`` passes
    them on as ``**kwargs``); None if any."""
    from rlhub.config import keyword_names

    module = parallel_env_module(env_id)
    assert module is not None
    accepted = keyword_names(getattr(module, "raw_env", module.parallel_env))
    return None if accepted is None else accepted | {"render_mode"}


def make_agent_dict_env(env_id: str, env_kwargs: Mapping[str, Any] | None = None,
                        render_mode: str | None = None) -> AgentDictEnv:
    """The PettingZoo env ``env_id`` (``parallel_env(**env_kwargs)``) as a Gymnasium env."""
    module = parallel_env_module(env_id)
    if module is None:
        raise ValueError(f"{env_id!r} is not a PettingZoo environment (module:env_name)")
    kwargs = dict(env_kwargs or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    return AgentDictEnv(_without_caller_checks(module.parallel_env(**kwargs)), env_id)


def _without_caller_checks(parallel_env: Any) -> Any:
    """A Parallel env converted from an AEC env (``parallel_wrapper_fn``), without the AEC wrappers that
    only check their caller: the order of calls (``OrderEnforcingWrapper``) and the actions' bounds
    (``AssertOutOfBoundsWrapper``). :class:`AgentDictEnv` calls in order, and its actions come from
    rlhub's policies or the action space; each attribute read through the wrappers costs a chain of
    ``__getattr__``, a third of an MPE step. Wrappers that change what the env does stay."""
    from pettingzoo.utils.conversions import aec_to_parallel_wrapper
    from pettingzoo.utils.wrappers import AssertOutOfBoundsWrapper, OrderEnforcingWrapper

    if not isinstance(parallel_env, aec_to_parallel_wrapper):
        return parallel_env
    aec_env = parallel_env.aec_env
    while isinstance(aec_env, (OrderEnforcingWrapper, AssertOutOfBoundsWrapper)):
        aec_env = aec_env.env
    return _in_turn_parallel_class()(aec_env)


@cache  # the class is made on first use: PettingZoo is imported only for a PettingZoo env
def _in_turn_parallel_class() -> type:
    from pettingzoo.utils.conversions import aec_to_parallel_wrapper

    class InTurnParallel(aec_to_parallel_wrapper):
        """PettingZoo's AEC-to-Parallel conversion without the observation it computes for each agent's
        turn and throws away (``last()``, a sixth of an MPE step). The same calls otherwise, in the same
        order: every agent acts in turn, the rewards of the cycle are summed, then each agent observes."""

        def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
            aec = self.aec_env
            rewards = dict.fromkeys(aec.agents, 0)
            for agent in aec.agents:
                if agent != aec.agent_selection:
                    raise AssertionError(f"expected agent {agent}, got {aec.agent_selection}: a Parallel env "
                                         "converted from AEC needs its agents to act in a cycle")
                aec.step(actions[agent])
                for other in aec.agents:
                    rewards[other] += aec.rewards[other]
            result = ({agent: aec.observe(agent) for agent in aec.agents}, rewards, dict(aec.terminations),
                      dict(aec.truncations), dict(aec.infos))
            while aec.agents and (aec.terminations[aec.agent_selection] or aec.truncations[aec.agent_selection]):
                aec.step(None)
            self.agents = aec.agents
            return result

    return InTurnParallel


class AgentDictEnv(gym.Env):
    """A PettingZoo ``ParallelEnv`` as a Gymnasium env with ``Dict`` spaces keyed by agent.

    Every agent acts at every step and the episode ends for all at once (the MPE games and most
    Parallel envs); an env whose agents leave one by one is refused with a clear error.

    :param parallel_env: the PettingZoo env (reset here, closed with this env)
    :param env_id: its rlhub id, for messages and the spec
    """

    def __init__(self, parallel_env: Any, env_id: str = "") -> None:
        self.parallel_env = parallel_env
        self.env_id = env_id
        self.agents: list[str] = list(parallel_env.possible_agents)
        self.observation_space = spaces.Dict({agent: parallel_env.observation_space(agent) for agent in self.agents})
        self.action_space = spaces.Dict({agent: parallel_env.action_space(agent) for agent in self.agents})
        self.metadata = dict(getattr(parallel_env, "metadata", {}) or {})
        self.render_mode = getattr(parallel_env, "render_mode", None)
        self._returns = dict.fromkeys(self.agents, 0.0)

    @staticmethod
    def return_key(agent: str) -> str:
        """The ``info`` key (and monitor.csv column) of ``agent``'s episode return."""
        return f"return_{agent}"

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        observations, infos = self.parallel_env.reset(seed=seed, options=options)
        self._returns = dict.fromkeys(self.agents, 0.0)
        return self._complete(observations), {"agent_infos": infos}

    def step(self, action: Mapping[str, Any]) -> tuple[dict, float, bool, bool, dict]:
        observations, rewards, terminations, truncations, infos = self.parallel_env.step(
            {agent: action[agent] for agent in self.agents})
        ended = [agent for agent in self.agents if terminations.get(agent) or truncations.get(agent)]
        if ended and len(ended) < len(self.agents):
            raise NotImplementedError(
                f"{self.env_id}: agents {ended} ended their episode before the others; rlhub's multi-agent "
                "algorithms need every agent to act until the episode ends for all")
        for agent in self.agents:
            self._returns[agent] += float(rewards[agent])
        terminated = bool(ended) and all(terminations.get(agent, False) for agent in self.agents)
        truncated = bool(ended) and not terminated
        info: dict[str, Any] = {"agent_rewards": rewards}
        if any(infos.values()):  # SB3's DummyVecEnv deep-copies every info at every step: only when there is one
            info["agent_infos"] = infos
        if ended:
            info.update({self.return_key(agent): episode_return for agent, episode_return in self._returns.items()})
        return self._complete(observations), float(sum(rewards.values())), terminated, truncated, info

    def _complete(self, observations: Mapping[str, Any]) -> dict[str, np.ndarray]:
        missing = [agent for agent in self.agents if agent not in observations]
        if missing:
            raise NotImplementedError(f"{self.env_id}: no observation for agents {missing}; rlhub's multi-agent "
                                      "algorithms need one for every agent at every step")
        return {agent: np.asarray(observations[agent]) for agent in self.agents}

    def render(self) -> Any:
        return self.parallel_env.render()

    def close(self) -> None:
        self.parallel_env.close()


class AgentDictVecEnv(VecEnvWrapper):
    """Lets a vector of :class:`AgentDictEnv` take what a multi-agent ``predict`` returns: a dict of
    per-agent action batches (``{agent: (n_envs, ...)}``), handed to each env as its own dict.

    Observations come out as SB3 stacks Dict spaces: ``{agent: (n_envs, ...)}``.
    """

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.agents = list(venv.action_space.spaces)

    def step_async(self, actions: Any) -> None:
        if isinstance(actions, Mapping):
            batches = {agent: np.asarray(actions[agent]) for agent in self.agents}
            actions = [{agent: batch[index] for agent, batch in batches.items()} for index in range(self.num_envs)]
        self.venv.step_async(actions)

    def step_wait(self) -> Any:
        return self.venv.step_wait()

    def reset(self) -> Any:
        return self.venv.reset()


def agent_returns(info: Mapping[str, Any], agents: list[str]) -> dict[str, float] | None:
    """Each agent's return of the episode that ``info`` (an env's last step's) ends, or None."""
    values = {agent: info.get(AgentDictEnv.return_key(agent)) for agent in agents}
    return None if None in values.values() else {agent: float(value) for agent, value in values.items()}
