/*
 * geo.c - GeoJSON geometries and the NGSI-LD geo-query predicates.
 *
 * Parsing walks the cJSON tree twice: a first pass validates and counts
 * (positions, parts = linestrings or rings, polygons), then one allocation
 * per array is made and a second pass fills it, so no buffer ever grows from
 * input and the 100000-position cap is enforced before anything is
 * allocated. A shape stores 2-D positions only (an altitude is validated and
 * dropped), the offsets of its parts and polygons, a bounding box per part
 * and per chunk of up to 32 consecutive segments (the prefilter of every
 * segment loop below) and, per polygon, one point strictly in its interior,
 * all computed once at parse time so that the predicates never allocate.
 *
 * Predicates are the OGC simple-features (DE-9IM) meanings on lon/lat taken
 * as planar x/y, built from three exact-as-doubles primitives: point
 * location in an area (in / on boundary / out, even-odd rule, so holes and
 * ring orientation need no special case), segment/segment intersection, and
 * "classify a segment against an area" (split the segment where it meets
 * the area's boundary and locate the midpoint of every piece). From those:
 *   covered(A,B)   every point of A lies in the closure of B
 *   inter(A,B)     the interiors of A and B intersect
 *   within(A,B)  = covered(A,B) && inter(A,B)           (OGC T*F**F***)
 *   contains(A,B)= within(B,A)
 *   equals(A,B)  = covered(A,B) && covered(B,A)        (same point set)
 *   overlaps(A,B)= same dimension, interiors intersect (in a segment for
 *                  lines), neither covered by the other
 * Interiors: a point is its own interior; a line's boundary is the set of
 * endpoints of its non-closed linestrings that occur an odd number of times
 * (mod-2 rule); a polygon's boundary is its rings. Hence a point exactly on
 * a polygon's boundary, or at the end of a line, is NOT within it.
 * Assumptions: polygons are valid (holes inside the shell, rings simple,
 * the polygons of a MultiPolygon touching at points only); this is not
 * checked. No tolerance is applied: coordinates are compared exactly.
 * Cost is O(n*m) in the sizes of the two shapes in the worst case, cut
 * down by about the chunk size by the chunk bboxes (two concentric
 * 100000-vertex rings: about 1.5 s per predicate).
 *
 * near uses great-circle distances: haversine between points, and for a
 * point and a segment the closest point found on a local equirectangular
 * projection centred on the point, then measured with haversine; 0 when the
 * shapes intersect (planar test). Chunks whose 3-D box on the unit sphere is
 * farther (as a chord) than the best distance so far are skipped: a
 * conservative bound, so pruning never changes the result.
 *
 * Thread-safety: no global state; shapes are immutable after geo_parse and
 * may be shared by any number of threads.
 */
#include "query/geo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEO_MAX_POSITIONS 100000
#define GEO_EARTH_RADIUS_M 6371008.8
/* Segments per chunk: the bbox of a run of consecutive segments is the
 * prefilter of every segment loop, so costs are about n*m/GEO_CHUNK. */
#define GEO_CHUNK 32
#define GEO_PI 3.14159265358979323846
#define GEO_DEG (GEO_PI / 180.0)
/* The coordinates text of a query comes from a URL; anything near this is
 * abuse, and 100000 positions fit well inside it. */
#define GEO_QUERY_TEXT_MAX (8u << 20)

struct geo_shape {
    enum geo_kind kind;
    int dim;             /* 0 points, 1 lines, 2 polygons */
    double bbox[4];      /* min lon, min lat, max lon, max lat */
    size_t n_pos;
    double *xy;          /* 2 * n_pos: lon, lat */
    size_t n_parts;      /* linestrings (dim 1) or rings (dim 2); 0 for points */
    size_t *part;        /* n_parts + 1 offsets into positions */
    double *part_bbox;   /* 4 * n_parts */
    size_t n_polys;      /* dim 2 only */
    size_t *poly;        /* n_polys + 1 offsets into parts; first is the shell */
    double *inner;       /* 2 * n_polys: interior point, NaN if degenerate */
    /* Chunks: runs of <= GEO_CHUNK consecutive segments of one part
     * (dim >= 1: segment i joins positions i and i+1) or of positions
     * (dim 0), each with its lon/lat bbox and the 3-D box of that bbox on
     * the unit sphere (a lower bound for great-circle distances). */
    size_t n_chunks;
    size_t *part_chunk;  /* n_parts + 1 offsets into chunks */
    size_t *chunk_from;  /* first segment (or position) */
    size_t *chunk_to;    /* one past the last segment (or position) */
    double *chunk_bbox;  /* 4 * n_chunks */
    double *chunk_box3;  /* 6 * n_chunks: min x,y,z, max x,y,z */
};

struct pt {
    double x, y;
};

enum { LOC_OUT = 0, LOC_BND = 1, LOC_IN = 2 };
enum { F_OUT = 1u, F_BND = 2u, F_IN = 4u };

/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* ------------------------------------------------------------------ */

/* Counting pass (fill == 0) or filling pass (fill == 1, s allocated). */
struct build {
    int fill;
    struct geo_shape *s;
    size_t n_pos, n_parts, n_polys;
};

static const struct {
    const char *name;
    enum geo_kind kind;
} kinds[] = {
    {"Point", GEO_POINT},
    {"MultiPoint", GEO_MULTIPOINT},
    {"LineString", GEO_LINESTRING},
    {"MultiLineString", GEO_MULTILINESTRING},
    {"Polygon", GEO_POLYGON},
    {"MultiPolygon", GEO_MULTIPOLYGON},
};

static int parse_pos(const cJSON *j, const char *where, size_t idx, double v[3],
                     int *n_out, struct err *e)
{
    const cJSON *it;
    int n = 0;

    if (!cJSON_IsArray(j))
        return err_set(e, ERR_BAD_DATA, "%s position %zu is not an array",
                       where, idx);
    cJSON_ArrayForEach(it, j)
    {
        if (n == 3)
            return err_set(e, ERR_BAD_DATA,
                           "%s position %zu has more than 3 numbers", where, idx);
        if (!cJSON_IsNumber(it))
            return err_set(e, ERR_BAD_DATA,
                           "%s position %zu has a non-number entry", where, idx);
        if (!isfinite(it->valuedouble))
            return err_set(e, ERR_BAD_DATA,
                           "%s position %zu has a non-finite number", where, idx);
        v[n++] = it->valuedouble;
    }
    if (n < 2)
        return err_set(e, ERR_BAD_DATA,
                       "%s position %zu has fewer than 2 numbers", where, idx);
    if (v[0] < -180.0 || v[0] > 180.0)
        return err_set(e, ERR_BAD_DATA,
                       "%s position %zu: longitude %.10g out of range [-180,180]",
                       where, idx, v[0]);
    if (v[1] < -90.0 || v[1] > 90.0)
        return err_set(e, ERR_BAD_DATA,
                       "%s position %zu: latitude %.10g out of range [-90,90]",
                       where, idx, v[1]);
    *n_out = n;
    return 0;
}

