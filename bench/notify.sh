#!/usr/bin/env bash
# bench/notify.sh - notification latency (issue 3): from a write's
# acknowledgement to the receiver, p50/p99, at BENCH_NOTIFY_RATE updates/s
# (10,000) with 100 active subscriptions (bench/notify.py says how), the
# hub's CPU per notification (utime+stime from /proc/PID/stat), and the
# ceiling measured in the same run: the receiver's own loopback round trip
# for a POST of the notification's size (bench/notify_rx.c ping), which is
# what one notification costs at least once the hub has it.
#
# One line, also appended to bench/out/results-<date>.txt:
#   notify-latency  p50/p99 from ack (and from send), achieved rate,
#                   notifications received/expected, hub CPU per
#                   notification | ceiling: receiver round trip p50/p99
#
# Environment: BENCH_HUB [build/release/pilotlight], BENCH_NOTIFY_RATE
# [10000], BENCH_NOTIFY_DURATION [10 s], BENCH_NOTIFY_SUBS [100],
# BENCH_WORK [bench/out/work], BENCH_NOTIFY_HUB_ARGS (extra hub flags, e.g.
# --history off), BENCH_RESULTS (the file lines are appended
# to; run.sh passes its own). Target: p99 <= 10 ms on 2 cores.
# BENCH_NOTIFY_NOSUBS=1 runs the same writes without subscriptions (the
# hub's CPU for the writes alone, to tell the notifications' share).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT="$ROOT/bench/out"
WORK=${BENCH_WORK:-$OUT/work}/notify
HUB=${BENCH_HUB:-$ROOT/build/release/pilotlight}
CLK_TCK=$(getconf CLK_TCK)
RESULTS=${BENCH_RESULTS:-$OUT/results-$(date -u +%Y%m%d).txt}

die() { echo "bench/notify: $*" >&2; exit 1; }
[ -x "$HUB" ] || die "no hub at $HUB: build it first (make build)"

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
say() { echo "$*" | tee -a "$RESULTS"; }
field() { sed -n 's/^RESULT .*\b'"$1"'=\([^ ]*\).*/\1/p' "$2" | head -1; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }

rm -rf "$WORK"
mkdir -p "$WORK" "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

cc -O2 -o "$OUT/notify_rx" "$ROOT/bench/notify_rx.c" || die "cannot build notify_rx"

RX_PORT=$(free_port)
"$OUT/notify_rx" serve "$RX_PORT" "$WORK/rx.txt" &
RX_PID=$!
PIDS+=("$RX_PID")

PORT=$(free_port)
"$HUB" serve --bind 127.0.0.1 --port "$PORT" --data "$WORK/data" --log-level warn ${BENCH_NOTIFY_HUB_ARGS:-} \
    >"$WORK/hub.log" 2>&1 &
HUB_PID=$!
PIDS+=("$HUB_PID")
for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    sleep 0.05
done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || die "the hub did not start: $(tail -5 "$WORK/hub.log")"

/usr/bin/python3 "$ROOT/bench/notify.py" "$PORT" "$RX_PORT" "$WORK/rx.txt" "$HUB_PID" \
    >"$WORK/run.txt" || die "driver failed: $(tail -3 "$WORK/run.txt")"
# the ceiling while the receiver still runs: a keyValues notification of one
# entity is ~250 bytes
"$OUT/notify_rx" ping "$RX_PORT" 20000 250 >"$WORK/ping.txt"
kill -TERM "$RX_PID"
wait "$RX_PID" 2>/dev/null || true
/usr/bin/python3 "$ROOT/bench/notify.py" report "$WORK/rx.txt" "$WORK/rx.txt.acks" >"$WORK/report.txt"

expected=$(field expected "$WORK/run.txt")
received=$(field received "$WORK/report.txt")
ticks=$(field ticks "$WORK/run.txt")
cpu=$(awk -v t="$ticks" -v n="$received" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0) }')
read -r _ ping50 _ ping99 <"$WORK/ping.txt"
say "notify-latency : p50 $(ms "$(field ack_p50_us "$WORK/report.txt")") ms p99 $(ms "$(field ack_p99_us "$WORK/report.txt")") ms from the write's ack" \
    "(from send: p50 $(ms "$(field send_p50_us "$WORK/report.txt")") ms p99 $(ms "$(field send_p99_us "$WORK/report.txt")") ms)," \
    "$(field rate "$WORK/run.txt") updates/s asked ${BENCH_NOTIFY_RATE:-10000}, ${BENCH_NOTIFY_SUBS:-100} subscriptions," \
    "received $received/$expected, late batches $(field lag_batches "$WORK/run.txt"), errors $(field errors "$WORK/run.txt")" \
    "| cpu/notification hub $cpu us | ceiling receiver round trip p50 $(ms "$ping50") ms p99 $(ms "$ping99") ms" \
    "| target p99 <= 10 ms"
