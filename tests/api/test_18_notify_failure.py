"""
test_18_notify_failure.py - notifications under failure (issue 3, Tests):
a receiver that is down, one that sleeps past the hub's 5 s timeout, one
that answers 500 and a good one, all subscribed to the same changes. The
good one receives every notification in order while the others fail; the
status members (timesSent, timesFailed, lastNotification, lastSuccess,
lastFailure, status) say exactly what happened; when the bad receivers
recover, delivery resumes; a restart keeps subscriptions and counters.

The hub retries a notification 3 times (backoff 200 ms, 400 ms) and times an
attempt out after 5 s; the expected counts below follow from that. Every
wait polls with a generous deadline; nothing depends on how fast the
machine is.
"""
import http.server
import json
import threading
import time

import pytest

from conftest import Hub, free_port
from helpers import BASE, ENTITIES, SLOW, check_iso, prop

SUBS = BASE + "/subscriptions"
WAIT = 60 * SLOW
ATTEMPTS = 3          # the hub's attempts per notification
SLOW_SLEEP = 5.5      # past the hub's 5 s timeout per attempt


class Receiver:
    """An HTTP receiver on loopback that records each POST body (with
    retries: every attempt is recorded when it arrives). status, delay and
    endless can be changed while it runs."""

    def __init__(self, status=200, delay=0.0, port=None, endless=False):
        self.status = status
        self.delay = delay
        self.endless = endless
        self.got = []
        self.lock = threading.Lock()
        self.port = port or free_port()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n))
                with outer.lock:
                    outer.got.append(body)
                    delay, status, endless = outer.delay, outer.status, outer.endless
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                if endless:  # an answer that never ends
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    chunk = b"%x\r\n%s\r\n" % (65536, b"z" * 65536)
                    try:
                        for _ in range(2000):  # 128 MiB at most
                            self.wfile.write(chunk)
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/notify" % self.port

    def values(self):
        with self.lock:
            return [b["data"][0]["temperature"]["value"] for b in self.got]

    def wait_value(self, v, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if v in self.values():
                return self.values()
            time.sleep(0.05)
        raise AssertionError("value %r never arrived; got %r" % (v, self.values()))

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def sensor(i, temp):
    return {"id": "urn:ngsi-ld:Sensor:%s" % i, "type": "Sensor", "temperature": prop(temp)}


def create_sub(hub, sid, url, tenant):
    body = {"id": sid, "type": "Subscription", "entities": [{"type": "Sensor"}],
            "notification": {"endpoint": {"uri": url}}}
    st, _, b = hub.post(SUBS, body, tenant=tenant)
    assert st == 201, (st, b)


def status(hub, sid, tenant):
    st, _, b = hub.get(SUBS + "/" + sid, tenant=tenant)
    assert st == 200, b
    return b["notification"]


def wait_status(hub, sid, tenant, pred, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        n = status(hub, sid, tenant)
        if pred(n):
            return n
        if time.monotonic() > deadline:
            raise AssertionError("%s: %s never held: %r" % (sid, what, n))
        time.sleep(0.1)


def counters(n):
    return {k: n.get(k) for k in ("timesSent", "timesFailed", "lastNotification", "lastSuccess",
                                  "lastFailure", "status")}


def test_failing_receivers_recover_and_counters_survive_restart():
    t = "fail"
    hub = Hub()
    good, err, slow = Receiver(), Receiver(status=500), Receiver(delay=SLOW_SLEEP)
    down_port = free_port()
    down = None
    subs = {"good": "urn:ngsi-ld:Subscription:f-good", "err": "urn:ngsi-ld:Subscription:f-500",
            "slow": "urn:ngsi-ld:Subscription:f-slow", "down": "urn:ngsi-ld:Subscription:f-down"}
    try:
        create_sub(hub, subs["good"], good.url, t)
        create_sub(hub, subs["err"], err.url, t)
        create_sub(hub, subs["slow"], slow.url, t)
        create_sub(hub, subs["down"], "http://127.0.0.1:%d/notify" % down_port, t)
        n = 20
        assert hub.post(ENTITIES, sensor("f1", 0), tenant=t)[0] == 201
        for v in range(1, n + 1):
            st, _, b = hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:f1/attrs",
                                 {"temperature": prop(v)}, tenant=t)
            assert st == 204, b
        last_ack = time.time()
        # the good receiver gets every notification, once, in order, while
        # the slow one is still stuck in its first notification's attempts
        deadline = time.monotonic() + WAIT
        while len(good.values()) < n + 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert good.values() == list(range(0, n + 1))
        assert status(hub, subs["slow"], t)["timesSent"] < n + 1
        g = wait_status(hub, subs["good"], t, lambda x: x.get("timesSent") == n + 1,
                        "21 sent")
        assert g["timesFailed"] == 0 and g["status"] == "ok"
        assert "lastFailure" not in g
        check_iso(g["lastNotification"])
        assert g["lastNotification"] <= g["lastSuccess"]
        # lastNotification is the send time of the last one: not before the
        # last write was acknowledged (same clock, millisecond resolution)
        assert g["lastNotification"] >= time.strftime(
            "%Y-%m-%dT%H:%M:%S", time.gmtime(int(last_ack)))

        # 500: every notification attempted 3 times, all failed
        e = wait_status(hub, subs["err"], t, lambda x: x.get("timesSent") == n + 1,
                        "21 sent")
        assert e["timesFailed"] == n + 1 and e["status"] == "failed"
        assert "lastSuccess" not in e and e["lastNotification"] <= e["lastFailure"]
        vals = err.values()
        assert sorted(vals) == vals, "out of order"
        assert all(vals.count(v) == ATTEMPTS for v in range(n + 1)), vals
        # down: refused connections, all failed, nothing received anywhere
        d = wait_status(hub, subs["down"], t, lambda x: x.get("timesSent") == n + 1,
                        "21 sent")
        assert d["timesFailed"] == n + 1 and d["status"] == "failed" and "lastSuccess" not in d
        # slow: the first notification timed out three times
        s = wait_status(hub, subs["slow"], t, lambda x: x.get("timesFailed", 0) >= 1,
                        "a timeout")
        assert s["status"] == "failed" and "lastSuccess" not in s

        # recovery: all three come back; a new change reaches everyone, and
        # what the slow one still had queued is delivered too
        with err.lock:
            err.status = 200
        with slow.lock:
            slow.delay = 0
        down = Receiver(port=down_port)
        st, _, b = hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:f1/attrs",
                             {"temperature": prop(999)}, tenant=t)
        assert st == 204, b
        for r in (good, err, down, slow):
            r.wait_value(999, timeout=3 * WAIT)
        assert good.values() == list(range(0, n + 1)) + [999]
        assert down.values() == [999]
        assert err.values()[-1] == 999 and err.values().count(999) == 1
        sv = slow.values()
        assert sorted(sv) == sv and set(sv) == set(range(0, n + 1)) | {999}, sv

        final = {}
        for name, sid in subs.items():
            x = wait_status(hub, sid, t, lambda x: x.get("timesSent") == n + 2, "22 sent")
            assert x["status"] == "ok", (name, x)
            if name in ("err", "down", "slow"):
                assert x["lastSuccess"] > x["lastFailure"], (name, x)
            final[name] = counters(x)
        assert final["good"]["timesFailed"] == 0
        assert final["err"]["timesFailed"] == n + 1
        assert final["down"]["timesFailed"] == n + 1
        assert 1 <= final["slow"]["timesFailed"] < n + 1

        # restart: subscriptions and their counters are still there
        assert hub.restart() == 0
        for name, sid in subs.items():
            assert counters(status(hub, sid, t)) == final[name], name
        st, _, b = hub.patch(ENTITIES + "/urn:ngsi-ld:Sensor:f1/attrs",
                             {"temperature": prop(1000)}, tenant=t)
        assert st == 204, b
        for r in (good, err, down, slow):
            r.wait_value(1000)
        x = wait_status(hub, subs["good"], t, lambda x: x.get("timesSent") == n + 3, "23 sent")
        assert x["timesFailed"] == 0
        rep = hub.sanitizer_report()
        assert rep is None, rep
    finally:
        for r in (good, err, slow, down):
            if r:
                r.stop()
        hub.close()


