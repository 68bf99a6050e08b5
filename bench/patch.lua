-- patch.lua - PATCH /ngsi-ld/v1/entities/{id}/attrs of one attribute (pm25,
-- with unitCode and observedAt) of a random entity; expects 204.
-- args: N (entities in the store)
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

local n
local headers = { ["Content-Type"] = "application/json" }

function init(args)
    n = tonumber(args[1])
    bench_seed()
end

function request()
    local path = string.format(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:bench-%07d/attrs", math.random(0, n - 1))
    local body = string.format(
        '{"pm25":{"type":"Property","value":%.1f,"unitCode":"GQ","observedAt":"2026-01-16T%02d:%02d:%02dZ"}}',
        math.random() * 60.0, math.random(0, 23), math.random(0, 59), math.random(0, 59))
    return wrk.format("PATCH", path, headers, body)
end
