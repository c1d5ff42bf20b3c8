"""An rlhub plugin as a third party writes one: hooks here, the algorithm in its own module."""

from pathlib import Path

from rlhub.hookspecs import hookimpl
from rlhub.spec import AlgorithmSpec


@hookimpl
def rlhub_algorithms():
    return [AlgorithmSpec("example_vpg", "rlhub_example_plugin.vpg:VPG", ("Discrete", "Box"),
                          summary="Vanilla policy gradient with a value baseline (example plugin)")]


@hookimpl
def rlhub_zoo_config_dirs():
    return [Path(__file__).parent / "zoo_configs"]
