"""
test_15_sse.py - server-sent events: GET /ngsi-ld/v1/subscriptions/{id}/stream
(pilotlight's stream of a subscription's notifications, see notify.h).

The client is a raw socket that speaks HTTP/1.1 and decodes the chunked
body itself, so a test controls exactly how fast it reads (a slow browser
is a client that stops reading with a small receive buffer). Events are
awaited with generous deadlines, never fixed sleeps.
"""
import json
import socket
import threading
import time

import pytest

from conftest import Hub
from helpers import BASE, ENTITIES, SLOW, assert_problem, prop

SUBS = BASE + "/subscriptions"
WAIT = 10 * SLOW
SSE_URI = "urn:pilotlight:sse"


class Stream:
    """One GET .../stream on its own connection: status, headers, and the
    decoded events ({"id", "event", "data"} dicts; comments kept apart)."""

    def __init__(self, port, sid, tenant=None, accept="text/event-stream", rcvbuf=None,
                 method="GET"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(WAIT)
        self.sock.connect(("127.0.0.1", port))
        req = "%s %s/%s/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method, SUBS, sid)
        if accept:
            req += "Accept: %s\r\n" % accept
        if tenant:
            req += "NGSILD-Tenant: %s\r\n" % tenant
        self.sock.sendall((req + "\r\n").encode())
        self.raw = b""
        self.body = b""      # decoded chunked body so far
        self.ended = False   # the terminating chunk arrived
        self.closed = False  # the server closed the connection
        self.events = []
        self.comments = []
        self._pending = b""  # body bytes not yet parsed into events
        self._lock = threading.RLock()
        self._reader = None  # a thread reading as fast as it can (read_in_background)
        head = self._read_until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        if not self.chunked:
            n = int(self.headers.get("content-length", "0"))
            while len(self.raw) < n and self._recv():
                pass
            self.body = self.raw[:n]
            self.ended = True

    def _recv(self, timeout=None):
        if self.closed:
            return False
        if self._reader and threading.current_thread() is not self._reader:
            time.sleep(0.002)
            return True
        self.sock.settimeout(timeout if timeout is not None else WAIT)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, OSError):
            data = b""
        with self._lock:
            if not data:
                self.closed = True
                return False
            self.raw += data
        return True

    def read_in_background(self):
        """A client that keeps up: a thread reads everything at once."""
        def run():
            while self._recv(0.2) or not self.closed:
                if self._reader is None:
                    return
        self._reader = threading.Thread(target=run, daemon=True)
        self._reader.start()

    def _read_until(self, marker):
        while marker not in self.raw:
            if not self._recv():
                raise AssertionError("no %r from the hub: %r" % (marker, self.raw[:500]))
        head, _, rest = self.raw.partition(marker)
        self.raw = rest
        return head

    def _decode(self):
        """Move complete chunks from raw to body/events."""
        with self._lock:
            self._decode_locked()

    def _decode_locked(self):
        while not self.ended:
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                break
            size = int(self.raw[:line_end].split(b";")[0], 16)
            if len(self.raw) < line_end + 2 + size + 2:
                break
            chunk = self.raw[line_end + 2:line_end + 2 + size]
            self.raw = self.raw[line_end + 2 + size + 2:]
            if size == 0:
                self.ended = True
                break
            self.body += chunk
            self._pending += chunk
        self._parse()

    def _parse(self):
        while b"\n\n" in self._pending:
            block, _, self._pending = self._pending.partition(b"\n\n")
            ev = {}
            for line in block.decode("utf-8").split("\n"):
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    continue
                k, _, v = line.partition(":")
                v = v[1:] if v.startswith(" ") else v
                if k == "data":
                    ev["data"] = ev["data"] + "\n" + v if "data" in ev else v
                elif k:
                    ev[k] = v
            if ev:
                self.events.append(ev)

    def pump(self, timeout=0.2):
        self._recv(timeout)
        self._decode()
        if self._pending and self.ended:
            self._parse()

    def wait(self, pred, timeout=WAIT, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._decode()
            if pred(self):
                return
            if self.closed and not self.raw:
                break
            self._recv(0.2)
        self._decode()
        if pred(self):
            return
        raise AssertionError("stream: no %s; %d events, last %s; comments %r ended %s closed %s"
                             % (what, len(self.events), repr(self.events[-2:])[:600],
                                self.comments[-3:], self.ended, self.closed))

    def notifications(self):
        return [json.loads(e["data"]) for e in self.events if e.get("event") == "notification"]

    def wait_notifications(self, n, timeout=WAIT):
        self.wait(lambda s: len(s.notifications()) >= n, timeout, "%d notifications" % n)
        return self.notifications()

    def close(self):
        self._reader = None
        try:
            self.sock.close()
        except OSError:
            pass


def sensor(i, temp=20, **extra):
    e = {"id": "urn:ngsi-ld:Sensor:%s" % i, "type": "Sensor", "temperature": prop(temp)}
    e.update(extra)
    return e


def create_sub(hub, sid, uri=SSE_URI, tenant=None, **kw):
    body = {"id": sid, "type": "Subscription", "entities": [{"type": "Sensor"}],
            "notification": {"endpoint": {"uri": uri}}}
    body.update(kw)
    st, _, b = hub.post(SUBS, body, tenant=tenant)
    assert st == 201, (st, b)
    return sid


def patch_temp(hub, i, v, tenant=None):
    st, _, b = hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:%s/attrs" % i,
                         {"temperature": prop(v)}, tenant=tenant)
    assert st == 204, (st, b)


