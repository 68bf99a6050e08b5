"""08 - @context handling and /jsonldContexts (GS CIM 009 5.5.7, 5.13):
hosting a context, listing, serving, deleting, core context URLs without
network, remote contexts fetched once and persisted across a restart,
unreachable contexts."""

import pytest

from conftest import free_port
from helpers import (BASE, ENTITIES, CORE_CONTEXT, CORE_UNVERSIONED, CORE_V13,
                     assert_problem, link, link_context_url, prop)

C = BASE + "/jsonldContexts"
LD = "application/ld+json"
DOC = {"@context": {"Fountain": "https://example.org/water/Fountain",
                    "flow": "https://example.org/water/flow"}}


@pytest.fixture(scope="module")
def hosted(hub):
    st, h, b = hub.post(C, DOC)
    assert st == 201, hub.last_text
    loc = h["location"]
    assert loc.startswith(C + "/")
    local_id = loc[len(C) + 1:]
    assert local_id
    return {"id": local_id, "path": loc, "url": "http://localhost:%d%s" % (hub.port, loc)}


def test_host_context_201(hosted):
    assert hosted["id"]


def test_list_contains_hosted_and_core(hub, hosted):
    st, _, b = hub.get(C)
    assert st == 200, hub.last_text
    assert isinstance(b, list) and all(isinstance(x, str) for x in b)
    assert CORE_CONTEXT in b
    assert any(x.endswith("/jsonldContexts/" + hosted["id"]) for x in b), b


def test_list_details(hub, hosted):
    st, _, b = hub.get(C + "?details=true")
    assert st == 200
    mine = [x for x in b if x["localId"] == hosted["id"]]
    assert len(mine) == 1
    assert mine[0]["kind"] == "Hosted"
    assert mine[0]["URL"].endswith("/jsonldContexts/" + hosted["id"])
    st, _, b = hub.get(C + "?kind=Hosted")
    assert st == 200
    assert CORE_CONTEXT not in b
    assert any(x.endswith(hosted["id"]) for x in b)


def test_get_hosted_document(hub, hosted):
    st, h, b = hub.get(hosted["path"])
    assert st == 200, hub.last_text
    assert b == DOC


def test_use_hosted_as_link(hub, hosted):
    hdr = link(hosted["url"])
    st, _, _ = hub.post(ENTITIES, {"id": "urn:ngsi-ld:Fountain:f1", "type": "Fountain",
                                   "flow": prop(3.5)}, headers=hdr)
    assert st == 201, hub.last_text
    st, h, b = hub.get(ENTITIES + "/urn:ngsi-ld:Fountain:f1", headers=hdr)
    assert st == 200
    assert b["type"] == "Fountain" and b["flow"]["value"] == 3.5
    assert link_context_url(h) == hosted["url"]
    b = hub.get(ENTITIES + "/urn:ngsi-ld:Fountain:f1")[2]
    assert b["type"] == "https://example.org/water/Fountain"
    assert b["https://example.org/water/flow"]["value"] == 3.5
    # and as the body @context
    st, _, _ = hub.post(ENTITIES, {"id": "urn:ngsi-ld:Fountain:f2", "type": "Fountain",
                                   "@context": hosted["url"]}, ctype=LD)
    assert st == 201, hub.last_text
    assert hub.get(ENTITIES + "/urn:ngsi-ld:Fountain:f2")[2]["type"] == \
        "https://example.org/water/Fountain"


def test_delete_hosted(hub):
    st, h, _ = hub.post(C, {"@context": {"Tmp": "https://example.org/Tmp"}})
    assert st == 201
    path = h["location"]
    st, _, b = hub.delete(path)
    assert st == 204, hub.last_text
    st, _, b = hub.get(path)
    assert_problem(st, b, 404, "ResourceNotFound")
    st, _, b = hub.delete(path)
    assert_problem(st, b, 404, "ResourceNotFound")


def test_host_invalid_400(hub):
    st, _, b = hub.post(C, {"no": "context"})
    assert_problem(st, b, 400, "InvalidRequest")
    st, _, b = hub.post(C, "{not json")
    assert_problem(st, b, 400, "InvalidRequest")


def test_unknown_context_404(hub):
    st, _, b = hub.get(C + "/nonexistent-id")
    assert_problem(st, b, 404, "ResourceNotFound")


def test_core_context_served_and_protected(hub):
    st, _, b = hub.get(C + "/ngsi-ld-core-context")
    assert st == 200
    assert "@context" in b
    st, _, b = hub.delete(C + "/ngsi-ld-core-context")
    assert_problem(st, b, 400, "BadRequestData")


CORE_URLS = [CORE_CONTEXT, CORE_UNVERSIONED, CORE_V13, CORE_CONTEXT.replace("https://", "http://")]


@pytest.mark.parametrize("url", CORE_URLS)
def test_core_urls_work_offline(hub, url):
    n = url.rsplit("-", 1)[-1].replace(".jsonld", "").replace(".", "")
    eid = "urn:ngsi-ld:CoreUse:%d" % CORE_URLS.index(url)
    st, _, _ = hub.post(ENTITIES, {"id": eid, "type": "CoreUse", "v": prop(n),
                                   "@context": url}, ctype=LD)
    assert st == 201, hub.last_text
    st, h, b = hub.get(ENTITIES + "/" + eid, headers=link(url))
    assert st == 200, hub.last_text
    assert b["type"] == "CoreUse"
    assert b["v"]["value"] == n
    assert link_context_url(h) == url


