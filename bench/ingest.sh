#!/usr/bin/env bash
# bench/ingest.sh - LoRaWAN uplinks end to end (issue 4): `pilotlight
# simulate` publishes ChirpStack v4 uplinks (Cayenne LPP and decoded) of
# BENCH_INGEST_DEVICES devices to a real mosquitto on loopback, QoS 0; the
# hub's MQTT connection takes them through decode -> device registry ->
# mapping -> the writer (history on) -> a subscription whose MQTT
# notifications go back to the broker, counted by mosquitto_sub.
#
# Figures (one line each, also appended to bench/out/results-<date>.txt):
#   ingest-ceiling  the broker alone: the same simulator publishing to a
#                   mosquitto_sub that only counts (what the hub could get)
#   ingest-max      as fast as the simulator can publish: uplinks/s from the
#                   first publish to the last one committed, hub CPU per uplink
#                   (utime+stime from /proc/PID/stat), notifications delivered
#   ingest-budget   the same run's CPU per uplink of everything else on the
#                   machine (broker, simulator, notification subscriber) and
#                   what that leaves the hub per uplink at the 30,000/s target
#                   on this many cores
#   ingest-10k      at 10,000/s for BENCH_INGEST_STEADY messages: sent,
#                   received, committed and lost (sent - committed - rejected)
#
# Environment: BENCH_HUB [build/release/pilotlight], BENCH_INGEST_DEVICES
# [10000], BENCH_INGEST_COUNT [200000], BENCH_INGEST_STEADY [100000],
# BENCH_INGEST_HUB_ARGS (extra hub flags, e.g. --history off),
# BENCH_WORK [bench/out/work].
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT="$ROOT/bench/out"
WORK=${BENCH_WORK:-$OUT/work}/ingest
HUB=${BENCH_HUB:-$ROOT/build/release/pilotlight}
DEVICES=${BENCH_INGEST_DEVICES:-10000}
COUNT=${BENCH_INGEST_COUNT:-200000}
STEADY=${BENCH_INGEST_STEADY:-100000}
CLK_TCK=$(getconf CLK_TCK)
RESULTS="$OUT/results-$(date -u +%Y%m%d).txt"

die() { echo "bench/ingest: $*" >&2; exit 1; }
[ -x "$HUB" ] || die "no hub at $HUB: build it first (make build)"
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || die "mosquitto is missing"
command -v mosquitto_sub >/dev/null || die "mosquitto-clients is missing"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
say() { echo "$*" | tee -a "$RESULTS"; }

rm -rf "$WORK"
mkdir -p "$WORK" "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

MPORT=$(free_port)
cat >"$WORK/mosquitto.conf" <<EOF
listener $MPORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
EOF
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$MOSQ" -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$MPORT) 2>/dev/null && break; sleep 0.1; done

sim() { "$HUB" simulate --mqtt "mqtt://127.0.0.1:$MPORT" --devices "$DEVICES" --quiet "$@"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

# ---- the ceiling: the broker and a subscriber that only counts ---------------
mosquitto_sub -h 127.0.0.1 -p "$MPORT" -t 'application/#' -C "$COUNT" >/dev/null &
SUB=$!
sleep 0.5
t0=$(now)
sim --rate 0 --count "$COUNT" >"$WORK/sim-ceiling.txt"
wait "$SUB" || true
t1=$(now)
ceiling=$(python3 -c "print(int($COUNT / ($t1 - $t0)))")
say "ingest-ceiling  broker+subscriber  $COUNT msgs  $ceiling msgs/s"

# ---- the hub ----------------------------------------------------------------------
HPORT=$(free_port)
"$HUB" serve --port "$HPORT" --bind 127.0.0.1 --data "$WORK/data" --log-level warn \
    --ingest-device-rate 0 --ingest-mqtt "mqtt://127.0.0.1:$MPORT?tenant=bench" \
    ${BENCH_INGEST_HUB_ARGS:-} 2>"$WORK/hub.log" &
HUBPID=$!
PIDS+=($HUBPID)
URL="http://127.0.0.1:$HPORT"
for _ in $(seq 200); do curl -sf "$URL/health" >/dev/null && break; sleep 0.05; done
SECRET=$(cat "$WORK/data/admin.secret")
"$HUB" simulate --print-profiles >"$WORK/profiles.json"
"$HUB" simulate --print-devices --devices "$DEVICES" >"$WORK/devices.json"
python3 - "$URL" "$SECRET" "$WORK" "$MPORT" <<'EOF'
import json, sys, urllib.request
url, secret, work, mport = sys.argv[1:]
def call(method, path, body):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + secret,
                                          "Content-Type": "application/json",
                                          "NGSILD-Tenant": "bench"})
    return urllib.request.urlopen(req).status
profiles = json.load(open(work + "/profiles.json"))
for p in profiles:
    call("POST", "/pilotlight/v1/device-profiles", p)
