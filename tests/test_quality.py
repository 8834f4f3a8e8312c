"""The repo's own checks: ruff (lint + format) and mypy strict stay clean, the public API is stable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import loader

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _check(*cmd: str) -> None:
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_lint_and_format_are_clean() -> None:
    _check(str(BIN / "ruff"), "check", ".")
    _check(str(BIN / "ruff"), "format", "--check", ".")


def test_mypy_strict_is_clean() -> None:
    _check(str(BIN / "mypy"))


def test_public_api() -> None:
    assert sorted(loader.__all__) == [
        "LoaderError",
        "RunReport",
        "Settings",
        "__version__",
        "run_pipeline",
    ]
    for name in loader.__all__:
        assert hasattr(loader, name)
