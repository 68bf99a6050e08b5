#!/usr/bin/env bash
# bench/run.sh - pilotlight's benchmark: every figure beside its ceiling.
#
# Run from anywhere (it cds to the repo root) after building the release hub;
# `make bench` does both.  For each store size it:
#   1. runs the SQLite ceiling (bench/sqlite_ceiling.c) on the same documents,
#   2. starts a hub on an empty data dir and loads N entities through
#      1,000-entity batch upserts (the "upsert-load" figure), then re-upserts
#      random batches for a while ("upsert-steady"),
#   3. measures GET /version (the HTTP ceiling), GET entity and PATCH attrs with
#      64 connections, then GET /version, the type+q and geo-near queries with
#      4 connections,
#   4. reads the hub's RSS and restarts it (SIGTERM, start, until /health).
# Every figure prints one line, and the hub's CPU time per request: utime+stime
# ticks from /proc/PID/stat before and after the run, over CLK_TCK, divided by
# the requests (or entities).  Lines also go to bench/out/results-<date>.txt.
#
# Environment (defaults in brackets):
#   BENCH_SIZES     store sizes, multiples of 1000 ["1000 1000000"]
#   BENCH_QUICK=1   sizes "1000 100000" and 4 s runs instead of 8 s
#   BENCH_DURATION  seconds per timed run [8, quick 4]
#   BENCH_CONNECTIONS / BENCH_QUERY_CONNECTIONS / BENCH_UPSERT_CONNECTIONS [64/4/2]
#   BENCH_DURABILITY normal|full, passed to the hub and the ceiling [normal]
#   BENCH_PORT      [18926]     BENCH_HUB  hub binary [build/release/pilotlight]
#   BENCH_WORK      scratch dir for data and logs [bench/out/work]
#   BENCH_KEEP=1    keep each size's hub data dir
#   BENCH_HUB_ARGS  extra flags for the hub (e.g. "--history off")
#   BENCH_EXTRAS=0  skip the history on/off pairs and the temporal, notification
#                   and ingest benchmarks
#   BENCH_RATIO_PAIRS  history on/off pairs [3]
#   BENCH_RATIO_SIZE   entities of each history on/off pair, a multiple of 1000 [1000]
#   BENCH_ONLY=ratio   only the history on/off pairs (with BENCH_SIZES=1000)
#   BENCH_STEADY    steady|resend: whether the steady upserts carry new
#                   observations (each request a day later) or repeat the
#                   loaded ones' observedAt [steady]
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
export BENCH_DIR="$ROOT/bench"
OUT="$ROOT/bench/out"
WORK=${BENCH_WORK:-$OUT/work}
HUB=${BENCH_HUB:-$ROOT/build/release/pilotlight}
PORT=${BENCH_PORT:-18926}
URL="http://127.0.0.1:$PORT"
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    SIZES=${BENCH_SIZES:-"1000 100000"}
    DUR=${BENCH_DURATION:-4}
else
    SIZES=${BENCH_SIZES:-"1000 1000000"}
    DUR=${BENCH_DURATION:-8}
fi
CONNS=${BENCH_CONNECTIONS:-64}
QCONNS=${BENCH_QUERY_CONNECTIONS:-4}
UCONNS=${BENCH_UPSERT_CONNECTIONS:-2}
DURABILITY=${BENCH_DURABILITY:-normal}
STEADY=${BENCH_STEADY:-steady}
case $STEADY in steady | resend) ;; *) echo "bench: BENCH_STEADY is steady or resend" >&2; exit 1 ;; esac
BATCH=1000
# the dataset square (gen.py): 10x10 km around Delft
LON0=4.3571 LAT0=52.0116 SIZE_KM=10
MAX_BODY=4194304 # a 1,000-entity batch is ~1.08 MB, over the 1 MiB default
CLK_TCK=$(getconf CLK_TCK)

die() { echo "bench: $*" >&2; exit 1; }