@pytest.fixture(scope="module")
def hub2():
    h = Hub()
    yield h
    h.close()
    rep = h.sanitizer_report()
    assert rep is None, rep


def test_endless_answer_is_cut_and_counts_as_success(hub2):
    """A receiver whose 200 answer never ends: the hub reads at most 64 KiB
    of it, so the notification is a success, not a 5 s timeout."""
    t = "endless"
    r = Receiver(endless=True)
    try:
        create_sub(hub2, "urn:ngsi-ld:Subscription:endless", r.url, t)
        assert hub2.post(ENTITIES, sensor("e1", 1), tenant=t)[0] == 201
        x = wait_status(hub2, "urn:ngsi-ld:Subscription:endless", t,
                        lambda x: x.get("timesSent") == 1, "1 sent")
        assert x["timesFailed"] == 0 and x["status"] == "ok", x
        assert r.values() == [1]  # no retry
    finally:
        r.stop()


def test_queue_overflow_counts_as_dropped_not_failed(hub2):
    """A receiver that holds every notification: its first one is in flight
    (three 5 s timeouts), 1,000 wait in its queue, the rest are dropped:
    counted in timesDropped, never in timesSent or timesFailed."""
    t = "overflow"
    r = Receiver(delay=60)
    sid = "urn:ngsi-ld:Subscription:overflow"
    try:
        create_sub(hub2, sid, r.url, t)
        ents = [sensor("o%d" % i, i) for i in range(1100)]
        for i in range(0, len(ents), 100):
            st, _, b = hub2.post(BASE + "/entityOperations/create", ents[i:i + 100], tenant=t)
            assert st == 201, b
        # 1,100 notifications: 1,000 queued, 0 or 1 in flight, the rest dropped
        wait_status(hub2, sid, t, lambda x: x.get("timesDropped", 0) >= 99, "99 drops")
        x = status(hub2, sid, t)
        assert x["timesDropped"] in (99, 100), x
        assert x["timesSent"] == x["timesFailed"] <= 1, x
    finally:
        r.stop()
        hub2.delete(SUBS + "/" + sid, tenant=t)
