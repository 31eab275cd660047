import pytest

from gateway.core.routes import RouteError, Upstream, canonical_path, is_report, resolve


@pytest.mark.parametrize(
    ("raw", "path", "template"),
    [
        ("/v2/users/me", "/v2/users/me", "/v2/users/me"),
        ("/api/v2/users/me", "/v2/users/me", "/v2/users/me"),
        ("/v2/time_entries/123", "/v2/time_entries/123", "/v2/time_entries/{id}"),
        ("/api/v2/clients/9/", "/v2/clients/9/", "/v2/clients/{id}"),
        # A trailing slash is the same Rails route: a report keeps its (reports) quota.
        ("/v2/reports/time/clients/", "/v2/reports/time/clients/", "/v2/reports/time/clients"),
        ("/v2/users/me.json", "/v2/users/me.json", "/v2/users/me"),
        ("/v2/projects/1/user_assignments/2", "/v2/projects/1/user_assignments/2",
         "/v2/projects/{id}/user_assignments/{id}"),
        ("/v2/reports/time/team", "/v2/reports/time/team", "/v2/reports/time/team"),
        ("/v2/no_such_thing/42", "/v2/no_such_thing/42", "/v2/{unknown}"),
    ],
)  # fmt: skip
def test_api_paths_resolve_to_normalised_path_and_bounded_template(raw, path, template):
    route = resolve(raw)
    assert route.upstream is Upstream.API
    assert (route.path, route.template) == (path, template)


def test_id_prefix_goes_to_harvest_id_without_the_prefix():
    route = resolve("/id/api/v2/oauth2/token")
    assert route.upstream is Upstream.ID
    assert route.path == "/api/v2/oauth2/token"
    assert route.template == "/id/api/v2/oauth2/token"
    assert resolve("/id/api/v2/else").template == "/id/{unknown}"


@pytest.mark.parametrize("raw", ["/api/v2/oauth2/token", "/api/v2/accounts"])
def test_harvest_ids_api_calls_asked_of_the_api_prefix_go_to_harvest_id(raw):
    # tap-harvest's token URL is https://id.getharvest.com/api/v2: a base-URL swap to the
    # gateway makes it {gateway}/api/v2/oauth2/token, a path the API host does not have.
    route = resolve(raw)
    assert route.upstream is Upstream.ID
    assert route.path == raw
    assert route.template == "/id" + raw
    assert resolve("/api/v2/accounts/1").upstream is Upstream.API  # only those two paths


@pytest.mark.parametrize("raw", ["/id/anything/else", "/id/", "/id/api/v2", "/id/api/v2/"])
def test_id_serves_only_harvest_ids_api(raw):
    # Regression (found writing the fuzz properties): /id/{anything} reached any path on the
    # ID host, not only its API.
    with pytest.raises(RouteError):
        resolve(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "/",
        "/v1/users",
        "/v2/../admin",
        "/v2/%2e%2e/admin",
        "/v2/%2E%2E%2Fadmin",
        "//evil.example/v2/users",
        "/v2//users",
        "/id/../v2/users",
        "/v2/users%5c..%5cx",
        "/v2/users/%00",
        "/v2/users/me@evil.example",
        # Regressions found by the hypothesis property: encoded slashes made empty segments.
        "/v2/%2f",
        "/v2/a%2F%2Fb",
        "/v2/%2f%2fevil.example/users",
    ],
)
def test_paths_that_could_leave_the_api_are_refused(raw):
    with pytest.raises(RouteError):
        resolve(raw)


def test_reports_are_recognised_on_both_prefixes():
    assert is_report(resolve("/api/v2/reports/uninvoiced"))
    assert not is_report(resolve("/v2/time_entries"))


def test_canonical_path_drops_json_suffix():
    assert canonical_path("/v2/users/me.json") == "/v2/users/me"
    assert canonical_path("/v2/users/me") == "/v2/users/me"


def test_canonical_path_drops_a_trailing_slash():
    assert canonical_path("/v2/users/me/") == "/v2/users/me"
    assert canonical_path("/v2/users/me/project_assignments/") == "/v2/users/me/project_assignments"
