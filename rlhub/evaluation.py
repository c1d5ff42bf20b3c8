"""Evaluation and replay video: the one routine train, enjoy, push-to-hub and the benchmark share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces


@dataclass
class EvaluationResult:
    """Each episode's return and length; for a multi-agent env, ``returns`` are the agents' summed
    returns and ``agent_returns`` each agent's own."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    agent_returns: dict[str, list[float]] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.returns)) if self.returns else float("nan")

    def summary(self) -> str:
        return f"{self.mean:.2f} +/- {self.std:.2f} over {len(self.returns)} episodes"

    def agent_means(self) -> dict[str, tuple[float, float]]:
        """Each agent's mean and std return (empty for a single-agent env)."""
        return {agent: (float(np.mean(values)), float(np.std(values)))
                for agent, values in self.agent_returns.items() if values}


class EvaluationInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`evaluate`; ``result`` holds the episodes that ended before it."""

    def __init__(self, result: EvaluationResult) -> None:
        super().__init__()
        self.result = result


def evaluate(
    model: Any,
    env: Any,
    *,
    n_episodes: int | None = 10,
    n_timesteps: int | None = None,
    deterministic: bool = True,
    render: bool = False,
    record_video: str | Path | None = None,
    video_fps: int = 30,
    on_episode: Callable[[int, float, int], None] | None = None,
) -> EvaluationResult:
    """Play ``model`` on a one-env VecEnv until ``n_episodes`` end or ``n_timesteps`` pass.

    Returns and lengths come from the Monitor wrapper, so they are the environment's own rewards
    (before normalisation or reward wrappers). ``record_video`` needs ``render_mode="rgb_array"``.
    Ctrl-C raises :class:`EvaluationInterrupted` (a ``KeyboardInterrupt``) carrying the episodes played
    so far, and the video holds the frames recorded until then.
    """
    if env.num_envs != 1:
        raise ValueError(f"evaluate() plays a single environment, got {env.num_envs}")
    if n_episodes is None and n_timesteps is None:
        raise ValueError("give n_episodes, n_timesteps or both")
    from rlhub.parallel_envs import agent_returns

    result = EvaluationResult()
    # a multi-agent env's actions are a Dict keyed by agent (rlhub.parallel_envs)
    agents = list(env.action_space.spaces) if isinstance(env.action_space, spaces.Dict) else None
    video = VideoWriter(record_video, fps=video_fps) if record_video is not None else None
    try:
        obs = env.reset()
        state = None
        episode_start = np.ones((1,), dtype=bool)
        steps = 0
        while True:
            if video is not None:
                video.append(env.render())
            elif render:
                env.render()
            action, state = model.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic)
            obs, rewards, dones, infos = env.step(action)
            if hasattr(state, "record_rewards"):
                # A return-conditioned agent (Decision Transformer) lowers the return-to-go in its state by the
                # rewards received, which predict() never sees: give it the environment's own.
                state.record_rewards(_unnormalized(env, rewards))
            steps += 1
            episode_start = dones
            episode = infos[0].get("episode")
            if dones[0] and episode is not None:
                result.returns.append(float(episode["r"]))
                result.lengths.append(int(episode["l"]))
                per_agent = agent_returns(infos[0], agents) if agents else None
                for agent, value in (per_agent or {}).items():
                    result.agent_returns.setdefault(agent, []).append(value)
                if on_episode is not None:
                    on_episode(len(result.returns), result.returns[-1], result.lengths[-1])
            if n_episodes is not None and len(result.returns) >= n_episodes:
                break
            if n_timesteps is not None and steps >= n_timesteps:
                break
    except KeyboardInterrupt:
        raise EvaluationInterrupted(result) from None
    finally:
        if video is not None:
            video.close()
    return result


def _unnormalized(env: Any, rewards: np.ndarray) -> np.ndarray:
    """The rewards of the last step before a VecNormalize in ``env`` scaled them."""
    get_original_reward = getattr(env, "get_original_reward", None)
    return get_original_reward() if get_original_reward is not None else rewards


class VideoWriter:
    """Encodes RGB frames to an mp4 (H.264 through imageio's ffmpeg) as they come, so a long replay
    never sits in memory."""

    def __init__(self, path: str | Path, fps: int = 30) -> None:
        import imageio.v2 as imageio

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # H.264 needs even sizes; macro_block_size=2 pads to them instead of resizing to multiples of 16.
        self._writer = imageio.get_writer(str(self.path), fps=fps, macro_block_size=2)
        self.frames = 0

    def append(self, frame: np.ndarray | None) -> None:
        if frame is None:
            raise ValueError("the environment rendered no frame: make it with render_mode='rgb_array'")
        self._writer.append_data(np.asarray(frame))
        self.frames += 1

    def close(self) -> None:
        self._writer.close()

