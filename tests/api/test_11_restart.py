"""11 - a clean restart (SIGTERM, start on the same data dir) keeps every
entity, attribute instance, tenant and system attribute."""
from helpers import BASE, ENTITIES, assert_problem, prop, rel

DS = "urn:ngsi-ld:Dataset:a"


def test_restart_keeps_data(hub):
    ents = [{"id": "urn:ngsi-ld:Meter:r%d" % i, "type": "Meter", "kwh": prop(i * 1.5),
             "site": rel("urn:ngsi-ld:Site:s%d" % (i % 3))} for i in range(30)]
    st, _, _ = hub.post(BASE + "/entityOperations/create", ents)
    assert st == 201, hub.last_text
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Meter:multi", "type": "Meter",
                               "kwh": [prop(1), prop(2, datasetId=DS)]})[0] == 201
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Meter:t", "type": "Meter"},
                    tenant="restart")[0] == 201
    assert hub.patch(ENTITIES + "/urn:ngsi-ld:Meter:r5/attrs", {"kwh": prop(99)})[0] == 204
    assert hub.delete(ENTITIES + "/urn:ngsi-ld:Meter:r7")[0] == 204
    before = hub.get(ENTITIES + "/urn:ngsi-ld:Meter:r5?options=sysAttrs")[2]

    rc = hub.restart()
    assert rc == 0, "exit status %s after SIGTERM:\n%s" % (rc, hub.stderr_tail())

    st, h, b = hub.get(ENTITIES + "?type=Meter&limit=1000&count=true")
    assert st == 200
    assert h["ngsild-results-count"] == "30"
    assert sorted(x["id"] for x in b) == sorted(
        ["urn:ngsi-ld:Meter:r%d" % i for i in range(30) if i != 7] + ["urn:ngsi-ld:Meter:multi"])
    after = hub.get(ENTITIES + "/urn:ngsi-ld:Meter:r5?options=sysAttrs")[2]
    assert after == before
    assert after["kwh"]["value"] == 99
    st, _, b = hub.get(ENTITIES + "/urn:ngsi-ld:Meter:r7")
    assert_problem(st, b, 404, "ResourceNotFound")
    b = hub.get(ENTITIES + "/urn:ngsi-ld:Meter:multi")[2]
    assert sorted(x["value"] for x in b["kwh"]) == [1, 2]
    assert hub.get(ENTITIES + "/urn:ngsi-ld:Meter:t", tenant="restart")[0] == 200
    # queries still use the indexes correctly
    st, _, b = hub.get(ENTITIES + "?type=Meter&q=site==urn:ngsi-ld:Site:s1&limit=100")
    assert sorted(x["id"] for x in b) == sorted("urn:ngsi-ld:Meter:r%d" % i for i in range(30)
                                                if i % 3 == 1 and i != 7)


def test_writes_after_restart(hub):
    hub.restart()
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Meter:after", "type": "Meter"})[0] == 201
    st, _, b = hub.post(ENTITIES, {"id": "urn:ngsi-ld:Meter:r1", "type": "Meter"})
    assert_problem(st, b, 409, "AlreadyExists")


def test_version_and_health_after_restart(hub):
    hub.restart()
    st, _, b = hub.get("/version")
    assert st == 200 and b["name"] == "pilotlight"
    st, _, b = hub.get("/health")
    assert st == 200 and b["status"] == "ok"


def test_durability_full_and_kill9(hub_factory):
    """With durability = full (fsync on every group commit) writes are
    acknowledged and survive kill -9, like with the default."""
    h = hub_factory("--durability", "full")
    ents = [{"id": "urn:ngsi-ld:Meter:f%d" % i, "type": "Meter", "kwh": prop(i)} for i in range(50)]
    st, _, b = h.post(BASE + "/entityOperations/upsert", ents)
    assert st == 201 and len(b) == 50, h.last_text
    assert h.patch(ENTITIES + "/urn:ngsi-ld:Meter:f3/attrs", {"kwh": prop(333)})[0] == 204
    h.kill9()
    h.start(port=h.port)
    st, hd, _ = h.get(ENTITIES + "?type=Meter&count=true&limit=0")
    assert st == 200 and hd["ngsild-results-count"] == "50"
    assert h.get(ENTITIES + "/urn:ngsi-ld:Meter:f3?options=keyValues")[2]["kwh"] == 333


def test_store_stats_follow_the_wal(hub):
    """GET /pilotlight/v1/store/stats (admin secret): the WAL's frames grow
    with writes, and enough writes bring a background checkpoint, with no
    checkpoint left to the writer. (The store's unit test checks that the
    checkpointer keeps up across WAL restarts.)"""
    import os
    import time
    path = "/pilotlight/v1/store/stats"
    st, _, b = hub.get(path)
    assert st == 401 and b["type"] == "urn:pilotlight:errors:Unauthorized", b
    with open(os.path.join(hub.data_dir, "admin.secret")) as f:
        auth = {"Authorization": "Bearer " + f.read().strip()}
    st, _, s0 = hub.get(path, headers=auth)
    assert st == 200, s0
    assert s0["backend"] == "sqlite"
    assert set(s0) == {"backend", "walFrames", "walFramesMax", "walRestarts", "checkpoints",
                       "writerCheckpoints"}
    # 1,000 documents of ~6 KB (a page each) in 40 commits: past the 500
    # frames that bring a checkpoint
    blob = "x" * 6000
    for k in range(40):
        ents = [{"id": "urn:ngsi-ld:Blob:%d-%d" % (k, i), "type": "Blob", "b": prop(blob)}
                for i in range(25)]
        assert hub.post(BASE + "/entityOperations/create", ents)[0] == 201
    deadline = time.monotonic() + 30  # the pass runs after the commit that called for it
    while True:
        st, _, s1 = hub.get(path, headers=auth)
        assert st == 200
        if s1["checkpoints"] > s0["checkpoints"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert s1["walFramesMax"] > s0["walFramesMax"]
    assert s1["checkpoints"] > s0["checkpoints"]
    assert s1["writerCheckpoints"] == 0
