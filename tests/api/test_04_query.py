"""04 - GET /entities (GS CIM 009 5.7.2) and the q language (4.9): type
selectors, id lists, idPattern, attrs, every q operator, paging, count."""
import pytest

from helpers import ENTITIES, assert_problem, ids_of, prop, rel, q as enc


def S(n):
    return "urn:ngsi-ld:Sensor:q%02d" % n


SENSORS = [
    # n, temp, name, status, tags, device, when, address
    (1, 10, "alpha", "ok", ["red", "big"], "urn:ngsi-ld:Device:d1", "2026-06-12T08:00:00Z",
     {"city": "Amsterdam", "zip": "1011", "geo": {"floor": 1}}),
    (2, 20, "beta", "broken", ["blue"], "urn:ngsi-ld:Device:d2", "2026-06-12T09:00:00Z",
     {"city": "Utrecht", "zip": "3511", "geo": {"floor": 2}}),
    (3, 30, "gamma", "ok", ["red"], "urn:ngsi-ld:Device:d1", "2026-06-12T10:00:00Z",
     {"city": "Amsterdam", "zip": "1012", "geo": {"floor": 3}}),
    (4, 40, "delta one", "ok", [], "urn:ngsi-ld:Device:d3", "2026-06-13T08:00:00Z",
     {"city": "Rotterdam", "zip": "3011", "geo": {"floor": 4}}),
]
ALL_SENSORS = [S(n) for n in range(1, 5)]


@pytest.fixture(scope="module", autouse=True)
def data(hub):
    for n, temp, name, status, tags, dev, when, addr in SENSORS:
        e = {"id": S(n), "type": "Sensor",
             "temperature": prop(temp, unitCode="CEL", observedAt=when,
                                 accuracy=prop(n / 10)),
             "name": prop(name), "status": prop(status), "tags": prop(tags),
             "device": rel(dev), "when": prop(when), "address": prop(addr),
             "active": prop(n % 2 == 1)}
        if n == 4:
            del e["status"]
        st, _, _ = hub.post(ENTITIES, e)
        assert st == 201, hub.last_text
    others = [
        {"id": "urn:ngsi-ld:Actuator:q01", "type": "Actuator", "temperature": prop(15)},
        {"id": "urn:ngsi-ld:Actuator:q02", "type": "Actuator", "temperature": prop(25)},
        {"id": "urn:ngsi-ld:Hybrid:q01", "type": ["Sensor", "Outdoor"], "temperature": prop(5)},
        {"id": "urn:ngsi-ld:Hybrid:q02", "type": ["Outdoor"], "temperature": prop(6)},
    ]
    for e in others:
        st, _, _ = hub.post(ENTITIES, e)
        assert st == 201, hub.last_text
    # paging set
    for i in range(25):
        st, _, _ = hub.post(ENTITIES, {"id": "urn:ngsi-ld:Page:%03d" % i, "type": "Page",
                                       "n": prop(i)})
        assert st == 201


def query(hub, **params):
    st, h, b = hub.get(ENTITIES + "?" + enc(params))
    assert st == 200, "%s -> %s %s" % (params, st, hub.last_text)
    return sorted(ids_of(b))


def qids(hub, expr):
    """Sensors q01..q04 matching expr (the Hybrid Sensor is left out)."""
    return query(hub, type="Sensor", idPattern="^urn:ngsi-ld:Sensor:", q=expr, limit=1000)


# ---- type, id, idPattern, attrs ------------------------------------------------

def test_type(hub):
    assert query(hub, type="Sensor") == sorted(ALL_SENSORS + ["urn:ngsi-ld:Hybrid:q01"])


def test_type_list(hub):
    assert query(hub, type="Actuator,Outdoor") == [
        "urn:ngsi-ld:Actuator:q01", "urn:ngsi-ld:Actuator:q02",
        "urn:ngsi-ld:Hybrid:q01", "urn:ngsi-ld:Hybrid:q02"]


