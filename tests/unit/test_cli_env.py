"""Settings from the environment: a bad value is a clear error of the command that uses it."""

from __future__ import annotations

import re

import pytest

from gateway.cli import build_parser, cmd_check_policy, cmd_serve, settings_from_args


def test_environment_values_are_converted_like_flags() -> None:
    env = {"HARVEST_GATEWAY_PORT": "9001", "HARVEST_GATEWAY_CLIENT_TIMEOUT": "2.5"}
    settings = settings_from_args(build_parser(env).parse_args(["serve"]))
    assert (settings.port, settings.client_timeout) == (9001, 2.5)


def test_an_empty_variable_counts_as_unset() -> None:
    env = {"HARVEST_GATEWAY_PORT": "", "HARVEST_GATEWAY_POLICY": " "}
    args = build_parser(env).parse_args(["serve"])
    settings = settings_from_args(args)
    assert settings.port == 8080
    assert settings.policy is None  # the shipped policy, not the path " "


def test_a_bad_number_is_a_usage_error_of_serve_only(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser({"HARVEST_GATEWAY_PORT": "abc"})
    parser.parse_args(["check-policy"])  # other commands do not read it
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["serve"])
    assert exit_.value.code == 2
    assert "--port: invalid int value: 'abc'" in capsys.readouterr().err


def test_a_bad_choice_names_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser({"HARVEST_GATEWAY_MODE": "sometimes"}).parse_args(["serve"])
    assert cmd_serve(args) == 2
    err = capsys.readouterr().err
    assert "HARVEST_GATEWAY_MODE: 'sometimes' is not one of proxy, record, replay" in err


def test_check_policy_reads_the_quota_variable(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser({"HARVEST_GATEWAY_QUOTA": "general=5/2s"}).parse_args(["check-policy"])
    assert cmd_check_policy(args) == 0
    assert "general=5/2s" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["--upstream", "localhost:8080"], {},
         "--upstream (HARVEST_GATEWAY_UPSTREAM) 'localhost:8080': expected a URL starting "
         "http:// or https://"),
        (["--upstream", "https://h/harvest?x=1"], {}, "expected no query or fragment"),
        ([], {"HARVEST_GATEWAY_ID_UPSTREAM": "http://"},
         "--id-upstream (HARVEST_GATEWAY_ID_UPSTREAM) 'http://': expected a URL starting "
         "http:// or https:// and a host"),
        (["--public-url", "gw.internal"], {}, "--public-url (HARVEST_GATEWAY_PUBLIC_URL)"),
        (["--redis-url", "http://cache:6379"], {},
         "'http://cache:6379': expected a URL starting redis:// or rediss://"),
        (["--redis-url", "redis://cache:port"], {}, "not a URL"),
        (["--upstream", ""], {}, "--upstream (HARVEST_GATEWAY_UPSTREAM) '': expected a URL"),
    ],
)  # fmt: skip
def test_a_malformed_url_stops_serve_before_it_starts(
    argv: list[str], env: dict[str, str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser(env).parse_args(["serve", *argv])
    assert cmd_serve(args) == 2  # it would otherwise have started serving
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--upstream", "http://127.0.0.1:9/harvest/"],
        ["--public-url", "https://gateway.example.com"],
        ["--redis-url", "rediss://:pw@cache:6380/2?socket_keepalive=true"],
        ["--id-upstream", "http://[::1]:8081"],
        ["--public-url", "", "--redis-url", ""],  # empty: unset, as an empty variable is
    ],
)
def test_well_formed_urls_pass(argv: list[str]) -> None:
    settings_from_args(build_parser({}).parse_args(["serve", *argv]))


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["--port", "99999"], {}, "--port (HARVEST_GATEWAY_PORT) 99999: expected 1 to 65535"),
        ([], {"HARVEST_GATEWAY_PORT": "0"}, "--port (HARVEST_GATEWAY_PORT) 0: expected 1 to 65535"),
        (["--max-body", "-5"], {}, "--max-body (HARVEST_GATEWAY_MAX_BODY) -5: expected at least 1"),
        (["--client-timeout", "0"], {}, "expected at least 0.001"),
        (["--upstream-connections", "0"], {}, "--upstream-connections"),
        (["--shutdown-timeout", "-1"], {}, "expected at least 0"),
    ],
)  # fmt: skip
def test_a_number_out_of_range_is_refused_before_serve_starts(
    argv: list[str], env: dict[str, str], expected: str
) -> None:
    # settings_from_args, not cmd_serve: were the check gone, cmd_serve would start serving.
    with pytest.raises(ValueError, match=re.escape(expected)):
        settings_from_args(build_parser(env).parse_args(["serve", *argv]))
