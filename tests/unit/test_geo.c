/*
 * test_geo.c - unit tests for query/geo: GeoJSON validation, georel parsing,
 * the DE-9IM predicates on points, lines and polygons (with holes, touching
 * boundaries, crossing lines), near distances (checked against an
 * independent haversine) and the prefilter bbox.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "query/geo.h"

#define TEST_PI 3.14159265358979323846
#define TEST_R 6371008.8

/* ---- helpers -------------------------------------------------------- */

static struct geo_shape *shape(const char *json)
{
    cJSON *j = cJSON_Parse(json);
    struct geo_shape *s = NULL;
    struct err e = {0, ""};
    int rc;

    assert_non_null(j);
    rc = geo_parse(j, &s, &e);
    cJSON_Delete(j);
    if (rc != 0)
        fail_msg("geo_parse(%s) failed: %s", json, e.detail);
    assert_non_null(s);
    return s;
}

/* Parse must fail with ERR_BAD_DATA and a detail containing `detail`. */
static void reject(const char *json, const char *detail)
{
    cJSON *j = cJSON_Parse(json);
    struct geo_shape *s = (struct geo_shape *)&s; /* must be reset */
    struct err e = {0, ""};
    int rc;

    assert_non_null(j);
    rc = geo_parse(j, &s, &e);
    cJSON_Delete(j);
    assert_int_equal(rc, ERR_BAD_DATA);
    assert_null(s);
    assert_int_equal(e.code, ERR_BAD_DATA);
    if (strstr(e.detail, detail) == NULL)
        fail_msg("detail \"%s\" lacks \"%s\"", e.detail, detail);
}

/* geo_match(georel, query, target) on JSON geometries. */
static int rel(const char *georel, const char *query, const char *target)
{
    struct geo_rel r;
    struct err e = {0, ""};
    struct geo_shape *q, *t;
    int m;

    assert_int_equal(geo_rel_parse(georel, &r, &e), 0);
    q = shape(query);
    t = shape(target);
    m = geo_match(&r, q, t);
    geo_free(q);
    geo_free(t);
    return m;
}

/* Independent haversine (different formulation: atan2). */
static double ref_haversine(double lon1, double lat1, double lon2, double lat2)
{
    double d = TEST_PI / 180.0;
    double a = pow(sin((lat2 - lat1) * d / 2), 2) +
               cos(lat1 * d) * cos(lat2 * d) *
                   pow(sin((lon2 - lon1) * d / 2), 2);
    return TEST_R * 2 * atan2(sqrt(a), sqrt(1 - a));
}

#define SQ "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[10,0],[10,10],[0,10],[0,0]]]}"
#define HOLED                                                                  \
    "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[10,0],[10,10],[0,10],[0,0]]," \
    "[[4,4],[6,4],[6,6],[4,6],[4,4]]]}"
#define PT(x, y) "{\"type\":\"Point\",\"coordinates\":[" #x "," #y "]}"
#define LINE(c) "{\"type\":\"LineString\",\"coordinates\":" c "}"
#define POLY(c) "{\"type\":\"Polygon\",\"coordinates\":" c "}"

/* ---- validation ----------------------------------------------------- */

