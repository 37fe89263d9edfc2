"""Markers that follow from where a test lives.

Every test under ``tests/integration/`` needs a service, a worker process or
the real model, and is marked ``integration`` here (a ``pytestmark`` in a
conftest file has no effect), so ``-m "not integration"`` selects none of it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """In CI (``CI`` set) a skipped test fails: every skip here is a tool that is missing.

    ``scripts/setup`` installs Orthanc, dicom3tools, LibreOffice and the rest, so
    a skip in CI means an install step broke, and a green run would hide it.
    """
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI, where every tool must be installed: {reason}"
