"""19 - LoRaWAN ingest (issue 4): the admin API under /pilotlight/v1 (admin
secret, device profiles, devices incl. bulk JSON/CSV, quarantine,
autoprovisioning, ingest secret, stats), the ChirpStack and TTS webhooks with
every fixture (exact decoded values on the entities, their Device companions,
history and a subscription's notification), every malformed fixture
(rejected, counted, the hub still answers), flood control, restart, and the
MQTT connections against a real mosquitto broker (incl. a broker restart)."""
import http.client
import json
import os
import stat
import time
import urllib.parse

import pytest

from broker import Broker
from helpers import BASE, ENTITIES, FIXTURES, SLOW, assert_problem
from receiver import Receiver

ADMIN = "/pilotlight/v1"
CS_HOOK = ADMIN + "/ingest/chirpstack"
TTS_HOOK = ADMIN + "/ingest/tts"
AIR_EUI = "70b3d57ed0051a17"
LIGHT_EUI = "a84041000181c905"
AIR_ID = "urn:ngsi-ld:AirQualityObserved:" + AIR_EUI
LIGHT_ID = "urn:ngsi-ld:CrowdFlowObserved:" + LIGHT_EUI
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"

AIR_PROFILE = {
    "id": "air-lpp",
    "codec": "cayenne-lpp",
    "entityType": "AirQualityObserved",
    "fields": [
        {"from": "temperature_1", "attribute": "temperature", "unitCode": "CEL"},
        {"from": "humidity_2", "attribute": "relativeHumidity", "unitCode": "P1",
         "scale": 0.01},
        {"from": "barometer_3", "attribute": "atmosphericPressure", "unitCode": "A97"},
        {"from": "analog_input_4", "attribute": "pm25", "unitCode": "GQ"},
    ],
    "staticAttributes": {"dataProvider": "Gemeente Voorbeeld"},
}
LIGHT_PROFILE = {
    "id": "light-decoded",
    "codec": "network-decoded",
    "entityType": "CrowdFlowObserved",
    "fields": [
        {"from": "peopleCountTowards", "attribute": "peopleCountTowards"},
        {"from": "peopleCountAway", "attribute": "peopleCountAway"},
        {"from": "occupancy", "attribute": "occupancy"},
    ],
}


def assert_pl_problem(status, body, expected_status, name):
    """ProblemDetails of a type NGSI-LD does not define (pilotlight's own)."""
    assert status == expected_status, "status %s, body %r" % (status, body)
    assert body["type"] == "urn:pilotlight:errors:" + name, body
    assert body["status"] == expected_status and body["title"] and body["detail"], body


def fixture(name, sub="lorawan"):
    with open(os.path.join(FIXTURES, sub, name), "rb") as f:
        return f.read()


def admin_secret(hub):
    with open(os.path.join(hub.data_dir, "admin.secret")) as f:
        return f.read().strip()


def adm(hub):
    return {"Authorization": "Bearer " + admin_secret(hub)}


def setup_tenant(hub, tenant=None, devices=True):
    """Profiles, the two fixture devices and an ingest secret; returns the
    webhook headers."""
    h = adm(hub)
    for p in (AIR_PROFILE, LIGHT_PROFILE):
        st, _, _ = hub.post(ADMIN + "/device-profiles", p, headers=h, tenant=tenant)
        assert st in (201, 409), hub.last_text
    if devices:
        st, _, b = hub.post(ADMIN + "/devices", [
            {"devEui": AIR_EUI.upper(), "profile": "air-lpp", "name": "air-node-017"},
            {"devEui": LIGHT_EUI, "profile": "light-decoded", "name": "lightpost-05",
             "location": {"type": "Point", "coordinates": [4.8926, 52.3731]}},
        ], headers=h, tenant=tenant)
        assert st == 201, hub.last_text
        assert sorted(b["success"]) == sorted([AIR_EUI, LIGHT_EUI]) and b["errors"] == []
    st, _, b = hub.post(ADMIN + "/ingest/secret", headers=h, tenant=tenant)
    assert st == 201, hub.last_text
    assert len(b["secret"]) == 64
    return {"Authorization": "Bearer " + b["secret"]}


def hook(hub, path, body, secret, tenant=None, event=None):
    if event:
        path += "?event=" + event
    return hub.post(path, body, headers=secret, tenant=tenant)


def entity(hub, eid, tenant=None, **q):
    path = ENTITIES + "/" + urllib.parse.quote(eid, safe="")
    if q:
        path += "?" + urllib.parse.urlencode(q)
    st, _, b = hub.get(path, tenant=tenant)
    assert st == 200, hub.last_text
    return b


def stats(hub, tenant=None):
    st, _, b = hub.get(ADMIN + "/ingest/stats", headers=adm(hub), tenant=tenant)
    assert st == 200, hub.last_text
    return b


def wait_for(fn, what, timeout=15):
    deadline = time.monotonic() + timeout * SLOW
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what + " (last: %r)" % (last,))


# ---- admin secret ------------------------------------------------------------

def test_admin_api_needs_the_generated_secret(hub):
    path = os.path.join(hub.data_dir, "admin.secret")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(admin_secret(hub)) == 64
    assert admin_secret(hub) in hub.stderr_text()  # printed once at first start
    for headers in (None, {"Authorization": "Bearer wrong-secret-0123456789"},
                    {"Authorization": "Basic " + admin_secret(hub)}):
        st, h, b = hub.get(ADMIN + "/device-profiles", headers=headers)
        assert_pl_problem(st, b, 401, "Unauthorized")
        assert h["www-authenticate"].startswith("Bearer")
    st, _, b = hub.get(ADMIN + "/device-profiles", headers=adm(hub))
    assert st == 200 and b == []


