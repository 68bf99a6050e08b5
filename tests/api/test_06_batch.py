"""06 - batch operations /entityOperations/* (GS CIM 009 5.6.7 - 5.6.10,
5.6.20, 5.7.2 for query): all-good answers (201 / 204) and 207 with
success + errors for mixes of good and bad entities."""

from helpers import ENTITIES, assert_problem, ids_of, prop, ERR_NS

OPS = "/ngsi-ld/v1/entityOperations/"


def B(n):
    return "urn:ngsi-ld:Bin:b%s" % n


def ent(n, **attrs):
    e = {"id": B(n), "type": "Bin"}
    e.update(attrs or {"fill": prop(0)})
    return e


def kv(hub, n):
    st, _, b = hub.get(ENTITIES + "/" + B(n) + "?options=keyValues")
    return b if st == 200 else None


def check_error_entry(entry, entity_id, type_suffix):
    assert entry["entityId"] == entity_id
    err = entry["error"]
    assert err["type"] == ERR_NS + type_suffix, err
    assert err.get("title") and err.get("detail"), err


# ---- create ---------------------------------------------------------------------

def test_create_all_good_201(hub):
    st, _, b = hub.post(OPS + "create", [ent("c1"), ent("c2"), ent("c3")])
    assert st == 201, hub.last_text
    assert sorted(b) == [B("c1"), B("c2"), B("c3")]
    assert kv(hub, "c2") == {"id": B("c2"), "type": "Bin", "fill": 0}


def test_create_mixed_207(hub):
    assert hub.post(ENTITIES, ent("c10"))[0] == 201
    body = [ent("c11"), ent("c10"), {"id": "not a uri", "type": "Bin"},
            {"id": B("c12")}, ent("c13")]
    st, _, b = hub.post(OPS + "create", body)
    assert st == 207, hub.last_text
    assert sorted(b["success"]) == [B("c11"), B("c13")]
    errs = {e["entityId"]: e for e in b["errors"]}
    assert set(errs) == {B("c10"), "not a uri", B("c12")}
    check_error_entry(errs[B("c10")], B("c10"), "AlreadyExists")
    check_error_entry(errs["not a uri"], "not a uri", "BadRequestData")
    check_error_entry(errs[B("c12")], B("c12"), "BadRequestData")
    assert kv(hub, "c11") is not None and kv(hub, "c13") is not None
    assert kv(hub, "c12") is None


def test_create_duplicate_in_batch_207(hub):
    st, _, b = hub.post(OPS + "create", [ent("c20"), ent("c20", fill=prop(5))])
    assert st == 207, hub.last_text
    assert b["success"] == [B("c20")]
    assert len(b["errors"]) == 1
    check_error_entry(b["errors"][0], B("c20"), "AlreadyExists")
    assert kv(hub, "c20")["fill"] == 0


def test_create_not_array_400(hub):
    st, _, b = hub.post(OPS + "create", ent("c30"))
    assert_problem(st, b, 400, "BadRequestData")


def test_create_empty_array_400(hub):
    st, _, b = hub.post(OPS + "create", [])
    assert_problem(st, b, 400, "BadRequestData")


def test_create_bad_json_400(hub):
    st, _, b = hub.post(OPS + "create", "[{")
    assert_problem(st, b, 400, "InvalidRequest")


# ---- upsert ---------------------------------------------------------------------

def test_upsert_creates_201(hub):
    st, _, b = hub.post(OPS + "upsert", [ent("u1"), ent("u2")])
    assert st == 201, hub.last_text
    assert sorted(b) == [B("u1"), B("u2")]


def test_upsert_existing_only_204(hub):
    hub.post(OPS + "create", [ent("u10", fill=prop(1), color=prop("green"))])
    st, _, b = hub.post(OPS + "upsert", [ent("u10", fill=prop(2))])
    assert st == 204, hub.last_text
    # default is replace: color is gone
    assert kv(hub, "u10") == {"id": B("u10"), "type": "Bin", "fill": 2}


