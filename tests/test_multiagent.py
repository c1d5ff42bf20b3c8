"""Multi-agent: PettingZoo envs behind rlhub's env factory, MADDPG and MATD3, and the commands."""

from __future__ import annotations

import pytest

from rlhub.testing import check_algorithm


@pytest.mark.parametrize("algo_id", ["maddpg", "matd3"])
def test_conformance(algo_id, tmp_path):
    check_algorithm(algo_id, tmp_path)
