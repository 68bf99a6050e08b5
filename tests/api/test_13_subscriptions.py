"""
test_13_subscriptions.py - /subscriptions (GS CIM 009 5.8) and HTTP
notifications: CRUD, validation errors, matching (type, id, idPattern,
watchedAttributes, q, triggers), payload shape, receiverInfo headers, status
counters, failing receivers, isActive, expiresAt, throttling, restart.

A Receiver is a real HTTP server on a free loopback port (http.server in a
thread) that records every request; tests wait for notifications by polling
it (no fixed sleeps where an event is awaited).
"""
import time

import pytest

from conftest import free_port
from helpers import BASE, ENTITIES, SLOW, assert_problem, check_iso, link, prop
from receiver import Receiver

SUBS = BASE + "/subscriptions"
WAIT = 10 * SLOW


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def sub(uri, sid=None, **kw):
    s = {"type": "Subscription", "entities": [{"type": "Sensor"}],
         "notification": {"endpoint": {"uri": uri}}}
    if sid:
        s["id"] = sid
    for k, v in kw.items():
        if k == "notification":
            s["notification"].update(v)
        else:
            s[k] = v
    return s


def create_sub(hub, body, tenant=None):
    st, h, b = hub.post(SUBS, body, tenant=tenant)
    assert st == 201, (st, b)
    loc = h["location"]
    assert loc.startswith(SUBS + "/")
    return loc[len(SUBS) + 1:]


def sensor(i, temp=20, **extra):
    e = {"id": "urn:ngsi-ld:Sensor:%s" % i, "type": "Sensor", "temperature": prop(temp)}
    e.update(extra)
    return e


