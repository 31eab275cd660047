import pytest

from gateway.policy.load import (
    PolicyError,
    load_policy,
    parse_duration,
    parse_policy,
    parse_quota_override,
    with_quota_overrides,
)
from gateway.policy.schema import GetBody


def test_shipped_policy_has_harvest_limits():
    policy = load_policy(None)
    quotas = {q.name: (q.limit, q.window) for q in policy.quotas}
    assert quotas == {"general": (100, 15.0), "reports": (100, 900.0)}
    assert [q.name for q in policy.quotas_for("GET", "/v2/reports/time/team")] == [
        "general",
        "reports",
    ]
    assert [q.name for q in policy.quotas_for("GET", "/v2/users/me")] == ["general"]
    assert policy.headers.require_user_agent
    assert policy.cache.rule_for("/v2/company") is not None
    assert policy.cache.rule_for("/v2/company").ttl == 300.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "seconds"), [("15s", 15), ("15m", 900), ("50ms", 0.05), ("2h", 7200), (3, 3)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_quota_override_syntax_and_errors():
    assert parse_quota_override("general=20/1s") == ("general", 20, 1.0)
    for bad in ("general=20", "general=0/1s", "=2/1s", "general=2/fast"):
        with pytest.raises(PolicyError, match="--quota"):
            parse_quota_override(bad)
    policy = with_quota_overrides(load_policy(None), [("general", 20, 1.0), ("extra", 5, 60.0)])
    quotas = {q.name: (q.limit, q.window, q.prefixes) for q in policy.quotas}
    assert quotas["general"] == (20, 1.0, ("",))
    assert quotas["reports"][:2] == (100, 900.0)
    assert quotas["extra"] == (5, 60.0, ("",))


def test_errors_name_the_key_path():
    with pytest.raises(PolicyError, match=r"quotas\.general\.limit"):
        parse_policy("[quotas.general]\nlimit = 0\nwindow = '1s'\n", "p.toml")
    with pytest.raises(PolicyError, match=r"headers\.get_with_body"):
        parse_policy("[headers]\nget_with_body = 'maybe'\n", "p.toml")
    with pytest.raises(PolicyError, match="not valid TOML"):
        parse_policy("[headers", "p.toml")
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy("/nonexistent/policy.toml")


def test_strip_mode_and_injection():
    policy = parse_policy(
        "[headers]\nget_with_body='strip'\ndefault_user_agent='GW (x@y)'\n"
        "[headers.inject]\nX-Team='ops'\n"
    )
    assert policy.headers.get_with_body is GetBody.STRIP
    assert policy.headers.default_user_agent == "GW (x@y)"
    assert policy.headers.inject == (("X-Team", "ops"),)
