"""Managed credentials: the pure decision and the file loader."""

from __future__ import annotations

import hashlib
import io

import pytest

from gateway.cli import main
from gateway.core.credentials import (
    CallerKey,
    Credentials,
    Grant,
    authorize,
    find_key,
    hash_key,
)
from gateway.core.headers import Reject, principal_of
from gateway.credentials_file import CredentialsError, parse_credentials

READER_KEY, WRITER_KEY = "reader-key-1", "writer-key-2"
CREDS = Credentials(
    keys=(
        CallerKey(name="reader", digest=hash_key(READER_KEY), accounts=frozenset({"111"}),
                  methods=frozenset({"GET"})),
        CallerKey(name="writer", digest=hash_key(WRITER_KEY), accounts=frozenset({"*"}),
                  methods=frozenset({"GET", "POST"})),
    ),
    tokens={"111": "harvest-token-111", "222": "harvest-token-222"},
)  # fmt: skip


def decide(key: str | None, account: str | None = "111", method: str = "GET", query=None):
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if account is not None:
        headers["Harvest-Account-Id"] = account
    return authorize(CREDS, method=method, headers=headers, query=query or {})


def test_hash_key_is_sha256_hex():
    assert hash_key("abc") == hashlib.sha256(b"abc").hexdigest()


def test_a_scoped_key_gets_the_accounts_token():
    grant = decide(READER_KEY)
    assert isinstance(grant, Grant)
    assert grant.authorization == "Bearer harvest-token-111"
    assert grant.account_id == "111"
    assert grant.key_name == "reader"


def test_x_gateway_key_header_is_accepted():
    grant = authorize(
        CREDS, method="GET", headers={"X-Gateway-Key": READER_KEY, "Harvest-Account-Id": "111"},
        query={},
    )  # fmt: skip
    assert isinstance(grant, Grant)


@pytest.mark.parametrize(
    ("key", "account", "method", "query", "status", "error"),
    [
        (None, "111", "GET", {}, 401, "invalid_token"),
        ("wrong", "111", "GET", {}, 401, "invalid_token"),
        ("harvest-token-111", "111", "GET", {}, 401, "invalid_token"),  # a token is no key
        (READER_KEY, None, "GET", {}, 401, "invalid_token"),
        (READER_KEY, "222", "GET", {}, 403, "forbidden"),
        (READER_KEY, "111", "POST", {}, 403, "forbidden"),
        (WRITER_KEY, "333", "GET", {}, 403, "forbidden"),  # "*" covers configured accounts only
        (WRITER_KEY, "111", "DELETE", {}, 403, "forbidden"),
        (READER_KEY, "111", "GET", {"access_token": "x"}, 400, "access_token_not_allowed"),
        (READER_KEY, "111", "GET", {"account_id": "222"}, 400, "invalid_account_id"),
        (READER_KEY, "../1", "GET", {}, 400, "invalid_account_id"),
    ],
)
def test_refusals(key, account, method, query, status, error):
    verdict = decide(key, account, method, query)
    assert isinstance(verdict, Reject)
    assert (verdict.status, verdict.error) == (status, error)


def test_account_from_the_query_string_when_no_header():
    grant = decide(WRITER_KEY, account=None, query={"account_id": "222"})
    assert isinstance(grant, Grant)
    assert grant.authorization == "Bearer harvest-token-222"


def test_principal_separates_keys_and_accounts_though_the_token_is_shared():
    a = decide(WRITER_KEY, "111")
    b = decide(READER_KEY, "111")
    c = decide(WRITER_KEY, "222")
    assert isinstance(a, Grant)
    assert isinstance(b, Grant)
    assert isinstance(c, Grant)
    assert len({a.principal, b.principal, c.principal}) == 3
    # ... and differs from what a pass-through caller holding the token itself would get.
    assert a.principal != principal_of("harvest-token-111", "111")
    assert "harvest-token" not in a.principal


def test_find_key_scans_every_candidate():
    assert find_key(CREDS.keys, WRITER_KEY) is CREDS.keys[1]
    assert find_key(CREDS.keys, "nope") is None
    assert find_key((), "x") is None


GOOD_TOML = f"""
[[callers]]
name = "billing"
key_sha256 = "{hash_key(READER_KEY)}"
accounts = ["111111"]
methods = ["get", "HEAD"]

[accounts.111111]
token_env = "HARVEST_TOKEN_111111"

[accounts.222222]
token_file = "TOKEN_FILE"
"""


def test_toml_file_resolves_env_and_file_tokens(tmp_path):
    secret = tmp_path / "harvest_222222"
    secret.write_text("file-token-222\n")
    creds = parse_credentials(
        GOOD_TOML.replace("TOKEN_FILE", str(secret)), "c.toml", {"HARVEST_TOKEN_111111": "env-t"}
    )
    assert creds.tokens == {"111111": "env-t", "222222": "file-token-222"}
    assert creds.keys[0].methods == frozenset({"GET", "HEAD"})
    assert creds.keys[0].name == "billing"


def test_yaml_file_is_read_too():
    text = f"""
callers:
  - name: app
    key_sha256: "{hash_key(READER_KEY)}"
    accounts: ["111111"]
    methods: [GET]
accounts:
  "111111": {{token_env: T1}}
"""
    creds = parse_credentials(text, "c.yaml", {"T1": "tok"})
    assert creds.tokens == {"111111": "tok"}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (('token_env = "HARVEST_TOKEN_111111"', 'token = "inline-secret"'), "inline"),
        (("name = \"billing\"", 'name = "billing"\nkey = "plaintext"'), "inline"),
        ((f'key_sha256 = "{hash_key(READER_KEY)}"', 'key_sha256 = "abc"'), "64 hex"),
        (('token_env = "HARVEST_TOKEN_111111"', 'token_env = "UNSET_VAR"'), "not set"),
        (('token_file = "TOKEN_FILE"', 'token_file = "/nonexistent/x"'), "cannot read"),
        (('accounts = ["111111"]', 'accounts = ["999"]'), "no token"),
        (('methods = ["get", "HEAD"]', 'methods = ["FETCH"]'), "unknown method"),
        (('token_env = "HARVEST_TOKEN_111111"', 'token_env = "A"\ntoken_file = "/x"'),
         "exactly one"),
    ],
)  # fmt: skip
def test_bad_files_are_refused(tmp_path, change, complaint):
    secret = tmp_path / "t"
    secret.write_text("tok")
    text = GOOD_TOML.replace(*change).replace("TOKEN_FILE", str(secret))
    with pytest.raises(CredentialsError, match=complaint):
        parse_credentials(text, "c.toml", {"HARVEST_TOKEN_111111": "env-t", "A": "a"})


def test_inline_token_error_never_echoes_the_secret():
    text = GOOD_TOML.replace('token_env = "HARVEST_TOKEN_111111"', 'token = "inline-secret"')
    with pytest.raises(CredentialsError) as info:
        parse_credentials(text, "c.toml", {})
    assert "inline-secret" not in str(info.value)


def test_hash_key_command_prints_the_digest(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("my-caller-key\n"))
    assert main(["hash-key"]) == 0
    assert capsys.readouterr().out.strip() == hash_key("my-caller-key")


def test_serve_refuses_a_bad_credentials_file(tmp_path, capsys):
    bad = tmp_path / "creds.toml"
    bad.write_text('[[callers]]\nkey = "plain"\n')
    assert main(["serve", "--credentials", str(bad)]) == 2
    assert "creds.toml" in capsys.readouterr().err