# ---- device profiles -------------------------------------------------------------

def test_profile_crud(hub):
    h = adm(hub)
    t = "prof"
    st, hd, _ = hub.post(ADMIN + "/device-profiles", AIR_PROFILE, headers=h, tenant=t)
    assert st == 201 and hd["location"] == ADMIN + "/device-profiles/air-lpp"
    st, _, b = hub.get(ADMIN + "/device-profiles/air-lpp", headers=h, tenant=t)
    assert st == 200
    assert b["id"] == "air-lpp" and b["codec"] == "cayenne-lpp"
    assert b["entityType"] == "AirQualityObserved"
    assert b["iris"]["AirQualityObserved"] == VOCAB + "AirQualityObserved"
    assert b["iris"]["temperature"] == VOCAB + "temperature"
    assert [f["from"] for f in b["fields"]] == ["temperature_1", "humidity_2", "barometer_3",
                                                 "analog_input_4"]
    # the same id again
    st, _, b = hub.post(ADMIN + "/device-profiles", AIR_PROFILE, headers=h, tenant=t)
    assert_problem(st, b, 409, "AlreadyExists")
    # invalid ones, with a detail naming the member
    for bad, member in ((dict(AIR_PROFILE, id="bad id!"), "id"),
                        (dict(AIR_PROFILE, id="x1", codec="protobuf"), "codec"),
                        (dict(AIR_PROFILE, id="x2", fields=[{"from": "temperature_1",
                                                             "attribute": "b",
                                                             "scale": "big"}]), "scale"),
                        (dict(AIR_PROFILE, id="x3", colour="red"), "colour")):
        st, _, b = hub.post(ADMIN + "/device-profiles", bad, headers=h, tenant=t)
        assert_problem(st, b, 400, "BadRequestData")
        assert member in b["detail"], b["detail"]
    st, _, b = hub.post(ADMIN + "/device-profiles", "{not json", headers=h, tenant=t)
    assert_problem(st, b, 400, "InvalidRequest")
    # replace, list, in use, delete
    st, _, _ = hub.put(ADMIN + "/device-profiles/air-lpp",
                       dict(AIR_PROFILE, description="v2"), headers=h, tenant=t)
    assert st == 204
    st, _, b = hub.put(ADMIN + "/device-profiles/other", dict(AIR_PROFILE, id="nope"),
                       headers=h, tenant=t)
    assert_problem(st, b, 400, "BadRequestData")
    st, _, b = hub.get(ADMIN + "/device-profiles", headers=h, tenant=t)
    assert [p["id"] for p in b] == ["air-lpp"] and b[0]["description"] == "v2"
    assert hub.post(ADMIN + "/devices", {"devEui": AIR_EUI, "profile": "air-lpp"},
                    headers=h, tenant=t)[0] == 201
    st, _, b = hub.delete(ADMIN + "/device-profiles/air-lpp", headers=h, tenant=t)
    assert_problem(st, b, 409, "AlreadyExists")
    assert hub.delete(ADMIN + "/devices/" + AIR_EUI, headers=h, tenant=t)[0] == 204
    assert hub.delete(ADMIN + "/device-profiles/air-lpp", headers=h, tenant=t)[0] == 204
    st, _, b = hub.get(ADMIN + "/device-profiles/air-lpp", headers=h, tenant=t)
    assert_problem(st, b, 404, "ResourceNotFound")
    # tenants do not see each other's profiles
    st, _, b = hub.get(ADMIN + "/device-profiles", headers=h, tenant="other-city")
    assert st == 200 and b == []


def test_profile_terms_expand_with_the_request_context(hub, context_server):
    h = dict(adm(hub), Link='<%s>; rel="http://www.w3.org/ns/json-ld#context"; '
             'type="application/ld+json"' % context_server.url())
    st, _, _ = hub.post(ADMIN + "/device-profiles", dict(AIR_PROFILE, id="air-sdm"),
                        headers=h, tenant="sdm")
    assert st == 201, hub.last_text
    st, _, b = hub.get(ADMIN + "/device-profiles/air-sdm", headers=adm(hub), tenant="sdm")
    assert b["iris"]["AirQualityObserved"] == \
        "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"


# ---- devices -------------------------------------------------------------------------

