"""
test_21_notify_http.py - the wire behaviour of the hub's own HTTP/1.1
notification client (src/notify/httpc.c), which sends every notification to
a plain http:// receiver when no proxy is configured.

The receivers here are raw sockets (RawReceiver: a listening socket on a
free loopback port and a thread per connection), not an HTTP library: each
request's head and Content-Length body are read and recorded as they came
(method, target, version, every header line, body, and which connection
and which request of that connection it was), and the answer is exactly
the bytes a test chooses (sent at once or byte by byte; then the
connection kept, closed, reset, or left without an answer). So the tests
see what the client really sends and how it copes with what real receivers
answer: framing of requests and answers, keep-alive, interim answers,
stale keep-alive connections, failures and their retries, name resolution.

What the subscription's status says is checked too (GET
/subscriptions/{id}: notification.timesSent, timesFailed, lastSuccess,
lastFailure, status).

The hub tries a notification 3 times (backoff 200 ms, then 400 ms) and
gives an attempt 5 s (no option changes that), so the receiver that never
answers costs about 16 s. Waits poll with generous deadlines; no assertion
depends on how fast the machine is. The hub is started with proxy variables
removed from its environment (with a proxy, libcurl would send instead) and
with --log-level debug, so each failure's reason is in its log: it is shown
when an assertion about a subscription fails.
"""
import base64
import json
import os
import select
import socket
import threading
import time

import pytest

from conftest import Hub
from helpers import BASE, ENTITIES, LINK_REL, SLOW, check_iso, prop

SUBS = BASE + "/subscriptions"
WAIT = 20 * SLOW
SILENT_WAIT = 60 * SLOW  # 3 attempts of 5 s each, and more
ATTEMPTS = 3
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY")

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


# ---- the hub ---------------------------------------------------------------