static void test_parse_accepts(void **state)
{
    struct geo_shape *s;
    double b[4];
    (void)state;

    s = shape(PT(4.89, 52.37));
    assert_int_equal(geo_shape_kind(s), GEO_POINT);
    geo_bbox(s, b);
    assert_true(b[0] == 4.89 && b[1] == 52.37 && b[2] == 4.89 && b[3] == 52.37);
    geo_free(s);

    s = shape("{\"type\":\"Point\",\"coordinates\":[-180,-90,12.5]}");
    assert_int_equal(geo_shape_kind(s), GEO_POINT);
    geo_free(s);

    s = shape("{\"type\":\"MultiPoint\",\"coordinates\":[[1,2],[-3,4]]}");
    assert_int_equal(geo_shape_kind(s), GEO_MULTIPOINT);
    geo_bbox(s, b);
    assert_true(b[0] == -3 && b[1] == 2 && b[2] == 1 && b[3] == 4);
    geo_free(s);

    s = shape(LINE("[[0,0],[1,1]]"));
    assert_int_equal(geo_shape_kind(s), GEO_LINESTRING);
    geo_free(s);

    s = shape("{\"type\":\"MultiLineString\",\"coordinates\":"
              "[[[0,0],[1,1]],[[5,5],[6,7],[8,8]]]}");
    assert_int_equal(geo_shape_kind(s), GEO_MULTILINESTRING);
    geo_bbox(s, b);
    assert_true(b[0] == 0 && b[1] == 0 && b[2] == 8 && b[3] == 8);
    geo_free(s);

    s = shape(HOLED);
    assert_int_equal(geo_shape_kind(s), GEO_POLYGON);
    geo_bbox(s, b);
    assert_true(b[0] == 0 && b[1] == 0 && b[2] == 10 && b[3] == 10);
    geo_free(s);

    /* clockwise shell (RFC 7946: parsers should not reject on winding),
     * altitude, extra members such as bbox */
    s = shape("{\"type\":\"Polygon\",\"bbox\":[0,0,1,1],\"coordinates\":"
              "[[[0,0,1],[0,1,1],[1,1,1],[1,0,1],[0,0,1]]]}");
    geo_free(s);

    s = shape("{\"type\":\"MultiPolygon\",\"coordinates\":["
              "[[[0,0],[1,0],[1,1],[0,0]]],"
              "[[[5,5],[6,5],[6,6],[5,5]]]]}");
    assert_int_equal(geo_shape_kind(s), GEO_MULTIPOLYGON);
    geo_bbox(s, b);
    assert_true(b[0] == 0 && b[1] == 0 && b[2] == 6 && b[3] == 6);
    geo_free(s);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    reject("[1,2]", "not a JSON object");
    reject("{\"coordinates\":[1,2]}", "no \"type\"");
    reject("{\"type\":7,\"coordinates\":[1,2]}", "no \"type\"");
    reject("{\"type\":\"GeometryCollection\",\"geometries\":[]}",
           "unsupported geometry type \"GeometryCollection\"");
    reject("{\"type\":\"point\",\"coordinates\":[1,2]}",
           "unsupported geometry type \"point\"");
    reject("{\"type\":\"Feature\",\"coordinates\":[1,2]}", "unsupported");
    reject("{\"type\":\"Point\"}", "Point has no \"coordinates\" array");
    reject("{\"type\":\"Point\",\"coordinates\":{\"x\":1}}",
           "no \"coordinates\" array");
    reject("{\"type\":\"Point\",\"coordinates\":\"1,2\"}",
           "no \"coordinates\" array");
    reject(PT(1, "2"), "Point position 0 has a non-number entry");
    reject("{\"type\":\"Point\",\"coordinates\":[true,2]}", "non-number");
    reject("{\"type\":\"Point\",\"coordinates\":[null,2]}", "non-number");
    reject("{\"type\":\"Point\",\"coordinates\":[[1,2]]}", "non-number");
    reject("{\"type\":\"Point\",\"coordinates\":[1]}",
           "Point position 0 has fewer than 2 numbers");
    reject("{\"type\":\"Point\",\"coordinates\":[]}", "fewer than 2");
    reject("{\"type\":\"Point\",\"coordinates\":[1,2,3,4]}",
           "more than 3 numbers");
    reject(PT(180.0001, 0), "longitude 180.0001 out of range [-180,180]");
    reject(PT(-181, 0), "longitude -181 out of range");
    reject(PT(0, -90.5), "latitude -90.5 out of range [-90,90]");
    reject(PT(0, 91), "latitude 91 out of range");
    reject("{\"type\":\"MultiPoint\",\"coordinates\":[]}",
           "MultiPoint has no positions");
    reject("{\"type\":\"MultiPoint\",\"coordinates\":[[1,2],[3]]}",
           "MultiPoint position 1 has fewer than 2 numbers");
    reject("{\"type\":\"MultiPoint\",\"coordinates\":[1,2]}",
           "MultiPoint position 0 is not an array");
    reject(LINE("[[0,0]]"), "LineString needs at least 2 positions, has 1");
    reject(LINE("[]"), "LineString needs at least 2 positions, has 0");
    reject(LINE("[[0,0],[1,95]]"), "LineString position 1: latitude 95");
    reject("{\"type\":\"MultiLineString\",\"coordinates\":[]}",
           "MultiLineString has no lines");
    reject("{\"type\":\"MultiLineString\",\"coordinates\":[[[0,0],[1,1]],[[2,2]]]}",
           "MultiLineString line 1 needs at least 2 positions");
    reject("{\"type\":\"MultiLineString\",\"coordinates\":[5]}",
           "MultiLineString line 0 is not an array of positions");
    reject("{\"type\":\"MultiLineString\",\"coordinates\":[[0,0]]}",
           "MultiLineString line 0 position 0 is not an array");
    reject(POLY("[]"), "Polygon has no rings");
    reject(POLY("[[0,0],[1,0],[1,1],[0,0]]"),
           "Polygon ring 0 position 0 is not an array");
    reject(POLY("[5]"), "Polygon ring 0 is not an array of positions");
    reject("{\"type\":\"MultiPolygon\",\"coordinates\":[5]}",
           "MultiPolygon polygon 0 is not an array of rings");
    reject(POLY("[[[0,0],[1,0],[0,0]]]"),
           "Polygon ring 0 needs at least 4 positions, has 3");
    reject(POLY("[[[0,0],[1,0],[1,1],[0,1]]]"), "Polygon ring 0 is not closed");
    reject(POLY("[[[0,0,0],[1,0,0],[1,1,0],[0,0,5]]]"),
           "Polygon ring 0 is not closed");
    reject(POLY("[[[0,0],[10,0],[10,10],[0,0]],[[1,1],[2,1],[2,2],[1,1.5]]]"),
           "Polygon ring 1 is not closed");
    reject("{\"type\":\"MultiPolygon\",\"coordinates\":[]}",
           "MultiPolygon has no polygons");
    reject("{\"type\":\"MultiPolygon\",\"coordinates\":[[[[0,0],[1,0],[1,1],[0,0]]],[]]}",
           "MultiPolygon polygon 1 has no rings");
    reject("{\"type\":\"MultiPolygon\",\"coordinates\":["
           "[[[0,0],[1,0],[1,1],[0,0]]],[[[5,5],[6,5],[6,6],[5,6]]]]}",
           "MultiPolygon polygon 1 ring 0 is not closed");
}

static void test_parse_nonfinite(void **state)
{
    double bad[] = {NAN, INFINITY, -INFINITY};
    size_t i;
    (void)state;

    for (i = 0; i < 3; i++) {
        cJSON *g = cJSON_CreateObject(), *c = cJSON_CreateArray();
        struct geo_shape *s = NULL;
        struct err e = {0, ""};
        cJSON_AddStringToObject(g, "type", "Point");
        cJSON_AddItemToArray(c, cJSON_CreateNumber(1));
        cJSON_AddItemToArray(c, cJSON_CreateNumber(bad[i]));
        cJSON_AddItemToObject(g, "coordinates", c);
        assert_int_equal(geo_parse(g, &s, &e), ERR_BAD_DATA);
        assert_null(s);
        assert_non_null(strstr(e.detail, "non-finite"));
        cJSON_Delete(g);
    }
    {
        struct geo_shape *s = NULL;
        struct err e = {0, ""};
        assert_int_equal(geo_parse(NULL, &s, &e), ERR_BAD_DATA);
        assert_null(s);
    }
    geo_free(NULL);
}

/* n positions as a MultiPoint / LineString. */
static char *many_positions(const char *type, size_t n)
{
    size_t cap = 64 + n * 8, len;
    char *buf = malloc(cap);
    size_t i;

    assert_non_null(buf);
    len = (size_t)snprintf(buf, cap, "{\"type\":\"%s\",\"coordinates\":[", type);
    for (i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s[%d,1]", i ? "," : "",
                                (int)(i % 3));
    snprintf(buf + len, cap - len, "]}");
    return buf;
}

static void test_parse_cap(void **state)
{
    char *txt;
    (void)state;

    txt = many_positions("MultiPoint", 100000);
    geo_free(shape(txt));
    free(txt);
    txt = many_positions("MultiPoint", 100001);
    reject(txt, "too many positions (at most 100000)");
    free(txt);
    txt = many_positions("LineString", 100001);
    reject(txt, "too many positions");
    free(txt);
}

