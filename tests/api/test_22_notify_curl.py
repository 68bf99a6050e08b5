"""
test_22_notify_curl.py - HTTP notifications through libcurl: the path of
https:// receivers and of every receiver when a proxy is configured in the
hub's environment (plain http:// otherwise goes through the hub's own
client, tested in test_21_notify_http.py).

- http_proxy set: each notification goes to the proxy as an absolute-form
  request ("POST http://host:port/path?query"), and the proxy's forward
  reaches the receiver; the status members count it as sent.
- http_proxy set and no_proxy naming the receiver: libcurl sends directly
  (this keeps libcurl's direct path under test): notifications arrive in
  order, a receiver answering 500 is retried and counted as failed.

Waits poll with generous deadlines; nothing depends on the machine's speed.
"""
import http.client
import http.server
import os
import threading
import time
import urllib.parse

import pytest

from conftest import free_port
from helpers import BASE, SLOW, prop
from receiver import Receiver

SUBS = BASE + "/subscriptions"
WAIT = 30 * SLOW


def values(rx):
    return [b["data"][0]["temperature"]["value"] for b in rx.bodies()]


class Proxy:
    """A forward HTTP proxy: records each request line's target and
    forwards the request to it, relaying the answer's status."""

    def __init__(self):
        self.targets = []
        self.lock = threading.Lock()
        self.port = free_port()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with outer.lock:
                    outer.targets.append(self.path)
                u = urllib.parse.urlsplit(self.path)
                status = 502
                if u.scheme == "http" and u.hostname:
                    skip = {"host", "content-length", "proxy-connection", "connection"}
                    hdrs = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
                    try:
                        c.request("POST", u.path + ("?" + u.query if u.query else ""), body, hdrs)
                        r = c.getresponse()
                        r.read()
                        status = r.status
                    except OSError:
                        status = 502
                    finally:
                        c.close()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def hub_env(**proxy):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(proxy)
    return env


def subscribe(hub, sid, etype, url, tenant):
    body = {"id": sid, "type": "Subscription", "entities": [{"type": etype}],
            "notification": {"endpoint": {"uri": url}}}
    st, _, b = hub.post(SUBS, body, tenant=tenant)
    assert st == 201, (st, b)


def write(hub, etype, i, temp, tenant):
    e = {"id": "urn:ngsi-ld:%s:%d" % (etype, i), "type": etype, "temperature": prop(temp)}
    st, _, b = hub.post(BASE + "/entityOperations/upsert", [e], tenant=tenant)
    assert st in (201, 204), (st, b)


def status(hub, sid, tenant):
    st, _, b = hub.get(SUBS + "/" + sid, tenant=tenant)
    assert st == 200, b
    return b["notification"]


def wait_for(pred, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("%s never held" % what)
        time.sleep(0.05)


@pytest.fixture(scope="module")
def proxy():
    p = Proxy()
    yield p
    p.stop()


def test_notifications_go_through_the_proxy(hub_factory, proxy):
    t = "proxied"
    rx = Receiver()
    try:
        hub = hub_factory(env=hub_env(http_proxy="http://127.0.0.1:%d" % proxy.port))
        sid = "urn:ngsi-ld:Subscription:via-proxy"
        subscribe(hub, sid, "ProxiedSensor", rx.url + "?city=ams", t)
        for v in (1, 2, 3):
            write(hub, "ProxiedSensor", 1, v, t)
            wait_for(lambda: v in values(rx), "value %d at the receiver" % v)
        assert values(rx) == [1, 2, 3]
        with proxy.lock:
            targets = list(proxy.targets)
        # absolute-form targets: the hub spoke to the proxy, not the receiver
        assert targets == [rx.url + "?city=ams"] * 3, targets
        assert all(path == "/notify?city=ams" for path, _, _ in rx.got)
        n = wait_for(lambda: (lambda s: s if s.get("timesSent") == 3 else None)(status(hub, sid, t)),
                     "timesSent 3")
        assert n.get("timesFailed", 0) == 0
        assert n["status"] == "ok"
    finally:
        rx.stop()


def test_no_proxy_sends_directly_with_libcurl(hub_factory, proxy):
    t = "direct"
    good, bad = Receiver(), Receiver(status=500)
    try:
        # the proxy named here is not even listening: had libcurl used it,
        # nothing would arrive
        env = hub_env(http_proxy="http://127.0.0.1:%d" % free_port(), no_proxy="127.0.0.1")
        hub = hub_factory(env=env)
        subscribe(hub, "urn:ngsi-ld:Subscription:direct-good", "DirectSensor", good.url, t)
        subscribe(hub, "urn:ngsi-ld:Subscription:direct-bad", "DirectSensor", bad.url, t)
        before = len(proxy.targets)
        for v in range(1, 6):
            write(hub, "DirectSensor", 7, v, t)
        wait_for(lambda: 5 in values(good), "the last value at the good receiver")
        assert values(good) == [1, 2, 3, 4, 5]  # in order, once each
        n = wait_for(lambda: (lambda s: s if s.get("timesSent") == 5 else None)(
            status(hub, "urn:ngsi-ld:Subscription:direct-good", t)), "good: timesSent 5")
        assert n.get("timesFailed", 0) == 0 and n["status"] == "ok"
        # the 500 receiver: 3 attempts per notification, every one failed
        n = wait_for(lambda: (lambda s: s if s.get("timesFailed") == 5 else None)(
            status(hub, "urn:ngsi-ld:Subscription:direct-bad", t)), "bad: timesFailed 5")
        assert n["timesSent"] == 5 and n["status"] == "failed"
        assert "lastFailure" in n
        assert len(values(bad)) == 15
        assert sorted(set(values(bad))) == [1, 2, 3, 4, 5]
        assert len(proxy.targets) == before
    finally:
        good.stop()
        bad.stop()
