-- version.lua - GET /version: the HTTP ceiling (routing, headers, a tiny
-- JSON body, no store access).  No arguments.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

local req

function init(args)
    req = wrk.format("GET", "/version")
end

function request()
    return req
end
