"""Markers that follow from where a test lives.

Every test under ``tests/integration/`` needs a service, a worker process or
the real model, and is marked ``integration`` here (a ``pytestmark`` in a
conftest file has no effect), so ``-m "not integration"`` selects none of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
