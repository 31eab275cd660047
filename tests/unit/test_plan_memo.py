"""The hit path's memo of plans: bounded, and it tells an unseen shape from a known non-hit."""

from __future__ import annotations

from gateway.policy.schema import CacheRule
from gateway.web.hits import UNSEEN, Plan, PlanMemo, Shape, general_shape


def shape(n: int) -> Shape:
    return (f"/v2/users/{n}", "http", ((b"Authorization", b"Bearer t"),))


def test_unseen_known_and_never_a_hit_are_three_answers() -> None:
    memo = PlanMemo(size=8)
    plan = Plan("/v2/users/{id}", "1", "key", CacheRule(prefix="/v2/users", ttl=60.0))
    assert memo.get(shape(1)) is UNSEEN
    memo.put(shape(1), plan)
    memo.put(shape(2), None)
    assert memo.get(shape(1)) is plan
    assert memo.get(shape(2)) is None
    assert memo.get(shape(3)) is UNSEEN


def test_a_flood_of_shapes_never_holds_more_than_the_bound() -> None:
    memo = PlanMemo(size=100)
    for n in range(1_000):
        memo.put(shape(n), None)
        assert len(memo) <= 100
    assert memo.get(shape(999)) is None  # the latest is kept


def test_a_general_shape_drops_only_the_headers_naming_one_request() -> None:
    own = ((b"Authorization", b"Bearer t"), (b"X-Request-ID", b"r-1"), (b"traceparent", b"00-a"))
    assert general_shape(("/v2/users/me", "http", own)) == (
        "/v2/users/me", "http", ((b"Authorization", b"Bearer t"),))  # fmt: skip
    assert general_shape(shape(1)) is None  # nothing to drop: the shape is its own
