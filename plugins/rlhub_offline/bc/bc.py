"""Behaviour cloning: fit a policy to the dataset's actions by maximum likelihood.

Discrete actions: the cross-entropy of a categorical policy. Box actions: the negative
log-likelihood of a diagonal Gaussian with a learned state-independent standard deviation, not MSE
on a deterministic policy, so that the cloned policy is SB3's ``ActorCriticPolicy`` unchanged: PPO
or GAIL's generator can start from it (:func:`pretrain`), and its spread says how much the data
disagrees. Its mean, which ``predict(deterministic=True)`` plays, is what MSE would fit (a
state-independent variance only rescales the loss).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from rlhub_offline.bc.policies import MlpPolicy
from rlhub_offline.common import OfflineAlgorithm, TransitionBatch, TransitionTensors, load_offline_data

if TYPE_CHECKING:
    from rlhub.datasets import OfflineData

def behaviour_cloning_loss(policy: ActorCriticPolicy, observations: th.Tensor, actions: th.Tensor,
                           ent_coef: float = 0.0) -> tuple[th.Tensor, dict[str, th.Tensor]]:
    """``L = -E[log pi(a|s)] - ent_coef * E[H(pi(.|s))]`` over the batch.

    :param policy: an ``ActorCriticPolicy`` (its actor only: the value head gets no gradient)
    :param observations: (B, *observation_shape)
    :param actions: (B,) int64 (Discrete) or (B, action_dim) float (Box, the environment's scale)
    :param ent_coef: weight of the entropy bonus
    :return: the loss and detached statistics (``neg_log_likelihood``, ``entropy``)
    """
    distribution = policy.get_distribution(observations)
    neg_log_likelihood = -distribution.log_prob(actions).mean()
    entropy = distribution.entropy()
    mean_entropy = entropy.mean() if entropy is not None else th.zeros((), device=observations.device)
    loss = neg_log_likelihood - ent_coef * mean_entropy
    return loss, {"neg_log_likelihood": neg_log_likelihood.detach(), "entropy": mean_entropy.detach()}


def _gradient_step(policy: ActorCriticPolicy, batch: TransitionBatch, ent_coef: float,
                   max_grad_norm: float | None) -> dict[str, th.Tensor]:
    loss, stats = behaviour_cloning_loss(policy, batch.observations, batch.actions, ent_coef)
    policy.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm is not None:
        th.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
    policy.optimizer.step()
    stats["loss"] = loss.detach()
    return stats


def pretrain(policy: ActorCriticPolicy, data: str | OfflineData, n_steps: int, *, batch_size: int = 256,
             ent_coef: float = 0.0, max_grad_norm: float | None = None, seed: int = 0) -> dict[str, float]:
    """Fit ``policy`` (e.g. a PPO or GAIL generator's) to ``data`` by behaviour cloning, in place, with
    its own optimizer and learning rate.

    :param data: the dataset (or its id or path); its spaces must be the policy's
    :param n_steps: gradient steps
    :return: the statistics of the last step (``loss``, ``neg_log_likelihood``, ``entropy``)
    """
    data = load_offline_data(data)
    if not isinstance(data.action_space, type(policy.action_space)):
        raise ValueError(f"the policy acts in {policy.action_space}, the dataset {data.dataset_id!r} in {data.action_space}")
    transitions = TransitionTensors(data, policy.device)
    generator = th.Generator(device=policy.device)
    generator.manual_seed(seed)
    policy.set_training_mode(True)
    stats: dict[str, th.Tensor] = {}
    for _ in range(n_steps):
        stats = _gradient_step(policy, transitions.sample(batch_size, generator), ent_coef, max_grad_norm)
    policy.set_training_mode(False)
    return {name: float(value) for name, value in stats.items()}


class BC(OfflineAlgorithm):
    """
    Behaviour cloning (Pomerleau 1991; Bain & Sammut 1995): supervised learning of the dataset's
    actions, cross-entropy for Discrete actions, Gaussian log-likelihood for Box actions.

    Paper: https://proceedings.neurips.cc/paper/1988/hash/812b4ba287f5ee0bc9d43bbf5bbe87fb-Abstract.html
    Code: https://github.com/takuseno/d3rlpy (d3rlpy.algos.BC, DiscreteBC)

    :param policy: The policy model to use (MlpPolicy: SB3's ActorCriticPolicy)
    :param env: The environment to evaluate on (if registered in Gym, can be str), or None
    :param dataset: The dataset, or its id or path for ``rlhub.datasets.load_dataset`` (not saved)
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param batch_size: Transitions per gradient step
    :param ent_coef: Weight of the policy's entropy bonus
    :param max_grad_norm: The maximum value for the gradient clipping (None: no clipping)
    :param stats_window_size: Window size for the rollout logging (unused offline)
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation
    :param verbose: the verbosity level: 0 no output, 1 info, 2 debug
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy}
    policy: ActorCriticPolicy

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str | None,
        dataset: str | OfflineData | None = None,
        learning_rate: float | Schedule = 1e-3,
        batch_size: int = 256,
        ent_coef: float = 0.0,
        max_grad_norm: float | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy, env, dataset, learning_rate=learning_rate, batch_size=batch_size, policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log, verbose=verbose, seed=seed,
            device=device, supported_action_spaces=(spaces.Discrete, spaces.Box),
        )
        self.ent_coef = ent_coef
        self.max_grad_norm = max_grad_norm
        if max_grad_norm is not None and max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be positive or None, got {max_grad_norm}")
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(self.observation_space, self.action_space, self.lr_schedule,
                                        **self.policy_kwargs).to(self.device)

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []

    def _scheduled_optimizers(self) -> list[th.optim.Optimizer]:
        return [self.policy.optimizer]

    def train_step(self, batch: TransitionBatch) -> dict[str, th.Tensor]:
        return _gradient_step(self.policy, batch, self.ent_coef, self.max_grad_norm)
