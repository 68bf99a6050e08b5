"""07 - entity type and attribute information (GS CIM 009 5.7.5 - 5.7.10):
/types, /types?details=true, /types/{type}, /attributes,
/attributes?details=true, /attributes/{attrId}."""
import pytest

from helpers import BASE, ENTITIES, DEFAULT_VOCAB, SDM_LIGHT, assert_problem, link, prop, rel, point

T = BASE + "/types"
A = BASE + "/attributes"


@pytest.fixture(scope="module", autouse=True)
def data(hub):
    ents = [
        {"id": "urn:ngsi-ld:Kiosk:k1", "type": "Kiosk", "open": prop(True),
         "owner": rel("urn:ngsi-ld:Person:1"), "location": point(4.9, 52.37)},
        {"id": "urn:ngsi-ld:Kiosk:k2", "type": "Kiosk", "open": prop(False)},
        {"id": "urn:ngsi-ld:Bench:b1", "type": "Bench", "seats": prop(3),
         "owner": rel("urn:ngsi-ld:Person:2")},
        {"id": "urn:ngsi-ld:Bench:b2", "type": "Bench", "seats": prop(4)},
        {"id": "urn:ngsi-ld:Bench:b3", "type": "Bench", "seats": prop(5)},
    ]
    for e in ents:
        assert hub.post(ENTITIES, e)[0] == 201, hub.last_text


def test_types_list(hub):
    st, _, b = hub.get(T)
    assert st == 200, hub.last_text
    assert b["type"] == "EntityTypeList"
    assert b["id"].startswith("urn:ngsi-ld:EntityTypeList:")
    assert sorted(b["typeList"]) == ["Bench", "Kiosk"]


def test_types_details(hub):
    st, _, b = hub.get(T + "?details=true")
    assert st == 200
    by = {x["typeName"]: x for x in b}
    assert set(by) == {"Bench", "Kiosk"}
    assert by["Kiosk"]["type"] == "EntityType"
    assert by["Kiosk"]["id"] == DEFAULT_VOCAB + "Kiosk"
    assert sorted(by["Kiosk"]["attributeNames"]) == ["location", "open", "owner"]
    assert sorted(by["Bench"]["attributeNames"]) == ["owner", "seats"]


def test_type_info(hub):
    st, _, b = hub.get(T + "/Bench")
    assert st == 200, hub.last_text
    assert b["type"] == "EntityTypeInfo"
    assert b["typeName"] == "Bench"
    assert b["id"] == DEFAULT_VOCAB + "Bench"
    assert b["entityCount"] == 3
    det = {d["attributeName"]: d for d in b["attributeDetails"]}
    assert set(det) == {"seats", "owner"}
    assert det["seats"]["attributeTypes"] == ["Property"]
    assert det["owner"]["attributeTypes"] == ["Relationship"]
    assert det["seats"]["type"] == "Attribute"
    assert det["seats"]["id"] == DEFAULT_VOCAB + "seats"


def test_type_info_geo(hub):
    b = hub.get(T + "/Kiosk")[2]
    assert b["entityCount"] == 2
    det = {d["attributeName"]: d["attributeTypes"] for d in b["attributeDetails"]}
    assert det == {"open": ["Property"], "owner": ["Relationship"],
                   "location": ["GeoProperty"]}


def test_type_by_full_iri(hub):
    st, _, b = hub.get(T + "/" + DEFAULT_VOCAB.replace("/", "%2F").replace(":", "%3A") + "Kiosk")
    assert st == 200, hub.last_text
    assert b["entityCount"] == 2


def test_type_unknown_404(hub):
    st, _, b = hub.get(T + "/Unicorn")
    assert_problem(st, b, 404, "ResourceNotFound")


def test_type_count_follows_deletes(hub):
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Bench:tmp", "type": "Bench"})[0] == 201
    assert hub.get(T + "/Bench")[2]["entityCount"] == 4
    assert hub.delete(ENTITIES + "/urn:ngsi-ld:Bench:tmp")[0] == 204
    assert hub.get(T + "/Bench")[2]["entityCount"] == 3


def test_attributes_list(hub):
    st, _, b = hub.get(A)
    assert st == 200
    assert b["type"] == "AttributeList"
    assert b["id"].startswith("urn:ngsi-ld:AttributeList:")
    assert sorted(b["attributeList"]) == ["location", "open", "owner", "seats"]


def test_attributes_details(hub):
    st, _, b = hub.get(A + "?details=true")
    assert st == 200
    by = {x["attributeName"]: x for x in b}
    assert set(by) == {"location", "open", "owner", "seats"}
    assert by["owner"]["type"] == "Attribute"
    assert sorted(by["owner"]["typeNames"]) == ["Bench", "Kiosk"]
    assert by["owner"]["attributeTypes"] == ["Relationship"]
    assert by["location"]["id"] == "https://uri.etsi.org/ngsi-ld/location"


def test_attribute_info(hub):
    st, _, b = hub.get(A + "/seats")
    assert st == 200, hub.last_text
    assert b["attributeName"] == "seats"
    assert b["type"] == "Attribute"
    assert b["attributeCount"] == 3
    assert b["attributeTypes"] == ["Property"]
    assert b["typeNames"] == ["Bench"]


def test_attribute_unknown_404(hub):
    st, _, b = hub.get(A + "/ghost")
    assert_problem(st, b, 404, "ResourceNotFound")


def test_types_with_link_context(hub, context_server):
    hdr = link(context_server.url())
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Streetlight:t1", "type": "Streetlight",
                               "powerState": prop("on")}, headers=hdr)[0] == 201
    b = hub.get(T, headers=hdr)[2]
    assert "Streetlight" in b["typeList"]
    b = hub.get(T)[2]
    assert SDM_LIGHT + "Streetlight" in b["typeList"]
    b = hub.get(T + "/Streetlight", headers=hdr)[2]
    assert b["entityCount"] == 1
    assert b["id"] == SDM_LIGHT + "Streetlight"
    assert [d["attributeName"] for d in b["attributeDetails"]] == ["powerState"]


def test_types_empty_tenant(hub):
    # a tenant that exists (created by a write) but has no entities left
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:X:1", "type": "X"}, tenant="t07")[0] == 201
    assert hub.delete(ENTITIES + "/urn:ngsi-ld:X:1", tenant="t07")[0] == 204
    st, _, b = hub.get(T, tenant="t07")
    assert st == 200
    assert b["typeList"] == []
