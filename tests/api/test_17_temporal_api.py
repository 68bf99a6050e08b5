"""17 - the rest of the temporal API (GS CIM 009 5.6.11-5.6.16, 5.7.3, 5.7.4,
6.3.10): GET /temporal/entities (selection, lastN, pagination of entities
and of instances with 206 + Content-Range), aggregation (every method,
periods, checked against values computed here), temporal writes (create,
append, deletes, instance PATCH/DELETE) and their effect on the current
state, POST /temporal/entityOperations/query, and retention."""
import time

from helpers import BASE, ENTITIES, SLOW, aggregate, assert_problem, prop

TEMPORAL = BASE + "/temporal/entities"
TQUERY = BASE + "/temporal/entityOperations/query"
INSTANCE = "urn:ngsi-ld:attribute:instance:"


def ts(minute, hour=0, day=1):
    return "2026-04-%02dT%02d:%02d:00.000Z" % (day, hour, minute)


def obs(value, minute, hour=0, **extra):
    return prop(value, observedAt=ts(minute, hour), **extra)


def temporal_entity(eid, etype, attrs):
    body = {"id": eid, "type": etype}
    body.update(attrs)
    return body


def create(hub, body, tenant=None, expect=(201, 204)):
    st, h, b = hub.post(TEMPORAL, body, tenant=tenant)
    assert st in expect, (st, hub.last_text)
    return st, h


# ---- writes -----------------------------------------------------------------

def test_create_temporal_entity_and_current_state(hub):
    eid = "urn:ngsi-ld:Sensor:w1"
    temps = [obs(10 + i, i) for i in range(5)]
    st, h = create(hub, temporal_entity(eid, "Sensor", {"temp": temps,
                                                        "label": obs("x", 3)}))
    assert st == 201
    assert h["location"] == TEMPORAL + "/" + eid
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=temporalValues")
    assert st == 200
    assert b["temp"]["values"] == [[10 + i, ts(i)] for i in range(5)]
    assert b["label"]["values"] == [["x", ts(3)]]
    # the current state holds the newest instance
    st, _, cur = hub.get(ENTITIES + "/" + eid)
    assert st == 200 and cur["type"] == "Sensor"
    assert cur["temp"]["value"] == 14 and cur["temp"]["observedAt"] == ts(4)
    # a second POST adds instances (204); an older one does not turn back the state
    st, _ = create(hub, temporal_entity(eid, "Sensor", {"temp": [obs(99, 59, 23), obs(1, 30)]}))
    assert st == 204
    st, _, cur = hub.get(ENTITIES + "/" + eid)
    assert cur["temp"]["value"] == 99
    create(hub, temporal_entity(eid, "Sensor", {"temp": obs(-5, 45)}))
    st, _, cur = hub.get(ENTITIES + "/" + eid)
    assert cur["temp"]["value"] == 99
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=temporalValues&attrs=temp")
    assert [v[0] for v in b["temp"]["values"]] == [10, 11, 12, 13, 14, 1, -5, 99]
    # format= names the representation as well as options= (clients use both)
    st, _, f = hub.get(TEMPORAL + "/" + eid + "?format=temporalValues&attrs=temp")
    assert st == 200 and f == b
    st, _, a = hub.get(TEMPORAL + "/" + eid + "?format=aggregatedValues&aggrMethods=max"
                       "&attrs=temp")
    assert st == 200, a
    assert a["temp"]["max"][0][0] == 99
    st, _, e = hub.get(TEMPORAL + "/" + eid + "?format=temporalValues&options=aggregatedValues"
                       "&aggrMethods=max")
    assert st == 400 and e["type"].endswith("BadRequestData"), e


def test_simplified_names_values_by_attribute_type_and_dataset(hub):
    """temporalValues (4.5.9): a Relationship lists "objects", a
    LanguageProperty "languageMaps", a Property "values"; instances of
    several datasetIds give one object per dataset."""
    eid = "urn:ngsi-ld:Sensor:w-simple"
    ds = "urn:ngsi-ld:Dataset:b"
    create(hub, temporal_entity(eid, "Sensor", {
        "temp": [obs(1, 0), obs(2, 1), obs(7, 0, datasetId=ds)],
        "site": [{"type": "Relationship", "object": "urn:ngsi-ld:Site:%d" % i,
                  "observedAt": ts(i)} for i in range(2)],
        "label": {"type": "LanguageProperty", "languageMap": {"en": "lamp", "nl": "lamp"},
                  "observedAt": ts(3)}}))
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=temporalValues")
    assert st == 200, b
    assert b["site"] == {"type": "Relationship",
                         "objects": [["urn:ngsi-ld:Site:0", ts(0)], ["urn:ngsi-ld:Site:1", ts(1)]]}
    assert b["label"] == {"type": "LanguageProperty",
                          "languageMaps": [[{"en": "lamp", "nl": "lamp"}, ts(3)]]}
    temp = sorted(b["temp"], key=lambda g: g.get("datasetId", ""))
    assert temp == [{"type": "Property", "values": [[1, ts(0)], [2, ts(1)]]},
                    {"type": "Property", "datasetId": ds, "values": [[7, ts(0)]]}]


def test_pick_and_omit_project_the_temporal_answer(hub):
    eid = "urn:ngsi-ld:Sensor:w-pick"
    create(hub, temporal_entity(eid, "Sensor", {"temp": [obs(1, 0), obs(3, 1)],
                                                 "hum": obs(50, 0), "co2": obs(400, 0)}))
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?pick=id,temp")
    assert st == 200, b
    assert set(b) == {"id", "temp"} and len(b["temp"]) == 2
    # what is left keeps its own instanceIds, whatever went before it
    st, _, full = hub.get(TEMPORAL + "/" + eid)
    for attr in ("temp", "hum", "co2"):
        st, _, b = hub.get(TEMPORAL + "/" + eid + "?pick=id," + attr)
        assert b[attr] == full[attr], attr
        st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=temporalValues&pick=" + attr)
        vals = full[attr] if isinstance(full[attr], list) else [full[attr]]
        assert b[attr]["values"] == [[i["value"], i["observedAt"]] for i in vals]
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?omit=hum,co2&options=temporalValues")
    assert set(b) == {"id", "type", "temp"}
    assert b["temp"]["values"] == [[1, ts(0)], [3, ts(1)]]
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?omit=hum&options=aggregatedValues"
                       "&aggrMethods=max")
    assert set(b) == {"id", "type", "temp", "co2"}
    assert b["temp"]["max"][0][0] == 3


def test_append_attrs(hub):
    eid = "urn:ngsi-ld:Sensor:w2"
    create(hub, temporal_entity(eid, "Sensor", {"temp": obs(1, 0)}))
    st, _, _ = hub.post(TEMPORAL + "/" + eid + "/attrs",
                        {"temp": [obs(2, 1), obs(3, 2)], "hum": obs(50, 1)})
    assert st == 204, hub.last_text
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=temporalValues")
    assert [v[0] for v in b["temp"]["values"]] == [1, 2, 3]
    assert b["hum"]["values"] == [[50, ts(1)]]
    st, _, b = hub.post(TEMPORAL + "/urn:ngsi-ld:Sensor:nope/attrs", {"temp": obs(1, 0)})
    assert_problem(st, b, 404, "ResourceNotFound")


