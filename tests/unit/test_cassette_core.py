"""Pure cassette rules: record modes, matching, redaction and the secret scan."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.core.interactions import reply_parts, to_interaction, with_length
from gateway.core.links import HARVEST_ID as ID
from gateway.core.links import public_moves, upstream_moves
from gateway.core.matchers import account_tag, closest, differences, shape_of, summary
from gateway.core.record_mode import Action, decide, replay_action
from gateway.core.redact import find_secrets, interaction_text, redact_interaction
from gateway.policy.load import parse_policy
from gateway.policy.schema import RedactionRules
from gateway.settings import RecordMode

API = "https://api.harvestapp.com"


@pytest.mark.parametrize(
    ("mode", "existed", "playable", "action"),
    [
        (RecordMode.ONCE, False, False, Action.RECORD),
        (RecordMode.ONCE, True, True, Action.PLAY),
        (RecordMode.ONCE, True, False, Action.REFUSE),
        (RecordMode.NEW_EPISODES, True, True, Action.PLAY),
        (RecordMode.NEW_EPISODES, True, False, Action.RECORD),
        (RecordMode.NEW_EPISODES, False, False, Action.RECORD),
        (RecordMode.ALL, True, True, Action.RECORD),
        (RecordMode.ALL, False, False, Action.RECORD),
        (RecordMode.NONE, True, True, Action.PLAY),
        (RecordMode.NONE, True, False, Action.REFUSE),
        (RecordMode.NONE, False, False, Action.REFUSE),
    ],
)
def test_record_mode_decisions_follow_vcrpy(mode, existed, playable, action):
    assert decide(mode, existed=existed, playable=playable) is action


def test_replay_mode_never_records():
    assert replay_action(playable=True) is Action.PLAY
    assert replay_action(playable=False) is Action.REFUSE


def test_query_order_and_blank_values_do_not_matter_but_duplicates_do():
    a = shape_of("GET", f"{API}/v2/users?page=2&per_page=100", {})
    assert a == shape_of("GET", f"{API}/v2/users?per_page=100&page=2&is_active=", {})
    assert a != shape_of("GET", f"{API}/v2/users?page=2&page=2&per_page=100", {})


def test_vcrpy_default_fields_compare_as_vcrpy_does():
    a = shape_of("GET", "https://API.harvestapp.com:443/v2/users", {})
    b = shape_of("GET", f"{API}/v2/users", {})
    assert differences(a, b) == {}  # host lower-cased, port defaulted by scheme
    c = shape_of("get", "http://api.harvestapp.com/v2/users", {})
    assert set(differences(c, b)) == {"method", "scheme", "port"}


def test_redacted_parameters_are_ignored_and_the_account_is_compared_as_a_digest():
    ignored = ("access_token", "account_id")
    live = shape_of("GET", f"{API}/v2/users/me?access_token=t&account_id=111111", {}, ignored)
    recorded = shape_of(
        "GET", f"{API}/v2/users/me", {"Harvest-Account-Id": [account_tag("111111")]}, ignored
    )
    assert differences(live, recorded) == {}
    other = shape_of("GET", f"{API}/v2/users/me", {"Harvest-Account-Id": "222222"}, ignored)
    assert set(differences(other, recorded)) == {"account"}
    anyone = shape_of("GET", f"{API}/v2/users/me", {}, ignored)  # a recording without account
    assert differences(other, anyone) == {}


def test_closest_ranks_by_fields_matched_and_says_what_differs():
    new = shape_of("GET", f"{API}/v2/clients?page=3", {})
    recorded = [
        (0, shape_of("POST", f"{API}/v2/projects", {})),
        (1, shape_of("GET", f"{API}/v2/clients?page=2", {})),
        (2, shape_of("GET", f"{API}/v2/projects?page=3", {})),
        (3, shape_of("GET", f"{API}/v2/clients?page=2", {})),  # a second episode: not repeated
    ]
    near = closest(new, recorded)
    assert [n.index for n in near] == [1, 2, 0]
    assert near[0].differs["query"]["only_in_request"] == "page=3"
    assert near[0].differs["query"]["only_in_recorded"] == "page=2"
    assert summary(near[2].differs) == "method, path and query"


RULES = parse_policy('[redaction]\nbody_fields = ["email"]\nheaders = ["x-secret"]').redaction


def _interaction(**over: Any) -> dict[str, Any]:
    base = to_interaction(
        method="POST",
        uri=f"{API}/v2/clients?access_token=tok123456&account_id=111111&page=1",
        request_headers=[
            ("Authorization", "Bearer tok123456"),
            ("Harvest-Account-Id", "111111"),
            ("X-Secret", "s"),
            ("X-Forwarded-For", "10.0.0.1"),
            ("User-Agent", "App (a@b.c)"),
        ],
        request_body=b'{"name":"Co","password":"hunter2"}',
        status=201,
        reason="Created",
        response_headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Content-Length", "9")],
        response_body=b'{"id":1,"code":"PRJ","email":"x@y.z"}',
        moves_back=upstream_moves(API, ID, "http://gw"),
    )
    base.update(over)
    return base


def test_redaction_covers_headers_query_bodies_and_policy_fields():
    red = redact_interaction(_interaction(), RULES, oauth_response=False)
    req, resp = red.interaction["request"], red.interaction["response"]
    assert req["headers"]["Authorization"] == ["REDACTED"]
    assert req["headers"]["X-Secret"] == ["REDACTED"]  # added by the policy
    assert "X-Forwarded-For" not in req["headers"]
    assert req["headers"]["Harvest-Account-Id"] == [account_tag("111111")]
    assert req["uri"] == f"{API}/v2/clients?page=1"
    assert json.loads(req["body"]) == {"name": "Co", "password": "REDACTED"}
    assert resp["headers"]["Set-Cookie"] == ["REDACTED", "REDACTED"]
    # A project's "code" is data in an API response; the policy's extra "email" is redacted.
    assert json.loads(resp["body"]["string"]) == {"id": 1, "code": "PRJ", "email": "REDACTED"}
    assert "request.query.access_token" in red.report


def test_oauth_form_bodies_and_token_responses_are_redacted():
    raw = _interaction(
        request={
            "body": "grant_type=refresh_token&refresh_token=rt-secret-1&client_secret=cs",
            "headers": {},
            "method": "POST",
            "uri": "https://id.getharvest.com/api/v2/oauth2/token",
        },
        response={
            "body": {"string": '{"access_token":"at-1","refresh_token":"rt-2","expires_in":9}'},
            "headers": {},
            "status": {"code": 200, "message": "OK"},
        },
    )
    red = redact_interaction(raw, RedactionRules(), oauth_response=True).interaction
    assert red["request"]["body"] == (
        "grant_type=refresh_token&refresh_token=REDACTED&client_secret=REDACTED"
    )
    assert json.loads(red["response"]["body"]["string"]) == {
        "access_token": "REDACTED", "refresh_token": "REDACTED", "expires_in": 9,
    }  # fmt: skip


def test_secret_scan_finds_token_shapes_and_the_live_credential():
    # Token shapes assembled at run time, so the repository holds no token-shaped literal.
    assert find_secrets("Authorization: Bearer 1234567.pt." + "AbCdEfGhIjKlMnOpQrStUv")
    assert find_secrets('{"refresh_token":"1234567.rt.' + 'abcdefghijklmnopqrstuv"}')
    assert find_secrets("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig")
    assert find_secrets("hello sim-admin-111111", known=["sim-admin-111111"])
    assert not find_secrets('{"access_token":"REDACTED"} Bearer REDACTED')
    red = redact_interaction(_interaction(), RULES, oauth_response=False).interaction
    assert not find_secrets(interaction_text(red), known=["tok123456"])
    assert find_secrets(interaction_text(_interaction()), known=["tok123456"])


def test_binary_bodies_are_scanned_too():
    raw = _interaction()
    raw["response"]["body"]["string"] = b"\xff\xfe token 1234567.pt.AbCdEfGhIjKlMnOpQrStUv"
    assert find_secrets(interaction_text(raw))


def test_recorded_form_restores_upstream_links_and_replays_with_public_ones():
    body = b'{"links":{"next":"http://gw/v2/clients?page=2"}}'
    raw = to_interaction(
        method="GET", uri=f"{API}/v2/clients", request_headers=[], request_body=b"",
        status=200, reason="OK", response_headers=[("Location", "http://gw/v2/clients/1")],
        response_body=body, moves_back=upstream_moves(API, ID, "http://gw"),
    )  # fmt: skip
    raw = with_length(raw)
    assert raw["request"]["body"] is None
    assert f"{API}/v2/clients?page=2" in raw["response"]["body"]["string"]
    assert raw["response"]["headers"]["Location"] == [f"{API}/v2/clients/1"]
    assert raw["response"]["headers"]["Content-Length"] == [str(len(body) + len(API) - 9)]
    status, reason, headers, out = reply_parts(raw, ((API, "http://gw2"),))
    assert (status, reason) == (200, "OK")
    assert headers["Location"] == "http://gw2/v2/clients/1"
    assert "Content-Length" not in headers
    assert json.loads(out)["links"]["next"] == "http://gw2/v2/clients?page=2"


def test_recording_restores_each_upstream_of_a_link_and_replay_moves_them_back():
    # One gateway serves Harvest ID under /id: its links must go back to ID's origin, not to
    # the API's (both start with the public origin), whichever upstream answered.
    public = "http://gw"
    body = (b'{"links":{"api":"http://gw/v2/users/me","id":"http://gw/id/api/v2/accounts",'
            b'"idq":"http://gw/id?x=1","other":"http://gwx/v2/a"}}')  # fmt: skip
    raw = to_interaction(
        method="GET", uri=f"{ID}/api/v2/accounts", request_headers=[], request_body=b"",
        status=200, reason="OK",
        response_headers=[("Location", "http://gw/id/api/v2/oauth2/authorize")],
        response_body=body, moves_back=upstream_moves(API, ID, public),
    )  # fmt: skip
    links = json.loads(raw["response"]["body"]["string"])["links"]
    assert links == {"api": f"{API}/v2/users/me", "id": f"{ID}/api/v2/accounts",
                     "idq": f"{ID}?x=1", "other": "http://gwx/v2/a"}  # fmt: skip
    assert raw["response"]["headers"]["Location"] == [f"{ID}/api/v2/oauth2/authorize"]
    _, _, headers, out = reply_parts(raw, public_moves(API, ID, "http://gw2"))
    assert json.loads(out)["links"] == {
        "api": "http://gw2/v2/users/me", "id": "http://gw2/id/api/v2/accounts",
        "idq": "http://gw2/id?x=1", "other": "http://gwx/v2/a"}  # fmt: skip
    assert headers["Location"] == "http://gw2/id/api/v2/oauth2/authorize"


def test_gzip_bodies_from_httpx_cassettes_are_served_decoded():
    import gzip

    raw = {
        "request": {"body": None, "headers": {}, "method": "GET", "uri": f"{API}/v2/company"},
        "response": {
            "body": {"string": gzip.compress(b'{"a":1}')},
            "headers": {"content-encoding": ["gzip"], "content-length": ["99"]},
            "status": {"code": 200, "message": "OK"},
        },
    }
    _, _, headers, body = reply_parts(raw, ((API, "http://gw"),))
    assert body == b'{"a":1}'
    assert "content-encoding" not in headers
