"""02 - GET /entities/{id} (GS CIM 009 5.7.1): representations (normalized,
keyValues, concise), sysAttrs, attrs / pick / omit projections, 404."""
import pytest

from helpers import (ENTITIES, assert_problem, check_iso, prop, rel, point)

ID = "urn:ngsi-ld:Room:r02"
PATH = ENTITIES + "/" + ID


@pytest.fixture(scope="module", autouse=True)
def room(hub):
    e = {"id": ID, "type": "Room",
         "temperature": prop(21.5, unitCode="CEL", observedAt="2026-06-12T08:15:00Z",
                             accuracy=prop(0.2)),
         "name": prop("Kitchen"),
         "tags": prop(["a", "b"]),
         "owner": rel("urn:ngsi-ld:Person:p02"),
         "location": point(4.9, 52.37)}
    st, _, _ = hub.post(ENTITIES, e)
    assert st == 201, hub.last_text
    return e


def test_normalized_default(hub):
    st, h, b = hub.get(PATH)
    assert st == 200
    assert h["content-type"].startswith("application/json")
    assert b["id"] == ID and b["type"] == "Room"
    t = b["temperature"]
    assert t["type"] == "Property" and t["value"] == 21.5 and t["unitCode"] == "CEL"
    assert t["observedAt"].startswith("2026-06-12T08:15:00")
    assert t["accuracy"] == {"type": "Property", "value": 0.2}
    assert b["name"] == {"type": "Property", "value": "Kitchen"}
    assert b["tags"] == {"type": "Property", "value": ["a", "b"]}
    assert b["owner"] == {"type": "Relationship", "object": "urn:ngsi-ld:Person:p02"}
    assert b["location"] == {"type": "GeoProperty",
                             "value": {"type": "Point", "coordinates": [4.9, 52.37]}}
    assert "createdAt" not in b and "modifiedAt" not in b
    assert "createdAt" not in t


def test_options_normalized_explicit(hub):
    assert hub.get(PATH + "?options=normalized")[2] == hub.get(PATH)[2]


@pytest.mark.parametrize("qs", ["options=keyValues", "format=keyValues", "format=simplified",
                                "options=simplified"])
def test_key_values(hub, qs):
    st, _, b = hub.get(PATH + "?" + qs)
    assert st == 200, hub.last_text
    assert b == {"id": ID, "type": "Room", "temperature": 21.5, "name": "Kitchen",
                 "tags": ["a", "b"], "owner": "urn:ngsi-ld:Person:p02",
                 "location": {"type": "Point", "coordinates": [4.9, 52.37]}}


@pytest.mark.parametrize("qs", ["options=concise", "format=concise"])
def test_concise(hub, qs):
    st, _, b = hub.get(PATH + "?" + qs)
    assert st == 200, hub.last_text
    assert b["id"] == ID and b["type"] == "Room"
    assert b["name"] == "Kitchen"
    assert b["tags"] == ["a", "b"]
    assert b["owner"] == {"object": "urn:ngsi-ld:Person:p02"}
    t = b["temperature"]
    assert t["value"] == 21.5 and t["unitCode"] == "CEL"
    assert "type" not in t
    assert t["accuracy"] == 0.2
    assert b["location"] == {"type": "Point", "coordinates": [4.9, 52.37]}


def test_format_overrides_options(hub):
    # format wins over a representation given in options (6.3.x, "format")
    st, _, b = hub.get(PATH + "?options=keyValues&format=normalized")
    assert st == 200
    assert b["name"] == {"type": "Property", "value": "Kitchen"}


def test_unknown_format_400(hub):
    st, _, b = hub.get(PATH + "?format=bogus")
    assert_problem(st, b, 400, "BadRequestData")


def test_unknown_option_400(hub):
    st, _, b = hub.get(PATH + "?options=bogus")
    assert_problem(st, b, 400, "BadRequestData")


