"""The record stage (``--mode record``): play, or forward and write the exchange to a cassette.

The record mode decides per request (``core.record_mode``). A recorded exchange is redacted
(``core.redact``) and scanned for anything still shaped like a credential before it is handed to
the cassette's writer; the caller's reply waits until the interaction is on disk, so a test that
records and then replays never races the file. A refused or failed write never fails the caller's
request: the reply says so in ``X-Gateway-Record`` and the log says why. A try the retry stage
will repeat is not written, nor a 429 (admission absorbs it): the cassette holds what the caller
saw.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import structlog

from gateway.clock import Clock
from gateway.core.headers import bearer_token
from gateway.core.interactions import to_interaction, with_length
from gateway.core.links import upstream_moves
from gateway.core.matchers import account_tag
from gateway.core.record_mode import Action, decide
from gateway.core.redact import find_secrets, interaction_text, redact_interaction
from gateway.core.routes import Upstream
from gateway.model import CallNext, Exchange, Reply, Stage
from gateway.pipeline.retry import superseded
from gateway.policy.schema import RedactionRules
from gateway.settings import RecordMode
from gateway.stores.cassettes import iso_time
from gateway.transports.replay import Player

RECORD_HEADER = "X-Gateway-Record"
_SECRET_PARAMS = ("access_token", "refresh_token", "client_secret", "password", "code")


def credentials_of(exchange: Exchange) -> list[str]:
    """The secrets this exchange carried, to be sure none of them reaches the cassette."""
    found = [bearer_token(exchange.headers.get("Authorization"))]
    found += [v for k, v in parse_qsl(exchange.raw_query) if k.lower() in _SECRET_PARAMS]
    if exchange.body and b"=" in exchange.body and exchange.body[:1] not in (b"{", b"["):
        text = exchange.body.decode("utf-8", "replace")
        found += [v for k, v in parse_qsl(text) if k.lower() in _SECRET_PARAMS]
    return [s for s in found if s]


def record_stage(
    player: Player,
    *,
    mode: RecordMode,
    rules: RedactionRules,
    clock: Clock,
    log: structlog.typing.FilteringBoundLogger,
) -> Stage:
    library, metrics = player.library, player.metrics

    async def stage(exchange: Exchange, call_next: CallNext) -> Reply:
        cassette = await player.cassette(exchange)
        shape = player.shape(exchange)
        action = decide(
            mode, existed=cassette.existed, playable=cassette.playable(shape, repeat_last=False)
        )
        if action is Action.PLAY:
            played = cassette.play(shape, repeat_last=False)
            if played is not None:
                return player.reply(played, exchange)
        if action is not Action.RECORD:
            raise player.miss(exchange, cassette, shape, mode)
        started = clock.monotonic()
        reply = await call_next(exchange)
        elapsed_ms = round((clock.monotonic() - started) * 1000, 2)
        body = await reply.read()
        if superseded(exchange, reply):  # a failed try the caller never sees: not on tape
            reply.headers[RECORD_HEADER] = "skipped: retried"
            return reply
        if reply.status == 429:  # admission absorbs it (retry or 503): callers never see one
            reply.headers[RECORD_HEADER] = "skipped: 429"
            return reply
        o = player.origins
        raw = to_interaction(
            method=exchange.method,
            uri=player.uri(exchange),
            request_headers=exchange.headers.items(),
            request_body=exchange.body,
            status=reply.status,
            reason=reply.reason,
            response_headers=reply.headers.items(),
            response_body=body,
            moves_back=upstream_moves(o.api, o.id, exchange.public_origin or o.public),
        )
        if exchange.account_id and "Harvest-Account-Id" not in exchange.headers:
            # The account came in the query, which redaction removes: keep it matchable.
            raw["request"]["headers"]["Harvest-Account-Id"] = [account_tag(exchange.account_id)]
        redacted = redact_interaction(
            raw, rules, oauth_response=exchange.route.upstream is Upstream.ID
        )
        interaction = with_length(redacted.interaction)
        leaks = find_secrets(interaction_text(interaction), credentials_of(exchange))
        if leaks:
            metrics.cassette_interactions.labels("refused").inc()
            log.error("cassette_write_refused", cassette=cassette.name, found=leaks,
                      request_id=exchange.request_id)  # fmt: skip
            reply.headers[RECORD_HEADER] = "refused: a credential-shaped string remained"
            return reply
        meta: dict[str, Any] = {
            "recorded_at": iso_time(clock.wall()),
            "account": account_tag(exchange.account_id) if exchange.account_id else None,
            "upstream_ms": elapsed_ms,
            "request_id": exchange.request_id,
            "redacted": list(redacted.report),
        }
        try:
            await library.record(cassette, interaction, meta)
        except Exception as exc:  # a full disk, an unwritable dir: the caller still gets its reply
            metrics.cassette_interactions.labels("failed").inc()
            log.error("cassette_write_failed", cassette=cassette.name, error=str(exc),
                      request_id=exchange.request_id)  # fmt: skip
            reply.headers[RECORD_HEADER] = (
                f"failed: {getattr(exc, 'strerror', None) or type(exc).__name__}"
            )
            return reply
        metrics.cassette_interactions.labels("recorded").inc()
        reply.headers[RECORD_HEADER] = "recorded"
        return reply

    return stage