def test_write_errors(hub):
    for body in ({"id": "urn:ngsi-ld:Sensor:e", "type": "Sensor", "temp": prop(1)},  # no observedAt
                 {"id": "urn:ngsi-ld:Sensor:e", "type": "Sensor", "temp": []},
                 {"id": "urn:ngsi-ld:Sensor:e", "type": "Sensor", "temp": [5]},
                 {"id": "not a uri", "type": "Sensor", "temp": obs(1, 0)},
                 {"id": "urn:ngsi-ld:Sensor:e", "temp": obs(1, 0)},
                 [1, 2]):
        st, _, b = hub.post(TEMPORAL, body)
        assert_problem(st, b, 400, "BadRequestData")
    st, _, b = hub.get(ENTITIES + "/urn:ngsi-ld:Sensor:e")
    assert st == 404
    st, _, b = hub.post(TEMPORAL, "{broken")
    assert st == 400


def test_delete_attr_and_datasets(hub):
    eid = "urn:ngsi-ld:Sensor:w3"
    create(hub, temporal_entity(eid, "Sensor", {
        "temp": [obs(1, 0), obs(2, 1), obs(3, 2, datasetId="urn:ds:b"), obs(4, 3, datasetId="urn:ds:b")],
        "hum": [obs(5, 0)]}))
    # default dataset only
    assert hub.delete(TEMPORAL + "/" + eid + "/attrs/temp")[0] == 204
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=temporalValues")
    assert [v[0] for v in b["temp"]["values"]] == [3, 4]
    assert hub.delete(TEMPORAL + "/" + eid + "/attrs/temp?datasetId=urn:ds:x")[0] == 404
    assert hub.delete(TEMPORAL + "/" + eid + "/attrs/temp?datasetId=urn:ds:b")[0] == 204
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=temporalValues")
    assert "temp" not in b and b["hum"]["values"] == [[5, ts(0)]]
    create(hub, temporal_entity(eid, "Sensor", {"hum": [obs(6, 1, datasetId="urn:ds:c")]}))
    assert hub.delete(TEMPORAL + "/" + eid + "/attrs/hum?deleteAll=true")[0] == 204
    st, _, b = hub.get(TEMPORAL + "/" + eid)
    assert st == 200 and "hum" not in b
    st, _, b = hub.delete(TEMPORAL + "/" + eid + "/attrs/hum")
    assert_problem(st, b, 404, "ResourceNotFound")
    st, _, b = hub.delete(TEMPORAL + "/" + eid + "/attrs/hum?deleteAll=maybe")
    assert_problem(st, b, 400, "BadRequestData")


def test_instance_patch_and_delete(hub):
    eid = "urn:ngsi-ld:Sensor:w4"
    create(hub, temporal_entity(eid, "Sensor", {"temp": [obs(1, 0), obs(2, 1), obs(3, 2)]}))
    st, _, b = hub.get(TEMPORAL + "/" + eid)
    ids = [i["instanceId"] for i in b["temp"]]
    assert all(i.startswith(INSTANCE) for i in ids)
    st, _, _ = hub.patch(TEMPORAL + "/" + eid + "/attrs/temp/" + ids[1],
                         {"type": "Property", "value": 20, "unitCode": "CEL"})
    assert st == 204, hub.last_text
    st, _, b = hub.get(TEMPORAL + "/" + eid)
    assert [i["value"] for i in b["temp"]] == [1, 20, 3]
    assert b["temp"][1]["unitCode"] == "CEL" and b["temp"][1]["observedAt"] == ts(1)
    assert [i["instanceId"] for i in b["temp"]] == ids
    # moving it in time moves it in the history
    assert hub.patch(TEMPORAL + "/" + eid + "/attrs/temp/" + ids[1],
                     {"value": 21, "observedAt": ts(30)})[0] == 204
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=temporalValues")
    assert b["temp"]["values"] == [[1, ts(0)], [3, ts(2)], [21, ts(30)]]
    assert hub.delete(TEMPORAL + "/" + eid + "/attrs/temp/" + ids[0])[0] == 204
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=temporalValues")
    assert [v[0] for v in b["temp"]["values"]] == [3, 21]
    for method, body in (("DELETE", None), ("PATCH", {"value": 1})):
        st, _, b = hub.request(method, TEMPORAL + "/" + eid + "/attrs/temp/" + ids[0], body)
        assert_problem(st, b, 404, "ResourceNotFound")
        st, _, b = hub.request(method, TEMPORAL + "/" + eid + "/attrs/other/" + ids[1], body)
        assert_problem(st, b, 404, "ResourceNotFound")
        st, _, b = hub.request(method, TEMPORAL + "/" + eid + "/attrs/temp/urn:x:1", body)
        assert_problem(st, b, 400, "BadRequestData")
    st, _, b = hub.patch(TEMPORAL + "/" + eid + "/attrs/temp/" + ids[1], {"observedAt": "soon", "value": 1})
    assert_problem(st, b, 400, "BadRequestData")


def test_instance_patch_naming_deleted_at_is_no_deletion(hub):
    """An edited instance whose value merely contains a member named
    deletedAt is still an instance, not a record of a deletion: it is
    counted, in place and when moved in time."""
    eid = "urn:ngsi-ld:Sensor:w5"
    create(hub, temporal_entity(eid, "Sensor", {"cfg": [obs(1, 0), obs(2, 1), obs(3, 2)]}))
    st, _, b = hub.get(TEMPORAL + "/" + eid)
    ids = [i["instanceId"] for i in b["cfg"]]
    aggr = TEMPORAL + "/" + eid + "?options=aggregatedValues&aggrMethods=totalCount"
    odd = {"type": "Property", "value": {"deletedAt": "2026-01-01T00:00:00Z", "x": 1}}
    assert hub.patch(TEMPORAL + "/" + eid + "/attrs/cfg/" + ids[1], odd)[0] == 204
    st, _, b = hub.get(aggr)
    assert st == 200 and b["cfg"]["totalCount"][0][0] == 3, b
    odd["observedAt"] = ts(40)
    assert hub.patch(TEMPORAL + "/" + eid + "/attrs/cfg/" + ids[1], odd)[0] == 204
    st, _, b = hub.get(aggr)
    assert st == 200 and b["cfg"]["totalCount"][0][0] == 3, b
    st, _, b = hub.get(TEMPORAL + "/" + eid)
    assert b["cfg"][2]["value"] == odd["value"] and b["cfg"][2]["instanceId"] == ids[1]


