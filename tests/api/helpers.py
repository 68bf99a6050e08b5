"""
helpers.py - shared constants and assertions for the API suite (imported by
conftest.py and the test files; no fixtures here).
"""
import json
import math
import os
import re
import urllib.parse

BINARY = os.environ.get("PL_BINARY", "/work/main/build/release/pilotlight")
FIXTURES = os.environ.get("PL_FIXTURES", "/work/shared/fixtures")
SANITIZE = os.environ.get("PL_SANITIZE") == "1"
SLOW = 3 if SANITIZE else 1

BASE = "/ngsi-ld/v1"
ENTITIES = BASE + "/entities"
ERR_NS = "https://uri.etsi.org/ngsi-ld/errors/"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
CORE_UNVERSIONED = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
CORE_V13 = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.3.jsonld"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
LINK_REL = "http://www.w3.org/ns/json-ld#context"
SDM_LIGHT = "https://smartdatamodels.org/dataModel.Streetlighting/"
SDM_ENV = "https://smartdatamodels.org/dataModel.Environment/"
SDM_TRANS = "https://smartdatamodels.org/dataModel.Transportation/"
SDM_DEVICE = "https://smartdatamodels.org/dataModel.Device/"

ISO8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

FIXTURE_NAMES = ("streetlight", "crowdflow", "airquality", "device")


def load_fixture_entities(context_port):
    """name -> entity dict from entities/*.jsonld with {CONTEXT_PORT} set."""
    out = {}
    for name in FIXTURE_NAMES:
        with open(os.path.join(FIXTURES, "entities", name + ".jsonld")) as f:
            text = f.read().replace("{CONTEXT_PORT}", str(context_port))
        out[name] = json.loads(text)
    return out


def link(url):
    """Headers carrying url as the JSON-LD context Link."""
    return {"Link": '<%s>; rel="%s"; type="application/ld+json"' % (url, LINK_REL)}


def link_context_url(headers):
    """The context URL of a response's Link header, or None."""
    v = headers.get("link")
    if not v:
        return None
    for part in v.split(","):
        m = re.match(r'\s*<([^>]*)>(.*)$', part)
        if m and LINK_REL in m.group(2):
            return m.group(1)
    return None


def assert_problem(status, body, expected_status, expected_type_suffix):
    """The response is ProblemDetails of the given status and NGSI-LD type."""
    assert status == expected_status, "status %s, body %r" % (status, body)
    assert isinstance(body, dict), "error body is not a JSON object: %r" % (body,)
    assert body.get("type") == ERR_NS + expected_type_suffix, body
    assert isinstance(body.get("title"), str) and body["title"], body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    if "status" in body:
        assert body["status"] == expected_status, body


def q(params):
    """URL-encode query parameters (a dict or list of pairs)."""
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe=",")


def eid(kind, n):
    return "urn:ngsi-ld:%s:%s" % (kind, n)


def prop(value, **extra):
    d = {"type": "Property", "value": value}
    d.update(extra)
    return d


def rel(obj, **extra):
    d = {"type": "Relationship", "object": obj}
    d.update(extra)
    return d


def geo(gtype, coords):
    return {"type": "GeoProperty", "value": {"type": gtype, "coordinates": coords}}


def point(lon, lat):
    return geo("Point", [lon, lat])


def haversine(lon1, lat1, lon2, lat2):
    """Great-circle distance in metres (mean Earth radius 6371008.8 m)."""
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def ids_of(body):
    assert isinstance(body, list), body
    return [e["id"] for e in body]


def check_iso(ts):
    assert isinstance(ts, str) and ISO8601.match(ts), "not ISO 8601: %r" % (ts,)


def aggregate(values, method):
    """method over values, computed here, not by the server (test_17,
    test_20): what GS CIM 009 4.5.19 makes of them: numbers as they are,
    booleans as 1/0, arrays by their length; strings and typed literals
    ({"@type": "DateTime", "@value": ...}) only for min/max, in text order;
    anything else only counts. Sums with math.fsum."""
    def num(v):
        if isinstance(v, bool):
            return 1 if v else 0
        if isinstance(v, (int, float)):
            return v
        if isinstance(v, list):
            return len(v)
        return None

    def text(v):
        if isinstance(v, str):
            return v
        if isinstance(v, dict) and isinstance(v.get("@value"), str):
            return v["@value"]
        return None

    nums = [num(v) for v in values if num(v) is not None]
    texts = [text(v) for v in values if text(v) is not None]
    if method == "totalCount":
        return len(values)
    if method == "distinctCount":
        return len(set(json.dumps(v, sort_keys=True) for v in values))
    if not nums and texts and method in ("min", "max"):
        return min(texts) if method == "min" else max(texts)
    if not nums:
        return None
    if method == "sum":
        return math.fsum(nums)
    if method == "avg":
        return math.fsum(nums) / len(nums)
    if method == "min":
        return min(nums)
    if method == "max":
        return max(nums)
    if method == "sumsq":
        return math.fsum(v * v for v in nums)
    if method == "stddev":
        m = math.fsum(nums) / len(nums)
        return math.sqrt(math.fsum((v - m) ** 2 for v in nums) / len(nums))
    raise ValueError(method)
