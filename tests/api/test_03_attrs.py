"""03 - entity and attribute updates (GS CIM 009 5.6.2 - 5.6.6, 5.6.17,
5.6.18, 5.6.19): PUT replace, PATCH merge, POST/PATCH attrs, the single
attribute operations, datasetId instances, DELETE."""

from helpers import ENTITIES, assert_problem, check_iso, prop, rel


def path(n):
    return ENTITIES + "/urn:ngsi-ld:Car:a" + n


def make(hub, n, **attrs):
    e = {"id": "urn:ngsi-ld:Car:a" + n, "type": "Car"}
    e.update(attrs)
    st, _, _ = hub.post(ENTITIES, e)
    assert st == 201, hub.last_text
    return path(n)


def kv(hub, p):
    st, _, b = hub.get(p + "?options=keyValues")
    assert st == 200, hub.last_text
    return b


# ---- PUT /entities/{id} -----------------------------------------------------

def test_put_replaces_all_attributes(hub):
    p = make(hub, "01", speed=prop(10), color=prop("red"))
    st, _, b = hub.put(p, {"type": "Car", "speed": prop(20), "brand": prop("Volvo")})
    assert st == 204, hub.last_text
    assert b is None
    assert kv(hub, p) == {"id": "urn:ngsi-ld:Car:a01", "type": "Car", "speed": 20,
                          "brand": "Volvo"}


def test_put_keeps_created_at(hub):
    p = make(hub, "02", speed=prop(1))
    c1 = hub.get(p + "?options=sysAttrs")[2]["createdAt"]
    assert hub.put(p, {"type": "Car", "speed": prop(2)})[0] == 204
    b = hub.get(p + "?options=sysAttrs")[2]
    assert b["createdAt"] == c1
    check_iso(b["modifiedAt"])


def test_put_unknown_entity_404(hub):
    st, _, b = hub.put(path("nope"), {"type": "Car", "speed": prop(2)})
    assert_problem(st, b, 404, "ResourceNotFound")


def test_put_id_mismatch_400(hub):
    p = make(hub, "03", speed=prop(1))
    st, _, b = hub.put(p, {"id": "urn:ngsi-ld:Car:other", "type": "Car"})
    assert_problem(st, b, 400, "BadRequestData")


# ---- PATCH /entities/{id} (merge) ----------------------------------------------

def test_merge_adds_and_overwrites(hub):
    p = make(hub, "10", speed=prop(10, unitCode="KMH"), color=prop("red"))
    st, _, _ = hub.patch(p, {"speed": prop(30), "brand": prop("Saab")})
    assert st == 204, hub.last_text
    b = hub.get(p)[2]
    assert b["speed"] == {"type": "Property", "value": 30, "unitCode": "KMH"}
    assert b["color"]["value"] == "red"
    assert b["brand"]["value"] == "Saab"


def test_merge_null_deletes(hub):
    p = make(hub, "11", speed=prop(10), color=prop("red"), brand=prop("x"))
    st, _, _ = hub.patch(p, {"color": "urn:ngsi-ld:null",
                             "brand": {"type": "Property", "value": "urn:ngsi-ld:null"}})
    assert st == 204, hub.last_text
    assert kv(hub, p) == {"id": "urn:ngsi-ld:Car:a11", "type": "Car", "speed": 10}


def test_merge_sub_attribute(hub):
    p = make(hub, "12", speed=prop(10, accuracy=prop(1)))
    assert hub.patch(p, {"speed": {"type": "Property", "value": 11,
                                   "accuracy": prop(2), "source": prop("gps")}})[0] == 204
    b = hub.get(p)[2]["speed"]
    assert b["value"] == 11
    assert b["accuracy"]["value"] == 2
    assert b["source"]["value"] == "gps"


def test_merge_unknown_entity_404(hub):
    st, _, b = hub.patch(path("nope"), {"speed": prop(1)})
    assert_problem(st, b, 404, "ResourceNotFound")


def test_merge_patch_content_type(hub):
    p = make(hub, "13", speed=prop(1))
    st, _, _ = hub.patch(p, {"speed": prop(5)}, ctype="application/merge-patch+json")
    assert st == 204, hub.last_text
    assert kv(hub, p)["speed"] == 5


# ---- POST /entities/{id}/attrs (append) -----------------------------------------

def test_append_204(hub):
    p = make(hub, "20", speed=prop(1))
    st, _, b = hub.post(p + "/attrs", {"speed": prop(2), "color": prop("blue")})
    assert st == 204, hub.last_text
    assert kv(hub, p) == {"id": "urn:ngsi-ld:Car:a20", "type": "Car", "speed": 2,
                          "color": "blue"}


