"""The debugger's masking: what of a Drip body counts as personal data, and what stays."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loader.serve.debugger.masking import mask_address, mask_emails, mask_json, mask_text
from tests.casefiles import case

PERSON: dict[str, Any] = {
    "event": "subscriber.clicked_email",
    "data": {
        "account_id": "9999999",
        "subscriber": {
            "id": "z1togz2hcjrkpp5treip",
            "email": "john.smith@acme.com",
            "user_id": "u_123",
            "first_name": "John",
            "last_name": "Smith",
            "address1": "1 Main St",
            "city": "Springfield",
            "zip": "12345",
            "phone": 5551234567,
            "sms_number": "+15551234567",
            "visitor_uuid": "7c1e2f",
            "custom_fields": {"company": "Acme", "shirt_size": "L", "empty": None},
            "tags": ["Customer"],
            "time_zone": "America/Los_Angeles",
            "lead_score": 42,
            "ip_address": "198.51.100.4",
        },
        "properties": {
            "delivery_id": "99999",
            "email_subject": "Hello",
            "url": "https://www.example.com/?who=john.smith%40acme.com&utm_source=drip",
            "ip_address": "203.0.113.7",
            "user_agent": "Mozilla/5.0",
            "previous_value": "old.address@acme.com",
        },
    },
    "occurred_at": "2026-10-06T15:52:58Z",
}
SECRETS = (
    "john.smith",
    "John",
    "Smith",
    "1 Main St",
    "Springfield",
    "12345",
    "5551234567",
    "7c1e2f",
    "Acme",
    "198.51.100.4",
    "203.0.113.7",
    "Mozilla",
    "old.address",
)


def test_a_body_keeps_its_shape_ids_and_domains_and_loses_every_personal_value() -> None:
    masked = mask_json(PERSON)
    subscriber, properties = masked["data"]["subscriber"], masked["data"]["properties"]
    assert subscriber["email"] == "j***@acme.com"
    assert (subscriber["id"], subscriber["user_id"], masked["data"]["account_id"]) == (
        "z1togz2hcjrkpp5treip",
        "u_123",
        "9999999",
    )
    assert subscriber["custom_fields"] == {"company": "***", "shirt_size": "***", "empty": None}
    assert (subscriber["tags"], subscriber["lead_score"]) == (["Customer"], 42)
    assert subscriber["time_zone"] == "America/Los_Angeles"
    assert properties["url"] == "https://www.example.com/?who=j***%40acme.com&utm_source=drip"
    assert (properties["delivery_id"], properties["email_subject"]) == ("99999", "Hello")
    for key in ("first_name", "last_name", "address1", "city", "zip", "phone", "sms_number"):
        assert subscriber[key] == "***", key
    assert properties["ip_address"] == properties["user_agent"] == "***"
    text = json.dumps(masked)
    for secret in SECRETS:
        assert secret not in text, secret
    assert masked["occurred_at"] == PERSON["occurred_at"]


def test_the_spec_examples_lose_their_emails() -> None:
    for name in ("email_link_clicked", "email_unsubscribed_campaign", "applied_tag"):
        body = case(name)
        masked = json.dumps(mask_json(body))
        email = body["data"]["subscriber"].get("email")
        if email:
            assert email not in masked
            assert f"{email[0]}***@{email.split('@')[1]}" in masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("john@acme.com", "j***@acme.com"),
        ("anaïs.dupont@exemple.fr", "a***@exemple.fr"),
        ("<José.Núñez@correo.es>", "<J***@correo.es>"),
        ("write to bob+drip@ex.co.uk, or", "write to b***@ex.co.uk, or"),
        ("?email=kim%40example.org&x=1", "?email=k***%40example.org&x=1"),
        ("a@b.io c@d.io", "a***@b.io c***@d.io"),
        ("x" * 300 + "@long.example", "x***@long.example"),
        ("no address @ here", "no address @ here"),
    ],
)
def test_emails_are_masked_whole_wherever_they_are(text: str, masked: str) -> None:
    assert mask_emails(text) == masked


def test_a_value_under_email_that_is_no_address_is_masked_too() -> None:
    assert mask_address("john@acme.com") == "j***@acme.com"
    assert mask_address("not-an-address") == "n***"


def test_text_that_is_not_json_is_masked_too() -> None:
    head = json.dumps(PERSON)[:-60]  # the head of a body over the limit: not JSON any more
    masked = mask_text(head)
    for secret in SECRETS:
        assert secret not in masked, secret
    assert '"first_name": "***"' in masked and '"custom_fields": {"company": "***"' in masked
    cut = '{"subscriber": {"last_name": "Smi'
    assert mask_text(cut) == '{"subscriber": {"last_name": "***"'


def test_a_long_run_without_an_address_is_masked_in_linear_time() -> None:
    import time

    started = time.perf_counter()
    mask_text("x" * 200_000 + "@" + "y" * 200_000)
    mask_text("@a.io" * 50_000)
    assert time.perf_counter() - started < 2.0
