"""Test helpers for rlhub and its plugins: the conformance suite every algorithm must pass."""

from rlhub.testing.conformance import (
    check_algorithm,
    check_config_file,
    check_spec,
    check_train_save_load,
    conformance_env_id,
)

__all__ = ["check_algorithm", "check_config_file", "check_spec", "check_train_save_load", "conformance_env_id"]
