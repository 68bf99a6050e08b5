"""
test_16_simulate.py - `pilotlight simulate` end to end: the real binary
publishes to a real mosquitto on a free port (recorded by mosquitto_sub) and
POSTs to a small HTTP server in this file that checks the webhook headers
and counts bodies. Message contents are checked in tests/unit/test_sim.c;
here: counts (sent == received), topics and paths, QoS 0 and 1, the
formats, headers, keep-alive, pacing, non-2xx answers, SIGTERM, usage.
"""
import http.server
import json
import os
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from broker import Broker, free_port
from helpers import BINARY, SLOW

WAIT = 60 * SLOW


def simulate(*args, timeout=WAIT):
    p = subprocess.run([BINARY, "simulate"] + [str(a) for a in args], capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def summary(out):
    """sent=N failed=N elapsed=S rate=R -> dict of floats"""
    line = [ln for ln in out.splitlines() if ln.startswith("sent=")]
    assert len(line) == 1, out
    return {k: float(v) for k, v in (kv.split("=") for kv in line[0].split())}


class Recorder:
    """mosquitto_sub on the uplink topics; ready once a probe comes back."""

    def __init__(self, broker, qos=1):
        fd, self.path = tempfile.mkstemp(prefix="pl-sim-sub-", dir=broker.dir)
        os.close(fd)
        self.out = open(self.path, "w")
        self.broker = broker
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", str(qos), "-v",
             "-t", "application/#", "-t", "v3/#", "-t", "pl-probe/#"],
            stdout=self.out, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10 * SLOW
        while time.monotonic() < deadline:
            broker.publish("pl-probe/x", "probe", qos=0)
            if any(t.startswith("pl-probe/") for t, _ in self.lines()):
                return
            time.sleep(0.1)
        self.close()
        raise AssertionError("mosquitto_sub did not subscribe")

    def lines(self):
        with open(self.path) as f:
            text = f.read()
        # a line mosquitto_sub is still writing is not a message yet
        text = text[:text.rfind("\n") + 1]
        return [ln.partition(" ")[::2] for ln in text.splitlines()]

    def messages(self):
        return [(t, p) for t, p in self.lines() if not t.startswith("pl-probe/")]

    def wait(self, n):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            m = self.messages()
            if len(m) >= n:
                return m
            time.sleep(0.05)
        raise AssertionError("expected %d messages, got %d" % (n, len(self.messages())))

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.out.close()


@pytest.fixture
def broker():
    b = Broker()
    yield b
    b.close()


@pytest.fixture
def recorder(broker):
    r = Recorder(broker)
    yield r
    r.close()


# ---- MQTT ------------------------------------------------------------------

@pytest.mark.parametrize("qos", [0, 1])
def test_mqtt_count_200_all_received(broker, recorder, qos):
    # 4 devices x 50 messages: seq 49 of each is a ChirpStack status event
    rc, out, err = simulate("--mqtt", "mqtt://127.0.0.1:%d" % broker.port, "--count", 200,
                            "--rate", 0, "--devices", 4, "--qos", qos, "--seed", 9)
    assert rc == 0, err
    s = summary(out)
    assert s["sent"] == 200 and s["failed"] == 0
    msgs = recorder.wait(200)
    time.sleep(0.3)  # nothing more arrives
    msgs = recorder.messages()
    assert len(msgs) == 200
    ups = [t for t, _ in msgs if t.endswith("/event/up")]
    status = [t for t, _ in msgs if t.endswith("/event/status")]
    assert len(ups) == 196 and len(status) == 4
    euis = set()
    fcnts = {}
    for topic, payload in msgs:
        parts = topic.split("/")
        assert parts[0] == "application" and parts[2] == "device" and parts[4] == "event"
        m = json.loads(payload)
        assert m["deviceInfo"]["devEui"] == parts[3]
        euis.add(parts[3])
        if parts[5] == "up":
            fcnts.setdefault(parts[3], []).append(m.get("fCnt", 0))
        else:
            assert "batteryLevel" in m or m["externalPowerSource"] is True
    assert len(euis) == 4
    # fCnt increases per device: 0..48 (49 is the status event)
    for eui, seen in fcnts.items():
        assert sorted(seen) == list(range(49)), (eui, seen)


