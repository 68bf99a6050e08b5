/*
 * geo.h - GeoJSON geometries and the NGSI-LD geo-query predicates.
 *
 * A struct geo_shape is a parsed, validated GeoJSON geometry (RFC 7946:
 * Point, MultiPoint, LineString, MultiLineString, Polygon, MultiPolygon)
 * with its bounding box. Predicates follow the OGC simple-features (DE-9IM)
 * meaning on longitude/latitude treated as planar coordinates, except
 * `near`, which uses great-circle distance in metres (WGS 84 mean radius
 * 6371008.8 m). Pure functions; shapes are immutable after parsing and may be
 * shared across threads.
 */
#ifndef PL_GEO_H
#define PL_GEO_H

#include <cjson/cJSON.h>

#include "util/err.h"

struct geo_shape;

enum geo_kind {
    GEO_POINT = 1,
    GEO_MULTIPOINT,
    GEO_LINESTRING,
    GEO_MULTILINESTRING,
    GEO_POLYGON,
    GEO_MULTIPOLYGON,
};

enum geo_relop {
    GEO_NEAR = 1,
    GEO_WITHIN,
    GEO_CONTAINS,
    GEO_INTERSECTS,
    GEO_DISJOINT,
    GEO_EQUALS,
    GEO_OVERLAPS,
};

/* A parsed georel: "near;maxDistance==2000", "within", ... */
struct geo_rel {
    enum geo_relop op;
    int has_max, has_min;
    double max_distance, min_distance; /* metres */
};

/* Parse and validate a GeoJSON geometry object. Longitudes in [-180,180],
 * latitudes in [-90,90], an optional third coordinate (altitude) allowed,
 * LineStrings of >= 2 positions, linear rings of >= 4 positions, closed.
 * Returns 0 and *out (caller frees with geo_free), or ERR_BAD_DATA with
 * the reason in e. */
int geo_parse(const cJSON *geojson, struct geo_shape **out, struct err *e);

/* Parse the geometry of a query: geometry name ("Point", "Polygon", ...)
 * and coordinates as JSON text ("[4.89,52.37]"). Errors are
 * ERR_BAD_DATA. */
int geo_parse_query(const char *geometry, const char *coordinates,
                    struct geo_shape **out, struct err *e);

void geo_free(struct geo_shape *s);

enum geo_kind geo_shape_kind(const struct geo_shape *s);

/* Bounding box: bbox[0]=min lon, [1]=min lat, [2]=max lon, [3]=max lat. */
void geo_bbox(const struct geo_shape *s, double bbox[4]);

/* Parse a georel parameter. near requires maxDistance and/or minDistance
 * (non-negative numbers); the others take no modifier. ERR_BAD_DATA on
 * anything else. */
int geo_rel_parse(const char *georel, struct geo_rel *out, struct err *e);

/* Does `target` (an entity's GeoProperty) stand in relation `rel` to
 * `query` (the query geometry)? E.g. GEO_WITHIN: target within query;
 * GEO_CONTAINS: target contains query; GEO_NEAR: distance(target, query)
 * <= max (and >= min). Returns 1 or 0. */
int geo_match(const struct geo_rel *rel, const struct geo_shape *query,
              const struct geo_shape *target);

/* A box that every matching target's bbox must intersect, for an index
 * prefilter (near: the query bbox grown by maxDistance, computed safely
 * near the poles and the antimeridian). Returns 1 and fills bbox, or 0
 * when no prefilter exists (disjoint, near with only minDistance). */
int geo_search_bbox(const struct geo_rel *rel, const struct geo_shape *query,
                    double bbox[4]);

/* Great-circle distance in metres between two lon/lat points. */
double geo_distance_m(double lon1, double lat1, double lon2, double lat2);

#endif