static void test_parse_query(void **state)
{
    struct geo_shape *s = NULL;
    struct err e = {0, ""};
    double b[4];
    (void)state;

    assert_int_equal(geo_parse_query("Point", "[4.89,52.37]", &s, &e), 0);
    assert_int_equal(geo_shape_kind(s), GEO_POINT);
    geo_bbox(s, b);
    assert_true(b[0] == 4.89 && b[1] == 52.37);
    geo_free(s);

    assert_int_equal(geo_parse_query("Polygon", " [[[0,0],[1,0],[1,1],[0,0]]] ",
                                     &s, &e), 0);
    assert_int_equal(geo_shape_kind(s), GEO_POLYGON);
    geo_free(s);

    assert_int_equal(geo_parse_query("MultiLineString", "[[[0,0],[1,1]]]", &s, &e), 0);
    assert_int_equal(geo_shape_kind(s), GEO_MULTILINESTRING);
    geo_free(s);

#define QREJECT(g, c, d)                                                       \
    do {                                                                       \
        struct err e2 = {0, ""};                                               \
        s = (struct geo_shape *)&e2;                                           \
        assert_int_equal(geo_parse_query(g, c, &s, &e2), ERR_BAD_DATA);        \
        assert_null(s);                                                        \
        if (strstr(e2.detail, d) == NULL)                                      \
            fail_msg("detail \"%s\" lacks \"%s\"", e2.detail, d);              \
    } while (0)
    QREJECT("Point", "[4.89,52.37", "not valid JSON");
    QREJECT("Point", "[4.89,52.37] x", "not valid JSON");
    QREJECT("Point", "4.89,52.37", "not valid JSON");
    QREJECT("Point", "{\"a\":1}", "not a JSON array");
    QREJECT("Point", "", "no coordinates");
    QREJECT("Point", NULL, "no coordinates");
    QREJECT(NULL, "[1,2]", "no geometry");
    QREJECT("", "[1,2]", "no geometry");
    QREJECT("Circle", "[1,2]", "unsupported geometry type \"Circle\"");
    QREJECT("Point", "[200,0]", "longitude 200 out of range");
    QREJECT("Polygon", "[[[0,0],[1,0],[1,1],[0,1]]]", "Polygon ring 0 is not closed");
    QREJECT("LineString", "[[0,0]]", "at least 2 positions");
#undef QREJECT
}

/* ---- georel --------------------------------------------------------- */

static void test_rel_parse(void **state)
{
    struct geo_rel r;
    struct err e = {0, ""};
    static const char *const bad[] = {
        "", "near", "near;", "near;maxDistance==", "near;maxDistance==-1",
        "near;maxDistance==abc", "near;maxDistance==1;maxDistance==2",
        "near;maxDist==5", "near;maxDistance=5", "near;maxDistance==5;",
        "near;maxDistance== 5", "near;maxDistance==inf", "near;maxDistance==nan",
        "near;maxDistance==0x10", "near;maxDistance==1e999", "near;;maxDistance==1",
        "near;minDistance==-0.5", "within;maxDistance==1", "Within", "nearby",
        "coveredBy", "within;", "intersects ", "maxDistance==5",
    };
    size_t i;
    (void)state;

    assert_int_equal(geo_rel_parse("near;maxDistance==1000", &r, &e), 0);
    assert_int_equal(r.op, GEO_NEAR);
    assert_true(r.has_max && !r.has_min && r.max_distance == 1000.0);

    assert_int_equal(geo_rel_parse("near;minDistance==10", &r, &e), 0);
    assert_true(r.op == GEO_NEAR && !r.has_max && r.has_min &&
                r.min_distance == 10.0);

    assert_int_equal(geo_rel_parse("near;maxDistance==1000;minDistance==10.5", &r, &e), 0);
    assert_true(r.has_max && r.has_min && r.max_distance == 1000.0 &&
                r.min_distance == 10.5);

    assert_int_equal(geo_rel_parse("near;minDistance==0;maxDistance==1e3", &r, &e), 0);
    assert_true(r.has_max && r.has_min && r.max_distance == 1000.0 &&
                r.min_distance == 0.0);

    assert_int_equal(geo_rel_parse("within", &r, &e), 0);
    assert_int_equal(r.op, GEO_WITHIN);
    assert_int_equal(geo_rel_parse("contains", &r, &e), 0);
    assert_int_equal(r.op, GEO_CONTAINS);
    assert_int_equal(geo_rel_parse("intersects", &r, &e), 0);
    assert_int_equal(r.op, GEO_INTERSECTS);
    assert_int_equal(geo_rel_parse("disjoint", &r, &e), 0);
    assert_int_equal(r.op, GEO_DISJOINT);
    assert_int_equal(geo_rel_parse("equals", &r, &e), 0);
    assert_int_equal(r.op, GEO_EQUALS);
    assert_int_equal(geo_rel_parse("overlaps", &r, &e), 0);
    assert_int_equal(r.op, GEO_OVERLAPS);
    assert_false(r.has_max || r.has_min);
    assert_int_equal(e.code, 0);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct err e2 = {0, ""};
        if (geo_rel_parse(bad[i], &r, &e2) != ERR_BAD_DATA)
            fail_msg("georel \"%s\" was accepted", bad[i]);
        assert_int_equal(e2.code, ERR_BAD_DATA);
        assert_true(e2.detail[0] != '\0');
    }
    {
        struct err e2 = {0, ""};
        assert_int_equal(geo_rel_parse(NULL, &r, &e2), ERR_BAD_DATA);
        assert_int_equal(geo_rel_parse("nearby", &r, &e), ERR_BAD_DATA);
        assert_string_equal(e.detail, "unknown georel \"nearby\"");
    }
}

/* ---- predicates: points --------------------------------------------- */

