"""10 - HTTP behaviour: paths, media types, content negotiation, limits,
ProblemDetails for every error."""
import http.client
import json

import pytest

from helpers import BASE, ENTITIES, CORE_CONTEXT, assert_problem, link, link_context_url, prop

ID = "urn:ngsi-ld:Door:h1"


@pytest.fixture(scope="module", autouse=True)
def data(hub):
    assert hub.post(ENTITIES, {"id": ID, "type": "Door", "open": prop(True)})[0] == 201


def test_trailing_slash_same_resource(hub):
    a = hub.get(ENTITIES + "/" + ID)
    b = hub.get(ENTITIES + "/" + ID + "/")
    assert a[0] == b[0] == 200
    assert a[2] == b[2]
    st, _, body = hub.get(ENTITIES + "/?type=Door")
    assert st == 200 and [x["id"] for x in body] == [ID]


def test_json_with_charset(hub):
    st, _, _ = hub.post(ENTITIES, {"id": "urn:ngsi-ld:Door:h2", "type": "Door",
                                   "open": prop(True)},
                        ctype="application/json; charset=utf-8")
    assert st == 201, hub.last_text
    st, _, _ = hub.patch(ENTITIES + "/urn:ngsi-ld:Door:h2/attrs", {"open": prop(False)},
                         ctype="application/json;charset=UTF-8")
    assert st == 204, hub.last_text
    assert hub.get(ENTITIES + "/urn:ngsi-ld:Door:h2")[2]["open"]["value"] is False


def test_content_type_case_insensitive(hub):
    st, _, _ = hub.post(ENTITIES, {"id": "urn:ngsi-ld:Door:h3", "type": "Door"},
                        ctype="Application/JSON")
    assert st == 201, hub.last_text


def test_unknown_route_404(hub):
    for path in ("/nothing", BASE + "/nothing", BASE + "/entities/" + ID + "/bogus/x"):
        st, _, b = hub.get(path)
        assert_problem(st, b, 404, "ResourceNotFound")


def test_wrong_method_405_allow(hub):
    st, h, b = hub.put(ENTITIES, {"id": "urn:ngsi-ld:Door:x", "type": "Door"})
    assert_problem(st, b, 405, "OperationNotSupported")
    allow = {m.strip() for m in h["allow"].split(",")}
    assert allow == {"GET", "POST"}
    st, h, b = hub.request("POST", ENTITIES + "/" + ID, {"type": "Door"})
    assert st == 405
    assert {m.strip() for m in h["allow"].split(",")} == {"GET", "PUT", "PATCH", "DELETE"}
    st, h, b = hub.delete("/version")
    assert st == 405 and h["allow"].strip() == "GET"


def test_body_too_large_413(hub_factory):
    small = hub_factory("--max-body", "2048")
    ok = {"id": "urn:ngsi-ld:Door:small", "type": "Door", "n": prop("x" * 500)}
    assert small.post(ENTITIES, ok)[0] == 201, small.last_text
    big = {"id": "urn:ngsi-ld:Door:big", "type": "Door", "n": prop("x" * 5000)}
    try:
        st, _, b = small.post(ENTITIES, big)
    except (ConnectionError, http.client.HTTPException) as e:  # pragma: no cover
        pytest.fail("server dropped the connection instead of answering 413: %r" % e)
    assert_problem(st, b, 413, "InvalidRequest")
    assert small.get(ENTITIES + "/urn:ngsi-ld:Door:big")[0] == 404
    # the server still works
    assert small.get("/health")[0] == 200


def test_text_plain_415(hub):
    st, _, b = hub.post(ENTITIES, json.dumps({"id": "urn:ngsi-ld:Door:tp", "type": "Door"}),
                        ctype="text/plain")
    assert_problem(st, b, 415, "InvalidRequest")
    assert hub.get(ENTITIES + "/urn:ngsi-ld:Door:tp")[0] == 404


def test_missing_content_type_415(hub):
    st, _, b = hub.post(ENTITIES, json.dumps({"id": "urn:ngsi-ld:Door:nct", "type": "Door"}),
                        ctype=None)
    assert_problem(st, b, 415, "InvalidRequest")


def test_accept_html_406(hub):
    st, _, b = hub.get(ENTITIES + "/" + ID, headers={"Accept": "text/html"})
    assert_problem(st, b, 406, "InvalidRequest")


@pytest.mark.parametrize("accept", ["*/*", "application/*", "application/json",
                                    "text/html, application/json;q=0.5"])
def test_accept_json_variants(hub, accept):
    st, h, b = hub.get(ENTITIES + "/" + ID, headers={"Accept": accept})
    assert st == 200
    assert h["content-type"].startswith("application/json")
    assert "@context" not in b
    assert link_context_url(h) == CORE_CONTEXT


def test_accept_ld_json_context_in_body(hub):
    st, h, b = hub.get(ENTITIES + "/" + ID, headers={"Accept": "application/ld+json"})
    assert st == 200
    assert h["content-type"].startswith("application/ld+json")
    assert b["@context"] in (CORE_CONTEXT, [CORE_CONTEXT])
    assert link_context_url(h) is None
    st, h, b = hub.get(ENTITIES + "?type=Door", headers={"Accept": "application/ld+json"})
    assert st == 200
    assert h["content-type"].startswith("application/ld+json")
    assert all(x["@context"] in (CORE_CONTEXT, [CORE_CONTEXT]) for x in b)


def test_accept_ld_json_echoes_link_context(hub, context_server):
    url = context_server.url()
    st, h, b = hub.get(ENTITIES + "/" + ID,
                       headers={**link(url), "Accept": "application/ld+json"})
    assert st == 200
    assert b["@context"] in (url, [url], [url, CORE_CONTEXT])


def test_json_response_link_header(hub, context_server):
    url = context_server.url()
    st, h, b = hub.get(ENTITIES + "?type=Door", headers=link(url))
    assert st == 200
    assert link_context_url(h) == url


def test_errors_are_json_problem(hub):
    st, h, b = hub.get(ENTITIES + "/urn:ngsi-ld:Door:none")
    assert_problem(st, b, 404, "ResourceNotFound")
    assert h["content-type"].split(";")[0] in ("application/json",
                                               "application/problem+json")


def test_keep_alive_many_requests(hub):
    for i in range(50):
        assert hub.get(ENTITIES + "/" + ID)[0] == 200


def test_version(hub):
    st, h, b = hub.get("/version")
    assert st == 200
    assert b["name"] == "pilotlight"
    assert isinstance(b["version"], str) and b["version"]
    assert isinstance(b["build"], str) and b["build"]


def test_health(hub):
    st, h, b = hub.get("/health")
    assert st == 200
    assert b["status"] == "ok"


def test_head_or_options_not_crashing(hub):
    st, _, _ = hub.request("OPTIONS", ENTITIES)
    assert st in (200, 204, 405)
    assert hub.get("/health")[0] == 200


def test_head_is_get_without_body(hub):
    """HEAD answers like GET (status, headers), with no body."""
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Head:1", "type": "Head"})[0] == 201
    st, h, b = hub.request("HEAD", ENTITIES + "/urn:ngsi-ld:Head:1")
    assert st == 200 and b is None and hub.last_text == ""
    assert h["content-type"].startswith("application/json")
    st, _, _ = hub.request("HEAD", ENTITIES + "/urn:ngsi-ld:Head:missing")
    assert st == 404
    st, h, _ = hub.request("HEAD", "/ngsi-ld/v1/entityOperations/create")
    assert st == 405 and "POST" in h["allow"]
