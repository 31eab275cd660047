import json

from gateway.core.links import public_moves, rewrite_links, rewrite_url

UP = ("https://api.harvestapp.com", "https://id.getharvest.com")
PUB = "http://gw.internal:8080"
MOVES = tuple((origin, PUB) for origin in UP)


def test_rewrite_url_only_touches_the_upstream_origin():
    assert rewrite_url("https://api.harvestapp.com/v2/x?page=2", UP[0], PUB) == PUB + "/v2/x?page=2"
    assert rewrite_url("https://api.harvestapp.com.evil/v2", UP[0], PUB).endswith(".evil/v2")
    assert rewrite_url("https://other.example/v2", UP[0], PUB) == "https://other.example/v2"


def test_links_are_rewritten_and_the_rest_is_byte_identical():
    body = (
        b'{"time_entries":[{"notes":"see https://api.harvestapp.com/v2/time_entries?page=2"}],'
        b'"links":{"first":"https://api.harvestapp.com/v2/time_entries?page=1&per_page=2",'
        b'"next":"https://api.harvestapp.com/v2/time_entries?page=2&per_page=2",'
        b'"previous":null,"last":"https://api.harvestapp.com/v2/time_entries?page=9&per_page=2"}}'
    )
    out = rewrite_links(body, MOVES)
    doc = json.loads(out)
    assert doc["links"]["next"] == PUB + "/v2/time_entries?page=2&per_page=2"
    assert doc["links"]["previous"] is None
    # a note that merely mentions a URL (not as a whole JSON string) is left alone
    assert doc["time_entries"][0]["notes"].startswith("see https://api.harvestapp.com")
    assert len(out) == len(body) + 3 * (len(PUB) - len(UP[0]))


def test_escaped_slashes_are_handled():
    body = b'{"links":{"next":"https:\\/\\/api.harvestapp.com\\/v2\\/users?page=2"}}'
    assert json.loads(rewrite_links(body, MOVES))["links"]["next"] == PUB + "/v2/users?page=2"


def test_non_json_or_linkless_bodies_pass_through():
    assert rewrite_links(b"not json", MOVES) == b"not json"
    assert rewrite_links(b'{"links": 5}', MOVES) == b'{"links": 5}'
    assert rewrite_links(b"[1,2]", MOVES) == b"[1,2]"


def test_a_record_quoting_a_link_url_is_left_alone():
    # Regression found by the hypothesis property: the rewrite used to replace the URL anywhere
    # in the body, so a note that pasted the next-page URL came back changed.
    url = "https://api.harvestapp.com/v2/time_entries?page=2"
    body = (
        '{"time_entries": [{"notes": "' + url + '"}], "links": {"next": "' + url + '"}}'
    ).encode()
    out = rewrite_links(body, (("https://api.harvestapp.com", "http://gw"),))
    assert out == body.replace(
        b'"links": {"next": "https://api.harvestapp.com', b'"links": {"next": "http://gw'
    )


def test_harvests_own_hosts_are_rewritten_whatever_the_configured_upstream():
    # A mirror or test double at a loopback address still writes Harvest's hosts into links.
    moves = public_moves("http://127.0.0.1:9", "http://127.0.0.1:10", PUB)
    body = (
        b'{"links":{"next":"https://api.harvestapp.com/v2/users?page=2",'
        b'"accounts":"https://id.getharvest.com/api/v2/accounts",'
        b'"local":"http://127.0.0.1:9/v2/users?page=3"}}'
    )
    links = json.loads(rewrite_links(body, moves))["links"]
    assert links["next"] == PUB + "/v2/users?page=2"
    assert links["accounts"] == PUB + "/id/api/v2/accounts"  # where the gateway serves Harvest ID
    assert links["local"] == PUB + "/v2/users?page=3"