static int add_pos(struct build *b, const double v[3], struct err *e)
{
    if (b->n_pos >= GEO_MAX_POSITIONS)
        return err_set(e, ERR_BAD_DATA,
                       "geometry has too many positions (at most %d)",
                       GEO_MAX_POSITIONS);
    if (b->fill) {
        b->s->xy[2 * b->n_pos] = v[0];
        b->s->xy[2 * b->n_pos + 1] = v[1];
    }
    b->n_pos++;
    return 0;
}

/* A single position (Point) or a list of them (MultiPoint). */
static int parse_points(const cJSON *c, struct build *b, int multi,
                        struct err *e)
{
    const cJSON *it;
    double v[3];
    int n, rc;
    size_t count = 0;

    if (!multi) {
        if ((rc = parse_pos(c, "Point", 0, v, &n, e)) != 0)
            return rc;
        return add_pos(b, v, e);
    }
    cJSON_ArrayForEach(it, c)
    {
        if ((rc = parse_pos(it, "MultiPoint", count, v, &n, e)) != 0)
            return rc;
        if ((rc = add_pos(b, v, e)) != 0)
            return rc;
        count++;
    }
    if (count == 0)
        return err_set(e, ERR_BAD_DATA, "MultiPoint has no positions");
    return 0;
}

/* A LineString or a linear ring: >= 2 (line) or >= 4 closed (ring). */
static int parse_line(const cJSON *arr, struct build *b, const char *where,
                      int is_ring, struct err *e)
{
    const cJSON *it;
    double v[3], first[3] = {0, 0, 0};
    int n, n_first = 0, rc;
    size_t start = b->n_pos, count = 0;

    if (!cJSON_IsArray(arr))
        return err_set(e, ERR_BAD_DATA, "%s is not an array of positions",
                       where);
    cJSON_ArrayForEach(it, arr)
    {
        if ((rc = parse_pos(it, where, count, v, &n, e)) != 0)
            return rc;
        if ((rc = add_pos(b, v, e)) != 0)
            return rc;
        if (count == 0) {
            memcpy(first, v, sizeof(first));
            n_first = n;
        }
        count++;
    }
    if (!is_ring && count < 2)
        return err_set(e, ERR_BAD_DATA,
                       "%s needs at least 2 positions, has %zu", where, count);
    if (is_ring && count < 4)
        return err_set(e, ERR_BAD_DATA,
                       "%s needs at least 4 positions, has %zu", where, count);
    /* v is the last position. Altitudes are compared only when both have
     * one. */
    if (is_ring && (v[0] != first[0] || v[1] != first[1] ||
                    (n == 3 && n_first == 3 && v[2] != first[2])))
        return err_set(e, ERR_BAD_DATA, "%s is not closed", where);
    if (b->fill)
        b->s->part[b->n_parts] = start;
    b->n_parts++;
    return 0;
}

static int parse_polygon(const cJSON *arr, struct build *b, const char *name,
                         struct err *e)
{
    const cJSON *it;
    char where[96];
    size_t k = 0, first_part = b->n_parts;
    int rc;

    if (!cJSON_IsArray(arr))
        return err_set(e, ERR_BAD_DATA, "%s is not an array of rings", name);
    cJSON_ArrayForEach(it, arr)
    {
        snprintf(where, sizeof(where), "%s ring %zu", name, k);
        if ((rc = parse_line(it, b, where, 1, e)) != 0)
            return rc;
        k++;
    }
    if (k == 0)
        return err_set(e, ERR_BAD_DATA, "%s has no rings", name);
    if (b->fill)
        b->s->poly[b->n_polys] = first_part;
    b->n_polys++;
    return 0;
}

/* One pass over the geometry object; *kind is set on success. */
static int parse_geometry(const cJSON *g, struct build *b, enum geo_kind *kind,
                          struct err *e)
{
    const cJSON *type, *coords, *it;
    char where[96];
    size_t i, k = 0;
    int rc;

    if (!cJSON_IsObject(g))
        return err_set(e, ERR_BAD_DATA, "geometry is not a JSON object");
    type = cJSON_GetObjectItemCaseSensitive(g, "type");
    if (!cJSON_IsString(type) || type->valuestring == NULL)
        return err_set(e, ERR_BAD_DATA, "geometry has no \"type\" string");
    *kind = 0;
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(type->valuestring, kinds[i].name) == 0)
            *kind = kinds[i].kind;
    if (*kind == 0)
        return err_set(e, ERR_BAD_DATA, "unsupported geometry type \"%.40s\"",
                       type->valuestring);
    coords = cJSON_GetObjectItemCaseSensitive(g, "coordinates");
    if (!cJSON_IsArray(coords))
        return err_set(e, ERR_BAD_DATA, "%s has no \"coordinates\" array",
                       type->valuestring);

    switch (*kind) {
    case GEO_POINT:
        return parse_points(coords, b, 0, e);
    case GEO_MULTIPOINT:
        return parse_points(coords, b, 1, e);
    case GEO_LINESTRING:
        return parse_line(coords, b, "LineString", 0, e);
    case GEO_MULTILINESTRING:
        cJSON_ArrayForEach(it, coords)
        {
            snprintf(where, sizeof(where), "MultiLineString line %zu", k++);
            if ((rc = parse_line(it, b, where, 0, e)) != 0)
                return rc;
        }
        if (k == 0)
            return err_set(e, ERR_BAD_DATA, "MultiLineString has no lines");
        return 0;
    case GEO_POLYGON:
        return parse_polygon(coords, b, "Polygon", e);
    case GEO_MULTIPOLYGON:
        cJSON_ArrayForEach(it, coords)
        {
            snprintf(where, sizeof(where), "MultiPolygon polygon %zu", k++);
            if ((rc = parse_polygon(it, b, where, e)) != 0)
                return rc;
        }
        if (k == 0)
            return err_set(e, ERR_BAD_DATA, "MultiPolygon has no polygons");
        return 0;
    }
    return err_set(e, ERR_INTERNAL, "geometry kind %d", (int)*kind);
}

static struct pt pos_at(const struct geo_shape *s, size_t i)
{
    struct pt p = {s->xy[2 * i], s->xy[2 * i + 1]};
    return p;
}

static void bbox_of_range(const struct geo_shape *s, size_t from, size_t to,
                          double box[4])
{
    size_t i;

    box[0] = box[1] = INFINITY;
    box[2] = box[3] = -INFINITY;
    for (i = from; i < to; i++) {
        box[0] = fmin(box[0], s->xy[2 * i]);
        box[1] = fmin(box[1], s->xy[2 * i + 1]);
        box[2] = fmax(box[2], s->xy[2 * i]);
        box[3] = fmax(box[3], s->xy[2 * i + 1]);
    }
}

