-- upsert.lua - POST /ngsi-ld/v1/entityOperations/upsert of batches read from
-- the record file of gen.py (fixed-length records, each ending in ',', so a
-- batch body is "[" .. records minus the last ',' .. "]"; no JSON work here).
-- args: FILE RECORD_LEN BATCH N_BATCHES MODE
--   MODE "load":   sends batches 0 .. N_BATCHES-1 once each and, when all have
--                  answered, ends wrk early (SIGINT, as wrk's main thread
--                  sleeps for -d otherwise).  Needs -t 1 (one wrk thread; any
--                  number of connections).
--   MODE "steady": random batches of the N_BATCHES until wrk -d ends, each
--                  request's observations a day after the previous request's
--                  (gen.py's date 2026-01-15 becomes 2026-01-16, -17, ...): a
--                  sensor reports new observations, so every write appends
--                  instances after the entity's history (the count is per wrk
--                  thread: run.sh uses -t 1)
--   MODE "resend": the same, with the records as they are: every write
--                  repeats the observedAt the entity already has
-- Success is 201 (all created) or 204 (all updated); anything else (207
-- partial, 4xx, 5xx) counts the batch as failed, and the first such body is
-- printed.  bench_extra reports ok_entities=, failed_batches= and span_us= (from
-- the first request sent to the last answer: the figure's time, free of wrk's
-- start-up and of the wait for the early stop).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

local file, rec_len, batch, n_batches, mode
local next_batch, answered, queue, sent = 0, 0, {}, 0
local DAY0 = os.time({ year = 2026, month = 1, day = 16, hour = 12 }) -- local time: noon keeps the date
local ffi = require("ffi")
ffi.cdef [[ void *memmem(const void *hay, size_t hay_len, const void *needle, size_t needle_len); ]]
local stamp_buf, stamp_cap = nil, 0

-- data with every "2026-01-15T" dated day (10 bytes, "YYYY-MM-DD"), in C
-- memory: string.gsub over a ~1 MB batch took ~16 ms of wrk's CPU per
-- request, which the hub's two cores would have paid for.
local function stamp(data, day)
    local n = #data
    if stamp_cap < n then
        stamp_buf, stamp_cap = ffi.new("char[?]", n), n
    end
    ffi.copy(stamp_buf, data, n)
    local p, left = stamp_buf, n
    while true do
        local q = ffi.C.memmem(p, left, "2026-01-15T", 11)
        if q == nil then
            break
        end
        q = ffi.cast("char *", q)
        ffi.copy(q, day, 10)
        left = left - tonumber(q + 11 - p)
        p = q + 11
    end
    return ffi.string(stamp_buf, n)
end
local headers = { ["Content-Type"] = "application/json" }
ok_entities, failed_batches, first_us, last_us = 0, 0, 0, 0

function init(args)
    file = assert(io.open(args[1], "rb"))
    rec_len, batch, n_batches = tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
    mode = args[5]
    if mode == "load" and tid > 0 then
        error("upsert.lua: load mode needs one wrk thread (-t 1)")
    end
    bench_seed()
end

-- wrk asks delay() before each request it sends, and calls request() when
-- the delay has passed, so in load mode delay() hands out the batches: it
-- queues the next batch number for the coming request() (several connections
-- may be between the two calls at once), and parks a connection with nothing
-- left to send (far longer than the run) instead of letting it send filler.
-- wrk also calls request() once in thread 0 before the run to check the
-- script (that request is never sent); it finds the queue empty, so it uses
-- up no batch.
function delay()
    if mode == "load" then
        if next_batch >= n_batches then
            return 3600000
        end
        queue[#queue + 1] = next_batch
        next_batch = next_batch + 1
    end
    return 0
end

function request()
    local b
    if mode == "load" then
        if #queue == 0 then
            return wrk.format("GET", "/version")
        end
        b = table.remove(queue, 1)
    else
        b = math.random(0, n_batches - 1)
    end
    if first_us == 0 then
        first_us = bench_now_us()
    end
    file:seek("set", b * batch * rec_len)
    local data = file:read(batch * rec_len)
    if mode == "steady" then
        sent = sent + 1
        data = stamp(data, os.date("%Y-%m-%d", DAY0 + (sent - 1) * 86400))
    end
    return wrk.format("POST", "/ngsi-ld/v1/entityOperations/upsert", headers,
        "[" .. data:sub(1, -2) .. "]")
end

function response(status, hdrs, body)
    last_us = bench_now_us()
    answered = answered + 1
    if status == 201 or status == 204 then
        ok_entities = ok_entities + batch
    else
        if failed_batches == 0 then
            io.stderr:write(string.format("upsert.lua: status %d: %s\n", status, body:sub(1, 600)))
        end
        failed_batches = failed_batches + 1
    end
    if mode == "load" and answered == n_batches then
        -- wrk's main thread sleeps for -d and SIGINT cuts that short.  The
        -- signal is sent from a background shell a moment later because
        -- system() ignores SIGINT in wrk while it waits; $PPID is wrk.
        os.execute("p=$PPID; (sleep 0.2; kill -INT $p) >/dev/null 2>&1 &")
        wrk.thread:stop()
    end
end

function bench_extra(threads)
    local ok, failed, first, last = 0, 0, nil, 0
    for _, t in ipairs(threads) do
        ok = ok + t:get("ok_entities")
        failed = failed + t:get("failed_batches")
        local f, l = t:get("first_us"), t:get("last_us")
        if f > 0 and (first == nil or f < first) then first = f end
        if l > last then last = l end
    end
    return string.format(" ok_entities=%d failed_batches=%d span_us=%d", ok, failed,
        first and (last - first) or 0)
end
