from __future__ import annotations

import pytest

from gateway.policy.load import PolicyError, load_policy, parse_policy


def test_shipped_policy_quota_and_queue() -> None:
    policy = load_policy(None)
    assert [(q.name, q.limit, q.window) for q in policy.quotas] == [
        ("general", 100, 15.0),
        ("reports", 100, 900.0),
    ]
    assert policy.queue.margin == 0.05
    assert policy.queue.fallback_share == 0.34
    assert policy.queue.max_retries == 8
    assert (policy.queue.upstream_retries, policy.queue.retry_backoff) == (2, 0.1)
    names = [q.name for q in policy.quotas_for("GET", "/v2/reports/time/clients")]
    assert names == ["general", "reports"]
    assert [q.name for q in policy.quotas_for("POST", "/v2/time_entries")] == ["general"]


def test_priority_caps_and_fallback_share() -> None:
    policy = parse_policy(
        """
        [quotas.general]
        limit = 100
        window = "15s"
        [quotas.batch]
        limit = 60
        window = "15s"
        priorities = ["Batch"]
        [queue]
        fallback_share = 0.5
        """
    )
    batch = policy.quotas[1]
    assert batch.priorities == ("batch",)
    assert batch.applies("GET", "/v2/users", "batch")
    assert not batch.applies("GET", "/v2/users", "interactive")
    assert policy.queue.fallback_share == 0.5


def test_fallback_share_must_be_a_fraction() -> None:
    with pytest.raises(PolicyError, match="fallback_share"):
        parse_policy("[queue]\nfallback_share = 2\n")


def test_upstream_retries_can_be_turned_off() -> None:
    policy = parse_policy(
        """
        [quotas.general]
        limit = 100
        window = "15s"
        [queue]
        upstream_retries = 0
        retry_backoff = "250ms"
        """
    )
    assert (policy.queue.upstream_retries, policy.queue.retry_backoff) == (0, 0.25)
