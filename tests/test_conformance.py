"""Every registered algorithm passes the conformance suite of rlhub.testing."""

import pytest

from rlhub.registry import list_algorithms
from rlhub.testing import check_algorithm


@pytest.mark.parametrize("algo_id", [spec.algo_id for spec in list_algorithms()])
def test_conformance(algo_id, tmp_path):
    check_algorithm(algo_id, tmp_path)