def test_type_expression_and_or(hub):
    assert query(hub, type="(Sensor;Outdoor)|Actuator") == [
        "urn:ngsi-ld:Actuator:q01", "urn:ngsi-ld:Actuator:q02", "urn:ngsi-ld:Hybrid:q01"]


def test_type_expression_and(hub):
    assert query(hub, type="Sensor;Outdoor") == ["urn:ngsi-ld:Hybrid:q01"]


def test_type_unknown_empty(hub):
    st, h, b = hub.get(ENTITIES + "?type=NoSuchType")
    assert st == 200 and b == []


def test_type_bad_expression_400(hub):
    st, _, b = hub.get(ENTITIES + "?" + enc({"type": "(Sensor;"}))
    assert_problem(st, b, 400, "BadRequestData")


def test_id_list(hub):
    assert query(hub, id=S(1) + "," + S(3) + ",urn:ngsi-ld:Sensor:none") == [S(1), S(3)]


def test_id_list_with_type(hub):
    assert query(hub, id=S(1) + ",urn:ngsi-ld:Actuator:q01", type="Sensor") == [S(1)]


def test_id_pattern(hub):
    assert query(hub, type="Sensor", idPattern="^urn:ngsi-ld:Sensor:q0[23]$") == [S(2), S(3)]


def test_id_pattern_bad_regex_400(hub):
    st, _, b = hub.get(ENTITIES + "?" + enc({"type": "Sensor", "idPattern": "(["}))
    assert_problem(st, b, 400, "BadRequestData")


def test_attrs_filters_entities(hub):
    # entities that have none of the attrs are not returned
    assert query(hub, type="Sensor", attrs="status") == [S(1), S(2), S(3)]
    st, _, b = hub.get(ENTITIES + "?type=Sensor&attrs=status,name&id=" + S(1))
    assert b[0]["status"]["value"] == "ok"
    assert set(b[0]) == {"id", "type", "status", "name"}


def test_attrs_alone(hub):
    assert query(hub, attrs="status") == [S(1), S(2), S(3)]


def test_invalid_id_in_list_400(hub):
    st, _, b = hub.get(ENTITIES + "?id=notauri")
    assert_problem(st, b, 400, "BadRequestData")


def test_no_restriction_400(hub):
    st, _, b = hub.get(ENTITIES)
    assert_problem(st, b, 400, "BadRequestData")


def test_key_values_list(hub):
    st, _, b = hub.get(ENTITIES + "?type=Sensor&options=keyValues&q=temperature==10")
    assert st == 200
    assert len(b) == 1 and b[0]["temperature"] == 10 and b[0]["name"] == "alpha"


# ---- q operators -------------------------------------------------------------------