def wait_status(hub, sid, pred, tenant=None, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        st, _, b = hub.get(SUBS + "/" + sid, tenant=tenant)
        assert st == 200, b
        if pred(b) or time.monotonic() > deadline:
            return b
        time.sleep(0.05)


# ---- CRUD ----------------------------------------------------------------

def test_create_get_list_patch_delete(hub, receiver):
    sid = "urn:ngsi-ld:Subscription:crud-1"
    body = sub(receiver.url, sid, watchedAttributes=["temperature"], q="temperature>30",
               notification={"attributes": ["temperature"], "format": "keyValues"},
               subscriptionName="hot sensors")
    assert create_sub(hub, body, tenant="crud") == sid
    st, h, b = hub.get(SUBS + "/" + sid, tenant="crud")
    assert st == 200
    assert b["id"] == sid and b["type"] == "Subscription"
    assert b["entities"] == [{"type": "Sensor"}]
    assert b["watchedAttributes"] == ["temperature"]
    assert b["q"] == "temperature>30"
    assert b["subscriptionName"] == "hot sensors"
    assert b["notification"]["attributes"] == ["temperature"]
    assert b["notification"]["format"] == "keyValues"
    assert b["notification"]["endpoint"]["uri"] == receiver.url
    assert b["status"] == "active" and b["isActive"] is True
    assert b["notification"]["timesSent"] == 0
    assert "_status" not in b and "@context" not in b

    # duplicate id
    st, _, b = hub.post(SUBS, body, tenant="crud")
    assert_problem(st, b, 409, "AlreadyExists")

    # generated id, list with count and paging
    sid2 = create_sub(hub, sub(receiver.url), tenant="crud")
    assert sid2.startswith("urn:ngsi-ld:Subscription:") and sid2 != sid
    st, h, b = hub.get(SUBS + "?count=true", tenant="crud")
    assert st == 200 and [s["id"] for s in b] == [sid, sid2]
    assert h["ngsild-results-count"] == "2"
    st, _, b = hub.get(SUBS + "?limit=1&offset=1", tenant="crud")
    assert [s["id"] for s in b] == [sid2]
    st, _, b = hub.get(SUBS, tenant="other-tenant-crud")
    assert st == 200 and b == []

    # patch
    st, _, b = hub.patch(SUBS + "/" + sid, {"q": "temperature>40", "isActive": False,
                                            "notification": {"format": "normalized"}},
                         tenant="crud")
    assert st == 204, b
    st, _, b = hub.get(SUBS + "/" + sid, tenant="crud")
    assert b["q"] == "temperature>40" and b["isActive"] is False and b["status"] == "paused"
    assert b["notification"]["format"] == "normalized"
    assert b["notification"]["attributes"] == ["temperature"]
    st, _, b = hub.patch(SUBS + "/" + sid, {"q": "temperature>>"}, tenant="crud")
    assert_problem(st, b, 400, "BadRequestData")
    st, _, b = hub.patch(SUBS + "/urn:ngsi-ld:Subscription:nope", {"q": "a>1"}, tenant="crud")
    assert_problem(st, b, 404, "ResourceNotFound")

    # delete
    st, _, _ = hub.delete(SUBS + "/" + sid, tenant="crud")
    assert st == 204
    st, _, b = hub.get(SUBS + "/" + sid, tenant="crud")
    assert_problem(st, b, 404, "ResourceNotFound")
    st, _, b = hub.delete(SUBS + "/" + sid, tenant="crud")
    assert_problem(st, b, 404, "ResourceNotFound")



def test_subscription_id_that_is_not_a_uri_is_400(hub, receiver):
    """GET, PATCH and DELETE /subscriptions/{id} with an id that is not a
    URI: 400 BadRequestData (GS CIM 009 6.10.3, 6.11.3), not 404; a URI no
    subscription has stays 404, and the subscription is untouched."""
    t = "crud-nonuri"
    sid = create_sub(hub, sub(receiver.url), tenant=t)
    for bad in ("not-a-uri", "x%20y"):
        st, _, b = hub.get(SUBS + "/" + bad, tenant=t)
        assert_problem(st, b, 400, "BadRequestData")
        assert "URI" in b["detail"], b
        st, _, b = hub.patch(SUBS + "/" + bad, {"isActive": False}, tenant=t)
        assert_problem(st, b, 400, "BadRequestData")
        st, _, b = hub.delete(SUBS + "/" + bad, tenant=t)
        assert_problem(st, b, 400, "BadRequestData")
    st, _, b = hub.get(SUBS + "/urn:ngsi-ld:Subscription:none", tenant=t)
    assert_problem(st, b, 404, "ResourceNotFound")
    st, _, b = hub.get(SUBS + "/" + sid, tenant=t)
    assert st == 200 and b["isActive"] is True


def now_ms():
    return int(time.time() * 1000)


def iso_ms(ms):
    """The hub's time format (YYYY-MM-DDThh:mm:ss.fffZ), whose string order is time order."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def test_created_at_and_modified_at(hub, receiver):
    """A subscription's createdAt and modifiedAt (GS CIM 009 5.2.12, 6.3.11):
    shown by GET /subscriptions/{id} and GET /subscriptions with
    options=sysAttrs only; createdAt is when it was created, modifiedAt
    moves with every PATCH (not with the status counters); both survive a
    restart. An unknown option is 400."""
    t = "crud-sysattrs"
    t0 = now_ms()
    sid = create_sub(hub, sub(receiver.url), tenant=t)
    t1 = now_ms()
    st, _, b = hub.get(SUBS + "/" + sid, tenant=t)
    assert st == 200 and "createdAt" not in b and "modifiedAt" not in b, b
    st, _, b = hub.get(SUBS + "/" + sid + "?options=sysAttrs", tenant=t)
    assert st == 200, b
    created = b["createdAt"]
    assert iso_ms(t0) <= created <= iso_ms(t1), (t0, created, t1)
    assert b["modifiedAt"] == created
    st, _, lst = hub.get(SUBS + "?options=sysAttrs", tenant=t)
    assert st == 200 and [(x["id"], x["createdAt"], x["modifiedAt"]) for x in lst] == [
        (sid, created, created)]
    st, _, lst = hub.get(SUBS, tenant=t)
    assert st == 200 and "createdAt" not in lst[0] and "modifiedAt" not in lst[0]

    t2 = now_ms()
    assert hub.patch(SUBS + "/" + sid, {"description": "lamps"}, tenant=t)[0] == 204
    t3 = now_ms()
    st, _, b = hub.get(SUBS + "/" + sid + "?options=sysAttrs", tenant=t)
    modified = b["modifiedAt"]
    assert b["createdAt"] == created and b["description"] == "lamps"
    # the PATCH's time; later than createdAt by a millisecond at least, were the PATCH that fast
    assert created < modified and iso_ms(t2) <= modified <= iso_ms(max(t3, t1 + 1)), b

    # a notification updates the counters, not modifiedAt
    hub.post(ENTITIES, sensor("sa-1"), tenant=t)
    receiver.wait(1)
    b = wait_status(hub, sid, lambda b: b["notification"]["timesSent"] >= 1, tenant=t)
    assert b["notification"]["timesSent"] == 1
    hub.restart()
    st, _, b = hub.get(SUBS + "/" + sid + "?options=sysAttrs", tenant=t)
    assert st == 200, b
    assert (b["createdAt"], b["modifiedAt"]) == (created, modified), b
    assert b["notification"]["timesSent"] == 1
    st, _, b = hub.get(SUBS + "/" + sid + "?options=sysattrs", tenant=t)
    assert_problem(st, b, 400, "BadRequestData")
    st, _, b = hub.get(SUBS + "?options=bogus", tenant=t)
    assert_problem(st, b, 400, "BadRequestData")

def test_names_expanded_with_context(hub, context_server, receiver):
    # city context maps terms to Smart Data Models IRIs; the core-context caller sees IRIs
    sid = "urn:ngsi-ld:Subscription:ctx-1"
    body = {"id": sid, "type": "Subscription", "entities": [{"type": "Streetlight"}],
            "watchedAttributes": ["powerState"],
            "notification": {"endpoint": {"uri": receiver.url}}}
    st, _, b = hub.post(SUBS, body, headers=link(context_server.url()), tenant="ctx")
    assert st == 201, b
    st, _, b = hub.get(SUBS + "/" + sid, headers=link(context_server.url()), tenant="ctx")
    assert b["entities"][0]["type"] == "Streetlight"
    assert b["watchedAttributes"] == ["powerState"]
    st, _, b = hub.get(SUBS + "/" + sid, tenant="ctx")
    assert b["entities"][0]["type"].startswith("https://smartdatamodels.org/")
    assert b["watchedAttributes"][0].startswith("https://smartdatamodels.org/")


def test_link_names_a_hosted_copy_of_an_array_context(hub, context_server, receiver):
    """A subscription made with an array @context (ld+json body) gets
    notifications whose Link header names a context the receiver can fetch:
    an ImplicitlyCreated copy of that array hosted by the hub (5.13.1); a
    one-URL array links that URL."""
    import urllib.parse
    t = "ctx-array"
    city = context_server.url()
    ctx = [city, {"lamp": "https://example.org/lamp#"}]
    body = {"type": "Subscription", "entities": [{"type": "Streetlight"}],
            "notification": {"endpoint": {"uri": receiver.url}}, "@context": ctx}
    st, _, b = hub.post(SUBS, body, tenant=t, ctype="application/ld+json")
    assert st == 201, b
    one = dict(body, **{"@context": [city],
                        "notification": {"endpoint": {"uri": receiver.url + "one"}}})
    st, _, b = hub.post(SUBS, one, tenant=t, ctype="application/ld+json")
    assert st == 201, b
    st, _, b = hub.post(ENTITIES, {"id": "urn:ngsi-ld:Streetlight:ca-1", "type": "Streetlight",
                                   "powerState": prop("on"), "@context": city},
                        tenant=t, ctype="application/ld+json")
    assert st == 201, b
    receiver.wait(2)
    links = {path: h["link"] for path, h, _ in receiver.got}
    assert len(links) == 2
    one_link = [v for k, v in links.items() if k.endswith("one")][0]
    assert one_link.startswith("<%s>;" % city)
    arr_link = [v for k, v in links.items() if not k.endswith("one")][0]
    url = arr_link[1:arr_link.index(">")]
    assert url != city and "/ngsi-ld/v1/jsonldContexts/" in url
    st, _, doc = hub.get(urllib.parse.urlparse(url).path)
    assert st == 200, doc
    assert doc == {"@context": ctx}
    # the terms of the notification are those of that context
    n = [b for path, _, b in receiver.got if not path.endswith("one")][0]
    assert n["data"][0]["type"] == "Streetlight" and "powerState" in n["data"][0]



def test_implicit_context_lives_as_long_as_its_subscriptions(hub):
    """An ImplicitlyCreated @context is the hub's own copy for subscriptions
    (5.13.1): two subscriptions with the same inline context share one; it
    stays while one of them names it (also across a restart) and is removed
    with the last one; a create that fails leaves none behind."""
    import urllib.parse
    ctxs = BASE + "/jsonldContexts?kind=ImplicitlyCreated"
    inline = {"lamp": "https://example.org/lamp#", "Streetlight": "https://example.org/Sl"}

    def implicit():
        st, _, b = hub.get(ctxs)
        assert st == 200, b
        return set(b)

    before = implicit()

    def make(tenant):
        body = {"type": "Subscription", "entities": [{"type": "Streetlight"}],
                "notification": {"endpoint": {"uri": "http://127.0.0.1:9/x"}},
                "@context": inline}
        st, h, b = hub.post(SUBS, body, tenant=tenant, ctype="application/ld+json")
        assert st == 201, b
        return h["location"][len(SUBS) + 1:]

    a = make("ictx-a")
    made = implicit() - before
    assert len(made) == 1, made
    url = made.pop()
    st, _, doc = hub.get(urllib.parse.urlparse(url).path)
    assert st == 200 and doc == {"@context": inline}, doc
    b = make("ictx-b")  # another tenant, the same context: the same copy
    assert implicit() - before == {url}
    assert hub.delete(SUBS + "/" + a, tenant="ictx-a")[0] == 204
    assert url in implicit()  # b still names it
    hub.restart()
    assert url in implicit()  # loaded subscriptions keep theirs
    st, _, b_doc = hub.get(SUBS + "/" + b, tenant="ictx-b")
    assert st == 200, b_doc
    assert hub.delete(SUBS + "/" + b, tenant="ictx-b")[0] == 204
    assert url not in implicit()
    assert hub.get(urllib.parse.urlparse(url).path)[0] == 404
    # made again by a new subscription; a failed create leaves nothing behind
    c = make("ictx-a")
    assert url in implicit()
    dup = {"id": c, "type": "Subscription", "entities": [{"type": "Streetlight"}],
           "notification": {"endpoint": {"uri": "http://127.0.0.1:9/y"}},
           "@context": [inline, {"other": "https://example.org/other#"}]}
    st, _, _ = hub.post(SUBS, dup, tenant="ictx-a", ctype="application/ld+json")
    assert st == 409
    assert implicit() - before == {url}
    assert hub.delete(SUBS + "/" + c, tenant="ictx-a")[0] == 204
    assert implicit() == before

@pytest.mark.parametrize("body,ptype", [
    ({"type": "Subscription", "notification": {"endpoint": {"uri": "http://x/"}}},
     "BadRequestData"),  # neither entities nor watchedAttributes
    ({"type": "Wrong", "entities": [{"type": "A"}],
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"id": "not a uri", "type": "Subscription", "entities": [{"type": "A"}],
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [], "notification": {"endpoint": {"uri": "http://x/"}}},
     "BadRequestData"),
    ({"type": "Subscription", "entities": [{}], "notification": {"endpoint": {"uri": "http://x/"}}},
     "BadRequestData"),
    ({"type": "Subscription", "entities": [{"idPattern": "(["}],
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}]}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}], "notification": {"endpoint": {}}},
     "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}],
      "notification": {"endpoint": {"uri": "ftp://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}],
      "notification": {"endpoint": {"uri": "http://x/", "accept": "text/plain"}}},
     "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}],
      "notification": {"format": "pretty", "endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}], "q": "a>>1",
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}], "watchedAttributes": [],
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}], "notificationTrigger": ["sometimes"],
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}], "timeInterval": 10, "throttling": 5,
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}], "watchedAttributes": ["a"],
      "timeInterval": 10, "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}], "throttling": -1,
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}], "expiresAt": "tomorrow",
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}], "isActive": "yes",
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}],
      "geoQ": {"georel": "near;maxDistance==10", "geometry": "Point"},
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}],
      "notification": {"endpoint": {"uri": "http://x/",
                                    "receiverInfo": [{"key": "X-A", "value": "a\r\nB: c"}]}}},
     "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}], "watchedAttribute": ["a"],
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}], "csf": "a==1",
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}],  # 5.2.14
      "notification": {"format": "keyValues", "showChanges": True,
                       "endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}],  # a typo must not widen it
      "notification": {"attrs": ["a"], "endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}],
      "notification": {"endpoint": {"uri": "http://x/", "timeout": 100}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}], "scopeQ": "Madrid",
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}], "scopeQ": "/a/#/b",
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ({"type": "Subscription", "entities": [{"type": "A"}], "scopeQ": 5,
      "notification": {"endpoint": {"uri": "http://x/"}}}, "BadRequestData"),
    ([1, 2], "InvalidRequest"),
])
def test_validation_errors(hub, body, ptype):
    st, _, b = hub.post(SUBS, body)
    assert_problem(st, b, 400, ptype)


def test_invalid_json(hub):
    st, _, b = hub.post(SUBS, "{nope")
    assert_problem(st, b, 400, "InvalidRequest")


def test_mqtt_broker_unreachable_counts_failure(hub):
    sid = create_sub(hub, sub("mqtt://127.0.0.1:1/topic"), tenant="mqtt")
    hub.post(ENTITIES, sensor("mqtt-1"), tenant="mqtt")
    b = wait_status(hub, sid, lambda b: b["notification"].get("timesFailed", 0) >= 1,
                    tenant="mqtt")
    assert b["notification"]["timesFailed"] == 1
    assert b["notification"]["status"] == "failed"
    assert b["notification"]["endpoint"]["uri"] == "mqtt://127.0.0.1:1/topic"


# ---- notifications ---------------------------------------------------------

def test_notification_on_create_update_delete(hub, receiver):
    t = "n-cud"
    sid = create_sub(hub, sub(receiver.url, notificationTrigger=[
        "entityCreated", "attributeUpdated", "entityDeleted"]), tenant=t)
    assert hub.post(ENTITIES, sensor("cud-1", 21), tenant=t)[0] == 201
    n = receiver.wait(1)[0]
    assert n["type"] == "Notification" and n["subscriptionId"] == sid
    assert n["id"].startswith("urn:ngsi-ld:Notification:")
    check_iso(n["notifiedAt"])
    assert n["data"] == [{"id": "urn:ngsi-ld:Sensor:cud-1", "type": "Sensor",
                          "temperature": {"type": "Property", "value": 21}}]
    assert hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:cud-1/attrs",
                     {"temperature": prop(22)}, tenant=t)[0] == 204
    n = receiver.wait(2)[1]
    assert n["data"][0]["temperature"]["value"] == 22
    assert hub.delete(ENTITIES + "/urn:ngsi-ld:Sensor:cud-1", tenant=t)[0] == 204
    n = receiver.wait(3)[2]
    assert n["data"][0]["id"] == "urn:ngsi-ld:Sensor:cud-1"
    assert n["data"][0]["type"] == "Sensor"
    check_iso(n["data"][0]["deletedAt"])
    # headers: JSON with the context Link, tenant
    _, headers, _ = receiver.got[0]
    assert headers["content-type"] == "application/json"
    assert "rel=\"http://www.w3.org/ns/json-ld#context\"" in headers["link"]
    assert headers["ngsild-tenant"] == t
    # status counters
    b = wait_status(hub, sid, lambda b: b["notification"]["timesSent"] >= 3, tenant=t)
    assert b["notification"]["timesSent"] == 3
    assert b["notification"].get("timesFailed", 0) == 0
    assert b["notification"]["status"] == "ok"
    check_iso(b["notification"]["lastSuccess"])
    check_iso(b["notification"]["lastNotification"])
    assert "lastFailure" not in b["notification"]


def test_default_trigger_ignores_delete(hub, receiver):
    t = "n-default"
    create_sub(hub, sub(receiver.url), tenant=t)
    hub.post(ENTITIES, sensor("def-1"), tenant=t)
    receiver.wait(1)
    hub.delete(ENTITIES + "/urn:ngsi-ld:Sensor:def-1", tenant=t)
    hub.post(ENTITIES, sensor("def-2"), tenant=t)  # a later event proves ordering
    bodies = receiver.wait(2)
    time.sleep(0.2 * SLOW)
    assert [b["data"][0]["id"] for b in receiver.bodies()] == [
        "urn:ngsi-ld:Sensor:def-1", "urn:ngsi-ld:Sensor:def-2"]
    assert len(bodies) == 2


def test_selectors_type_id_pattern(hub, receiver):
    t = "n-sel"
    create_sub(hub, sub(receiver.url, entities=[{"id": "urn:ngsi-ld:Sensor:sel-a"}]), tenant=t)
    create_sub(hub, sub(receiver.url, entities=[{"idPattern": "^urn:ngsi-ld:Sensor:sel-b.*",
                                                 "type": "Sensor"}]), tenant=t)
    create_sub(hub, sub(receiver.url, entities=[{"type": "Other"}]), tenant=t)
    hub.post(ENTITIES, sensor("sel-a"), tenant=t)
    hub.post(ENTITIES, sensor("sel-b1"), tenant=t)
    hub.post(ENTITIES, sensor("sel-c"), tenant=t)
    hub.post(ENTITIES, {"id": "urn:ngsi-ld:Other:1", "type": "Other", "x": prop(1)}, tenant=t)
    receiver.wait(3)
    time.sleep(0.3 * SLOW)
    ids = sorted(b["data"][0]["id"] for b in receiver.bodies())
    assert ids == ["urn:ngsi-ld:Other:1", "urn:ngsi-ld:Sensor:sel-a", "urn:ngsi-ld:Sensor:sel-b1"]


def test_watched_attributes_and_q(hub, receiver):
    t = "n-watch"
    create_sub(hub, sub(receiver.url, watchedAttributes=["humidity"], q="temperature>30"),
               tenant=t)
    hub.post(ENTITIES, sensor("w-1", 35, humidity=prop(50)), tenant=t)   # match
    hub.post(ENTITIES, sensor("w-2", 10, humidity=prop(50)), tenant=t)   # q fails
    receiver.wait(1)
    path = ENTITIES + "/urn:ngsi-ld:Sensor:w-1/attrs"
    hub.patch(path, {"temperature": prop(36)}, tenant=t)                 # not watched
    hub.patch(path, {"humidity": prop(60)}, tenant=t)                    # match
    receiver.wait(2)
    time.sleep(0.3 * SLOW)
    bodies = receiver.bodies()
    assert len(bodies) == 2
    assert bodies[1]["data"][0]["humidity"]["value"] == 60
    assert bodies[1]["data"][0]["temperature"]["value"] == 36


def test_untyped_subscription_by_watched_attribute(hub, receiver):
    """A subscription without an entity type is found through its watched
    attributes (the attribute index): changes of any type that touch a
    watched attribute notify, others do not; a deleted attribute counts."""
    t = "n-untyped"
    body = sub(receiver.url, watchedAttributes=["pressure"],
               notificationTrigger=["attributeCreated", "attributeUpdated", "attributeDeleted"])
    del body["entities"]
    create_sub(hub, body, tenant=t)
    hub.post(ENTITIES, {"id": "urn:ngsi-ld:Tank:u1", "type": "Tank", "pressure": prop(1)},
             tenant=t)                                                    # created: notifies
    hub.post(ENTITIES, {"id": "urn:ngsi-ld:Pump:u2", "type": "Pump", "level": prop(1)},
             tenant=t)                                                    # no pressure
    receiver.wait(1)
    hub.patch(ENTITIES + "/urn:ngsi-ld:Pump:u2/attrs", {"level": prop(2)}, tenant=t)
    hub.patch(ENTITIES + "/urn:ngsi-ld:Tank:u1/attrs", {"pressure": prop(2)}, tenant=t)
    receiver.wait(2)
    assert hub.delete(ENTITIES + "/urn:ngsi-ld:Tank:u1/attrs/pressure", tenant=t)[0] == 204
    receiver.wait(3)
    time.sleep(0.3 * SLOW)
    bodies = receiver.bodies()
    assert [b["data"][0]["id"] for b in bodies] == ["urn:ngsi-ld:Tank:u1"] * 3
    assert bodies[1]["data"][0]["pressure"]["value"] == 2
    # the deleted attribute is named, with the NGSI-LD null (5.2.1)
    assert bodies[2]["data"][0]["pressure"] == {"type": "Property", "value": "urn:ngsi-ld:null"}


def test_deleted_attribute_is_named_in_every_format(hub, receiver):
    t = "n-attrdel"
    for fmt, path in (("normalized", "n"), ("keyValues", "kv")):
        create_sub(hub, sub(receiver.url + path, notificationTrigger=["attributeDeleted"],
                            notification={"format": fmt, "sysAttrs": fmt == "normalized",
                                          "endpoint": {"uri": receiver.url + path}}), tenant=t)
    hub.post(ENTITIES, sensor("ad-1", 5, humidity=prop(40),
                              site={"type": "Relationship", "object": "urn:ngsi-ld:Site:1"}),
             tenant=t)
    assert hub.delete(ENTITIES + "/urn:ngsi-ld:Sensor:ad-1/attrs/humidity", tenant=t)[0] == 204
    assert hub.delete(ENTITIES + "/urn:ngsi-ld:Sensor:ad-1/attrs/site", tenant=t)[0] == 204
    receiver.wait(4)
    n = [b["data"][0] for path, _, b in receiver.got if path.endswith("n")]
    kv = [b["data"][0] for path, _, b in receiver.got if path.endswith("kv")]
    assert len(n) == 2 and len(kv) == 2
    assert n[0]["humidity"]["value"] == "urn:ngsi-ld:null"
    assert n[0]["humidity"]["type"] == "Property"
    check_iso(n[0]["humidity"]["deletedAt"])
    assert n[0]["temperature"]["value"] == 5 and "site" in n[0]
    assert n[1]["site"]["type"] == "Relationship"
    assert n[1]["site"]["object"] == "urn:ngsi-ld:null" and "humidity" not in n[1]
    assert kv[0]["humidity"] == "urn:ngsi-ld:null" and kv[0]["temperature"] == 5
    assert kv[1]["site"] == "urn:ngsi-ld:null"


def test_deleting_one_dataset_instance_is_an_attribute_deletion(hub, receiver):
    """Deleting one datasetId of an attribute that keeps others fires
    attributeDeleted, not attributeUpdated (5.8.6; ETSI 046_22_06): the
    notification carries the remaining instance and a tombstone with the
    deleted datasetId."""
    t = "n-dsdel"
    ds = "urn:ngsi-ld:Dataset:cam"
    create_sub(hub, sub(receiver.url + "del", notificationTrigger=["attributeDeleted"],
                        watchedAttributes=["temperature"],
                        notification={"sysAttrs": True}), tenant=t)
    create_sub(hub, sub(receiver.url + "upd", notificationTrigger=["attributeUpdated"],
                        watchedAttributes=["temperature"]), tenant=t)
    e = sensor("ds-1", 20)
    e["temperature"] = [prop(20), prop(30, datasetId=ds)]
    assert hub.post(ENTITIES, e, tenant=t)[0] == 201
    assert hub.delete(ENTITIES + "/urn:ngsi-ld:Sensor:ds-1/attrs/temperature?datasetId=" + ds,
                      tenant=t)[0] == 204
    # then a real update, which only the second hears
    st, _, b = hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:ds-1/attrs", {"temperature": prop(21)},
                         tenant=t)
    assert st == 204, b
    deadline = time.monotonic() + WAIT
    while not [1 for path, _, _ in receiver.got if path.endswith("upd")]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3 * SLOW)
    dels = [b["data"][0] for path, _, b in receiver.got if path.endswith("del")]
    upds = [b["data"][0] for path, _, b in receiver.got if path.endswith("upd")]
    assert len(dels) == 1 and len(upds) == 1, (dels, upds)
    insts = dels[0]["temperature"]
    assert isinstance(insts, list) and len(insts) == 2, insts
    kept = [i for i in insts if "datasetId" not in i]
    gone = [i for i in insts if i.get("datasetId") == ds]
    assert kept[0]["value"] == 20
    assert gone[0]["value"] == "urn:ngsi-ld:null" and gone[0]["type"] == "Property"
    assert "deletedAt" in gone[0]
    assert upds[0]["temperature"]["value"] == 21

def test_resumed_subscription_does_not_hear_of_its_pause(hub, receiver):
    """A change committed while a subscription was paused is never notified,
    however late the matcher gets to it (here it is busy with 2,000
    creations when the subscription is resumed)."""
    t = "n-resume"
    sid = create_sub(hub, sub(receiver.url + "s"), tenant=t)
    create_sub(hub, {"type": "Subscription", "entities": [{"type": "Bulk"}],
                     "notification": {"format": "keyValues",
                                      "endpoint": {"uri": receiver.url + "bulk"}}}, tenant=t)
    assert hub.post(ENTITIES, sensor("r-1", 0), tenant=t)[0] == 201
    receiver.wait(1)
    assert hub.patch(SUBS + "/" + sid, {"isActive": False}, tenant=t)[0] == 204
    bulk = [{"id": "urn:ngsi-ld:Bulk:%d" % i, "type": "Bulk", "n": prop(i)} for i in range(2000)]
    st, _, b = hub.post(BASE + "/entityOperations/create", bulk, tenant=t)
    assert st == 201, b
    st, _, b = hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:r-1/attrs", {"temperature": prop(1)},
                         tenant=t)
    assert st == 204, b
    assert hub.patch(SUBS + "/" + sid, {"isActive": True}, tenant=t)[0] == 204
    st, _, b = hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:r-1/attrs", {"temperature": prop(2)},
                         tenant=t)
    assert st == 204, b
    deadline = time.monotonic() + WAIT
    while len([1 for path, _, _ in receiver.got if path.endswith("s")]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5 * SLOW)  # anything late would be here by now
    temps = [b["data"][0]["temperature"]["value"] for path, _, b in receiver.got
             if path.endswith("s")]
    assert temps == [0, 2], temps

def test_deleted_at_is_the_time_of_the_write(hub, receiver):
    """A notification's deletedAt is when the deletion was written (the
    modifiedAt it gave the entity, the history's deletedAt), not when the
    matcher got to it: here it is busy with 2,000 creations first."""
    t = "n-delat"
    create_sub(hub, sub(receiver.url + "del", notificationTrigger=["attributeDeleted"],
                        notification={"sysAttrs": True}), tenant=t)
    create_sub(hub, sub(receiver.url + "bulk", notificationTrigger=["entityCreated"],
                        notification={"format": "keyValues"}), tenant=t)
    assert hub.post(ENTITIES, sensor("da-0", 5, humidity=prop(40)), tenant=t)[0] == 201
    bulk = [sensor("da-%d" % i, i) for i in range(1, 2001)]
    st, _, b = hub.post(BASE + "/entityOperations/create", bulk, tenant=t)
    assert st == 201, b
    assert hub.delete(ENTITIES + "/urn:ngsi-ld:Sensor:da-0/attrs/humidity", tenant=t)[0] == 204
    deadline = time.monotonic() + WAIT
    while not [1 for path, _, _ in receiver.got if path.endswith("del")]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    n = [b["data"][0] for path, _, b in receiver.got if path.endswith("del")]
    st, _, e = hub.get(ENTITIES + "/urn:ngsi-ld:Sensor:da-0?options=sysAttrs", tenant=t)
    assert st == 200 and n[0]["humidity"]["deletedAt"] == e["modifiedAt"], (n[0], e)


NULL = "urn:ngsi-ld:null"


def on_path(receiver, suffix, n, timeout=WAIT):
    """The data items of the first n notifications whose path ends with
    suffix, waiting for them with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        with receiver.lock:
            got = [b["data"][0] for path, _, b in receiver.got if path.endswith(suffix)]
        if len(got) >= n:
            return got
        assert time.monotonic() < deadline, (suffix, n, got)
        time.sleep(0.02)


def deletion_time(hub, eid, attr, tenant):
    """When the deletion of eid's attr was written: the deletedAt of its
    history record (the attribute has an observedAt, so it is recorded)."""
    st, _, b = hub.get(BASE + "/temporal/entities/" + eid
                       + "?timeproperty=deletedAt&options=temporalValues&attrs=" + attr,
                       tenant=tenant)
    assert st == 200, b
    values = b[attr]["values"]
    assert len(values) == 1 and values[0][0] == NULL, b
    return values[0][1]


def test_entity_deletion_fires_attribute_deleted(hub, receiver):
    """Deleting an entity deletes its attributes: attributeDeleted fires for
    a subscription watching one of them (or none), and the notification has
    each such attribute as the NGSI-LD null in its type's shape (5.2.1,
    5.8.6), deletedAt (under sysAttrs) being when the deletion was written.
    A subscription watching an attribute the entity lacks is not notified."""
    t = "n-entdel-attr"
    u = receiver.url
    create_sub(hub, sub(u + "w", watchedAttributes=["humidity"],
                        notificationTrigger=["attributeDeleted"],
                        notification={"sysAttrs": True, "endpoint": {"uri": u + "w"}}), tenant=t)
    create_sub(hub, sub(u + "all", notificationTrigger=["attributeDeleted"],
                        notification={"format": "keyValues", "endpoint": {"uri": u + "all"}}),
               tenant=t)
    create_sub(hub, sub(u + "other", watchedAttributes=["pressure"],
                        notificationTrigger=["attributeDeleted"],
                        notification={"endpoint": {"uri": u + "other"}}), tenant=t)
    eid = "urn:ngsi-ld:Sensor:ed-1"
    assert hub.post(ENTITIES, sensor("ed-1", 5, humidity=prop(40, observedAt="2026-01-01T00:00:00Z"),
                                     site={"type": "Relationship", "object": "urn:ngsi-ld:Site:1"},
                                     name={"type": "LanguageProperty",
                                           "languageMap": {"en": "lamp"}}),
                    tenant=t)[0] == 201
    st, _, before = hub.get(ENTITIES + "/" + eid + "?options=sysAttrs", tenant=t)
    assert st == 200, before
    assert hub.delete(ENTITIES + "/" + eid, tenant=t)[0] == 204
    w = on_path(receiver, "w", 1)[0]
    at = deletion_time(hub, eid, "humidity", t)
    hum = before["humidity"]
    assert w == {"id": eid, "type": "Sensor", "createdAt": before["createdAt"],
                 "modifiedAt": before["modifiedAt"], "deletedAt": at,
                 "humidity": {"type": "Property", "value": NULL,
                              "createdAt": hum["createdAt"], "modifiedAt": hum["modifiedAt"],
                              "deletedAt": at}}, w
    assert on_path(receiver, "all", 1)[0] == {
        "id": eid, "type": "Sensor", "deletedAt": at, "temperature": NULL, "humidity": NULL,
        "site": NULL, "name": {"languageMap": {"@none": NULL}}}
    # a later deletion of an entity with a pressure proves the first was passed over
    assert hub.post(ENTITIES, sensor("ed-2", 1, pressure=prop(3)), tenant=t)[0] == 201
    assert hub.delete(ENTITIES + "/urn:ngsi-ld:Sensor:ed-2", tenant=t)[0] == 204
    other = on_path(receiver, "other", 1)
    assert [d["id"] for d in other] == ["urn:ngsi-ld:Sensor:ed-2"]
    assert other[0]["pressure"] == {"type": "Property", "value": NULL}
    assert "temperature" not in other[0]


def test_entity_deleted_carries_sys_attrs_and_previous_values(hub, receiver):
    """entityDeleted (5.8.6): the entity's id, type and deletedAt; with
    sysAttrs its createdAt and modifiedAt; with showChanges every (selected)
    attribute as the NGSI-LD null with its previous value under the member
    its type names (previousValue, previousObject, previousLanguageMap,
    previousVocab, previousJson)."""
    t = "n-entdel"
    u = receiver.url
    trig = {"notificationTrigger": ["entityDeleted"]}
    create_sub(hub, sub(u + "plain", **trig), tenant=t)
    create_sub(hub, sub(u + "sys", notification={"sysAttrs": True,
                                                 "endpoint": {"uri": u + "sys"}}, **trig),
               tenant=t)
    create_sub(hub, sub(u + "changes", notification={"showChanges": True,
                                                     "endpoint": {"uri": u + "changes"}}, **trig),
               tenant=t)
    create_sub(hub, sub(u + "picked", notification={
        "showChanges": True, "format": "concise", "attributes": ["temperature", "site"],
        "endpoint": {"uri": u + "picked"}}, **trig), tenant=t)
    eid = "urn:ngsi-ld:Sensor:edc-1"
    assert hub.post(ENTITIES, sensor(
        "edc-1", 5, humidity=prop(40, observedAt="2026-01-01T00:00:00Z"),
        site={"type": "Relationship", "object": "urn:ngsi-ld:Site:1"},
        name={"type": "LanguageProperty", "languageMap": {"en": "lamp", "nl": "lantaarn"}},
        kind={"type": "VocabProperty", "vocab": "streetlight"},
        spec={"type": "JsonProperty", "json": {"lumen": 800}}), tenant=t)[0] == 201
    st, _, before = hub.get(ENTITIES + "/" + eid + "?options=sysAttrs", tenant=t)
    assert st == 200, before
    assert hub.delete(ENTITIES + "/" + eid, tenant=t)[0] == 204
    changes = on_path(receiver, "changes", 1)[0]
    at = deletion_time(hub, eid, "humidity", t)
    assert on_path(receiver, "plain", 1)[0] == {"id": eid, "type": "Sensor", "deletedAt": at}
    assert on_path(receiver, "sys", 1)[0] == {
        "id": eid, "type": "Sensor", "createdAt": before["createdAt"],
        "modifiedAt": before["modifiedAt"], "deletedAt": at}
    assert changes == {
        "id": eid, "type": "Sensor", "deletedAt": at,
        "temperature": {"type": "Property", "value": NULL, "previousValue": 5},
        "humidity": {"type": "Property", "value": NULL, "previousValue": 40},
        "site": {"type": "Relationship", "object": NULL, "previousObject": "urn:ngsi-ld:Site:1"},
        "name": {"type": "LanguageProperty", "languageMap": {"@none": NULL},
                 "previousLanguageMap": {"en": "lamp", "nl": "lantaarn"}},
        "kind": {"type": "VocabProperty", "vocab": NULL, "previousVocab": "streetlight"},
        "spec": {"type": "JsonProperty", "json": NULL, "previousJson": {"lumen": 800}}}, changes
    assert on_path(receiver, "picked", 1)[0] == {
        "id": eid, "type": "Sensor", "deletedAt": at,
        "temperature": {"value": NULL, "previousValue": 5},
        "site": {"object": NULL, "previousObject": "urn:ngsi-ld:Site:1"}}


def test_deleted_attribute_shows_its_previous_value(hub, receiver):
    """showChanges: an attribute a DELETE removed is notified as the NGSI-LD
    null with the value it had (previousValue / previousObject), in the
    normalized and the concise format."""
    t = "n-attrdel-prev"
    u = receiver.url
    for fmt in ("normalized", "concise"):
        create_sub(hub, sub(u + fmt, notificationTrigger=["attributeDeleted"],
                            notification={"showChanges": True, "format": fmt,
                                          "endpoint": {"uri": u + fmt}}), tenant=t)
    eid = "urn:ngsi-ld:Sensor:adp-1"
    assert hub.post(ENTITIES, sensor("adp-1", 5, humidity=prop(40),
                                     site={"type": "Relationship", "object": "urn:ngsi-ld:Site:1"}),
                    tenant=t)[0] == 201
    assert hub.delete(ENTITIES + "/" + eid + "/attrs/humidity", tenant=t)[0] == 204
    assert hub.delete(ENTITIES + "/" + eid + "/attrs/site", tenant=t)[0] == 204
    n = on_path(receiver, "normalized", 2)
    c = on_path(receiver, "concise", 2)
    assert n[0]["humidity"] == {"type": "Property", "value": NULL, "previousValue": 40}, n[0]
    assert n[0]["temperature"] == {"type": "Property", "value": 5}
    assert n[1]["site"] == {"type": "Relationship", "object": NULL,
                            "previousObject": "urn:ngsi-ld:Site:1"}, n[1]
    assert c[0]["humidity"] == {"value": NULL, "previousValue": 40}, c[0]
    assert c[0]["temperature"] == 5
    assert c[1]["site"] == {"object": NULL, "previousObject": "urn:ngsi-ld:Site:1"}, c[1]


def test_concise_show_changes_keeps_the_previous_value(hub, receiver):
    """A concise Property is its bare value; with showChanges it becomes
    {"value", "previousValue"} so the previous value has a place (a
    GeoProperty's GeoJSON value is not mixed with it)."""
    t = "n-concise-prev"
    create_sub(hub, sub(receiver.url, notification={"showChanges": True, "format": "concise"}),
               tenant=t)
    p1 = {"type": "Point", "coordinates": [4.1, 52.1]}
    p2 = {"type": "Point", "coordinates": [4.2, 52.2]}
    assert hub.post(ENTITIES, sensor("cp-1", 1, location={"type": "GeoProperty", "value": p1},
                                     site={"type": "Relationship", "object": "urn:ngsi-ld:Site:1"}),
                    tenant=t)[0] == 201
    assert receiver.wait(1)[0]["data"][0]["temperature"] == 1
    assert hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:cp-1/attrs", {
        "temperature": prop(2), "location": {"type": "GeoProperty", "value": p2},
        "site": {"type": "Relationship", "object": "urn:ngsi-ld:Site:2"}}, tenant=t)[0] == 204
    n = receiver.wait(2)[1]["data"][0]
    assert n["temperature"] == {"value": 2, "previousValue": 1}, n
    assert n["location"] == {"value": p2, "previousValue": p1}, n
    assert n["site"] == {"object": "urn:ngsi-ld:Site:2", "previousObject": "urn:ngsi-ld:Site:1"}