def test_append_no_overwrite_207(hub):
    p = make(hub, "21", speed=prop(1))
    st, _, b = hub.post(p + "/attrs?options=noOverwrite",
                        {"speed": prop(2), "color": prop("blue")})
    assert st == 207, hub.last_text
    assert b["updated"] == ["color"]
    assert [x["attributeName"] for x in b["notUpdated"]] == ["speed"]
    assert isinstance(b["notUpdated"][0].get("reason"), str)
    assert kv(hub, p) == {"id": "urn:ngsi-ld:Car:a21", "type": "Car", "speed": 1,
                          "color": "blue"}


def test_append_unknown_entity_404(hub):
    st, _, b = hub.post(path("nope") + "/attrs", {"speed": prop(1)})
    assert_problem(st, b, 404, "ResourceNotFound")


def test_append_invalid_attr_400(hub):
    p = make(hub, "22", speed=prop(1))
    st, _, b = hub.post(p + "/attrs", {"speed": {"type": "Property"}})
    assert_problem(st, b, 400, "BadRequestData")
    assert kv(hub, p)["speed"] == 1


# ---- PATCH /entities/{id}/attrs (update) ------------------------------------------

def test_update_attrs_204(hub):
    p = make(hub, "30", speed=prop(1), color=prop("red"))
    st, _, _ = hub.patch(p + "/attrs", {"speed": prop(9)})
    assert st == 204, hub.last_text
    assert kv(hub, p) == {"id": "urn:ngsi-ld:Car:a30", "type": "Car", "speed": 9,
                          "color": "red"}


def test_update_attrs_unknown_207(hub):
    p = make(hub, "31", speed=prop(1))
    st, _, b = hub.patch(p + "/attrs", {"speed": prop(9), "ghost": prop(1)})
    assert st == 207, hub.last_text
    assert b["updated"] == ["speed"]
    assert [x["attributeName"] for x in b["notUpdated"]] == ["ghost"]
    assert kv(hub, p) == {"id": "urn:ngsi-ld:Car:a31", "type": "Car", "speed": 9}


def test_update_attrs_unknown_entity_404(hub):
    st, _, b = hub.patch(path("nope") + "/attrs", {"speed": prop(1)})
    assert_problem(st, b, 404, "ResourceNotFound")


# ---- /entities/{id}/attrs/{attrId} ---------------------------------------------------

def test_attr_patch(hub):
    p = make(hub, "40", speed=prop(1, unitCode="KMH"))
    st, _, _ = hub.patch(p + "/attrs/speed", {"value": 7})
    assert st == 204, hub.last_text
    assert hub.get(p)[2]["speed"] == {"type": "Property", "value": 7, "unitCode": "KMH"}


def test_attr_patch_unknown_attr_404(hub):
    p = make(hub, "41", speed=prop(1))
    st, _, b = hub.patch(p + "/attrs/ghost", {"type": "Property", "value": 7})
    assert_problem(st, b, 404, "ResourceNotFound")


def test_attr_put_replaces(hub):
    p = make(hub, "42", speed=prop(1, unitCode="KMH", accuracy=prop(3)))
    st, _, _ = hub.put(p + "/attrs/speed", {"type": "Property", "value": 8})
    assert st == 204, hub.last_text
    assert hub.get(p)[2]["speed"] == {"type": "Property", "value": 8}


def test_attr_put_unknown_attr_404(hub):
    p = make(hub, "43", speed=prop(1))
    st, _, b = hub.put(p + "/attrs/ghost", {"type": "Property", "value": 8})
    assert_problem(st, b, 404, "ResourceNotFound")


def test_attr_delete(hub):
    p = make(hub, "44", speed=prop(1), color=prop("red"))
    st, _, b = hub.delete(p + "/attrs/color")
    assert st == 204, hub.last_text
    assert kv(hub, p) == {"id": "urn:ngsi-ld:Car:a44", "type": "Car", "speed": 1}
    st, _, b = hub.delete(p + "/attrs/color")
    assert_problem(st, b, 404, "ResourceNotFound")


def test_attr_delete_unknown_entity_404(hub):
    st, _, b = hub.delete(path("nope") + "/attrs/speed")
    assert_problem(st, b, 404, "ResourceNotFound")


# ---- datasetId ---------------------------------------------------------------------

DS1 = "urn:ngsi-ld:Dataset:gps"
DS2 = "urn:ngsi-ld:Dataset:wheel"