def test_device_crud_bulk_and_csv(hub):
    h = adm(hub)
    t = "devs"
    assert hub.post(ADMIN + "/device-profiles", LIGHT_PROFILE, headers=h, tenant=t)[0] == 201
    st, hd, _ = hub.post(ADMIN + "/devices", {"devEui": "A84041000181C9AA",
                                              "profile": "light-decoded", "owner": "acme",
                                              "name": "post-1"}, headers=h, tenant=t)
    assert st == 201 and hd["location"] == ADMIN + "/devices/a84041000181c9aa"
    st, _, b = hub.get(ADMIN + "/devices/a84041000181c9aa", headers=h, tenant=t)
    assert b == {"devEui": "a84041000181c9aa", "profile": "light-decoded", "owner": "acme",
                 "name": "post-1"}
    st, _, b = hub.post(ADMIN + "/devices", {"devEui": "a84041000181c9aa",
                                             "profile": "light-decoded"}, headers=h, tenant=t)
    assert_problem(st, b, 409, "AlreadyExists")
    for bad in ({"devEui": "xyz", "profile": "light-decoded"},
                {"devEui": "a84041000181c9ab", "profile": "no-such-profile"},
                {"devEui": "a84041000181c9ab", "profile": "light-decoded", "entityId": "nouri"},
                {"devEui": "a84041000181c9ab", "profile": "light-decoded",
                 "location": {"type": "Point", "coordinates": [200, 0]}}):
        st, _, b = hub.post(ADMIN + "/devices", bad, headers=h, tenant=t)
        assert_problem(st, b, 400, "BadRequestData")
    # bulk JSON with one bad row: 207 and the good ones stored
    st, _, b = hub.post(ADMIN + "/devices", [
        {"devEui": "a84041000181c9b1", "profile": "light-decoded"},
        {"devEui": "nothex", "profile": "light-decoded"},
        {"devEui": "a84041000181c9b2", "profile": "light-decoded", "owner": "acme"},
    ], headers=h, tenant=t)
    assert st == 207
    assert b["success"] == ["a84041000181c9b1", "a84041000181c9b2"]
    assert len(b["errors"]) == 1 and b["errors"][0]["index"] == 1
    assert b["errors"][0]["error"]["type"].endswith("BadRequestData")
    # CSV
    csv = ("devEui,profile,name,owner,lat,lon\r\n"
           "a84041000181c9c1,light-decoded,\"Post, north\",city,52.37,4.89\r\n"
           "a84041000181c9c2,light-decoded,Post south,city,52.36,4.88\r\n")
    st, _, b = hub.post(ADMIN + "/devices", csv, ctype="text/csv", headers=h, tenant=t)
    assert st == 201, hub.last_text
    assert b["success"] == ["a84041000181c9c1", "a84041000181c9c2"]
    st, _, b = hub.get(ADMIN + "/devices/a84041000181c9c1", headers=h, tenant=t)
    assert b["name"] == "Post, north"
    assert b["location"] == {"type": "Point", "coordinates": [4.89, 52.37]}
    st, _, b = hub.post(ADMIN + "/devices", "devEui,name\r\nx,y\r\n", ctype="text/csv",
                        headers=h, tenant=t)
    assert_problem(st, b, 400, "BadRequestData")
    st, _, b = hub.post(ADMIN + "/devices", "hello", ctype="text/plain", headers=h, tenant=t)
    assert_problem(st, b, 415, "InvalidRequest")
    # list, filters, paging
    st, hd, b = hub.get(ADMIN + "/devices?count=true", headers=h, tenant=t)
    assert hd["ngsild-results-count"] == "5" and len(b) == 5
    assert [d["devEui"] for d in b] == sorted(d["devEui"] for d in b)
    st, _, b = hub.get(ADMIN + "/devices?owner=acme", headers=h, tenant=t)
    assert [d["devEui"] for d in b] == ["a84041000181c9aa", "a84041000181c9b2"]
    st, hd, b = hub.get(ADMIN + "/devices?limit=2&offset=1", headers=h, tenant=t)
    assert len(b) == 2 and "rel=\"next\"" in hd["link"]
    # replace and delete
    assert hub.put(ADMIN + "/devices/a84041000181c9aa",
                   {"profile": "light-decoded", "name": "renamed"}, headers=h, tenant=t)[0] == 204
    st, _, b = hub.get(ADMIN + "/devices/a84041000181c9aa", headers=h, tenant=t)
    assert b["name"] == "renamed" and "owner" not in b
    assert hub.delete(ADMIN + "/devices/a84041000181c9aa", headers=h, tenant=t)[0] == 204
    st, _, b = hub.delete(ADMIN + "/devices/a84041000181c9aa", headers=h, tenant=t)
    assert_problem(st, b, 404, "ResourceNotFound")


# ---- webhooks ----------------------------------------------------------------------------

def test_webhook_needs_the_tenant_ingest_secret(hub):
    body = fixture("chirpstack-v4-up-decoded.json")
    st, _, b = hook(hub, CS_HOOK, body, {}, tenant="nosecret")
    assert_pl_problem(st, b, 401, "Unauthorized")
    secret = setup_tenant(hub, tenant="hooks")
    st, _, b = hook(hub, CS_HOOK, body, {"Authorization": "Bearer " + "0" * 64}, tenant="hooks")
    assert_pl_problem(st, b, 401, "Unauthorized")
    # one tenant's secret does not open another
    st, _, b = hook(hub, CS_HOOK, body, secret, tenant="nosecret")
    assert_pl_problem(st, b, 401, "Unauthorized")
    st, _, b = hub.post(CS_HOOK, body, headers=secret, tenant="hooks", ctype="text/plain")
    assert_problem(st, b, 415, "InvalidRequest")
    st, _, b = hook(hub, CS_HOOK, body, secret, tenant="hooks", event="bogus")
    assert_problem(st, b, 400, "BadRequestData")
    # events the hub does not use are acknowledged, but only to the tenant's network server
    assert hook(hub, CS_HOOK, body, secret, tenant="hooks", event="txack")[0] == 204
    st, _, b = hook(hub, CS_HOOK, body, {}, tenant="hooks", event="txack")
    assert_pl_problem(st, b, 401, "Unauthorized")
    st, _, b = hub.post(TTS_HOOK + "/join", body, tenant="hooks")
    assert_pl_problem(st, b, 401, "Unauthorized")
    # a secret set by the operator
    assert hub.put(ADMIN + "/ingest/secret", {"secret": "my-own-ingest-secret-1"},
                   headers=adm(hub), tenant="hooks")[0] == 204
    st, _, b = hook(hub, CS_HOOK, body, {"Authorization": "Bearer my-own-ingest-secret-1"},
                    tenant="hooks")
    assert st == 200 and b["result"] == "stored", hub.last_text
    st, _, b = hub.put(ADMIN + "/ingest/secret", {"secret": "short"}, headers=adm(hub),
                       tenant="hooks")
    assert_problem(st, b, 400, "BadRequestData")