def test_only_subscribed_types_notify_and_new_types_count(hub, receiver):
    """The writer skips the change events of entities whose types no
    subscription selects; an entity that gains a subscribed type through
    an append is seen at that change."""
    t = "n-types"
    create_sub(hub, sub(receiver.url, entities=[{"type": "Valve"}]), tenant=t)
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Pipe:v1", "type": "Pipe",
                               "flow": prop(1)}, tenant=t)[0] == 201
    assert hub.patch(ENTITIES + "/urn:ngsi-ld:Pipe:v1/attrs", {"flow": prop(2)},
                     tenant=t)[0] == 204
    # the Pipe becomes a Valve too: this append is the first change to notify
    assert hub.post(ENTITIES + "/urn:ngsi-ld:Pipe:v1/attrs",
                    {"type": ["Pipe", "Valve"], "flow": prop(3)}, tenant=t)[0] in (204, 207)
    n = receiver.wait(1)[0]
    assert n["data"][0]["id"] == "urn:ngsi-ld:Pipe:v1" and n["data"][0]["flow"]["value"] == 3
    for typ in ("Valve", "Pipe"):  # and the type index follows the appended type
        st, _, b = hub.get(ENTITIES + "?type=" + typ, tenant=t)
        assert st == 200 and "urn:ngsi-ld:Pipe:v1" in [e["id"] for e in b], (typ, b)
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Valve:v2", "type": "Valve",
                               "flow": prop(9)}, tenant=t)[0] == 201
    receiver.wait(2)
    time.sleep(0.3 * SLOW)
    assert [b["data"][0]["flow"]["value"] for b in receiver.bodies()] == [3, 9]


