"""The collection registry is the one source of what a collection is (spec §2, §9): every
statement and list derived from it covers every collection, so adding one cannot be half done."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loader.domain import registry
from loader.domain.events import _PROPERTY_FIELDS, EMAIL_EVENTS
from loader.domain.registry import COLLECTIONS, DEFAULT_ON, Collection, Property, Source
from loader.errors import ConfigError
from loader.pipeline.emit import CLAIM_COLUMNS
from loader.pipeline.transform import ADDED_COUNTS
from loader.warehouse import mapping
from loader.warehouse.sqlfiles import read_sql
from loader.warehouse.tables import COLLECTION_PROPERTIES, build_metadata

ROOT = Path(__file__).resolve().parents[2]
NAMES = [c.name for c in COLLECTIONS]


def test_six_email_collections_and_the_22_other_drip_events() -> None:
    assert DEFAULT_ON == (  # in the spec's order
        "email_delivered",
        "email_opened",
        "email_link_clicked",
        "email_unsubscribed",
        "email_bounced",
        "email_marked_as_spam",
    )
    assert len(registry.OPT_IN) == 22
    assert len(registry.BY_DRIP_EVENT) == 29  # spec §1: Drip has 29 webhook events
    assert {e: (x.slug, x.name) for e, x in EMAIL_EVENTS.items()} == {
        e: (c.name, c.event_text) for e, c in registry.BY_DRIP_EVENT.items() if c.email
    }


def test_opt_in_names_follow_the_mechanical_rule_of_spec_9() -> None:
    tag = registry.BY_NAME["subscriber_applied_tag"]
    assert (tag.drip_events, tag.event_text) == (
        ("subscriber.applied_tag",),
        "Subscriber Applied Tag",
    )
    for c in COLLECTIONS:
        if not c.email:
            (event,) = c.drip_events
            assert c.name == event.replace(".", "_")
            assert c.event_text == " ".join(w.capitalize() for w in c.name.split("_"))


def test_the_columns_of_spec_9() -> None:
    columns = {c.name: c.columns for c in COLLECTIONS if not c.email}
    assert columns["subscriber_created"] == ()
    assert columns["subscriber_marked_as_undeliverable"] == ("source",)
    assert columns["subscriber_completed_campaign"] == ("campaign_id", "campaign_name")
    assert columns["subscriber_updated_alias"] == (
        "identifier",
        "value",
        "previous_value",
        "source",
    )
    assert columns["subscriber_updated_lifetime_value"] == ("value", "previous_value", "source")
    assert columns["subscriber_updated_time_zone"] == ("value", "previous_value")
    assert columns["subscriber_clicked_trigger_link"] == ("url", "trigger_id", "source")
    assert columns["subscriber_updated_lead_score"] == ("lead_score", "previous_lead_score")
    custom = registry.BY_NAME["subscriber_performed_custom_event"]
    assert [(p.column, p.type) for p in custom.properties] == [
        ("action", "text"),
        ("properties", "jsonb"),
    ]
    trigger = registry.BY_NAME["subscriber_clicked_trigger_link"]
    assert [(x.column, x.key) for x in trigger.context] == [("context_ip", "ip_address")]


def test_landing_validates_every_property_the_email_collections_read() -> None:
    # spec §6: an email event with a property of the wrong type is rejected at landing, so
    # the mapping can read email properties without the shape checks opt-in ones need
    read = {x.key for c in COLLECTIONS if c.email for x in c.context}
    for c in COLLECTIONS:
        fixed = {column for s in c.sources for column, _ in s.fixed}
        if c.email:
            read |= {p.path for p in c.properties if p.column not in fixed}
    assert read == set(_PROPERTY_FIELDS)


def test_every_table_and_property_column_has_a_description() -> None:
    for c in COLLECTIONS:
        assert c.description.strip()
        assert all(p.description.strip() for p in c.properties)


def test_every_derived_statement_and_list_covers_every_collection() -> None:
    tables = build_metadata("drip").tables
    common = [col.name for col in tables["drip.tracks"].columns]
    tail = mapping.map_tail(mapping.ALL)
    claim = mapping.claim_statement(mapping.ALL).text
    backfill = mapping.backfill_statement(mapping.ALL).text
    params = mapping.map_params(mapping.ALL)
    for c in COLLECTIONS:
        table = tables[f"drip.{c.name}"]
        assert [col.name for col in table.columns] == common + list(c.columns)
        assert COLLECTION_PROPERTIES[c.name] == c.columns
        for statement in (tail, backfill):
            assert f"INSERT INTO {c.name} (" in statement
            assert f"FROM mapped WHERE event = '{c.name}'" in statement
            assert f"(SELECT count(*) FROM add_{c.name}) AS {c.name}," in statement
        assert f"FROM {c.name} x JOIN claimed c" in claim
        for event in c.drip_events:
            assert params["drip_events"].count(event) == 1
        assert set(c.columns) <= set(CLAIM_COLUMNS)
    assert claim.count("UNION ALL") == len(COLLECTIONS) - 1
    assert ADDED_COUNTS == ("tracks", *registry.DEFAULT_ON, "outbox", "subscribers")
    # the sample writes every Drip event of the registry in some proportion
    assert all(s.sample_weight > 0 for c in COLLECTIONS for s in c.sources)


def test_the_default_statement_maps_only_the_six_email_collections() -> None:
    tail = mapping.map_tail(registry.DEFAULT_ON)
    assert tail.count("INSERT INTO") == 1 + 6 + 2  # tracks, six collections, outbox, snapshots
    assert not any(name in tail for name in registry.OPT_IN)
    assert "jsonb_typeof(p ->" not in tail  # email properties were validated at landing
    empty = mapping.map_tail(())
    assert empty.count("INSERT INTO") == 3


def test_the_analyst_views_list_the_email_collections() -> None:
    daily = read_sql("views/daily_email_activity.sql")
    listed = re.search(r"WHERE event IN \(([^)]*)\)", daily)
    assert listed is not None
    assert re.findall(r"'(\w+)'", listed.group(1)) == list(registry.DEFAULT_ON)
    performance = read_sql("views/email_performance.sql")
    with_email_id = [c.name for c in COLLECTIONS if c.email and "email_id" in c.columns]
    assert re.findall(r"FROM (email_\w+)\n", performance) == [*with_email_id, "email_events"]
    assert "FROM email_unsubscribed\n" in read_sql("views/campaign_unsubscribes.sql")


def test_adding_a_collection_touches_the_registry_and_a_revision() -> None:
    # Outside loader/domain/registry.py no module or SQL file names an opt-in collection or
    # its Drip event (the sample reads their weights and examples from the registry), so a
    # new entry needs no other edit there; its table comes from a revision (and
    # migrate.HEAD), checked by alembic check.
    sources = [*ROOT.glob("loader/**/*.py"), *ROOT.glob("sql/**/*.sql")]
    for c in COLLECTIONS:
        if c.email:
            continue
        naming = {
            str(path.relative_to(ROOT))
            for path in sources
            if c.name in path.read_text(encoding="utf-8")
            or any(f'"{e}"' in path.read_text(encoding="utf-8") for e in c.drip_events)
        }
        assert naming == {"loader/domain/registry.py"}, c.name
    revisions = [p.read_text() for p in ROOT.glob("migrations/versions/*.py")]
    assert all(any(f'"{c.name}"' in r for r in revisions) for c in COLLECTIONS)


def test_the_registry_refuses_entries_that_would_break_the_sql() -> None:
    extra = Collection(
        "subscriber_example_event",
        "Subscriber Example Event",
        (Source("subscriber.example_event"),),
        (Property("reason", "Why.", examples=("because",)),),
        "One row per example event.",
    )
    registry.check((*COLLECTIONS, extra))
    silent = Collection(
        "subscriber_example_event",
        "Subscriber Example Event",
        (Source("subscriber.example_event"),),
        (Property("reason", "Why."),),
        "One row per example event.",
    )
    with pytest.raises(ValueError, match="needs examples"):  # its sample column would be NULL
        registry.check((*COLLECTIONS, silent))
    with pytest.raises(ValueError, match="defined twice"):
        registry.check((*COLLECTIONS, extra, extra))
    again = Collection("other", "Other", (Source("subscriber.applied_tag"),), (), "d")
    with pytest.raises(ValueError, match="mapped twice"):
        registry.check((*COLLECTIONS, again))
    with pytest.raises(ValueError, match="not a plain identifier"):
        registry.check((Collection("Bad Name", "X", (), (), "d"),))
    typed = Collection(
        "other",
        "Other",
        (Source("subscriber.other"),),
        (Property("tag", "d", type="jsonb", examples=({},)),),
        "d",
    )
    with pytest.raises(ValueError, match="two types"):
        registry.check((*COLLECTIONS, typed))
    with pytest.raises(ValueError, match="lacks"):
        fixed = Source("subscriber.other", fixed=(("scope", "x"),))
        registry.check((Collection("other", "Other", (fixed,), (), "d"),))


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (
            ["subscriber_aplied_tag"],
            "no collection named subscriber_aplied_tag: did you mean subscriber_applied_tag?",
        ),
        (
            ["subscriber.aplied_tag", "email_open"],
            "no collection named subscriber.aplied_tag: did you mean subscriber.applied_tag?; "
            "no collection named email_open: did you mean email_opened?",
        ),
        (
            ["subscriber_applied_tag", "tags"],
            "no collection named tags: `drip-loader collections list` shows the 28 collections "
            "(a table name, or a Drip event such as subscriber.applied_tag)",
        ),
        ([], "name at least one collection (see `drip-loader collections list`)"),
    ],
)
def test_a_name_that_is_no_collection_is_refused_with_the_closest_one(
    names: list[str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        registry.resolve(names)
    assert str(caught.value) == message


def test_collections_are_named_by_table_or_by_drip_event_in_registry_order() -> None:
    assert registry.resolve(["subscriber_removed_tag", "email_opened"]) == (
        "email_opened",
        "subscriber_removed_tag",
    )
    assert registry.resolve(
        ["subscriber.applied_tag", "subscriber.unsubscribed_all", "email_unsubscribed"]
    ) == ("email_unsubscribed", "subscriber_applied_tag")
    assert registry.email_collections(("email_opened", "subscriber_applied_tag")) == (
        "email_opened",
    )
