"""Sample bodies come from the registry: every property column of every collection gets
plausible values, with no line about any collection in ``loader/domain/sample.py``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.domain.registry import COLLECTIONS
from loader.domain.sample import generate_events
from loader.warehouse.collections import enable_collections
from tests.support.warehouse import load_lines, rows


def test_every_property_column_of_every_collection_is_filled_by_a_sample(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    enable_collections(engine, schema="drip")
    report = load_lines(settings, tmp_path, generate_events(events=20_000, seed=7))
    assert report.rejected == 0
    empty: Counter[str] = Counter()
    for c in COLLECTIONS:
        found = rows(
            engine,
            f"SELECT x.*, r.payload AS raw FROM drip.{c.name} x "
            "JOIN drip._raw_events r ON r._event_key = x.id",
        )
        assert found, f"the sample has no {c.name} event"
        by_event = {s.drip_event: s for s in c.sources}
        for row in found:
            source = by_event[row["raw"]["event"]]
            sent = row["raw"]["data"]["properties"]
            for prop in c.properties:
                if source.reads is not None and prop.column not in source.reads:
                    continue  # this Drip event does not carry it (unsubscribe from all)
                odd = prop.type == "text" and isinstance(sent.get(prop.path), dict | list)
                if row[prop.column] is None and not odd:  # the wrong shape lands as NULL
                    empty[f"{c.name}.{prop.column}"] += 1
            for extra in c.context:
                if row[extra.column] is None:
                    empty[f"{c.name}.{extra.column}"] += 1
    assert empty == Counter()