[ -x "$HUB" ] || die "no hub at $HUB: build it first (make build)"
command -v wrk >/dev/null || die "wrk is missing: scripts/install-deps.sh --bench"
command -v curl >/dev/null || die "curl is missing"
for n in $SIZES; do
    if [ $((n % BATCH)) -ne 0 ] || [ "$n" -lt $BATCH ]; then
        die "size $n is not a positive multiple of $BATCH"
    fi
done
if curl -s -o /dev/null --max-time 1 "$URL/version"; then
    die "something already answers on port $PORT (set BENCH_PORT)"
fi

mkdir -p "$OUT" "$WORK"
RESULTS="$OUT/results-$(date +%Y%m%d-%H%M%S).txt"
: >"$RESULTS"
: >"$WORK/hub.log"
emit() { echo "$*" | tee -a "$RESULTS"; }

# --- helpers -----------------------------------------------------------------

HUB_PID=""
cleanup() {
    if [ -n "$HUB_PID" ] && kill -0 "$HUB_PID" 2>/dev/null; then
        kill -TERM "$HUB_PID" 2>/dev/null || true
        wait "$HUB_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

# start_hub DIR: starts the hub on DIR; sets HUB_PID and START_MS (start to
# the first 200 from GET /health).
start_hub() {
    local t0
    t0=$(now_ms)
    "$HUB" serve --port "$PORT" --bind 127.0.0.1 --data "$1" --log-level warn \
        --durability "$DURABILITY" --max-body "$MAX_BODY" ${BENCH_HUB_ARGS:-} \
        >>"$WORK/hub.log" 2>&1 &
    HUB_PID=$!
    local i=0
    until curl -sf -o /dev/null --max-time 2 "$URL/health"; do
        kill -0 "$HUB_PID" 2>/dev/null || die "hub exited at start (see $WORK/hub.log)"
        i=$((i + 1))
        [ $i -lt 30000 ] || die "hub did not answer /health within 5 minutes"
        sleep 0.01
    done
    START_MS=$(($(now_ms) - t0))
}

# stop_hub: SIGTERM and wait for the exit; sets STOP_MS.
stop_hub() {
    local t0
    t0=$(now_ms)
    kill -TERM "$HUB_PID"
    wait "$HUB_PID" || true
    STOP_MS=$(($(now_ms) - t0))
    HUB_PID=""
}

# hub_ticks: utime+stime of the hub, in clock ticks.  Field 2 (comm) may hold
# spaces, so count fields after its closing ')': utime/stime are 14/15 overall.
hub_ticks() { sed 's/^.*) //' "/proc/$HUB_PID/stat" | awk '{ print $12 + $13 }'; }

hub_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$HUB_PID/status"; }

# field KEY FILE: the value of KEY=... on the RESULT line of FILE
field() { sed -n 's/^RESULT .*\b'"$1"'=\([^ ]*\).*/\1/p' "$2" | head -1; }

# bench_wrk NAME THREADS CONNS DURATION SCRIPT ARGS...: runs wrk against the
# hub; leaves the output in $LOG and the hub's CPU ticks used in $TICKS.
bench_wrk() {
    local name=$1 threads=$2 conns=$3 dur=$4 script=$5
    shift 5
    LOG="$WORK/wrk-$SIZE-$name.log"
    local t0
    t0=$(hub_ticks)
    wrk -t"$threads" -c"$conns" -d"${dur}s" --timeout 60s -s "$BENCH_DIR/$script" "$URL" -- "$@" \
        >"$LOG" 2>&1 || die "wrk $name failed: $(tail -3 "$LOG")"
    TICKS=$(($(hub_ticks) - t0))
    grep -q '^RESULT ' "$LOG" || die "wrk $name printed no result: $(tail -3 "$LOG")"
}

# errs LOG: socket errors + HTTP status >= 400 of a wrk run
errs() {
    local f=$1
    echo $(($(field err_connect "$f") + $(field err_read "$f") + $(field err_write "$f") +
        $(field err_status "$f") + $(field err_timeout "$f")))
}

# cpu_us TICKS COUNT: microseconds of hub CPU per request/entity
cpu_us() { awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0) }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# rows QUERY: entities the hub returns for one GET (sanity check of a query)
rows() { curl -sf -g "$URL$1" | /usr/bin/python3 -c 'import json, sys; print(len(json.load(sys.stdin)))'; }

