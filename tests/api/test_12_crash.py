"""12 - crash safety: a writer streams batch upserts; the server is killed
with SIGKILL mid-stream; after a restart every entity whose batch was
acknowledged (201/204) is present with the acknowledged value."""
import threading
import time

from helpers import BASE, ENTITIES, SLOW, prop

BATCH = 50


def writer(hub_port, acked, stop, errors):
    import http.client
    import json
    conn = http.client.HTTPConnection("127.0.0.1", hub_port, timeout=10 * SLOW)
    n = 0
    while not stop.is_set():
        ids = ["urn:ngsi-ld:Crash:%06d" % (n + i) for i in range(BATCH)]
        body = json.dumps([{"id": x, "type": "Crash", "seq": prop(n + i)}
                           for i, x in enumerate(ids)])
        try:
            conn.request("POST", BASE + "/entityOperations/upsert", body=body,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
        except (OSError, http.client.HTTPException):
            return  # the server died: this batch is not acknowledged
        if r.status in (201, 204):
            acked.extend(ids)
        else:
            errors.append((r.status, n))
        n += BATCH


def test_kill9_keeps_acknowledged_writes(hub):
    acked, errors = [], []
    stop = threading.Event()
    t = threading.Thread(target=writer, args=(hub.port, acked, stop, errors), daemon=True)
    t.start()
    time.sleep(2.0)
    n_before_kill = len(acked)
    hub.kill9()
    stop.set()
    t.join(30 * SLOW)
    assert not t.is_alive()
    assert errors == [], errors
    assert n_before_kill >= BATCH, "no batch was acknowledged in 2 s: %s" % hub.stderr_tail()

    hub.start(port=hub.port)
    missing = []
    chunk = 100
    for i in range(0, len(acked), chunk):
        ids = acked[i:i + chunk]
        st, _, b = hub.get(ENTITIES + "?id=" + ",".join(ids) + "&limit=1000"
                           "&options=keyValues&attrs=seq")
        assert st == 200, hub.last_text
        got = {x["id"]: x["seq"] for x in b}
        for x in ids:
            if x not in got:
                missing.append(x)
            else:
                assert got[x] == int(x.rsplit(":", 1)[1])
    print("crash test: %d entities acknowledged before the kill" % len(acked))
    assert missing == [], "%d of %d acknowledged entities lost, first %s" % (
        len(missing), len(acked), missing[:5])
    # the store is usable after recovery
    st, _, _ = hub.post(ENTITIES, {"id": "urn:ngsi-ld:Crash:after", "type": "Crash"})
    assert st == 201, hub.last_text


def test_kill9_during_idle_keeps_everything(hub):
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Crash:idle", "type": "Crash",
                               "seq": prop(-1)})[0] == 201
    hub.kill9()
    hub.start(port=hub.port)
    st, _, b = hub.get(ENTITIES + "/urn:ngsi-ld:Crash:idle")
    assert st == 200 and b["seq"]["value"] == -1
