"""14 - the temporal history and GET /temporal/entities/{id} (GS CIM 009
5.7.3): what is recorded (observedAt instances; history = all / off),
timerel, lastN, attrs, temporalValues, instanceId, errors, tenants, restart."""
from helpers import BASE, ENTITIES, assert_problem, prop

TEMPORAL = BASE + "/temporal/entities"


def obs(value, hour, **extra):
    return prop(value, observedAt="2026-03-01T%02d:00:00Z" % hour, **extra)


def values(hub, eid, query="", tenant=None):
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=temporalValues" + query, tenant=tenant)
    assert st == 200, hub.last_text
    return b


def test_history_of_observed_writes(hub):
    eid = "urn:ngsi-ld:Meter:t1"
    assert hub.post(ENTITIES, {"id": eid, "type": "Meter", "kwh": obs(1, 0),
                               "label": prop("no time")})[0] == 201
    for h in (1, 2, 3):
        assert hub.patch(ENTITIES + "/" + eid + "/attrs", {"kwh": obs(1 + h, h)})[0] == 204
    st, _, b = hub.get(TEMPORAL + "/" + eid)
    assert st == 200
    assert b["id"] == eid and b["type"] == "Meter"
    assert [i["value"] for i in b["kwh"]] == [1, 2, 3, 4]
    assert [i["observedAt"] for i in b["kwh"]] == ["2026-03-01T%02d:00:00.000Z" % h
                                                   for h in range(4)]
    ids = [i["instanceId"] for i in b["kwh"]]
    assert len(set(ids)) == 4 and all(x.startswith("urn:ngsi-ld:attribute:instance:") for x in ids)
    assert "label" not in b  # no observedAt, not kept by default
    b = values(hub, eid)
    assert b["kwh"] == {"type": "Property",
                        "values": [[h + 1, "2026-03-01T%02d:00:00.000Z" % h] for h in range(4)]}


def test_timerel_lastn_attrs(hub):
    eid = "urn:ngsi-ld:Meter:t2"
    assert hub.post(ENTITIES, {"id": eid, "type": "Meter", "a": obs(0, 0), "b": obs(100, 0)})[0] == 201
    for h in range(1, 6):
        assert hub.patch(ENTITIES + "/" + eid + "/attrs", {"a": obs(h, h), "b": obs(100 + h, h)})[0] == 204

    def a_values(q):
        return [v[0] for v in values(hub, eid, q)["a"]["values"]]

    assert a_values("") == [0, 1, 2, 3, 4, 5]
    assert a_values("&lastN=2") == [4, 5]
    assert a_values("&timerel=before&timeAt=2026-03-01T02:00:00Z") == [0, 1]
    # 4.11: before is an exclusive bound, after an inclusive one
    assert a_values("&timerel=after&timeAt=2026-03-01T02:00:00Z") == [2, 3, 4, 5]
    assert a_values("&timerel=between&timeAt=2026-03-01T01:00:00Z"
                    "&endTimeAt=2026-03-01T04:00:00Z") == [1, 2, 3]
    assert a_values("&timerel=between&timeAt=2026-03-01T01:00:00Z"
                    "&endTimeAt=2026-03-01T04:00:00Z&lastN=1") == [3]
    b = values(hub, eid, "&attrs=b&lastN=1")
    assert "a" not in b and b["b"]["values"] == [[105, "2026-03-01T05:00:00.000Z"]]


def test_batch_upsert_records_history(hub):
    ents = [{"id": "urn:ngsi-ld:Meter:b%d" % i, "type": "Meter", "kwh": obs(i, 1)} for i in range(3)]
    assert hub.post(BASE + "/entityOperations/upsert", ents)[0] in (201, 204)
    ents = [{"id": "urn:ngsi-ld:Meter:b%d" % i, "type": "Meter", "kwh": obs(10 + i, 2)} for i in range(3)]
    assert hub.post(BASE + "/entityOperations/upsert", ents)[0] in (201, 204)
    assert [v[0] for v in values(hub, "urn:ngsi-ld:Meter:b2")["kwh"]["values"]] == [2, 12]


def test_errors(hub):
    st, _, b = hub.get(TEMPORAL + "/urn:ngsi-ld:Meter:nothing")
    assert_problem(st, b, 404, "ResourceNotFound")
    st, _, b = hub.get(TEMPORAL + "/not-a-uri")
    assert_problem(st, b, 400, "BadRequestData")
    eid = "urn:ngsi-ld:Meter:t1"
    for q in ("timerel=during&timeAt=2026-03-01T00:00:00Z", "timerel=before",
              "timerel=before&timeAt=yesterday",
              "timerel=between&timeAt=2026-03-01T02:00:00Z&endTimeAt=2026-03-01T01:00:00Z",
              "lastN=0", "lastN=x", "timeAt=2026-03-01T00:00:00Z"):
        st, _, b = hub.get(TEMPORAL + "/" + eid + "?" + q)
        assert_problem(st, b, 400, "BadRequestData")
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?timeproperty=updatedAt")
    assert_problem(st, b, 400, "BadRequestData")


def test_tenants_and_restart(hub):
    eid = "urn:ngsi-ld:Meter:tt"
    assert hub.post(ENTITIES, {"id": eid, "type": "Meter", "kwh": obs(7, 7)}, tenant="hist")[0] == 201
    st, _, b = hub.get(TEMPORAL + "/" + eid)
    assert_problem(st, b, 404, "ResourceNotFound")
    hub.restart()
    assert values(hub, eid, tenant="hist")["kwh"]["values"] == [[7, "2026-03-01T07:00:00.000Z"]]
    # history outlives the entity, and records its deletion
    assert hub.delete(ENTITIES + "/" + eid, tenant="hist")[0] == 204
    v = values(hub, eid, tenant="hist")["kwh"]["values"]
    assert v[0] == [7, "2026-03-01T07:00:00.000Z"]
    assert len(v) == 2 and v[1][0] == "urn:ngsi-ld:null"


def test_history_modes(hub_factory):
    h = hub_factory("--history", "all")
    assert h.post(ENTITIES, {"id": "urn:ngsi-ld:Meter:m", "type": "Meter", "label": prop("a")})[0] == 201
    assert h.patch(ENTITIES + "/urn:ngsi-ld:Meter:m/attrs", {"label": prop("b")})[0] == 204
    b = values(h, "urn:ngsi-ld:Meter:m")
    assert [v[0] for v in b["label"]["values"]] == ["a", "b"]
    off = hub_factory("--history", "off")
    assert off.post(ENTITIES, {"id": "urn:ngsi-ld:Meter:o", "type": "Meter", "kwh": obs(1, 1)})[0] == 201
    st, _, b = off.get(TEMPORAL + "/urn:ngsi-ld:Meter:o")
    assert st == 200 and "kwh" not in b
