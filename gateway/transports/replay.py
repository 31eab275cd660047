"""Answer from cassettes: the replay transport, and the player the record stage shares.

The replay transport has no client session and no connector: it cannot open a socket. A miss is
answered ``501`` with ``X-Gateway-Replay: miss`` and a JSON body naming the closest recordings and
what differs. 501 because Harvest never sends it and retrying clients leave it alone (a miss is
deterministic), while it stays an ordinary 5xx that every HTTP client reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.clock import Clock
from gateway.core.interactions import reply_parts
from gateway.core.links import public_moves
from gateway.core.matchers import MATCH_ON, Shape, shape_at, summary
from gateway.core.matchers import Origin as MatchOrigin
from gateway.core.record_mode import refusal_reason
from gateway.core.routes import Upstream
from gateway.errors import GatewayError, upstream_rate_limited
from gateway.model import Exchange, Reply
from gateway.settings import RecordMode
from gateway.stores.cassette_files import CassetteNameError
from gateway.stores.cassettes import Cassette, CassetteLibrary, Played
from gateway.telemetry.metrics import Metrics

MISS_STATUS = 501
REPLAY_HEADER = "X-Gateway-Replay"
CASSETTE_HEADER = "X-Gateway-Cassette"


@dataclass(frozen=True, slots=True, kw_only=True)
class Origins:
    api: str
    id: str
    public: str

    def upstream(self, exchange: Exchange) -> str:
        return self.api if exchange.route.upstream is Upstream.API else self.id


class Player:
    """Finds a request's recorded answer in its cassette, or explains why there is none."""

    def __init__(
        self,
        library: CassetteLibrary,
        origins: Origins,
        metrics: Metrics,
        *,
        default_cassette: str,
        repeat_last: bool = False,
    ) -> None:
        self.library = library
        self.origins = origins
        self.metrics = metrics
        self.default_cassette = default_cassette
        self.repeat_last = repeat_last
        self._api, self._id = MatchOrigin.of(origins.api), MatchOrigin.of(origins.id)

    def uri(self, exchange: Exchange) -> str:
        """The absolute upstream URI the exchange was (or would be) sent to."""
        return self.origins.upstream(exchange) + exchange.target

    def shape(self, exchange: Exchange) -> Shape:
        origin = self._api if exchange.route.upstream is Upstream.API else self._id
        return shape_at(
            exchange.method,
            origin,
            exchange.route.path,
            exchange.raw_query,
            exchange.headers,
            self.library.ignored_query,
        )

    async def cassette(self, exchange: Exchange) -> Cassette:
        name = exchange.caller_headers.get(CASSETTE_HEADER, "").strip() or self.default_cassette
        exchange.notes["cassette"] = name
        try:
            return await self.library.get(name)
        except CassetteNameError as exc:
            raise GatewayError(400, "invalid_cassette", f"{exc}.") from exc

    def reply(self, played: Played, exchange: Exchange) -> Reply:
        o = self.origins
        public = exchange.public_origin or o.public
        moves = public_moves(o.api, o.id, public)
        status, reason, headers, body = reply_parts(played.interaction, moves)
        headers[REPLAY_HEADER] = "repeat" if played.repeated else "hit"
        headers["X-Gateway-Replay-Interaction"] = str(played.index)
        self.metrics.cassette_interactions.labels("replayed").inc()
        return Reply(status=status, reason=reason, headers=headers, body=body)

    def miss(
        self, exchange: Exchange, cassette: Cassette, shape: Shape, mode: RecordMode | None
    ) -> GatewayError:
        """The explained miss (``mode`` None: replay mode)."""
        self.metrics.cassette_interactions.labels("missed").inc()
        request = f"{exchange.method} {self.uri(exchange)}"
        detail: dict[str, Any] = {
            "request": request,
            "cassette": cassette.name,
            "record_mode": mode.value if mode else "none (replay mode)",
            "match_on": list(MATCH_ON),
            "interactions": {"recorded": len(cassette.loaded), "played": cassette.played},
        }
        if not cassette.existed:
            detail["reason"] = "cassette_not_found"
            text = (
                f"Can't play back {request}: cassette {cassette.name!r} does not exist "
                f"(looked for {cassette.path.name} in the cassette dir)."
            )
        elif (used := cassette.exhausted(shape)) > 0:
            detail["reason"] = "all_played"
            text = (
                f"Can't play back {request}: all {used} recorded answer(s) to it have been played "
                "already. Record more episodes, or replay with --replay-repeat-last to keep "
                "answering the last one."
            )
        else:
            near = cassette.closest(shape)
            detail["reason"] = "no_match"
            detail["closest"] = [
                {
                    "interaction": n.index,
                    "request": _request_line(cassette.loaded[n.index].interaction),
                    "differs": n.differs,
                }
                for n in near
            ]
            what = f" (the closest differ in {summary(near[0].differs)})" if near else ""
            text = f"Can't play back {request}: no recorded interaction matches it{what}."
        if mode is not None or not cassette.existed:
            text += f" {refusal_reason(mode, existed=cassette.existed)}."
        return GatewayError(
            MISS_STATUS, "replay_miss", text, headers={REPLAY_HEADER: "miss"}, detail=detail
        )


def _request_line(interaction: dict[str, Any]) -> str:
    req = interaction["request"]
    return f"{req['method']} {req['uri']}"


class ReplayTransport:
    """The terminal step in replay mode: cassettes only, never the network."""

    def __init__(self, player: Player, clock: Clock, *, penalty: float = 15.0) -> None:
        self.player = player
        self.clock = clock
        self.penalty = penalty  # seconds to come back after a recorded 429 without Retry-After

    async def handle(self, exchange: Exchange) -> Reply:
        cassette = await self.player.cassette(exchange)
        shape = self.player.shape(exchange)
        played = cassette.play(shape, repeat_last=self.player.repeat_last)
        if played is None:
            raise self.player.miss(exchange, cassette, shape, None)
        reply = self.player.reply(played, exchange)
        if reply.status == 429:  # a recording of Harvest's throttle: callers never see 429
            retry_after = reply.headers.get("Retry-After")
            raise upstream_rate_limited(retry_after, self.clock.wall(), self.penalty)
        return reply

    async def aclose(self) -> None:
        """Nothing to close: the app's lifecycle closes the cassette library (its writers)."""
