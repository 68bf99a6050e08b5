-- query.lua - GET /ngsi-ld/v1/entities queries, limit 20.
-- args: MODE LON0 LAT0 SIZE_KM   (the dataset square of gen.py)
--   MODE "q":    ?type=AirQualityObserved&q=pm25>X&limit=20, X random in
--                [5, 35] (pm25 is uniform in [0, 60], so >40% match)
--   MODE "near": ?type=AirQualityObserved&georel=near;maxDistance==500
--                &geometry=Point&coordinates=[lon,lat]&limit=20 at a random
--                point of the square
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

local mode, lon0, lat0, dlon, dlat

function init(args)
    mode = args[1]
    lon0, lat0 = tonumber(args[2]), tonumber(args[3])
    local km = tonumber(args[4])
    dlat = km / 111.32
    dlon = km / (111.32 * math.cos(math.rad(lat0)))
    bench_seed()
end

function request()
    local path
    if mode == "near" then
        path = string.format(
            "/ngsi-ld/v1/entities?type=AirQualityObserved&georel=near%%3BmaxDistance%%3D%%3D500" ..
            "&geometry=Point&coordinates=%%5B%.6f%%2C%.6f%%5D&limit=20",
            lon0 + (math.random() - 0.5) * dlon, lat0 + (math.random() - 0.5) * dlat)
    else
        path = string.format(
            "/ngsi-ld/v1/entities?type=AirQualityObserved&q=pm25%%3E%d&limit=20", math.random(5, 35))
    end
    return wrk.format("GET", path)
end
