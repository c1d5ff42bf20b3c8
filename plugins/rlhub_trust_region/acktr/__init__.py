"""ACKTR (Wu et al. 2017): actor-critic with K-FAC natural gradients, and the K-FAC optimizer itself."""

from rlhub_trust_region.acktr.acktr import ACKTR
from rlhub_trust_region.acktr.kfac import KFAC

__all__ = ["ACKTR", "KFAC"]

