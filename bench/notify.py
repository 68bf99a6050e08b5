#!/usr/bin/python3
"""
bench/notify.py - notification latency (issue 3, Speed): driven by
bench/notify.sh against a running hub and a running bench/notify_rx.

Set-up: 10,000 entities in 100 groups of 100, group NN of type
BenchSensorNN (ids urn:ngsi-ld:BenchSensorNN:IIIII); 100 subscriptions, one
per type (watchedAttributes sent, keyValues, attributes [sent]), each to
its own endpoint URI on the receiver (100 sender threads in the hub). Each
change notifies exactly one subscription, found through the hub's
type index.

Run: batches of 100 updates (POST /entityOperations/update, attribute
"sent" = the send time in us since the run's base time) paced at RATE updates/s for DURATION s by
a few threads with keep-alive connections. Each batch's acknowledgement
time is kept; the receiver notes each notification's "sent" and its
receive time. Latency "from ack" = receive - acknowledgement of the
batch that carried the value (negative when the notification arrived
before the HTTP answer: the hub commits, notifies, then answers); "from
send" = receive - send. CPU: the hub's utime+stime over the run divided
by the notifications delivered.

Prints one RESULT line of key=value pairs for notify.sh.
"""
import http.client
import json
import os
import random
import sys
import threading
import time

BASE = "/ngsi-ld/v1"


def hub_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0
    return sorted_vals[min(len(sorted_vals) - 1, int(len(sorted_vals) * p / 100))]


def main():
    port, rx_port, rx_out, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    rate = int(os.environ.get("BENCH_NOTIFY_RATE", "10000"))
    duration = float(os.environ.get("BENCH_NOTIFY_DURATION", "10"))
    n_subs = int(os.environ.get("BENCH_NOTIFY_SUBS", "100"))
    per_group = int(os.environ.get("BENCH_NOTIFY_GROUP", "100"))
    batch = 100
    threads = 4
    ents = [("urn:ngsi-ld:BenchSensor%02d:%05d" % (g, g * per_group + i), "BenchSensor%02d" % g)
            for g in range(n_subs) for i in range(per_group)]
    base_us = int(time.time() * 1e6) - 1000000

    def conn():
        return http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    c = conn()

    def call(method, path, body, expect):
        c.request(method, path, json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        text = r.read()
        if r.status not in expect:
            raise SystemExit("bench/notify: %s %s -> %d %s" % (method, path, r.status, text[:300]))

    for i in range(0, len(ents), 1000):
        call("POST", BASE + "/entityOperations/upsert",
             [{"id": x, "type": t, "sent": {"type": "Property", "value": 0}}
              for x, t in ents[i:i + 1000]], (201, 204))
    for g in range(0 if os.environ.get("BENCH_NOTIFY_NOSUBS") == "1" else n_subs):
        call("POST", BASE + "/subscriptions", {
            "id": "urn:ngsi-ld:Subscription:bench-%02d" % g, "type": "Subscription",
            "entities": [{"type": "BenchSensor%02d" % g}],
            "watchedAttributes": ["sent"],
            "notification": {"format": "keyValues", "attributes": ["sent"],
                             "endpoint": {"uri": "http://127.0.0.1:%d/r/%02d" % (rx_port, g)}}},
            (201,))
    c.close()

    lock = threading.Lock()
    acks = {}         # sent value -> ack time (us)
    sent_total = [0]
    lag = [0]         # batches sent later than scheduled by more than 10 ms
    errors = []
    n_batches = int(rate * duration / batch)
    next_batch = [0]
    t0 = time.time() + 0.5

    def worker(seed):
        rnd = random.Random(seed)
        cw = conn()
        last = 0
        while True:
            with lock:
                j = next_batch[0]
                if j >= n_batches or errors:
                    break
                next_batch[0] += 1
            due = t0 + j * batch / rate
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.01:
                with lock:
                    lag[0] += 1
            send_us = max(int(time.time() * 1e6) - base_us, last + 1)
            with lock:  # unique values across threads
                while send_us in acks:
                    send_us += 1
                acks[send_us] = None
            last = send_us
            body = json.dumps([{"id": x, "type": t,
                                "sent": {"type": "Property", "value": send_us}}
                               for x, t in rnd.sample(ents, batch)])
            try:
                cw.request("POST", BASE + "/entityOperations/update", body,
                           {"Content-Type": "application/json"})
                r = cw.getresponse()
                r.read()
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    errors.append(repr(e))
                break
            ack = int(time.time() * 1e6) - base_us
            with lock:
                acks[send_us] = ack
                if r.status != 204:
                    errors.append("status %d" % r.status)
                sent_total[0] += batch

    ticks0 = hub_ticks(pid)
    ws = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for w in ws:
        w.start()
    for w in ws:
        w.join()
    t_end = time.time()
    expected = sent_total[0]
    # wait for the receiver to have them all (or stop changing for 5 s)
    last_n, last_change = -1, time.time()
    while True:
        try:
            with open(rx_out + ".count") as f:
                got = int(f.read().strip() or 0)
        except (OSError, ValueError):
            got = 0
        if got >= expected:
            break
        if got != last_n:
            last_n, last_change = got, time.time()
        elif time.time() - last_change > 5:
            break
        time.sleep(0.05)
    ticks1 = hub_ticks(pid)
    achieved = expected / max(t_end - t0, 1e-9)
    print("RESULT expected=%d rate=%.0f lag_batches=%d errors=%d ticks=%d"
          % (expected, achieved, lag[0], len(errors), ticks1 - ticks0))
    with open(rx_out + ".acks", "w") as f:
        f.write("base %d\n" % base_us)
        for k, v in acks.items():
            if v is not None:
                f.write("%d %d\n" % (k, v))
    if errors:
        print("bench/notify: errors: %s" % errors[:3], file=sys.stderr)


def report(rx_out, acks_path):
    """After the receiver wrote its pairs: latencies."""
    acks = {}
    with open(acks_path) as f:
        base = int(f.readline().split()[1])
        for line in f:
            k, v = line.split()
            acks[int(k)] = int(v)
    from_send, from_ack = [], []
    with open(rx_out) as f:
        for line in f:
            s, r = line.split()
            s, r = int(s), int(r) - base
            from_send.append(r - s)
            if s in acks:
                from_ack.append(r - acks[s])
    from_send.sort()
    from_ack.sort()
    print("RESULT received=%d ack_p50_us=%d ack_p99_us=%d send_p50_us=%d send_p99_us=%d "
          "ack_max_us=%d"
          % (len(from_send), pct(from_ack, 50), pct(from_ack, 99), pct(from_send, 50),
             pct(from_send, 99), from_ack[-1] if from_ack else 0))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5:
        main()
    else:
        raise SystemExit("usage: notify.py HUB_PORT RX_PORT RX_OUT HUB_PID | notify.py report RX_OUT ACKS")