def test_payload_keyvalues_attributes_receiverinfo_ld(hub, receiver):
    t = "n-payload"
    create_sub(hub, sub(receiver.url, notification={
        "format": "keyValues", "attributes": ["temperature"],
        "endpoint": {"uri": receiver.url, "accept": "application/ld+json",
                     "receiverInfo": [{"key": "X-Auth-Token", "value": "s3cret"},
                                      {"key": "X-Other", "value": "two words"}]}}), tenant=t)
    hub.post(ENTITIES, sensor("p-1", 12, humidity=prop(40)), tenant=t)
    n = receiver.wait(1)[0]
    assert n["data"] == [{"id": "urn:ngsi-ld:Sensor:p-1", "type": "Sensor", "temperature": 12}]
    assert "@context" in n
    _, headers, _ = receiver.got[0]
    assert headers["x-auth-token"] == "s3cret"
    assert headers["x-other"] == "two words"
    assert headers["content-type"] == "application/ld+json"


def test_show_changes(hub, receiver):
    t = "n-changes"
    create_sub(hub, sub(receiver.url, notification={"showChanges": True}), tenant=t)
    hub.post(ENTITIES, sensor("sc-1", 1), tenant=t)
    receiver.wait(1)
    hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:sc-1/attrs", {"temperature": prop(2)}, tenant=t)
    n = receiver.wait(2)[1]
    assert n["data"][0]["temperature"]["value"] == 2
    assert n["data"][0]["temperature"]["previousValue"] == 1
    # other attribute types name their previous member after their value's
    assert hub.post(ENTITIES + "/urn:ngsi-ld:Sensor:sc-1/attrs", {
        "name": {"type": "LanguageProperty", "languageMap": {"en": "a"}},
        "site": {"type": "Relationship", "object": "urn:ngsi-ld:Site:1"}}, tenant=t)[0] == 204
    receiver.wait(3)
    hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:sc-1/attrs", {
        "name": {"type": "LanguageProperty", "languageMap": {"en": "b"}},
        "site": {"type": "Relationship", "object": "urn:ngsi-ld:Site:2"}}, tenant=t)
    n = receiver.wait(4)[3]["data"][0]
    assert n["name"]["languageMap"] == {"en": "b"}
    assert n["name"]["previousLanguageMap"] == {"en": "a"}
    assert n["site"]["previousObject"] == "urn:ngsi-ld:Site:1"
    assert "previousValue" not in n["name"] and "previousValue" not in n["temperature"]


