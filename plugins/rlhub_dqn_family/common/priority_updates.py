"""Importance weights and priority updates for SB3's own off-policy algorithms, without their loops.

SB3's DQN, QR-DQN, SAC, TD3 and DDPG read a ``PrioritizedReplayBuffer`` like any buffer, but their
losses take no sample weights and return no TD errors. Both are reached through the gradient of
the loss at the online network's output on the sampled batch: scaling a sample's row of that
gradient by its importance weight is exactly the gradient of the weighted loss, and for each
algorithm's loss the row is a known multiple of the sample's TD error. So a forward hook on the
online network (the Q-network or critic) registers a gradient hook on the output of the forward
pass that reads the sampled batch; nothing of the training loops is copied.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn

from rlhub_dqn_family.common.prioritized_replay import PrioritizedReplayBuffer, PrioritizedReplayBufferSamples


@dataclass(frozen=True)
class LossShape:
    """Where an algorithm's TD loss meets its online network, and how its gradient encodes the TD error.

    :param network: attribute of the algorithm holding the online network
    :param reads_actions: the network takes the sampled actions too (a critic Q(s, a))
    :param gradient_per_error: d loss / d output for one sample, per unit of TD error, times the batch size
    """

    network: str
    reads_actions: bool
    gradient_per_error: float


# From each algorithm's critic loss, a mean over the batch:
# DQN: Huber(q, y), whose gradient is clip(q - y, -1, 1): the priority is the clipped TD error, as in
#      Schaul et al.'s Atari experiments. QR-DQN: the quantile Huber loss summed over quantiles; its
#      gradient's size over the quantiles stands for |delta|. SAC: 0.5 * sum_k MSE(q_k, y).
#      TD3 and DDPG: sum_k MSE(q_k, y).
LOSS_SHAPES = {
    "DQN": LossShape("q_net", reads_actions=False, gradient_per_error=1.0),
    "QRDQN": LossShape("quantile_net", reads_actions=False, gradient_per_error=1.0),
    "SAC": LossShape("critic", reads_actions=True, gradient_per_error=1.0),
    "TD3": LossShape("critic", reads_actions=True, gradient_per_error=2.0),
    "DDPG": LossShape("critic", reads_actions=True, gradient_per_error=2.0),
}


def has_loss_shape(model) -> bool:
    """Whether :class:`PriorityUpdates` knows ``model``'s loss (an algorithm of its own updates priorities itself)."""
    return any(cls.__name__ in LOSS_SHAPES for cls in type(model).__mro__)


def loss_shape(model) -> LossShape:
    for cls in type(model).__mro__:
        if cls.__name__ in LOSS_SHAPES:
            return LOSS_SHAPES[cls.__name__]
    raise TypeError(f"PrioritizedReplayBuffer updates priorities for {', '.join(LOSS_SHAPES)} (and their "
                    f"subclasses); {type(model).__name__} computes its own TD errors: call "
                    "replay_buffer.update_priorities(samples.leaves, td_errors) in its train step")


class PriorityUpdates:
    """Attach a :class:`PrioritizedReplayBuffer` to one of SB3's off-policy algorithms (see module doc).

    Also anneals the buffer's ``beta`` with the algorithm's training progress.
    """

    def __init__(self, model) -> None:
        buffer = model.replay_buffer
        if not isinstance(buffer, PrioritizedReplayBuffer):
            raise TypeError(f"{type(model).__name__}'s replay buffer is a {type(buffer).__name__}, "
                            "not a PrioritizedReplayBuffer")
        self.shape = loss_shape(model)
        self.buffer = buffer
        buffer.progress = lambda: 1.0 - model._current_progress_remaining
        network: nn.Module = getattr(model, self.shape.network)
        self._handle = network.register_forward_hook(self._on_forward)
        self._errors: list[th.Tensor] = []

    def detach(self) -> None:
        self._handle.remove()

    def _on_forward(self, module: nn.Module, inputs: tuple, output) -> None:
        batch = self.buffer.last_batch
        if batch is None or not th.is_grad_enabled() or inputs[0] is not batch.observations:
            return  # the target network's pass, an actor loss's, or acting
        if self.shape.reads_actions and inputs[1] is not batch.actions:
            return  # a critic evaluating the policy's actions (SAC's actor loss)
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        self._errors = []
        for tensor in outputs:
            if tensor.requires_grad:
                tensor.register_hook(lambda grad, count=len(outputs): self._on_gradient(grad, batch, count))

    def _on_gradient(self, grad: th.Tensor, batch: PrioritizedReplayBufferSamples, count: int) -> th.Tensor:
        batch_size = grad.shape[0]
        per_sample = grad.reshape(batch_size, -1).abs().sum(dim=1) * batch_size / self.shape.gradient_per_error
        self._errors.append(per_sample.detach())
        if len(self._errors) == count:  # every critic's gradient is in: one priority per sample
            self.buffer.update_priorities(batch.leaves, th.stack(self._errors).mean(dim=0))
        weights = batch.weights.reshape(batch_size, *([1] * (grad.dim() - 1)))
        return grad * weights


class PrioritizedReplayCallback(BaseCallback):
    """Attaches :class:`PriorityUpdates` for the run (``model.learn(..., callback=PrioritizedReplayCallback())``)."""

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.updates: PriorityUpdates | None = None

    def _on_training_start(self) -> None:
        if isinstance(self.model.replay_buffer, PrioritizedReplayBuffer) and self.updates is None:
            self.updates = PriorityUpdates(self.model)

    def _on_training_end(self) -> None:
        if self.updates is not None:
            self.updates.detach()
            self.updates = None

    def _on_step(self) -> bool:
        return True