def test_chirpstack_v4_fixtures_become_entities(hub):
    t = "cs4"
    secret = setup_tenant(hub, tenant=t)
    st, _, b = hook(hub, CS_HOOK, fixture("chirpstack-v4-up-cayenne.json"), secret, tenant=t,
                    event="up")
    assert st == 200 and b == {"result": "stored", "entityId": AIR_ID}, hub.last_text
    e = entity(hub, AIR_ID, tenant=t)
    obs = "2026-06-12T08:15:02.118Z"
    assert e["type"] == "AirQualityObserved"
    assert e["temperature"] == {"type": "Property", "value": 18.4, "unitCode": "CEL",
                                "observedAt": obs}
    assert e["relativeHumidity"]["value"] == pytest.approx(0.715)
    assert e["atmosphericPressure"]["value"] == pytest.approx(1012.3)
    assert e["pm25"]["value"] == pytest.approx(12.34)
    assert e["dataProvider"]["value"] == "Gemeente Voorbeeld"
    assert e["refDevice"] == {"type": "Relationship", "object": "urn:ngsi-ld:Device:" + AIR_EUI}
    # the same message again (same deduplicationId): not stored twice
    st, _, b = hook(hub, CS_HOOK, fixture("chirpstack-v4-up-cayenne.json"), secret, tenant=t)
    assert st == 200 and b == {"result": "duplicate"}
    # network-decoded
    st, _, b = hook(hub, CS_HOOK, fixture("chirpstack-v4-up-decoded.json"), secret, tenant=t)
    assert b == {"result": "stored", "entityId": LIGHT_ID}
    e = entity(hub, LIGHT_ID, tenant=t, options="keyValues")
    assert (e["peopleCountTowards"], e["peopleCountAway"], e["occupancy"]) == (57, 33, 0.41)
    assert e["location"] == {"type": "Point", "coordinates": [4.8926, 52.3731]}
    # status, join and log land on the Device companion
    for name, ev in (("chirpstack-v4-status.json", "status"), ("chirpstack-v4-join.json", "join"),
                     ("chirpstack-v4-log.json", "log")):
        st, _, b = hook(hub, CS_HOOK, fixture(name), secret, tenant=t, event=ev)
        assert st == 200 and b["result"] == "stored", (name, hub.last_text)
    d = entity(hub, "urn:ngsi-ld:Device:" + AIR_EUI, tenant=t)
    assert d["type"] == "Device"
    assert d["serialNumber"]["value"] == AIR_EUI.upper()
    assert d["controlledAsset"]["object"] == AIR_ID
    assert d["batteryLevel"]["value"] == pytest.approx(0.875)
    assert d["batteryLevel"]["observedAt"] == "2026-06-12T09:00:00.000Z"
    assert d["fCnt"]["value"] == 1842
    assert d["rssi"]["unitCode"] == "DBM"
    assert "lastJoinAt" in d
    assert d["lastLog"]["value"]["level"] == "ERROR"
    assert d["lastLog"]["value"]["code"] == "UPLINK_CODEC"
    s = stats(hub, tenant=t)
    assert s["byEvent"] == {"up": 3, "status": 1, "join": 1, "log": 1}
    assert s["duplicates"] == 1 and s["rejected"] == 0
    assert s["stored"] == 5