@pytest.mark.parametrize("expr,expected", [
    ("temperature==20", [2]),
    ("temperature!=20", [1, 3, 4]),
    ("temperature>20", [3, 4]),
    ("temperature>=20", [2, 3, 4]),
    ("temperature<20", [1]),
    ("temperature<=20", [1, 2]),
    ("temperature==15..30", [2, 3]),
    ("temperature==10..10", [1]),
    ("temperature!=15..30", [1, 4]),
    ("temperature==10,40,99", [1, 4]),
    ("temperature!=10,40", [2, 3]),
    ("name==\"alpha\"", [1]),
    ("name==alpha", [1]),
    ("name==\"delta one\"", [4]),
    ("name!=\"alpha\"", [2, 3, 4]),
    ("name==\"alpha\",\"gamma\"", [1, 3]),
    ("name==beta..e", [2, 4]),
    ("name==beta..delta", [2]),
    ("name~=^(al|ga)", [1, 3]),
    ("name~=\"a$\"", [1, 2, 3]),
    ("name~=(?i)^ALPHA", [1]),
    ("name!~=^a", [2, 3, 4]),
    ("status", [1, 2, 3]),
    ("!status", [4]),
    ("tags==red", [1, 3]),
    ("tags==\"blue\"", [2]),
    ("active==true", [1, 3]),
    ("active==false", [2, 4]),
    ("temperature.accuracy>0.25", [3, 4]),
    ("temperature.accuracy==0.1", [1]),
    ("temperature.unitCode==\"CEL\"", [1, 2, 3, 4]),
    ("temperature.observedAt>=2026-06-12T09:00:00Z", [2, 3, 4]),
    ("temperature.observedAt==2026-06-12T08:30:00Z..2026-06-12T12:00:00Z", [2, 3]),
    ("address[city]==\"Amsterdam\"", [1, 3]),
    ("address[city]==Rotterdam", [4]),
    ("address[zip]>\"3000\"", [2, 4]),
    ("address[geo.floor]>=3", [3, 4]),
    ("address[geo][floor]==2", [2]),
    ("when>2026-06-12T09:30:00Z", [3, 4]),
    ("when<2026-06-12T09:00:00Z", [1]),
    ("when==2026-06-12T09:00:00Z", [2]),
    ("device==urn:ngsi-ld:Device:d1", [1, 3]),
    ("device==\"urn:ngsi-ld:Device:d2\"", [2]),
    ("device!=urn:ngsi-ld:Device:d1", [2, 4]),
    ("device==urn:ngsi-ld:Device:d2,urn:ngsi-ld:Device:d3", [2, 4]),
    ("temperature>15;status==ok", [3]),
    ("temperature<15|status==broken", [1, 2]),
    ("(temperature<15|temperature>35);name~=a", [1, 4]),
    ("temperature<15|temperature>35;name~=^d", [1, 4]),
    ("(temperature==10|temperature==20);(status==ok|status==broken)", [1, 2]),
    ("((temperature>5));((name==gamma))", [3]),
    ("temperature == 30", [3]),
])
def test_q(hub, expr, expected):
    assert qids(hub, expr) == [S(n) for n in expected], expr


def test_q_alone_is_a_restriction(hub):
    assert query(hub, q="temperature==25") == ["urn:ngsi-ld:Actuator:q02"]


def test_q_no_match_empty(hub):
    assert qids(hub, "temperature>1000") == []


def test_q_type_mismatch_unequal(hub):
    assert qids(hub, "name==10") == []
    assert qids(hub, "temperature==\"10\"") == []


@pytest.mark.parametrize("bad", [
    "temperature==", "(temperature==1", "temperature==1)", "==3",
    "temperature==1;;name==a", "name~=\"unterminated", "temperature==1..", "a|",
])
def test_q_malformed_400_with_position(hub, bad):
    st, _, b = hub.get(ENTITIES + "?" + enc({"type": "Sensor", "q": bad}))
    assert_problem(st, b, 400, "BadRequestData")
    assert "position" in b["detail"], b["detail"]


def test_q_bad_regex_400(hub):
    st, _, b = hub.get(ENTITIES + "?" + enc({"type": "Sensor", "q": "name~=\"([\""}))
    assert st == 400
    assert b["type"].endswith("BadRequestData")


# ---- paging ------------------------------------------------------------------------

def test_default_limit_20(hub):
    st, h, b = hub.get(ENTITIES + "?type=Page")
    assert st == 200 and len(b) == 20


def test_paging_stable_no_duplicates(hub):
    seen = []
    for off in range(0, 25, 7):
        st, _, b = hub.get(ENTITIES + "?type=Page&limit=7&offset=%d" % off)
        assert st == 200
        assert len(b) == min(7, 25 - off)
        seen += ids_of(b)
    assert len(seen) == 25
    assert sorted(seen) == ["urn:ngsi-ld:Page:%03d" % i for i in range(25)]
    # the same page twice gives the same order
    a = ids_of(hub.get(ENTITIES + "?type=Page&limit=7&offset=7")[2])
    b2 = ids_of(hub.get(ENTITIES + "?type=Page&limit=7&offset=7")[2])
    assert a == b2