@pytest.fixture
def streams():
    opened = []
    yield opened
    for s in opened:
        s.close()


def open_stream(hub, streams, sid, **kw):
    s = Stream(hub.port, sid, **kw)
    streams.append(s)
    return s


# ---- the stream --------------------------------------------------------------

def test_stream_framing_and_order(hub, streams):
    t = "sse-order"
    assert hub.post(ENTITIES, sensor("o1", 0), tenant=t)[0] == 201
    sid = create_sub(hub, "urn:ngsi-ld:Subscription:sse-order", tenant=t)
    s = open_stream(hub, streams, sid, tenant=t)
    assert s.status == 200
    assert s.headers["content-type"] == "text/event-stream"
    assert s.headers["cache-control"] == "no-cache"
    assert s.chunked
    # the context to read the events with, as an HTTP notification's Link
    assert s.headers["link"].startswith("<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context")
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in s.headers["link"]
    s.wait(lambda x: "pilotlight subscription stream" in x.comments, what="hello comment")
    for v in range(1, 21):
        patch_temp(hub, "o1", v, tenant=t)
    got = s.wait_notifications(20)
    assert [n["data"][0]["temperature"]["value"] for n in got] == list(range(1, 21))
    evs = [e for e in s.events if e.get("event") == "notification"]
    for e, n in zip(evs, got):
        assert e["id"] == n["id"]                       # SSE id = notification id
        assert n["id"].startswith("urn:ngsi-ld:Notification:")
        assert n["type"] == "Notification"
        assert n["subscriptionId"] == sid
        assert n["data"][0]["id"] == "urn:ngsi-ld:Sensor:o1"
        assert "\n" not in e["data"]                    # one data line
    assert len({e["id"] for e in evs}) == 20
    # a stream-only subscription counts what reached a stream
    st, _, b = hub.get(SUBS + "/" + sid, tenant=t)
    assert st == 200
    assert b["notification"]["timesSent"] == 20
    assert b["notification"]["timesFailed"] == 0
    assert b["notification"]["status"] == "ok"


def test_http_subscription_also_streams(hub, streams):
    """A subscription with an HTTP endpoint that is down still streams every
    notification; the endpoint's failure is its own."""
    t = "sse-http"
    assert hub.post(ENTITIES, sensor("h1", 0), tenant=t)[0] == 201
    sid = create_sub(hub, "urn:ngsi-ld:Subscription:sse-http", uri="http://127.0.0.1:9/x",
                     tenant=t)
    s = open_stream(hub, streams, sid, tenant=t)
    s.wait(lambda x: x.comments, what="hello comment")
    for v in (1, 2, 3):
        patch_temp(hub, "h1", v, tenant=t)
    got = s.wait_notifications(3)
    assert [n["data"][0]["temperature"]["value"] for n in got] == [1, 2, 3]


def test_two_streams_get_the_same_events(hub, streams):
    t = "sse-two"
    assert hub.post(ENTITIES, sensor("t1", 0), tenant=t)[0] == 201
    sid = create_sub(hub, "urn:ngsi-ld:Subscription:sse-two", tenant=t)
    a = open_stream(hub, streams, sid, tenant=t)
    b = open_stream(hub, streams, sid, tenant=t)
    for s in (a, b):
        s.wait(lambda x: x.comments, what="hello comment")
    patch_temp(hub, "t1", 7, tenant=t)
    na, nb = a.wait_notifications(1), b.wait_notifications(1)
    assert na[0]["id"] == nb[0]["id"]
    assert na[0]["data"][0]["temperature"]["value"] == 7