def test_timeproperty(hub):
    """timeproperty=modifiedAt / createdAt window, order and pair the
    instances by that member (read back here from sysAttrs), not observedAt;
    deletedAt matches nothing while nothing was deleted; anything else is a
    400."""
    eid = "urn:ngsi-ld:Sensor:tp1"
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    create(hub, temporal_entity(eid, "Sensor", {"temp": [obs(1, 0), obs(2, 1), obs(3, 2)]}))
    time.sleep(0.01)
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=sysAttrs")
    ids = [i["instanceId"] for i in b["temp"]]
    # modify the oldest instance: it becomes the newest by modifiedAt
    assert hub.patch(TEMPORAL + "/" + eid + "/attrs/temp/" + ids[0], {"value": 10})[0] == 204
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=sysAttrs")
    mod = {i["instanceId"]: i["modifiedAt"] for i in b["temp"]}
    created = {i["instanceId"]: i["createdAt"] for i in b["temp"]}
    by_mod = sorted(ids, key=lambda i: (mod[i], int(i[len(INSTANCE):])))
    assert by_mod[-1] == ids[0] and mod[ids[0]] > mod[ids[1]]

    def get(q):
        st, _, b = hub.get(TEMPORAL + "/" + eid + "?" + q)
        assert st == 200, hub.last_text
        return b
    # the observedAt window (April) holds nothing written after start
    assert "temp" not in get("timerel=after&timeAt=" + start)
    b = get("timeproperty=modifiedAt&timerel=after&timeAt=" + start)
    assert [i["instanceId"] for i in b["temp"]] == by_mod
    b = get("timeproperty=modifiedAt&timerel=after&timeAt=" + start + "&options=temporalValues")
    assert b["temp"]["values"] == [[10 if i == ids[0] else 1 + ids.index(i), mod[i]]
                                   for i in by_mod]
    b = get("timeproperty=modifiedAt&lastN=1")
    assert [i["instanceId"] for i in b["temp"]] == [ids[0]]
    b = get("timeproperty=modifiedAt&timerel=before&timeAt=" + mod[ids[0]])
    assert [i["instanceId"] for i in b["temp"]] == by_mod[:-1]
    b = get("timeproperty=createdAt&timerel=before&timeAt=" + start)
    assert "temp" not in b
    b = get("timeproperty=createdAt&timerel=after&timeAt=" + start +
            "&options=temporalValues")
    assert sorted(t for _, t in b["temp"]["values"]) == sorted(created.values())
    b = get("timeproperty=modifiedAt&options=aggregatedValues&aggrMethods=totalCount,sum"
            "&timerel=after&timeAt=" + start)
    assert b["temp"]["totalCount"][0][0] == 3 and b["temp"]["sum"][0][0] == 10 + 2 + 3
    assert "temp" not in get("timeproperty=deletedAt")
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?timeproperty=observed")
    assert_problem(st, b, 400, "BadRequestData")


def test_deletions_are_recorded_in_the_history(hub):
    """Deleting an attribute (one datasetId of it) or the entity appends a
    urn:ngsi-ld:null instance with deletedAt (5.2.1) for every instance that
    was recorded: timeproperty=deletedAt finds them; aggregations skip
    them; the attribute's earlier history stays."""
    eid = "urn:ngsi-ld:Sensor:del-h"
    ds = "urn:ngsi-ld:Dataset:d"
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    body = {"id": eid, "type": "Sensor",
            "temp": [obs(1, 0), obs(2, 0, datasetId=ds)], "hum": obs(40, 0),
            "note": prop("no observedAt")}
    assert hub.post(ENTITIES, body)[0] == 201
    assert hub.delete(ENTITIES + "/" + eid + "/attrs/temp?datasetId=" + ds)[0] == 204
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?timeproperty=deletedAt&timerel=after&timeAt="
                       + start)
    assert st == 200, b
    assert set(b) == {"id", "type", "temp"}
    d = b["temp"] if isinstance(b["temp"], dict) else b["temp"][0]
    assert d["value"] == "urn:ngsi-ld:null" and d["datasetId"] == ds
    deleted_at = d["deletedAt"]
    assert deleted_at >= start
    assert hub.delete(ENTITIES + "/" + eid)[0] == 204
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?timeproperty=deletedAt&options=temporalValues")
    assert st == 200, b
    assert b["type"] == "Sensor"  # the type it had: the entity is gone
    temps = b["temp"] if isinstance(b["temp"], list) else [b["temp"]]
    assert sorted((g.get("datasetId", ""), [v[0] for v in g["values"]]) for g in temps) == [
        ("", ["urn:ngsi-ld:null"]), (ds, ["urn:ngsi-ld:null"])]
    assert b["hum"]["values"][0][0] == "urn:ngsi-ld:null"
    assert "note" not in b  # never recorded (no observedAt): its deletion is not either

    # the history before the deletions is all there; aggregations skip the records
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?attrs=hum&options=temporalValues")
    assert b["hum"]["values"][0] == [40, ts(0)] and len(b["hum"]["values"]) == 2
    st, _, a = hub.get(TEMPORAL + "/" + eid + "?attrs=hum&options=aggregatedValues"
                       "&aggrMethods=totalCount,max&timerel=before&timeAt=2999-01-01T00:00:00Z")
    assert st == 200, a
    assert a["type"] == "Sensor"
    assert sum(p[0] for p in a["hum"]["totalCount"]) == 1
    assert max(p[0] for p in a["hum"]["max"]) == 40
    # once its history is gone too, the entity is unknown
    for attr in ("temp", "hum"):
        assert hub.delete(TEMPORAL + "/" + eid + "/attrs/" + attr + "?deleteAll=true")[0] == 204
    st, _, b = hub.get(TEMPORAL + "/" + eid)
    assert_problem(st, b, 404, "ResourceNotFound")