def test_upsert_mix_new_and_existing_201_lists_created(hub):
    hub.post(ENTITIES, ent("u20"))
    st, _, b = hub.post(OPS + "upsert", [ent("u20", fill=prop(3)), ent("u21")])
    assert st == 201, hub.last_text
    assert b == [B("u21")]
    assert kv(hub, "u20")["fill"] == 3


def test_upsert_replace_explicit(hub):
    hub.post(ENTITIES, ent("u30", fill=prop(1), color=prop("green")))
    st, _, _ = hub.post(OPS + "upsert?options=replace", [ent("u30", fill=prop(9))])
    assert st == 204
    assert kv(hub, "u30") == {"id": B("u30"), "type": "Bin", "fill": 9}


def test_upsert_update_keeps_others(hub):
    hub.post(ENTITIES, ent("u40", fill=prop(1), color=prop("green")))
    st, _, _ = hub.post(OPS + "upsert?options=update", [ent("u40", fill=prop(7))])
    assert st == 204, hub.last_text
    assert kv(hub, "u40") == {"id": B("u40"), "type": "Bin", "fill": 7, "color": "green"}


def test_upsert_mixed_207(hub):
    hub.post(ENTITIES, ent("u50"))
    st, _, b = hub.post(OPS + "upsert", [ent("u50", fill=prop(4)), ent("u51"),
                                         {"id": B("u52"), "type": "Bin",
                                          "fill": {"type": "Property"}}])
    assert st == 207, hub.last_text
    assert sorted(b["success"]) == [B("u50"), B("u51")]
    assert len(b["errors"]) == 1
    check_error_entry(b["errors"][0], B("u52"), "BadRequestData")
    assert kv(hub, "u52") is None
    assert kv(hub, "u50")["fill"] == 4


# ---- update ---------------------------------------------------------------------

def test_update_204(hub):
    hub.post(OPS + "create", [ent("p1", fill=prop(1)), ent("p2", fill=prop(2))])
    st, _, b = hub.post(OPS + "update", [{"id": B("p1"), "fill": prop(10)},
                                         {"id": B("p2"), "color": prop("red")}])
    assert st == 204, hub.last_text
    assert kv(hub, "p1") == {"id": B("p1"), "type": "Bin", "fill": 10}
    assert kv(hub, "p2") == {"id": B("p2"), "type": "Bin", "fill": 2, "color": "red"}


def test_update_no_overwrite(hub):
    hub.post(ENTITIES, ent("p10", fill=prop(1)))
    st, _, b = hub.post(OPS + "update?options=noOverwrite",
                        [{"id": B("p10"), "fill": prop(99), "color": prop("blue")}])
    assert st == 204, hub.last_text
    assert kv(hub, "p10") == {"id": B("p10"), "type": "Bin", "fill": 1, "color": "blue"}


def test_update_mixed_207(hub):
    hub.post(ENTITIES, ent("p20"))
    st, _, b = hub.post(OPS + "update", [{"id": B("p20"), "fill": prop(5)},
                                         {"id": B("p-missing"), "fill": prop(5)},
                                         {"id": "bad id", "fill": prop(5)}])
    assert st == 207, hub.last_text
    assert b["success"] == [B("p20")]
    errs = {e["entityId"]: e for e in b["errors"]}
    check_error_entry(errs[B("p-missing")], B("p-missing"), "ResourceNotFound")
    check_error_entry(errs["bad id"], "bad id", "BadRequestData")
    assert kv(hub, "p20")["fill"] == 5


# ---- merge ----------------------------------------------------------------------

def test_merge_204(hub):
    hub.post(OPS + "create", [ent("m1", fill=prop(1), color=prop("red"), size=prop(3))])
    st, _, _ = hub.post(OPS + "merge", [{"id": B("m1"), "fill": prop(2),
                                         "color": "urn:ngsi-ld:null"}])
    assert st == 204, hub.last_text
    assert kv(hub, "m1") == {"id": B("m1"), "type": "Bin", "fill": 2, "size": 3}