def test_unreachable_context_503(hub):
    url = "http://127.0.0.1:%d/contexts/none.jsonld" % free_port()
    st, _, b = hub.get(ENTITIES + "?type=X", headers=link(url))
    assert_problem(st, b, 503, "LdContextNotAvailable")
    st, _, b = hub.post(ENTITIES, {"id": "urn:ngsi-ld:X:u1", "type": "X", "@context": url},
                        ctype=LD)
    assert_problem(st, b, 503, "LdContextNotAvailable")
    assert hub.get(ENTITIES + "/urn:ngsi-ld:X:u1")[0] == 404


def test_context_404_is_503(hub, context_server):
    url = context_server.add("/contexts/gone.jsonld", DOC)
    context_server.status = 404
    try:
        st, _, b = hub.get(ENTITIES + "?type=X", headers=link(url))
        assert_problem(st, b, 503, "LdContextNotAvailable")
    finally:
        context_server.status = 200
    # the failure was not cached: it works once the server answers
    st, _, b = hub.get(ENTITIES + "?type=Fountain", headers=link(url))
    assert st == 200, hub.last_text


def test_context_not_a_context_503(hub, context_server):
    url = context_server.add("/contexts/notctx.jsonld", b"this is not json")
    st, _, b = hub.get(ENTITIES + "?type=X", headers=link(url))
    assert_problem(st, b, 503, "LdContextNotAvailable")


def test_remote_context_fetched_once(hub, context_server):
    path = "/contexts/once.jsonld"
    url = context_server.add(path, {"@context": {"Pump": "https://example.org/pump/Pump",
                                                 "rate": "https://example.org/pump/rate"}})
    hdr = link(url)
    assert context_server.count(path) == 0
    st, _, _ = hub.post(ENTITIES, {"id": "urn:ngsi-ld:Pump:p1", "type": "Pump",
                                   "rate": prop(1)}, headers=hdr)
    assert st == 201, hub.last_text
    for _ in range(3):
        st, _, b = hub.get(ENTITIES + "/urn:ngsi-ld:Pump:p1", headers=hdr)
        assert st == 200 and b["rate"]["value"] == 1
        st, _, b = hub.get(ENTITIES + "?type=Pump&q=rate==1", headers=hdr)
        assert st == 200 and [x["id"] for x in b] == ["urn:ngsi-ld:Pump:p1"]
    st, _, _ = hub.post(ENTITIES, {"id": "urn:ngsi-ld:Pump:p2", "type": "Pump",
                                   "@context": url}, ctype=LD)
    assert st == 201
    assert context_server.count(path) == 1
    st, _, b = hub.get(C + "?details=true")
    mine = [x for x in b if x["URL"] == url]
    assert len(mine) == 1 and mine[0]["kind"] == "Cached"


def test_link_and_body_context_together_400(hub, context_server):
    st, _, b = hub.post(ENTITIES, {"id": "urn:ngsi-ld:X:lb", "type": "X",
                                   "@context": CORE_CONTEXT},
                        headers=link(context_server.url()), ctype=LD)
    assert_problem(st, b, 400, "BadRequestData")


def test_inline_context(hub):
    e = {"id": "urn:ngsi-ld:Lamp:inline", "type": "Lamp", "lux": prop(300),
         "@context": [{"Lamp": "https://example.org/Lamp", "lux": "https://example.org/lux"},
                      CORE_CONTEXT]}
    assert hub.post(ENTITIES, e, ctype=LD)[0] == 201, hub.last_text
    b = hub.get(ENTITIES + "/urn:ngsi-ld:Lamp:inline")[2]
    assert b["type"] == "https://example.org/Lamp"
    assert b["https://example.org/lux"]["value"] == 300


def test_zz_restart_works_offline(hub, context_server, city_entities, hosted):
    """Last in the file: contexts survive a restart with the context server
    down (they were persisted in the store)."""
    url = context_server.url()
    e = dict(city_entities["streetlight"])
    e["id"] = "urn:ngsi-ld:Streetlight:ctx-restart"
    assert hub.post(ENTITIES, e, ctype=LD)[0] == 201, hub.last_text
    n = context_server.count()
    assert n == 1
    context_server.stop()
    hub.restart()
    st, _, b = hub.get(ENTITIES + "/" + e["id"], headers=link(url))
    assert st == 200, hub.last_text
    assert b["type"] == "Streetlight"
    assert b["powerState"]["value"] == "on"
    st, _, b = hub.get(ENTITIES + "?type=Streetlight&q=powerState==on", headers=link(url))
    assert st == 200 and [x["id"] for x in b] == [e["id"]]
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Streetlight:ctx-restart2",
                               "type": "Streetlight", "powerState": prop("off")},
                    headers=link(url))[0] == 201
    assert context_server.count() == n
    # the hosted context survived too
    st, _, b = hub.get(hosted["path"])
    assert st == 200 and b == DOC
    st, _, b = hub.get(ENTITIES + "/urn:ngsi-ld:Fountain:f1",
                       headers=link("http://localhost:%d%s" % (hub.port, hosted["path"])))
    assert st == 200, hub.last_text
    assert b["type"] == "Fountain"