def test_unknown_subscription_404_and_tenant_isolation(hub, streams):
    st, _, b = hub.get(SUBS + "/urn:ngsi-ld:Subscription:nope/stream",
                       headers={"Accept": "text/event-stream"})
    assert_problem(st, b, 404, "ResourceNotFound")
    sid = create_sub(hub, "urn:ngsi-ld:Subscription:sse-iso", tenant="sse-a")
    # another tenant does not see it
    other = open_stream(hub, streams, sid, tenant="sse-b")
    assert other.status == 404
    assert json.loads(other.body)["type"].endswith("ResourceNotFound")
    # events of another tenant's entities never reach the stream
    s = open_stream(hub, streams, sid, tenant="sse-a")
    s.wait(lambda x: x.comments, what="hello comment")
    assert hub.post(ENTITIES, sensor("iso", 1), tenant="sse-b")[0] == 201
    assert hub.post(ENTITIES, sensor("iso", 2), tenant="sse-a")[0] == 201
    got = s.wait_notifications(1)
    assert got[0]["data"][0]["temperature"]["value"] == 2
    patch_temp(hub, "iso", 3, tenant="sse-b")
    patch_temp(hub, "iso", 4, tenant="sse-a")
    got = s.wait_notifications(2)
    assert [n["data"][0]["temperature"]["value"] for n in got] == [2, 4]


def test_accept_and_head(hub, streams):
    sid = create_sub(hub, "urn:ngsi-ld:Subscription:sse-accept", tenant="sse-acc")
    st, _, b = hub.get(SUBS + "/" + sid + "/stream", tenant="sse-acc",
                       headers={"Accept": "application/json"})
    assert_problem(st, b, 406, "InvalidRequest")
    # no Accept and */* are served as a stream
    for accept in (None, "*/*"):
        s = open_stream(hub, streams, sid, tenant="sse-acc", accept=accept)
        assert s.status == 200 and s.headers["content-type"] == "text/event-stream"
    h = open_stream(hub, streams, sid, tenant="sse-acc", method="HEAD")
    assert h.status == 200 and h.headers["content-type"] == "text/event-stream"
    st, _, _ = hub.request("HEAD", SUBS + "/urn:ngsi-ld:Subscription:none/stream",
                           headers={"Accept": "text/event-stream"})
    assert st == 404


def test_delete_ends_the_stream(hub, streams):
    t = "sse-del"
    sid = create_sub(hub, "urn:ngsi-ld:Subscription:sse-del", tenant=t)
    s = open_stream(hub, streams, sid, tenant=t)
    s.wait(lambda x: x.comments, what="hello comment")
    assert hub.delete(SUBS + "/" + sid, tenant=t)[0] == 204
    s.wait(lambda x: x.ended, what="end of the chunked body")
    assert s.events[-1]["event"] == "end"
    assert json.loads(s.events[-1]["data"]) == {"reason": "subscription deleted"}


def test_paused_subscription_streams_nothing(hub, streams):
    t = "sse-pause"
    assert hub.post(ENTITIES, sensor("p1", 0), tenant=t)[0] == 201
    sid = create_sub(hub, "urn:ngsi-ld:Subscription:sse-pause", tenant=t)
    s = open_stream(hub, streams, sid, tenant=t)
    s.wait(lambda x: x.comments, what="hello comment")
    assert hub.patch(SUBS + "/" + sid, {"isActive": False}, tenant=t)[0] == 204
    patch_temp(hub, "p1", 1, tenant=t)
    assert hub.patch(SUBS + "/" + sid, {"isActive": True}, tenant=t)[0] == 204
    patch_temp(hub, "p1", 2, tenant=t)
    got = s.wait_notifications(1)
    s.pump(0.5 * SLOW)
    assert [n["data"][0]["temperature"]["value"] for n in s.notifications()] == [2]


def test_sse_uri_validation(hub):
    body = {"type": "Subscription", "entities": [{"type": "Sensor"}],
            "notification": {"endpoint": {"uri": "urn:pilotlight:other"}}}
    st, _, b = hub.post(SUBS, body)
    assert_problem(st, b, 400, "BadRequestData")
    assert "urn:pilotlight:sse" in b["detail"]


def test_slow_client_is_dropped_with_a_final_event(hub, streams):
    """A client that stops reading is cut off once 1 MiB waits for it, with
    a final "dropped" event; the others keep streaming and the hub keeps
    answering."""
    t = "sse-slow"
    big = "x" * 60000
    assert hub.post(ENTITIES, sensor("s1", 0, blob=prop(big)), tenant=t)[0] == 201
    sid = create_sub(hub, "urn:ngsi-ld:Subscription:sse-slow", tenant=t)
    slow = open_stream(hub, streams, sid, tenant=t, rcvbuf=4096)
    fast = open_stream(hub, streams, sid, tenant=t)
    for s in (slow, fast):
        s.wait(lambda x: x.comments, what="hello comment")
    fast.read_in_background()
    # 12 MB: past the 1 MiB buffer plus what the kernel holds for the slow
    # one (its 4 KiB receive buffer, the hub's send buffer: at most
    # tcp_wmem's 4 MiB); each write waits until the fast one has read it,
    # so it never falls behind, whatever the machine's load
    n = 200
    for v in range(1, n + 1):
        patch_temp(hub, "s1", v, tenant=t)
        fast.wait_notifications(v)
    got = fast.notifications()
    assert [x["data"][0]["temperature"]["value"] for x in got] == list(range(1, n + 1))
    # now read the slow one: what was buffered, then the final event and the end
    slow.wait(lambda x: x.ended, timeout=3 * WAIT, what="end of the slow stream")
    assert slow.events[-1]["event"] == "dropped"
    assert len(slow.notifications()) < n
    vals = [x["data"][0]["temperature"]["value"] for x in slow.notifications()]
    assert vals == list(range(1, len(vals) + 1))       # in order, none skipped before the cut
    assert hub.get("/health")[0] == 200
    patch_temp(hub, "s1", n + 1, tenant=t)
    assert fast.wait_notifications(n + 1)[-1]["data"][0]["temperature"]["value"] == n + 1