# --- the machine --------------------------------------------------------------

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
[ -n "$cpu_model" ] || cpu_model=$(uname -m)
hub_version=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' <<<"$("$HUB" version 2>/dev/null || true)")
emit "machine: nproc=$(nproc) cpu=\"$cpu_model\" kernel=$(uname -r) clk_tck=$CLK_TCK loadavg=$(cut -d' ' -f1 /proc/loadavg)" \
    "| hub ${hub_version:-$("$HUB" version 2>&1 | head -1)} durability=$DURABILITY" \
    "| sizes=\"$SIZES\" duration=${DUR}s connections=$CONNS query_connections=$QCONNS upsert_connections=$UCONNS steady=$STEADY" \
    "| date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# --- the documents ------------------------------------------------------------

max_size=0
RATIO_N=${BENCH_RATIO_SIZE:-1000}
[ $((RATIO_N % BATCH)) -eq 0 ] && [ "$RATIO_N" -gt 0 ] || die "BENCH_RATIO_SIZE must be a multiple of $BATCH"
for n in $SIZES $RATIO_N; do [ "$n" -gt "$max_size" ] && max_size=$n; done
DATA="$WORK/entities.dat"
gen_meta="$WORK/entities.meta"
# entities.meta: "gen=<hash of gen.py>", then gen.py's line (record_len= count=
# bytes_per_entity=).  The file is reused while gen.py is unchanged and it
# holds enough entities (a smaller size reads a prefix).
want_gen="gen=$(md5sum "$BENCH_DIR/gen.py" | cut -c1-12)"
have_count=$(sed -n 's/.* count=\([0-9]*\).*/\1/p' "$gen_meta" 2>/dev/null || true)
if [ ! -f "$DATA" ] || [ "$(head -1 "$gen_meta" 2>/dev/null)" != "$want_gen" ] ||
    [ "${have_count:-0}" -lt "$max_size" ]; then
    echo "bench: generating $max_size entities ..." >&2
    rm -f "$DATA" "$gen_meta"
    gen_out=$(/usr/bin/python3 "$BENCH_DIR/gen.py" --count "$max_size" --out "$DATA" \
        --lon0 "$LON0" --lat0 "$LAT0" --size-km "$SIZE_KM")
    printf '%s\n%s\n' "$want_gen" "$gen_out" >"$gen_meta"
fi
REC_LEN=$(sed -n 's/.*record_len=\([0-9]*\).*/\1/p' "$gen_meta")
DOC_BYTES=$(sed -n 's/.*bytes_per_entity=\([0-9]*\).*/\1/p' "$gen_meta")

CEILING="$OUT/sqlite_ceiling"
if [ ! -x "$CEILING" ] || [ "$BENCH_DIR/sqlite_ceiling.c" -nt "$CEILING" ]; then
    gcc -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -O2 -Wall -Wextra -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wformat=2 -Werror "$BENCH_DIR/sqlite_ceiling.c" -lsqlite3 -o "$CEILING" ||
        die "cannot build sqlite_ceiling (libsqlite3-dev?)"
fi

# --- per size -----------------------------------------------------------------

