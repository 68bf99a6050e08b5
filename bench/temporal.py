#!/usr/bin/env python3
"""bench/temporal.py - the temporal API's figures (issue 3), each beside the
ceiling measured in the same run (GET /version over the same connection) and
the hub's CPU time per request (utime+stime from /proc/PID/stat).

Loads 30 days of one-minute data (43,200 instances) for ENTITIES entities of
type Meter through POST /temporal/entities (8,640 instances per body), then
times, sequentially on one keep-alive connection:
  aggr 1      GET /temporal/entities/{id}?options=aggregatedValues&aggrMethods=avg,max
              &aggrPeriodDuration=PT1H over the 30 days        target <= 20 ms
  aggr N      GET /temporal/entities?type=Meter&... the same over every entity
                                                              target <= 500 ms (N=100)
  lastN=100   GET /temporal/entities/{id}?lastN=100            target <= 2 ms
Environment: BENCH_HUB (release binary), BENCH_WORK, BENCH_PORT [18927],
BENCH_TEMPORAL_ENTITIES [100], BENCH_TEMPORAL_RUNS [20].
"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HUB = os.environ.get("BENCH_HUB", os.path.join(ROOT, "build/release/pilotlight"))
WORK = os.path.join(os.environ.get("BENCH_WORK", os.path.join(ROOT, "bench/out/work")), "temporal")
PORT = int(os.environ.get("BENCH_PORT_TEMPORAL", os.environ.get("BENCH_PORT", "18927")))
N_ENT = int(os.environ.get("BENCH_TEMPORAL_ENTITIES", "100"))
RUNS = int(os.environ.get("BENCH_TEMPORAL_RUNS", "20"))
MINUTES = 30 * 24 * 60
BODY = 8640
T0 = 1767225600  # 2026-01-01T00:00:00Z
TCK = os.sysconf("SC_CLK_TCK")


def iso(sec):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec))


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])


class Client:
    def __init__(self):
        self.c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)

    def req(self, method, path, body=None):
        h = {"Content-Type": "application/json"} if body is not None else {}
        self.c.request(method, path, body=body, headers=h)
        r = self.c.getresponse()
        data = r.read()
        return r.status, data


def timed(cl, path, pid, runs):
    lat = []
    t0 = cpu_ticks(pid)
    for _ in range(runs):
        s = time.perf_counter()
        st, data = cl.req("GET", path)
        lat.append((time.perf_counter() - s) * 1000)
        if st not in (200, 206):
            sys.exit("bench: %s -> %d %s" % (path, st, data[:300]))
    cpu = (cpu_ticks(pid) - t0) / TCK / runs * 1000
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))], cpu, len(data)


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    log = open(os.path.join(WORK, "hub.log"), "wb")
    hub = subprocess.Popen([HUB, "serve", "--port", str(PORT), "--bind", "127.0.0.1", "--data",
                            os.path.join(WORK, "data"), "--log-level", "warn",
                            "--max-body", "33554432", "--temporal-max-instances", "100000"],
                           stdout=log, stderr=log)
    try:
        deadline = time.time() + 30
        while True:
            try:
                cl = Client()
                if cl.req("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit("bench: the hub did not start")
            time.sleep(0.05)
        # load
        t_load, n_inst = time.perf_counter(), 0
        c0 = cpu_ticks(hub.pid)
        for e in range(N_ENT):
            for start in range(0, MINUTES, BODY):
                inst = [{"type": "Property", "value": round(20 + ((m * 37 + e) % 100) / 10, 1),
                         "observedAt": iso(T0 + 60 * m)} for m in range(start, start + BODY)]
                body = json.dumps({"id": "urn:ngsi-ld:Meter:%d" % e, "type": "Meter",
                                   "power": inst})
                st, data = cl.req("POST", "/ngsi-ld/v1/temporal/entities", body)
                if st not in (201, 204):
                    sys.exit("bench: load -> %d %s" % (st, data[:300]))
                n_inst += BODY
        load_s = time.perf_counter() - t_load
        load_cpu = (cpu_ticks(hub.pid) - c0) / TCK
        print("temporal load       : %d instances (%d entities x 30 days of 1-minute data) in %.1f s,"
              " %.0f instances/s | cpu/instance hub %.1f us"
              % (n_inst, N_ENT, load_s, n_inst / load_s, load_cpu / n_inst * 1e6))
        v50, v99, vcpu, _ = timed(cl, "/version", hub.pid, max(RUNS, 200))
        ceiling = "| ceiling GET /version p50 %.2f ms, cpu %.0f us" % (v50, vcpu * 1000)
        window = "&timerel=between&timeAt=%s&endTimeAt=%s" % (iso(T0), iso(T0 + MINUTES * 60))
        aggr = "options=aggregatedValues&aggrMethods=avg,max&aggrPeriodDuration=PT1H" + window
        p50, p99, cpu, size = timed(cl, "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Meter:0?" + aggr,
                                    hub.pid, RUNS)
        print("temporal aggr 1     : avg,max per PT1H over 43,200 instances: p50 %.1f ms p99 %.1f ms"
              " (%d B, target <= 20 ms) | cpu/req hub %.1f ms %s" % (p50, p99, size, cpu, ceiling))
        p50, p99, cpu, size = timed(cl, "/ngsi-ld/v1/temporal/entities?type=Meter&limit=%d&%s"
                                    % (min(N_ENT, 1000), aggr), hub.pid, max(3, RUNS // 4))
        print("temporal aggr %-5d : avg,max per PT1H over %d instances: p50 %.0f ms p99 %.0f ms"
              " (%d B, target <= 500 ms for 100) | cpu/req hub %.0f ms %s"
              % (N_ENT, N_ENT * MINUTES, p50, p99, size, cpu, ceiling))
        p50, p99, cpu, size = timed(cl, "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Meter:0?lastN=100",
                                    hub.pid, max(RUNS * 10, 200))
        print("temporal lastN=100  : p50 %.2f ms p99 %.2f ms (%d B, target <= 2 ms) | cpu/req hub %.2f ms %s"
              % (p50, p99, size, cpu, ceiling))
        p50, p99, cpu, size = timed(cl, "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Meter:0"
                                    "?lastN=100&options=temporalValues", hub.pid, max(RUNS * 10, 200))
        print("temporal lastN=100 v: temporalValues p50 %.2f ms p99 %.2f ms | cpu/req hub %.2f ms"
              % (p50, p99, cpu))
        print("temporal store      : %.0f B/instance on disk"
              % (sum(os.path.getsize(os.path.join(WORK, "data", f))
                     for f in os.listdir(os.path.join(WORK, "data"))) / n_inst))
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(60)
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(os.path.join(WORK, "data"), ignore_errors=True)


if __name__ == "__main__":
    main()