static void test_point_polygon(void **state)
{
    (void)state;
    /* inside */
    assert_int_equal(rel("within", SQ, PT(5, 5)), 1);
    assert_int_equal(rel("intersects", SQ, PT(5, 5)), 1);
    assert_int_equal(rel("disjoint", SQ, PT(5, 5)), 0);
    assert_int_equal(rel("contains", PT(5, 5), SQ), 1);
    assert_int_equal(rel("contains", SQ, PT(5, 5)), 0);
    assert_int_equal(rel("overlaps", SQ, PT(5, 5)), 0);
    assert_int_equal(rel("equals", SQ, PT(5, 5)), 0);
    /* in the hole: outside the polygon */
    assert_int_equal(rel("within", HOLED, PT(5, 5)), 0);
    assert_int_equal(rel("intersects", HOLED, PT(5, 5)), 0);
    assert_int_equal(rel("disjoint", HOLED, PT(5, 5)), 1);
    assert_int_equal(rel("within", HOLED, PT(2, 2)), 1);
    /* on the hole's boundary / shell boundary / a vertex: touches only */
    assert_int_equal(rel("within", HOLED, PT(4, 5)), 0);
    assert_int_equal(rel("intersects", HOLED, PT(4, 5)), 1);
    assert_int_equal(rel("within", SQ, PT(0, 5)), 0);
    assert_int_equal(rel("intersects", SQ, PT(0, 5)), 1);
    assert_int_equal(rel("within", SQ, PT(10, 10)), 0);
    assert_int_equal(rel("intersects", SQ, PT(10, 10)), 1);
    /* outside */
    assert_int_equal(rel("within", SQ, PT(11, 5)), 0);
    assert_int_equal(rel("intersects", SQ, PT(11, 5)), 0);
    assert_int_equal(rel("disjoint", SQ, PT(11, 5)), 1);
    assert_int_equal(rel("disjoint", SQ, PT(-0.000001, 5)), 1);
    /* MultiPoint: all covered, one strictly inside */
    assert_int_equal(rel("within", SQ,
                         "{\"type\":\"MultiPoint\",\"coordinates\":[[0,0],[5,5]]}"), 1);
    assert_int_equal(rel("within", SQ,
                         "{\"type\":\"MultiPoint\",\"coordinates\":[[0,0],[10,0]]}"), 0);
    assert_int_equal(rel("within", SQ,
                         "{\"type\":\"MultiPoint\",\"coordinates\":[[5,5],[15,5]]}"), 0);
    assert_int_equal(rel("intersects", SQ,
                         "{\"type\":\"MultiPoint\",\"coordinates\":[[20,20],[5,5]]}"), 1);
    /* MultiPolygon: point in the second part */
    assert_int_equal(rel("within",
                         "{\"type\":\"MultiPolygon\",\"coordinates\":["
                         "[[[0,0],[1,0],[1,1],[0,1],[0,0]]],"
                         "[[[5,5],[7,5],[7,7],[5,7],[5,5]]]]}",
                         PT(6, 6)), 1);
    assert_int_equal(rel("within",
                         "{\"type\":\"MultiPolygon\",\"coordinates\":["
                         "[[[0,0],[1,0],[1,1],[0,1],[0,0]]],"
                         "[[[5,5],[7,5],[7,7],[5,7],[5,5]]]]}",
                         PT(3, 3)), 0);
}

static void test_point_point_line(void **state)
{
    (void)state;
    assert_int_equal(rel("equals", PT(1, 2), PT(1, 2)), 1);
    assert_int_equal(rel("equals", PT(1, 2), PT(1, 2.0000001)), 0);
    assert_int_equal(rel("within", PT(1, 2), PT(1, 2)), 1);
    assert_int_equal(rel("contains", PT(1, 2), PT(1, 2)), 1);
    assert_int_equal(rel("intersects", PT(1, 2), PT(1, 2)), 1);
    assert_int_equal(rel("disjoint", PT(1, 2), PT(2, 1)), 1);
    assert_int_equal(rel("overlaps", PT(1, 2), PT(1, 2)), 0);
    assert_int_equal(rel("equals",
                         "{\"type\":\"MultiPoint\",\"coordinates\":[[1,2],[3,4]]}",
                         "{\"type\":\"MultiPoint\",\"coordinates\":[[3,4],[1,2],[3,4]]}"), 1);
    assert_int_equal(rel("equals",
                         "{\"type\":\"MultiPoint\",\"coordinates\":[[1,2],[3,4]]}",
                         PT(1, 2)), 0);
    assert_int_equal(rel("within",
                         "{\"type\":\"MultiPoint\",\"coordinates\":[[1,2],[3,4]]}",
                         PT(1, 2)), 1);
    assert_int_equal(rel("overlaps",
                         "{\"type\":\"MultiPoint\",\"coordinates\":[[1,2],[3,4]]}",
                         "{\"type\":\"MultiPoint\",\"coordinates\":[[1,2],[5,6]]}"), 1);
    /* point on a line: interior vs endpoint (boundary) */
    assert_int_equal(rel("within", LINE("[[0,0],[2,0]]"), PT(1, 0)), 1);
    assert_int_equal(rel("within", LINE("[[0,0],[1,0],[2,0]]"), PT(1, 0)), 1);
    assert_int_equal(rel("within", LINE("[[0,0],[2,0]]"), PT(0, 0)), 0);
    assert_int_equal(rel("intersects", LINE("[[0,0],[2,0]]"), PT(0, 0)), 1);
    assert_int_equal(rel("intersects", LINE("[[0,0],[2,2]]"), PT(1, 1)), 1);
    assert_int_equal(rel("intersects", LINE("[[0,0],[2,2]]"), PT(1, 1.5)), 0);
    assert_int_equal(rel("contains", PT(1, 0), LINE("[[0,0],[2,0]]")), 1);
    /* a closed line has no boundary */
    assert_int_equal(rel("within", LINE("[[0,0],[1,0],[1,1],[0,0]]"), PT(0, 0)), 1);
    /* mod-2 rule: a point where two linestrings end is interior */
    assert_int_equal(rel("within",
                         "{\"type\":\"MultiLineString\",\"coordinates\":"
                         "[[[0,0],[1,0]],[[1,0],[2,0]]]}",
                         PT(1, 0)), 1);
    /* a line is never within a point */
    assert_int_equal(rel("within", PT(0, 0), LINE("[[0,0],[0,0]]")), 0);
}

/* ---- predicates: lines ---------------------------------------------- */

