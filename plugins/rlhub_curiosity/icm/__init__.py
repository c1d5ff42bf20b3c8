"""The intrinsic curiosity module (Pathak et al. 2017)."""

from rlhub_curiosity.icm.icm import ICM

__all__ = ["ICM"]
