"""Built-in plugin: offline RL, learning from a fixed dataset (behaviour cloning, CQL, Decision Transformer).

One subpackage per algorithm, its policies and losses beside it: :mod:`.bc`, :mod:`.cql`,
:mod:`.decision_transformer`; what they share, the dataset held as tensors and the gradient-step
``learn`` loop, in :mod:`.common`. The hook implementations name classes by import path, so listing
algorithms imports no torch.
"""

from __future__ import annotations

from rlhub.hookspecs import hookimpl
from rlhub.spec import AlgorithmSpec

_VECTOR_OBSERVATIONS = ("Box",)


@hookimpl
def rlhub_algorithms() -> list[AlgorithmSpec]:
    return [
        AlgorithmSpec(
            "bc", "rlhub_offline.bc:BC", ("Discrete", "Box"), _VECTOR_OBSERVATIONS, kind="offline",
            summary="Behaviour cloning: maximum likelihood of the dataset's actions (categorical or Gaussian policy)",
        ),
        AlgorithmSpec(
            "cql", "rlhub_offline.cql:CQL", ("Discrete", "Box"), _VECTOR_OBSERVATIONS, kind="offline",
            summary="Conservative Q-learning: Double DQN (Discrete) or SAC (Box) with the CQL(H) penalty",
        ),
        AlgorithmSpec(
            "decision_transformer", "rlhub_offline.decision_transformer:DecisionTransformer", ("Discrete", "Box"),
            _VECTOR_OBSERVATIONS, kind="offline",
            summary="Decision Transformer: a causal transformer acting on return-to-go, states and actions",
        ),
    ]