static void test_line_line(void **state)
{
    (void)state;
    /* crossing lines: intersect in a point, do not overlap */
    assert_int_equal(rel("intersects", LINE("[[0,0],[2,2]]"), LINE("[[0,2],[2,0]]")), 1);
    assert_int_equal(rel("disjoint", LINE("[[0,0],[2,2]]"), LINE("[[0,2],[2,0]]")), 0);
    assert_int_equal(rel("overlaps", LINE("[[0,0],[2,2]]"), LINE("[[0,2],[2,0]]")), 0);
    assert_int_equal(rel("within", LINE("[[0,0],[2,2]]"), LINE("[[0,2],[2,0]]")), 0);
    /* parallel, disjoint */
    assert_int_equal(rel("intersects", LINE("[[0,0],[2,0]]"), LINE("[[0,1],[2,1]]")), 0);
    assert_int_equal(rel("disjoint", LINE("[[0,0],[2,0]]"), LINE("[[0,1],[2,1]]")), 1);
    /* collinear but apart */
    assert_int_equal(rel("intersects", LINE("[[0,0],[1,0]]"), LINE("[[2,0],[3,0]]")), 0);
    /* touching at an endpoint */
    assert_int_equal(rel("intersects", LINE("[[0,0],[1,0]]"), LINE("[[1,0],[1,1]]")), 1);
    assert_int_equal(rel("overlaps", LINE("[[0,0],[1,0]]"), LINE("[[1,0],[1,1]]")), 0);
    /* partial collinear overlap */
    assert_int_equal(rel("overlaps", LINE("[[0,0],[2,0]]"), LINE("[[1,0],[3,0]]")), 1);
    assert_int_equal(rel("within", LINE("[[0,0],[2,0]]"), LINE("[[1,0],[3,0]]")), 0);
    /* sub-segment: within, not overlaps */
    assert_int_equal(rel("within", LINE("[[0,0],[3,0]]"), LINE("[[1,0],[2,0]]")), 1);
    assert_int_equal(rel("contains", LINE("[[1,0],[2,0]]"), LINE("[[0,0],[3,0]]")), 1);
    assert_int_equal(rel("overlaps", LINE("[[0,0],[3,0]]"), LINE("[[1,0],[2,0]]")), 0);
    /* covered by the union of several query segments */
    assert_int_equal(rel("within", LINE("[[0,0],[1,0],[1,0],[3,0]]"),
                         LINE("[[0.5,0],[2.5,0]]")), 1);
    assert_int_equal(rel("within",
                         "{\"type\":\"MultiLineString\",\"coordinates\":"
                         "[[[0,0],[1,0]],[[1.5,0],[3,0]]]}",
                         LINE("[[0.5,0],[2.5,0]]")), 0);
    /* equals: reversed and with an extra vertex */
    assert_int_equal(rel("equals", LINE("[[0,0],[2,0]]"), LINE("[[2,0],[1,0],[0,0]]")), 1);
    assert_int_equal(rel("equals", LINE("[[0,0],[2,0]]"), LINE("[[0,0],[1,0]]")), 0);
    assert_int_equal(rel("equals", LINE("[[0,0],[2,0],[2,2]]"),
                         LINE("[[2,2],[2,0],[0,0]]")), 1);
}

static void test_line_polygon(void **state)
{
    const char *u = POLY("[[[0,0],[3,0],[3,3],[2,3],[2,1],[1,1],[1,3],[0,3],[0,0]]]");
    (void)state;
    /* inside */
    assert_int_equal(rel("within", SQ, LINE("[[1,1],[9,9]]")), 1);
    assert_int_equal(rel("contains", LINE("[[1,1],[9,9]]"), SQ), 1);
    /* from a corner into the interior: still within */
    assert_int_equal(rel("within", SQ, LINE("[[0,0],[5,5]]")), 1);
    /* along the boundary only: not within, but intersects */
    assert_int_equal(rel("within", SQ, LINE("[[0,0],[10,0]]")), 0);
    assert_int_equal(rel("intersects", SQ, LINE("[[0,0],[10,0]]")), 1);
    /* crossing the polygon */
    assert_int_equal(rel("within", SQ, LINE("[[-5,5],[15,5]]")), 0);
    assert_int_equal(rel("intersects", SQ, LINE("[[-5,5],[15,5]]")), 1);
    assert_int_equal(rel("overlaps", SQ, LINE("[[-5,5],[15,5]]")), 0);
    /* through the hole */
    assert_int_equal(rel("within", HOLED, LINE("[[1,1],[9,9]]")), 0);
    assert_int_equal(rel("intersects", HOLED, LINE("[[1,1],[9,9]]")), 1);
    /* wholly inside the hole */
    assert_int_equal(rel("intersects", HOLED, LINE("[[4.5,4.5],[5.5,5.5]]")), 0);
    assert_int_equal(rel("disjoint", HOLED, LINE("[[4.5,4.5],[5.5,5.5]]")), 1);
    /* along the hole's edge, inside the shell */
    assert_int_equal(rel("within", HOLED, LINE("[[2,4],[8,4]]")), 1);
    /* outside */
    assert_int_equal(rel("intersects", SQ, LINE("[[11,0],[11,10]]")), 0);
    /* U shape: both ends inside, but the line leaves through the notch */
    assert_int_equal(rel("within", u, LINE("[[0.5,2],[2.5,2]]")), 0);
    assert_int_equal(rel("intersects", u, LINE("[[0.5,2],[2.5,2]]")), 1);
    assert_int_equal(rel("within", u, LINE("[[0.5,0.5],[2.5,0.5]]")), 1);
    /* passing exactly through the notch's corner vertices */
    assert_int_equal(rel("within", u, LINE("[[0.5,1],[2.5,1]]")), 1);
    /* a line cannot contain a polygon */
    assert_int_equal(rel("within", LINE("[[0,0],[10,10]]"), SQ), 0);
}

/* ---- predicates: polygons ------------------------------------------- */

