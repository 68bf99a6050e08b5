"""20 - the temporal history under load, as the SQLite backend's chunks (an
entity's writes kept pending in hist_log, then written ~30 at a time and
rewritten when late data overlaps them) see it: long in-order series
read through every kind of window, paging, aggregation, late (out-of-order)
data, many entities written in the same commits, equal timestamps, kill -9
and SIGTERM restarts, instance edits and deletes, and retention.

Every expected answer is computed here from what the test wrote (a model
of each attribute's instances), never copied from the server. Instances of
one observedAt may come in any order (the API orders by time only): the
comparisons check that the answer is in time order and holds exactly the
expected instances (a multiset), which for distinct times is the exact list.
Each test has its own tenant (or its own hub) and entity ids.

test_huge_tie_groups_are_refused_not_cut: a time with more instances than a
page can hold is refused with 403 TooManyResults."""
import calendar
import collections
import datetime
import http.client
import json
import math
import threading
import time

import pytest

from helpers import BASE, ENTITIES, SLOW, aggregate, assert_problem, prop, rel

TEMPORAL = BASE + "/temporal/entities"
UPSERT = BASE + "/entityOperations/upsert"
INSTANCE = "urn:ngsi-ld:attribute:instance:"
SEC = 1000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = calendar.timegm((2026, 5, 1, 0, 0, 0)) * SEC  # the series start here
EPOCH = datetime.datetime(1970, 1, 1)
# ---- time -------------------------------------------------------------------

def iso(ms):
    d = EPOCH + datetime.timedelta(milliseconds=ms)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def parse_iso(text):
    assert text.endswith("Z"), text
    main, _, frac = text[:-1].partition(".")
    d = datetime.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S")
    ms = int((d - EPOCH).total_seconds()) * 1000
    return ms + (int((frac + "000")[:3]) if frac else 0)


# ---- the model: what was written ---------------------------------------------

class Model:
    """attr -> list of (t_ms, instance dict as sent, datasetId or None).
    A deletion record (value urn:ngsi-ld:null, deletedAt, no observedAt) is
    timed by its deletedAt, as the history answers it."""

    def __init__(self):
        self.attrs = collections.defaultdict(list)

    def add(self, attr, inst):
        t = inst["observedAt"] if "observedAt" in inst else inst["deletedAt"]
        self.attrs[attr].append((parse_iso(t), inst, inst.get("datasetId")))

    def add_body(self, body):
        for name, v in body.items():
            if name in ("id", "type", "@context"):
                continue
            for inst in (v if isinstance(v, list) else [v]):
                if "observedAt" in inst:
                    self.add(name, inst)

    def series(self, attr, ds=None, values_only=False):
        """(value, t) of the attribute's instances of one datasetId, time
        order; values_only: without deletion records (what aggregations see)."""
        out = [(value_of(i), t) for t, i, d in self.attrs.get(attr, [])
               if d == ds and not (values_only and "deletedAt" in i)]
        return sorted(out, key=lambda p: p[1])

    def series_all(self, attr):
        """(value, t, datasetId) of every instance of the attribute, time order."""
        out = [(value_of(i), t, d) for t, i, d in self.attrs.get(attr, [])]
        return sorted(out, key=lambda p: p[1])


def value_of(inst):
    for k in ("value", "object", "languageMap"):
        if k in inst:
            return inst[k]
    raise AssertionError("no value in %r" % (inst,))


def canon(v):
    """A sortable key equal for equal JSON values (21 and 21.0 alike, at
    any depth)."""
    def norm(x):
        if isinstance(x, bool) or x is None or isinstance(x, str):
            return x
        if isinstance(x, (int, float)):
            return float(x)
        if isinstance(x, list):
            return [norm(y) for y in x]
        return {k: norm(y) for k, y in x.items()}
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        return ("n", float(v))
    return ("j", json.dumps(norm(v), sort_keys=True))


def without_sys(x):
    """An instance without createdAt / modifiedAt (at any depth)."""
    if isinstance(x, dict):
        return {k: without_sys(v) for k, v in x.items() if k not in ("createdAt", "modifiedAt")}
    return x


def assert_series(got, want, what=""):
    """got (the server's (value, t) list) is in time order and holds
    exactly the instances of want, each once."""
    times = [t for _, t in got]
    bad = [k for k in range(1, len(times)) if times[k] < times[k - 1]]
    assert not bad, "%s: out of time order at %s: %s" % (
        what, bad[:3], [(iso(times[k - 1]), iso(times[k])) for k in bad[:3]])
    g = collections.Counter((t, canon(v)) for v, t in got)
    w = collections.Counter((t, canon(v)) for v, t in want)
    if g != w:
        missing = sorted((w - g).elements())
        extra = sorted((g - w).elements())
        raise AssertionError("%s: %d instances, want %d; missing %d %s; extra %d %s" % (
            what, len(got), len(want), len(missing),
            [(iso(t), v) for t, v in missing[:5]], len(extra),
            [(iso(t), v) for t, v in extra[:5]]))


def last_n(series, n):
    """GS CIM 009 lastN as pilotlight answers it: the newest n, and the
    others of the n-th newest's time (a cut never splits one time). The
    tests keep the instances of one time under the store's cap on them
    (2n + 16, see test_huge_tie_groups_are_not_cut_silently)."""
    if n >= len(series):
        return list(series)
    i = len(series) - n
    while i > 0 and series[i - 1][1] == series[i][1]:
        i -= 1
    return series[i:]


def window(series, rel_, a=None, b=None):
    """4.11: before is exclusive, after inclusive, between [a, b)."""
    if rel_ is None:
        return list(series)
    if rel_ == "before":
        return [p for p in series if p[1] < a]
    if rel_ == "after":
        return [p for p in series if p[1] >= a]
    return [p for p in series if a <= p[1] < b]


def window_qs(rel_, a=None, b=None):
    if rel_ is None:
        return ""
    qs = "&timerel=%s&timeAt=%s" % (rel_, iso(a))
    return qs + ("&endTimeAt=" + iso(b) if rel_ == "between" else "")


# ---- reads ------------------------------------------------------------------

def get_ok(h, path, tenant, ok=(200,)):
    st, hd, b = h.get(path, tenant=tenant)
    assert st in ok, "GET %s: %s %s" % (path, st, h.last_text[:2000])
    return st, hd, b


def groups(b, attr):
    """The attribute's member of an answer as a list (one per datasetId)."""
    v = b.get(attr)
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def tvalues(h, tenant, eid, qs="", ok=(200,)):
    """temporalValues: {(attr, datasetId): [(value, t)]}, plus status and headers."""
    st, hd, b = get_ok(h, TEMPORAL + "/" + eid + "?options=temporalValues" + qs, tenant, ok)
    return parse_tvalues(b), st, hd


def parse_tvalues(b):
    out = {}
    for name, v in b.items():
        if name in ("id", "type", "@context"):
            continue
        for g in (v if isinstance(v, list) else [v]):
            key = (name, g.get("datasetId"))
            assert key not in out, (key, b)
            vals = g.get("values", g.get("objects"))
            assert isinstance(vals, list), g
            out[key] = [(x[0], parse_iso(x[1])) for x in vals]
    return out


def normalized(h, tenant, eid, qs=""):
    """The normalized answer: {attr: [instance]} (one list for every datasetId)."""
    st, _, b = get_ok(h, TEMPORAL + "/" + eid + ("?" + qs.lstrip("&") if qs else ""), tenant)
    out = {}
    for name, v in b.items():
        if name in ("id", "type", "@context"):
            continue
        out[name] = v if isinstance(v, list) else [v]
    return b, out


def by_time_and_id(inst):
    """A normalized answer's {attr: [instance]} with the instances of one
    time sorted by instanceId (their order is not specified)."""
    def key(i):
        return (parse_iso(i.get("observedAt") or i["deletedAt"]), iid_num(i))
    return {a: sorted(v, key=key) for a, v in inst.items()}


def iid_num(inst):
    i = inst["instanceId"]
    assert isinstance(i, str) and i.startswith(INSTANCE), inst
    return int(i[len(INSTANCE):])


def check_against_model(h, tenant, eid, model, qs="", rel_=None, a=None, b=None, n=None,
                        attrs=None, what=""):
    """The temporalValues answer (qs: the query as sent) equals the model's
    window (and lastN) for every attribute and datasetId of the model."""
    got, _, _ = tvalues(h, tenant, eid, qs)
    keys = set()
    for attr, insts in model.attrs.items():
        if attrs is not None and attr not in attrs:
            continue
        # lastN counts an attribute's instances of every datasetId together
        kept = window(model.series_all(attr), rel_, a, b)
        if n is not None:
            kept = last_n(kept, n)
        for ds in set(d for _, _, d in insts):
            want = [(v, t) for v, t, d in kept if d == ds]
            if want:
                keys.add((attr, ds))
                assert_series(got.get((attr, ds), []), want,
                              "%s %s %s%s" % (what, eid, attr, "/" + ds if ds else "") + qs)
    assert set(got) == keys, "%s%s: attributes %s, want %s" % (what, qs, sorted(got, key=str),
                                                                sorted(keys, key=str))
    return got