def test_dataset_instances(hub):
    p = make(hub, "50", speed=[prop(10, datasetId=DS1), prop(11, datasetId=DS2)])
    b = hub.get(p)[2]
    assert isinstance(b["speed"], list) and len(b["speed"]) == 2
    by_ds = {x["datasetId"]: x["value"] for x in b["speed"]}
    assert by_ds == {DS1: 10, DS2: 11}
    assert sorted(kv(hub, p)["speed"]) == [10, 11]


def test_dataset_default_plus_named(hub):
    p = make(hub, "51", speed=[prop(1), prop(2, datasetId=DS1)])
    b = hub.get(p)[2]["speed"]
    assert len(b) == 2
    assert sorted((x.get("datasetId", ""), x["value"]) for x in b) == [("", 1), (DS1, 2)]


def test_dataset_delete_one(hub):
    p = make(hub, "52", speed=[prop(10, datasetId=DS1), prop(11, datasetId=DS2)])
    st, _, _ = hub.delete(p + "/attrs/speed?datasetId=" + DS1)
    assert st == 204, hub.last_text
    b = hub.get(p)[2]["speed"]
    if isinstance(b, list):
        assert len(b) == 1
        b = b[0]
    assert b["datasetId"] == DS2 and b["value"] == 11
    st, _, body = hub.delete(p + "/attrs/speed?datasetId=" + DS1)
    assert_problem(st, body, 404, "ResourceNotFound")


def test_dataset_delete_all(hub):
    p = make(hub, "53", speed=[prop(1), prop(10, datasetId=DS1), prop(11, datasetId=DS2)],
             color=prop("red"))
    st, _, _ = hub.delete(p + "/attrs/speed?deleteAll=true")
    assert st == 204, hub.last_text
    assert kv(hub, p) == {"id": "urn:ngsi-ld:Car:a53", "type": "Car", "color": "red"}


def test_dataset_delete_default_keeps_named(hub):
    p = make(hub, "54", speed=[prop(1), prop(10, datasetId=DS1)])
    assert hub.delete(p + "/attrs/speed")[0] == 204
    b = hub.get(p)[2]["speed"]
    if isinstance(b, list):
        assert len(b) == 1
        b = b[0]
    assert b == {"type": "Property", "value": 10, "datasetId": DS1}


def test_dataset_append_adds_instance(hub):
    p = make(hub, "55", speed=prop(1))
    assert hub.post(p + "/attrs", {"speed": prop(2, datasetId=DS1)})[0] == 204
    b = hub.get(p)[2]["speed"]
    assert sorted(x["value"] for x in b) == [1, 2]


def test_dataset_patch_one_instance(hub):
    p = make(hub, "56", speed=[prop(10, datasetId=DS1), prop(11, datasetId=DS2)])
    st, _, _ = hub.patch(p + "/attrs/speed", {"value": 99, "datasetId": DS2})
    assert st == 204, hub.last_text
    b = {x["datasetId"]: x["value"] for x in hub.get(p)[2]["speed"]}
    assert b == {DS1: 10, DS2: 99}


def test_bad_dataset_id_400(hub):
    p = make(hub, "57", speed=prop(1))
    st, _, b = hub.delete(p + "/attrs/speed?datasetId=not%20a%20uri")
    assert_problem(st, b, 400, "BadRequestData")


def test_duplicate_dataset_id_400(hub):
    st, _, b = hub.post(ENTITIES, {"id": "urn:ngsi-ld:Car:a58", "type": "Car",
                                   "speed": [prop(1, datasetId=DS1), prop(2, datasetId=DS1)]})
    assert_problem(st, b, 400, "BadRequestData")


# ---- DELETE /entities/{id} -------------------------------------------------------------

def test_delete_entity(hub):
    p = make(hub, "60", speed=prop(1))
    st, _, b = hub.delete(p)
    assert st == 204 and b is None
    st, _, b = hub.get(p)
    assert_problem(st, b, 404, "ResourceNotFound")
    st, _, b = hub.delete(p)
    assert_problem(st, b, 404, "ResourceNotFound")
    # the id can be used again
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Car:a60", "type": "Car"})[0] == 201


def test_relationship_update(hub):
    p = make(hub, "61", owner=rel("urn:ngsi-ld:Person:x"))
    assert hub.patch(p + "/attrs", {"owner": rel("urn:ngsi-ld:Person:y")})[0] == 204
    assert kv(hub, p)["owner"] == "urn:ngsi-ld:Person:y"