static void test_polygon_polygon(void **state)
{
    const char *a = POLY("[[[0,0],[2,0],[2,2],[0,2],[0,0]]]");
    const char *b = POLY("[[[1,1],[3,1],[3,3],[1,3],[1,1]]]");
    const char *edge = POLY("[[[2,0],[4,0],[4,2],[2,2],[2,0]]]");
    const char *corner = POLY("[[[2,2],[3,2],[3,3],[2,3],[2,2]]]");
    const char *small = POLY("[[[1,1],[2,1],[2,2],[1,2],[1,1]]]");
    const char *hole = POLY("[[[4,4],[6,4],[6,6],[4,6],[4,4]]]");
    const char *in_hole = POLY("[[[4.5,4.5],[5.5,4.5],[5.5,5.5],[4.5,5.5],[4.5,4.5]]]");
    const char *quarter = POLY("[[[0,0],[5,0],[5,5],[0,5],[0,0]]]");
    (void)state;

    /* proper overlap */
    assert_int_equal(rel("overlaps", a, b), 1);
    assert_int_equal(rel("intersects", a, b), 1);
    assert_int_equal(rel("within", a, b), 0);
    assert_int_equal(rel("contains", a, b), 0);
    assert_int_equal(rel("equals", a, b), 0);
    /* sharing an edge / a corner: touch */
    assert_int_equal(rel("intersects", a, edge), 1);
    assert_int_equal(rel("overlaps", a, edge), 0);
    assert_int_equal(rel("within", a, edge), 0);
    assert_int_equal(rel("disjoint", a, edge), 0);
    assert_int_equal(rel("intersects", a, corner), 1);
    assert_int_equal(rel("overlaps", a, corner), 0);
    /* apart */
    assert_int_equal(rel("disjoint", a, POLY("[[[5,5],[6,5],[6,6],[5,5]]]")), 1);
    /* strictly inside, no boundary contact: containment without crossings */
    assert_int_equal(rel("within", SQ, small), 1);
    assert_int_equal(rel("intersects", SQ, small), 1);
    assert_int_equal(rel("contains", small, SQ), 1);
    assert_int_equal(rel("intersects", small, SQ), 1);
    assert_int_equal(rel("overlaps", SQ, small), 0);
    /* inside, sharing two edges */
    assert_int_equal(rel("within", SQ, quarter), 1);
    /* holes */
    assert_int_equal(rel("within", HOLED, small), 1);
    assert_int_equal(rel("within", HOLED, hole), 0);     /* the hole itself */
    assert_int_equal(rel("intersects", HOLED, hole), 1); /* shares the ring */
    assert_int_equal(rel("overlaps", HOLED, hole), 0);
    assert_int_equal(rel("disjoint", HOLED, in_hole), 1);
    assert_int_equal(rel("within", SQ, HOLED), 1);  /* holed within its shell */
    assert_int_equal(rel("within", HOLED, SQ), 0);  /* shell covers the hole */
    assert_int_equal(rel("contains", SQ, HOLED), 0);
    assert_int_equal(rel("equals", SQ, HOLED), 0);
    assert_int_equal(rel("overlaps", HOLED, quarter), 1); /* quarter covers part of the hole */
    assert_int_equal(rel("within", HOLED, quarter), 0); /* quarter covers part of the hole */
    assert_int_equal(rel("overlaps", HOLED, POLY("[[[5,5],[15,5],[15,15],[5,15],[5,5]]]")), 1);
    /* equals: other start vertex, reversed orientation, extra vertex */
    assert_int_equal(rel("equals", SQ, POLY("[[[10,10],[10,0],[0,0],[0,10],[10,10]]]")), 1);
    assert_int_equal(rel("equals", SQ,
                         POLY("[[[0,0],[5,0],[10,0],[10,10],[0,10],[0,0]]]")), 1);
    assert_int_equal(rel("equals", HOLED, HOLED), 1);
    assert_int_equal(rel("within", HOLED, HOLED), 1);
    assert_int_equal(rel("equals", SQ, quarter), 0);
    /* MultiPolygon target within a polygon only if every part is */
    assert_int_equal(rel("within", SQ,
                         "{\"type\":\"MultiPolygon\",\"coordinates\":["
                         "[[[1,1],[2,1],[2,2],[1,1]]],[[[7,7],[8,7],[8,8],[7,7]]]]}"), 1);
    assert_int_equal(rel("within", SQ,
                         "{\"type\":\"MultiPolygon\",\"coordinates\":["
                         "[[[1,1],[2,1],[2,2],[1,1]]],[[[17,7],[18,7],[18,8],[17,7]]]]}"), 0);
}

/* ---- near and distances --------------------------------------------- */

static void test_distance(void **state)
{
    double d, ref;
    (void)state;

    d = geo_distance_m(4.8931, 52.3731, 4.4777, 51.9244);
    ref = ref_haversine(4.8931, 52.3731, 4.4777, 51.9244);
    assert_true(fabs(d - ref) < 1e-6);
    assert_true(fabs(d - 57381.51) < 0.01);
    /* one degree along a meridian: R * pi / 180 */
    assert_true(fabs(geo_distance_m(0, 0, 0, 1) - TEST_R * TEST_PI / 180) < 1e-6);
    assert_true(geo_distance_m(5, 5, 5, 5) == 0.0);
    /* across the antimeridian: 0.2 degree on the equator */
    assert_true(fabs(geo_distance_m(179.9, 0, -179.9, 0) - 22239.016) < 0.001);
    /* antipodes: half the circumference */
    assert_true(fabs(geo_distance_m(0, 0, 180, 0) - TEST_R * TEST_PI) < 1e-6);
}

static void test_near(void **state)
{
    const char *dam = PT(4.8931, 52.3731), *rdam = PT(4.4777, 51.9244);
    (void)state;

    assert_int_equal(rel("near;maxDistance==57382", dam, rdam), 1);
    assert_int_equal(rel("near;maxDistance==57381", dam, rdam), 0);
    assert_int_equal(rel("near;minDistance==57381", dam, rdam), 1);
    assert_int_equal(rel("near;minDistance==57382", dam, rdam), 0);
    assert_int_equal(rel("near;maxDistance==60000;minDistance==50000", dam, rdam), 1);
    assert_int_equal(rel("near;maxDistance==60000;minDistance==58000", dam, rdam), 0);
    assert_int_equal(rel("near;maxDistance==0", dam, dam), 1);
    /* point inside a polygon: distance 0 */
    assert_int_equal(rel("near;maxDistance==0", SQ, PT(5, 5)), 1);
    assert_int_equal(rel("near;minDistance==1", SQ, PT(5, 5)), 0);
    /* point above the square's top edge: exactly one degree of latitude */
    assert_int_equal(rel("near;maxDistance==111196", SQ, PT(5, 11)), 1);
    assert_int_equal(rel("near;maxDistance==111194", SQ, PT(5, 11)), 0);
    /* point to the middle of a segment (closest point is not a vertex) */
    assert_int_equal(rel("near;maxDistance==111196", LINE("[[-1,0],[1,0]]"), PT(0, 1)), 1);
    assert_int_equal(rel("near;maxDistance==111194", LINE("[[-1,0],[1,0]]"), PT(0, 1)), 0);
    /* line to line, parallel one degree apart */
    assert_int_equal(rel("near;maxDistance==111196", LINE("[[0,0],[1,0]]"),
                         LINE("[[0,1],[1,1]]")), 1);
    assert_int_equal(rel("near;maxDistance==111194", LINE("[[0,0],[1,0]]"),
                         LINE("[[0,1],[1,1]]")), 0);
    /* crossing lines: distance 0 */
    assert_int_equal(rel("near;maxDistance==0", LINE("[[0,0],[2,2]]"),
                         LINE("[[0,2],[2,0]]")), 1);
    /* across the antimeridian */
    assert_int_equal(rel("near;maxDistance==22240", PT(179.9, 0), PT(-179.9, 0)), 1);
    assert_int_equal(rel("near;maxDistance==22238", PT(179.9, 0), PT(-179.9, 0)), 0);
    /* MultiPoint: nearest member counts */
    assert_int_equal(rel("near;maxDistance==1000", dam,
                         "{\"type\":\"MultiPoint\",\"coordinates\":"
                         "[[4.4777,51.9244],[4.8931,52.3741]]}"), 1);
}

/* Chunk pruning must never lose the true minimum: random MultiPoints and
 * LineStrings spread over the globe (poles, antimeridian) against probe
 * points, compared with a brute-force minimum over geo_distance_m. */
static unsigned long lcg_state = 12345;

static double lcg_unit(void)
{
    lcg_state = lcg_state * 6364136223846793005UL + 1442695040888963407UL;
    return (double)((lcg_state >> 11) & 0xFFFFFFFFFUL) / (double)0xFFFFFFFFFUL;
}