# history on / off side by side: the same steady upsert of RATIO_N
# entities (1,000 unless BENCH_RATIO_SIZE) on a hub with history (observed)
# and one without, alternated BENCH_RATIO_PAIRS times, so that both halves
# of each ratio see the same machine (two full runs minutes apart gave
# 0.56-0.84 for the same code on this shared machine).
history_ratio() {
    local pairs=${BENCH_RATIO_PAIRS:-3} saved=${BENCH_HUB_ARGS:-} i mode ratios="" cpus=""
    local on_rate on_cpu nb=$((RATIO_N / BATCH))
    SIZE=ratio
    for i in $(seq 1 "$pairs"); do
        for mode in observed off; do
            rm -rf "$WORK/hub-ratio"
            BENCH_HUB_ARGS="--history $mode"
            start_hub "$WORK/hub-ratio"
            bench_wrk ratio-load 1 "$UCONNS" $((600 + RATIO_N / 100)) upsert.lua "$DATA" "$REC_LEN" "$BATCH" "$nb" load
            [ "$(field ok_entities "$LOG")" = "$RATIO_N" ] || die "history-ratio: the load failed (see $LOG)"
            bench_wrk ratio-steady 1 "$UCONNS" "$DUR" upsert.lua "$DATA" "$REC_LEN" "$BATCH" "$nb" "$STEADY"
            local ok span rate cpu
            ok=$(field ok_entities "$LOG")
            span=$(field span_us "$LOG")
            rate=$(awk -v n="$ok" -v s="$span" 'BEGIN { printf "%.0f", (s > 0 ? n / (s / 1e6) : 0) }')
            cpu=$(cpu_us "$TICKS" "$ok")
            stop_hub
            if [ "$mode" = observed ]; then
                on_rate=$rate on_cpu=$cpu
            else
                ratios="$ratios $(ratio "$on_rate" "$rate")"
                cpus="$cpus $(ratio "$cpu" "$on_cpu")"
                emit "history-pair $i : on $on_rate entities/s ($on_cpu us CPU/entity), off $rate ($cpu us)," \
                    "on/off $(ratio "$on_rate" "$rate"), CPU off/on $(ratio "$cpu" "$on_cpu")"
            fi
        done
    done
    rm -rf "$WORK/hub-ratio"
    BENCH_HUB_ARGS=$saved
    emit "history-ratio  : $RATIO_N entities, steady upsert, history on / off side by side: median" \
        "$(echo $ratios | tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')" \
        "of$ratios (CPU per entity off/on:$cpus) | target >= 0.80"
}

if [ "${BENCH_ONLY:-}" = ratio ]; then
    history_ratio
    echo "results: $RESULTS" >&2
    exit 0
fi

