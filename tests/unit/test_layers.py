"""Imports run one way: ``jobs → worker → db``, and the pure parts stay pure.

Every ``import`` statement is read from the source (including those inside
functions, which an import-time check would miss), so a backwards import fails
this test whether or not it would have formed a cycle at run time.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

# Which top-level packages each layer may import (besides itself).
# ``migrations`` is the schema's history and sits with ``db`` at the bottom.
LAYER_MAY_IMPORT: dict[str, frozenset[str]] = {
    "db": frozenset({"db", "migrations"}),
    "migrations": frozenset({"db", "migrations"}),
    "worker": frozenset({"worker", "db"}),
    "jobs": frozenset({"jobs", "worker", "db"}),
}
SIEVE_PACKAGES = frozenset(LAYER_MAY_IMPORT)

# Narrower rules inside the worker: what must never be imported from where.
# Extractors are pure (a path in, typed segments out): no database, no Celery,
# no model. The model runtime knows no database and no Celery. The settings
# groups and the error tree are leaves everything else may use.
FORBIDDEN_PREFIXES: dict[str, tuple[str, ...]] = {
    "worker.extractors": (
        "db",
        "sqlalchemy",
        "celery",
        "worker.model",
        "worker.pipeline",
        "worker.tasks",
        "worker.dispatch",
        "worker.recovery",
    ),
    "worker.model": ("db", "sqlalchemy", "celery"),
    "worker.sandbox": ("db", "sqlalchemy", "celery", "worker.model"),
    "worker.config": ("db", "sqlalchemy", "celery", "worker.model", "worker.pipeline"),
    "worker.errors": ("db", "celery", "worker.pipeline", "worker.model"),
    "worker.pipeline": ("celery",),
    "worker.analysis": ("db", "sqlalchemy", "celery"),
    "worker.windowing": ("db", "sqlalchemy", "celery"),
    "db": ("celery", "worker", "jobs"),
}


@dataclass(frozen=True)
class BackwardsImport:
    module: str
    line: int
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported} ({self.rule})"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """Every (line, absolute module name) an ``import`` in ``tree`` names.

    ``package`` is the package the module lives in, for relative imports.
    """
    found: list[tuple[int, str]] = []
    package_parts = package.split(".")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package_parts[: len(package_parts) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # "from worker import pipeline" imports worker.pipeline.
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return found


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def backwards_imports(root: Path) -> list[BackwardsImport]:
    """Every import under ``root`` that breaks the layer rules above."""
    problems: list[BackwardsImport] = []
    for package in sorted(SIEVE_PACKAGES):
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(root, path)
            package_name = module if path.name == "__init__.py" else module.rpartition(".")[0]
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for line, imported in imported_modules(tree, package_name or package):
                top = imported.split(".")[0]
                if top in SIEVE_PACKAGES and top not in LAYER_MAY_IMPORT[package]:
                    problems.append(
                        BackwardsImport(module, line, imported, f"{package} may not import {top}")
                    )
                    continue
                for scope, prefixes in FORBIDDEN_PREFIXES.items():
                    if not _matches(module, scope):
                        continue
                    for prefix in prefixes:
                        if _matches(imported, prefix) and not _matches(imported, scope):
                            problems.append(
                                BackwardsImport(
                                    module, line, imported, f"{scope} must not use {prefix}"
                                )
                            )
    return sorted(set(problems), key=lambda problem: (problem.module, problem.line))


def test_the_code_base_imports_only_downwards() -> None:
    problems = backwards_imports(REPOSITORY)
    assert not problems, "backwards imports:\n" + "\n".join(map(str, problems))


def _tree(root: Path, files: dict[str, str]) -> Path:
    for package in SIEVE_PACKAGES:
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("")
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


@pytest.mark.parametrize(
    ("relative", "source", "expected_rule"),
    [
        (
            "worker/tasks.py",
            "from jobs.settings import get_settings\n",
            "worker may not import jobs",
        ),
        (
            "worker/sweeper.py",
            "def f():\n    from jobs import dispatch\n",
            "worker may not import jobs",
        ),
        ("db/models.py", "import worker.errors\n", "db may not import worker"),
        (
            "worker/extractors/pdf.py",
            "from db.models import Item\n",
            "worker.extractors must not use db",
        ),
        (
            "worker/extractors/pdf.py",
            "from worker import model\n",
            "worker.extractors must not use worker.model",
        ),
        ("worker/model.py", "import sqlalchemy\n", "worker.model must not use sqlalchemy"),
        ("db/session.py", "from ..jobs import cli\n", "db may not import jobs"),
    ],
)
def test_a_deliberately_backwards_import_is_caught(
    tmp_path: Path, relative: str, source: str, expected_rule: str
) -> None:
    root = _tree(tmp_path, {relative: source})
    problems = backwards_imports(root)
    assert problems, f"{relative}: {source!r} was not caught"
    assert any(
        problem.rule.startswith(expected_rule) or expected_rule in problem.rule
        for problem in problems
    ), problems


def test_downward_imports_are_allowed(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "jobs/cli.py": "from worker import pipeline\nfrom db import audit\nimport jobs.status\n",
            "worker/pipeline.py": "from db.models import Item\nfrom worker import errors\n",
            "worker/extractors/pdf.py": "from worker import errors, media_types\nimport pymupdf\n",
            "db/migrate.py": "import migrations\n",
        },
    )
    assert backwards_imports(root) == []