def test_paging_creation_order(hub):
    st, _, b = hub.get(ENTITIES + "?type=Page&limit=5&offset=10")
    assert ids_of(b) == ["urn:ngsi-ld:Page:%03d" % i for i in range(10, 15)]


def test_paging_with_q(hub):
    seen = []
    for off in (0, 4, 8):
        seen += ids_of(hub.get(ENTITIES + "?type=Page&q=n>=13&limit=4&offset=%d" % off)[2])
    assert sorted(seen) == ["urn:ngsi-ld:Page:%03d" % i for i in range(13, 25)]


def test_offset_past_end_empty(hub):
    st, _, b = hub.get(ENTITIES + "?type=Page&offset=100")
    assert st == 200 and b == []


def test_count(hub):
    st, h, b = hub.get(ENTITIES + "?type=Page&count=true&limit=3")
    assert st == 200
    assert h["ngsild-results-count"] == "25"
    assert len(b) == 3
    st, h, b = hub.get(ENTITIES + "?type=Page&count=true&q=n<5")
    assert h["ngsild-results-count"] == "5"


def test_count_false_no_header(hub):
    st, h, b = hub.get(ENTITIES + "?type=Page&count=false&limit=3")
    assert st == 200 and "ngsild-results-count" not in h


def test_count_limit_zero(hub):
    st, h, b = hub.get(ENTITIES + "?type=Page&count=true&limit=0")
    assert st == 200
    assert b == []
    assert h["ngsild-results-count"] == "25"


def test_limit_zero_without_count_400(hub):
    st, _, b = hub.get(ENTITIES + "?type=Page&limit=0")
    assert_problem(st, b, 400, "BadRequestData")


def test_limit_over_max_403(hub):
    st, _, b = hub.get(ENTITIES + "?type=Page&limit=1001")
    assert_problem(st, b, 403, "TooManyResults")


def test_limit_max_ok(hub):
    st, _, b = hub.get(ENTITIES + "?type=Page&limit=1000")
    assert st == 200 and len(b) == 25


@pytest.mark.parametrize("qs", ["limit=-1", "limit=abc", "offset=-3", "offset=x"])
def test_bad_paging_400(hub, qs):
    st, _, b = hub.get(ENTITIES + "?type=Page&" + qs)
    assert_problem(st, b, 400, "BadRequestData")


def test_next_link(hub):
    st, h, b = hub.get(ENTITIES + "?type=Page&limit=10")
    assert 'rel="next"' in h.get("link", "")


# ---- POST /entityOperations/query -----------------------------------------------------

def test_post_query(hub):
    body = {"type": "Query", "entities": [{"type": "Sensor"}], "q": "temperature>=30"}
    st, _, b = hub.post("/ngsi-ld/v1/entityOperations/query", body)
    assert st == 200, hub.last_text
    assert sorted(ids_of(b)) == [S(3), S(4)]


def test_post_query_ids_and_attrs(hub):
    body = {"type": "Query", "entities": [{"id": S(1), "type": "Sensor"},
                                          {"id": S(2), "type": "Sensor"}],
            "attrs": ["name"]}
    st, _, b = hub.post("/ngsi-ld/v1/entityOperations/query?options=keyValues", body)
    assert st == 200, hub.last_text
    assert sorted((x["id"], x["name"]) for x in b) == [(S(1), "alpha"), (S(2), "beta")]
    assert all(set(x) == {"id", "type", "name"} for x in b)


def test_post_query_not_query_400(hub):
    st, _, b = hub.post("/ngsi-ld/v1/entityOperations/query", {"type": "Nope"})
    assert_problem(st, b, 400, "BadRequestData")


