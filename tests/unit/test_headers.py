from gateway.core.headers import (
    Caller,
    Reject,
    bearer_token,
    check_api_request,
    hop_by_hop,
    principal_of,
)
from gateway.policy.schema import GetBody, HeaderRules

UA = {"User-Agent": "App (a@example.com)"}
AUTH = {"Authorization": "Bearer tok", "Harvest-Account-Id": "123", **UA}


def check(headers, query=None, method="GET", body=b"", rules=None, needs_account=True):
    return check_api_request(
        method=method,
        headers=headers,
        query=query or {},
        body=body,
        rules=rules or HeaderRules(),
        needs_account=needs_account,
    )


def test_valid_request_yields_caller_with_digest_not_token():
    caller = check(AUTH)
    assert isinstance(caller, Caller)
    assert caller.account_id == "123"
    assert caller.principal == principal_of("tok", "123")
    assert "tok" not in (caller.principal or "")


def test_query_credentials_are_accepted_like_harvest():
    caller = check(UA, {"access_token": "tok", "account_id": "123"})
    assert isinstance(caller, Caller)
    assert caller.principal == principal_of("tok", "123")


def test_missing_user_agent_is_400_unless_a_default_is_configured():
    no_ua = {k: v for k, v in AUTH.items() if k != "User-Agent"}
    verdict = check(no_ua)
    assert isinstance(verdict, Reject)
    assert (verdict.status, verdict.error) == (400, "missing_user_agent")
    injected = check(no_ua, rules=HeaderRules(default_user_agent="GW (ops@example.com)"))
    assert isinstance(injected, Caller)
    assert injected.user_agent == "GW (ops@example.com)"


def test_missing_token_or_account_is_401_invalid_token():
    for headers in ({"Harvest-Account-Id": "1", **UA}, {"Authorization": "Bearer t", **UA}):
        verdict = check(headers)
        assert isinstance(verdict, Reject)
        assert (verdict.status, verdict.error) == (401, "invalid_token")


def test_basic_auth_is_not_a_harvest_credential():
    verdict = check({"Authorization": "Basic dXNlcjpwdw==", "Harvest-Account-Id": "1", **UA})
    assert isinstance(verdict, Reject)
    assert verdict.status == 401


def test_id_routes_need_no_account():
    assert isinstance(check(UA, needs_account=False), Caller)


def test_get_with_body_is_rejected_or_stripped_per_policy():
    verdict = check(AUTH, body=b"null")
    assert isinstance(verdict, Reject)
    assert verdict.description == "HTTP GET requests with a body are not accepted."
    stripped = check(AUTH, body=b"null", rules=HeaderRules(get_with_body=GetBody.STRIP))
    assert isinstance(stripped, Caller)
    assert stripped.strip_body


def test_malformed_json_body_is_rejected_with_position():
    headers = {**AUTH, "Content-Type": "application/json; charset=utf-8"}
    verdict = check(headers, method="POST", body=b'{"project_id": ')
    assert isinstance(verdict, Reject)
    assert verdict.error == "invalid_json"
    assert "line 1" in verdict.description
    assert isinstance(check(headers, method="POST", body=b'{"a": 1}'), Caller)
    # Form bodies are not JSON and pass through untouched.
    form = {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}
    assert isinstance(check(form, method="POST", body=b"a=1&b"), Caller)


def test_malformed_account_id_is_refused():
    verdict = check({**AUTH, "Harvest-Account-Id": "1; DROP"})
    assert isinstance(verdict, Reject)
    assert verdict.status == 400


def test_hop_by_hop_includes_fields_named_in_connection():
    names = hop_by_hop([("Connection", "keep-alive, X-Secret"), ("X-Secret", "1")])
    assert {"connection", "keep-alive", "x-secret", "transfer-encoding", "te"} <= names


def test_bearer_parsing():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


def test_principals_differ_per_token_and_per_account():
    assert principal_of("a", "1") != principal_of("b", "1")
    assert principal_of("a", "1") != principal_of("a", "2")


def test_access_log_choices():
    from gateway.settings import AccessLog
    from gateway.web.proxy import wants_access_log

    assert wants_access_log(AccessLog.ALL, 200, "HIT")
    assert not wants_access_log(AccessLog.MISSES, 200, "HIT")
    assert wants_access_log(AccessLog.MISSES, 200, "MISS")
    assert wants_access_log(AccessLog.MISSES, 502, "none")
    assert not wants_access_log(AccessLog.ERRORS, 200, "MISS")
    assert wants_access_log(AccessLog.ERRORS, 503, "HIT")