def test_mqtt_formats_mix_and_tts(broker, recorder):
    rc, out, err = simulate("--mqtt", "mqtt://127.0.0.1:%d/" % broker.port, "--count", 60,
                            "--rate", 0, "--devices", 30, "--format", "mix", "--quiet")
    assert rc == 0, err
    assert err == ""  # --quiet: no progress lines
    assert summary(out)["sent"] == 60
    msgs = recorder.wait(60)
    tts = [(t, json.loads(p)) for t, p in msgs if t.startswith("v3/")]
    cs = [(t, json.loads(p)) for t, p in msgs if t.startswith("application/")]
    assert len(tts) + len(cs) == 60 and tts and cs
    for t, m in tts:
        # v3/{app}@ttn/devices/{device_id}/up
        parts = t.split("/")
        assert parts[2] == "devices" and parts[4] == "up" and parts[1].endswith("@ttn")
        assert m["end_device_ids"]["device_id"] == parts[3]
        assert m["uplink_message"]["frm_payload"]
    # a device keeps its format
    by_dev = {}
    for t, m in tts:
        by_dev.setdefault(m["end_device_ids"]["device_id"], set()).add("tts")
    for t, m in cs:
        by_dev.setdefault(m["deviceInfo"]["deviceName"], set()).add("cs")
    assert all(len(v) == 1 for v in by_dev.values())


def test_mqtt_rate_paces_messages(broker, recorder):
    # 40 messages at 20/s: message k is due at k/20 s, so the run lasts >= 1.95 s
    start = time.monotonic()
    rc, out, err = simulate("--mqtt", "mqtt://127.0.0.1:%d" % broker.port, "--count", 40,
                            "--rate", 20, "--devices", 5)
    took = time.monotonic() - start
    assert rc == 0, err
    s = summary(out)
    assert s["sent"] == 40
    assert s["elapsed"] >= 1.9 and took >= 1.9  # its own report, and as seen from outside
    assert len(recorder.wait(40)) == 40


def test_mqtt_broker_unreachable():
    rc, out, err = simulate("--mqtt", "mqtt://127.0.0.1:%d" % free_port(), "--count", 5)
    assert rc == 1
    assert "cannot connect" in err
    assert "sent=" not in out


# ---- webhook ---------------------------------------------------------------

class Hook:
    """HTTP/1.1 server counting POST bodies by path; answers `status`."""

    def __init__(self, secret="s3cret", tenant=None, status=204):
        self.secret, self.tenant, self.status = secret, tenant, status
        self.lock = threading.Lock()
        self.bodies = []           # (path, parsed body)
        self.bad = []              # what failed the header checks
        self.peers = set()         # client (host, port): one per connection
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                problems = []
                if self.headers.get("Authorization") != "Bearer " + outer.secret:
                    problems.append("auth %r" % self.headers.get("Authorization"))
                if self.headers.get("NGSILD-Tenant") != outer.tenant:
                    problems.append("tenant %r" % self.headers.get("NGSILD-Tenant"))
                if self.headers.get("Content-Type") != "application/json":
                    problems.append("ctype %r" % self.headers.get("Content-Type"))
                with outer.lock:
                    outer.peers.add(self.client_address)
                    if problems:
                        outer.bad.append(problems)
                    else:
                        outer.bodies.append((self.path, json.loads(body)))
                status = 401 if problems else outer.status
                reply = b"" if status == 204 else b'{"type":"x"}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def count(self):
        with self.lock:
            return len(self.bodies)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hook():
    h = Hook(tenant="city-east")
    yield h
    h.close()


