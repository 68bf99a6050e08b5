"""05 - geo-queries (GS CIM 009 4.10, 5.7.2): near with max/min distance
(expected sets computed here with haversine), within, intersects, disjoint,
contains, equals, another geoproperty, invalid input."""
import json

import pytest

from helpers import ENTITIES, assert_problem, geo, haversine, ids_of, point, prop, q as enc

CENTER = (4.8897, 52.3731)
SPOTS = {
    "p0": (4.8897, 52.3731),
    "p1": (4.8950, 52.3731),
    "p2": (4.8897, 52.3800),
    "p3": (4.9100, 52.3731),
    "p4": (4.8700, 52.3600),
    "p5": (4.9500, 52.4000),
    "p6": (4.8897, 52.3650),
}
BOX = [[[4.880, 52.368], [4.900, 52.368], [4.900, 52.378], [4.880, 52.378], [4.880, 52.368]]]
ZONE = [[[4.885, 52.370], [4.895, 52.370], [4.895, 52.376], [4.885, 52.376], [4.885, 52.370]]]


def sid(name):
    return "urn:ngsi-ld:Spot:" + name


@pytest.fixture(scope="module", autouse=True)
def data(hub):
    ents = [{"id": sid(k), "type": "Spot", "location": point(*v), "n": prop(i)}
            for i, (k, v) in enumerate(SPOTS.items())]
    ents += [
        {"id": "urn:ngsi-ld:Path:l1", "type": "Path",
         "location": geo("LineString", [[4.870, 52.373], [4.885, 52.373]])},
        {"id": "urn:ngsi-ld:Path:l2", "type": "Path",
         "location": geo("LineString", [[4.950, 52.400], [4.960, 52.410]])},
        {"id": "urn:ngsi-ld:Zone:z1", "type": "Zone", "location": geo("Polygon", ZONE)},
        {"id": "urn:ngsi-ld:Camera:c1", "type": "Camera", "location": point(5.5, 53.0),
         "observationSpace": point(*CENTER)},
    ]
    for e in ents:
        st, _, _ = hub.post(ENTITIES, e)
        assert st == 201, hub.last_text


def geoq(hub, georel, geometry, coords, type_="Spot,Path,Zone", **extra):
    params = {"type": type_, "georel": georel, "geometry": geometry,
              "coordinates": json.dumps(coords, separators=(",", ":")), "limit": 1000}
    params.update(extra)
    st, _, b = hub.get(ENTITIES + "?" + enc(params))
    assert st == 200, "%s %s -> %s %s" % (georel, coords, st, hub.last_text)
    return sorted(ids_of(b))


def spots_by_distance(pred):
    out = []
    for k, (lon, lat) in SPOTS.items():
        if pred(haversine(CENTER[0], CENTER[1], lon, lat)):
            out.append(sid(k))
    return sorted(out)


@pytest.mark.parametrize("dist", [500, 1000, 2500, 10000])
def test_near_max_distance(hub, dist):
    for lon, lat in SPOTS.values():  # the data keeps clear of the thresholds
        assert abs(haversine(CENTER[0], CENTER[1], lon, lat) - dist) > 50
    expected = spots_by_distance(lambda d: d <= dist)
    got = geoq(hub, "near;maxDistance==%d" % dist, "Point", list(CENTER), type_="Spot")
    assert got == expected


@pytest.mark.parametrize("dist", [500, 1000, 2500])
def test_near_min_distance(hub, dist):
    expected = spots_by_distance(lambda d: d >= dist)
    got = geoq(hub, "near;minDistance==%d" % dist, "Point", list(CENTER), type_="Spot")
    assert got == expected


def test_near_with_q(hub):
    got = geoq(hub, "near;maxDistance==2500", "Point", list(CENTER), type_="Spot", q="n>=2")
    assert got == [s for s in spots_by_distance(lambda d: d <= 2500)
                   if int(s[-1]) >= 2]


def test_within_polygon(hub):
    assert geoq(hub, "within", "Polygon", BOX) == [
        sid("p0"), sid("p1"), "urn:ngsi-ld:Zone:z1"]


def test_intersects_polygon(hub):
    assert geoq(hub, "intersects", "Polygon", BOX) == sorted([
        sid("p0"), sid("p1"), "urn:ngsi-ld:Zone:z1", "urn:ngsi-ld:Path:l1"])


def test_disjoint_polygon(hub):
    assert geoq(hub, "disjoint", "Polygon", BOX) == sorted(
        [sid(k) for k in ("p2", "p3", "p4", "p5", "p6")] + ["urn:ngsi-ld:Path:l2"])