def test_identity_attributes_are_written_once(hub):
    """Static attributes, refDevice and the Device's identity go with a
    device's first uplink (and after a registry change), then only the
    measurements: what the city changed through the API stays, the
    identity attributes are not rewritten (modifiedAt unchanged), and an
    entity recreated by an uplink gets them back with the next one."""
    t = "ident"
    secret = setup_tenant(hub, tenant=t)
    base = json.loads(fixture("chirpstack-v4-up-cayenne.json"))
    n = [0]

    def uplink():
        n[0] += 1
        m = dict(base, deduplicationId="00000000-0000-4000-8000-%012d" % n[0], fCnt=2000 + n[0])
        st, _, b = hook(hub, CS_HOOK, json.dumps(m).encode(), secret, tenant=t, event="up")
        assert st == 200 and b["result"] == "stored", hub.last_text

    dev_id = "urn:ngsi-ld:Device:" + AIR_EUI
    uplink()
    e = entity(hub, AIR_ID, tenant=t)
    assert e["dataProvider"]["value"] == "Gemeente Voorbeeld" and "refDevice" in e
    serial_at = entity(hub, dev_id, tenant=t, options="sysAttrs")["serialNumber"]["modifiedAt"]
    assert hub.patch(ENTITIES + "/" + AIR_ID + "/attrs",
                     {"dataProvider": {"type": "Property", "value": "Waterschap"}},
                     tenant=t)[0] == 204
    uplink()
    e = entity(hub, AIR_ID, tenant=t)
    assert e["dataProvider"]["value"] == "Waterschap"
    d = entity(hub, dev_id, tenant=t, options="sysAttrs")
    assert d["fCnt"]["value"] == 2002 and d["serialNumber"]["modifiedAt"] == serial_at
    # a registry change: the identity goes again with the next uplink
    st, _, _ = hub.put(ADMIN + "/devices/" + AIR_EUI,
                       {"devEui": AIR_EUI, "profile": "air-lpp", "name": "air-node-017b"},
                       headers=adm(hub), tenant=t)
    assert st in (200, 204), hub.last_text
    uplink()
    assert entity(hub, AIR_ID, tenant=t)["dataProvider"]["value"] == "Gemeente Voorbeeld"
    assert entity(hub, dev_id, tenant=t)["name"]["value"] == "air-node-017b"
    # deleted through the API: recreated by the next uplink, completed by the one after
    assert hub.delete(ENTITIES + "/" + AIR_ID, tenant=t)[0] == 204
    uplink()
    e = entity(hub, AIR_ID, tenant=t)
    assert "temperature" in e and "dataProvider" not in e
    uplink()
    e = entity(hub, AIR_ID, tenant=t)
    assert e["dataProvider"]["value"] == "Gemeente Voorbeeld" and "refDevice" in e


def test_chirpstack_v3_and_tts_fixtures(hub):
    t = "v3tts"
    secret = setup_tenant(hub, tenant=t)
    # ChirpStack v3 (flat JSON, devEUI in base64) through the same webhook
    st, _, b = hook(hub, CS_HOOK, fixture("chirpstack-v3-up.json"), secret, tenant=t)
    assert st == 200 and b["result"] == "stored", hub.last_text
    assert entity(hub, AIR_ID, tenant=t)["temperature"]["value"] == 18.4
    # The Things Stack v3
    for name, path in (("tts-v3-up-cayenne.json", TTS_HOOK),
                       ("tts-v3-up-decoded.json", TTS_HOOK + "/up")):
        st, _, b = hub.post(path, fixture(name), headers=secret, tenant=t)
        assert st == 200 and b["result"] == "stored", (name, hub.last_text)
    e = entity(hub, AIR_ID, tenant=t)
    assert e["temperature"]["observedAt"] == "2026-06-12T08:15:02.112Z"
    e = entity(hub, LIGHT_ID, tenant=t, options="keyValues")
    assert e["peopleCountTowards"] == 57
    st, _, b = hub.post(TTS_HOOK + "/status", fixture("tts-v3-up-decoded.json"),
                        headers=secret, tenant=t)
    assert_problem(st, b, 400, "BadRequestData")


def test_history_and_notification_of_an_uplink(hub):
    t = "hist"
    secret = setup_tenant(hub, tenant=t)
    rx = Receiver()
    try:
        st, _, _ = hub.post(BASE + "/subscriptions", {
            "type": "Subscription", "entities": [{"type": "CrowdFlowObserved"}],
            "watchedAttributes": ["peopleCountTowards"],
            "notification": {"format": "keyValues", "attributes": ["peopleCountTowards"],
                             "endpoint": {"uri": rx.url}}},
            tenant=t)
        assert st == 201, hub.last_text
        msg = json.loads(fixture("chirpstack-v4-up-decoded.json"))
        for i, count in enumerate((5, 6, 7)):
            msg["deduplicationId"] = "dedup-%d" % i
            msg["time"] = "2026-06-12T09:0%d:00Z" % i
            msg["object"]["peopleCountTowards"] = count
            st, _, b = hook(hub, CS_HOOK, json.dumps(msg), secret, tenant=t)
            assert b["result"] == "stored"
        got = rx.wait(3)
        assert [n["data"][0]["peopleCountTowards"] for n in got] == [5, 6, 7]
        assert got[0]["data"][0]["id"] == LIGHT_ID
        st, _, b = hub.get(BASE + "/temporal/entities/" + LIGHT_ID +
                           "?attrs=peopleCountTowards&options=temporalValues", tenant=t)
        assert st == 200, hub.last_text
        assert b["peopleCountTowards"]["values"] == [
            [c, "2026-06-12T09:0%d:00.000Z" % i] for i, c in enumerate((5, 6, 7))]
    finally:
        rx.stop()