def test_a_replace_records_what_it_drops(hub_factory):
    """A replace (PUT /entities/{id}, batch upsert) deletes the instances the
    new entity lacks: each recorded one gets its deletion record, as a
    DELETE would give it; what it keeps or adds does not. Both writer paths:
    without any subscription the old document is only scanned, with one it
    is read whole."""
    h = hub_factory()
    ds = "urn:ngsi-ld:Dataset:d"

    def check(eid, replace):
        body = {"id": eid, "type": "Sensor",
                "temp": [obs(1, 0), obs(2, 0, datasetId=ds)], "hum": obs(40, 0),
                "pres": obs(1000, 0), "note": prop("no observedAt")}
        assert h.post(ENTITIES, body)[0] == 201
        # keeps temp's default instance and pres, drops temp's dataset, hum and note
        replace({"id": eid, "type": "Sensor", "temp": obs(3, 1), "pres": obs(1001, 1),
                 "level": obs(7, 1)})
        st, _, b = h.get(TEMPORAL + "/" + eid + "?timeproperty=deletedAt&options=temporalValues")
        assert st == 200, b
        assert set(b) == {"id", "type", "temp", "hum"}, b
        temps = b["temp"] if isinstance(b["temp"], list) else [b["temp"]]
        assert [(g.get("datasetId"), [v[0] for v in g["values"]]) for g in temps] == [
            (ds, ["urn:ngsi-ld:null"])]
        assert [v[0] for v in b["hum"]["values"]] == ["urn:ngsi-ld:null"]
        st, _, e = h.get(ENTITIES + "/" + eid + "?options=sysAttrs")
        assert b["hum"]["values"][0][1] == e["modifiedAt"]  # deleted when replaced
        # a replace that drops nothing records nothing
        replace({"id": eid, "type": "Sensor", "temp": obs(4, 2), "pres": obs(1002, 2),
                 "level": obs(8, 2), "extra": obs(1, 2)})
        st, _, b2 = h.get(TEMPORAL + "/" + eid + "?timeproperty=deletedAt&options=temporalValues")
        assert b2 == b

    def put(eid):
        def replace(body):
            st, _, r = h.put(ENTITIES + "/" + eid, body)
            assert st == 204, r
        return replace

    def upsert(body):
        st, _, r = h.post(BASE + "/entityOperations/upsert", [body])
        assert st == 204, r

    check("urn:ngsi-ld:Sensor:rep-put-fast", put("urn:ngsi-ld:Sensor:rep-put-fast"))
    check("urn:ngsi-ld:Sensor:rep-ups-fast", upsert)
    st, _, b = h.post(BASE + "/subscriptions", {
        "type": "Subscription", "entities": [{"type": "Other"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/x"}}})
    assert st == 201, b
    check("urn:ngsi-ld:Sensor:rep-put-slow", put("urn:ngsi-ld:Sensor:rep-put-slow"))
    check("urn:ngsi-ld:Sensor:rep-ups-slow", upsert)

def test_deletion_records_take_the_shape_of_their_type(hub_factory):
    h = hub_factory("--history", "all")
    eid = "urn:ngsi-ld:Sensor:del-kinds"
    body = {"id": eid, "type": "Sensor",
            "name": {"type": "LanguageProperty", "languageMap": {"en": "lamp"}},
            "state": {"type": "VocabProperty", "vocab": "on"},
            "parts": {"type": "ListProperty", "valueList": [1, 2]},
            "cfg": {"type": "JsonProperty", "json": {"a": 1}}}
    assert h.post(ENTITIES, body)[0] == 201
    assert h.delete(ENTITIES + "/" + eid)[0] == 204
    st, _, b = h.get(TEMPORAL + "/" + eid + "?timeproperty=deletedAt")
    assert st == 200, b
    one = lambda x: x if isinstance(x, dict) else x[-1]
    assert one(b["name"])["languageMap"] == {"@none": "urn:ngsi-ld:null"}
    assert one(b["state"])["vocab"] == "urn:ngsi-ld:null"
    assert one(b["parts"])["valueList"] == ["urn:ngsi-ld:null"]
    assert one(b["cfg"])["json"] == "urn:ngsi-ld:null"
    st, _, b = h.get(TEMPORAL + "/" + eid)
    assert st == 200, b
    assert one(b["state"])["type"] == "VocabProperty"


def test_delete_temporal_entity(hub):
    eid = "urn:ngsi-ld:Sensor:w5"
    create(hub, temporal_entity(eid, "Sensor", {"temp": [obs(1, 0), obs(2, 1)]}))
    assert hub.delete(TEMPORAL + "/" + eid)[0] == 204
    assert hub.get(ENTITIES + "/" + eid)[0] == 404
    st, _, b = hub.get(TEMPORAL + "/" + eid)
    assert_problem(st, b, 404, "ResourceNotFound")
    st, _, b = hub.delete(TEMPORAL + "/" + eid)
    assert_problem(st, b, 404, "ResourceNotFound")
    st, _, b = hub.delete(TEMPORAL + "/" + eid, tenant="nobody-here")
    assert_problem(st, b, 404, "ResourceNotFound")
    # the history of an entity deleted through /entities can be deleted here
    eid2 = "urn:ngsi-ld:Sensor:w6"
    create(hub, temporal_entity(eid2, "Sensor", {"temp": [obs(1, 0)]}))
    assert hub.delete(ENTITIES + "/" + eid2)[0] == 204
    assert hub.get(TEMPORAL + "/" + eid2)[0] == 200
    assert hub.delete(TEMPORAL + "/" + eid2)[0] == 204
    assert hub.get(TEMPORAL + "/" + eid2)[0] == 404


# ---- queries over many entities ----------------------------------------------

def load_fleet(hub, tenant):
    for i in range(4):
        create(hub, temporal_entity("urn:ngsi-ld:Car:%d" % i, "Car" if i < 3 else "Bus", {
            "speed": [obs(10 * i + m, m) for m in range(6)],
            "fuel": [obs(100 - m, m) for m in range(6)],
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [4.0 + i, 52.0]},
                         "observedAt": ts(0)}}), tenant=tenant)


def test_query_many(hub):
    t = "fleet"
    load_fleet(hub, t)
    st, _, b = hub.get(TEMPORAL + "?type=Car&options=temporalValues&attrs=speed", tenant=t)
    assert st == 200, hub.last_text
    assert [e["id"] for e in b] == ["urn:ngsi-ld:Car:%d" % i for i in range(3)]
    assert b[1]["speed"]["values"] == [[10 + m, ts(m)] for m in range(6)]
    assert all("fuel" not in e for e in b)
    # q and geo select on the current state; timerel and lastN apply per attribute
    st, _, b = hub.get(TEMPORAL + "?type=Car&q=speed>=20&options=temporalValues&attrs=speed"
                       "&timerel=after&timeAt=" + ts(2) + "&lastN=2", tenant=t)
    assert st == 200
    assert [e["id"] for e in b] == ["urn:ngsi-ld:Car:2"]
    assert b[0]["speed"]["values"] == [[24, ts(4)], [25, ts(5)]]
    st, _, b = hub.get(TEMPORAL + "?georel=near;maxDistance==1000&geometry=Point&coordinates=[7.0,52.0]"
                       "&attrs=fuel&lastN=1", tenant=t)
    assert st == 200 and [e["id"] for e in b] == ["urn:ngsi-ld:Car:3"]
    assert b[0]["type"] == "Bus" and [i["value"] for i in b[0]["fuel"]] == [95]
    # entity pagination as GET /entities
    st, h, b = hub.get(TEMPORAL + "?type=Car,Bus&limit=3&count=true&lastN=1", tenant=t)
    assert st == 200 and len(b) == 3 and h["ngsild-results-count"] == "4"
    assert "rel=\"next\"" in h["link"] and "offset=3" in h["link"]
    st, h, b = hub.get(TEMPORAL + "?type=Car,Bus&limit=3&offset=3&lastN=1", tenant=t)
    assert [e["id"] for e in b] == ["urn:ngsi-ld:Car:3"]
    # errors
    for qs in ("", "?type=Car&timerel=soon&timeAt=" + ts(1), "?type=Car&lastN=-1",
               "?type=Car&options=aggregatedValues", "?type=Car&aggrMethods=avg",
               "?type=Car&options=aggregatedValues&aggrMethods=median",
               "?type=Car&options=aggregatedValues&aggrMethods=avg&aggrPeriodDuration=P1.5M",
               "?type=Car&options=aggregatedValues&aggrMethods=avg&aggrPeriodDuration=1h",
               "?type=Car&options=temporalValues,aggregatedValues&aggrMethods=avg"):
        st, _, b = hub.get(TEMPORAL + qs, tenant=t)
        assert_problem(st, b, 400, "BadRequestData")
    st, _, b = hub.get(TEMPORAL + "?type=Car", tenant="no-such-tenant")
    assert_problem(st, b, 404, "NonexistentTenant")


def test_query_selects_on_the_history_of_the_window(hub):
    """GS CIM 009 5.7.4.4: a temporal query answers with the entities that
    have instances within the window (the others are removed, also from the
    count), and q is checked against those instances, not the current
    state: each term holds when an instance of its attribute in the window
    satisfies it."""
    t = "hist-q"
    speeds = {"A": [(120, 3), (80, 5), (100, 20)],
              "B": [(50, 2), (60, 25)],
              "C": [(90, 40)]}
    for name, pts in speeds.items():
        create(hub, temporal_entity("urn:ngsi-ld:Car:" + name, "Car",
                                    {"speed": [obs(v, m) for v, m in pts]}), tenant=t)
    # the current state: A 100, B 60, C 90
    st, _, e = hub.get(ENTITIES + "/urn:ngsi-ld:Car:A", tenant=t)
    assert e["speed"]["value"] == 100

    def ids(qs):
        st, h, b = hub.get(TEMPORAL + "?type=Car&count=true&attrs=speed&timerel=between&timeAt="
                           + ts(0) + "&endTimeAt=" + ts(30) + qs, tenant=t)
        assert st == 200, hub.last_text
        got = [x["id"][len("urn:ngsi-ld:Car:"):] for x in b]
        assert h["ngsild-results-count"] == str(len(got)), (qs, h)
        return got

    assert ids("") == ["A", "B"]              # C has nothing in the window
    assert ids("&q=speed>110") == ["A"]       # 120 at 00:03, though A is 100 now
    assert ids("&q=speed<55") == ["B"]        # 50 at 00:02, though B is 60 now
    assert ids("&q=speed==90") == []          # C's 90 is outside the window
    assert ids("&q=speed>110;speed<90") == ["A"]  # each term on some instance
    assert ids("&q=speed>110|speed<55") == ["A", "B"]
    # attrs= and q look at the window, even after the attribute was deleted
    assert hub.delete(ENTITIES + "/urn:ngsi-ld:Car:A/attrs/speed", tenant=t)[0] == 204
    assert ids("") == ["A", "B"] and ids("&q=speed>110") == ["A"]
    # the same q outside the window of A's 120
    st, _, b = hub.get(TEMPORAL + "?type=Car&q=speed>110&timerel=between&timeAt=" + ts(10) +
                       "&endTimeAt=" + ts(30), tenant=t)
    assert st == 200 and b == []
    # paging follows the selected entities
    st, h, b = hub.get(TEMPORAL + "?type=Car&limit=1&timerel=before&timeAt=" + ts(30), tenant=t)
    assert st == 200 and [x["id"] for x in b] == ["urn:ngsi-ld:Car:A"]
    assert "rel=\"next\"" in h["link"]
    st, h, b = hub.get(TEMPORAL + "?type=Car&limit=1&offset=1&timerel=before&timeAt=" + ts(30),
                       tenant=t)
    assert [x["id"] for x in b] == ["urn:ngsi-ld:Car:B"]
    assert "rel=\"next\"" not in h.get("link", "")
    # aggregated answers select the same way
    st, _, b = hub.get(TEMPORAL + "?type=Car&q=speed<55&options=aggregatedValues"
                       "&aggrMethods=max&timerel=before&timeAt=" + ts(30), tenant=t)
    assert st == 200 and [x["id"] for x in b] == ["urn:ngsi-ld:Car:B"]
    assert b[0]["speed"]["max"][0][0] == 60

def test_dataset_id_selects_instances(hub_factory):
    """datasetId= keeps only the instances of the listed datasetIds, "@none"
    naming the default ones (5.7.3.4, 5.7.4.4); attributes left without
    instances go; paging and aggregation see only the selected ones."""
    h = hub_factory("--temporal-max-instances", "5")
    eid = "urn:ngsi-ld:Bus:ds"
    gps, odo = "urn:ngsi-ld:Dataset:gps", "urn:ngsi-ld:Dataset:odo"
    create(h, temporal_entity(eid, "Bus", {
        "speed": [obs(10 + m, m) for m in range(4)] +
                 [obs(50 + m, m, datasetId=gps) for m in range(4)] +
                 [obs(90 + m, m, datasetId=odo) for m in range(4)],
        "fuel": [obs(70 - m, m) for m in range(2)]}))

    def values(qs):
        st, hd, b = h.get(TEMPORAL + "/" + eid + "?options=temporalValues&" + qs)
        assert st in (200, 206), h.last_text
        out = {}
        for name in ("speed", "fuel"):
            groups = b.get(name, [])
            for g in groups if isinstance(groups, list) else [groups]:
                out[(name, g.get("datasetId"))] = [v[0] for v in g["values"]]
        return st, hd, out

    st, _, got = values("datasetId=" + gps)
    assert st == 200 and got == {("speed", gps): [50, 51, 52, 53]}  # fuel has none: gone
    st, _, got = values("datasetId=@none")
    assert got == {("speed", None): [10, 11, 12, 13], ("fuel", None): [70, 69]}
    # 8 instances, 5 a page: the 5th's time (minute 2) completes the page
    st, hd, got = values("datasetId=" + gps + "," + odo)
    assert st == 206 and got == {("speed", gps): [50, 51, 52], ("speed", odo): [90, 91, 92]}
    rng = hd["content-range"].split(" ")[1].split("/")[0]  # date-time a-b/size
    end = rng[rng.index("Z-") + 2:]
    assert end == ts(2)[:17] + "00.001Z"
    st, _, got = values("datasetId=" + gps + "," + odo + "&timerel=after&timeAt=" + end)
    assert st == 200 and got == {("speed", gps): [53], ("speed", odo): [93]}
    st, _, b = h.get(TEMPORAL + "/" + eid + "?options=aggregatedValues&aggrMethods=sum,totalCount"
                     "&datasetId=" + odo)
    assert st == 200, h.last_text
    assert b["speed"]["datasetId"] == odo and b["speed"]["sum"][0][0] == 90 + 91 + 92 + 93
    assert "fuel" not in b
    st, _, b = h.get(TEMPORAL + "/" + eid + "?datasetId=not%20a%20uri")
    assert_problem(st, b, 400, "BadRequestData")

def test_geo_query_on_the_window_s_locations(hub):
    """5.7.4.4: a geo-query is checked against the GeoProperty instances of
    the window: a bus that crossed the square within the window is found,
    wherever it is now; near stays on the current location (it orders)."""
    t = "hist-geo"

    def at(lon, lat, minute):
        return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]},
                "observedAt": ts(minute)}

    square = "[[[4.0,52.0],[4.1,52.0],[4.1,52.1],[4.0,52.1],[4.0,52.0]]]"
    create(hub, temporal_entity("urn:ngsi-ld:Bus:crossed", "Bus", {
        "location": [at(3.5, 51.5, 0), at(4.05, 52.05, 10), at(5.0, 53.0, 40)]}), tenant=t)
    create(hub, temporal_entity("urn:ngsi-ld:Bus:never", "Bus", {
        "location": [at(3.0, 51.0, 0), at(3.1, 51.1, 10)]}), tenant=t)
    create(hub, temporal_entity("urn:ngsi-ld:Bus:arrived", "Bus", {
        "location": [at(3.0, 51.0, 0), at(4.02, 52.02, 50)]}), tenant=t)

    def ids(window):
        st, _, b = hub.get(TEMPORAL + "?type=Bus&georel=within&geometry=Polygon&coordinates=" +
                           square + "&attrs=location&" + window, tenant=t)
        assert st == 200, hub.last_text
        return sorted(x["id"].rsplit(":", 1)[1] for x in b)

    # the current state would give only "arrived" (crossed is elsewhere now)
    assert ids("timerel=between&timeAt=" + ts(0) + "&endTimeAt=" + ts(30)) == ["crossed"]
    assert ids("timerel=before&timeAt=" + ts(59)) == ["arrived", "crossed"]
    assert ids("timerel=after&timeAt=" + ts(20)) == ["arrived"]
    # near: the current location, nearest first
    st, _, b = hub.get(TEMPORAL + "?type=Bus&georel=near;maxDistance==5000&geometry=Point"
                       "&coordinates=[4.02,52.02]&timerel=before&timeAt=" + ts(59), tenant=t)
    assert st == 200 and [x["id"] for x in b] == ["urn:ngsi-ld:Bus:arrived"]

