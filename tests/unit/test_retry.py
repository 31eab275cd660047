"""Which upstream failures are tried again, and after how long (``gateway.core.retry``)."""

from __future__ import annotations

import pytest

from gateway.core.retry import RetryRules, retry_delay

RULES = RetryRules(retries=2, backoff=0.1, max_delay=1.0)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "get"])
@pytest.mark.parametrize("status", [502, 503, 504])
def test_safe_methods_retry_transient_statuses_with_doubling_backoff(method, status):
    delays = [retry_delay(RULES, method=method, attempt=n, status=status) for n in range(3)]
    assert delays == [0.1, 0.2, None]  # two retries, then the caller gets the answer


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "DELETE"])
@pytest.mark.parametrize(
    ("status", "error"), [(502, None), (503, None), (None, "upstream_unavailable")]
)
def test_a_write_is_never_sent_twice(method, status, error):
    assert retry_delay(RULES, method=method, attempt=0, status=status, error=error) is None


@pytest.mark.parametrize("status", [200, 201, 304, 400, 401, 404, 422, 429, 500, 501])
def test_other_statuses_are_final(status):
    assert retry_delay(RULES, method="GET", attempt=0, status=status) is None


def test_resets_retry_but_timeouts_and_local_refusals_do_not():
    assert retry_delay(RULES, method="GET", attempt=0, error="upstream_unavailable") == 0.1
    for code in ("upstream_timeout", "upstream_busy", "quota_wait_exceeded", None):
        assert retry_delay(RULES, method="GET", attempt=0, error=code) is None


def test_retry_after_is_honoured_up_to_the_cap_and_a_longer_one_is_passed_on():
    assert retry_delay(RULES, method="GET", attempt=0, status=503, retry_after=0.5) == 0.5
    assert retry_delay(RULES, method="GET", attempt=0, status=503, retry_after=0.0) == 0.1
    assert retry_delay(RULES, method="GET", attempt=0, status=503, retry_after=30) is None


def test_no_retries_configured_means_none():
    rules = RetryRules(retries=0)
    assert retry_delay(rules, method="GET", attempt=0, status=503) is None
