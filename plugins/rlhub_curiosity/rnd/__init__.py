"""Random network distillation (Burda et al. 2018)."""

from rlhub_curiosity.rnd.rnd import RND

__all__ = ["RND"]
