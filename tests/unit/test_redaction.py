"""The log redaction processor: one probe for a clean line, every secret shape caught."""

from __future__ import annotations

import pytest

from gateway.telemetry.logging import REDACTED, redact_processor, redact_value

CLEAN = {"event": "request", "request_id": "abc", "route": "/v2/users/me", "status": 200}


@pytest.mark.parametrize(
    "text",
    [
        "retrying with Authorization: Bearer s3cr3t-value",
        "AUTHORIZATION: BEARER s3cr3t-value",
        "GET /v2/users/me?ACCESS_TOKEN=s3cr3t-value&page=2",
        '{"refresh_token": "s3cr3t-value"}',
        "client_\u017fecret=s3cr3t-value",  # a long s is an s to the (?i) substitutions too
    ],
)
def test_a_secret_in_any_field_among_clean_ones_is_redacted(text: str) -> None:
    line = redact_processor(None, "info", {**CLEAN, "note": text})
    assert "s3cr3t-value" not in str(line), line
    assert REDACTED in line["note"]
    assert {k: line[k] for k in CLEAN} == CLEAN  # the clean fields are left as they were


def test_a_clean_line_is_left_alone_and_secret_named_fields_are_blanked() -> None:
    assert redact_processor(None, "info", dict(CLEAN)) == CLEAN
    line = redact_processor(
        None, "info", {**CLEAN, "access_token": "plain", "nested": {"password": "x"}}
    )
    assert line["access_token"] == REDACTED
    assert line["nested"] == {"password": REDACTED}


def test_words_that_only_look_secret_keep_their_text() -> None:
    assert redact_value("tokens per window") == "tokens per window"