def test_failing_receivers_do_not_block_others(hub, receiver):
    t = "n-fail"
    bad = Receiver(status=500)
    down_port = free_port()
    try:
        s_bad = create_sub(hub, sub(bad.url), tenant=t)
        s_down = create_sub(hub, sub("http://127.0.0.1:%d/x" % down_port), tenant=t)
        s_ok = create_sub(hub, sub(receiver.url), tenant=t)
        hub.post(ENTITIES, sensor("f-1"), tenant=t)
        hub.post(ENTITIES, sensor("f-2"), tenant=t)
        bodies = receiver.wait(2)
        assert [b["data"][0]["id"] for b in bodies] == ["urn:ngsi-ld:Sensor:f-1",
                                                        "urn:ngsi-ld:Sensor:f-2"]
        for sid in (s_bad, s_down):
            b = wait_status(hub, sid, lambda b: b["notification"].get("timesFailed", 0) >= 2,
                            tenant=t, timeout=30 * SLOW)
            assert b["notification"]["timesFailed"] == 2, b
            assert b["notification"]["timesSent"] == 2
            assert b["notification"]["status"] == "failed"
            check_iso(b["notification"]["lastFailure"])
            assert "lastSuccess" not in b["notification"]
        assert len(bad.bodies()) >= 2  # retried
        b = wait_status(hub, s_ok, lambda b: b["notification"]["timesSent"] >= 2, tenant=t)
        assert b["notification"]["timesSent"] == 2 and b["notification"]["status"] == "ok"
    finally:
        bad.stop()


