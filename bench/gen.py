#!/usr/bin/python3
"""gen.py - the benchmark's entities: N AirQualityObserved documents.

Writes N fixed-length records to one file, so that readers can seek to any
entity without an index: record i is bytes [i*L, (i+1)*L).  A record is the
entity's JSON (id first, no newline inside), padded with spaces to L-1 bytes,
then a ','.  So a run of k consecutive records, with its last ',' replaced by
']' and a '[' in front, is a valid JSON array: the batch-upsert body that
bench/upsert.lua sends.  bench/sqlite_ceiling.c reads the same records, trims
the padding and the ',' and stores the same documents.

Entity i has the id urn:ngsi-ld:AirQualityObserved:bench-%07d and ~1 KB of
Smart-Data-Model-like attributes (location Point, dateObserved, pollutants
with unitCode and observedAt, a relationship).  Locations are uniform over a
square of --size-km around (--lon0, --lat0), so a 500 m `near` query finds
N * pi*0.25/size_km^2 entities (~7,850 per million over 10x10 km).

The generator is deterministic (one seeded PRNG, sequential), so the file for
N entities is a prefix of the file for any larger N: run.sh writes the largest
size once and every size reads a prefix of it.

Prints one line: record_len=L count=N bytes_per_entity=B (B: mean unpadded
document size).  stdlib only.
"""
import argparse
import math
import random
import sys

RECORD_LEN = 1080
LEVELS = ("good", "moderate", "unhealthy", "veryUnhealthy")


def entity(i, rnd, lon0, lat0, dlon, dlat):
    lon = lon0 + (rnd.random() - 0.5) * dlon
    lat = lat0 + (rnd.random() - 0.5) * dlat
    sec = i % 86400
    at = "2026-01-15T%02d:%02d:%02dZ" % (sec // 3600, sec // 60 % 60, sec % 60)
    pm25 = rnd.random() * 60.0
    pm10 = pm25 * (1.2 + rnd.random())
    aqi = int(pm25 * 3)
    return (
        '{"id":"urn:ngsi-ld:AirQualityObserved:bench-%07d","type":"AirQualityObserved",'
        '"dateObserved":{"type":"Property","value":"%s"},'
        '"location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[%.6f,%.6f]}},'
        '"pm25":{"type":"Property","value":%.1f,"unitCode":"GQ","observedAt":"%s"},'
        '"pm10":{"type":"Property","value":%.1f,"unitCode":"GQ","observedAt":"%s"},'
        '"no2":{"type":"Property","value":%.1f,"unitCode":"GQ","observedAt":"%s"},'
        '"co":{"type":"Property","value":%.2f,"unitCode":"GP","observedAt":"%s"},'
        '"temperature":{"type":"Property","value":%.1f,"unitCode":"CEL","observedAt":"%s"},'
        '"relativeHumidity":{"type":"Property","value":%.2f,"unitCode":"P1","observedAt":"%s"},'
        '"airQualityIndex":{"type":"Property","value":%d,"observedAt":"%s"},'
        '"airQualityLevel":{"type":"Property","value":"%s","observedAt":"%s"},'
        '"refDevice":{"type":"Relationship","object":"urn:ngsi-ld:Device:aq-%07d"}}'
        % (i, at, lon, lat, pm25, at, pm10, at, rnd.random() * 80.0, at,
           rnd.random() * 2.0, at,
           -5.0 + rnd.random() * 35.0, at, rnd.random(), at, aqi, at,
           LEVELS[min(aqi // 50, 3)], at, i))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lon0", type=float, default=4.3571)
    ap.add_argument("--lat0", type=float, default=52.0116)
    ap.add_argument("--size-km", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=20260115)
    a = ap.parse_args()
    if a.count < 1:
        sys.exit("gen.py: --count must be >= 1")
    dlat = a.size_km / 111.32
    dlon = a.size_km / (111.32 * math.cos(math.radians(a.lat0)))
    rnd = random.Random(a.seed)
    total = 0
    pad = " " * RECORD_LEN
    with open(a.out, "w", encoding="ascii", buffering=1 << 20) as f:
        chunk = []
        for i in range(a.count):
            doc = entity(i, rnd, a.lon0, a.lat0, dlon, dlat)
            n = len(doc)
            if n > RECORD_LEN - 1:
                sys.exit("gen.py: entity %d is %d bytes, over %d" % (i, n, RECORD_LEN - 1))
            total += n
            chunk.append(doc + pad[: RECORD_LEN - 1 - n] + ",")
            if len(chunk) == 4096:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    print("record_len=%d count=%d bytes_per_entity=%d" % (RECORD_LEN, a.count, total // a.count))


if __name__ == "__main__":
    main()
