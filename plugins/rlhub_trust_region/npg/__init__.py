"""NPG (Kakade 2001): natural policy gradient with a fixed step size."""

from rlhub_trust_region.npg.npg import NPG

__all__ = ["NPG"]