def test_webhook_mix_paths_headers_keepalive(hook):
    # 4 devices x 50: ChirpStack devices send one status event each (seq 49)
    rc, out, err = simulate("--webhook", hook.url + "/", "--secret", "s3cret", "--tenant",
                            "city-east", "--count", 200, "--rate", 0, "--devices", 4,
                            "--format", "mix", "--seed", 3)
    assert rc == 0, err
    s = summary(out)
    assert s["sent"] == 200 and s["failed"] == 0
    assert hook.bad == []
    assert hook.count() == 200
    paths = {}
    for path, body in hook.bodies:
        paths[path] = paths.get(path, 0) + 1
        if path == "/pilotlight/v1/ingest/tts":
            assert "uplink_message" in body and "end_device_ids" in body
        elif path == "/pilotlight/v1/ingest/chirpstack?event=status":
            assert "data" not in body and "deviceInfo" in body
        else:
            assert path == "/pilotlight/v1/ingest/chirpstack?event=up", path
            assert "data" in body
    assert set(paths) == {"/pilotlight/v1/ingest/tts",
                          "/pilotlight/v1/ingest/chirpstack?event=up",
                          "/pilotlight/v1/ingest/chirpstack?event=status"}
    n_cs_devices = paths["/pilotlight/v1/ingest/chirpstack?event=status"]
    assert paths["/pilotlight/v1/ingest/chirpstack?event=up"] == 49 * n_cs_devices
    assert paths["/pilotlight/v1/ingest/tts"] == 50 * (4 - n_cs_devices)
    assert len(hook.peers) == 1  # one keep-alive connection


def test_webhook_non_2xx_counts_failed():
    h = Hook(secret="right", tenant=None)
    try:
        rc, out, err = simulate("--webhook", h.url, "--secret", "wrong", "--count", 7,
                                "--rate", 0, "--devices", 3)
        assert rc == 1
        s = summary(out)
        assert s["sent"] == 0 and s["failed"] == 7
        assert len(h.bad) == 7 and h.count() == 0
        # the default tenant sends no NGSILD-Tenant header; 500 answers count failed too
        h.status = 500
        rc, out, err = simulate("--webhook", h.url, "--secret", "right", "--count", 5,
                                "--rate", 0, "--devices", 3)
        assert rc == 1
        s = summary(out)
        assert s["sent"] == 0 and s["failed"] == 5 and h.count() == 5
        h.status = 200
        rc, out, err = simulate("--webhook", h.url, "--secret", "right", "--count", 5,
                                "--rate", 0, "--devices", 3)
        assert rc == 0, err
        assert summary(out)["sent"] == 5 and h.count() == 10
    finally:
        h.close()


def test_webhook_unreachable():
    rc, out, err = simulate("--webhook", "http://127.0.0.1:%d" % free_port(), "--count", 3)
    assert rc == 1
    assert "cannot reach" in err