def test_malformed_messages_are_rejected_and_counted(hub):
    t = "bad"
    secret = setup_tenant(hub, tenant=t)
    cases = [
        ("chirpstack-up-bad-base64.json", 400, "bad_base64"),
        ("chirpstack-up-no-deviceinfo.json", 400, "no_dev_eui"),
        ("chirpstack-up-not-json.txt", 400, "invalid_json"),
        ("chirpstack-up-wrong-types.json", 400, "wrong_type"),
    ]
    for name, status, reason in cases:
        st, _, b = hook(hub, CS_HOOK, fixture(name, "malformed"), secret, tenant=t)
        assert st == status, (name, hub.last_text)
        assert b["type"].startswith("https://uri.etsi.org/ngsi-ld/errors/")
        assert b["detail"].startswith(reason), (name, b["detail"])
    # 1.5 MB: refused by the HTTP layer from its Content-Length, before it is
    # read (max_body); a client that waits for 100-continue sends nothing
    huge = fixture("chirpstack-up-huge.json", "malformed")
    c = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=10 * SLOW)
    c.putrequest("POST", CS_HOOK)
    for k, v in dict(secret, **{"NGSILD-Tenant": t, "Content-Type": "application/json",
                                "Content-Length": str(len(huge)),
                                "Expect": "100-continue"}).items():
        c.putheader(k, v)
    c.endheaders()
    r = c.getresponse()
    b = json.loads(r.read())
    c.close()
    assert_problem(r.status, b, 413, "InvalidRequest")
    # 100 KB: read, but over the 64 KiB an uplink may have
    big = json.loads(fixture("chirpstack-v4-up-decoded.json"))
    big["padding"] = "x" * 100000
    st, _, b = hook(hub, CS_HOOK, json.dumps(big), secret, tenant=t)
    assert_problem(st, b, 413, "InvalidRequest")
    assert b["detail"].startswith("too_large")
    st, _, b = hub.post(TTS_HOOK, fixture("tts-up-no-uplink.json", "malformed"), headers=secret,
                        tenant=t)
    assert_problem(st, b, 400, "BadRequestData")
    assert b["detail"].startswith("no_uplink")
    # LPP frames from the bad-vectors table: rejected whole
    msg = json.loads(fixture("chirpstack-v4-up-cayenne.json"))
    import base64
    with open(os.path.join(FIXTURES, "malformed", "cayenne-lpp-bad.tsv")) as f:
        rows = [ln.split("\t")[0] for ln in f.read().splitlines()
                if ln and not ln.startswith("#")]
    n_lpp = 0
    for i, hexp in enumerate(rows):
        msg["deduplicationId"] = "lpp-bad-%d" % i
        msg["data"] = base64.b64encode(bytes.fromhex(hexp)).decode()
        st, _, b = hook(hub, CS_HOOK, json.dumps(msg), secret, tenant=t)
        if hexp == "":  # an empty frame is no error: no entity update, only the Device's
            assert st == 200 and b == {"result": "stored",
                                       "entityId": "urn:ngsi-ld:Device:" + AIR_EUI}, hub.last_text
            continue
        assert st == 400 and b["detail"].startswith("lpp_"), (hexp, hub.last_text)
        n_lpp += 1
    assert n_lpp == len([h for h in rows if h]) > 0
    s = stats(hub, tenant=t)
    r = s["rejectedByReason"]
    for _, _, reason in cases:
        assert r[reason] >= 1, (reason, r)
    assert r["too_large"] == 1
    assert r["no_uplink"] == 1
    assert sum(v for k, v in r.items() if k.startswith("lpp_")) == n_lpp
    assert s["rejected"] == sum(r.values())
    assert s["lastErrors"][0]["reason"].startswith("lpp_")
    dev = [d for d in s["devicesWithRejections"] if d["devEui"] == AIR_EUI]
    assert dev and dev[0]["rejected"] == n_lpp + 3, s  # + bad base64, wrong types, no uplink
    assert hub.get("/health")[0] == 200


def test_flood_from_one_device_is_cut(hub_factory):
    hub = hub_factory("--ingest-device-rate", "1", "--ingest-device-burst", "3")
    secret = setup_tenant(hub)
    msg = json.loads(fixture("chirpstack-v4-up-decoded.json"))
    codes, refused = [], None
    start = time.monotonic()
    for i in range(8):
        msg["deduplicationId"] = "flood-%d" % i
        st, _, b = hook(hub, CS_HOOK, json.dumps(msg), secret)
        codes.append(st)
        if st == 429:
            refused = b
    elapsed = time.monotonic() - start
    assert codes[:3] == [200, 200, 200]
    # burst 3, then 1 token a second: at most 3 + elapsed + 1 of the 8 get through
    assert codes.count(200) <= 3 + int(elapsed) + 1, (codes, elapsed)
    assert refused is not None, codes
    assert_pl_problem(429, refused, 429, "TooManyRequests")
    assert refused["detail"].startswith("flood")
    s = stats(hub)
    assert s["rejectedByReason"]["flood"] == codes.count(429)


# ---- quarantine and autoprovisioning -------------------------------------------------------