for SIZE in $SIZES; do
    N=$SIZE
    NB=$((N / BATCH))
    tag="N=$N"

    # 1. the SQLite ceiling, with no hub running
    clog="$WORK/ceiling-$N.log"
    "$CEILING" "$DATA" "$REC_LEN" "$N" "$WORK/ceiling.db" "$DUR" "$DURABILITY" >"$clog" 2>&1 ||
        die "sqlite_ceiling failed: $(cat "$clog")"
    rm -f "$WORK/ceiling.db" "$WORK/ceiling.db-wal" "$WORK/ceiling.db-shm"
    sq_load_rate=$(sed -n 's/^RESULT phase=load .*rate=\([0-9]*\).*/\1/p' "$clog")
    sq_load_cpu=$(sed -n 's/^RESULT phase=load .*cpu_us_per_entity=\([0-9.]*\).*/\1/p' "$clog")
    sq_steady_rate=$(sed -n 's/^RESULT phase=steady .*rate=\([0-9]*\).*/\1/p' "$clog")
    sq_steady_cpu=$(sed -n 's/^RESULT phase=steady .*cpu_us_per_entity=\([0-9.]*\).*/\1/p' "$clog")

    # 2. an empty hub: its start time and RSS are the baselines of restart/rss
    hubdir="$WORK/hub-$N"
    rm -rf "$hubdir"
    start_hub "$hubdir"
    empty_start_ms=$START_MS
    empty_rss_kb=$(hub_rss_kb)

    # load N entities: the upsert-load figure
    bench_wrk upsert-load 1 "$UCONNS" $((600 + N / 100)) upsert.lua "$DATA" "$REC_LEN" "$BATCH" "$NB" load
    ok=$(field ok_entities "$LOG")
    failed=$(field failed_batches "$LOG")
    span=$(field span_us "$LOG")
    rate=$(awk -v n="$ok" -v s="$span" 'BEGIN { printf "%.0f", (s > 0 ? n / (s / 1e6) : 0) }')
    emit "$tag upsert-load    : $rate entities/s ($NB batches of $BATCH, $(awk -v s="$span" 'BEGIN{printf "%.1f", s/1e6}') s," \
        "p50 $(ms "$(field p50_us "$LOG")") ms p99 $(ms "$(field p99_us "$LOG")") ms per batch)" \
        "| ceiling sqlite $sq_load_rate entities/s, ratio $(ratio "$rate" "$sq_load_rate")" \
        "| cpu/entity hub $(cpu_us "$TICKS" "$ok") us, sqlite $sq_load_cpu us | failed batches $failed"
    [ "$ok" -eq "$N" ] || die "the load stored $ok of $N entities (see $LOG)"
    stored=$(curl -sf -D - -o /dev/null "$URL/ngsi-ld/v1/entities?type=AirQualityObserved&count=true&limit=0" |
        tr -d '\r' | sed -n 's/^NGSILD-Results-Count: //Ip')
    [ "$stored" = "$N" ] || die "the hub reports $stored entities after loading $N"
    rss_kb=$(hub_rss_kb)

    bench_wrk upsert-steady 1 "$UCONNS" "$DUR" upsert.lua "$DATA" "$REC_LEN" "$BATCH" "$NB" "$STEADY"
    ok=$(field ok_entities "$LOG")
    span=$(field span_us "$LOG")
    rate=$(awk -v n="$ok" -v s="$span" 'BEGIN { printf "%.0f", (s > 0 ? n / (s / 1e6) : 0) }')
    emit "$tag upsert-steady  : $rate entities/s (random existing batches," \
        "p50 $(ms "$(field p50_us "$LOG")") ms p99 $(ms "$(field p99_us "$LOG")") ms per batch)" \
        "| ceiling sqlite $sq_steady_rate entities/s, ratio $(ratio "$rate" "$sq_steady_rate")" \
        "| cpu/entity hub $(cpu_us "$TICKS" "$ok") us, sqlite $sq_steady_cpu us | failed batches $(field failed_batches "$LOG")"

    # 3. keep-alive request figures against GET /version with the same connections
    threads=2
    [ "$CONNS" -lt 2 ] && threads=1
    bench_wrk "version-c$CONNS" $threads "$CONNS" "$DUR" version.lua
    v_rps=$(field rps "$LOG") v_cpu=$(cpu_us "$TICKS" "$(field requests "$LOG")")
    v_p50=$(ms "$(field p50_us "$LOG")") v_p99=$(ms "$(field p99_us "$LOG")") v_err=$(errs "$LOG")

    for fig in get patch; do
        bench_wrk "$fig-c$CONNS" $threads "$CONNS" "$DUR" "$fig.lua" "$N"
        rps=$(field rps "$LOG")
        label="get-entity     "
        [ "$fig" = patch ] && label="patch-attr     "
        emit "$tag $label: ${rps%.*} req/s p50 $(ms "$(field p50_us "$LOG")") ms p99 $(ms "$(field p99_us "$LOG")") ms" \
            "(c=$CONNS, random ids) | ceiling GET /version ${v_rps%.*} req/s p50 $v_p50 ms p99 $v_p99 ms, ratio $(ratio "$rps" "$v_rps")" \
            "| cpu/req hub $(cpu_us "$TICKS" "$(field requests "$LOG")") us, /version $v_cpu us | errors $(errs "$LOG") (/version $v_err)"
    done

    # queries with a few connections, against GET /version with as many
    bench_wrk "version-c$QCONNS" 1 "$QCONNS" "$DUR" version.lua
    vq_rps=$(field rps "$LOG") vq_cpu=$(cpu_us "$TICKS" "$(field requests "$LOG")")
    vq_p50=$(ms "$(field p50_us "$LOG")") vq_p99=$(ms "$(field p99_us "$LOG")")
    cx=$(awk -v a="$LON0" 'BEGIN { printf "%.4f", a + 0.001 }')
    cy=$(awk -v a="$LAT0" 'BEGIN { printf "%.4f", a + 0.001 }')
    q_rows=$(rows "/ngsi-ld/v1/entities?type=AirQualityObserved&q=pm25%3E20&limit=20")
    near_rows=$(rows "/ngsi-ld/v1/entities?type=AirQualityObserved&georel=near%3BmaxDistance%3D%3D500&geometry=Point&coordinates=%5B$cx%2C$cy%5D&limit=20")
    for fig in q near; do
        bench_wrk "query-$fig-c$QCONNS" 1 "$QCONNS" "$DUR" query.lua "$fig" "$LON0" "$LAT0" "$SIZE_KM"
        rps=$(field rps "$LOG")
        if [ "$fig" = q ]; then
            label="query-type-q   " what="type=AirQualityObserved&q=pm25>X limit 20, $q_rows rows for X=20"
        else
            label="query-geo-near " what="near 500 m of a random point, limit 20, $near_rows rows at the centre"
        fi
        emit "$tag $label: p50 $(ms "$(field p50_us "$LOG")") ms p99 $(ms "$(field p99_us "$LOG")") ms, ${rps%.*} req/s (c=$QCONNS, $what)" \
            "| ceiling GET /version c=$QCONNS p50 $vq_p50 ms p99 $vq_p99 ms, ${vq_rps%.*} req/s" \
            "| cpu/req hub $(cpu_us "$TICKS" "$(field requests "$LOG")") us, /version $vq_cpu us | errors $(errs "$LOG")"
    done

    # 4. memory and restart
    emit "$tag rss            : $(mib "$rss_kb") MiB after the load, $(awk -v r="$rss_kb" -v n="$N" 'BEGIN { printf "%.0f", r * 1024 / n }') B/entity" \
        "($(awk -v r="$rss_kb" -v e="$empty_rss_kb" -v n="$N" 'BEGIN { printf "%.0f", (r - e) * 1024 / n }') B/entity above the empty hub)" \
        "| baseline empty hub $(mib "$empty_rss_kb") MiB, document $DOC_BYTES B/entity" \
        "| store on disk $(du -sk "$hubdir" | awk '{ printf "%.0f", $1 * 1024 / '"$N"' }') B/entity"
    stop_hub
    start_hub "$hubdir"
    emit "$tag restart        : $START_MS ms from start to /health with $N entities (SIGTERM stop took $STOP_MS ms)" \
        "| ceiling start on an empty store $empty_start_ms ms | rss after restart $(mib "$(hub_rss_kb)") MiB"
    stop_hub
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$hubdir"
done