def test_post_query(hub):
    t = "fleet2"
    load_fleet(hub, t)
    body = {"type": "Query", "entities": [{"type": "Bus"}, {"id": "urn:ngsi-ld:Car:0"}],
            "attrs": ["speed"],
            "temporalQ": {"timerel": "between", "timeAt": ts(1), "endTimeAt": ts(3)}}
    st, _, b = hub.post(TQUERY + "?options=temporalValues", body, tenant=t)
    assert st == 200, hub.last_text
    assert sorted(e["id"] for e in b) == ["urn:ngsi-ld:Car:0", "urn:ngsi-ld:Car:3"]
    byid = {e["id"]: e for e in b}
    assert byid["urn:ngsi-ld:Car:3"]["speed"]["values"] == [[31, ts(1)], [32, ts(2)]]
    body["temporalQ"] = {"lastN": 1}
    st, _, b = hub.post(TQUERY + "?options=temporalValues", body, tenant=t)
    assert {e["id"]: e["speed"]["values"] for e in b} == {
        "urn:ngsi-ld:Car:0": [[5, ts(5)]], "urn:ngsi-ld:Car:3": [[35, ts(5)]]}
    for bad in ({"type": "Query", "entities": [{"type": "Bus"}], "temporalQ": {"timerel": "before"}},
                {"type": "Query", "entities": [{"type": "Bus"}], "temporalQ": [1]},
                {"type": "Query", "entities": [{"type": "Bus"}], "temporalQ": {"lastN": "x"}},
                {"type": "Nope"}):
        st, _, b = hub.post(TQUERY, bad, tenant=t)
        assert_problem(st, b, 400, "BadRequestData")


