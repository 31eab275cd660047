import json

from gateway.core.links import rewrite_links, rewrite_url

UP = ("https://api.harvestapp.com", "https://id.getharvest.com")
PUB = "http://gw.internal:8080"


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
    out = rewrite_links(body, UP, PUB)
    doc = json.loads(out)
    assert doc["links"]["next"] == PUB + "/v2/time_entries?page=2&per_page=2"
    assert doc["links"]["previous"] is None
    # a note that merely mentions a URL (not as a whole JSON string) is left alone
    assert doc["time_entries"][0]["notes"].startswith("see https://api.harvestapp.com")
    assert len(out) == len(body) + 3 * (len(PUB) - len(UP[0]))


def test_escaped_slashes_are_handled():
    body = b'{"links":{"next":"https:\\/\\/api.harvestapp.com\\/v2\\/users?page=2"}}'
    assert json.loads(rewrite_links(body, UP, PUB))["links"]["next"] == PUB + "/v2/users?page=2"


def test_non_json_or_linkless_bodies_pass_through():
    assert rewrite_links(b"not json", UP, PUB) == b"not json"
    assert rewrite_links(b'{"links": 5}', UP, PUB) == b'{"links": 5}'
    assert rewrite_links(b"[1,2]", UP, PUB) == b"[1,2]"


def test_a_record_quoting_a_link_url_is_left_alone():
    # Regression found by the hypothesis property: the rewrite used to replace the URL anywhere
    # in the body, so a note that pasted the next-page URL came back changed.
    url = "https://api.harvestapp.com/v2/time_entries?page=2"
    body = (
        '{"time_entries": [{"notes": "' + url + '"}], "links": {"next": "' + url + '"}}'
    ).encode()
    out = rewrite_links(body, ("https://api.harvestapp.com",), "http://gw")
    assert out == body.replace(
        b'"links": {"next": "https://api.harvestapp.com', b'"links": {"next": "http://gw'
    )