def test_paused_and_expired_send_nothing(hub, receiver):
    t = "n-paused"
    s_paused = create_sub(hub, sub(receiver.url, isActive=False), tenant=t)
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 10))
    s_exp = create_sub(hub, sub(receiver.url, expiresAt=soon), tenant=t)
    b = wait_status(hub, s_exp, lambda b: b["status"] == "expired", tenant=t,
                    timeout=30 * SLOW)
    assert b["status"] == "expired"
    st, _, b = hub.get(SUBS + "/" + s_paused, tenant=t)
    assert b["status"] == "paused"
    hub.post(ENTITIES, sensor("pz-1"), tenant=t)
    # a live subscription created afterwards proves the events were processed
    other = Receiver()
    try:
        create_sub(hub, sub(other.url), tenant=t)
        hub.post(ENTITIES, sensor("pz-2"), tenant=t)
        other.wait(1)
        time.sleep(0.2 * SLOW)
        assert receiver.bodies() == []
        # resume: notifications flow again
        assert hub.patch(SUBS + "/" + s_paused, {"isActive": True}, tenant=t)[0] == 204
        hub.post(ENTITIES, sensor("pz-3"), tenant=t)
        n = receiver.wait(1)
        assert n[0]["data"][0]["id"] == "urn:ngsi-ld:Sensor:pz-3"
    finally:
        other.stop()


def test_throttling(hub, receiver):
    t = "n-throttle"
    sid = create_sub(hub, sub(receiver.url, throttling=3600), tenant=t)
    hub.post(ENTITIES, sensor("th-1", 1), tenant=t)
    receiver.wait(1)
    hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:th-1/attrs", {"temperature": prop(2)}, tenant=t)
    hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:th-1/attrs", {"temperature": prop(3)}, tenant=t)
    other = Receiver()
    try:
        create_sub(hub, sub(other.url), tenant=t)
        hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:th-1/attrs", {"temperature": prop(4)}, tenant=t)
        other.wait(1)
        time.sleep(0.2 * SLOW)
        assert len(receiver.bodies()) == 1
        b = wait_status(hub, sid, lambda b: b["notification"]["timesSent"] >= 1, tenant=t)
        assert b["notification"]["timesSent"] == 1
    finally:
        other.stop()


def test_time_interval(hub, receiver):
    t = "n-interval"
    hub.post(ENTITIES, sensor("ti-1", 5), tenant=t)
    create_sub(hub, sub(receiver.url, timeInterval=1), tenant=t)
    bodies = receiver.wait(2, timeout=15 * SLOW)
    assert bodies[0]["data"] == [{"id": "urn:ngsi-ld:Sensor:ti-1", "type": "Sensor",
                                  "temperature": {"type": "Property", "value": 5}}]


def test_survives_restart(hub, receiver):
    t = "n-restart"
    sid = create_sub(hub, sub(receiver.url, q="temperature>0",
                              notification={"format": "keyValues"}), tenant=t)
    hub.post(ENTITIES, sensor("r-1", 1), tenant=t)
    receiver.wait(1)
    wait_status(hub, sid, lambda b: b["notification"]["timesSent"] >= 1, tenant=t)
    hub.restart()
    st, _, b = hub.get(SUBS + "/" + sid, tenant=t)
    assert st == 200
    assert b["q"] == "temperature>0" and b["notification"]["format"] == "keyValues"
    assert b["notification"]["timesSent"] == 1
    check_iso(b["notification"]["lastSuccess"])
    hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:r-1/attrs", {"temperature": prop(2)}, tenant=t)
    n = receiver.wait(2)[1]
    assert n["data"] == [{"id": "urn:ngsi-ld:Sensor:r-1", "type": "Sensor", "temperature": 2}]
    b = wait_status(hub, sid, lambda b: b["notification"]["timesSent"] >= 2, tenant=t)
    assert b["notification"]["timesSent"] == 2


# ---- MQTT notifications (GS CIM 009 clause 7) --------------------------------
# A real mosquitto broker on a free loopback port; a mosquitto_sub process
# records every message as one "topic payload" line in a file.

from broker import Broker, MqttSink  # noqa: E402


@pytest.fixture
def broker():
    b = Broker()
    yield b
    b.close()