# ---- aggregation ------------------------------------------------------------



AGGR = ["totalCount", "sum", "avg", "min", "max", "stddev"]


def agg_close(method, got, want, values):
    """The server's figure for values (one period) equals ours: counts,
    min and max exactly, sums and averages within rounding of the terms'
    magnitude, stddev within what its cancellation may lose."""
    if want is None or isinstance(want, str) or method in ("totalCount", "min", "max"):
        return got == want
    if got is None:
        return False
    mag = max([abs(x) for x in (aggregate([v], "sum") for v in values) if x is not None] +
              [1.0])
    tol = {"sum": 1e-11 * len(values), "avg": 1e-11, "stddev": 1e-6}[method] * mag
    return abs(got - want) <= tol


def periods(series, start, end, period):
    """[(values, a, z)] as pilotlight's aggregation lists them: from start
    (timeAt, or the first instance) every period to end (the window's end,
    clipped), or, open above, up to the one holding the last instance."""
    if start is None:
        if not series:
            return []
        start = series[0][1]
    out = []
    a = start
    last = series[-1][1] if series else None
    while (a < end) if end is not None else (last is not None and a <= last):
        z = a + period
        if end is not None:
            z = min(z, end)
        out.append(([v for v, t in series if a <= t < z], a, z))
        a += period
    return out


def check_aggregation(h, tenant, eid, model, attr, period, rel_, a=None, b=None, what="",
                      ds=None):
    """The aggregation of attr's instances (of datasetId ds) in the window
    per period, every method, against the model."""
    qs = ("?options=aggregatedValues&aggrMethods=" + ",".join(AGGR) + "&attrs=" + attr +
          "&aggrPeriodDuration=" + period[0] + window_qs(rel_, a, b))
    st, _, body = get_ok(h, TEMPORAL + "/" + eid + qs, tenant)
    series = window(model.series(attr, ds, values_only=True), rel_, a, b)
    start = a if rel_ in ("after", "between") else None
    end = b if rel_ == "between" else a if rel_ == "before" else None
    want = periods(series, start, end, period[1])
    if not series and rel_ is None:
        assert attr not in body, body
        return
    got = [g for g in groups(body, attr) if g.get("datasetId") == ds]
    assert len(got) == 1, (ds, body.get(attr))
    got = got[0]
    for method in AGGR:
        rows = got[method]
        assert [(parse_iso(r[1]), parse_iso(r[2])) for r in rows] == \
               [(x, y) for _, x, y in want], "%s %s %s%s: periods %s" % (
                   what, eid, method, qs, [(r[1], r[2]) for r in rows][:6])
        for r, (vals, x, y) in zip(rows, want):
            w = aggregate(vals, method) if vals else 0 if method == "totalCount" else None
            assert agg_close(method, r[0], w, vals), \
                "%s %s %s%s period %s-%s: %r, want %r (%d values)" % (
                what, eid, method, qs, iso(x), iso(y), r[0], w, len(vals))
    return body


# ---- writing a long series ----------------------------------------------------

def t_of(i):
    """The i-th write's time: a minute apart with some milliseconds, and a
    3-day gap after the 120th."""
    return T0 + i * MIN + (i % 4) * 250 + (3 * DAY if i >= 120 else 0)


ODD_TEMPS = {5: 0.1 + 0.2, 17: 1 / 3, 33: -2 / 7, 71: 1e-9, 99: 12345.678901234567,
             130: -1e10 + 0.5, 140: 21.5}


def temp_of(i):
    return ODD_TEMPS.get(i, (i * 37 % 201 - 100) / 4)


def hum_of(i):
    return -(i * 1.5) if i % 13 == 0 else 40 + i * 0.1


