"""Read a managed-credentials file (TOML or YAML) into ``Credentials``.

    [[callers]]
    name = "billing-app"
    key_sha256 = "<64 hex digits: harvest-gateway hash-key>"
    accounts = ["111111"]          # or ["*"]: every account below
    methods = ["GET", "HEAD"]

    [accounts.111111]
    token_env = "HARVEST_TOKEN_111111"       # or
    # token_file = "/run/secrets/harvest_111111"

Keys are stored hashed and tokens are referenced, never written inline: a file that holds a
plaintext key or token is refused, so the file itself is not a secret worth stealing.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gateway.core.credentials import ANY_ACCOUNT, DIGEST, CallerKey, Credentials

_INLINE_SECRETS = frozenset({"key", "token", "api_key", "access_token", "secret", "password"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class CredentialsError(ValueError):
    pass


def _parse(text: str, source: str) -> Mapping[str, Any]:
    try:
        is_yaml = source.endswith((".yaml", ".yml"))
        doc = yaml.safe_load(text) if is_yaml else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise CredentialsError(f"{source}: cannot parse: {exc}") from exc
    if not isinstance(doc, Mapping):
        raise CredentialsError(f"{source}: expected a table at the top level")
    return doc


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str | int) for v in value):
        raise CredentialsError(f"{where}: expected a non-empty list of strings")
    return [str(v) for v in value]


def _refuse_inline(body: Mapping[str, Any], where: str) -> None:
    inline = sorted(_INLINE_SECRETS & set(body))
    if inline:
        raise CredentialsError(
            f"{where}: '{inline[0]}' holds a secret inline; store key digests (key_sha256) and "
            "reference tokens with token_env or token_file"
        )


def _caller(body: object, where: str) -> CallerKey:
    if not isinstance(body, Mapping):
        raise CredentialsError(f"{where}: expected a table")
    _refuse_inline(body, where)
    digest = str(body.get("key_sha256", "")).strip().lower()
    if not DIGEST.match(digest):
        raise CredentialsError(f"{where}.key_sha256: expected 64 hex digits (a SHA-256 digest)")
    methods = {m.upper() for m in _strings(body.get("methods"), f"{where}.methods")}
    unknown = methods - _METHODS
    if unknown:
        raise CredentialsError(f"{where}.methods: unknown method {sorted(unknown)[0]!r}")
    return CallerKey(
        name=str(body.get("name") or digest[:8]),
        digest=digest,
        accounts=frozenset(_strings(body.get("accounts"), f"{where}.accounts")),
        methods=frozenset(methods),
    )


def _token(account: str, body: object, where: str, environ: Mapping[str, str]) -> str:
    if not isinstance(body, Mapping):
        raise CredentialsError(f"{where}: expected a table")
    _refuse_inline(body, where)
    env_name, file_name = body.get("token_env"), body.get("token_file")
    if (env_name is None) == (file_name is None):
        raise CredentialsError(f"{where}: set exactly one of token_env or token_file")
    if env_name is not None:
        token = environ.get(str(env_name), "").strip()
        if not token:
            raise CredentialsError(f"{where}.token_env: ${env_name} is not set or empty")
        return token
    try:
        token = Path(str(file_name)).read_text("utf-8").strip()
    except OSError as exc:
        raise CredentialsError(
            f"{where}.token_file: cannot read {file_name}: {exc.strerror}"
        ) from exc
    if not token:
        raise CredentialsError(f"{where}.token_file: {file_name} is empty")
    return token


def parse_credentials(
    text: str, source: str = "<credentials>", environ: Mapping[str, str] | None = None
) -> Credentials:
    env = os.environ if environ is None else environ
    doc = _parse(text, source)
    accounts = doc.get("accounts", {})
    callers = doc.get("callers", [])
    if not isinstance(accounts, Mapping) or not accounts:
        raise CredentialsError(f"{source}: accounts: expected at least one account table")
    if not isinstance(callers, list) or not callers:
        raise CredentialsError(f"{source}: callers: expected at least one caller")
    tokens = {
        str(acct): _token(str(acct), body, f"{source}: accounts.{acct}", env)
        for acct, body in accounts.items()
    }
    keys = tuple(_caller(body, f"{source}: callers[{i}]") for i, body in enumerate(callers))
    seen: set[str] = set()
    for key in keys:
        if key.digest in seen:
            raise CredentialsError(f"{source}: two callers share the key digest {key.digest[:8]}…")
        seen.add(key.digest)
        unknown = key.accounts - set(tokens) - {ANY_ACCOUNT}
        if unknown:
            raise CredentialsError(
                f"{source}: caller {key.name!r} names account {sorted(unknown)[0]} "
                "which has no token"
            )
    return Credentials(keys=keys, tokens=tokens)


def load_credentials(path: str | Path, environ: Mapping[str, str] | None = None) -> Credentials:
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except OSError as exc:
        raise CredentialsError(f"{p}: cannot read the credentials file: {exc.strerror}") from exc
    return parse_credentials(text, str(p), environ)