# ---- aggregation -----------------------------------------------------------------



METHODS = ["totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq"]


def close(a, b):
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def test_aggregation(hub):
    eid = "urn:ngsi-ld:Meter:agg"
    # 3 hours of 10-minute data, some repeated values, one text instance
    data = [((h * 60 + m) // 60, (h * 60 + m) % 60, float((h * 7 + m * 3) % 11) + 0.5)
            for h in range(3) for m in range(0, 60, 10)]
    insts = [obs(v, m, hh) for hh, m, v in data]
    insts.append(obs("broken", 35, 1))
    create(hub, temporal_entity(eid, "Meter", {"power": insts}))
    q = (TEMPORAL + "/" + eid + "?options=aggregatedValues&aggrMethods=" + ",".join(METHODS) +
         "&aggrPeriodDuration=PT1H&timerel=between&timeAt=2026-04-01T00:00:00Z"
         "&endTimeAt=2026-04-01T03:00:00Z")
    st, _, b = hub.get(q)
    assert st == 200, hub.last_text
    assert b["id"] == eid and b["type"] == "Meter"
    assert b["power"]["type"] == "Property"
    for method in METHODS:
        rows = b["power"][method]
        assert len(rows) == 3, (method, rows)
        for hh in range(3):
            vals = [v for h2, m, v in data if h2 == hh] + (["broken"] if hh == 1 else [])
            want = aggregate(vals, method)
            got, start, end = rows[hh]
            assert start == "2026-04-01T%02d:00:00.000Z" % hh and end == "2026-04-01T%02d:00:00.000Z" % (hh + 1)
            assert close(got, want), (method, hh, got, want)
    # the whole window (no period); PT0S means the same
    for extra in ("", "&aggrPeriodDuration=PT0S"):
        st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=aggregatedValues&aggrMethods=avg,max,totalCount"
                           "&timerel=before&timeAt=2026-04-01T02:00:00Z" + extra)
        assert st == 200, hub.last_text
        vals = [v for h2, m, v in data if h2 < 2] + ["broken"]
        assert close(b["power"]["avg"][0][0], aggregate(vals, "avg"))
        # a window bounded above ends there; open below, it starts at the first instance
        assert b["power"]["max"] == [[aggregate(vals, "max"), ts(0), ts(0, 2)]]
        assert b["power"]["totalCount"][0][0] == len(vals)
    # 20-minute periods anchored at timeAt (a period holds 2 instances)
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=aggregatedValues&aggrMethods=sum"
                       "&aggrPeriodDuration=PT20M&timerel=between&timeAt=2026-04-01T00:10:00Z"
                       "&endTimeAt=2026-04-01T01:00:00Z")
    assert b["power"]["sum"] == [[data[1][2] + data[2][2], ts(10), ts(30)],
                                 [data[3][2] + data[4][2], ts(30), ts(50)],
                                 [data[5][2], ts(50), ts(0, 1)]]


def test_aggregation_lists_every_period_of_the_range(hub):
    """4.5.19: as many elements as there are periods in the time range, so
    a period without instances is there too (count 0, no value); the range
    runs to the window's end, or to the last instance when it is open."""
    eid = "urn:ngsi-ld:Meter:gaps"
    create(hub, temporal_entity(eid, "Meter", {"kwh": [obs(2, 10, 0), obs(4, 20, 0),
                                                       obs(7, 30, 3)]}))

    def rows(qs):
        st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=aggregatedValues"
                           "&aggrMethods=totalCount,sum&aggrPeriodDuration=PT1H" + qs)
        assert st == 200, hub.last_text
        return [(c[0], s[0], c[1], c[2]) for c, s in zip(b["kwh"]["totalCount"], b["kwh"]["sum"])]

    assert rows("&timerel=between&timeAt=" + ts(0) + "&endTimeAt=" + ts(0, 5)) == [
        (2, 6, ts(0), ts(0, 1)), (0, None, ts(0, 1), ts(0, 2)), (0, None, ts(0, 2), ts(0, 3)),
        (1, 7, ts(0, 3), ts(0, 4)), (0, None, ts(0, 4), ts(0, 5))]
    # open above: up to the last instance's period; anchored at timeAt
    assert rows("&timerel=after&timeAt=" + ts(0, 0)) == [
        (2, 6, ts(0), ts(0, 1)), (0, None, ts(0, 1), ts(0, 2)), (0, None, ts(0, 2), ts(0, 3)),
        (1, 7, ts(0, 3), ts(0, 4))]
    # too many periods in the range
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=aggregatedValues&aggrMethods=sum"
                       "&aggrPeriodDuration=PT1S&timerel=between&timeAt=" + ts(0) +
                       "&endTimeAt=" + ts(0, 5))
    assert_problem(st, b, 403, "TooManyResults")