def note_of(i, t):
    """A sparse attribute of every shape an instance may have."""
    k = (i // 7) % 8
    if k == 0:
        return prop("state %d" % i, observedAt=t)
    if k == 1:
        return prop(i * 0.5, observedAt=t, unitCode="CEL")
    if k == 2:
        return prop(i % 2 == 0, observedAt=t)
    if k == 3:
        return prop({"n": i, "list": [1, "two", None], "s": "x\"y"}, observedAt=t)
    if k == 4:
        return prop([i, i + 1, "z"], observedAt=t)
    if k == 5:
        return prop(i, observedAt=t, unitCode="MTR", accuracy=prop(0.25),
                    source=rel("urn:ngsi-ld:Device:%d" % i))
    if k == 6:
        return prop("long %d " % i + "y" * 400, observedAt=t)
    return prop("ünïcødé %d \\ \n" % i, observedAt=t)


def series_attrs(i):
    t = iso(t_of(i))
    attrs = {"temp": prop(temp_of(i), observedAt=t),
             "hum": prop(hum_of(i), observedAt=t, unitCode="P1")}
    if i % 7 == 4:
        attrs["note"] = note_of(i, t)
    return attrs


def write_one(h, tenant, eid, etype, attrs, way):
    """One write of attrs to an existing entity by one of the write paths."""
    if way == 0:
        st, _, b = h.patch(ENTITIES + "/" + eid + "/attrs", attrs, tenant=tenant)
    elif way == 1:
        st, _, b = h.post(ENTITIES + "/" + eid + "/attrs", attrs, tenant=tenant)
    else:
        body = {"id": eid, "type": etype}
        body.update(attrs)
        st, _, b = h.post(UPSERT + "?options=update", [body], tenant=tenant)
    assert st == 204, "write %d of %s: %s %s" % (way, sorted(attrs), st, h.last_text)


def write_series(h, tenant, eid, n=150, check_every=10, etype="Meter"):
    """n writes of temp and hum (and every 7th a note), each a request of
    its own (PATCH, POST attrs or upsert in turn), one minute apart; every
    check_every writes the newest instances are read back."""
    model = Model()
    for i in range(n):
        attrs = series_attrs(i)
        if i == 0:
            body = {"id": eid, "type": etype}
            body.update(attrs)
            st, _, _ = h.post(ENTITIES, body, tenant=tenant)
            assert st == 201, h.last_text
        else:
            write_one(h, tenant, eid, etype, attrs, i % 3)
        for k, v in attrs.items():
            model.add(k, v)
        if check_every and i % check_every == check_every - 1:
            got, _, _ = tvalues(h, tenant, eid, "&attrs=temp&lastN=2")
            assert_series(got[("temp", None)], last_n(model.series("temp"), 2),
                          "lastN=2 after write %d" % i)
    return model


# ---- 1. a long in-order series ---------------------------------------------

def test_long_series_every_window(hub):
    tenant, eid = "h20-series", "urn:ngsi-ld:Meter:series"
    started = iso(int(time.time() - 2) * SEC)
    model = write_series(hub, tenant, eid)
    n = 150
    times = [t_of(i) for i in range(n)]

    # the normalized answer: every instance as written, in time order, each
    # with its own instanceId; a second read gives the very same answer
    body, inst = normalized(hub, tenant, eid)
    assert body["id"] == eid and body["type"] == "Meter"
    assert set(inst) == {"temp", "hum", "note"}
    for attr in ("temp", "hum", "note"):
        want = sorted(model.attrs[attr], key=lambda x: x[0])
        got = inst[attr]
        assert len(got) == len(want), (attr, len(got), len(want))
        for g, (t, sent, _) in zip(got, want):
            assert {k: v for k, v in g.items() if k != "instanceId"} == sent, (attr, g, sent)
    ids = [iid_num(i) for attr in inst for i in inst[attr]]
    assert len(ids) == len(set(ids)) == 2 * n + len(model.attrs["note"])
    st, _, again = get_ok(hub, TEMPORAL + "/" + eid, tenant)
    assert again == body
    # with sysAttrs: the same instances, each with its createdAt and modifiedAt
    _, sys1 = normalized(hub, tenant, eid, "options=sysAttrs")
    for attr in inst:
        assert [without_sys(i) for i in sys1[attr]] == inst[attr]
        for i in sys1[attr]:
            assert i["createdAt"] >= started and i["modifiedAt"] >= i["createdAt"], i
    assert normalized(hub, tenant, eid, "options=sysAttrs")[1] == sys1
    # timeproperty=modifiedAt reads every instance too
    got, _, _ = tvalues(hub, tenant, eid, "&timeproperty=modifiedAt&timerel=after&timeAt=" +
                        started)
    for attr in inst:
        assert sorted(canon(v) for v, _ in got[(attr, None)]) == \
            sorted(canon(v) for v, _ in model.series(attr)), attr

    check_against_model(hub, tenant, eid, model, what="whole")
    # windows: on an instance, between two, before the first, after the last,
    # inside the 3-day gap, and a sweep of bounds at many places
    wins = [("between", times[10], times[20]), ("between", times[10] + 1, times[20] + 1),
            ("between", times[10] - 30 * SEC, times[20] - 30 * SEC),
            ("between", T0 - DAY, times[3]), ("between", T0 - DAY, T0 - HOUR),
            ("between", times[-1] + 1, times[-1] + DAY), ("between", times[-1], times[-1] + 1),
            ("between", times[119] + HOUR, times[120] - HOUR),
            ("between", times[115] + 1, times[125]),
            ("between", T0 - DAY, times[-1] + DAY)]
    for s in range(0, n, 11):
        e = min(n - 1, s + 3 + (s * 7) % 37)
        wins.append(("between", times[s] + (s % 3) * 20 * SEC, times[e] + (s % 2)))
    for k in (0, 1, 37, 74, 75, 119, 120, 148, 149):
        wins += [("before", times[k], None), ("after", times[k], None),
                 ("before", times[k] + 1, None), ("after", times[k] + 1, None)]
    for rel_, a, b in wins:
        check_against_model(hub, tenant, eid, model, window_qs(rel_, a, b), rel_, a, b,
                            what="window")
    # lastN, alone and in windows, and for one attribute
    for k in (1, 7, 40, 149, 150, 200):
        check_against_model(hub, tenant, eid, model, "&lastN=%d" % k, n=k, what="lastN")
    check_against_model(hub, tenant, eid, model, "&lastN=7" + window_qs("between", times[30],
                        times[90] + 1), "between", times[30], times[90] + 1, n=7)
    check_against_model(hub, tenant, eid, model, "&lastN=40" + window_qs("before", times[100]),
                        "before", times[100], n=40)
    check_against_model(hub, tenant, eid, model, "&lastN=3" + window_qs("after", times[118]),
                        "after", times[118], n=3)
    check_against_model(hub, tenant, eid, model, "&attrs=hum", attrs={"hum"})
    check_against_model(hub, tenant, eid, model, "&attrs=note&lastN=4", attrs={"note"}, n=4)
    check_against_model(hub, tenant, eid, model, "&attrs=temp,note" +
                        window_qs("between", times[40], times[80]), "between", times[40],
                        times[80], attrs={"temp", "note"})
    # the normalized lastN answer carries the same instanceIds as the whole one
    by_time = {(attr, parse_iso(i["observedAt"])): i for attr in inst for i in inst[attr]}
    _, tail = normalized(hub, tenant, eid, "lastN=40")
    for attr in tail:
        for i in tail[attr]:
            assert by_time[(attr, parse_iso(i["observedAt"]))] == i


# ---- 2. paging forwards and backwards -----------------------------------------

def content_range(hd):
    cr = hd["content-range"]
    assert cr.startswith("date-time "), cr
    rng, _, size = cr[len("date-time "):].rpartition("/")
    a, _, b = rng.partition("Z-")
    return parse_iso(a + "Z"), parse_iso(b), size


def walk_forward(h, tenant, eid, qs, end=None):
    """Pages from the start (timerel=after / between from each page's
    range end): {(attr, ds): [(value, t)]} concatenated, and the pages."""
    out, pages, at = collections.defaultdict(list), 0, None
    while True:
        pages += 1
        assert pages < 200
        if at is None:
            w = window_qs("between", T0 - 400 * DAY, end) if end is not None else ""
        else:
            w = window_qs("between", at, end) if end is not None else window_qs("after", at)
        got, st, hd = tvalues(h, tenant, eid, qs + w, ok=(200, 206))
        for k, v in got.items():
            out[k] += v
        if st == 200:
            assert "content-range" not in hd
            return out, pages
        a, b, size = content_range(hd)
        assert size == "*"
        assert at is None or b > at, (iso(at), hd["content-range"])
        last = max(t for v in got.values() for _, t in v)
        assert b == last + 1, (hd["content-range"], iso(last))  # 1 ms past the last
        at = b


def walk_backward(h, tenant, eid, qs, n, stop_after=None):
    """Pages from the newest (lastN=n, then timerel=before the oldest of
    each page), concatenated oldest first; stop_after: a client that wants
    that many instances (of the first attribute) stops there."""
    out, pages, at = collections.defaultdict(list), 0, None
    while stop_after is None or sum(len(v) for v in out.values()) < stop_after:
        pages += 1
        assert pages < 200
        w = "&lastN=%d" % n + (window_qs("before", at) if at is not None else "")
        got, st, hd = tvalues(h, tenant, eid, qs + w, ok=(200, 206))
        for k, v in got.items():
            out[k] = v + out[k]
        if st == 200:
            assert "content-range" not in hd
            return out, pages
        a, b, size = content_range(hd)
        oldest = min(t for v in got.values() for _, t in v)
        assert b == oldest, (hd["content-range"], iso(oldest))
        assert at is None or b < at
        at = b
    return out, pages


def test_paging_walks_the_whole_history(hub_factory):
    h = hub_factory("--temporal-max-instances", "16")
    tenant, eid = "h20-pages", "urn:ngsi-ld:Meter:pages"
    model = write_series(h, tenant, eid, check_every=0)
    # 20 more temp instances at one time between two writes (a page must not
    # split them), and late ones older than all
    tie = t_of(60) + 30 * SEC
    late = [prop(1000 + k, observedAt=iso(tie)) for k in range(20)]
    late += [prop(-500 - k, observedAt=iso(T0 - (k + 1) * 7 * MIN)) for k in range(5)]
    # and 1 ms after every fifth write: where a page's range ends
    late += [prop(800 + k, observedAt=iso(t_of(k) + 1)) for k in range(0, 150, 5)]
    st, _, _ = h.post(TEMPORAL + "/" + eid + "/attrs", {"temp": late}, tenant=tenant)
    assert st == 204, h.last_text
    for inst in late:
        model.add("temp", inst)

    def want(attr):
        return model.series(attr)

    for attrs in ("temp,hum,note", "temp", "note"):
        qs = "&attrs=" + attrs
        names = attrs.split(",")
        got, pages = walk_forward(h, tenant, eid, qs)
        assert pages >= (len(want(names[0])) // 16) // 2, pages
        assert set(k for k, _ in got) == set(names)
        for a in names:
            assert_series(got[(a, None)], want(a), "forwards " + a)
        got, pages = walk_backward(h, tenant, eid, qs, 10000)
        assert pages > 1
        for a in names:
            assert_series(got[(a, None)], want(a), "backwards " + a)
    # a window walked forwards pages only within it
    times = [t_of(i) for i in range(150)]
    got, _ = walk_forward(h, tenant, eid, "&attrs=temp,note", end=times[130] + 1)
    for a in ("temp", "note"):
        assert_series(got[(a, None)], window(want(a), "before", times[130] + 1), "window " + a)
    # a client after the newest 40 stops once it has them: the newest, nothing skipped
    got, _ = walk_backward(h, tenant, eid, "&attrs=temp", 40, stop_after=40)
    g = got[("temp", None)]
    assert len(g) >= 40
    assert_series(g, want("temp")[-len(g):], "lastN=40 paged")


# ---- 3. aggregation ------------------------------------------------------------

def test_aggregation_over_a_long_series(hub):
    tenant, eid = "h20-aggr", "urn:ngsi-ld:Meter:aggr"
    model = write_series(hub, tenant, eid, check_every=0)
    times = [t_of(i) for i in range(150)]
    for attr in ("temp", "hum"):
        for period in (("PT10M", 10 * MIN), ("PT1H", HOUR), ("PT7M", 7 * MIN)):
            for rel_, a, b in (("between", T0, times[119] + 1),
                               ("between", times[3] + 1234, times[97] + 1),
                               ("between", times[110] - 5 * MIN, times[-1] + 1),
                               ("after", times[13] + 5, None),
                               ("before", times[77] + 1, None)):
                check_aggregation(hub, tenant, eid, model, attr, period, rel_, a, b)
    # the open window: from the first instance to the last one's period
    check_aggregation(hub, tenant, eid, model, "temp", ("PT1H", HOUR), "before",
                      times[119] + 1)
    check_aggregation(hub, tenant, eid, model, "temp", ("P1D", DAY), None)
    # a mixed attribute (strings, booleans, arrays, objects, numbers)
    check_aggregation(hub, tenant, eid, model, "note", ("PT30M", 30 * MIN), "between", T0,
                      times[-1] + 1)
    # no period: one answer for the whole window
    st, _, b = get_ok(hub, TEMPORAL + "/" + eid + "?options=aggregatedValues&attrs=temp,hum"
                      "&aggrMethods=" + ",".join(AGGR) + window_qs("between", times[20],
                                                                    times[140]), tenant)
    for attr in ("temp", "hum"):
        vals = [v for v, _ in window(model.series(attr), "between", times[20], times[140])]
        for m in AGGR:
            assert len(b[attr][m]) == 1
            assert agg_close(m, b[attr][m][0][0], aggregate(vals, m), vals), (attr, m)


# ---- 4. late data ------------------------------------------------------------------

def test_late_data_is_merged_in_time_order(hub):
    tenant, eid = "h20-late", "urn:ngsi-ld:Meter:late"
    model = write_series(hub, tenant, eid, check_every=0)
    times = [t_of(i) for i in range(150)]
    # one by one (the current state takes them too): between two instances,
    # on an existing time, older than all, before 1970, in the 3-day gap
    singles = [times[50] + 30 * SEC, times[60], T0 - 17 * MIN, times[0], times[149] - 1,
               calendar.timegm((1969, 7, 20, 20, 17, 40)) * SEC, times[119] + DAY,
               times[10] + 1, times[10] + 2, times[10] + 1]
    for k, t in enumerate(singles):
        attrs = {"temp": prop(500.5 + k, observedAt=iso(t))}
        if k % 2 == 0:
            attrs["hum"] = prop(-500.25 - k, observedAt=iso(t), unitCode="P1")
        write_one(hub, tenant, eid, "Meter", attrs, k % 3)
        for a, v in attrs.items():
            model.add(a, v)
    check_against_model(hub, tenant, eid, model, what="after single late writes")
    # temporal appends of many old instances at once: on existing times,
    # between them, older than all, and one newer than all
    for rnd in range(3):
        temps, hums = [], []
        for k in range(30):
            pick = (k * 13 + rnd * 5) % 150
            t = {0: times[pick], 1: times[pick] + 17 * SEC + rnd,
                 2: T0 - (rnd * 30 + k + 1) * 11 * MIN}[k % 3]
            temps.append(prop(round(-60 + k * 1.1 + rnd * 100, 6), observedAt=iso(t)))
            if k % 4 == 0:
                hums.append(prop(k + 0.5 + rnd, observedAt=iso(t), unitCode="P1"))
        temps.append(prop(77.7 + rnd, observedAt=iso(times[-1] + (rnd + 1) * MIN)))
        st, _, _ = hub.post(TEMPORAL + "/" + eid + "/attrs", {"temp": temps, "hum": hums},
                            tenant=tenant)
        assert st == 204, hub.last_text
        for inst in temps:
            model.add("temp", inst)
        for inst in hums:
            model.add("hum", inst)
        check_against_model(hub, tenant, eid, model, what="after late round %d" % rnd)
    # and in-order writes go on after them
    for i in range(150, 170):
        attrs = {"temp": prop(temp_of(i), observedAt=iso(t_of(i) + 10 * MIN)),
                 "hum": prop(hum_of(i), observedAt=iso(t_of(i) + 10 * MIN), unitCode="P1")}
        write_one(hub, tenant, eid, "Meter", attrs, i % 3)
        for a, v in attrs.items():
            model.add(a, v)

    allt = sorted(t for t, _, _ in model.attrs["temp"])
    check_against_model(hub, tenant, eid, model, what="whole")
    _, inst = normalized(hub, tenant, eid)
    ids = [iid_num(i) for a in inst for i in inst[a]]
    assert len(ids) == len(set(ids)) == sum(len(v) for v in model.attrs.values())
    for k in (1, 5, 25, 60, 1000):
        check_against_model(hub, tenant, eid, model, "&lastN=%d" % k, n=k, what="lastN")
    for rel_, a, b in (("between", times[9], times[11]), ("between", times[45], times[65]),
                       ("before", T0, None), ("before", T0 - 2 * HOUR, None),
                       ("between", allt[0], allt[5]), ("after", times[148], None),
                       ("between", times[119], times[120]), ("after", times[10] + 1, None)):
        check_against_model(hub, tenant, eid, model, window_qs(rel_, a, b), rel_, a, b,
                            what="window")
        check_against_model(hub, tenant, eid, model, "&lastN=3" + window_qs(rel_, a, b),
                            rel_, a, b, n=3, what="window lastN")
    for attr in ("temp", "hum"):
        check_aggregation(hub, tenant, eid, model, attr, ("PT10M", 10 * MIN), "between",
                          T0 - 12 * HOUR, times[119] + 1, what="late")
        check_aggregation(hub, tenant, eid, model, attr, ("PT1H", HOUR), "between",
                          times[30] + 1, times[-1] + DAY, what="late")
    # the same after a restart, and late data into what the restart left
    assert hub.restart() == 0, hub.stderr_tail()
    assert by_time_and_id(normalized(hub, tenant, eid)[1]) == by_time_and_id(inst)
    temps = [prop(-1000 - k, observedAt=iso(times[k * 7] + 1)) for k in range(20)]
    assert hub.post(TEMPORAL + "/" + eid + "/attrs", {"temp": temps}, tenant=tenant)[0] == 204
    for i in temps:
        model.add("temp", i)
    check_against_model(hub, tenant, eid, model, what="late after restart")
    check_against_model(hub, tenant, eid, model, "&lastN=30", n=30, what="late after restart")
    check_aggregation(hub, tenant, eid, model, "temp", ("PT10M", 10 * MIN), "between",
                      T0 - 12 * HOUR, times[119] + 1, what="late after restart")


# ---- 5. many entities in the same commits -----------------------------------

def test_many_entities_interleaved(hub):
    tenant, etype = "h20-fleet", "Probe"
    n_ent, rounds = 25, 60
    ids = ["urn:ngsi-ld:Probe:%03d" % k for k in range(n_ent)]
    models = {x: Model() for x in ids}
    # entities k % 5 == 0 report no time in rounds 30..34 (nothing recorded)
    def silent(k, j):
        return k % 5 == 0 and 30 <= j < 35

    for j in range(rounds):
        batch = []
        for k, x in enumerate(ids):
            t = iso(T0 + j * MIN + k * 10)
            e = {"id": x, "type": etype,
                 "speed": prop(k * 100 + j, observedAt=t),
                 "level": prop(round(k * 0.5 - j * 0.25, 2), observedAt=t),
                 "location": {"type": "GeoProperty", "observedAt": t, "value": {
                     "type": "Point", "coordinates": [4.0 + j * 0.01, 52.0 + k * 0.01]}}}
            if silent(k, j):
                e["speed"], e["level"] = prop(k * 100 + j), prop(0.0)
                del e["location"]["observedAt"]
            batch.append(e)
            models[x].add_body(e)
        st, _, b = hub.post(UPSERT, batch, tenant=tenant)
        assert st in (201, 204), (j, st, hub.last_text)
        if j % 20 == 19:  # read some back while writing
            k = j % n_ent
            check_against_model(hub, tenant, ids[k], models[ids[k]], "&lastN=2", n=2)
    for x in ids:
        check_against_model(hub, tenant, x, models[x], what="entity")

    def query(qs):
        st, hd, b = get_ok(hub, TEMPORAL + "?type=" + etype + "&options=temporalValues"
                           "&limit=100&count=true" + qs, tenant)
        assert hd["ngsild-results-count"] == str(len(b)), hd
        return {e["id"]: parse_tvalues(e) for e in b}, [e["id"] for e in b]

    # the whole history of every entity in one query
    got, order = query("&timerel=after&timeAt=" + iso(T0))
    assert sorted(order) == ids
    for x in ids:
        for attr in ("speed", "level", "location"):
            assert_series(got[x][(attr, None)], models[x].series(attr), x + " " + attr)
    # a window in which the silent entities have no instance: they are not answered
    a, b = T0 + 30 * MIN, T0 + 35 * MIN
    got, order = query(window_qs("between", a, b))
    assert sorted(order) == [x for k, x in enumerate(ids) if k % 5 != 0]
    for x in order:
        assert_series(got[x][("speed", None)], window(models[x].series("speed"), "between", a,
                                                      b), x)
    # q on the window's instances: larger speeds outside the window do not count
    a, b = T0 + 20 * MIN, T0 + 40 * MIN
    got, order = query("&q=speed>=1145&attrs=speed" + window_qs("between", a, b))
    want = [x for x in ids if any(v >= 1145 for v, _ in
                                  window(models[x].series("speed"), "between", a, b))]
    assert sorted(order) == want and want[0] == "urn:ngsi-ld:Probe:012", order
    # a geo-query on the window's locations (each entity moves east a step a
    # round): k < 10 were in the box in rounds 20..25 only
    box = "[[[4.195,51.9],[4.255,51.9],[4.255,52.095],[4.195,52.095],[4.195,51.9]]]"
    geo_q = "&georel=within&geometry=Polygon&coordinates=" + box + "&attrs=location"
    got, order = query(geo_q + window_qs("between", T0 + 22 * MIN, T0 + 40 * MIN))
    assert sorted(order) == ids[:10], order
    for x in order:
        assert_series(got[x][("location", None)], window(models[x].series("location"),
                      "between", T0 + 22 * MIN, T0 + 40 * MIN), x)
    got, order = query(geo_q + window_qs("between", T0 + 26 * MIN, T0 + 40 * MIN))
    assert order == []
    # POST /temporal/entityOperations/query selects the same way
    st, _, b = hub.post(BASE + "/temporal/entityOperations/query?options=temporalValues"
                        "&limit=100", {"type": "Query", "entities": [{"type": etype}],
                                       "attrs": ["speed"], "temporalQ": {
                                           "timerel": "between", "timeAt": iso(T0 + 30 * MIN),
                                           "endTimeAt": iso(T0 + 35 * MIN)}}, tenant=tenant)
    assert st == 200, hub.last_text
    assert sorted(e["id"] for e in b) == [x for k, x in enumerate(ids) if k % 5 != 0]
    for e in b:
        assert_series(parse_tvalues(e)[("speed", None)], window(
            models[e["id"]].series("speed"), "between", T0 + 30 * MIN, T0 + 35 * MIN), e["id"])
    got, order = query("&lastN=3&attrs=level" + window_qs("before", T0 + 33 * MIN))
    assert sorted(order) == ids
    for x in ids:
        assert_series(got[x][("level", None)],
                      last_n(window(models[x].series("level"), "before", T0 + 33 * MIN), 3), x)
    # aggregation of every entity in one query
    st, _, body = get_ok(hub, TEMPORAL + "?type=" + etype + "&options=aggregatedValues"
                         "&aggrMethods=sum,totalCount&aggrPeriodDuration=PT10M&attrs=speed"
                         "&limit=100" + window_qs("between", T0, T0 + HOUR), tenant)
    assert sorted(e["id"] for e in body) == ids
    for e in body:
        s = models[e["id"]].series("speed")
        want = periods(s, T0, T0 + HOUR, 10 * MIN)
        assert [r[0] for r in e["speed"]["totalCount"]] == [len(v) for v, _, _ in want]
        assert [r[0] for r in e["speed"]["sum"]] == [sum(v) if v else None for v, _, _ in want]
    # instanceIds unique over all entities
    seen = set()
    for x in ids:
        _, inst = normalized(hub, tenant, x)
        for a_ in inst:
            for i in inst[a_]:
                n = iid_num(i)
                assert n not in seen, (x, i)
                seen.add(n)
    assert len(seen) == sum(len(v) for m in models.values() for v in m.attrs.values())


# ---- 6. equal timestamps ------------------------------------------------------------

def test_equal_timestamps(hub):
    tenant, eid = "h20-ties", "urn:ngsi-ld:Meter:ties"
    model = Model()

    def w(attrs, way):
        write_one(hub, tenant, eid, "Meter", attrs, way)
        for a, v in attrs.items():
            model.add(a, v)

    first = {"id": eid, "type": "Meter", "a": prop(0, observedAt=iso(T0)),
             "b": prop(0.5, observedAt=iso(T0))}
    assert hub.post(ENTITIES, first, tenant=tenant)[0] == 201
    model.add_body(first)
    for i in range(1, 40):  # distinct times
        t = iso(T0 + i * MIN)
        w({"a": prop(i, observedAt=t), "b": prop(i + 0.5, observedAt=t)}, i % 3)
    tie = T0 + 40 * MIN
    # the same attribute twice at one time, two attributes at one time, by
    # every write path, and 25 writes of one time (more than fits any page)
    for k in range(25):
        attrs = {"a": prop(100 + k, observedAt=iso(tie))}
        if k % 2:
            attrs["b"] = prop(200.5 + k, observedAt=iso(tie))
        w(attrs, k % 3)
    st, _, _ = hub.post(TEMPORAL + "/" + eid + "/attrs",
                        {"a": [prop(300 + k, observedAt=iso(tie)) for k in range(3)]},
                        tenant=tenant)
    assert st == 204
    for k in range(3):
        model.add("a", prop(300 + k, observedAt=iso(tie)))
    # one batch holding the entity twice with the same time
    t2 = T0 + 41 * MIN
    batch = [{"id": eid, "type": "Meter", "a": prop(400 + k, observedAt=iso(t2)),
              "b": prop(400.5 + k, observedAt=iso(t2))} for k in range(2)]
    st, _, _ = hub.post(UPSERT + "?options=update", batch, tenant=tenant)
    assert st == 204, hub.last_text
    for e in batch:
        model.add_body(e)
    for i in range(42, 52):
        t = iso(T0 + i * MIN)
        w({"a": prop(i, observedAt=t), "b": prop(i + 0.5, observedAt=t)}, i % 3)

    check_against_model(hub, tenant, eid, model, what="whole")
    # lastN never splits one time: lastN reaching into the ties takes them all
    for k in (1, 2, 9, 10, 11, 12, 13, 20, 45, 100):
        check_against_model(hub, tenant, eid, model, "&lastN=%d" % k, n=k, what="lastN")
    for rel_, a, b in (("between", tie, tie + 1), ("before", tie, None), ("after", tie, None),
                       ("before", tie + 1, None), ("between", tie - MIN, t2 + 1)):
        check_against_model(hub, tenant, eid, model, window_qs(rel_, a, b), rel_, a, b)
        check_against_model(hub, tenant, eid, model, "&lastN=8" + window_qs(rel_, a, b), rel_,
                            a, b, n=8)
    for attr in ("a", "b"):
        check_aggregation(hub, tenant, eid, model, attr, ("PT5M", 5 * MIN), "between", T0,
                          T0 + HOUR)
    _, inst = normalized(hub, tenant, eid)
    ids = [iid_num(i) for a in inst for i in inst[a]]
    assert len(ids) == len(set(ids)) == sum(len(v) for v in model.attrs.values())
    # the ties keep their instanceIds between reads
    _, again = normalized(hub, tenant, eid)
    assert by_time_and_id(again) == by_time_and_id(inst)


def test_equal_timestamps_paged(hub_factory):
    h = hub_factory("--temporal-max-instances", "8")
    tenant, eid = "h20-ties-pg", "urn:ngsi-ld:Meter:tiespg"
    model = Model()
    first = {"id": eid, "type": "Meter", "a": prop(0, observedAt=iso(T0))}
    assert h.post(ENTITIES, first, tenant=tenant)[0] == 201
    model.add_body(first)
    # groups of 1..12 instances of one time, written one by one
    t, k = T0, 1
    for g in range(1, 13):
        t += MIN
        for _ in range(g):
            attrs = {"a": prop(k, observedAt=iso(t))}
            write_one(h, tenant, eid, "Meter", attrs, k % 3)
            model.add("a", attrs["a"])
            k += 1
    got, pages = walk_forward(h, tenant, eid, "")
    assert pages > 5
    assert_series(got[("a", None)], model.series("a"), "forwards")
    got, pages = walk_backward(h, tenant, eid, "", 100000)
    assert pages > 5
    assert_series(got[("a", None)], model.series("a"), "backwards")


def test_huge_tie_groups_are_refused_not_cut(hub_factory):
    """A page (or lastN) cannot end between instances of one time, and takes
    at most 2 * N + 16 instances (store.h STORE_TIES_MAX; N = the page size
    or lastN): a time with more than that cannot be paged through, so the
    read is refused with 403 TooManyResults, never answered 200 with the
    rest of that time (and all after it) missing. A tie group that fits is
    read whole; a window or an aggregation that avoids the page still
    answers."""
    h = hub_factory("--temporal-max-instances", "4")  # pages of 4: at most 24 instances
    tenant = "h20-ties-huge"
    huge, fits = "urn:ngsi-ld:Meter:tieshuge", "urn:ngsi-ld:Meter:tiesfit"
    insts = ([prop(k, observedAt=iso(T0)) for k in range(2)] +
             [prop(100 + k, observedAt=iso(T0 + MIN)) for k in range(30)] +
             [prop(200 + k, observedAt=iso(T0 + 2 * MIN)) for k in range(2)])
    st, _, _ = h.post(TEMPORAL, {"id": huge, "type": "Meter", "a": insts}, tenant=tenant)
    assert st == 201, h.last_text
    # reading forwards: the first page reaches the 30 of T0 + 1 min
    st, _, b = h.get(TEMPORAL + "/" + huge + "?options=temporalValues", tenant=tenant)
    assert_problem(st, b, 403, "TooManyResults")
    assert "aggrMethods" in b["detail"], b
    # backwards: the newest time fits (lastN=1 takes its 2), the one before does not
    got, st, _ = tvalues(h, tenant, huge, "&lastN=1", ok=(200, 206))
    assert sorted(v for v, _ in got[("a", None)]) == [200, 201]
    st, _, b = h.get(TEMPORAL + "/" + huge + "?options=temporalValues&lastN=1" +
                     window_qs("before", T0 + 2 * MIN), tenant=tenant)
    assert_problem(st, b, 403, "TooManyResults")
    # a window without that time answers; so does an aggregation over all of it
    got, st, _ = tvalues(h, tenant, huge, window_qs("before", T0 + MIN))
    assert sorted(v for v, _ in got[("a", None)]) == [0, 1]
    st, _, b = get_ok(h, TEMPORAL + "/" + huge + "?options=aggregatedValues"
                      "&aggrMethods=totalCount,sum", tenant)
    assert b["a"]["totalCount"][0][0] == 34
    assert b["a"]["sum"][0][0] == sum(i["value"] for i in insts)
    # 24 instances of one time at the start of a page: read whole, paged on after
    model = Model()
    fit = ([prop(300 + k, observedAt=iso(T0 + MIN)) for k in range(24)] +
           [prop(400 + k, observedAt=iso(T0 + 2 * MIN)) for k in range(3)])
    st, _, _ = h.post(TEMPORAL, {"id": fits, "type": "Meter", "a": fit}, tenant=tenant)
    assert st == 201, h.last_text
    for i in fit:
        model.add("a", i)
    got, pages = walk_forward(h, tenant, fits, "")
    assert pages >= 2
    assert_series(got[("a", None)], model.series("a"), "forwards")


# ---- 7. kill -9 -------------------------------------------------------------------------

CRASH_ENTS = ["urn:ngsi-ld:Meter:crash-%d" % k for k in range(4)]


def crash_write(h, tenant, models, i):
    """The i-th acknowledged write: one of the entities, one of the paths."""
    k = i % len(CRASH_ENTS)
    eid = CRASH_ENTS[k]
    t = iso(T0 + (i // len(CRASH_ENTS)) * MIN + k)
    attrs = {"a": prop(i * 1.25 - 40, observedAt=t)}
    if i % 5 == 0:
        attrs["s"] = prop("s%d" % i, observedAt=t)
    if eid not in models:
        body = {"id": eid, "type": "Meter", "s": prop("first", observedAt=iso(T0 - MIN))}
        body.update(attrs)
        st, _, _ = h.post(ENTITIES, body, tenant=tenant)
        assert st == 201, h.last_text
        models[eid] = Model()
        models[eid].add_body(body)
        return
    write_one(h, tenant, eid, "Meter", attrs, i % 3)
    for a, v in attrs.items():
        models[eid].add(a, v)


def read_ids(h, tenant, eid):
    """{(attr, t, canon(value)): instanceId number} of the whole history."""
    _, inst = normalized(h, tenant, eid)
    out = {}
    for a in inst:
        for i in inst[a]:
            key = (a, parse_iso(i["observedAt"]), canon(i["value"]))
            assert key not in out, (eid, key)
            out[key] = iid_num(i)
    return out


def test_kill9_keeps_every_acknowledged_instance(hub_factory):
    h = hub_factory()
    tenant, models = "h20-crash", {}
    for i in range(60):
        crash_write(h, tenant, models, i)
    before = {x: read_ids(h, tenant, x) for x in CRASH_ENTS}  # read (and so flushed)
    for i in range(60, 130):
        crash_write(h, tenant, models, i)  # acknowledged, never read
    h.kill9()
    h.start(port=h.port)
    all_ids = set()
    for x in CRASH_ENTS:
        check_against_model(h, tenant, x, models[x], what="after kill -9")
        now = read_ids(h, tenant, x)
        for key, n in before[x].items():
            assert now.get(key) == n, (x, key, n, now.get(key))
        assert not (all_ids & set(now.values()))
        all_ids |= set(now.values())
    assert len(all_ids) == sum(len(v) for m in models.values() for v in m.attrs.values())
    # writes after the restart get new instanceIds; a second kill right after
    for i in range(130, 170):
        crash_write(h, tenant, models, i)
    h.kill9()
    h.start(port=h.port)
    again = set()
    for x in CRASH_ENTS:
        check_against_model(h, tenant, x, models[x], what="after the second kill -9")
        now = read_ids(h, tenant, x)
        assert not (again & set(now.values()))
        again |= set(now.values())
        for key, n in before[x].items():
            assert now[key] == n
    assert all_ids <= again and len(again) == len(all_ids) + sum(
        1 + (i % 5 == 0) for i in range(130, 170))
    h.close()


def test_kill9_while_writing(hub_factory):
    """Writers stream batches and single writes; kill -9 mid-stream: every
    acknowledged instance is in the history once, nothing else but what
    was sent (the unanswered request may or may not have committed)."""
    h = hub_factory()
    tenant = "h20-crash2"
    batch_ids = ["urn:ngsi-ld:Probe:c%02d" % k for k in range(8)]
    single_ids = ["urn:ngsi-ld:Probe:s%d" % k for k in range(2)]
    acked = {x: Model() for x in batch_ids + single_ids}
    sent = {x: Model() for x in batch_ids + single_ids}
    stop, errors = threading.Event(), []

    def post(conn, method, path, body):
        conn.request(method, path, body=json.dumps(body),
                     headers={"Content-Type": "application/json", "NGSILD-Tenant": tenant})
        r = conn.getresponse()
        r.read()
        return r.status

    def batches():
        conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10 * SLOW)
        j = 0
        while not stop.is_set():
            t = iso(T0 + j * MIN)
            body = [{"id": x, "type": "Probe", "v": prop(j * 10 + k + 0.5, observedAt=t)}
                    for k, x in enumerate(batch_ids)]
            for e in body:
                sent[e["id"]].add_body(e)
            try:
                st = post(conn, "POST", UPSERT, body)
            except (OSError, http.client.HTTPException):
                return
            if st not in (201, 204):
                errors.append(("batch", j, st))
                return
            for e in body:
                acked[e["id"]].add_body(e)
            j += 1

    def singles(k):
        conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10 * SLOW)
        x, j = single_ids[k], 0
        while not stop.is_set():
            body = {"v": prop(-j - 0.25, observedAt=iso(T0 + j * SEC))}
            sent[x].add_body(body)
            try:
                if j == 0:
                    st = post(conn, "POST", ENTITIES, dict(body, id=x, type="Probe"))
                else:
                    st = post(conn, "POST", ENTITIES + "/" + x + "/attrs", body)
            except (OSError, http.client.HTTPException):
                return
            if st not in (201, 204):
                errors.append(("single", x, j, st))
                return
            acked[x].add_body(body)
            j += 1

    threads = [threading.Thread(target=batches, daemon=True)] + [
        threading.Thread(target=singles, args=(k,), daemon=True) for k in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60 * SLOW
    while (len(acked[batch_ids[0]].attrs["v"]) < 40 or
           min(len(acked[x].attrs["v"]) for x in single_ids) < 40):
        assert time.monotonic() < deadline and not errors, (errors, h.stderr_tail())
        time.sleep(0.02)
    h.kill9()
    stop.set()
    for t in threads:
        t.join(30 * SLOW)
    assert errors == []
    h.start(port=h.port)
    ids = set()
    for x in batch_ids + single_ids:
        got, _, _ = tvalues(h, tenant, x)
        g = got[("v", None)]
        a, s = acked[x].series("v"), sent[x].series("v")
        # every acknowledged instance, then perhaps the one in flight
        assert_series(g[:len(a)], a, x + " acknowledged")
        assert len(g) - len(a) in (0, 1), (x, len(g), len(a))
        assert_series(g, s[:len(g)], x + " sent")
        mine = [iid_num(i) for i in normalized(h, tenant, x)[1]["v"]]
        assert len(mine) == len(g) and not (set(mine) & ids), x
        ids |= set(mine)
    # and the store takes writes again, with new instanceIds
    x = single_ids[0]
    before = len(tvalues(h, tenant, x)[0][("v", None)])
    for k in range(3):
        st, _, _ = h.post(ENTITIES + "/" + x + "/attrs",
                          {"v": prop(1 + k, observedAt=iso(T0 + DAY + k))}, tenant=tenant)
        assert st == 204
    mine = [iid_num(i) for i in normalized(h, tenant, x)[1]["v"]]
    assert len(mine) == len(set(mine)) == before + 3
    assert len(set(mine) - ids) == 3
    h.close()


# ---- reads while writing -------------------------------------------------------------

def test_reads_while_writing_see_whole_prefixes(hub):
    """Readers polling the history while a writer appends in time order
    always see a prefix of the writes: every acknowledged one, nothing
    twice, no gap (whatever is moved or packed between two reads), and
    both attributes of a write together."""
    tenant, eid = "h20-live", "urn:ngsi-ld:Meter:live"
    n = 200
    vals = [((i * 37 % 101 - 50) / 4, T0 + i * MIN + (i % 7)) for i in range(n)]
    acked, stop, errors, reads = [0], threading.Event(), [], [0]

    def reader(k):
        conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=30 * SLOW)
        j = 0
        while not stop.is_set() and not errors:
            n0 = acked[0]
            qs = ("?options=temporalValues" if j % 3 == 0 else
                  "?options=temporalValues&lastN=%d" % (1 + j % 9) if j % 3 == 1 else
                  "?options=aggregatedValues&aggrMethods=totalCount,sum&attrs=a")
            j += 1
            try:
                conn.request("GET", TEMPORAL + "/" + eid + qs, headers={"NGSILD-Tenant": tenant})
                r = conn.getresponse()
                text = r.read()
            except (OSError, http.client.HTTPException) as e:
                errors.append("reader %d: %r" % (k, e))
                return
            if r.status == 404 and n0 == 0:
                continue
            if r.status != 200:
                errors.append("reader %d: %s %s" % (k, r.status, text[:300]))
                return
            b = json.loads(text)
            reads[0] += 1
            if "aggr" in qs:
                if "a" not in b:
                    if n0 > 0:
                        errors.append("aggregation without a after %d writes" % n0)
                    continue
                c, sm = b["a"]["totalCount"][0][0], b["a"]["sum"][0][0]
                want = math.fsum(v for v, _ in vals[:c])
                if c < n0 or abs(sm - want) > 1e-9 * max(1, abs(want)) * c:
                    errors.append("aggregation: count %d sum %r after %d writes (want %r)"
                                  % (c, sm, n0, want))
                continue
            got = parse_tvalues(b)
            a, m = got.get(("a", None), []), got.get(("m", None), [])
            if not a:
                if n0 > 0:
                    errors.append("nothing after %d writes" % n0)
                continue
            end = vals.index(a[-1]) + 1 if a[-1] in vals else -1
            want = vals[end - len(a):end] if end >= len(a) else None
            mwant = [(-v, t) for v, t in want] if want else None
            if end < n0 or a != want or m != mwant:
                errors.append("%s after %d writes: %d instances ending at %d: a %s m %s" % (
                    qs, n0, len(a), end, a[:3], m[:3]))

    readers = [threading.Thread(target=reader, args=(k,), daemon=True) for k in range(2)]
    try:
        for i, (v, t) in enumerate(vals):
            attrs = {"a": prop(v, observedAt=iso(t)), "m": prop(-v, observedAt=iso(t))}
            if i == 0:
                assert hub.post(ENTITIES, dict(attrs, id=eid, type="Meter"),
                                tenant=tenant)[0] == 201
                for r in readers:
                    r.start()
            else:
                write_one(hub, tenant, eid, "Meter", attrs, i % 3)
            acked[0] = i + 1
            assert not errors, errors[:3]
    finally:
        stop.set()
        for r in readers:
            r.join(30 * SLOW)
    assert not errors, errors[:3]
    assert reads[0] > 10
    got, _, _ = tvalues(hub, tenant, eid)
    assert got[("a", None)] == vals


# ---- 8. edits -----------------------------------------------------------------------

def test_edits_after_many_writes(hub):
    tenant, eid = "h20-edit", "urn:ngsi-ld:Meter:edit"
    ds = "urn:ngsi-ld:Dataset:edit-b"
    model = Model()
    n = 100
    times = [T0 + i * MIN for i in range(n)]
    for i in range(n):
        t = iso(times[i])
        attrs = {"a": [prop(i + 0.5, observedAt=t), prop(-i - 0.5, observedAt=t, datasetId=ds)],
                 "b": prop("b%d" % i if i % 10 == 0 else i * 2, observedAt=t)}
        if i == 0:
            body = dict(attrs, id=eid, type="Meter")
            assert hub.post(ENTITIES, body, tenant=tenant)[0] == 201
        else:
            st, _, _ = hub.post(ENTITIES + "/" + eid + "/attrs", attrs, tenant=tenant)
            assert st == 204, hub.last_text
        model.add_body(attrs)
    check_against_model(hub, tenant, eid, model, what="written")

    def ids_by(attr):
        """{(t, datasetId[, value]): instanceId} of an attribute (the value
        only where two instances share a time and datasetId)."""
        _, inst = normalized(hub, tenant, eid, "attrs=" + attr)
        out = {}
        for i in inst.get(attr, []):
            key = (parse_iso(i["observedAt"]), i.get("datasetId"))
            if key in out or key + (canon(i["value"]),) in out:
                key += (canon(i["value"]),)
            assert key not in out
            out[key] = i["instanceId"]
        return out

    ever = set(ids_by("a").values()) | set(ids_by("b").values())
    ids_a = ids_by("a")

    def replace(attr, t, d, new_inst):
        lst = model.attrs[attr]
        k = [j for j, (tt, _, dd) in enumerate(lst) if tt == t and dd == d]
        assert len(k) == 1
        if new_inst is None:
            del lst[k[0]]
        else:
            lst[k[0]] = (parse_iso(new_inst["observedAt"]), new_inst, d)

    def check(what):
        check_against_model(hub, tenant, eid, model, what=what)
        for k in (1, 5, 50):
            check_against_model(hub, tenant, eid, model, "&lastN=%d" % k, n=k, what=what)
        for rel_, a, b in (("between", times[30], times[70]), ("before", times[50], None),
                           ("after", times[55] + 1, None)):
            check_against_model(hub, tenant, eid, model, window_qs(rel_, a, b), rel_, a, b,
                                what=what)
        for attr in ("a", "b"):
            if model.series(attr):
                check_aggregation(hub, tenant, eid, model, attr, ("PT10M", 10 * MIN),
                                  "between", T0 - HOUR, times[-1] + HOUR, what=what)

    base = TEMPORAL + "/" + eid + "/attrs/"
    # a new value in place
    st, _, _ = hub.patch(base + "a/" + ids_a[(times[37], None)], {"value": 999.5},
                         tenant=tenant)
    assert st == 204, hub.last_text
    replace("a", times[37], None, prop(999.5, observedAt=iso(times[37])))
    check("value patched")
    # moved later, between two instances; moved before every other one
    moves = ((52, times[80] + 20 * SEC, -1.0), (10, T0 - HOUR, 12.25), (90, times[3], 3.75))
    for i, t, v in moves:
        st, _, _ = hub.patch(base + "a/" + ids_a[(times[i], None)],
                             {"value": v, "observedAt": iso(t)}, tenant=tenant)
        assert st == 204, hub.last_text
        replace("a", times[i], None, prop(v, observedAt=iso(t)))
    check("instances moved")
    now = ids_by("a")
    for i, t, v in moves:  # a moved instance keeps its id
        assert ids_a[(times[i], None)] in (now.get((t, None)), now.get((t, None, canon(v))))
    assert now[(times[37], None)] == ids_a[(times[37], None)]
    # deleted: a default instance and one of the datasetId
    for i, d in ((60, None), (61, ds), (0, None), (99, None)):
        st, _, _ = hub.delete(base + "a/" + ids_a[(times[i], d)], tenant=tenant)
        assert st == 204, hub.last_text
        replace("a", times[i], d, None)
    check("instances deleted")
    st, _, b = hub.delete(base + "a/" + ids_a[(times[60], None)], tenant=tenant)
    assert_problem(st, b, 404, "ResourceNotFound")
    st, _, b = hub.patch(base + "a/" + ids_a[(times[61], ds)], {"value": 1}, tenant=tenant)
    assert_problem(st, b, 404, "ResourceNotFound")
    # the datasetId's history, then b's whole history
    assert hub.delete(base + "a?datasetId=" + ds, tenant=tenant)[0] == 204
    model.attrs["a"] = [x for x in model.attrs["a"] if x[2] != ds]
    check("dataset deleted")
    # b deleted from the entity: its history gets a deletion record, which
    # aggregations skip
    t_del = int(time.time() - 1) * SEC
    assert hub.delete(ENTITIES + "/" + eid + "/attrs/b", tenant=tenant)[0] == 204
    _, rec = normalized(hub, tenant, eid, "attrs=b&timeproperty=deletedAt")
    assert len(rec["b"]) == 1 and rec["b"][0]["value"] == "urn:ngsi-ld:null", rec
    assert t_del <= parse_iso(rec["b"][0]["deletedAt"]) <= t_del + 60 * SEC * SLOW
    model.add("b", {k: v for k, v in rec["b"][0].items() if k != "instanceId"})
    check("b deleted from the entity")
    later = t_del + DAY
    st, _, agg = get_ok(hub, TEMPORAL + "/" + eid + "?options=aggregatedValues&attrs=b"
                        "&aggrMethods=totalCount,min,max" + window_qs("between", T0, later),
                        tenant)
    vals = [v for v, _ in model.series("b", values_only=True)]
    assert [agg["b"][m][0][0] for m in ("totalCount", "min", "max")] == [
        len(vals), aggregate(vals, "min"), aggregate(vals, "max")], agg
    check_against_model(hub, tenant, eid, model, "&lastN=3&attrs=b", n=3, attrs={"b"})
    assert hub.delete(base + "b", tenant=tenant)[0] == 204
    del model.attrs["b"]
    check("b's history deleted")
    assert hub.restart() == 0, hub.stderr_tail()
    check("b's history deleted, restarted")
    # more writes work, with new instanceIds (none of a deleted instance); b starts again
    for i in range(n, n + 20):
        t = iso(T0 + i * MIN)
        attrs = {"a": prop(i + 0.5, observedAt=t), "b": prop(i * 2, observedAt=t)}
        write_one(hub, tenant, eid, "Meter", attrs, i % 3)
        model.add_body(attrs)
    times = times + [T0 + i * MIN for i in range(n, n + 20)]
    check("written again")
    new = set(ids_by("a").values()) | set(ids_by("b").values())
    assert len(new - ever) == 40, len(new - ever)
    # the temporal entity deleted and written anew: only the new history
    assert hub.delete(TEMPORAL + "/" + eid, tenant=tenant)[0] == 204
    model = Model()
    body = {"id": eid, "type": "Meter", "a": prop(1, observedAt=iso(T0 + 5 * MIN))}
    assert hub.post(ENTITIES, body, tenant=tenant)[0] == 201
    model.add_body(body)
    for i in range(1, 30):
        attrs = {"a": prop(i * 3, observedAt=iso(T0 + (i * 7 % 30) * MIN + i))}
        write_one(hub, tenant, eid, "Meter", attrs, i % 2)
        model.add_body(attrs)
    check_against_model(hub, tenant, eid, model, what="recreated")
    again = set(ids_by("a").values())
    assert not (again & (ever | new))


def test_instance_ids_never_reused(hub_factory):
    """instanceIds are never reused: not those of deleted instances, even
    the newest ones, across a SIGTERM restart and a kill -9 (the high-water
    mark cannot be found again from what is left)."""
    h = hub_factory()
    tenant = "h20-ids"
    ever, model = set(), {}

    def write(eid, i, n):
        for j in range(n):
            t = iso(T0 + (i + j) * MIN)
            attrs = {"a": prop(i + j + 0.5, observedAt=t), "b": prop(-(i + j), observedAt=t)}
            if eid not in model:
                model[eid] = Model()
                body = dict(attrs, id=eid, type="Meter")
                assert h.post(ENTITIES, body, tenant=tenant)[0] == 201, h.last_text
            else:
                write_one(h, tenant, eid, "Meter", attrs, j % 3)
            model[eid].add_body(attrs)

    def all_ids(eid):
        _, inst = normalized(h, tenant, eid)
        ids = [iid_num(i) for a in inst for i in inst[a]]
        assert len(ids) == len(set(ids))
        return {(a, parse_iso(i["observedAt"])): i["instanceId"] for a in inst for i in inst[a]}

    def drop_newest(eid, k):
        """Deletes the k instances of a with the highest instanceIds, and b's history."""
        ids = all_ids(eid)
        ever.update(iid_num({"instanceId": v}) for v in ids.values())
        newest = sorted(((iid_num({"instanceId": v}), key) for key, v in ids.items()
                         if key[0] == "a"))[-k:]
        for n, (a, t) in newest:
            st, _, _ = h.delete(TEMPORAL + "/" + eid + "/attrs/a/" + INSTANCE + str(n),
                                tenant=tenant)
            assert st == 204, h.last_text
            model[eid].attrs["a"] = [x for x in model[eid].attrs["a"] if x[0] != t]
        assert h.delete(TEMPORAL + "/" + eid + "/attrs/b", tenant=tenant)[0] == 204
        del model[eid].attrs["b"]

    def fresh(eid):
        """The entity's instanceIds that were never seen before."""
        ids = set(iid_num({"instanceId": v}) for v in all_ids(eid).values())
        return ids - ever

    e1, e2 = "urn:ngsi-ld:Meter:ids-1", "urn:ngsi-ld:Meter:ids-2"
    write(e1, 0, 40)
    write(e2, 0, 10)
    drop_newest(e2, 4)  # the newest ids of the store go
    drop_newest(e1, 6)
    assert h.restart() == 0, h.stderr_tail()
    check_against_model(h, tenant, e1, model[e1], what="restarted")
    write(e1, 40, 5)
    assert len(fresh(e1)) == 10
    # the same through a crash, and for a deleted temporal entity
    drop_newest(e1, 8)
    ever.update(iid_num({"instanceId": v}) for v in all_ids(e2).values())
    assert h.delete(TEMPORAL + "/" + e2, tenant=tenant)[0] == 204
    del model[e2]
    h.kill9()
    h.start(port=h.port)
    check_against_model(h, tenant, e1, model[e1], what="after kill -9")
    write(e2, 100, 3)
    write(e1, 200, 3)
    assert len(fresh(e1)) == 6 and len(fresh(e2)) == 6
    assert not (fresh(e1) & fresh(e2))
    check_against_model(h, tenant, e2, model[e2], what="recreated")
    h.close()


# ---- 9. retention --------------------------------------------------------------------

def test_retention_cuts_long_histories(hub_factory):
    """--history-max-age (the default of every tenant; the per-tenant
    setting has no API yet): instances older than the age go in the
    background passes, newer ones stay with their instanceIds."""
    h = hub_factory("--history-max-age", "PT5S")
    tenant = "h20-retention"
    now = int(time.time()) * SEC
    old0, new0 = now - 2 * DAY, now + HOUR  # new0: an hour ahead, kept by every pass
    mixed, gone, kept = ("urn:ngsi-ld:Meter:ret-%s" % x for x in ("mixed", "gone", "kept"))
    models = {x: Model() for x in (mixed, gone, kept)}
    for j in range(60):  # the three in the same commits
        batch = [{"id": mixed, "type": "Meter", "v": prop(j + 0.5, observedAt=iso(old0 + j * MIN))},
                 {"id": gone, "type": "Meter", "v": prop(-j, observedAt=iso(old0 + j * MIN))},
                 {"id": kept, "type": "Meter", "v": prop(j * 2, observedAt=iso(new0 + j * MIN))}]
        st, _, _ = h.post(UPSERT + "?options=update", batch, tenant=tenant)
        assert st in (201, 204), h.last_text
        for e in batch:
            models[e["id"]].add_body(e)
    for j in range(60):  # then newer ones after the old, one by one
        attrs = {"v": prop(100 + j + 0.25, observedAt=iso(new0 + j * MIN))}
        write_one(h, tenant, mixed, "Meter", attrs, j % 3)
        models[mixed].add_body(attrs)
    # late old ones among them
    late = [prop(7000 + k, observedAt=iso(old0 + k * 13 * SEC)) for k in range(20)]
    assert h.post(TEMPORAL + "/" + mixed + "/attrs", {"v": late}, tenant=tenant)[0] == 204
    for inst in late:
        models[mixed].add("v", inst)
    survivors = {x: [p for p in m.attrs["v"] if p[0] >= now] for x, m in models.items()}

    def ids(x):
        _, inst = normalized(h, tenant, x)
        return {parse_iso(i["observedAt"]): i["instanceId"] for i in inst.get("v", [])}

    ids_kept = {x: {t: i for t, i in ids(x).items() if t >= now} for x in models}
    deadline = time.monotonic() + 30 * SLOW
    while True:
        got = {x: tvalues(h, tenant, x)[0].get(("v", None), []) for x in models}
        if all(len(got[x]) == len(survivors[x]) for x in models):
            break
        assert time.monotonic() < deadline, {x: len(v) for x, v in got.items()}
        time.sleep(0.1)
    for x, m in models.items():
        m.attrs["v"] = survivors[x]
        check_against_model(h, tenant, x, m, what="after retention")
        assert ids(x) == ids_kept[x]
    check_aggregation(h, tenant, mixed, models[mixed], "v", ("PT10M", 10 * MIN), "after", now)
    check_against_model(h, tenant, mixed, models[mixed], "&lastN=5", n=5)
    # the entities themselves stay
    assert h.get(ENTITIES + "/" + gone, tenant=tenant)[0] == 200
    # newer writes go on; old ones written now go too
    for j in range(60, 80):
        attrs = {"v": prop(100 + j + 0.25, observedAt=iso(new0 + j * MIN))}
        write_one(h, tenant, mixed, "Meter", attrs, j % 3)
        models[mixed].add_body(attrs)
    assert h.post(TEMPORAL + "/" + mixed + "/attrs",
                  {"v": [prop(1, observedAt=iso(old0 + k * MIN)) for k in range(5)]},
                  tenant=tenant)[0] == 204
    want = len(models[mixed].attrs["v"])
    deadline = time.monotonic() + 30 * SLOW
    while len(tvalues(h, tenant, mixed)[0][("v", None)]) != want:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    check_against_model(h, tenant, mixed, models[mixed], what="after the second pass")
    h.close()


# ---- 10. SIGTERM in the middle of a series -------------------------------------------

def test_restart_in_the_middle_of_writes(hub):
    tenant, etype = "h20-restart", "Gauge"
    ids = ["urn:ngsi-ld:Gauge:%02d" % k for k in range(15)]
    models = {x: Model() for x in ids}

    def rounds(js, late=False):
        for j in js:
            batch = []
            for k, x in enumerate(ids):
                t = T0 + j * MIN + k * 100 + (7 * SEC if late else 0)
                e = {"id": x, "type": etype, "g": prop(j * 1000 + k + (0.5 if late else 0),
                                                       observedAt=iso(t))}
                if j % 4 == k % 4:
                    e["h"] = prop("h%d.%d" % (j, k), observedAt=iso(t))
                batch.append(e)
                models[x].add_body(e)
            st, _, _ = hub.post(UPSERT + "?options=update", batch, tenant=tenant)
            assert st in (201, 204), hub.last_text

    def check_all(what):
        st, _, b = get_ok(hub, TEMPORAL + "?type=" + etype + "&options=temporalValues&limit=100",
                          tenant)
        assert sorted(e["id"] for e in b) == ids
        for e in b:
            got = parse_tvalues(e)
            for a in ("g", "h"):
                assert_series(got[(a, None)], models[e["id"]].series(a), what + e["id"] + a)
        return b

    rounds(range(0, 23))
    rc = hub.restart()  # nothing read before: whatever was buffered must be kept
    assert rc == 0, hub.stderr_tail()
    rounds(range(23, 50))
    rounds(range(5, 12), late=True)  # late data after the restart
    first = check_all("after restart ")
    full = {x: by_time_and_id(normalized(hub, tenant, x, "options=sysAttrs")[1]) for x in ids}
    rc = hub.restart()
    assert rc == 0, hub.stderr_tail()
    second = check_all("after the second restart ")
    assert second == first
    for x in ids:  # every instance keeps its instanceId, createdAt, modifiedAt
        assert by_time_and_id(normalized(hub, tenant, x, "options=sysAttrs")[1]) == full[x]
    rounds(range(50, 60))
    check_all("written again ")
    seen = set()
    for x in ids:
        _, inst = normalized(hub, tenant, x)
        for a in inst:
            for i in inst[a]:
                assert iid_num(i) not in seen
                seen.add(iid_num(i))