def test_paging_stable_across_updates(hub):
    ids = ["urn:ngsi-ld:Stable:%02d" % i for i in range(12)]
    st, _, _ = hub.post("/ngsi-ld/v1/entityOperations/create",
                        [{"id": x, "type": "Stable", "n": prop(i)} for i, x in enumerate(ids)])
    assert st == 201, hub.last_text
    page1 = ids_of(hub.get(ENTITIES + "?type=Stable&limit=6")[2])
    # modify entities of page 1 in every way between the page fetches
    assert hub.put(ENTITIES + "/" + page1[0], {"type": "Stable", "n": prop(100)})[0] == 204
    assert hub.post("/ngsi-ld/v1/entityOperations/upsert",
                    [{"id": page1[1], "type": "Stable", "n": prop(101)}])[0] == 204
    assert hub.patch(ENTITIES + "/" + page1[2], {"n": prop(102)})[0] == 204
    page2 = ids_of(hub.get(ENTITIES + "?type=Stable&limit=6&offset=6")[2])
    assert sorted(page1 + page2) == ids
    assert page1 == ids_of(hub.get(ENTITIES + "?type=Stable&limit=6")[2])


def test_q_on_language_property(hub):
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Label:l1", "type": "Label",
                               "title": {"type": "LanguageProperty",
                                         "languageMap": {"nl": "Brug", "en": "Bridge"}}})[0] == 201
    assert query(hub, type="Label", q="title[nl]==\"Brug\"") == ["urn:ngsi-ld:Label:l1"]
    assert query(hub, type="Label", q="title[en]==\"Brug\"") == []
    assert query(hub, type="Label", q="title==\"Bridge\"") == ["urn:ngsi-ld:Label:l1"]


def test_q_special_chars_in_quoted_string(hub):
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Label:l2", "type": "Label",
                               "text": prop("a&b;c|d (e) \"f\"")})[0] == 201
    assert query(hub, type="Label", q='text=="a&b;c|d (e) \\"f\\""') == ["urn:ngsi-ld:Label:l2"]


def test_q_on_dataset_instances(hub):
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Multi:m1", "type": "Multi",
                               "v": [prop(1), prop(50, datasetId="urn:ngsi-ld:ds:x")]})[0] == 201
    assert query(hub, type="Multi", q="v==50") == ["urn:ngsi-ld:Multi:m1"]
    assert query(hub, type="Multi", q="v.datasetId==\"urn:ngsi-ld:ds:x\"") == \
        ["urn:ngsi-ld:Multi:m1"]


def test_q_modified_at(hub):
    st, _, b = hub.get(ENTITIES + "?type=Sensor&options=sysAttrs&id=" + S(1))
    ts = b[0]["modifiedAt"]
    assert query(hub, type="Sensor", idPattern="Sensor", q="modifiedAt>=" + ts) != []
    assert query(hub, type="Sensor", q="modifiedAt<1990-01-01T00:00:00Z") == []


def test_q_too_long_400(hub):
    expr = ";".join("temperature==%d" % i for i in range(1000))
    st, _, b = hub.get(ENTITIES + "?" + enc({"type": "Sensor", "q": expr}))
    assert_problem(st, b, 400, "BadRequestData")


def test_q_deep_parentheses_400(hub):
    expr = "(" * 100 + "temperature==1" + ")" * 100
    st, _, b = hub.get(ENTITIES + "?" + enc({"type": "Sensor", "q": expr}))
    assert_problem(st, b, 400, "BadRequestData")