def test_merge_mixed_207(hub):
    hub.post(ENTITIES, ent("m10"))
    st, _, b = hub.post(OPS + "merge", [{"id": B("m10"), "fill": prop(8)},
                                        {"id": B("m-missing"), "fill": prop(8)}])
    assert st == 207, hub.last_text
    assert b["success"] == [B("m10")]
    check_error_entry(b["errors"][0], B("m-missing"), "ResourceNotFound")


# ---- delete ---------------------------------------------------------------------

def test_delete_204(hub):
    hub.post(OPS + "create", [ent("d1"), ent("d2")])
    st, _, b = hub.post(OPS + "delete", [B("d1"), B("d2")])
    assert st == 204, hub.last_text
    assert kv(hub, "d1") is None and kv(hub, "d2") is None


def test_delete_mixed_207(hub):
    hub.post(ENTITIES, ent("d10"))
    st, _, b = hub.post(OPS + "delete", [B("d10"), B("d-missing"), "nope"])
    assert st == 207, hub.last_text
    assert b["success"] == [B("d10")]
    errs = {e["entityId"]: e for e in b["errors"]}
    check_error_entry(errs[B("d-missing")], B("d-missing"), "ResourceNotFound")
    check_error_entry(errs["nope"], "nope", "BadRequestData")
    assert kv(hub, "d10") is None


def test_delete_all_missing_207(hub):
    st, _, b = hub.post(OPS + "delete", [B("d-none1"), B("d-none2")])
    assert st == 207, hub.last_text
    assert b["success"] == []
    assert sorted(e["entityId"] for e in b["errors"]) == [B("d-none1"), B("d-none2")]


# ---- a bigger batch, one transaction ---------------------------------------------

def test_large_batch_create_and_query(hub):
    body = [ent("big%04d" % i, fill=prop(i)) for i in range(500)]
    st, _, b = hub.post(OPS + "create", body)
    assert st == 201, hub.last_text
    assert len(b) == 500
    st, h, b = hub.get(ENTITIES + "?type=Bin&q=fill>=490&count=true&idPattern=big")
    assert st == 200
    assert h["ngsild-results-count"] == "10"
    assert sorted(ids_of(b)) == [B("big%04d" % i) for i in range(490, 500)]


def test_query_selectors_are_alternatives(hub):
    """Each entity selector stands on its own: an entity matches if any does."""
    ents = [{"id": "urn:ngsi-ld:SelA:1", "type": "SelA"}, {"id": "urn:ngsi-ld:SelA:2", "type": "SelA"},
            {"id": "urn:ngsi-ld:SelB:1", "type": "SelB"}, {"id": "urn:ngsi-ld:SelC:1", "type": "SelC"}]
    st, _, _ = hub.post("/ngsi-ld/v1/entityOperations/upsert", ents)
    assert st in (201, 204), hub.last_text
    body = {"type": "Query", "entities": [{"id": "urn:ngsi-ld:SelA:2"}, {"type": "SelB"},
                                          {"idPattern": "^urn:ngsi-ld:SelC:.*", "type": "SelC"}]}
    st, _, b = hub.post("/ngsi-ld/v1/entityOperations/query?limit=100", body)
    assert st == 200, hub.last_text
    assert sorted(e["id"] for e in b) == ["urn:ngsi-ld:SelA:2", "urn:ngsi-ld:SelB:1",
                                          "urn:ngsi-ld:SelC:1"]
    # a type expression inside a selector is one selector, not spliced text
    body = {"type": "Query", "entities": [{"type": "SelA)|(SelB"}]}
    st, _, b = hub.post("/ngsi-ld/v1/entityOperations/query", body)
    assert st == 400 and b["type"].endswith("BadRequestData")
    body = {"type": "Query", "entities": [{"type": "SelA|SelC"}], "q": "!nothing"}
    st, _, b = hub.post("/ngsi-ld/v1/entityOperations/query?limit=100", body)
    assert st == 200 and sorted(e["id"] for e in b) == ["urn:ngsi-ld:SelA:1", "urn:ngsi-ld:SelA:2",
                                                       "urn:ngsi-ld:SelC:1"]