static void test_near_pruning(void **state)
{
    static const double probes[][2] = {
        {0, 0}, {179.9, 0}, {-179.95, 45}, {12.34, 89.9}, {-70, -89.99}, {4.89, 52.37},
    };
    enum { N = 400 };
    char *txt = malloc(N * 64 + 64), rel_txt[96];
    double pts[N][2];
    size_t len, i, k;
    int round;
    (void)state;

    assert_non_null(txt);
    for (round = 0; round < 3; round++) {
        struct geo_shape *target;
        len = (size_t)sprintf(txt, "{\"type\":\"MultiPoint\",\"coordinates\":[");
        for (i = 0; i < N; i++) {
            pts[i][0] = -180.0 + 360.0 * lcg_unit();
            pts[i][1] = round == 2 ? 80.0 + 10.0 * lcg_unit() /* crowd the pole */
                                   : -90.0 + 180.0 * lcg_unit();
            len += (size_t)sprintf(txt + len, "%s[%.17g,%.17g]", i ? "," : "",
                                   pts[i][0], pts[i][1]);
        }
        sprintf(txt + len, "]}");
        target = shape(txt);
        for (k = 0; k < sizeof(probes) / sizeof(probes[0]); k++) {
            struct geo_shape *q;
            struct geo_rel r;
            struct err e = {0, ""};
            double best = INFINITY;
            char coords[64];
            for (i = 0; i < N; i++) {
                best = fmin(best, ref_haversine(probes[k][0], probes[k][1],
                                                pts[i][0], pts[i][1]));
            }
            snprintf(coords, sizeof(coords), "[%.17g,%.17g]", probes[k][0], probes[k][1]);
            assert_int_equal(geo_parse_query("Point", coords, &q, &e), 0);
            snprintf(rel_txt, sizeof(rel_txt), "near;minDistance==%.6f", best - 0.01);
            assert_int_equal(geo_rel_parse(rel_txt, &r, &e), 0);
            assert_int_equal(geo_match(&r, q, target), 1);
            snprintf(rel_txt, sizeof(rel_txt), "near;minDistance==%.6f", best + 0.01);
            assert_int_equal(geo_rel_parse(rel_txt, &r, &e), 0);
            assert_int_equal(geo_match(&r, q, target), 0);
            snprintf(rel_txt, sizeof(rel_txt), "near;maxDistance==%.6f", best + 0.01);
            assert_int_equal(geo_rel_parse(rel_txt, &r, &e), 0);
            assert_int_equal(geo_match(&r, q, target), 1);
            snprintf(rel_txt, sizeof(rel_txt), "near;maxDistance==%.6f", best - 0.01);
            assert_int_equal(geo_rel_parse(rel_txt, &r, &e), 0);
            assert_int_equal(geo_match(&r, q, target), 0);
            geo_free(q);
        }
        geo_free(target);
    }
    free(txt);

    /* a long line along latitude 10 and a point one degree north of it,
     * between vertices: the closest point is mid-segment */
    txt = malloc(300 * 32 + 64);
    assert_non_null(txt);
    len = (size_t)sprintf(txt, "{\"type\":\"LineString\",\"coordinates\":[");
    for (i = 0; i < 200; i++)
        len += (size_t)sprintf(txt + len, "%s[%g,10]", i ? "," : "", (double)i * 0.1);
    sprintf(txt + len, "]}");
    assert_int_equal(rel("near;minDistance==111195.07", PT(12.34, 11), txt), 1);
    assert_int_equal(rel("near;minDistance==111195.09", PT(12.34, 11), txt), 0);
    assert_int_equal(rel("near;maxDistance==111195.09", PT(12.34, 11), txt), 1);
    assert_int_equal(rel("near;maxDistance==111195.07", PT(12.34, 11), txt), 0);
    free(txt);
}

/* ---- prefilter bbox ------------------------------------------------- */

static void test_search_bbox(void **state)
{
    struct geo_rel r;
    struct err e = {0, ""};
    struct geo_shape *q;
    double b[4], dlat, dlon, deg = TEST_PI / 180.0;
    (void)state;

    /* one degree of latitude at the equator */
    q = shape(PT(0, 0));
    r.op = GEO_NEAR;
    r.has_max = 1;
    r.has_min = 0;
    r.max_distance = TEST_R * deg;
    r.min_distance = 0;
    assert_int_equal(geo_search_bbox(&r, q, b), 1);
    dlon = 1.0 / cos(1.0 * deg);
    assert_true(fabs(b[1] + 1.0) < 1e-12 && fabs(b[3] - 1.0) < 1e-12);
    assert_true(fabs(b[0] + dlon) < 1e-12 && fabs(b[2] - dlon) < 1e-12);
    geo_free(q);

    /* Amsterdam, 1 km: longitude grown by the cos of the poleward edge */
    q = shape(PT(4.8931, 52.3731));
    assert_int_equal(geo_rel_parse("near;maxDistance==1000", &r, &e), 0);
    assert_int_equal(geo_search_bbox(&r, q, b), 1);
    dlat = 1000.0 / TEST_R / deg;
    dlon = dlat / cos((52.3731 + dlat) * deg);
    assert_true(fabs(b[1] - (52.3731 - dlat)) < 1e-12);
    assert_true(fabs(b[3] - (52.3731 + dlat)) < 1e-12);
    assert_true(fabs(b[0] - (4.8931 - dlon)) < 1e-12);
    assert_true(fabs(b[2] - (4.8931 + dlon)) < 1e-12);
    assert_true(dlat > 0.00899 && dlat < 0.00900);
    /* a point 1 km due east/north really lies in the box */
    assert_true(4.8931 + 1000.0 / (TEST_R * deg * cos(52.3731 * deg)) <= b[2]);
    geo_free(q);

    /* reaches the north pole: all longitudes, latitude clamped */
    q = shape(PT(10, 89.5));
    assert_int_equal(geo_rel_parse("near;maxDistance==100000", &r, &e), 0);
    assert_int_equal(geo_search_bbox(&r, q, b), 1);
    dlat = 100000.0 / TEST_R / deg;
    assert_true(b[0] == -180.0 && b[2] == 180.0 && b[3] == 90.0);
    assert_true(fabs(b[1] - (89.5 - dlat)) < 1e-12);
    geo_free(q);

    /* reaches the south pole */
    q = shape(PT(10, -89.99));
    assert_int_equal(geo_rel_parse("near;maxDistance==5000", &r, &e), 0);
    assert_int_equal(geo_search_bbox(&r, q, b), 1);
    assert_true(b[0] == -180.0 && b[2] == 180.0 && b[1] == -90.0);
    geo_free(q);

    /* crosses the antimeridian: all longitudes, latitude grown */
    q = shape(PT(179.99, 0));
    assert_int_equal(geo_rel_parse("near;maxDistance==10000", &r, &e), 0);
    assert_int_equal(geo_search_bbox(&r, q, b), 1);
    dlat = 10000.0 / TEST_R / deg;
    assert_true(b[0] == -180.0 && b[2] == 180.0);
    assert_true(fabs(b[1] + dlat) < 1e-12 && fabs(b[3] - dlat) < 1e-12);
    geo_free(q);

    /* polygon query: grown box; within etc.: the query box */
    q = shape(SQ);
    assert_int_equal(geo_rel_parse("near;maxDistance==1000;minDistance==5", &r, &e), 0);
    assert_int_equal(geo_search_bbox(&r, q, b), 1);
    dlat = 1000.0 / TEST_R / deg;
    assert_true(fabs(b[3] - (10 + dlat)) < 1e-12);
    assert_true(fabs(b[2] - (10 + dlat / cos((10 + dlat) * deg))) < 1e-12);
    {
        static const char *const same[] = {"within", "contains", "intersects",
                                           "equals", "overlaps"};
        size_t i;
        for (i = 0; i < 5; i++) {
            assert_int_equal(geo_rel_parse(same[i], &r, &e), 0);
            b[0] = b[1] = b[2] = b[3] = -1;
            assert_int_equal(geo_search_bbox(&r, q, b), 1);
            assert_true(b[0] == 0 && b[1] == 0 && b[2] == 10 && b[3] == 10);
        }
    }
    assert_int_equal(geo_rel_parse("disjoint", &r, &e), 0);
    assert_int_equal(geo_search_bbox(&r, q, b), 0);
    assert_int_equal(geo_rel_parse("near;minDistance==5", &r, &e), 0);
    assert_int_equal(geo_search_bbox(&r, q, b), 0);
    geo_free(q);
}