def test_sys_attrs(hub):
    st, _, b = hub.get(PATH + "?options=sysAttrs")
    assert st == 200
    check_iso(b["createdAt"])
    check_iso(b["modifiedAt"])
    assert b["modifiedAt"] >= b["createdAt"]
    check_iso(b["temperature"]["createdAt"])
    check_iso(b["temperature"]["modifiedAt"])
    check_iso(b["owner"]["createdAt"])


def test_sys_attrs_with_key_values(hub):
    st, _, b = hub.get(PATH + "?options=sysAttrs,keyValues")
    assert st == 200
    check_iso(b["createdAt"])
    assert b["name"] == "Kitchen"


def test_sys_attrs_modified_after_update(hub):
    before = hub.get(PATH + "?options=sysAttrs")[2]
    assert hub.patch(PATH + "/attrs", {"name": prop("Kitchen")})[0] == 204
    after = hub.get(PATH + "?options=sysAttrs")[2]
    assert after["createdAt"] == before["createdAt"]
    assert after["modifiedAt"] >= before["modifiedAt"]
    assert after["name"]["createdAt"] == before["name"]["createdAt"]


def test_attrs_projection(hub):
    st, _, b = hub.get(PATH + "?attrs=name,owner")
    assert st == 200
    assert set(b) == {"id", "type", "name", "owner"}
    assert b["name"]["value"] == "Kitchen"


def test_attrs_projection_key_values(hub):
    st, _, b = hub.get(PATH + "?attrs=temperature&options=keyValues")
    assert st == 200
    assert b == {"id": ID, "type": "Room", "temperature": 21.5}


def test_pick(hub):
    st, _, b = hub.get(PATH + "?pick=id,name")
    assert st == 200, hub.last_text
    assert b == {"id": ID, "name": {"type": "Property", "value": "Kitchen"}}


def test_omit(hub):
    st, _, b = hub.get(PATH + "?omit=temperature,location,tags")
    assert st == 200, hub.last_text
    assert set(b) == {"id", "type", "name", "owner"}


def test_omit_type_key_values(hub):
    st, _, b = hub.get(PATH + "?omit=type,temperature,location,tags&options=keyValues")
    assert st == 200
    assert b == {"id": ID, "name": "Kitchen", "owner": "urn:ngsi-ld:Person:p02"}


def test_attrs_and_pick_together_400(hub):
    st, _, b = hub.get(PATH + "?attrs=name&pick=name")
    assert_problem(st, b, 400, "BadRequestData")


def test_not_found_404(hub):
    st, _, b = hub.get(ENTITIES + "/urn:ngsi-ld:Room:nope")
    assert_problem(st, b, 404, "ResourceNotFound")


def test_invalid_id_in_path_400(hub):
    st, _, b = hub.get(ENTITIES + "/not-a-uri")
    assert_problem(st, b, 400, "BadRequestData")


def test_percent_encoded_id(hub):
    st, _, b = hub.get(ENTITIES + "/urn%3Angsi-ld%3ARoom%3Ar02")
    assert st == 200
    assert b["id"] == ID


def test_language_property_lang(hub):
    e = {"id": "urn:ngsi-ld:Room:r02-lang", "type": "Room",
         "label": {"type": "LanguageProperty",
                   "languageMap": {"nl": "Keuken", "en": "Kitchen"}}}
    assert hub.post(ENTITIES, e)[0] == 201, hub.last_text
    b = hub.get(ENTITIES + "/" + e["id"])[2]
    assert b["label"] == {"type": "LanguageProperty",
                          "languageMap": {"nl": "Keuken", "en": "Kitchen"}}
    b = hub.get(ENTITIES + "/" + e["id"] + "?lang=nl")[2]
    assert b["label"]["type"] == "Property"
    assert b["label"]["value"] == "Keuken"
    assert b["label"]["lang"] == "nl"
    b = hub.get(ENTITIES + "/" + e["id"] + "?lang=en&options=keyValues")[2]
    assert b["label"] == "Kitchen"
