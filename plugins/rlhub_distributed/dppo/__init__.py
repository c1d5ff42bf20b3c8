from rlhub_distributed.dppo.dppo import DPPO

__all__ = ["DPPO"]
