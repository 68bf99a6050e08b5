-- common.lua - shared by every bench/*.lua wrk script (loaded with dofile).
--
-- Gives each wrk thread an index (global `tid`, 0-based) and a distinct
-- random seed, and prints one machine-readable line when the run ends:
--   RESULT requests=N duration_us=D rps=R p50_us=.. p99_us=.. max_us=..
--          err_connect=.. err_read=.. err_write=.. err_status=.. err_timeout=..
-- (err_status counts HTTP status >= 400).  A script may define
-- bench_extra(threads) returning more " key=value" pairs; it runs in the
-- main Lua state after the run, `threads` being the wrk thread objects
-- (read a thread's globals with thread:get(name)).
-- setup() and done() run in wrk's main state; init(), request(), delay()
-- and response() in each thread's own state, so nothing is shared at run time.

local threads = {}

-- bench_now_us(): a monotonic clock in microseconds (LuaJIT's ffi; wrk links
-- LuaJIT), for figures that must not include wrk's own start and stop.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")

function bench_now_us()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

function setup(thread)
    thread:set("tid", #threads)
    threads[#threads + 1] = thread
end

function bench_seed()
    math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + math.floor(os.clock() * 1e6))
end

function done(summary, latency, requests)
    local e = summary.errors
    local secs = summary.duration / 1e6
    local extra = ""
    if bench_extra then
        extra = bench_extra(threads)
    end
    io.write(string.format(
        "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d " ..
        "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d%s\n",
        summary.requests, summary.duration, summary.requests / secs,
        latency:percentile(50), latency:percentile(99), latency.max,
        e.connect, e.read, e.write, e.status, e.timeout, extra))
end