def test_aggregation_calendar_periods(hub):
    """aggrPeriodDuration in months and years: calendar periods anchored at
    timeAt (P1M from Jan 31 ends on the last day of February), sums checked
    against the instances grouped here."""
    import datetime as dt
    eid = "urn:ngsi-ld:Meter:cal"
    days = [dt.datetime(2025, 12, 20) + dt.timedelta(days=7 * i) for i in range(30)]
    insts = [prop(float(i + 1), observedAt=d.strftime("%Y-%m-%dT12:00:00.000Z"))
             for i, d in enumerate(days)]
    create(hub, temporal_entity(eid, "Meter", {"kwh": insts}))

    def add_months(d, n):
        y, m = divmod(d.month - 1 + n, 12)
        y, m = d.year + y, m + 1
        last = (dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)).day
        return d.replace(year=y, month=m, day=min(d.day, last))

    def iso(d):
        return d.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    for period, months in (("P1M", 1), ("P2M", 2), ("P1Y", 12)):
        start, end = dt.datetime(2026, 1, 31), dt.datetime(2026, 7, 1)
        st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=aggregatedValues&aggrMethods=sum"
                           "&aggrPeriodDuration=" + period + "&timerel=between&timeAt=" +
                           iso(start) + "&endTimeAt=" + iso(end))
        assert st == 200, hub.last_text
        want, k = [], 0
        while add_months(start, k * months) < end:
            a, z = add_months(start, k * months), min(add_months(start, (k + 1) * months), end)
            vals = [i + 1.0 for i, d in enumerate(days) if a <= d + dt.timedelta(hours=12) < z]
            # every period of the range, those without instances too (4.5.19)
            want.append([sum(vals) if vals else None, iso(a), iso(z)])
            k += 1
        assert b["kwh"]["sum"] == want, (period, b["kwh"]["sum"], want)
    assert want[0][1:] == ["2026-01-31T00:00:00.000Z", "2026-07-01T00:00:00.000Z"]
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=aggregatedValues&aggrMethods=sum"
                       "&aggrPeriodDuration=P1.5M")
    assert_problem(st, b, 400, "BadRequestData")


def test_aggregation_many_and_distinct_text(hub):
    t = "aggr-many"
    for i in range(3):
        create(hub, temporal_entity("urn:ngsi-ld:Lamp:%d" % i, "Lamp", {
            "state": [obs(s, m) for m, s in enumerate(["on", "off", "on", "dim"][: i + 2])],
            "watts": [obs(i * 10 + m, m) for m in range(4)]}), tenant=t)
    st, _, b = hub.get(TEMPORAL + "?type=Lamp&options=aggregatedValues&aggrMethods=distinctCount,avg",
                       tenant=t)
    assert st == 200, hub.last_text
    assert [e["id"] for e in b] == ["urn:ngsi-ld:Lamp:%d" % i for i in range(3)]
    for i, e in enumerate(b):
        states = ["on", "off", "on", "dim"][: i + 2]
        assert e["state"]["distinctCount"][0][0] == len(set(states))
        assert e["state"]["avg"][0][0] is None
        assert close(e["watts"]["avg"][0][0], i * 10 + 1.5)


def test_aggregation_of_every_kind_of_value_and_dataset(hub):
    """Booleans count as 1 and 0, arrays by their length, strings and
    DateTime literals give min/max in text order (sum, avg... are null), a
    Relationship only counts (4.5.19); each datasetId is a series of its
    own, listed after the default instances' with its datasetId (5.7.4.4:
    an attribute's instances are aggregated per datasetId). Every figure is
    computed here from the same instances."""
    eid = "urn:ngsi-ld:Spot:agg"
    dt = lambda d: {"@type": "DateTime", "@value": "2026-0%d-01T00:00:00Z" % d}
    series = {
        "occupied": [True, False, True, True, False, True],
        "status": ["free", "occupied", "closed", "occupied", "free", "free"],
        "since": [dt(3), dt(1), dt(5), dt(2), dt(4), dt(1)],
        "cars": [["a"], [], ["a", "b", "c"], ["b"], [], ["c", "d"]],
    }
    attrs = {name: [obs(v, m * 10) for m, v in enumerate(vals)]
             for name, vals in series.items()}
    attrs["spot"] = [{"type": "Relationship", "object": "urn:ngsi-ld:Spot:%d" % (m % 2),
                      "observedAt": ts(m * 10)} for m in range(6)]
    ds = "urn:ngsi-ld:Dataset:camera"
    power = [1.5, 2.5, 4.0, 3.0, 0.5, 6.0]
    attrs["power"] = [obs(v, m * 10) for m, v in enumerate(power)] + \
                     [obs(v * 10, m * 10 + 5, datasetId=ds) for m, v in enumerate(power)]
    create(hub, temporal_entity(eid, "Spot", attrs))
    q = (TEMPORAL + "/" + eid + "?options=aggregatedValues&aggrMethods=" + ",".join(METHODS) +
         "&aggrPeriodDuration=PT30M&timerel=between&timeAt=2026-04-01T00:00:00Z"
         "&endTimeAt=2026-04-01T01:00:00Z")
    st, _, b = hub.get(q)
    assert st == 200, hub.last_text
    series["spot"] = [{"object": a["object"]} for a in attrs["spot"]]
    for name, vals in series.items():
        for method in METHODS:
            rows = b[name][method]
            assert len(rows) == 2, (name, method, rows)
            for half in range(2):
                want = aggregate(vals[half * 3:half * 3 + 3], method)
                if name == "spot" and method not in ("totalCount", "distinctCount"):
                    want = None  # a Relationship has no value to aggregate
                got = rows[half][0]
                assert (got == want if isinstance(want, str) or want is None
                        else close(got, want)), (name, method, half, got, want)
    assert b["spot"]["type"] == "Relationship"
    # the datasetId is a series of its own
    p = b["power"]
    assert isinstance(p, list) and len(p) == 2, p
    assert "datasetId" not in p[0] and p[1]["datasetId"] == ds
    for sr, scale in ((p[0], 1), (p[1], 10)):
        for method in METHODS:
            for half in range(2):
                want = aggregate([v * scale for v in power[half * 3:half * 3 + 3]], method)
                assert close(sr[method][half][0], want), (sr.get("datasetId"), method, half)
    # only the dataset's instances: one series, an object
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=aggregatedValues&aggrMethods=sum"
                       "&attrs=power&timerel=after&timeAt=2026-04-01T00:54:00Z")
    assert st == 200, hub.last_text
    assert b["power"]["datasetId"] == ds and b["power"]["sum"][0][0] == 60
    # a deleted attribute keeps the type its instances had
    assert hub.delete(ENTITIES + "/" + eid + "/attrs/spot")[0] == 204
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=aggregatedValues&aggrMethods=totalCount"
                       "&attrs=spot&timerel=before&timeAt=2026-04-01T01:00:00Z")
    assert st == 200 and b["spot"]["type"] == "Relationship", b
    assert b["spot"]["totalCount"][0][0] == 6
    # also when the range begins with periods without instances
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=aggregatedValues&aggrMethods=totalCount"
                       "&aggrPeriodDuration=PT30M&attrs=spot&timerel=between"
                       "&timeAt=2026-03-31T23:00:00Z&endTimeAt=2026-04-01T01:00:00Z")
    assert st == 200 and b["spot"]["type"] == "Relationship", b
    assert [p[0] for p in b["spot"]["totalCount"]] == [0, 0, 3, 3]
    # every series of an attribute counts against the cap on periods
    st, _, b = hub.get(TEMPORAL + "/" + eid + "?options=aggregatedValues&aggrMethods=sum"
                       "&aggrPeriodDuration=PT1S&attrs=power&timerel=between"
                       "&timeAt=2026-04-01T00:00:00Z&endTimeAt=2026-04-01T01:30:00Z")
    assert_problem(st, b, 403, "TooManyResults")