devs = json.load(open(work + "/devices.json"))
for i in range(0, len(devs), 2000):  # ~600 KB a request, under max_body
    assert call("POST", "/pilotlight/v1/devices", devs[i:i + 2000]) == 201
call("POST", "/ngsi-ld/v1/subscriptions", {
    "type": "Subscription", "entities": [{"type": p["entityType"]} for p in profiles],
    "notification": {"format": "keyValues",
                     "endpoint": {"uri": "mqtt://127.0.0.1:%s/bench/notify" % mport}}})
EOF
stats() { curl -sf -H "Authorization: Bearer $SECRET" -H "NGSILD-Tenant: bench" "$URL/pilotlight/v1/ingest/stats"; }
# wait until every received message is settled (committed, rejected...) and
# `want` were received, or nothing moved for 10 s
settle() {
    local want=$1 last="" same=0
    while :; do
        s=$(stats)
        line=$(python3 -c "import json,sys; s=json.loads(sys.argv[1]); d=s['stored']+s['rejected']+s['nothingToStore']+s['duplicates']+s['quarantined']; print(s['received'], d, s['inFlight'], s['stored'], s['rejected'])" "$s")
        set -- $line
        [ "$1" -ge "$want" ] && [ "$2" -ge "$1" ] && [ "$3" = 0 ] && { echo "$line"; return; }
        if [ "$line" = "$last" ]; then same=$((same + 1)); else same=0; last=$line; fi
        [ $same -ge 100 ] && { echo "$line"; return; }
        sleep 0.1
    done
}

mosquitto_sub -h 127.0.0.1 -p "$MPORT" -t 'bench/notify' >"$WORK/notify.txt" &
NSUB=$!
PIDS+=($NSUB)
sleep 0.5
c0=$(cpu_ticks $HUBPID)
b0=$(cpu_ticks "${PIDS[0]}")
n0=$(cpu_ticks $NSUB)
t0=$(now)
TIMEFORMAT='%U %S'
simcpu=$( { time sim --rate 0 --count "$COUNT" >"$WORK/sim-max.txt"; } 2>&1 )
read -r recv settled _ stored rejected <<<"$(settle "$COUNT")"
t1=$(now)
c1=$(cpu_ticks $HUBPID)
sleep 2
b1=$(cpu_ticks "${PIDS[0]}")
n1=$(cpu_ticks $NSUB)
notified=$(wc -l <"$WORK/notify.txt")
python3 - "$COUNT" "$t0" "$t1" "$c0" "$c1" "$CLK_TCK" "$ceiling" "$recv" "$stored" "$notified" \
    "$b0" "$b1" "$n0" "$n1" $simcpu "$(nproc)" <<'EOF' | tee -a "$RESULTS"
import sys
(n, t0, t1, c0, c1, tck, ceil, recv, stored, notified,
 b0, b1, n0, n1, su, ss, cores) = map(float, sys.argv[1:])
rate = recv / (t1 - t0)
per = lambda ticks: ticks / tck / max(recv, 1) * 1e6
cpu_us = per(c1 - c0)
print("ingest-max      %d uplinks/s  (%.0f%% of the ceiling %d)  hub CPU %.1f us/uplink"
      "  received %d stored %d notifications %d"
      % (rate, 100 * rate / ceil, ceil, cpu_us, recv, stored, notified))
broker, subscriber = per(b1 - b0), per(n1 - n0)
simulator = (su + ss) / max(recv, 1) * 1e6
rest = broker + subscriber + simulator
print("ingest-budget   others' CPU per uplink: broker %.1f us, simulator %.1f us, notification"
      " subscriber %.1f us (%.1f in all); at 30000/s %d cores leave the hub %.1f us/uplink"
      % (broker, simulator, subscriber, rest, cores, cores * 1e6 / 30000 - rest))
EOF

# ---- no loss at 10,000/s ---------------------------------------------------------------
before=$(stats | python3 -c "import json,sys; s=json.load(sys.stdin); print(s['received'], s['stored'], s['rejected'])")
read -r r0 s0 j0 <<<"$before"
c0=$(cpu_ticks $HUBPID)
sim --rate 10000 --count "$STEADY" >"$WORK/sim-10k.txt"
sent=$(field sent <"$WORK/sim-10k.txt")
read -r recv _ _ stored rejected <<<"$(settle $((r0 + sent)))"
c1=$(cpu_ticks $HUBPID)
python3 - "$sent" "$r0" "$s0" "$j0" "$recv" "$stored" "$rejected" "$c0" "$c1" "$CLK_TCK" <<'EOF' | tee -a "$RESULTS"
import sys
sent, r0, s0, j0, recv, stored, rejected, c0, c1, tck = map(float, sys.argv[1:])
got, kept, rej = recv - r0, stored - s0, rejected - j0
print("ingest-10k      10000 uplinks/s x %d: received %d, committed %d, rejected %d, lost %d"
      "  hub CPU %.1f us/uplink"
      % (sent, got, kept, rej, sent - kept - rej, (c1 - c0) / tck / max(got, 1) * 1e6))
EOF