static int locate_poly(const struct geo_shape *s, size_t j, struct pt p);

static void box3_of(const double box[4], double out[6]);

/* Cut every part (or the points) into chunks of <= GEO_CHUNK segments (or
 * positions) with their boxes. */
static int build_chunks(struct geo_shape *s)
{
    size_t r, i, c = 0;

    if (s->dim == 0)
        c = (s->n_pos + GEO_CHUNK - 1) / GEO_CHUNK;
    for (r = 0; r < s->n_parts; r++)
        c += (s->part[r + 1] - s->part[r] - 1 + GEO_CHUNK - 1) / GEO_CHUNK;
    s->n_chunks = c;
    s->part_chunk = malloc((s->n_parts + 1) * sizeof(size_t));
    s->chunk_from = malloc((c + 1) * sizeof(size_t));
    s->chunk_to = malloc((c + 1) * sizeof(size_t));
    s->chunk_bbox = malloc((4 * c + 1) * sizeof(double));
    s->chunk_box3 = malloc((6 * c + 1) * sizeof(double));
    if (!s->part_chunk || !s->chunk_from || !s->chunk_to || !s->chunk_bbox ||
        !s->chunk_box3)
        return ERR_NOMEM;
    c = 0;
    for (i = 0; s->dim == 0 && i < s->n_pos; i += GEO_CHUNK) {
        s->chunk_from[c] = i;
        s->chunk_to[c] = s->n_pos - i > GEO_CHUNK ? i + GEO_CHUNK : s->n_pos;
        bbox_of_range(s, i, s->chunk_to[c], s->chunk_bbox + 4 * c);
        c++;
    }
    for (r = 0; r < s->n_parts; r++) {
        size_t last = s->part[r + 1] - 1; /* no segment starts here */
        s->part_chunk[r] = c;
        for (i = s->part[r]; i < last; i += GEO_CHUNK) {
            s->chunk_from[c] = i;
            s->chunk_to[c] = last - i > GEO_CHUNK ? i + GEO_CHUNK : last;
            bbox_of_range(s, i, s->chunk_to[c] + 1, s->chunk_bbox + 4 * c);
            c++;
        }
    }
    s->part_chunk[s->n_parts] = c;
    for (c = 0; c < s->n_chunks; c++)
        box3_of(s->chunk_bbox + 4 * c, s->chunk_box3 + 6 * c);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* A point strictly inside polygon j: the horizontal line halfway across the
 * widest gap between vertex latitudes passes through no vertex; the widest
 * span between its crossings 2k and 2k+1 (even-odd) is interior. scratch
 * holds at least as many doubles as the polygon has positions. */
static void compute_inner(struct geo_shape *s, size_t j, double *scratch)
{
    size_t r, i, n = 0, k;
    double y = NAN, gap = 0.0, width = 0.0;
    struct pt p = {NAN, NAN};

    for (r = s->poly[j]; r < s->poly[j + 1]; r++)
        for (i = s->part[r]; i < s->part[r + 1]; i++)
            scratch[n++] = s->xy[2 * i + 1];
    qsort(scratch, n, sizeof(double), cmp_double);
    for (k = 0; k + 1 < n; k++) {
        if (scratch[k + 1] - scratch[k] > gap) {
            gap = scratch[k + 1] - scratch[k];
            y = (scratch[k] + scratch[k + 1]) / 2.0;
        }
    }
    if (gap > 0.0) {
        n = 0;
        for (r = s->poly[j]; r < s->poly[j + 1]; r++) {
            for (i = s->part[r]; i + 1 < s->part[r + 1]; i++) {
                struct pt a = pos_at(s, i), b = pos_at(s, i + 1);
                if ((a.y > y) != (b.y > y))
                    scratch[n++] = a.x + (y - a.y) * (b.x - a.x) / (b.y - a.y);
            }
        }
        qsort(scratch, n, sizeof(double), cmp_double);
        for (k = 0; k + 1 < n; k += 2) {
            if (scratch[k + 1] - scratch[k] > width) {
                width = scratch[k + 1] - scratch[k];
                p.x = (scratch[k] + scratch[k + 1]) / 2.0;
                p.y = y;
            }
        }
    }
    /* Guard against rounding: keep it only if it really is inside. */
    if (width > 0.0 && locate_poly(s, j, p) != LOC_IN)
        p.x = p.y = NAN;
    s->inner[2 * j] = p.x;
    s->inner[2 * j + 1] = p.y;
}

int geo_parse(const cJSON *geojson, struct geo_shape **out, struct err *e)
{
    struct build b = {0, NULL, 0, 0, 0};
    struct geo_shape *s = NULL;
    enum geo_kind kind = 0;
    double *scratch = NULL;
    size_t r, j;
    int rc;

    if (out == NULL)
        return err_set(e, ERR_INTERNAL, "geo_parse: no output");
    *out = NULL;
    if ((rc = parse_geometry(geojson, &b, &kind, e)) != 0)
        return rc;

    rc = ERR_NOMEM;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        goto fail;
    s->kind = kind;
    s->dim = kind <= GEO_MULTIPOINT ? 0 : kind <= GEO_MULTILINESTRING ? 1 : 2;
    s->n_pos = b.n_pos;
    s->n_parts = b.n_parts;
    s->n_polys = b.n_polys;
    s->xy = malloc(2 * b.n_pos * sizeof(double));
    s->part = malloc((b.n_parts + 1) * sizeof(size_t));
    s->part_bbox = malloc((4 * b.n_parts + 1) * sizeof(double));
    s->poly = malloc((b.n_polys + 1) * sizeof(size_t));
    s->inner = malloc((2 * b.n_polys + 1) * sizeof(double));
    if (!s->xy || !s->part || !s->part_bbox || !s->poly || !s->inner)
        goto fail;

    b.fill = 1;
    b.s = s;
    b.n_pos = b.n_parts = b.n_polys = 0;
    if ((rc = parse_geometry(geojson, &b, &kind, e)) != 0)
        goto fail; /* cannot happen: same input as the counting pass */
    s->part[s->n_parts] = s->n_pos;
    s->poly[s->n_polys] = s->n_parts;

    bbox_of_range(s, 0, s->n_pos, s->bbox);
    for (r = 0; r < s->n_parts; r++)
        bbox_of_range(s, s->part[r], s->part[r + 1], s->part_bbox + 4 * r);
    if ((rc = build_chunks(s)) != 0)
        goto fail;
    if (s->n_polys > 0) {
        rc = ERR_NOMEM;
        if ((scratch = malloc(s->n_pos * sizeof(double))) == NULL)
            goto fail;
        for (j = 0; j < s->n_polys; j++)
            compute_inner(s, j, scratch);
        free(scratch);
    }
    *out = s;
    return 0;

fail:
    geo_free(s);
    if (rc == ERR_NOMEM)
        err_set(e, ERR_NOMEM, "out of memory parsing a geometry");
    return rc;
}

int geo_parse_query(const char *geometry, const char *coordinates,
                    struct geo_shape **out, struct err *e)
{
    cJSON *obj = NULL, *coords = NULL;
    int rc;

    if (out == NULL)
        return err_set(e, ERR_INTERNAL, "geo_parse_query: no output");
    *out = NULL;
    if (geometry == NULL || geometry[0] == '\0')
        return err_set(e, ERR_BAD_DATA, "geo-query has no geometry");
    if (coordinates == NULL || coordinates[0] == '\0')
        return err_set(e, ERR_BAD_DATA, "geo-query has no coordinates");
    if (strlen(coordinates) > GEO_QUERY_TEXT_MAX)
        return err_set(e, ERR_BAD_DATA, "geo-query coordinates are too long");
    coords = cJSON_ParseWithOpts(coordinates, NULL, 1);
    if (coords == NULL)
        return err_set(e, ERR_BAD_DATA,
                       "geo-query coordinates are not valid JSON");
    if (!cJSON_IsArray(coords)) {
        rc = err_set(e, ERR_BAD_DATA,
                     "geo-query coordinates are not a JSON array");
        goto out;
    }
    rc = ERR_NOMEM;
    if ((obj = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(obj, "type", geometry) == NULL ||
        !cJSON_AddItemToObject(obj, "coordinates", coords)) {
        err_set(e, ERR_NOMEM, "out of memory parsing a geo-query");
        goto out;
    }
    coords = NULL; /* owned by obj now */
    rc = geo_parse(obj, out, e);
out:
    cJSON_Delete(coords);
    cJSON_Delete(obj);
    return rc;
}

void geo_free(struct geo_shape *s)
{
    if (s == NULL)
        return;
    free(s->xy);
    free(s->part);
    free(s->part_bbox);
    free(s->poly);
    free(s->inner);
    free(s->part_chunk);
    free(s->chunk_from);
    free(s->chunk_to);
    free(s->chunk_bbox);
    free(s->chunk_box3);
    free(s);
}

enum geo_kind geo_shape_kind(const struct geo_shape *s)
{
    return s ? s->kind : (enum geo_kind)0;
}

void geo_bbox(const struct geo_shape *s, double bbox[4])
{
    int i;

    for (i = 0; i < 4; i++)
        bbox[i] = s ? s->bbox[i] : 0.0;
}

/* ------------------------------------------------------------------ */
/* georel                                                              */
/* ------------------------------------------------------------------ */

static int parse_distance(const char *text, size_t len, double *out)
{
    char buf[40], *end;
    size_t i;
    int digits = 0;

    if (len == 0 || len >= sizeof(buf))
        return -1;
    for (i = 0; i < len; i++) {
        char c = text[i];
        if (c >= '0' && c <= '9')
            digits = 1;
        else if (c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-')
            return -1; /* no hex, inf, nan, spaces */
    }
    if (!digits)
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    *out = strtod(buf, &end);
    if (*end != '\0' || !isfinite(*out) || *out < 0.0)
        return -1;
    return 0;
}

int geo_rel_parse(const char *georel, struct geo_rel *out, struct err *e)
{
    static const struct {
        const char *name;
        enum geo_relop op;
    } ops[] = {
        {"near", GEO_NEAR},         {"within", GEO_WITHIN},
        {"contains", GEO_CONTAINS}, {"intersects", GEO_INTERSECTS},
        {"disjoint", GEO_DISJOINT}, {"equals", GEO_EQUALS},
        {"overlaps", GEO_OVERLAPS},
    };
    const char *semi, *p, *end;
    size_t name_len, i;

    if (out == NULL)
        return err_set(e, ERR_INTERNAL, "geo_rel_parse: no output");
    memset(out, 0, sizeof(*out));
    if (georel == NULL || georel[0] == '\0')
        return err_set(e, ERR_BAD_DATA, "georel is missing");
    semi = strchr(georel, ';');
    name_len = semi ? (size_t)(semi - georel) : strlen(georel);
    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strlen(ops[i].name) == name_len &&
            memcmp(ops[i].name, georel, name_len) == 0)
            out->op = ops[i].op;
    if (out->op == 0)
        return err_set(e, ERR_BAD_DATA, "unknown georel \"%.*s\"",
                       (int)(name_len > 40 ? 40 : name_len), georel);
    if (out->op != GEO_NEAR) {
        if (semi != NULL) {
            memset(out, 0, sizeof(*out));
            return err_set(e, ERR_BAD_DATA,
                           "georel %.*s takes no modifier", (int)name_len,
                           georel);
        }
        return 0;
    }
    if (semi == NULL) {
        memset(out, 0, sizeof(*out));
        return err_set(e, ERR_BAD_DATA,
                       "georel near needs maxDistance or minDistance");
    }
    for (p = semi + 1;; p = end + 1) {
        int is_max;
        double v;
        end = strchr(p, ';');
        if (end == NULL)
            end = p + strlen(p);
        if (strncmp(p, "maxDistance==", 13) == 0)
            is_max = 1;
        else if (strncmp(p, "minDistance==", 13) == 0)
            is_max = 0;
        else {
            memset(out, 0, sizeof(*out));
            return err_set(e, ERR_BAD_DATA,
                           "georel near: expected maxDistance==<metres> or "
                           "minDistance==<metres>, got \"%.*s\"",
                           (int)((size_t)(end - p) > 40 ? 40 : end - p), p);
        }
        if ((is_max ? out->has_max : out->has_min) ||
            parse_distance(p + 13, (size_t)(end - p) - 13, &v) != 0) {
            memset(out, 0, sizeof(*out));
            return err_set(e, ERR_BAD_DATA,
                           "georel near: %s must be given once, as a "
                           "non-negative number of metres",
                           is_max ? "maxDistance" : "minDistance");
        }
        if (is_max) {
            out->has_max = 1;
            out->max_distance = v;
        } else {
            out->has_min = 1;
            out->min_distance = v;
        }
        if (*end == '\0')
            break;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Planar primitives                                                   */
/* ------------------------------------------------------------------ */

static double orient(struct pt a, struct pt b, struct pt c)
{
    return (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);
}

static int sign_of(double v)
{
    return (v > 0) - (v < 0);
}

static int pt_eq(struct pt a, struct pt b)
{
    return a.x == b.x && a.y == b.y;
}

/* p, known collinear with a-b, lies within the segment's extent. */
static int in_extent(struct pt a, struct pt b, struct pt p)
{
    return p.x >= fmin(a.x, b.x) && p.x <= fmax(a.x, b.x) &&
           p.y >= fmin(a.y, b.y) && p.y <= fmax(a.y, b.y);
}

static int on_segment(struct pt a, struct pt b, struct pt p)
{
    return orient(a, b, p) == 0.0 && in_extent(a, b, p);
}

static int box_overlap(const double a[4], const double b[4])
{
    return a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3];
}

static int box_has(const double a[4], struct pt p)
{
    return p.x >= a[0] && p.x <= a[2] && p.y >= a[1] && p.y <= a[3];
}

static void seg_box(struct pt a, struct pt b, double box[4])
{
    box[0] = fmin(a.x, b.x);
    box[1] = fmin(a.y, b.y);
    box[2] = fmax(a.x, b.x);
    box[3] = fmax(a.y, b.y);
}

/* Parameter of p (on the line a-b) along a-b; a != b. */
static double seg_param(struct pt a, struct pt b, struct pt p)
{
    double dx = b.x - a.x, dy = b.y - a.y;

    return ((p.x - a.x) * dx + (p.y - a.y) * dy) / (dx * dx + dy * dy);
}

/* 0: disjoint; 1: they meet in one point (*p; exact when it is an endpoint
 * of either); 2: collinear overlap of positive length. */
static int seg_intersect(struct pt a, struct pt b, struct pt c, struct pt d,
                         struct pt *p)
{
    int o1 = sign_of(orient(a, b, c)), o2 = sign_of(orient(a, b, d));
    int o3 = sign_of(orient(c, d, a)), o4 = sign_of(orient(c, d, b));

    if (o1 == 0 && o2 == 0 && o3 == 0 && o4 == 0) {
        /* Collinear (or degenerate): overlap along the longer axis. */
        int use_x = fmax(fabs(b.x - a.x), fabs(d.x - c.x)) >=
                    fmax(fabs(b.y - a.y), fabs(d.y - c.y));
        double a0 = use_x ? a.x : a.y, a1 = use_x ? b.x : b.y;
        double c0 = use_x ? c.x : c.y, c1 = use_x ? d.x : d.y;
        double lo = fmax(fmin(a0, a1), fmin(c0, c1));
        double hi = fmin(fmax(a0, a1), fmax(c0, c1));
        if (lo < hi)
            return 2;
    }
    if (o1 != 0 && o2 != 0 && o1 != o2 && o3 != 0 && o4 != 0 && o3 != o4) {
        double t = orient(c, d, a) / (orient(c, d, a) - orient(c, d, b));
        p->x = a.x + t * (b.x - a.x);
        p->y = a.y + t * (b.y - a.y);
        return 1;
    }
    if (o1 == 0 && in_extent(a, b, c)) {
        *p = c;
        return 1;
    }
    if (o2 == 0 && in_extent(a, b, d)) {
        *p = d;
        return 1;
    }
    if (o3 == 0 && in_extent(c, d, a)) {
        *p = a;
        return 1;
    }
    if (o4 == 0 && in_extent(c, d, b)) {
        *p = b;
        return 1;
    }
    return 0;
}

/* Location of p relative to polygon j (shell + holes), even-odd rule. */
static int locate_poly(const struct geo_shape *s, size_t j, struct pt p)
{
    size_t r, c, i;
    int inside = 0;

    for (r = s->poly[j]; r < s->poly[j + 1]; r++) {
        /* A ring whose bbox misses p cannot touch it and crosses the ray
         * from p an even number of times. */
        if (!box_has(s->part_bbox + 4 * r, p))
            continue;
        for (c = s->part_chunk[r]; c < s->part_chunk[r + 1]; c++) {
            const double *box = s->chunk_bbox + 4 * c;
            /* No segment here can touch p or cross the ray to its right. */
            if (p.y < box[1] || p.y > box[3] || p.x > box[2])
                continue;
            for (i = s->chunk_from[c]; i < s->chunk_to[c]; i++) {
                struct pt a = pos_at(s, i), b = pos_at(s, i + 1);
                if (on_segment(a, b, p))
                    return LOC_BND;
                if ((a.y > p.y) != (b.y > p.y) &&
                    p.x < a.x + (p.y - a.y) * (b.x - a.x) / (b.y - a.y))
                    inside = !inside;
            }
        }
    }
    return inside ? LOC_IN : LOC_OUT;
}

/* Location of p relative to an areal shape. */
static int locate_area(const struct geo_shape *s, struct pt p)
{
    size_t j;
    int loc = LOC_OUT;

    if (!box_has(s->bbox, p))
        return LOC_OUT;
    for (j = 0; j < s->n_polys; j++) {
        int l;
        if (!box_has(s->part_bbox + 4 * s->poly[j], p))
            continue;
        l = locate_poly(s, j, p);
        if (l == LOC_IN)
            return LOC_IN;
        if (l == LOC_BND)
            loc = LOC_BND;
    }
    return loc;
}

static unsigned loc_flag(int loc)
{
    return loc == LOC_IN ? F_IN : loc == LOC_BND ? F_BND : F_OUT;
}

/* Smallest t in (cur, 1) where a-b meets the boundary of areal q, or 1. */
static double next_cross(struct pt a, struct pt b, const struct geo_shape *q,
                         double cur)
{
    double best = 1.0, box[4], t;
    size_t c, i;

    seg_box(a, b, box);
    for (c = 0; c < q->n_chunks; c++) {
        if (!box_overlap(box, q->chunk_bbox + 4 * c))
            continue;
        for (i = q->chunk_from[c]; i < q->chunk_to[c]; i++) {
            struct pt p = pos_at(q, i), d = pos_at(q, i + 1);
            int o1 = sign_of(orient(a, b, p)), o2 = sign_of(orient(a, b, d));
            if (o1 == 0) {
                t = seg_param(a, b, p);
                if (t > cur && t < best)
                    best = t;
            }
            if (o2 == 0) {
                t = seg_param(a, b, d);
                if (t > cur && t < best)
                    best = t;
            }
            if (o1 != 0 && o2 != 0 && o1 != o2) {
                double o3 = orient(p, d, a), o4 = orient(p, d, b);
                if (sign_of(o3) != 0 && sign_of(o4) != 0 &&
                    sign_of(o3) != sign_of(o4)) {
                    t = o3 / (o3 - o4);
                    if (t > cur && t < best)
                        best = t;
                }
            }
        }
    }
    return best;
}

/* Which of F_IN/F_BND/F_OUT the points of segment a-b visit relative to
 * areal q: split at every boundary meeting, locate each piece's midpoint
 * and the endpoints. */
static unsigned classify_seg(struct pt a, struct pt b, const struct geo_shape *q)
{
    double box[4], cur = 0.0;
    unsigned flags;

    seg_box(a, b, box);
    if (!box_overlap(box, q->bbox))
        return F_OUT;
    flags = loc_flag(locate_area(q, a)) | loc_flag(locate_area(q, b));
    if (pt_eq(a, b))
        return flags;
    while (cur < 1.0) {
        double nt = next_cross(a, b, q, cur), m = (cur + nt) / 2.0;
        struct pt p = {a.x + (b.x - a.x) * m, a.y + (b.y - a.y) * m};
        flags |= loc_flag(locate_area(q, p));
        cur = nt;
    }
    return flags;
}

/* Is p on any segment (line, or ring edge) of s? */
static int on_lines(const struct geo_shape *s, struct pt p)
{
    size_t c, i;

    for (c = 0; c < s->n_chunks; c++) {
        if (!box_has(s->chunk_bbox + 4 * c, p))
            continue;
        for (i = s->chunk_from[c]; i < s->chunk_to[c]; i++)
            if (on_segment(pos_at(s, i), pos_at(s, i + 1), p))
                return 1;
    }
    return 0;
}

static int any_point_equal(const struct geo_shape *s, struct pt p)
{
    size_t i;

    for (i = 0; i < s->n_pos; i++)
        if (pt_eq(pos_at(s, i), p))
            return 1;
    return 0;
}

/* Mod-2 rule: p is on the boundary of lineal s if it is an endpoint of an
 * odd number of its non-closed linestrings' ends. */
static int line_boundary(const struct geo_shape *s, struct pt p)
{
    size_t r, count = 0;

    for (r = 0; r < s->n_parts; r++) {
        struct pt first = pos_at(s, s->part[r]);
        struct pt last = pos_at(s, s->part[r + 1] - 1);
        if (pt_eq(first, last))
            continue;
        count += pt_eq(first, p) + pt_eq(last, p);
    }
    return count % 2 == 1;
}

/* Visit the pairs of segments of a and b whose chunk bboxes overlap; stop
 * at the first pair for which visit() returns non-zero and return that. */
typedef int (*seg_pair_fn)(const struct geo_shape *a, size_t i,
                           const struct geo_shape *b, size_t k);

static int each_seg_pair(const struct geo_shape *a, const struct geo_shape *b,
                         seg_pair_fn visit)
{
    size_t ca, cb, i, k;
    int rc;

    for (ca = 0; ca < a->n_chunks; ca++) {
        const double *abox = a->chunk_bbox + 4 * ca;
        if (!box_overlap(abox, b->bbox))
            continue;
        for (cb = 0; cb < b->n_chunks; cb++) {
            if (!box_overlap(abox, b->chunk_bbox + 4 * cb))
                continue;
            for (i = a->chunk_from[ca]; i < a->chunk_to[ca]; i++)
                for (k = b->chunk_from[cb]; k < b->chunk_to[cb]; k++)
                    if ((rc = visit(a, i, b, k)) != 0)
                        return rc;
        }
    }
    return 0;
}

static int pair_meets(const struct geo_shape *a, size_t i,
                      const struct geo_shape *b, size_t k)
{
    struct pt p;

    return seg_intersect(pos_at(a, i), pos_at(a, i + 1), pos_at(b, k),
                         pos_at(b, k + 1), &p) != 0;
}

static int pair_shares_piece(const struct geo_shape *a, size_t i,
                             const struct geo_shape *b, size_t k)
{
    struct pt p;

    return seg_intersect(pos_at(a, i), pos_at(a, i + 1), pos_at(b, k),
                         pos_at(b, k + 1), &p) == 2;
}

/* Two lines meet in a point interior to both, or share a piece. */
static int pair_interiors_meet(const struct geo_shape *a, size_t i,
                               const struct geo_shape *b, size_t k)
{
    struct pt p;
    int hit = seg_intersect(pos_at(a, i), pos_at(a, i + 1), pos_at(b, k),
                            pos_at(b, k + 1), &p);

    return hit == 2 ||
           (hit == 1 && !line_boundary(a, p) && !line_boundary(b, p));
}

/* Is segment a-b covered by the union of the segments of lineal q? Walk
 * along a-b, each time jumping to the farthest end of a collinear q
 * segment that starts at or before the current position. */
static int seg_covered(struct pt a, struct pt b, const struct geo_shape *q)
{
    double box[4], cur = 0.0;
    size_t c, i;

    if (pt_eq(a, b))
        return on_lines(q, a);
    seg_box(a, b, box);
    while (cur < 1.0) {
        double best = cur;
        for (c = 0; c < q->n_chunks; c++) {
            if (!box_overlap(box, q->chunk_bbox + 4 * c))
                continue;
            for (i = q->chunk_from[c]; i < q->chunk_to[c]; i++) {
                struct pt p = pos_at(q, i), d = pos_at(q, i + 1);
                double tp, td;
                if (orient(a, b, p) != 0.0 || orient(a, b, d) != 0.0)
                    continue;
                tp = seg_param(a, b, p);
                td = seg_param(a, b, d);
                if (fmin(tp, td) <= cur && fmax(tp, td) > best)
                    best = fmax(tp, td);
            }
        }
        if (best <= cur)
            return 0;
        cur = best;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Predicates                                                          */
/* ------------------------------------------------------------------ */

static int shapes_intersect(const struct geo_shape *a, const struct geo_shape *b)
{
    size_t i, r, j;

    if (!box_overlap(a->bbox, b->bbox))
        return 0;
    if (a->dim > b->dim) {
        const struct geo_shape *t = a;
        a = b;
        b = t;
    }
    if (a->dim == 0) {
        for (i = 0; i < a->n_pos; i++) {
            struct pt p = pos_at(a, i);
            if (b->dim == 0 ? any_point_equal(b, p)
                : b->dim == 1 ? on_lines(b, p)
                              : locate_area(b, p) != LOC_OUT)
                return 1;
        }
        return 0;
    }
    if (each_seg_pair(a, b, pair_meets))
        return 1;
    /* No boundaries meet: one may still lie inside the other. */
    if (b->dim == 2) {
        for (r = 0; r < a->n_parts; r++)
            if (locate_area(b, pos_at(a, a->part[r])) != LOC_OUT)
                return 1;
    }
    if (a->dim == 2) {
        for (j = 0; j < b->n_polys; j++)
            if (locate_area(a, pos_at(b, b->part[b->poly[j]])) != LOC_OUT)
                return 1;
    }
    return 0;
}

/* Does any segment of a (which must overlap box) visit one of the flags
 * relative to areal q? */
static int segs_visit(const struct geo_shape *a, const double box[4],
                      const struct geo_shape *q, unsigned flags)
{
    size_t c, i;

    for (c = 0; c < a->n_chunks; c++) {
        if (!box_overlap(a->chunk_bbox + 4 * c, box))
            continue;
        for (i = a->chunk_from[c]; i < a->chunk_to[c]; i++)
            if (classify_seg(pos_at(a, i), pos_at(a, i + 1), q) & flags)
                return 1;
    }
    return 0;
}

/* Every point of a lies in the closure of b. */
static int covered(const struct geo_shape *a, const struct geo_shape *b)
{
    size_t i, c, j;

    if (a->dim > b->dim)
        return 0;
    if (a->bbox[0] < b->bbox[0] || a->bbox[1] < b->bbox[1] ||
        a->bbox[2] > b->bbox[2] || a->bbox[3] > b->bbox[3])
        return 0;
    if (a->dim == 0) {
        for (i = 0; i < a->n_pos; i++) {
            struct pt p = pos_at(a, i);
            if (!(b->dim == 0 ? any_point_equal(b, p)
                  : b->dim == 1 ? on_lines(b, p)
                                : locate_area(b, p) != LOC_OUT))
                return 0;
        }
        return 1;
    }
    if (b->dim == 1) {
        for (c = 0; c < a->n_chunks; c++)
            for (i = a->chunk_from[c]; i < a->chunk_to[c]; i++)
                if (!seg_covered(pos_at(a, i), pos_at(a, i + 1), b))
                    return 0;
        return 1;
    }
    /* a's lines or boundary stay in b (a's bbox is inside b's). */
    if (segs_visit(a, a->bbox, b, F_OUT))
        return 0;
    if (a->dim == 1)
        return 1;
    /* Polygons: a's interior must not contain any of b's boundary (next to
     * which lies b's exterior); then each of a's (connected) interiors is
     * wholly inside or wholly outside b, which one interior point decides. */
    if (segs_visit(b, a->bbox, a, F_IN))
        return 0;
    for (j = 0; j < a->n_polys; j++) {
        struct pt p = {a->inner[2 * j], a->inner[2 * j + 1]};
        if (!isnan(p.x) && locate_area(b, p) == LOC_OUT)
            return 0;
    }
    return 1;
}

/* The interiors of a and b share a point. */
static int interiors_meet(const struct geo_shape *a, const struct geo_shape *b)
{
    size_t i, j;
    struct pt p;

    if (!box_overlap(a->bbox, b->bbox))
        return 0;
    if (a->dim > b->dim) {
        const struct geo_shape *t = a;
        a = b;
        b = t;
    }
    if (a->dim == 0) {
        for (i = 0; i < a->n_pos; i++) {
            p = pos_at(a, i);
            if (b->dim == 0 ? any_point_equal(b, p)
                : b->dim == 1 ? on_lines(b, p) && !line_boundary(b, p)
                              : locate_area(b, p) == LOC_IN)
                return 1;
        }
        return 0;
    }
    if (a->dim == 1 && b->dim == 1)
        return each_seg_pair(a, b, pair_interiors_meet);
    /* b is areal: does a's line or boundary enter b's interior? */
    if (segs_visit(a, b->bbox, b, F_IN))
        return 1;
    if (a->dim == 2) {
        /* a's boundary stays out of b's interior: each interior of b is
         * then wholly inside or wholly outside a. */
        for (j = 0; j < b->n_polys; j++) {
            p.x = b->inner[2 * j];
            p.y = b->inner[2 * j + 1];
            if (!isnan(p.x) && locate_area(a, p) == LOC_IN)
                return 1;
        }
    }
    return 0;
}

static int shape_within(const struct geo_shape *a, const struct geo_shape *b)
{
    return covered(a, b) && interiors_meet(a, b);
}

static int shape_overlaps(const struct geo_shape *a, const struct geo_shape *b)
{
    if (a->dim != b->dim)
        return 0;
    if (a->dim == 1 ? !each_seg_pair(a, b, pair_shares_piece)
                    : !interiors_meet(a, b))
        return 0;
    return !covered(a, b) && !covered(b, a);
}

/* ------------------------------------------------------------------ */
/* Distances                                                           */
/* ------------------------------------------------------------------ */

double geo_distance_m(double lon1, double lat1, double lon2, double lat2)
{
    double p1 = lat1 * GEO_DEG, p2 = lat2 * GEO_DEG;
    double dp = (lat2 - lat1) * GEO_DEG, dl = (lon2 - lon1) * GEO_DEG;
    double h = sin(dp / 2) * sin(dp / 2) +
               cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2);

    if (h > 1.0)
        h = 1.0;
    return 2.0 * GEO_EARTH_RADIUS_M * asin(sqrt(h));
}

/* Point to segment: closest point on a local equirectangular projection
 * centred on p (longitudes taken on p's side of the antimeridian), then
 * measured with haversine. */
static double pt_seg_dist(struct pt p, struct pt a, struct pt b)
{
    double k = cos(p.y * GEO_DEG), px = p.x, mid = (a.x + b.x) / 2.0;
    double ax, ay, dx, dy, len2, t = 0.0;

    if (px - mid > 180.0)
        px -= 360.0;
    else if (mid - px > 180.0)
        px += 360.0;
    ax = (a.x - px) * k;
    ay = a.y - p.y;
    dx = (b.x - a.x) * k;
    dy = b.y - a.y;
    len2 = dx * dx + dy * dy;
    if (len2 > 0.0) {
        t = -(ax * dx + ay * dy) / len2;
        t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
    }
    return geo_distance_m(p.x, p.y, a.x + t * (b.x - a.x),
                          a.y + t * (b.y - a.y));
}

/* The 3-D box (unit sphere, x toward lon 0, z toward the north pole) that
 * holds every point of a lon/lat box; padded so rounding cannot make the
 * distance bounds below overshoot. */
static void box3_of(const double box[4], double out[6])
{
    double l0 = box[0] * GEO_DEG, l1 = box[2] * GEO_DEG;
    double p0 = box[1] * GEO_DEG, p1 = box[3] * GEO_DEG;
    double cmin = fmin(cos(p0), cos(p1));
    double cmax = (box[1] <= 0.0 && box[3] >= 0.0) ? 1.0 : fmax(cos(p0), cos(p1));
    double clo = fmin(cos(l0), cos(l1)), chi = fmax(cos(l0), cos(l1));
    double slo = fmin(sin(l0), sin(l1)), shi = fmax(sin(l0), sin(l1));
    const double pad = 1e-12;

    if (box[0] <= 0.0 && box[2] >= 0.0)
        chi = 1.0;
    if (box[0] <= 90.0 && box[2] >= 90.0)
        shi = 1.0;
    if (box[0] <= -90.0 && box[2] >= -90.0)
        slo = -1.0;
    /* cos(lat) is in [cmin, cmax], both >= 0: extremes at the corners. */
    out[0] = fmin(cmin * clo, cmax * clo) - pad;
    out[3] = fmax(cmin * chi, cmax * chi) + pad;
    out[1] = fmin(cmin * slo, cmax * slo) - pad;
    out[4] = fmax(cmin * shi, cmax * shi) + pad;
    out[2] = sin(p0) - pad;
    out[5] = sin(p1) + pad;
}

static void unit_vec(struct pt p, double v[3])
{
    double c = cos(p.y * GEO_DEG);

    v[0] = c * cos(p.x * GEO_DEG);
    v[1] = c * sin(p.x * GEO_DEG);
    v[2] = sin(p.y * GEO_DEG);
}

/* Squared chord from unit vector v to a 3-D box. */
static double chord2_to_box(const double v[3], const double b[6])
{
    double sum = 0.0;
    int k;

    for (k = 0; k < 3; k++) {
        double d = fmax(0.0, fmax(b[k] - v[k], v[k] - b[k + 3]));
        sum += d * d;
    }
    return sum;
}

/* Squared chord between two 3-D boxes. */
static double chord2_box_box(const double a[6], const double b[6])
{
    double sum = 0.0;
    int k;

    for (k = 0; k < 3; k++) {
        double d = fmax(0.0, fmax(b[k] - a[k + 3], a[k] - b[k + 3]));
        sum += d * d;
    }
    return sum;
}

/* Squared chord of a great-circle distance, the pruning threshold: a box
 * farther than this cannot improve `best` metres. */
static double chord2_of(double metres)
{
    double half = metres / (2.0 * GEO_EARTH_RADIUS_M), c;

    if (!(half < GEO_PI / 2))
        return INFINITY;
    c = 2.0 * sin(half);
    return c * c * (1.0 + 1e-9) + 1e-18;
}

/* Chord (unit sphere) to great-circle metres. */
static double metres_of_chord2(double chord2)
{
    return 2.0 * GEO_EARTH_RADIUS_M * asin(fmin(1.0, sqrt(chord2) / 2.0));
}

static double pt_shape_dist(struct pt p, const struct geo_shape *s,
                            double best)
{
    double v[3], limit = chord2_of(best);
    size_t i, c;

    unit_vec(p, v);
    for (c = 0; c < s->n_chunks; c++) {
        if (chord2_to_box(v, s->chunk_box3 + 6 * c) > limit)
            continue;
        for (i = s->chunk_from[c]; i < s->chunk_to[c]; i++) {
            double d = s->dim == 0
                           ? geo_distance_m(p.x, p.y, s->xy[2 * i],
                                            s->xy[2 * i + 1])
                           : pt_seg_dist(p, pos_at(s, i), pos_at(s, i + 1));
            if (d < best) {
                best = d;
                limit = chord2_of(best);
            }
        }
    }
    return best;
}

/* best, lowered by the distances from the vertices of a to b. */
static double vertices_dist(const struct geo_shape *a,
                            const struct geo_shape *b, const double bbox3[6],
                            double best, double enough)
{
    size_t c, i, to;

    for (c = 0; c < a->n_chunks && best > enough; c++) {
        if (chord2_box_box(a->chunk_box3 + 6 * c, bbox3) > chord2_of(best))
            continue;
        /* A segment chunk's last segment ends at position chunk_to. */
        to = a->dim == 0 ? a->chunk_to[c] : a->chunk_to[c] + 1;
        for (i = a->chunk_from[c]; i < to && best > enough; i++)
            best = pt_shape_dist(pos_at(a, i), b, best);
    }
    return best;
}

/* Minimum great-circle distance between two shapes; 0 if they meet. The
 * minimum between non-meeting segments is reached at an endpoint of one.
 * May stop early with any value <= enough (pass -1 for the exact value). */
static double shape_dist(const struct geo_shape *a, const struct geo_shape *b,
                         double enough)
{
    double best = INFINITY, a3[6], b3[6];

    if (shapes_intersect(a, b))
        return 0.0;
    box3_of(a->bbox, a3);
    box3_of(b->bbox, b3);
    best = vertices_dist(a, b, b3, best, enough);
    /* Points of b to the segments of a (points of a to b is done). */
    if (a->dim > 0)
        best = vertices_dist(b, a, a3, best, enough);
    return best;
}

/* A lower bound of the distance between two shapes, from their bboxes. */
static double shape_dist_floor(const struct geo_shape *a,
                               const struct geo_shape *b)
{
    double a3[6], b3[6];

    box3_of(a->bbox, a3);
    box3_of(b->bbox, b3);
    return metres_of_chord2(chord2_box_box(a3, b3));
}

int geo_match(const struct geo_rel *rel, const struct geo_shape *query,
              const struct geo_shape *target)
{
    double d;

    if (rel == NULL || query == NULL || target == NULL)
        return 0;
    switch (rel->op) {
    case GEO_NEAR:
        if (!rel->has_max && !rel->has_min)
            return 0;
        if (rel->has_max && shape_dist_floor(target, query) > rel->max_distance)
            return 0;
        /* With only a maximum, any distance within it settles the answer. */
        d = shape_dist(target, query, rel->has_min ? -1.0 : rel->max_distance);
        if (rel->has_max && !(d <= rel->max_distance))
            return 0;
        if (rel->has_min && !(d >= rel->min_distance))
            return 0;
        return 1;
    case GEO_WITHIN:
        return shape_within(target, query);
    case GEO_CONTAINS:
        return shape_within(query, target);
    case GEO_INTERSECTS:
        return shapes_intersect(target, query);
    case GEO_DISJOINT:
        return !shapes_intersect(target, query);
    case GEO_EQUALS:
        return covered(target, query) && covered(query, target);
    case GEO_OVERLAPS:
        return shape_overlaps(target, query);
    }
    return 0;
}

int geo_search_bbox(const struct geo_rel *rel, const struct geo_shape *query,
                    double bbox[4])
{
    double dlat, dlon, poleward;

    if (rel == NULL || query == NULL)
        return 0;
    switch (rel->op) {
    case GEO_DISJOINT:
        return 0;
    case GEO_NEAR:
        if (!rel->has_max)
            return 0;
        dlat = rel->max_distance / GEO_EARTH_RADIUS_M / GEO_DEG;
        bbox[1] = query->bbox[1] - dlat;
        bbox[3] = query->bbox[3] + dlat;
        if (!(bbox[1] > -90.0 && bbox[3] < 90.0)) {
            /* Reaches a pole: every longitude is within reach. */
            bbox[0] = -180.0;
            bbox[2] = 180.0;
            bbox[1] = fmax(bbox[1], -90.0);
            bbox[3] = fmin(bbox[3], 90.0);
            return 1;
        }
        /* A degree of longitude is shortest at the most poleward latitude
         * of the grown box, so dividing by its cosine over-covers. */
        poleward = fmax(fabs(bbox[1]), fabs(bbox[3]));
        dlon = dlat / cos(poleward * GEO_DEG);
        bbox[0] = query->bbox[0] - dlon;
        bbox[2] = query->bbox[2] + dlon;
        if (!(bbox[0] >= -180.0 && bbox[2] <= 180.0)) {
            /* Crosses the antimeridian: no single lon range; take all. */
            bbox[0] = -180.0;
            bbox[2] = 180.0;
        }
        return 1;
    case GEO_WITHIN:
    case GEO_CONTAINS:
    case GEO_INTERSECTS:
    case GEO_EQUALS:
    case GEO_OVERLAPS:
        memcpy(bbox, query->bbox, 4 * sizeof(double));
        return 1;
    }
    return 0;
}