def test_follow_next_links(hub):
    """Link rel=next carries the whole query: following it pages through
    every match, each once."""
    ents = [{"id": "urn:ngsi-ld:Pager:%02d" % i, "type": "Pager", "n": {"type": "Property", "value": i}}
            for i in range(23)]
    st, _, _ = hub.post("/ngsi-ld/v1/entityOperations/upsert", ents)
    assert st in (201, 204), hub.last_text
    path = "/ngsi-ld/v1/entities?type=Pager&q=n%3E=3&limit=5"
    seen, pages = [], 0
    while path:
        st, h, b = hub.get(path)
        assert st == 200, hub.last_text
        seen += [e["id"] for e in b]
        pages += 1
        nxt = [l for l in h.get("link", "").split(", ") if 'rel="next"' in l]
        path = nxt[0][nxt[0].index("<") + 1:nxt[0].index(">")] if nxt else None
        assert pages < 10
    assert seen == ["urn:ngsi-ld:Pager:%02d" % i for i in range(3, 23)]
    assert pages == 4


def test_id_pattern_that_could_blow_up_is_refused(hub):
    """A back-reference or stacked repetition could make the regex engine
    run for minutes: refused with 400 before it runs."""
    for pat in (r"(.*)(.*)\2\1c", "a**", "(a{200}){200}"):
        st, _, b = hub.get(ENTITIES + "?" + enc({"type": "T", "idPattern": pat}))
        assert_problem(st, b, 400, "BadRequestData")
    st, _, b = hub.post("/ngsi-ld/v1/entityOperations/query",
                        {"type": "Query", "entities": [{"idPattern": r"(.*)\1"}]})
    assert_problem(st, b, 400, "BadRequestData")
    st, _, b = hub.post("/ngsi-ld/v1/subscriptions",
                        {"type": "Subscription", "entities": [{"type": "T", "idPattern": r"(.*)\1"}],
                         "notification": {"endpoint": {"uri": "http://127.0.0.1:9/x"}}})
    assert_problem(st, b, 400, "BadRequestData")


def test_scopeq(hub):
    """scopeQ (GS CIM 009 4.19): /a exactly, /a/# a and below, + one level,
    ',' OR, ';' AND; on GET /entities and POST /entityOperations/query."""
    t = "scopes"
    ents = [{"id": "urn:ngsi-ld:Lamp:s%d" % i, "type": "Lamp", "scope": sc}
            for i, sc in enumerate(["/Amsterdam", "/Amsterdam/Centrum", "/Amsterdam/Noord/Buiksloot",
                                    ["/Delft", "/Pilots/Light"], "/Utrecht"])]
    st, _, _ = hub.post("/ngsi-ld/v1/entityOperations/create", ents, tenant=t)
    assert st == 201, hub.last_text
    hub.post(ENTITIES, {"id": "urn:ngsi-ld:Lamp:noscope", "type": "Lamp"}, tenant=t)

    def q(scope, **extra):
        st, _, b = hub.get(ENTITIES + "?" + enc(dict({"scopeQ": scope}, **extra)), tenant=t)
        assert st == 200, hub.last_text
        return sorted(e["id"].rsplit(":", 1)[1] for e in b)
    assert q("/Amsterdam") == ["s0"]
    assert q("/Amsterdam/#") == ["s0", "s1", "s2"]
    assert q("/Amsterdam/+") == ["s1"]
    assert q("/Amsterdam/+/+") == ["s2"]
    assert q("/Delft,/Utrecht") == ["s3", "s4"]
    assert q("/Delft;/Pilots/Light") == ["s3"]
    assert q("/Delft;/Utrecht") == []
    assert q("/Amsterdam/#", type="Lamp") == ["s0", "s1", "s2"]
    st, _, b = hub.post("/ngsi-ld/v1/entityOperations/query",
                        {"type": "Query", "entities": [{"type": "Lamp"}], "scopeQ": "/Pilots/#"},
                        tenant=t)
    assert st == 200 and [e["id"] for e in b] == ["urn:ngsi-ld:Lamp:s3"], hub.last_text
    for bad in ("Amsterdam", "/a//b", "/a;", "(/a"):
        st, _, b = hub.get(ENTITIES + "?" + enc({"scopeQ": bad}), tenant=t)
        assert_problem(st, b, 400, "BadRequestData")
