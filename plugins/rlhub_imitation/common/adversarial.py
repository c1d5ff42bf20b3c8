"""The base of adversarial imitation (GAIL, AIRL): a generator learns from a discriminator's reward,
the discriminator learns to tell the demonstrations from the generator's play.

The generator is any registered on-policy algorithm, built through rlhub's registry by id with its
own hyperparameters, on the environment wrapped in a :class:`~rlhub.common.learned_reward.RewardVecEnv`.
``learn`` runs the generator's own ``learn``; after each of its rollouts the discriminator takes ``n_disc_updates``
gradient steps (binary cross-entropy, demonstrations labelled 1) on those rollout's transitions
against as many demonstrations. The caller's callbacks see this algorithm as their model, so
evaluations and checkpoints save the whole imitator. ``predict`` is the generator's policy.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, BasePolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn

from rlhub.common.inner_learner import AsOuterAlgorithm
from rlhub.common.learned_reward import OUTPUTS, RewardVecEnv, Transitions

if TYPE_CHECKING:
    from rlhub.datasets import OfflineData

#: Kinds of algorithms that can generate. On-policy ones learn from each rollout's rewards, as GAIL
#: does; an off-policy one (ACER, SAC, ...) also replays rewards an earlier discriminator gave.
GENERATOR_KINDS = ("on-policy", "off-policy")

#: The generator's reward as a function of the discriminator's logit ``l = log D - log(1 - D)``.
REWARDS = OUTPUTS

SelfAdversarialImitation = TypeVar("SelfAdversarialImitation", bound="AdversarialImitation")


class AdversarialImitation(BaseAlgorithm):
    """
    Base of adversarial imitation. A subclass builds its discriminator (``_build_discriminator``) and
    says what its logits are (``discriminator_logits``: log D - log(1 - D), D the probability of
    "expert"); the generator's reward is one of :data:`REWARDS` of them.

    :param policy: The generator's policy (a name its algorithm knows, e.g. MlpPolicy, or a class)
    :param env: The environment the generator plays in (if registered in Gym, can be str)
    :param dataset: The demonstrations: an ``OfflineData`` or its id or path (not saved with the model)
    :param generator: The registered algorithm that imitates, on-policy as the papers' (ppo, a2c, trpo, ...)
        or off-policy (acer, sac, ...)
    :param generator_kwargs: Its hyperparameters (policy_kwargs go in ``policy_kwargs``)
    :param learning_rate: The discriminator's learning rate
    :param n_disc_updates: Discriminator gradient steps after each generator rollout
    :param disc_batch_size: Demonstrations (and as many generator transitions) per discriminator step
    :param disc_net_arch: Hidden layer widths of the discriminator's networks
    :param gradient_penalty: Weight of the penalty ``(|grad_x logit| - 1)^2`` at points between expert
        and generator inputs (Gulrajani et al. 2017, as in Kostrikov et al. 2019); 0: none
    :param normalize_reward: Divide the learned reward by its running standard deviation (None: the
        algorithm's ``default_normalize_reward``)
    :param bc_epochs: Passes of behaviour cloning over the demonstrations that fit the generator's
        policy before the first rollout (needs an actor-critic policy); 0: none
    :param reward: The generator's reward from the discriminator's logit: "-log(1-D)" (GAIL's, always
        positive: it also pays for surviving), "log(D)" (always negative) or "log(D)-log(1-D)" (AIRL's,
        the logit itself); None: the algorithm's ``default_reward``
    :param state_only: The learned reward reads no action (GAIL: D(s, s'); AIRL: g(s))
    :param policy_kwargs: The generator policy's arguments
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param verbose: the verbosity level: 0 no output, 1 info, 2 debug
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
    :param _init_setup_model: Whether or not to build the networks at the creation of the instance
    """

    # What configs may name; the generator resolves the name itself (its own MlpPolicy).
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": ActorCriticPolicy,
                                                             "CnnPolicy": ActorCriticCnnPolicy}
    discriminator: nn.Module
    #: What ``reward=None`` and ``normalize_reward=None`` mean for this algorithm.
    default_reward: ClassVar[str] = "-log(1-D)"
    default_normalize_reward: ClassVar[bool] = True

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | str | None,
        dataset: str | OfflineData | None = None,
        generator: str = "ppo",
        generator_kwargs: dict[str, Any] | None = None,
        learning_rate: float | Schedule = 3e-4,
        n_disc_updates: int = 4,
        disc_batch_size: int = 256,
        disc_net_arch: list[int] | None = None,
        gradient_penalty: float = 0.0,
        normalize_reward: bool | None = None,
        bc_epochs: int = 0,
        reward: str | None = None,
        state_only: bool = False,
        policy_kwargs: dict[str, Any] | None = None,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(policy, env, learning_rate=learning_rate, policy_kwargs=policy_kwargs,
                         tensorboard_log=tensorboard_log, verbose=verbose, device=device, support_multi_env=True,
                         seed=seed, supported_action_spaces=(spaces.Discrete, spaces.Box))
        self.generator_id = generator
        self.generator_kwargs = dict(generator_kwargs or {})
        self.n_disc_updates = n_disc_updates
        self.disc_batch_size = disc_batch_size
        self.disc_net_arch = list(disc_net_arch) if disc_net_arch is not None else [64, 64]
        self.gradient_penalty = gradient_penalty
        self.normalize_reward = self.default_normalize_reward if normalize_reward is None else normalize_reward
        self.bc_epochs = bc_epochs
        self.reward = reward = self.default_reward if reward is None else reward
        self.state_only = state_only
        self.dataset_id: str | None = None
        self.dataset_hash: str | None = None
        self.demonstrations: OfflineData | None = None
        problems = [f"{name} must be at least 1, got {value}" for name, value in
                    (("n_disc_updates", n_disc_updates), ("disc_batch_size", disc_batch_size)) if value < 1]
        problems += [f"{name} must be non-negative, got {value}" for name, value in
                     (("gradient_penalty", gradient_penalty), ("bc_epochs", bc_epochs)) if value < 0]
        if reward not in REWARDS:
            problems.append(f"reward must be one of {', '.join(map(repr, REWARDS))}, got {reward!r}")
        if problems:
            raise ValueError("; ".join(problems))
        if dataset is not None:
            self.set_demonstrations(dataset)
        if _init_setup_model:
            self._setup_model()

    def _get_policy_from_name(self, policy_name: str) -> Any:
        return policy_name  # the generator's algorithm knows its own names

    # ----------------------------------------------------------------------------------------
    # Demonstrations, generator, discriminator

    def set_demonstrations(self, dataset: str | OfflineData) -> None:
        """Imitate ``dataset`` from now on (also after ``load``: a loaded model keeps only its id)."""
        from rlhub_offline.common import load_offline_data, same_space

        data = load_offline_data(dataset)
        for role, own, theirs in (("observation", self.observation_space, data.observation_space),
                                  ("action", self.action_space, data.action_space)):
            if own is not None and not same_space(own, theirs):
                raise ValueError(f"the demonstrations {data.dataset_id!r} have {role} space {theirs}, but the "
                                 f"environment has {own}; record them in the same environment")
        if data.n_transitions == 0:
            raise ValueError(f"the demonstrations {data.dataset_id!r} hold no transitions")
        self.demonstrations = data
        self.dataset_id, self.dataset_hash = data.dataset_id, data.content_hash
        self._expert = None

    def _setup_model(self) -> None:
        from rlhub.registry import get_algorithm

        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        spec = get_algorithm(self.generator_id)
        if spec.kind not in GENERATOR_KINDS:
            raise ValueError(f"the generator must learn by playing its environment ({' or '.join(GENERATOR_KINDS)}), "
                             f"and {self.generator_id} is {spec.kind}")
        if isinstance(self.env, VecNormalize):
            raise ValueError(f"{type(self).__name__} compares raw observations with the demonstrations: train "
                             "without normalize (the discriminator standardises observations itself)")
        generator_class = spec.load()
        self.reward_env = None if self.env is None else RewardVecEnv(self.env, self._reward_of_arrays,
                                                                      capacity=100_000 // self.env.num_envs)
        self.generator = generator_class(self.policy_class, self.reward_env, policy_kwargs=self.policy_kwargs,
                                         seed=self.seed, device=self.device, verbose=self.verbose,
                                         tensorboard_log=self.tensorboard_log, **self.generator_kwargs)
        self.policy_class = self.generator.policy_class
        self.policy = self.generator.policy
        self.discriminator = self._build_discriminator().to(self.device)
        self.discriminator_optimizer = th.optim.Adam(self.discriminator.parameters(), lr=self.lr_schedule(1))
        self.reward_statistics = RunningMeanStd(shape=())
        self._expert: Any = None
        self._sampling = th.Generator(device=self.device)
        self._sampling.manual_seed(self.seed if self.seed is not None else int(np.random.SeedSequence().entropy % 2**63))

    def _observation_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """The demonstrations' mean and spread per observation feature (zero and one without them:
        a loaded model's saved buffers replace these)."""
        size = int(np.prod(self.observation_space.shape))
        if self.demonstrations is None:
            return np.zeros(size), np.ones(size)
        flat = self.demonstrations.observations.reshape(self.demonstrations.n_transitions, -1).astype(np.float64)
        return flat.mean(axis=0), flat.std(axis=0)

    @abstractmethod
    def _build_discriminator(self) -> nn.Module:
        """The discriminator's networks (saved with the model)."""

    @abstractmethod
    def discriminator_logits(self, batch: Transitions) -> th.Tensor:
        """(B,) ``log D - log(1 - D)`` of each transition, D the probability that it is the expert's."""

    def learned_reward(self, batch: Transitions) -> th.Tensor:
        """(B,) the reward the generator gets for each transition (no gradient needed)."""
        return REWARDS[self.reward](self.discriminator_logits(batch))

    def _reward_of_arrays(self, transitions: Transitions) -> np.ndarray:
        batch = transitions.to_tensors(self.action_space, self.device)
        with th.no_grad():
            rewards = self.learned_reward(batch).cpu().numpy().astype(np.float64)
        if not self.normalize_reward:
            return rewards
        self.reward_statistics.update(rewards)
        return rewards / math.sqrt(float(self.reward_statistics.var) + 1e-8)

    # ----------------------------------------------------------------------------------------
    # Learning

    def _expert_batch(self) -> Transitions:
        from rlhub_offline.common import TransitionTensors as DatasetTensors

        if self._expert is None:
            if self.demonstrations is None and getattr(self, "dataset", None) is not None:
                self.set_demonstrations(self.dataset)  # given to load(), which only sets attributes
            if self.demonstrations is None:
                raise ValueError(f"{type(self).__name__} has no demonstrations to imitate: pass dataset= to the "
                                 "constructor or call set_demonstrations() (a loaded model keeps only their id)")
            self._expert = DatasetTensors(self.demonstrations, self.device)
        sampled = self._expert.sample(self.disc_batch_size, self._sampling)
        return Transitions(sampled.observations, sampled.actions, sampled.next_observations, sampled.terminations)

    def train_discriminator(self) -> None:
        """``n_disc_updates`` steps on the transitions since the last call against demonstrations; log how
        well it tells them apart and the returns, learned and true."""
        generated = self.reward_env.take_transitions().to_tensors(self.action_space, self.device)
        self.discriminator.train()
        self._update_learning_rate(self.discriminator_optimizer)
        totals: dict[str, float] = {}
        for _ in range(self.n_disc_updates):
            indices = th.randint(0, len(generated.observations), (self.disc_batch_size,), generator=self._sampling,
                                 device=self.device)
            fake = Transitions(*(getattr(generated, name)[indices] for name in
                                 ("observations", "actions", "next_observations", "terminations")))
            stats = self._discriminator_step(self._expert_batch(), fake)
            for name, value in stats.items():
                totals[name] = totals.get(name, 0.0) + float(value) / self.n_disc_updates
        self._n_updates += self.n_disc_updates
        for name, value in totals.items():
            self.logger.record(f"discriminator/{name}", value)
        learned = self.reward_env.episode_learned_returns
        if learned:
            self.logger.record("imitation/learned_ep_return", float(np.mean(learned)))
        if self.generator.ep_info_buffer:
            self.logger.record("imitation/true_ep_return", float(np.mean([info["r"] for info in self.generator.ep_info_buffer])))

    def _discriminator_step(self, expert: Transitions, fake: Transitions) -> dict[str, th.Tensor]:
        expert_logits, fake_logits = self.discriminator_logits(expert), self.discriminator_logits(fake)
        loss = (F.binary_cross_entropy_with_logits(expert_logits, th.ones_like(expert_logits))
                + F.binary_cross_entropy_with_logits(fake_logits, th.zeros_like(fake_logits))) / 2
        stats = {"loss": loss.detach(), "expert_accuracy": (expert_logits > 0).float().mean(),
                 "generator_accuracy": (fake_logits < 0).float().mean(),
                 "expert_d": th.sigmoid(expert_logits).mean().detach(),
                 "generator_d": th.sigmoid(fake_logits).mean().detach()}
        if self.gradient_penalty > 0:
            penalty = self._gradient_penalty(expert, fake)
            loss = loss + self.gradient_penalty * penalty
            stats["gradient_penalty"] = penalty.detach()
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.discriminator_optimizer.step()
        return stats

    def _gradient_penalty(self, expert: Transitions, fake: Transitions) -> th.Tensor:
        """``E[(|grad logit(x)| - 1)^2]`` at ``x`` drawn between expert and generator transitions
        (observations, next observations and Box actions mixed; Discrete actions taken from either)."""
        mix = th.rand(len(expert.observations), 1, generator=self._sampling, device=self.device)

        def between(first: th.Tensor, second: th.Tensor) -> th.Tensor:
            shape = (-1,) + (1,) * (first.dim() - 1)
            return (mix.reshape(shape) * first + (1 - mix.reshape(shape)) * second).requires_grad_(True)

        observations = between(expert.observations, fake.observations)
        next_observations = between(expert.next_observations, fake.next_observations)
        discrete = isinstance(self.action_space, spaces.Discrete)
        actions = th.where(mix.squeeze(1) > 0.5, expert.actions, fake.actions) if discrete else between(
            expert.actions, fake.actions)
        terminations = th.minimum(expert.terminations, fake.terminations)
        logits = self.discriminator_logits(Transitions(observations, actions, next_observations, terminations))
        inputs = [observations, next_observations] + ([] if discrete else [actions])
        gradients = th.autograd.grad(logits.sum(), inputs, create_graph=True, allow_unused=True)
        squared = sum((g.reshape(len(g), -1) ** 2).sum(dim=1) for g in gradients if g is not None)
        return ((th.sqrt(squared + 1e-12) - 1.0) ** 2).mean()

    def _pretrain_generator(self) -> None:
        """``bc_epochs`` passes of behaviour cloning over the demonstrations into the generator's policy."""
        from rlhub_offline.bc import pretrain

        if not isinstance(self.generator.policy, ActorCriticPolicy):
            raise ValueError(f"bc_epochs needs an actor-critic generator policy; {self.generator_id}'s is "
                             f"{type(self.generator.policy).__name__}")
        assert self.demonstrations is not None
        batch_size = 256
        n_steps = self.bc_epochs * math.ceil(self.demonstrations.n_transitions / batch_size)
        stats = pretrain(self.generator.policy, self.demonstrations, n_steps, batch_size=batch_size,
                         seed=self.seed or 0)
        for name, value in stats.items():
            self.logger.record(f"pretrain/{name}", value)

    def learn(
        self: SelfAdversarialImitation,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "run",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfAdversarialImitation:
        """Train the generator for ``total_timesteps`` environment steps, the discriminator after each rollout."""
        if self.reward_env is None:
            raise ValueError(f"{type(self).__name__} needs an environment to learn in: set_env() first")
        self._expert_batch()  # fail before any rollout without demonstrations
        self.generator.num_timesteps = self.num_timesteps  # a loaded imitator's count: its generator starts at 0
        pretrain = self.bc_epochs > 0 and self.num_timesteps == 0
        imitator_callback = AsOuterAlgorithm(self, callback, progress_bar, after_rollout=self.train_discriminator,
                                             before_training=self._pretrain_generator if pretrain else None)
        self.generator.learn(total_timesteps, callback=imitator_callback, log_interval=log_interval,
                             tb_log_name=tb_log_name, reset_num_timesteps=reset_num_timesteps)
        self.num_timesteps = self.generator.num_timesteps
        return self

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "generator", "reward_env", "demonstrations", "dataset", "_expert",
                "_sampling", "reward_statistics"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, tensors = self.generator._get_torch_save_params()
        return ([f"generator.{name}" for name in state_dicts] + ["discriminator", "discriminator_optimizer"],
                [f"generator.{name}" for name in tensors])

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset)
        self.reward_env = RewardVecEnv(self.env, self._reward_of_arrays, capacity=100_000 // self.env.num_envs)
        self.generator.set_env(self.reward_env, force_reset)