def test_contains_point(hub):
    assert geoq(hub, "contains", "Point", [4.89, 52.374]) == ["urn:ngsi-ld:Zone:z1"]


def test_equals_point(hub):
    assert geoq(hub, "equals", "Point", list(SPOTS["p1"])) == [sid("p1")]


def test_equals_polygon(hub):
    assert geoq(hub, "equals", "Polygon", ZONE) == ["urn:ngsi-ld:Zone:z1"]


def test_geo_without_type(hub):
    st, _, b = hub.get(ENTITIES + "?" + enc({
        "georel": "near;maxDistance==10", "geometry": "Point",
        "coordinates": json.dumps(list(SPOTS["p3"]))}))
    assert st == 200, hub.last_text
    assert ids_of(b) == [sid("p3")]


def test_other_geoproperty(hub):
    got = geoq(hub, "near;maxDistance==100", "Point", list(CENTER), type_="Camera",
               geoproperty="observationSpace")
    assert got == ["urn:ngsi-ld:Camera:c1"]
    assert geoq(hub, "near;maxDistance==100", "Point", list(CENTER), type_="Camera") == []


def test_post_query_geoq(hub):
    body = {"type": "Query", "entities": [{"type": "Spot"}],
            "geoQ": {"georel": "within", "geometry": "Polygon", "coordinates": BOX}}
    st, _, b = hub.post("/ngsi-ld/v1/entityOperations/query", body)
    assert st == 200, hub.last_text
    assert sorted(ids_of(b)) == [sid("p0"), sid("p1")]


@pytest.mark.parametrize("params", [
    {"georel": "near;maxDistance==100", "geometry": "Point", "coordinates": "[200,95]"},
    {"georel": "near;maxDistance==100", "geometry": "Point", "coordinates": "[4.8"},
    {"georel": "near;maxDistance==100", "geometry": "Point", "coordinates": "[4.8]"},
    {"georel": "near;maxDistance==abc", "geometry": "Point", "coordinates": "[4.8,52.3]"},
    {"georel": "nearby", "geometry": "Point", "coordinates": "[4.8,52.3]"},
    {"georel": "within", "geometry": "Hexagon", "coordinates": "[4.8,52.3]"},
    {"georel": "within", "geometry": "Polygon",
     "coordinates": "[[[4.8,52.3],[4.9,52.3],[4.9,52.4]]]"},
    {"georel": "within", "geometry": "Polygon"},
    {"geometry": "Point", "coordinates": "[4.8,52.3]"},
])
def test_bad_geo_query_400(hub, params):
    p = {"type": "Spot"}
    p.update(params)
    st, _, b = hub.get(ENTITIES + "?" + enc(p))
    assert_problem(st, b, 400, "BadRequestData")


@pytest.mark.parametrize("bad", [
    {"type": "Point", "coordinates": [181, 52]},
    {"type": "Point", "coordinates": [4.8, -91]},
    {"type": "Point", "coordinates": "4.8,52"},
    {"type": "Polygon", "coordinates": [[[4.8, 52.3], [4.9, 52.3], [4.9, 52.4], [4.7, 52.0]]]},
    {"type": "LineString", "coordinates": [[4.8, 52.3]]},
    {"type": "Circle", "coordinates": [4.8, 52.3]},
])
def test_bad_geoproperty_on_create_400(hub, bad):
    st, _, b = hub.post(ENTITIES, {"id": "urn:ngsi-ld:Spot:bad", "type": "Spot",
                                   "location": {"type": "GeoProperty", "value": bad}})
    assert_problem(st, b, 400, "BadRequestData")


def test_near_results_nearest_first_and_paged(hub):
    """near around a Point answers nearest first; pages follow that order."""
    params = {"type": "Spot", "georel": "near;maxDistance==5000", "geometry": "Point",
              "coordinates": "[%s,%s]" % (CENTER[0] + 0.001, CENTER[1])}
    st, _, b = hub.get(ENTITIES + "?" + enc(dict(params, limit=100)))
    assert st == 200, hub.last_text
    got = ids_of(b)
    dist = {sid(k): haversine(CENTER[0] + 0.001, CENTER[1], *v) for k, v in SPOTS.items()}
    want = sorted((k for k in dist if dist[k] <= 5000), key=lambda k: dist[k])
    assert got == want
    pages = []
    for off in range(0, len(want), 2):
        st, _, b = hub.get(ENTITIES + "?" + enc(dict(params, limit=2, offset=off)))
        assert st == 200
        pages += ids_of(b)
    assert pages == want
    st, h, b = hub.get(ENTITIES + "?" + enc(dict(params, limit=1, count="true")))
    assert h["ngsild-results-count"] == str(len(want)) and ids_of(b) == want[:1]