/* ---- algebraic properties over a zoo of shapes, incl. degenerate ones -- */

static void test_properties(void **state)
{
    static const char *const zoo[] = {
        SQ, HOLED, PT(5, 5), PT(0, 0), PT(4, 5), PT(20, 20),
        "{\"type\":\"MultiPoint\",\"coordinates\":[[5,5],[0,0],[30,30]]}",
        LINE("[[0,0],[10,10]]"), LINE("[[-5,5],[15,5]]"), LINE("[[0,0],[10,0]]"),
        LINE("[[4,4],[6,4],[6,6]]"), LINE("[[1,1],[1,1]]"),
        LINE("[[0,0],[1,0],[1,1],[0,0]]"),
        "{\"type\":\"MultiLineString\",\"coordinates\":[[[0,0],[1,0]],[[1,0],[2,0]]]}",
        POLY("[[[4,4],[6,4],[6,6],[4,6],[4,4]]]"),
        POLY("[[[0,0],[5,0],[5,5],[0,5],[0,0]]]"),
        POLY("[[[5,5],[15,5],[15,15],[5,15],[5,5]]]"),
        POLY("[[[10,10],[10,0],[0,0],[0,10],[10,10]]]"),
        POLY("[[[0,0],[3,0],[3,3],[2,3],[2,1],[1,1],[1,3],[0,3],[0,0]]]"),
        POLY("[[[1,1],[1,1],[1,1],[1,1]]]"),          /* degenerate: a point */
        POLY("[[[0,0],[2,0],[4,0],[0,0]]]"),          /* degenerate: flat */
        ("{\"type\":\"MultiPolygon\",\"coordinates\":[[[[0,0],[1,0],[1,1],[0,0]]],"
         "[[[5,5],[7,5],[7,7],[5,7],[5,5]]]]}"),
    };
    size_t n = sizeof(zoo) / sizeof(zoo[0]), i, j;
    struct geo_shape *s[32];
    struct geo_rel r[8];
    struct err e = {0, ""};
    static const char *const ops[8] = {"near;maxDistance==0", "within", "contains",
                                       "intersects", "disjoint", "equals",
                                       "overlaps", "near;minDistance==1"};
    (void)state;

    assert_true(n <= 32);
    for (i = 0; i < 8; i++)
        assert_int_equal(geo_rel_parse(ops[i], &r[i], &e), 0);
    for (i = 0; i < n; i++)
        s[i] = shape(zoo[i]);
    for (i = 0; i < n; i++) {
        for (j = 0; j < n; j++) {
            int m[8], mt[8], k;
            for (k = 0; k < 8; k++) {
                m[k] = geo_match(&r[k], s[j], s[i]);  /* s[i] rel s[j] */
                mt[k] = geo_match(&r[k], s[i], s[j]); /* s[j] rel s[i] */
                assert_true(m[k] == 0 || m[k] == 1);
            }
            if (m[3] == m[4] || m[3] != mt[3] || m[5] != mt[5] ||
                m[6] != mt[6] || m[1] != mt[2] || (m[1] && !m[3]) ||
                (m[1] && m[6]) || (m[5] && !(m[1] || i == 19 || j == 19 ||
                                             i == 20 || j == 20)) ||
                (m[1] && mt[1] && !m[5]) || m[0] != m[3] || m[7] == m[0])
                fail_msg("inconsistent predicates for zoo[%zu] vs zoo[%zu]: "
                         "near0=%d within=%d contains=%d intersects=%d "
                         "disjoint=%d equals=%d overlaps=%d near1=%d",
                         i, j, m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]);
        }
        /* every non-degenerate shape equals and is within itself */
        assert_int_equal(geo_match(&r[5], s[i], s[i]), 1);
        if (i != 19 && i != 20)
            assert_int_equal(geo_match(&r[1], s[i], s[i]), 1);
    }
    for (i = 0; i < n; i++)
        geo_free(s[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_nonfinite),
        cmocka_unit_test(test_parse_cap),
        cmocka_unit_test(test_parse_query),
        cmocka_unit_test(test_rel_parse),
        cmocka_unit_test(test_point_polygon),
        cmocka_unit_test(test_point_point_line),
        cmocka_unit_test(test_line_line),
        cmocka_unit_test(test_line_polygon),
        cmocka_unit_test(test_polygon_polygon),
        cmocka_unit_test(test_distance),
        cmocka_unit_test(test_near),
        cmocka_unit_test(test_near_pruning),
        cmocka_unit_test(test_search_bbox),
        cmocka_unit_test(test_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
