-- get.lua - GET /ngsi-ld/v1/entities/{id} of a random entity.
-- args: N (entities in the store; ids bench-0000000 .. N-1, see gen.py)
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

local n

function init(args)
    n = tonumber(args[1])
    bench_seed()
end

function request()
    return wrk.format("GET", string.format(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:bench-%07d", math.random(0, n - 1)))
end