def test_quarantine_and_provisioning(hub):
    t = "quar"
    secret = setup_tenant(hub, tenant=t, devices=False)
    st, _, b = hook(hub, CS_HOOK, fixture("chirpstack-v4-up-cayenne.json"), secret, tenant=t)
    assert st == 200 and b == {"result": "quarantined"}
    st, _, b = hub.get(ENTITIES + "/" + AIR_ID, tenant=t)
    assert st == 404
    st, _, q = hub.get(ADMIN + "/quarantine", headers=adm(hub), tenant=t)
    assert [x["devEui"] for x in q] == [AIR_EUI]
    assert q[0]["deviceName"] == "air-node-017" and q[0]["count"] == 1
    assert q[0]["application"] == "4d3c2b1a-0f9e-4d8c-b7a6-958473625140"
    assert q[0]["lastMessage"]["fCnt"] == 1842
    # a bad request leaves the entry (and its last uplink) in quarantine
    for bad, status in (({"profile": "no-such-profile"}, 400), ({"profile": "air-lpp",
                                                                "owner": "bad owner!"}, 400)):
        st, _, b = hub.post(ADMIN + "/quarantine/" + AIR_EUI + "/provision", bad,
                            headers=adm(hub), tenant=t)
        assert_problem(st, b, status, "BadRequestData")
    assert [x["devEui"] for x in hub.get(ADMIN + "/quarantine", headers=adm(hub),
                                         tenant=t)[2]] == [AIR_EUI]
    # the path's DevEUI in any case
    st, _, b = hub.post(ADMIN + "/quarantine/" + AIR_EUI.upper() + "/provision",
                        {"profile": "air-lpp", "name": "air-node-017"}, headers=adm(hub),
                        tenant=t)
    assert st == 201 and b == {"devEui": AIR_EUI, "replayed": True}, hub.last_text
    wait_for(lambda: hub.get(ENTITIES + "/" + AIR_ID, tenant=t)[0] == 200, "replayed entity")
    assert entity(hub, AIR_ID, tenant=t)["temperature"]["value"] == 18.4
    st, _, q = hub.get(ADMIN + "/quarantine", headers=adm(hub), tenant=t)
    assert q == []
    st, _, b = hub.post(ADMIN + "/quarantine/" + AIR_EUI + "/provision", {"profile": "air-lpp"},
                        headers=adm(hub), tenant=t)
    assert_problem(st, b, 404, "ResourceNotFound")
    # delete an entry
    hook(hub, CS_HOOK, fixture("chirpstack-v4-up-decoded.json"), secret, tenant=t)
    assert hub.delete(ADMIN + "/quarantine/" + LIGHT_EUI, headers=adm(hub), tenant=t)[0] == 204
    assert hub.get(ADMIN + "/quarantine", headers=adm(hub), tenant=t)[2] == []


def test_quarantine_is_bounded(hub_factory):
    hub = hub_factory("--ingest-quarantine-max", "3")
    secret = setup_tenant(hub, devices=False)
    msg = json.loads(fixture("chirpstack-v4-up-decoded.json"))
    for i in range(6):
        msg["deviceInfo"]["devEui"] = "00000000000000%02x" % i
        msg["deduplicationId"] = "q-%d" % i
        assert hook(hub, CS_HOOK, json.dumps(msg), secret)[2]["result"] == "quarantined"
    st, _, q = hub.get(ADMIN + "/quarantine", headers=adm(hub))
    assert len(q) == 3
    assert stats(hub)["quarantined"] == 6


def test_autoprovisioning_per_application(hub):
    t = "auto"
    secret = setup_tenant(hub, tenant=t, devices=False)
    app = "4d3c2b1a-0f9e-4d8c-b7a6-958473625140"
    st, _, b = hub.put(ADMIN + "/ingest/autoprovision/" + app, {"profile": "nope"},
                       headers=adm(hub), tenant=t)
    assert_problem(st, b, 400, "BadRequestData")
    assert hub.put(ADMIN + "/ingest/autoprovision/" + app, {"profile": "light-decoded"},
                   headers=adm(hub), tenant=t)[0] == 204
    assert hub.get(ADMIN + "/ingest/autoprovision", headers=adm(hub), tenant=t)[2] == \
        {app: "light-decoded"}
    st, _, b = hook(hub, CS_HOOK, fixture("chirpstack-v4-up-decoded.json"), secret, tenant=t)
    assert b == {"result": "stored", "entityId": LIGHT_ID}, hub.last_text
    st, _, d = hub.get(ADMIN + "/devices/" + LIGHT_EUI, headers=adm(hub), tenant=t)
    assert d == {"devEui": LIGHT_EUI, "profile": "light-decoded", "name": "lightpost-05"}
    assert hub.delete(ADMIN + "/ingest/autoprovision/" + app, headers=adm(hub),
                      tenant=t)[0] == 204
    st, _, b = hub.delete(ADMIN + "/ingest/autoprovision/" + app, headers=adm(hub), tenant=t)
    assert_problem(st, b, 404, "ResourceNotFound")


def test_registry_survives_restart(hub_factory):
    hub = hub_factory()
    secret = setup_tenant(hub, tenant="keep")
    app = "4d3c2b1a-0f9e-4d8c-b7a6-958473625140"
    assert hub.put(ADMIN + "/ingest/autoprovision/" + app, {"profile": "air-lpp"},
                   headers=adm(hub), tenant="keep")[0] == 204
    before = admin_secret(hub)
    hub.restart()
    assert admin_secret(hub) == before
    assert hub.stderr_text().count(before) == 1  # printed once, at the first start only
    st, _, b = hub.get(ADMIN + "/device-profiles", headers=adm(hub), tenant="keep")
    assert [p["id"] for p in b] == ["air-lpp", "light-decoded"]
    st, _, b = hub.get(ADMIN + "/devices", headers=adm(hub), tenant="keep")
    assert [d["devEui"] for d in b] == [AIR_EUI, LIGHT_EUI]
    assert hub.get(ADMIN + "/ingest/autoprovision", headers=adm(hub), tenant="keep")[2] == \
        {app: "air-lpp"}
    st, _, b = hook(hub, CS_HOOK, fixture("chirpstack-v4-up-decoded.json"), secret, tenant="keep")
    assert st == 200 and b["result"] == "stored", hub.last_text


# ---- MQTT ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def broker():
    b = Broker()
    yield b
    b.close()