if [ "${BENCH_EXTRAS:-1}" = 0 ]; then
    echo "results: $RESULTS" >&2
    exit 0
fi

history_ratio

# Each of these starts on a quiet disk: the sizes above leave gigabytes of
# dirty pages and deleted files behind, whose writeback would otherwise land
# in the next measurement (seen: 130 ms commit stalls in the first seconds
# of the notification run).
settle() { sync; sleep 1; }

# the temporal API (bench/temporal.py: 30 days of 1-minute data, aggregation, lastN)
settle
BENCH_HUB="$HUB" BENCH_WORK="$WORK" /usr/bin/python3 "$BENCH_DIR/temporal.py" | tee -a "$RESULTS"

# notification latency at 10,000 updates/s with 100 subscriptions (bench/notify.sh)
settle
BENCH_HUB="$HUB" BENCH_WORK="$WORK" BENCH_RESULTS="$RESULTS" "$BENCH_DIR/notify.sh" ||
    echo "bench: notify.sh failed" >&2

# LoRaWAN uplinks end to end through a real mosquitto (bench/ingest.sh)
settle
BENCH_HUB="$HUB" BENCH_WORK="$WORK" "$BENCH_DIR/ingest.sh" || echo "bench: ingest.sh failed" >&2

echo "results: $RESULTS" >&2