def test_sigterm_stops_with_summary(hook):
    p = subprocess.Popen([BINARY, "simulate", "--webhook", hook.url, "--secret", "s3cret",
                          "--tenant", "city-east", "--rate", "50", "--devices", "10"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + WAIT
        while hook.count() < 10 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
        assert hook.count() >= 10
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=WAIT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    s = summary(out.decode())
    assert s["failed"] == 0
    assert s["sent"] == hook.count()


# ---- against the hub's webhooks -----------------------------------------------

def test_simulate_into_the_hub(hub):
    """Provision what --print-profiles/--print-devices give, then post 3
    messages per device through the real webhooks: every one is stored."""
    tenant = "sim-e2e"
    with open(os.path.join(hub.data_dir, "admin.secret")) as f:
        adm = {"Authorization": "Bearer " + f.read().strip()}
    rc, out, err = simulate("--print-profiles")
    assert rc == 0
    for p in json.loads(out):
        st, _, _ = hub.post("/pilotlight/v1/device-profiles", p, headers=adm, tenant=tenant)
        assert st == 201, hub.last_text
    rc, out, err = simulate("--print-devices", "--devices", 20, "--seed", 5)
    assert rc == 0
    st, _, b = hub.post("/pilotlight/v1/devices", json.loads(out), headers=adm, tenant=tenant)
    assert st == 201 and len(b["success"]) == 20 and b["errors"] == [], hub.last_text
    st, _, b = hub.post("/pilotlight/v1/ingest/secret", headers=adm, tenant=tenant)
    assert st == 201, hub.last_text
    rc, out, err = simulate("--webhook", "http://127.0.0.1:%d" % hub.port, "--secret",
                            b["secret"], "--tenant", tenant, "--devices", 20, "--seed", 5,
                            "--count", 60, "--rate", 0, "--format", "mix")
    assert rc == 0, err
    assert summary(out)["sent"] == 60
    counts = {}
    for typ in ("AirQualityObserved", "CrowdFlowObserved", "WaterQualityObserved", "Device"):
        st, h, _ = hub.get("/ngsi-ld/v1/entities?type=%s&count=true&limit=1" % typ,
                           tenant=tenant)
        assert st == 200, hub.last_text
        counts[typ] = int(h["ngsild-results-count"])
    # kinds repeat air, light, water, light, air, light, air, light, water, air
    assert counts == {"AirQualityObserved": 8, "CrowdFlowObserved": 8,
                      "WaterQualityObserved": 4, "Device": 20}
    st, _, e = hub.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Device:%s?options=keyValues"
                       % json.loads(simulate("--print-devices", "--devices", 1, "--seed", 5)[1])
                       [0]["devEui"], tenant=tenant)
    assert st == 200, hub.last_text
    assert e["fCnt"] == 2 and e["name"] == "sim-air-0000"
    assert -120 <= e["rssi"] <= -60
    st, _, stats = hub.get("/pilotlight/v1/ingest/stats", headers=adm, tenant=tenant)
    assert st == 200 and stats["stored"] == 60 and stats["rejected"] == 0, stats


# ---- command line ------------------------------------------------------------

def test_usage_and_printing():
    rc, out, err = simulate("--help")
    assert rc == 0 and "--webhook URL" in out and "--print-profiles" in out
    rc, out, err = simulate("--count", 5)
    assert rc == 2 and "exactly one" in err
    rc, out, err = simulate("--mqtt", "mqtt://127.0.0.1:1", "--webhook", "http://x")
    assert rc == 2
    for bad in (["--rate", "fast"], ["--devices", "0"], ["--qos", "2"], ["--lat", "91"],
                ["--count", "-1"], ["--seed", "-3"], ["--frobnicate", "1"], ["--rate"]):
        rc, out, err = simulate(*bad)
        assert rc == 2, bad
        assert err.startswith("pilotlight simulate:"), (bad, err)
    rc, out, err = simulate("--webhook", "http://127.0.0.1:1", "--format", "lorawan")
    assert rc == 2 and "format" in err

    rc, out, err = simulate("--print-profiles")
    assert rc == 0
    profiles = json.loads(out)
    assert [p["id"] for p in profiles] == ["sim-air-quality-lpp", "sim-light-counter",
                                           "sim-water-lpp"]
    rc, out, err = simulate("--print-devices", "--devices", 5, "--seed", 4, "--radius", 300)
    assert rc == 0
    devices = json.loads(out)
    assert len(devices) == 5
    assert [d["profile"] for d in devices] == ["sim-air-quality-lpp", "sim-light-counter",
                                               "sim-water-lpp", "sim-light-counter",
                                               "sim-air-quality-lpp"]
    assert len({d["devEui"] for d in devices}) == 5
    rc, out2, err = simulate("--print-devices", "--devices", 5, "--seed", 4, "--radius", 300)
    assert out2 == out  # deterministic

    rc, out, err = simulate("--bench-generate", 2000, "--format", "mix")
    assert rc == 0
    s = {k: float(v) for k, v in (kv.split("=") for kv in out.split())}
    assert s["generated"] == 2000 and s["rate"] > 0 and 300 < s["avg_bytes"] < 4000


def test_mqtt_broker_restart_reconnects(broker):
    """The broker goes away mid-run and comes back on the same port: the
    simulator counts what it could not hand over and carries on."""
    first = Recorder(broker)
    p = subprocess.Popen([BINARY, "simulate", "--mqtt", "mqtt://127.0.0.1:%d" % broker.port,
                          "--rate", "100", "--devices", "10", "--qos", "1", "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    second = None
    try:
        first.wait(20)
        first.close()
        broker.stop()
        time.sleep(1.5)  # the simulator runs on with the broker down
        broker.start()
        second = Recorder(broker)
        second.wait(20)  # reconnected (libmosquitto retries within 1-5 s)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=WAIT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if second is not None:
            second.close()
    assert p.returncode == 1, err  # some messages failed while the broker was down
    s = summary(out.decode())
    assert s["failed"] > 0
    assert s["sent"] >= len(first.messages()) + len(second.messages())