def test_mqtt_notification_delivered(hub, broker):
    t = "mqtt-ok"
    topic = "city/sensors/t1"
    sink = MqttSink(broker, topic)
    try:
        uri = "mqtt://127.0.0.1:%d/%s" % (broker.port, topic)
        sid = create_sub(hub, sub(uri, notification={"endpoint": {
            "uri": uri, "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}],
            "receiverInfo": [{"key": "X-Origin", "value": "pilotlight"}]}}), tenant=t)
        assert hub.post(ENTITIES, sensor("mq-1", 17), tenant=t)[0] == 201
        got_topic, msg = sink.wait(1)[0]
        assert got_topic == topic
        assert set(msg) == {"metadata", "body"}
        n = msg["body"]
        assert n["type"] == "Notification" and n["subscriptionId"] == sid
        assert n["id"].startswith("urn:ngsi-ld:Notification:")
        check_iso(n["notifiedAt"])
        assert n["data"] == [{"id": "urn:ngsi-ld:Sensor:mq-1", "type": "Sensor",
                              "temperature": {"type": "Property", "value": 17}}]
        md = msg["metadata"]
        assert md["Content-Type"] == "application/json"
        assert "rel=\"http://www.w3.org/ns/json-ld#context\"" in md["Link"]
        assert md["NGSILD-Tenant"] == t
        assert md["X-Origin"] == "pilotlight"
        assert "Expect" not in md
        b = wait_status(hub, sid, lambda b: b["notification"]["timesSent"] >= 1, tenant=t)
        assert b["notification"]["timesSent"] == 1
        assert b["notification"].get("timesFailed", 0) == 0
        assert b["notification"]["status"] == "ok"
        check_iso(b["notification"]["lastSuccess"])
        assert "lastFailure" not in b["notification"]
        assert b["notification"]["endpoint"]["uri"] == uri
        # a second notification on the same connection
        assert hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:mq-1/attrs",
                         {"temperature": prop(18)}, tenant=t)[0] == 204
        msgs = sink.wait(2)
        assert len(msgs) == 2
        assert msgs[1][1]["body"]["data"][0]["temperature"]["value"] == 18
        b = wait_status(hub, sid, lambda b: b["notification"]["timesSent"] >= 2, tenant=t)
        assert b["notification"]["timesSent"] == 2
        assert b["notification"].get("timesFailed", 0) == 0
    finally:
        sink.stop()


def test_mqtt_qos0_keyvalues_shared_broker(hub, broker):
    t = "mqtt-qos0"
    sink = MqttSink(broker, "kv/#")
    try:
        sids = []
        for topic in ("kv/a", "kv/b"):
            uri = "mqtt://127.0.0.1:%d/%s" % (broker.port, topic)
            sids.append(create_sub(hub, sub(uri, notification={"format": "keyValues"}),
                                   tenant=t))
        hub.post(ENTITIES, sensor("mq0-1", 3), tenant=t)
        msgs = sink.wait(2)
        assert sorted(tp for tp, _ in msgs) == ["kv/a", "kv/b"]
        for _, m in msgs:
            assert m["body"]["data"] == [{"id": "urn:ngsi-ld:Sensor:mq0-1", "type": "Sensor",
                                          "temperature": 3}]
        for sid in sids:
            b = wait_status(hub, sid, lambda b: b["notification"]["timesSent"] >= 1, tenant=t)
            assert b["notification"]["timesSent"] == 1
            assert b["notification"]["status"] == "ok"
    finally:
        sink.stop()


@pytest.mark.parametrize("qos", ["0", "1"])
def test_mqtt_burst_arrives_whole_and_in_order(hub, broker, qos):
    """A batch write of 300 entities queues 300 notifications at once on one
    endpoint: the sender publishes them in batches on the broker's connection;
    every one arrives, in the writes' order, and each is counted once."""
    t = "mqtt-burst-" + qos
    topic = "burst/q" + qos
    sink = MqttSink(broker, topic)
    try:
        uri = "mqtt://127.0.0.1:%d/%s" % (broker.port, topic)
        sid = create_sub(hub, sub(uri, notification={
            "format": "keyValues",
            "endpoint": {"uri": uri, "notifierInfo": [{"key": "MQTT-QoS", "value": qos}]}}),
            tenant=t)
        ids = ["b%03d" % i for i in range(300)]
        st, _, b = hub.post(BASE + "/entityOperations/create",
                            [sensor(i, k) for k, i in enumerate(ids)], tenant=t)
        assert st == 201, b
        msgs = sink.wait(300)
        assert len(msgs) == 300
        got = [m["body"]["data"][0]["id"] for _, m in msgs]
        assert got == ["urn:ngsi-ld:Sensor:" + i for i in ids]
        assert [m["body"]["data"][0]["temperature"] for _, m in msgs] == list(range(300))
        b = wait_status(hub, sid, lambda b: b["notification"]["timesSent"] >= 300, tenant=t)
        assert b["notification"]["timesSent"] == 300
        assert b["notification"].get("timesFailed", 0) == 0
        assert b["notification"]["status"] == "ok"
        # and nothing twice: the counters are final, so no resend can follow
        time.sleep(0.5 * SLOW)
        assert len(sink.messages()) == 300
    finally:
        sink.stop()


def test_mqtt_broker_down_counts_failures_and_blocks_nothing(hub, receiver):
    t = "mqtt-down"
    down = "mqtt://127.0.0.1:%d/nobody/home" % free_port()
    s_down = create_sub(hub, sub(down), tenant=t)
    s_ok = create_sub(hub, sub(receiver.url), tenant=t)
    hub.post(ENTITIES, sensor("md-1"), tenant=t)
    hub.post(ENTITIES, sensor("md-2"), tenant=t)
    bodies = receiver.wait(2)
    assert [b["data"][0]["id"] for b in bodies] == ["urn:ngsi-ld:Sensor:md-1",
                                                    "urn:ngsi-ld:Sensor:md-2"]
    b = wait_status(hub, s_down, lambda b: b["notification"].get("timesFailed", 0) >= 2,
                    tenant=t, timeout=30 * SLOW)
    assert b["notification"]["timesFailed"] == 2, b
    assert b["notification"]["timesSent"] == 2
    assert b["notification"]["status"] == "failed"
    check_iso(b["notification"]["lastFailure"])
    assert "lastSuccess" not in b["notification"]
    b = wait_status(hub, s_ok, lambda b: b["notification"]["timesSent"] >= 2, tenant=t)
    assert b["notification"]["timesSent"] == 2 and b["notification"]["status"] == "ok"


def test_mqtt_reconnects_after_broker_restart(hub, broker):
    t = "mqtt-restart"
    topic = "re/connect"
    uri = "mqtt://127.0.0.1:%d/%s" % (broker.port, topic)
    sink = MqttSink(broker, topic)
    sid = create_sub(hub, sub(uri), tenant=t)
    hub.post(ENTITIES, sensor("mr-1"), tenant=t)
    sink.wait(1)
    wait_status(hub, sid, lambda b: b["notification"]["timesSent"] >= 1, tenant=t)
    sink.stop()
    broker.stop()
    hub.post(ENTITIES, sensor("mr-2"), tenant=t)
    b = wait_status(hub, sid, lambda b: b["notification"].get("timesFailed", 0) >= 1,
                    tenant=t, timeout=30 * SLOW)
    assert b["notification"]["timesFailed"] == 1 and b["notification"]["status"] == "failed"
    broker.start()
    sink = MqttSink(broker, topic)
    try:
        # the hub reconnects within its backoff (at most 5 s); retry until through
        deadline = time.monotonic() + 30 * SLOW
        i = 3
        while not sink.messages() and time.monotonic() < deadline:
            hub.post(ENTITIES, sensor("mr-%d" % i), tenant=t)
            i += 1
            time.sleep(1)
        msgs = sink.wait(1)
        assert msgs[0][1]["body"]["subscriptionId"] == sid
        b = wait_status(hub, sid, lambda b: b["notification"]["status"] == "ok", tenant=t)
        assert b["notification"]["status"] == "ok"
        check_iso(b["notification"]["lastSuccess"])
    finally:
        sink.stop()


@pytest.mark.parametrize("uri,info", [
    ("mqtt://127.0.0.1:1883/", None),
    ("mqtt://127.0.0.1:1883/a/#", None),
    ("mqtt://127.0.0.1:1883/a/+/b", None),
    ("mqtt://127.0.0.1:0/a", None),
    ("mqtt://:1883/a", None),
    ("mqtt://127.0.0.1/a", [{"key": "MQTT-QoS", "value": "2"}]),
    ("mqtt://127.0.0.1/a", [{"key": "MQTT-QoS", "value": 1}]),
])
def test_mqtt_endpoint_validation(hub, uri, info):
    ep = {"uri": uri}
    if info is not None:
        ep["notifierInfo"] = info
    st, _, b = hub.post(SUBS, sub(uri, notification={"endpoint": ep}))
    assert_problem(st, b, 400, "BadRequestData")