def test_mqtt_uplinks_from_a_real_broker(hub_factory, broker):
    url = "mqtt://127.0.0.1:%d?tenant=mq" % broker.port
    hub = hub_factory("--ingest-mqtt", url)
    setup_tenant(hub, tenant="mq")

    def connected():
        c = stats(hub, tenant="mq").get("connections", [])
        return c and c[0]["connected"] and c[0]["subscribed"]
    wait_for(connected, "the MQTT connection")
    rx = Receiver()
    st, _, _ = hub.post(BASE + "/subscriptions", {
        "type": "Subscription", "entities": [{"type": "AirQualityObserved"}],
        "watchedAttributes": ["temperature"],
        "notification": {"format": "keyValues", "attributes": ["temperature"],
                         "endpoint": {"uri": rx.url}}},
        tenant="mq")
    assert st == 201, hub.last_text
    # every fixture on its topic, in the order a network server would send them
    v4 = "application/4d3c2b1a/device/%s/event/" % AIR_EUI
    published = [
        (v4 + "join", "chirpstack-v4-join.json"),
        (v4 + "up", "chirpstack-v4-up-cayenne.json"),
        ("application/4d3c2b1a/device/%s/event/up" % LIGHT_EUI, "chirpstack-v4-up-decoded.json"),
        (v4 + "status", "chirpstack-v4-status.json"),
        (v4 + "log", "chirpstack-v4-log.json"),
        ("application/7/device/%s/event/up" % AIR_EUI, "chirpstack-v3-up.json"),
        ("v3/city-app@ttn/devices/air-node-017/up", "tts-v3-up-cayenne.json"),
        ("v3/city-app@ttn/devices/lightpost-05/up", "tts-v3-up-decoded.json"),
    ]
    for topic, name in published:
        broker.publish(topic, fixture(name))
    # and the malformed ones: counted, nothing else happens
    bad = ["chirpstack-up-bad-base64.json", "chirpstack-up-no-deviceinfo.json",
           "chirpstack-up-not-json.txt", "chirpstack-up-wrong-types.json"]
    for name in bad:
        broker.publish(v4 + "up", fixture(name, "malformed"))
    broker.publish("v3/city-app@ttn/devices/air-node-017/up",
                   fixture("tts-up-no-uplink.json", "malformed"))
    total = len(published) + len(bad) + 1
    wait_for(lambda: stats(hub, tenant="mq")["received"] >= total, "every message")
    s = wait_for(lambda: (lambda s: s if s["inFlight"] == 0 else None)(stats(hub, tenant="mq")),
                 "the writes")
    assert s["stored"] == len(published), s
    assert s["byEvent"] == {"up": 5, "status": 1, "join": 1, "log": 1}, s
    assert s["rejectedByReason"] == {"bad_base64": 1, "no_dev_eui": 1, "invalid_json": 1,
                                     "wrong_type": 1, "no_uplink": 1}, s
    assert s["connections"][0]["messages"] == total
    assert "password" not in json.dumps(s["connections"])
    e = entity(hub, AIR_ID, tenant="mq")
    assert e["temperature"]["value"] == 18.4
    assert e["temperature"]["observedAt"] == "2026-06-12T08:15:02.112Z"  # the TTS one, last
    assert entity(hub, LIGHT_ID, tenant="mq", options="keyValues")["occupancy"] == 0.41
    d = entity(hub, "urn:ngsi-ld:Device:" + AIR_EUI, tenant="mq")
    assert d["batteryLevel"]["value"] == pytest.approx(0.875)
    assert d["lastLog"]["value"]["code"] == "UPLINK_CODEC" and "lastJoinAt" in d
    st, _, h = hub.get(BASE + "/temporal/entities/" + AIR_ID +
                       "?attrs=temperature&options=temporalValues", tenant="mq")
    assert st == 200, hub.last_text
    times = [v[1] for v in h["temperature"]["values"]]
    # ChirpStack v3 (gateway time), TTS (received_at), ChirpStack v4 (time): in time order
    assert times == ["2026-06-12T08:15:02.101Z", "2026-06-12T08:15:02.112Z",
                     "2026-06-12T08:15:02.118Z"], h
    assert all(v[0] == 18.4 for v in h["temperature"]["values"])
    got = rx.wait(3)
    assert [n["data"][0]["temperature"] for n in got] == [18.4, 18.4, 18.4]
    rx.stop()
    # the default tenant sees nothing of it
    assert hub.get(ENTITIES + "/" + AIR_ID)[0] == 404

    # broker restart mid-stream: the hub reconnects and keeps going
    broker.stop()
    wait_for(lambda: not stats(hub, tenant="mq")["connections"][0]["connected"], "disconnect")
    broker.start()
    wait_for(connected, "the reconnection", timeout=30)
    msg = json.loads(fixture("chirpstack-v4-up-decoded.json"))
    msg["deduplicationId"] = "after-restart"
    msg["object"]["peopleCountTowards"] = 99
    broker.publish("application/4d3c/device/%s/event/up" % LIGHT_EUI, json.dumps(msg))
    wait_for(lambda: entity(hub, LIGHT_ID, tenant="mq",
                            options="keyValues")["peopleCountTowards"] == 99, "the new uplink")
    assert stats(hub, tenant="mq")["connections"][0]["reconnects"] >= 1


def test_bad_mqtt_url_stops_startup(hub_factory):
    from conftest import HubError
    with pytest.raises(HubError) as ei:
        hub_factory("--ingest-mqtt", "http://nope")
    assert "ingest_mqtt" in str(ei.value) or "ingest-mqtt" in str(ei.value)
