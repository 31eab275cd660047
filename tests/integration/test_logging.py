"""Logs of real requests: the request id on every line, console format, no credential ever."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from io import StringIO
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.cli import build_parser, settings_from_args
from gateway.model import CallNext, Exchange, Reply
from gateway.settings import LogFormat, Settings
from gateway.web import keys
from gateway.web.app import create_app
from tests.support import free_port, project_root, wait_port

TOKEN = "s3cr3t-bearer-token-9d2a"
QUERY_TOKEN = "s3cr3t-query-token-41bb"
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Harvest-Account-Id": "777",
    "User-Agent": "logging tests (ops@example.com)",
}


async def slow_upstream_handler(request: web.Request) -> web.Response:
    await asyncio.sleep(0.02)  # long enough for concurrent requests to interleave
    return web.json_response({"id": 1})


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", slow_upstream_handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


Wrap = Callable[[CallNext, Any], CallNext]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    """Start ``create_app`` with its pipeline wrapped by a test stage that logs, as stages do."""
    servers: list[TestServer] = []

    async def start(settings: Settings, wrap: Wrap) -> tuple[str, web.Application, StringIO]:
        stream = StringIO()
        app = create_app(settings, log_stream=stream)
        proxy = app[keys.PROXY]
        proxy.pipeline = wrap(proxy.pipeline, app[keys.LOGGER])
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/"), app, stream

    yield start
    for server in servers:
        await server.close()


def chatty(inner: CallNext, log: Any) -> CallNext:
    """A stage that logs before and after, without passing the request id."""

    async def stage(exchange: Exchange) -> Reply:
        log.info("stage.before", seen=exchange.request_id)
        reply = await inner(exchange)
        log.info("stage.after", seen=exchange.request_id)
        return reply

    return stage


def careless(inner: CallNext, log: Any) -> CallNext:
    """A stage that logs everything it holds, the way a debugging session would."""

    async def stage(exchange: Exchange) -> Reply:
        log.info(
            "careless",
            headers=exchange.headers,
            caller_headers=exchange.caller_headers,
            caller_headers_items=list(exchange.caller_headers.items()),
            query=exchange.raw_query,
            url=f"https://api.harvestapp.com{exchange.target}",
            body=b'{"access_token": "' + QUERY_TOKEN.encode() + b'", "hours": 1}',
            note=f"retrying with Authorization: Bearer {TOKEN}",
        )
        try:
            raise RuntimeError(f"failed GET /v2/users/me?access_token={QUERY_TOKEN}")
        except RuntimeError:
            log.exception("careless.exception")
        return await inner(exchange)

    return stage


def lines(stream: StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_every_line_of_a_request_carries_its_id(
    serve: Callable[..., Any], upstream: str
) -> None:
    url, app, stream = await serve(Settings(upstream=upstream), chatty)
    ids = [f"req-{i}" for i in range(8)]
    async with aiohttp.ClientSession() as session:

        async def one(rid: str) -> None:
            async with session.get(
                url + "/v2/users/me", headers={**HEADERS, "X-Request-Id": rid}
            ) as resp:
                assert resp.status == 200
                assert resp.headers["X-Request-Id"] == rid

        await asyncio.gather(*(one(rid) for rid in ids))
        # A generated id is bound too. (no-cache: a fresh hit is answered before the pipeline,
        # so the test stage would log nothing for it.)
        refresh = {**HEADERS, "Cache-Control": "no-cache"}
        async with session.get(url + "/v2/users/me", headers=refresh) as resp:
            generated = resp.headers["X-Request-Id"]
    app[keys.LOGGER].info("outside.any.request")
    await asyncio.sleep(0)  # lines are written once per event-loop tick

    logged = lines(stream)
    per_request = [line for line in logged if line["event"] != "outside.any.request"]
    assert len(per_request) == 3 * (len(ids) + 1)
    for line in per_request:
        expected = line.get("seen", line["request_id"])
        assert line["request_id"] == expected, line
    assert {line["request_id"] for line in per_request} == {*ids, generated}
    (outside,) = [line for line in logged if line["event"] == "outside.any.request"]
    assert "request_id" not in outside  # nothing leaks from one request's context


async def test_no_credential_reaches_any_log_line(serve: Callable[..., Any], upstream: str) -> None:
    url, _, stream = await serve(Settings(upstream=upstream), careless)
    async with aiohttp.ClientSession() as session:
        async with session.get(
            url + f"/v2/users/me?access_token={QUERY_TOKEN}&page=2", headers=HEADERS
        ) as resp:
            assert resp.status == 200
        # Credentials only in the query, and a request answered with an error.
        query = f"access_token={QUERY_TOKEN}&account_id=777"
        async with session.get(
            url + f"/v2/users/me?{query}", headers={"User-Agent": "t (a@b.c)"}
        ) as resp:
            assert resp.status == 200
        async with session.get(url + f"/v2/not%20valid?{query}", headers=HEADERS) as resp:
            assert resp.status == 404

    text = stream.getvalue()
    assert TOKEN not in text
    assert QUERY_TOKEN not in text
    logged = lines(stream)
    careless_lines = [line for line in logged if line["event"] == "careless"]
    assert len(careless_lines) == 2
    first = careless_lines[0]
    # Redacted, not dropped: the lines are still useful.
    assert first["headers"]["Authorization"] == "[REDACTED]"
    assert first["caller_headers"]["User-Agent"] == HEADERS["User-Agent"]
    assert first["query"] == "access_token=[REDACTED]&page=2"
    assert first["note"] == "retrying with Authorization: Bearer [REDACTED]"
    assert '"access_token": "[REDACTED]"' in first["body"]
    assert any("exception" in line and "access_token=[REDACTED]" in line["exception"]
               for line in logged)  # fmt: skip
    assert sum(line["event"] == "request" for line in logged) == 3


async def test_console_format_is_readable_and_redacted(
    serve: Callable[..., Any], upstream: str
) -> None:
    url, _, stream = await serve(
        Settings(upstream=upstream, log_format=LogFormat.CONSOLE), careless
    )
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            url + f"/v2/users/me?access_token={QUERY_TOKEN}",
            headers={**HEADERS, "X-Request-Id": "console-1"},
        ) as resp,
    ):
        assert resp.status == 200
    text = stream.getvalue()
    request_lines = [line for line in text.splitlines() if " request " in line]
    assert len(request_lines) == 1
    line = request_lines[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
    assert "[info     ]" in line
    for field in ("request_id=console-1", "route=/v2/users/me", "status=200", "method=GET"):
        assert field in line, field
    assert TOKEN not in text
    assert QUERY_TOKEN not in text


def test_log_format_comes_from_the_flag_or_the_environment() -> None:
    args = build_parser({}).parse_args(["serve", "--log-format", "console"])
    assert settings_from_args(args).log_format is LogFormat.CONSOLE
    args = build_parser({"HARVEST_GATEWAY_LOG_FORMAT": "console"}).parse_args(["serve"])
    assert settings_from_args(args).log_format is LogFormat.CONSOLE
    assert settings_from_args(build_parser({}).parse_args(["serve"])).log_format is LogFormat.JSON


@pytest.mark.e2e
def test_served_gateway_writes_console_lines_to_stdout() -> None:
    port, dead = free_port(), free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--log-format", "console",
         "--upstream", f"http://127.0.0.1:{dead}"],
        cwd=project_root(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_port(port)
        import urllib.error
        import urllib.request

        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/v2/users/me?access_token={QUERY_TOKEN}",
            headers={"User-Agent": "t (a@b.c)", "Harvest-Account-Id": "1", "X-Request-Id": "cli-1"},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 502  # nothing listens upstream
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    (line,) = [ln for ln in out.splitlines() if " request " in ln]
    assert "request_id=cli-1" in line
    assert "status=502" in line
    assert QUERY_TOKEN not in out