# ---- pagination of instances ------------------------------------------------------

def test_instance_pagination(hub_factory):
    h = hub_factory("--temporal-max-instances", "4")
    eid = "urn:ngsi-ld:Meter:pg"
    create(h, temporal_entity(eid, "Meter", {"a": [obs(m, m) for m in range(10)],
                                             "b": [obs(100 + m, m) for m in range(0, 10, 3)]}))
    def past(minute):  # 1 ms after minute: where a forward page ends (exclusive)
        return ts(minute)[:17] + "00.001Z"

    # forwards: the first 4 of a; b cut at the same time; the range ends 1 ms
    # past the last instance, where the next page starts (after is inclusive)
    st, hd, b = h.get(TEMPORAL + "/" + eid + "?options=temporalValues")
    assert st == 206, h.last_text
    assert hd["content-range"] == "date-time %s-%s/*" % (ts(0), past(3))
    assert [v[0] for v in b["a"]["values"]] == [0, 1, 2, 3]
    assert [v[0] for v in b["b"]["values"]] == [100, 103]
    # the next page, from the range's end: nothing twice, nothing lost
    st, hd, b = h.get(TEMPORAL + "/" + eid + "?options=temporalValues&timerel=after&timeAt=" +
                      past(3))
    assert st == 206 and hd["content-range"] == "date-time %s-%s/*" % (past(3), past(7))
    assert [v[0] for v in b["a"]["values"]] == [4, 5, 6, 7]
    assert [v[0] for v in b["b"]["values"]] == [106]
    st, hd, b = h.get(TEMPORAL + "/" + eid + "?options=temporalValues&timerel=after&timeAt=" +
                      past(7))
    assert st == 200 and "content-range" not in hd
    assert [v[0] for v in b["a"]["values"]] == [8, 9] and [v[0] for v in b["b"]["values"]] == [109]
    # backwards with lastN
    st, hd, b = h.get(TEMPORAL + "/" + eid + "?options=temporalValues&lastN=6")
    assert st == 206
    assert hd["content-range"] == "date-time %s-%s/6" % (ts(9), ts(6))
    assert [v[0] for v in b["a"]["values"]] == [6, 7, 8, 9]
    assert [v[0] for v in b["b"]["values"]] == [106, 109]
    st, hd, b = h.get(TEMPORAL + "/" + eid + "?options=temporalValues&lastN=3")
    assert st == 200 and [v[0] for v in b["a"]["values"]] == [7, 8, 9]
    # the next page backwards: before (exclusive) the range's end
    st, hd, b = h.get(TEMPORAL + "/" + eid + "?options=temporalValues&lastN=6&timerel=before"
                      "&timeAt=" + ts(6))
    assert st == 206 and [v[0] for v in b["a"]["values"]] == [2, 3, 4, 5]
    # instances that share the page's last time all stay on that page
    eid2 = "urn:ngsi-ld:Meter:pg2"
    create(h, temporal_entity(eid2, "Meter", {
        "a": [obs(m, m) for m in range(3)] + [obs(30 + k, 3, datasetId="urn:d:%d" % k)
                                              for k in range(3)] + [obs(9, 9)]}))
    st, hd, b = h.get(TEMPORAL + "/" + eid2 + "?options=temporalValues")
    assert st == 206 and hd["content-range"] == "date-time %s-%s/*" % (ts(0), past(3))
    seen = sorted(v[0] for g in b["a"] for v in g["values"])
    assert seen == [0, 1, 2, 30, 31, 32], b
    st, hd, b = h.get(TEMPORAL + "/" + eid2 + "?options=temporalValues&timerel=after&timeAt=" +
                      past(3))
    assert st == 200 and b["a"]["values"] == [[9, ts(9)]]
    # another timeproperty pages the same way
    eid3 = "urn:ngsi-ld:Meter:pg3"
    create(h, temporal_entity(eid3, "Meter", {"a": [obs(0, 0)]}))
    for m in range(1, 7):
        time.sleep(0.003)  # each its own modifiedAt
        st, _, b = h.post(TEMPORAL + "/" + eid3 + "/attrs", {"a": [obs(m, m)]})
        assert st == 204, b
    st, hd, b = h.get(TEMPORAL + "/" + eid3 + "?options=temporalValues&timeproperty=modifiedAt")
    assert st == 206 and "content-range" in hd, (st, hd)
    assert len(b["a"]["values"]) == 4
    # too many aggregation periods
    st, _, b = h.get(TEMPORAL + "/" + eid + "?options=aggregatedValues&aggrMethods=max&aggrPeriodDuration=PT1M")
    assert_problem(st, b, 403, "TooManyResults")


# ---- retention -----------------------------------------------------------------

def test_retention(hub_factory):
    # passes run every tenth of the shortest maximum age (at least 250 ms)
    h = hub_factory("--history-max-age", "PT3S")
    now = time.time()
    recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600))  # stays an hour
    old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3 * 86400))
    eid = "urn:ngsi-ld:Meter:ret"
    create(h, temporal_entity(eid, "Meter", {"kwh": [prop(1, observedAt=old), prop(2, observedAt=recent)]}))
    deadline = time.monotonic() + 30 * SLOW
    while True:
        st, _, b = h.get(TEMPORAL + "/" + eid + "?options=temporalValues")
        assert st == 200
        if [v[0] for v in b["kwh"]["values"]] == [2]:
            break
        assert time.monotonic() < deadline, b
        time.sleep(0.1)
    # the current state is not history: untouched
    assert h.get(ENTITIES + "/" + eid)[2]["kwh"]["value"] == 2
    st, _, _ = h.get("/health")
    assert st == 200


def test_bad_retention_flag(hub_factory):
    import pytest
    from conftest import HubError
    with pytest.raises(HubError):
        hub_factory("--history-max-age", "P1M")