def test_stream_cap(hub_factory, streams):
    """At most 64 streams are open at once; the 65th gets 503, and a slot
    comes back when a stream ends. (A hub of its own: no other test's
    streams count.)"""
    hub = hub_factory()
    t = "sse-cap"
    sid = create_sub(hub, "urn:ngsi-ld:Subscription:sse-cap", tenant=t)
    opened = []
    refused = None
    for i in range(70):
        s = open_stream(hub, streams, sid, tenant=t)
        if s.status != 200:
            refused = (i, s)
            break
        s.wait(lambda x: x.comments, what="hello comment")
        opened.append(s)
    assert refused is not None, "no stream was refused"
    i, s = refused
    assert s.status == 503
    assert i == 64
    # free the slots: deleting the subscription ends all its streams
    assert hub.delete(SUBS + "/" + sid, tenant=t)[0] == 204
    for s in opened:
        s.wait(lambda x: x.ended, what="end")
        s.close()
    sid2 = create_sub(hub, "urn:ngsi-ld:Subscription:sse-cap-2", tenant=t)
    assert open_stream(hub, streams, sid2, tenant=t).status == 200


def test_keepalive_comment(hub, streams):
    """An idle stream gets a comment every 15 s."""
    t = "sse-keep"
    sid = create_sub(hub, "urn:ngsi-ld:Subscription:sse-keep", tenant=t)
    s = open_stream(hub, streams, sid, tenant=t)
    s.wait(lambda x: "keep-alive" in x.comments, timeout=15 + WAIT, what="keep-alive comment")


def test_client_that_leaves_is_detached(hub, streams):
    t = "sse-leave"
    assert hub.post(ENTITIES, sensor("l1", 0), tenant=t)[0] == 201
    sid = create_sub(hub, "urn:ngsi-ld:Subscription:sse-leave", tenant=t)
    gone = Stream(hub.port, sid, tenant=t)
    gone.wait(lambda x: x.comments, what="hello comment")
    gone.close()
    stay = open_stream(hub, streams, sid, tenant=t)
    stay.wait(lambda x: x.comments, what="hello comment")
    for v in range(1, 6):
        patch_temp(hub, "l1", v, tenant=t)
    got = stay.wait_notifications(5)
    assert [n["data"][0]["temperature"]["value"] for n in got] == [1, 2, 3, 4, 5]


def test_shutdown_ends_open_streams():
    """SIGTERM with open streams: each ends cleanly (terminating chunk) and
    the hub exits 0 without waiting for the clients."""
    h = Hub()
    try:
        sid = create_sub(h, "urn:ngsi-ld:Subscription:sse-stop")
        ss = [Stream(h.port, sid) for _ in range(3)]
        for s in ss:
            s.wait(lambda x: x.comments, what="hello comment")
        assert h.stop() == 0
        for s in ss:
            s.wait(lambda x: x.ended or x.closed, what="end at shutdown")
            assert s.ended, "the stream was cut, not ended"
            s.close()
        rep = h.sanitizer_report()
        assert rep is None, rep
    finally:
        h.close()


def test_ld_json_stream_events_carry_their_context(hub, streams):
    """A subscription that asked for application/ld+json streams events with
    their @context, so the stream has no Link header."""
    t = "sse-ld"
    assert hub.post(ENTITIES, sensor("l1", 0), tenant=t)[0] == 201
    sid = create_sub(hub, "urn:ngsi-ld:Subscription:sse-ld", tenant=t,
                     notification={"endpoint": {"uri": SSE_URI, "accept": "application/ld+json"}})
    s = open_stream(hub, streams, sid, tenant=t)
    assert s.status == 200 and "link" not in s.headers
    s.wait(lambda x: "pilotlight subscription stream" in x.comments, what="hello comment")
    patch_temp(hub, "l1", 5, tenant=t)
    got = s.wait_notifications(1)
    assert "@context" in got[0] and got[0]["data"][0]["temperature"]["value"] == 5