def direct_hub():
    """A hub that sends plain http:// itself (no proxy in its environment),
    logging each failure's reason (debug)."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    return Hub(["--log-level", "debug"], env=env)


@pytest.fixture(scope="module")
def hub():
    h = direct_hub()
    yield h
    h.close()
    rep = h.sanitizer_report()
    assert rep is None, rep


# ---- a raw-socket receiver ---------------------------------------------------

class Answer:
    """Send data; then keep the connection (default), close it (close) or
    reset it (rst: SO_LINGER 0). trickle: seconds between single bytes."""

    def __init__(self, data, close=False, rst=False, trickle=0.0):
        self.data, self.close, self.rst, self.trickle = data, close, rst, trickle


class Close:
    """Close the connection without answering (rst: reset it)."""

    def __init__(self, rst=False):
        self.rst = rst


class Silent:
    """Never answer; keep the connection until the client closes it."""


class Killed(Exception):
    pass


class Req:
    def __init__(self, conn, seq, method, target, version, headers, body, complete):
        self.conn, self.seq = conn, seq
        self.method, self.target, self.version = method, target, version
        self.headers = headers    # [(name, value)] as received, in order
        self.body = body          # bytes
        self.complete = complete  # the whole Content-Length body arrived

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def value(self):
        """The v value of the notified entity (which notification this is)."""
        try:
            return self.json()["data"][0]["v"]["value"]
        except (ValueError, KeyError, IndexError, TypeError):
            return None

    def __repr__(self):
        return "<Req conn=%d seq=%d %s %s v=%r>" % (self.conn, self.seq, self.method,
                                                   self.target, self.value())


class RawReceiver:
    """A listening socket on host (127.0.0.1 or ::1), port chosen by the
    kernel. script(req) -> Answer / Close / Silent decides each answer;
    answer_early: answer once the head is read, before reading the body (a
    predicate of the request head, or a constant); a Close then closes
    without reading the body.
    rcvbuf: SO_RCVBUF of the connections (small: the client's sends block)."""

    def __init__(self, script=None, host="127.0.0.1", answer_early=False, rcvbuf=None,
                 read_pause=0.0):
        self.script = script or (lambda req: Answer(OK))
        self.answer_early = answer_early
        self.read_pause = read_pause
        self.reqs = []
        self.conns = []  # per connection: closed_by_peer, pending (a request unanswered),
        #                  ended (its thread is done), kill / push (set by the test)
        self.errors = []
        self.cond = threading.Condition()
        self.socks = set()
        self.stopping = False
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.lsock = socket.socket(fam, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.lsock.bind((host, 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.1)
        self.host = host
        self.port = self.lsock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, path="/notify", host=None):
        h = host or (("[%s]" % self.host) if ":" in self.host else self.host)
        return "http://%s:%d%s" % (h, self.port, path)

    # -- threads
    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            s.settimeout(None)
            with self.cond:
                cid = len(self.conns)
                self.conns.append({"closed_by_peer": False, "pending": False, "kill": None,
                                   "ended": False, "push": b""})
                self.socks.add(s)
                self.cond.notify_all()
            threading.Thread(target=self._serve, args=(s, cid), daemon=True).start()

    def _recv(self, s, cid):
        """The next bytes, b"" at the end; raises Killed when the test ends
        the connection (kill) or the receiver stops."""
        while True:
            with self.cond:
                k = ("close", b"") if self.stopping else self.conns[cid]["kill"]
                push, self.conns[cid]["push"] = self.conns[cid]["push"], b""
            if k:
                raise Killed(*k)
            if push:
                self._send(s, Answer(push))
            try:
                ready, _, _ = select.select([s], [], [], 0.05)
                if ready:
                    return s.recv(65536)
            except OSError:
                return b""

    def push(self, cid, data):
        """Send data on connection cid, unasked, and keep it open."""
        with self.cond:
            self.conns[cid]["push"] = data

    def kill(self, cid, rst=False, data=b""):
        """End connection cid from the receiver's side (data, then FIN or
        RST)."""
        with self.cond:
            self.conns[cid]["kill"] = ("rst" if rst else "close", data)
        self.wait(lambda r: r.conns[cid]["ended"], "connection %d ended" % cid)

    def _peer_closed(self, cid):
        with self.cond:
            self.conns[cid]["closed_by_peer"] = True
            self.conns[cid]["pending"] = False
            self.cond.notify_all()

    def _send(self, s, a):
        try:
            if a.trickle:
                for i in range(len(a.data)):
                    s.sendall(a.data[i:i + 1])
                    time.sleep(a.trickle)
            else:
                s.sendall(a.data)
            return True
        except OSError:
            return False

    def _end(self, s, rst):
        if rst:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        with self.cond:
            self.socks.discard(s)
        try:
            s.close()
        except OSError:
            pass

    def _serve(self, s, cid):
        try:
            self._serve1(s, cid)
        except Killed as k:
            mode, data = k.args
            if data:
                self._send(s, Answer(data))
            self._end(s, mode == "rst")
        finally:
            with self.cond:
                self.conns[cid]["ended"] = True
                self.cond.notify_all()

    def _serve1(self, s, cid):
        buf = b""
        seq = 0
        while True:
            while b"\r\n\r\n" not in buf:
                d = self._recv(s, cid)
                if not d:
                    if buf:
                        with self.cond:
                            self.errors.append("conn %d: %d bytes, no whole head: %r"
                                               % (cid, len(buf), buf[:200]))
                    self._peer_closed(cid)
                    self._end(s, False)
                    return
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ")
            except ValueError:
                method, target, version = lines[0], "", ""
            headers = []
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                headers.append((k, v.strip(" \t")))
            cls = [v for k, v in headers if k.lower() == "content-length"]
            clen = int(cls[0]) if cls else 0
            early = None
            head_req = Req(cid, seq, method, target, version, headers, b"", False)
            if self.answer_early(head_req) if callable(self.answer_early) else self.answer_early:
                early = self.script(head_req)
                if isinstance(early, Close):  # without reading the body
                    with self.cond:
                        self.reqs.append(head_req)
                        self.cond.notify_all()
                    self._end(s, early.rst)
                    return
                self._send(s, early)
            if self.read_pause:
                time.sleep(self.read_pause)
            closed = False
            while len(buf) < clen:
                d = self._recv(s, cid)
                if not d:
                    closed = True
                    break
                buf += d
            body, buf = buf[:clen], buf[clen:]
            req = Req(cid, seq, method, target, version, headers, body, len(body) == clen)
            seq += 1
            with self.cond:
                self.reqs.append(req)
                self.conns[cid]["pending"] = True
                self.cond.notify_all()
            if closed:
                self._peer_closed(cid)
                self._end(s, False)
                return
            a = early or self.script(req)
            if isinstance(a, Silent):
                while self._recv(s, cid):
                    pass
                self._peer_closed(cid)
                self._end(s, False)
                return
            if isinstance(a, Close):
                with self.cond:
                    self.conns[cid]["pending"] = False
                self._end(s, a.rst)
                return
            sent = self._send(s, a) if not early else True
            with self.cond:
                self.conns[cid]["pending"] = False
            if not sent:  # the client is gone
                self._peer_closed(cid)
            if a.close or a.rst or not sent:
                self._end(s, a.rst)
                return

    # -- queries
    def requests(self, value=None):
        with self.cond:
            return [r for r in self.reqs if value is None or r.value() == value]

    def wait(self, pred, what, timeout=WAIT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("receiver: %s never happened; requests %r, conns %r, "
                                         "errors %r" % (what, self.reqs, self.conns, self.errors))
                self.cond.wait(min(left, 0.2))

    def wait_value(self, value, count=1, timeout=WAIT):
        self.wait(lambda r: len([q for q in r.reqs if q.value() == value]) >= count,
                  "%d request(s) with v=%r" % (count, value), timeout)
        return self.requests(value)

    def n_conns(self):
        with self.cond:
            return len(self.conns)

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.lsock.close()
        deadline = time.monotonic() + 5
        with self.cond:
            while not all(c["ended"] for c in self.conns) and time.monotonic() < deadline:
                self.cond.wait(0.05)


@pytest.fixture
def receivers():
    made = []

    def make(*a, **kw):
        r = RawReceiver(*a, **kw)
        made.append(r)
        return r
    yield make
    for r in made:
        r.stop()


# ---- the hub side ---------------------------------------------------------

def make_sub(hub, tenant, etype, uri, info=None):
    ep = {"uri": uri}
    if info is not None:
        ep["receiverInfo"] = [{"key": k, "value": v} for k, v in info]
    body = {"type": "Subscription", "entities": [{"type": etype}],
            "notification": {"endpoint": ep}}
    st, h, b = hub.post(SUBS, body, tenant=tenant)
    assert st == 201, (st, b)
    assert h["location"].startswith(SUBS + "/")
    return h["location"][len(SUBS) + 1:]


def fire(hub, tenant, etype, n, big=None):
    """Create entity n of etype: one notification to each subscription of
    etype in tenant, with data[0].v.value == n."""
    e = {"id": "urn:ngsi-ld:%s:%s" % (etype, n), "type": etype, "v": prop(n)}
    if big is not None:
        e["big"] = prop(big)
    st, _, b = hub.post(ENTITIES, e, tenant=tenant)
    assert st == 201, (st, b)


def status(hub, tenant, sid):
    st, _, b = hub.get(SUBS + "/" + sid, tenant=tenant)
    assert st == 200, (st, b)
    return b["notification"]


def hub_log(hub, sid):
    return "\n".join(l for l in hub.stderr_text().splitlines() if sid in l)[-3000:]


def wait_sent(hub, tenant, sid, n, timeout=WAIT):
    """Wait until timesSent reaches n; the status members then."""
    deadline = time.monotonic() + timeout
    while True:
        x = status(hub, tenant, sid)
        if x.get("timesSent", 0) >= n:
            return x
        if time.monotonic() > deadline:
            raise AssertionError("%s: timesSent never reached %d: %r\nhub log:\n%s"
                                 % (sid, n, x, hub_log(hub, sid)))
        time.sleep(0.05)


def assert_ok(hub, x, sent, sid, failed=0):
    why = "%r\nhub log:\n%s" % (x, hub_log(hub, sid))
    assert x.get("timesSent") == sent, why
    assert x.get("timesFailed", 0) == failed, why
    assert x.get("status") == "ok", why
    check_iso(x.get("lastSuccess"))
    if failed == 0:
        assert "lastFailure" not in x, why


def assert_failed(hub, x, sent, failed, sid):
    why = "%r\nhub log:\n%s" % (x, hub_log(hub, sid))
    assert x.get("timesSent") == sent, why
    assert x.get("timesFailed", 0) == failed, why
    assert x.get("status") == "failed", why
    check_iso(x.get("lastFailure"))


# ---- 1. the request --------------------------------------------------------

def test_request_shape(hub, receivers):
    """POST <path>?<query> HTTP/1.1 (fragment dropped), Host with the port,
    Content-Type, Link, NGSILD-Tenant, Content-Length of the body, the
    Notification body; receiverInfo headers as given, except those that
    would break the framing (Content-Length, Host, Transfer-Encoding,
    Connection), which are not sent."""
    t, et = "t21-shape", "T21Shape"
    r = receivers()
    uri = r.url("/notify/a%20b?x=1&y=two%2Cthree#frag-ment")
    info = [("X-Custom", "hello world"), ("X-Dash", "-"), ("Connection-Id", "c-1"),
            ("X-Host", "h"), ("Content-Length", "999"), ("Host", "evil.example:1"),
            ("Transfer-Encoding", "chunked"), ("Connection", "close"),
            ("Expect", "100-continue"), ("Upgrade", "h2c"), ("TE", "trailers")]
    sid = make_sub(hub, t, et, uri, info)
    fire(hub, t, et, 1)
    fire(hub, t, et, 2)
    q1 = r.wait_value(1)[0]
    q2 = r.wait_value(2)[0]
    for q in (q1, q2):
        assert q.method == "POST" and q.version == "HTTP/1.1", q
        assert q.target == "/notify/a%20b?x=1&y=two%2Cthree", q.target
        assert q.all("Host") == ["127.0.0.1:%d" % r.port], q.headers
        assert q.all("Content-Length") == [str(len(q.body))], q.headers
        assert q.complete
        assert q.all("Content-Type") == ["application/json"], q.headers
        links = q.all("Link")
        assert len(links) == 1 and ('rel="%s"' % LINK_REL) in links[0], q.headers
        assert q.all("NGSILD-Tenant") == [t], q.headers
        assert q.all("X-Custom") == ["hello world"], q.headers
        assert q.all("X-Dash") == ["-"], q.headers
        assert q.all("Connection-Id") == ["c-1"] and q.all("X-Host") == ["h"], q.headers
        for name in ("Transfer-Encoding", "Connection", "Expect", "Upgrade", "TE"):
            assert q.all(name) == [], (name, q.headers)
        assert all(k and k == k.strip() for k, _ in q.headers), q.headers
        n = q.json()
        assert n["type"] == "Notification" and n["subscriptionId"] == sid, n
        assert n["id"].startswith("urn:ngsi-ld:Notification:"), n
        check_iso(n["notifiedAt"])
        assert len(n["data"]) == 1 and n["data"][0]["type"] == et, n
    assert q1.json()["data"][0]["id"] == "urn:ngsi-ld:%s:1" % et
    assert q1.json()["id"] != q2.json()["id"]
    # the framing was right: the second one came on the same connection
    assert (q1.conn, q1.seq) == (0, 0) and (q2.conn, q2.seq) == (0, 1), (q1, q2)
    assert_ok(hub, wait_sent(hub, t, sid, 2), 2, sid)


def test_long_receiver_info_head(hub, receivers):
    """32 receiverInfo headers of 4,000 characters (what a subscription may
    have: ~128 KB of head) are all sent, on a kept connection."""
    t, et = "t21-long-head", "T21LongHead"
    r = receivers()
    info = [("X-Long-%02d" % i, chr(ord("a") + i % 26) * 4000) for i in range(32)]
    sid = make_sub(hub, t, et, r.url("/long"), info)
    fire(hub, t, et, 1)
    fire(hub, t, et, 2)
    q1, q2 = r.wait_value(1)[0], r.wait_value(2)[0]
    for q in (q1, q2):
        for k, v in info:
            assert q.all(k) == [v], k
        assert q.all("Content-Length") == [str(len(q.body))]
    assert r.n_conns() == 1
    assert_ok(hub, wait_sent(hub, t, sid, 2), 2, sid)


@pytest.mark.parametrize("k,suffix,target", [
    (0, "", "/"),
    (1, "/", "/"),
    (2, "?x=1", "/?x=1"),
    (3, "#only-a-fragment", "/"),
    (4, "/a/b;p=1?q=%41&r=%2F&s=a@b#x?y", "/a/b;p=1?q=%41&r=%2F&s=a@b"),
])
def test_request_target_forms(hub, receivers, k, suffix, target):
    """The target is the URI's path and query as written (no path: /),
    without the fragment."""
    t, et = "t21-target", "T21Target%d" % k
    r = receivers()
    sid = make_sub(hub, t, et, "http://127.0.0.1:%d%s" % (r.port, suffix))
    fire(hub, t, et, 1)
    q = r.wait_value(1)[0]
    assert q.target == target, q.target
    assert q.all("Host") == ["127.0.0.1:%d" % r.port], q.headers
    assert_ok(hub, wait_sent(hub, t, sid, 1), 1, sid)


def test_basic_auth_from_uri_and_receiverinfo_wins(hub, receivers):
    """user:password@ in the URI becomes Authorization: Basic (percent-
    decoded), the user information is not in Host; a receiverInfo
    Authorization replaces it; an empty one ("@host") sends none. No
    tenant: no NGSILD-Tenant header."""
    et = "T21Auth"
    r = receivers()
    sid_a = make_sub(hub, None, et, "http://us%%40er:p%%3Ass%%20w@127.0.0.1:%d/a" % r.port)
    sid_b = make_sub(hub, None, et, "http://alice:secret@127.0.0.1:%d/b" % r.port,
                     [("authorization", "Bearer tok-123")])
    sid_c = make_sub(hub, None, et, "http://bob@127.0.0.1:%d/c?q=1" % r.port)
    sid_d = make_sub(hub, None, et, "http://@127.0.0.1:%d/d" % r.port)
    fire(hub, None, et, 1)
    r.wait(lambda r: len(r.reqs) >= 4, "4 requests")
    by = {q.target: q for q in r.requests()}
    assert set(by) == {"/a", "/b", "/c?q=1", "/d"}, by
    a, b, c = by["/a"], by["/b"], by["/c?q=1"]
    # empty user information: no credentials at all
    assert by["/d"].all("Authorization") == [], by["/d"].headers
    assert by["/d"].all("Host") == ["127.0.0.1:%d" % r.port], by["/d"].headers
    assert a.all("Authorization") == [
        "Basic " + base64.b64encode(b"us@er:p:ss w").decode()], a.headers
    assert b.all("Authorization") == ["Bearer tok-123"], b.headers
    auth_c = c.all("Authorization")
    assert len(auth_c) == 1 and auth_c[0].startswith("Basic "), c.headers
    # RFC 7617 2: user-pass = user-id ":" password (libcurl sends "bob:")
    assert base64.b64decode(auth_c[0][6:]) == b"bob:", auth_c
    for q in (a, b, c):
        assert q.all("Host") == ["127.0.0.1:%d" % r.port], q.headers
        assert q.all("NGSILD-Tenant") == [], q.headers
    for sid in (sid_a, sid_b, sid_c, sid_d):
        assert_ok(hub, wait_sent(hub, None, sid, 1), 1, sid)


# ---- 2. keep-alive ---------------------------------------------------------

def test_keep_alive_one_connection(hub, receivers):
    t, et = "t21-keep", "T21Keep"
    r = receivers()
    sid = make_sub(hub, t, et, r.url())
    for i in range(1, 7):
        fire(hub, t, et, i)
    r.wait(lambda r: len(r.reqs) >= 6, "6 requests")
    qs = r.requests()
    assert [q.value() for q in qs] == [1, 2, 3, 4, 5, 6], qs
    assert [(q.conn, q.seq) for q in qs] == [(0, i) for i in range(6)], qs
    assert r.n_conns() == 1
    assert_ok(hub, wait_sent(hub, t, sid, 6), 6, sid)


def test_two_subscriptions_one_uri_share_the_connection(hub, receivers):
    t, et = "t21-share", "T21Share"
    r = receivers()
    sid_a = make_sub(hub, t, et, r.url("/same"))
    sid_b = make_sub(hub, t, et, r.url("/same"))
    for i in (1, 2, 3):
        fire(hub, t, et, i)
    r.wait(lambda r: len(r.reqs) >= 6, "6 requests")
    qs = r.requests()
    assert sorted(q.value() for q in qs) == [1, 1, 2, 2, 3, 3], qs
    assert {q.json()["subscriptionId"] for q in qs} == {sid_a, sid_b}
    assert [(q.conn, q.seq) for q in qs] == [(0, i) for i in range(6)], qs
    for sid in (sid_a, sid_b):
        assert_ok(hub, wait_sent(hub, t, sid, 3), 3, sid)


# ---- 3. answers that are successes -----------------------------------------

CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
           b"5;ext=1\r\nhello\r\n"
           b"6 ; name=\"quoted;value\"\r\n world\r\n"
           b"A\r\n0123456789\r\n"
           b"0;last\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n")

# name -> (answer, the next request on the same connection?)
ANSWERS = {
    "content-length": (Answer(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 11\r\n\r\n{\"ok\":true}"), True),
    "chunked-ext-trailers": (Answer(CHUNKED), True),
    "long-chunk-extension-and-trailer": (Answer(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;ext=" + b"e" * 2000 + b"\r\nabcd\r\n0\r\nX-Long-Trailer: " + b"t" * 2000 +
        b"\r\n\r\n"), True),
    "100-continue": (Answer(b"HTTP/1.1 100 Continue\r\n\r\n"
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), True),
    "103-then-100-then-201": (Answer(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload"
                                     b"\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
                                     b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"), True),
    "204": (Answer(b"HTTP/1.1 204 No Content\r\nServer: raw\r\n\r\n"), True),
    "http10-close-delimited": (Answer(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                                      b"body until the end", close=True), False),
    "http10-keep-alive": (Answer(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                                 b"Content-Length: 3\r\n\r\nabc"), True),
    # the receiver keeps the connection: the client must close it itself
    "connection-close": (Answer(b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
                                b"Content-Length: 0\r\n\r\n"), False),
    "byte-by-byte": (Answer(b"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 4\r\n\r\nabcd",
                            trickle=0.003), True),
    "long-header-line": (Answer(b"HTTP/1.1 200 OK\r\nX-Junk: " + b"j" * 20000 +
                                b"\r\nContent-Length: 2\r\n\r\nok"), True),
    "lf-line-ends": (Answer(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"), True),
    "40k-body": (Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n" + b"b" * 40000),
                 True),
    # past the 64 KiB the client reads: the status counts, the connection ends
    "200k-body": (Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n" + b"b" * 200000),
                  False),
    # bytes after the answer answer nothing: the connection is not reused
    "extra-bytes": (Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                           b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"), False),
    "no-reason-phrase": (Answer(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), True),
    "header-case-and-spaces": (Answer(b"HTTP/1.1 200 OK\r\ncontent-LENGTH:3 \r\n\r\nabc"), True),
    "chunked-case": (Answer(b"HTTP/1.1 200 OK\r\ntransfer-encoding:  Chunked\r\n\r\n"
                            b"3\r\nabc\r\n0\r\n\r\n"), True),
    # HTTP/1.0 without keep-alive: the client closes the connection itself
    "http10-content-length": (Answer(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"), False),
    # a reason phrase is free text of any length (RFC 9112 4)
    "long-reason-phrase": (Answer(b"HTTP/1.1 200 " + b"O" * 1000 +
                                  b"\r\nContent-Length: 0\r\n\r\n"), True),
}


@pytest.mark.parametrize("name", list(ANSWERS))
def test_answer_counts_as_success(hub, receivers, name):
    answer, same_conn = ANSWERS[name]
    t, et = "t21-ans-" + name, "T21Ans"
    r = receivers(lambda req: answer)
    sid = make_sub(hub, t, et, r.url())
    fire(hub, t, et, 1)
    q1 = r.wait_value(1)[0]
    x = wait_sent(hub, t, sid, 1)
    assert_ok(hub, x, 1, sid)
    fire(hub, t, et, 2)
    q2s = r.wait_value(2)
    x = wait_sent(hub, t, sid, 2)
    assert_ok(hub, x, 2, sid)
    assert len(r.requests(1)) == 1 and len(q2s) == 1, r.requests()
    q2 = q2s[0]
    if same_conn:
        assert (q2.conn, q2.seq) == (q1.conn, 1), (q1, q2)
    else:
        assert q2.conn != q1.conn and q2.seq == 0, (q1, q2)
        # and the client closed (or the receiver did) the first connection
        r.wait(lambda r: r.conns[q1.conn]["closed_by_peer"] or name in (
            "http10-close-delimited",), "connection %d closed by the client" % q1.conn)


# ---- 4. failures -----------------------------------------------------------

# name -> (answer, all attempts on one connection?)
FAILURES = {
    "404": (Answer(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"), True),
    "500": (Answer(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"), True),
    "301-not-followed": (Answer(b"HTTP/1.1 301 Moved\r\nLocation: /elsewhere\r\n"
                                b"Content-Length: 0\r\n\r\n"), True),
    "garbage": (Answer(b"hello\r\n\r\n"), False),
    "closed-no-answer": (Close(), False),
    "reset-no-answer": (Close(rst=True), False),
    "truncated-body": (Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", close=True),
                       False),
    "truncated-head": (Answer(b"HTTP/1.1 200 OK\r\nContent-Le", close=True), False),
    "101-switching": (Answer(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
                             b"Connection: Upgrade\r\n\r\n"), False),
    # more than the client reads without a final status: a failure, no timeout
    "endless-interim": (Answer(b"HTTP/1.1 100 Continue\r\n\r\n" * 5000), False),
    "endless-head": (Answer(b"HTTP/1.1 200 OK\r\nX-Junk: " + b"j" * 100000), False),
}


@pytest.mark.parametrize("name", list(FAILURES))
def test_failure_counted_and_retried(hub, receivers, name):
    """Each attempt fails: the notification is sent 3 times (the same
    one), then counted as failed; on a fresh connection a close without an
    answer is a failure, not a stale keep-alive connection (no 4th
    request). Afterwards a good answer makes the next one a success."""
    answer, one_conn = FAILURES[name]
    t, et = "t21-fail-" + name, "T21Fail"
    mode = {"bad": True}
    r = receivers(lambda req: answer if mode["bad"] else Answer(OK))
    sid = make_sub(hub, t, et, r.url())
    fire(hub, t, et, 1)
    x = wait_sent(hub, t, sid, 1)
    assert_failed(hub, x, 1, 1, sid)
    assert "lastSuccess" not in x, x
    qs = r.requests(1)
    assert len(qs) == ATTEMPTS, qs
    assert len({q.json()["id"] for q in qs}) == 1, "not the same notification"
    log = hub_log(hub, sid)
    assert "no answer within" not in log, log  # seen as a failure, not waited out
    if name.startswith("endless"):
        assert "too large" in log, log
    conns = [q.conn for q in qs]
    if one_conn:
        assert conns == [0, 0, 0], qs
    else:
        assert conns == [0, 1, 2] and all(q.seq == 0 for q in qs), qs
    # recovery
    mode["bad"] = False
    fire(hub, t, et, 2)
    assert len(r.wait_value(2)) == 1
    x = wait_sent(hub, t, sid, 2)
    assert_ok(hub, x, 2, sid, failed=1)
    assert x["lastSuccess"] >= x["lastFailure"], x


def test_no_answer_times_out_and_others_go_on(hub, receivers):
    """A receiver that accepts and reads but never answers: each attempt
    ends at the hub's timeout (the client closes the connection), 3
    attempts, counted as failed; meanwhile another subscription's receiver
    gets its notifications while a request to the silent one is open."""
    t = "t21-silent"
    silent = receivers(lambda req: Silent())
    seen_pending = []

    def good_script(req):
        with silent.cond:
            seen_pending.append(any(c["pending"] for c in silent.conns))
        return Answer(OK)
    good = receivers(good_script)
    sid_s = make_sub(hub, t, "T21Silent", silent.url())
    sid_g = make_sub(hub, t, "T21Good", good.url())
    fire(hub, t, "T21Silent", 1)
    silent.wait(lambda r: any(c["pending"] for c in r.conns), "a request held open")
    for i in range(1, 4):
        fire(hub, t, "T21Good", i)
        good.wait_value(i)
    assert any(seen_pending), "the good receiver was only served while no silent request was open"
    assert_ok(hub, wait_sent(hub, t, sid_g, 3), 3, sid_g)
    x = wait_sent(hub, t, sid_s, 1, timeout=SILENT_WAIT)
    assert_failed(hub, x, 1, 1, sid_s)
    qs = silent.requests(1)
    assert [q.conn for q in qs] == [0, 1, 2], qs
    # the client gave up each connection itself
    silent.wait(lambda r: all(c["closed_by_peer"] for c in r.conns), "all 3 closed by the hub")


# ---- 5. stale keep-alive connections ------------------------------------------

def _stale_script(kind):
    def script(req):
        if req.conn == 0 and req.seq == 0:
            return Answer(OK, close=(kind == "close-after-answer"))
        if req.conn == 0:  # the second request on the first connection
            return Close(rst=(kind == "reset-on-next-request"))
        return Answer(OK)
    return script


@pytest.mark.parametrize("kind", ["close-after-answer", "close-when-idle", "reset-when-idle",
                                  "408-when-idle", "junk-when-idle", "close-on-next-request",
                                  "reset-on-next-request"])
def test_stale_keep_alive_connection(hub, receivers, kind):
    """The receiver ends a keep-alive connection (right after its answer,
    later while it is idle, with a FIN or a reset, or when the next request
    arrives, without answering it): the next notification still arrives, on
    a new connection, and counts as a success (timesFailed stays 0)."""
    t, et = "t21-stale-" + kind, "T21Stale"
    r = receivers(_stale_script(kind))
    sid = make_sub(hub, t, et, r.url())
    fire(hub, t, et, 1)
    r.wait_value(1)
    assert_ok(hub, wait_sent(hub, t, sid, 1), 1, sid)
    if kind == "junk-when-idle":
        # bytes nobody asked for: the client must drop the connection (else
        # they would be taken for the next answer)
        r.push(0, b"HTTP/1.1 500 Unasked\r\nContent-Length: 0\r\n\r\n")
        r.wait(lambda r: r.conns[0]["closed_by_peer"], "connection 0 closed by the hub")
    elif kind.endswith("when-idle"):
        r.kill(0, rst=kind.startswith("reset"),
               data=b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                    b"Content-Length: 0\r\n\r\n" if kind.startswith("408") else b"")
    if not kind.endswith("next-request"):
        r.wait(lambda r: r.conns[0]["ended"], "connection 0 ended")
        # let the hub see the end while idle (the outcome must be the same if not)
        time.sleep(0.3)
    fire(hub, t, et, 2)
    x = wait_sent(hub, t, sid, 2)
    assert_ok(hub, x, 2, sid)
    qs = r.requests(2)
    assert qs[-1].conn == 1 and qs[-1].seq == 0, r.requests()
    if kind.endswith("next-request"):
        assert [q.conn for q in qs] == [0, 1], qs  # sent again once, on a new connection
    else:
        assert len(qs) == 1, qs
    assert r.n_conns() == 2


def test_stale_connection_closed_while_a_big_request_is_sent(hub, receivers):
    """The receiver resets a reused keep-alive connection as soon as it has
    the head of a 700 KB notification, unread body and all: the client's
    send fails mid-request; it sends the notification again on a new
    connection, whole, and it counts as a success."""
    t, et = "t21-stale-big", "T21StaleBig"
    r = receivers(lambda req: Close(rst=True) if (req.conn, req.seq) == (0, 1) else Answer(OK),
                  answer_early=lambda req: (req.conn, req.seq) == (0, 1), rcvbuf=4096)
    sid = make_sub(hub, t, et, r.url())
    fire(hub, t, et, 1)
    r.wait_value(1)
    assert_ok(hub, wait_sent(hub, t, sid, 1), 1, sid)
    fire(hub, t, et, 2, big=BIG)
    x = wait_sent(hub, t, sid, 2)
    assert_ok(hub, x, 2, sid)
    qs = r.requests()
    assert [(q.conn, q.seq) for q in qs] == [(0, 0), (0, 1), (1, 0)], qs
    assert not qs[1].complete and qs[2].complete, qs
    assert qs[2].value() == 2 and qs[2].json()["data"][0]["big"]["value"] == BIG


def test_stale_retry_only_once(hub, receivers):
    """A receiver that closes every connection at a request it does not
    like: the stale-connection retry is spent once per attempt that began
    on a reused connection; fresh connections that close are failures: 4
    requests for the notification (reused + retry, then 2 fresh attempts),
    counted failed once."""
    t, et = "t21-stale-once", "T21StaleOnce"
    r = receivers(lambda req: Answer(OK) if req.value() == 1 else Close())
    sid = make_sub(hub, t, et, r.url())
    fire(hub, t, et, 1)
    r.wait_value(1)
    assert_ok(hub, wait_sent(hub, t, sid, 1), 1, sid)
    fire(hub, t, et, 2)
    x = wait_sent(hub, t, sid, 2)
    assert_failed(hub, x, 2, 1, sid)
    qs = r.requests(2)
    assert [(q.conn, q.seq) for q in qs] == [(0, 1), (1, 0), (2, 0), (3, 0)], qs


# ---- 6. name resolution --------------------------------------------------------

def test_localhost(hub, receivers):
    """A name: http://localhost:<port>/ reaches a receiver on 127.0.0.1
    (whatever order localhost resolves in), Host says localhost:<port>."""
    t, et = "t21-localhost", "T21Localhost"
    r = receivers()
    sid = make_sub(hub, t, et, "http://localhost:%d/by-name" % r.port)
    fire(hub, t, et, 1)
    fire(hub, t, et, 2)
    q1, q2 = r.wait_value(1)[0], r.wait_value(2)[0]
    assert q1.target == "/by-name"
    assert q1.all("Host") == ["localhost:%d" % r.port], q1.headers
    assert (q2.conn, q2.seq) == (q1.conn, 1)
    assert_ok(hub, wait_sent(hub, t, sid, 2), 2, sid)


def test_localhost_to_an_ipv6_only_receiver(hub, receivers):
    """Where localhost resolves to both ::1 and 127.0.0.1, a receiver on
    ::1 only is reached whichever comes first."""
    try:
        addrs = {a[4][0] for a in socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)}
    except OSError as e:
        pytest.skip("localhost does not resolve: %s" % e)
    if "::1" not in addrs or "127.0.0.1" not in addrs:
        pytest.skip("localhost resolves to %s here, not to both loopbacks" % sorted(addrs))
    try:
        r = receivers(host="::1")
    except OSError as e:
        pytest.skip("no IPv6 loopback here: %s" % e)
    t, et = "t21-localhost6", "T21Localhost6"
    sid = make_sub(hub, t, et, "http://localhost:%d/by-name6" % r.port)
    fire(hub, t, et, 1)
    q = r.wait_value(1)[0]
    assert q.all("Host") == ["localhost:%d" % r.port], q.headers
    assert_ok(hub, wait_sent(hub, t, sid, 1), 1, sid)


def test_ipv6_literal(hub, receivers):
    try:
        r = receivers(host="::1")
    except OSError as e:
        pytest.skip("no IPv6 loopback here: %s" % e)
    t, et = "t21-v6", "T21V6"
    sid = make_sub(hub, t, et, "http://[::1]:%d/v6?z=1" % r.port)
    fire(hub, t, et, 1)
    q = r.wait_value(1)[0]
    assert q.target == "/v6?z=1"
    assert q.all("Host") == ["[::1]:%d" % r.port], q.headers
    assert_ok(hub, wait_sent(hub, t, sid, 1), 1, sid)


def test_unresolvable_host_fails_others_go_on(hub, receivers):
    t = "t21-nxdomain"
    good = receivers()
    sid_bad = make_sub(hub, t, "T21Both", "http://pl-no-such-host.invalid:8080/x")
    sid_good = make_sub(hub, t, "T21Both", good.url())
    for i in range(1, 4):
        fire(hub, t, "T21Both", i)
    for i in range(1, 4):
        good.wait_value(i)
    assert_ok(hub, wait_sent(hub, t, sid_good, 3), 3, sid_good)
    x = wait_sent(hub, t, sid_bad, 3, timeout=SILENT_WAIT)
    assert_failed(hub, x, 3, 3, sid_bad)
    assert "lastSuccess" not in x
    assert [q.value() for q in good.requests()] == [1, 2, 3]


# ---- 7. big notifications: sends that block, answers before the body ----------

BIG = "x" * 700000


def test_big_notification_to_a_slow_reader(hub, receivers):
    """A 700 KB notification to a receiver with a small receive buffer that
    waits before reading: the client's sends block and resume; the body
    arrives whole, Content-Length right, and the next one follows on the
    same connection."""
    t, et = "t21-big", "T21Big"
    r = receivers(rcvbuf=4096, read_pause=0.3)
    sid = make_sub(hub, t, et, r.url())
    fire(hub, t, et, 1, big=BIG)
    fire(hub, t, et, 2)
    q1, q2 = r.wait_value(1)[0], r.wait_value(2)[0]
    assert q1.complete and q1.all("Content-Length") == [str(len(q1.body))]
    assert q1.json()["data"][0]["big"]["value"] == BIG
    assert (q2.conn, q2.seq) == (q1.conn, 1), (q1, q2)
    assert_ok(hub, wait_sent(hub, t, sid, 2), 2, sid)


@pytest.mark.parametrize("answer", ["200", "413"])
def test_answer_before_the_body_is_read(hub, receivers, answer):
    """The receiver answers as soon as it has the head of a 700 KB
    notification, then reads the body: the answer counts (200: success;
    413: a failure, retried), and the next notification arrives."""
    t, et = "t21-early-" + answer, "T21Early"
    data = (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" if answer == "200" else
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
    r = receivers(lambda req: Answer(data), answer_early=True, rcvbuf=4096)
    sid = make_sub(hub, t, et, r.url())
    fire(hub, t, et, 1, big=BIG)
    x = wait_sent(hub, t, sid, 1)
    if answer == "200":
        assert_ok(hub, x, 1, sid)
    else:
        assert_failed(hub, x, 1, 1, sid)
    r.answer_early = False
    r.script = lambda req: Answer(OK)
    fire(hub, t, et, 2)
    q2 = r.wait_value(2)
    assert len(q2) == 1 and q2[0].complete, q2
    x = wait_sent(hub, t, sid, 2)
    assert_ok(hub, x, 2, sid, failed=0 if answer == "200" else 1)


# ---- 8. endpoints freed, hub stopped -------------------------------------------

def test_idle_endpoints_reclaimed_close_their_connections(receivers):
    """The endpoint table holds 256 URIs. 256 subscriptions, each to its own
    URI, leave 256 keep-alive connections; once the subscriptions are
    deleted, a new URI makes the hub reclaim those endpoints: their
    connections are closed, and the new one is served."""
    h = direct_hub()
    try:
        t = "t21-reclaim"
        r = receivers()
        sids = [make_sub(h, t, "T21Many", r.url("/e%d" % i)) for i in range(256)]
        fire(h, t, "T21Many", 1)
        r.wait(lambda r: len(r.reqs) >= 256, "256 notifications", timeout=3 * WAIT)
        assert sorted(q.target for q in r.requests()) == sorted("/e%d" % i for i in range(256))
        assert r.n_conns() == 256
        for sid in sids:
            assert h.delete(SUBS + "/" + sid, tenant=t)[0] == 204
        with r.cond:
            assert not any(c["closed_by_peer"] for c in r.conns), "closed before the reclaim"
        sid = make_sub(h, t, "T21New", r.url("/new"))
        fire(h, t, "T21New", 2)
        q = r.wait_value(2)[0]
        assert q.target == "/new" and q.conn == 256, q
        assert_ok(h, wait_sent(h, t, sid, 1), 1, sid)
        r.wait(lambda r: all(c["closed_by_peer"] for c in r.conns[:256]),
               "the 256 idle connections closed by the hub", timeout=3 * WAIT)
        # and the hub is still well
        fire(h, t, "T21New", 3)
        assert r.wait_value(3)[0].conn == 256
        assert h.stop() == 0
    finally:
        h.close()
    assert h.sanitizer_report() is None, h.sanitizer_report()


def test_stop_with_a_request_in_flight(receivers):
    """SIGTERM while a notification waits for an answer (and another
    endpoint holds an idle keep-alive connection): the hub exits cleanly
    and closes both connections."""
    h = direct_hub()
    try:
        t = "t21-stop"
        silent = receivers(lambda req: Silent())
        idle = receivers()
        make_sub(h, t, "T21StopS", silent.url())
        make_sub(h, t, "T21StopI", idle.url())
        fire(h, t, "T21StopI", 1)
        idle.wait_value(1)
        fire(h, t, "T21StopS", 1)
        silent.wait(lambda r: any(c["pending"] for c in r.conns), "a request held open")
        assert h.stop() == 0, h.stderr_tail()
        silent.wait(lambda r: r.conns[0]["closed_by_peer"], "the silent connection closed")
        idle.wait(lambda r: r.conns[0]["closed_by_peer"], "the idle connection closed")
    finally:
        h.close()
    assert h.sanitizer_report() is None, h.sanitizer_report()
