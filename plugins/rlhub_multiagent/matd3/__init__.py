from rlhub_multiagent.matd3.matd3 import MATD3

__all__ = ["MATD3"]