def test_endpoint_slots_are_reclaimed(hub, receiver):
    """Endpoints of deleted subscriptions give their slot back: after 256
    distinct URIs have been used, a new subscription still gets its
    notifications."""
    t = "n-reclaim"
    hub.post(ENTITIES, sensor("rc-1", 1), tenant=t)
    sids = [create_sub(hub, sub("http://127.0.0.1:9/ep%d" % i), tenant=t) for i in range(256)]
    hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:rc-1/attrs", {"temperature": prop(2)}, tenant=t)
    for sid in sids:
        assert hub.delete(SUBS + "/" + sid, tenant=t)[0] == 204
    sid = create_sub(hub, sub(receiver.url), tenant=t)
    deadline = time.monotonic() + 20 * SLOW
    value = 3
    while not receiver.bodies() and time.monotonic() < deadline:
        hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:rc-1/attrs", {"temperature": prop(value)}, tenant=t)
        value += 1
        time.sleep(0.3)
    assert receiver.bodies(), ("no notification after the endpoint table was full",
                               hub.get(SUBS + "/" + sid, tenant=t)[2])


def test_unknown_member_named_in_the_error(hub):
    body = sub("http://127.0.0.1:9/x", watchedAttribute=["temperature"])
    st, _, b = hub.post(SUBS, body)
    assert_problem(st, b, 400, "BadRequestData")
    assert "watchedAttribute" in b["detail"]


def test_a_subscription_read_back_can_be_written_back(hub, receiver):
    """GET's answer, status members and all, is accepted as a PATCH body
    (clients round-trip it); a misspelt notification member is not."""
    t = "n-roundtrip"
    sid = create_sub(hub, sub(receiver.url, notification={
        "format": "keyValues", "attributes": ["temperature"],
        "endpoint": {"uri": receiver.url, "accept": "application/json",
                     "receiverInfo": [{"key": "X-A", "value": "1"}]}}), tenant=t)
    hub.post(ENTITIES, sensor("rt-1"), tenant=t)
    wait_status(hub, sid, lambda b: b["notification"]["timesSent"] >= 1, tenant=t)
    st, _, b = hub.get(SUBS + "/" + sid, tenant=t)
    assert "timesSent" in b["notification"] and "status" in b["notification"]
    body = {k: v for k, v in b.items() if k not in ("id", "type")}
    st, _, r = hub.patch(SUBS + "/" + sid, body, tenant=t)
    assert st == 204, r
    st, _, r = hub.patch(SUBS + "/" + sid, {"notification": dict(b["notification"],
                                                                 sysattrs=True)}, tenant=t)
    assert_problem(st, r, 400, "BadRequestData")
    assert "sysattrs" in r["detail"]
    st, _, after = hub.get(SUBS + "/" + sid, tenant=t)
    assert after["notification"]["format"] == "keyValues"
    assert after["notification"]["timesSent"] == b["notification"]["timesSent"]


def test_lang_picks_the_language_of_notified_language_properties(hub, receiver):
    t = "n-lang"
    create_sub(hub, sub(receiver.url, lang="nl", notification={"format": "keyValues"}), tenant=t)
    hub.post(ENTITIES, sensor("lg-1", 1, name={"type": "LanguageProperty",
                                               "languageMap": {"en": "lamp", "nl": "lantaarn"}}),
             tenant=t)
    n = receiver.wait(1)[0]
    assert n["data"][0]["name"] == "lantaarn"
    st, _, b = hub.post(SUBS, sub(receiver.url, lang=5), tenant=t)
    assert_problem(st, b, 400, "BadRequestData")


def test_patch_with_the_ngsi_ld_null_removes_a_member(hub, receiver):
    t = "n-null"
    sid = create_sub(hub, sub(receiver.url, throttling=60, description="lamps"), tenant=t)
    st, _, b = hub.patch(SUBS + "/" + sid, {"throttling": "urn:ngsi-ld:null",
                                            "description": None}, tenant=t)
    assert st == 204, b
    st, _, b = hub.get(SUBS + "/" + sid, tenant=t)
    assert "throttling" not in b and "description" not in b
    assert b["entities"] == [{"type": "Sensor"}]


def test_expires_at_in_the_past_is_refused(hub, receiver):
    t = "n-past"
    st, _, b = hub.post(SUBS, sub(receiver.url, expiresAt="2020-01-01T00:00:00Z"), tenant=t)
    assert_problem(st, b, 400, "BadRequestData")
    assert "expiresAt" in b["detail"]
    sid = create_sub(hub, sub(receiver.url, expiresAt="2999-01-01T00:00:00Z"), tenant=t)
    st, _, b = hub.patch(SUBS + "/" + sid, {"expiresAt": "2020-01-01T00:00:00Z"}, tenant=t)
    assert_problem(st, b, 400, "BadRequestData")
    st, _, b = hub.get(SUBS + "/" + sid, tenant=t)
    assert b["expiresAt"] == "2999-01-01T00:00:00Z" and b["status"] == "active"


def test_patch_empty_or_unknown_is_400(hub, receiver):
    t = "n-patch400"
    sid = create_sub(hub, sub(receiver.url), tenant=t)
    for frag in ({}, {"@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"},
                 {"throttlin": 5}):
        ctype = "application/ld+json" if "@context" in frag else "application/json"
        st, _, b = hub.patch(SUBS + "/" + sid, frag, tenant=t, ctype=ctype)
        assert_problem(st, b, 400, "BadRequestData")
    st, _, b = hub.get(SUBS + "/" + sid, tenant=t)
    assert st == 200 and "throttling" not in b and "throttlin" not in b


def test_scope_q(hub, receiver):
    """scopeQ (GS CIM 009 4.19): '/a/#' is a and below, '+' one level,
    ',' OR, ';' AND."""
    t = "n-scope"
    sid = create_sub(hub, sub(receiver.url, scopeQ="/Delft/#;/Delft/+,/Leiden"), tenant=t)
    for i, scope in enumerate([["/Delft"], ["/Delft/Centrum"], ["/Delft/Centrum/Markt"],
                               ["/Leiden"], ["/Leiden/Noord"], None, ["/Rotterdam", "/Delft/Zuid"]]):
        e = sensor("sc-%d" % i, i)
        if scope:
            e["scope"] = scope
        assert hub.post(ENTITIES, e, tenant=t)[0] == 201
    # /Delft/# ; /Delft/+ -> exactly one level below Delft; or /Leiden exactly
    deadline = time.monotonic() + WAIT
    want = {"urn:ngsi-ld:Sensor:sc-1", "urn:ngsi-ld:Sensor:sc-3", "urn:ngsi-ld:Sensor:sc-6"}
    while time.monotonic() < deadline and len(receiver.bodies()) < len(want):
        time.sleep(0.05)
    hub.post(ENTITIES, dict(sensor("sc-end", 0), scope=["/Leiden"]), tenant=t)
    got = receiver.wait(len(want) + 1)
    ids = [b["data"][0]["id"] for b in got]
    assert set(ids[:-1]) == want and len(ids) == len(want) + 1, ids
    assert ids[-1] == "urn:ngsi-ld:Sensor:sc-end"
    st, _, b = hub.get(SUBS + "/" + sid, tenant=t)
    assert b["scopeQ"] == "/Delft/#;/Delft/+,/Leiden"


def test_queued_notifications_dropped_after_delete(hub):
    """Deliveries still queued when their subscription is deleted are not
    sent (the one in flight may finish). Runs after the endpoint reclaim
    test on purpose: the earlier attempt at this was flaky there."""
    t = "n-gone"
    slow = Receiver(delay=1.0 * SLOW)
    try:
        hub.post(ENTITIES, sensor("gone-1", 1), tenant=t)
        sid = create_sub(hub, sub(slow.url), tenant=t)
        for v in range(2, 7):
            hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:gone-1/attrs", {"temperature": prop(v)},
                      tenant=t)
        slow.wait(1)
        assert hub.delete(SUBS + "/" + sid, tenant=t)[0] == 204
        time.sleep(3 * SLOW)
        assert 1 <= len(slow.bodies()) <= 2, [b["data"] for b in slow.bodies()]
    finally:
        slow.stop()


def test_queued_notifications_dropped_after_repoint(hub):
    t = "n-pause"
    slow = Receiver(delay=1.0 * SLOW)
    other = Receiver()
    try:
        hub.post(ENTITIES, sensor("pz-1", 1), tenant=t)
        sid = create_sub(hub, sub(slow.url), tenant=t)
        for v in range(2, 7):
            hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:pz-1/attrs", {"temperature": prop(v)},
                      tenant=t)
        slow.wait(1)
        # re-pointed: what was queued for the old endpoint is not sent there
        assert hub.patch(SUBS + "/" + sid, {"notification": {"endpoint": {"uri": other.url}}},
                         tenant=t)[0] == 204
        hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:pz-1/attrs", {"temperature": prop(7)},
                  tenant=t)
        got = other.wait(1)
        assert [b["data"][0]["temperature"]["value"] for b in got] == [7]
        time.sleep(3 * SLOW)
        assert 1 <= len(slow.bodies()) <= 2, [b["data"] for b in slow.bodies()]
    finally:
        slow.stop()
        other.stop()