def test_index_follows_location_writes(hub):
    """The spatial index follows every kind of write to location, and a
    write that repeats the same location (as a sensor reporting its fixed
    position does) leaves the entity where it is."""
    mid = "urn:ngsi-ld:Mover:m1"
    far, near_a, near_b = (6.0, 51.0), (4.30, 52.00), (4.40, 52.10)

    def found_at(pt):
        return mid in geoq(hub, "near;maxDistance==200", "Point", list(pt), type_="Mover")

    st, _, _ = hub.post(ENTITIES, {"id": mid, "type": "Mover", "location": point(*far),
                                   "n": prop(0)})
    assert st == 201, hub.last_text
    assert found_at(far) and not found_at(near_a)
    # PATCH /attrs with a new location
    st, _, _ = hub.patch(ENTITIES + "/" + mid + "/attrs", {"location": point(*near_a)})
    assert st == 204, hub.last_text
    assert found_at(near_a) and not found_at(far)
    # the same location again, with another attribute: still there
    st, _, _ = hub.patch(ENTITIES + "/" + mid + "/attrs",
                         {"location": point(*near_a), "n": prop(1)})
    assert st == 204, hub.last_text
    assert found_at(near_a)
    # batch upsert (update) to another place
    st, _, _ = hub.post("/ngsi-ld/v1/entityOperations/upsert?options=update",
                        [{"id": mid, "type": "Mover", "location": point(*near_b)}])
    assert st == 204, hub.last_text
    assert found_at(near_b) and not found_at(near_a)
    # attribute PATCH of location, then its deletion
    st, _, _ = hub.patch(ENTITIES + "/" + mid + "/attrs/location", point(*far))
    assert st == 204, hub.last_text
    assert found_at(far) and not found_at(near_b)
    st, _, _ = hub.delete(ENTITIES + "/" + mid + "/attrs/location")
    assert st == 204, hub.last_text
    assert not found_at(far)


def test_index_follows_replaces(hub):
    """Replaces (PUT, batch upsert) keep the spatial index right whether they
    repeat the location (the index is then not touched), move it, drop it
    or bring it back."""
    mid = "urn:ngsi-ld:Mover:r1"
    a, b = (4.31, 52.01), (4.41, 52.11)

    def found_at(pt):
        return mid in geoq(hub, "near;maxDistance==200", "Point", list(pt), type_="Mover")

    def replace(loc, n, how):
        body = {"id": mid, "type": "Mover", "n": prop(n)}
        if loc is not None:
            body["location"] = point(*loc)
        if how == "put":
            del body["id"]
            st, _, _ = hub.put(ENTITIES + "/" + mid, body)
        else:
            st, _, _ = hub.post("/ngsi-ld/v1/entityOperations/upsert", [body])
        assert st in (201, 204), hub.last_text

    replace(a, 0, "upsert")
    assert found_at(a) and not found_at(b)
    for n, (loc, how) in enumerate([(a, "upsert"), (a, "put"), (b, "upsert"), (b, "put"),
                                    (None, "upsert"), (None, "put"), (a, "put"),
                                    (None, "put"), (b, "upsert"), (a, "upsert")], 1):
        replace(loc, n, how)
        assert found_at(a) == (loc == a) and found_at(b) == (loc == b), (n, loc, how)


def test_geo_queries_stay_in_their_tenant(hub):
    """Entities at the same place in another tenant are not candidates (the
    spatial index carries the tenant); each tenant sees its own."""
    t = "geo-other"
    assert hub.post(ENTITIES, {"id": sid("p0"), "type": "Spot", "location": point(*CENTER),
                               "n": prop(99)}, tenant=t)[0] == 201
    for georel in ("near;maxDistance==50", "within"):
        geometry, coords = (("Point", list(CENTER)) if georel.startswith("near") else
                            ("Polygon", BOX))
        params = {"type": "Spot", "georel": georel, "geometry": geometry,
                  "coordinates": json.dumps(coords, separators=(",", ":")), "limit": 100,
                  "options": "keyValues"}
        st, _, b = hub.get(ENTITIES + "?" + enc(params), tenant=t)
        assert st == 200, hub.last_text
        assert [(e["id"], e["n"]) for e in b] == [(sid("p0"), 99)], (georel, b)
        st, _, b = hub.get(ENTITIES + "?" + enc(params))
        assert st == 200 and sid("p0") in ids_of(b)
        assert all(e["n"] != 99 for e in b)
