"""The example payloads of tests/cases/, as bytes and as dicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CASES = Path(__file__).parent / "cases"


def case_bytes(name: str) -> bytes:
    """One example webhook body, exactly as stored (one line)."""
    return (CASES / f"{name}.json").read_bytes().strip()


def case(name: str) -> dict[str, Any]:
    return json.loads(case_bytes(name))  # type: ignore[no-any-return]


def line(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()
