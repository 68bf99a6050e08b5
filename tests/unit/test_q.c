/*
 * test_q.c - unit tests of the NGSI-LD q language (src/query/q_*.c):
 * parser accept/reject with exact error details, every operator, ranges,
 * lists, dates and times, sub-attribute and [key] paths, multiple instances,
 * relationships, language maps, precedence, q_expand, q_foreach_attr and
 * q_index_hint. Documents are DESIGN.md entity documents.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "query/q.h"

static const char *const DOC_TEXT =
    "{\"id\": \"urn:ngsi-ld:Streetlight:1\","
    " \"type\": [\"https://ex.org/Streetlight\"],"
    " \"createdAt\": \"2026-06-12T08:15:00.000Z\","
    " \"modifiedAt\": \"2026-06-12T09:00:00.000Z\","
    " \"attrs\": {"
    "  \"temperature\": ["
    "   {\"type\": \"Property\", \"value\": 21.5, \"observedAt\": \"2026-06-12T08:15:00.000Z\","
    "    \"unitCode\": \"CEL\","
    "    \"sub\": {\"accuracy\": {\"type\": \"Property\", \"value\": 0.5},"
    "            \"sensor\": {\"type\": \"Relationship\", \"object\": \"urn:ngsi-ld:Device:7\"}}},"
    "   {\"type\": \"Property\", \"value\": 30, \"datasetId\": \"urn:ngsi-ld:Dataset:backup\"}],"
    "  \"status\": [{\"type\": \"Property\", \"value\": \"ok\"}],"
    "  \"count\": [{\"type\": \"Property\", \"value\": 7}],"
    "  \"enabled\": [{\"type\": \"Property\", \"value\": true}],"
    "  \"tags\": [{\"type\": \"Property\", \"value\": [\"red\", \"blue\", \"green\"]}],"
    "  \"levels\": [{\"type\": \"Property\", \"value\": [1, 5, 9]}],"
    "  \"address\": [{\"type\": \"Property\", \"value\": {\"city\": \"Berlin\","
    "     \"street\": \"Ulrich Strasse\", \"geo\": {\"zip\": 10115}, \"lines\": [\"a\", \"b\"]}}],"
    "  \"refDevice\": [{\"type\": \"Relationship\", \"object\": \"urn:ngsi-ld:Device:1\"}],"
    "  \"neighbours\": [{\"type\": \"Relationship\","
    "     \"object\": [\"urn:ngsi-ld:Streetlight:2\", \"urn:ngsi-ld:Streetlight:3\"]}],"
    "  \"route\": [{\"type\": \"ListRelationship\","
    "     \"objectList\": [{\"object\": \"urn:ngsi-ld:Stop:1\"},"
    "                    {\"object\": \"urn:ngsi-ld:Stop:2\"}]}],"
    "  \"name\": [{\"type\": \"LanguageProperty\", \"languageMap\": {\"en\": \"red lamp\","
    "     \"fr\": \"lampe rouge\", \"de\": [\"rote\", \"Lampe\"]}}],"
    "  \"category\": [{\"type\": \"VocabProperty\", \"vocab\": \"https://ex.org/Lamp\"}],"
    "  \"readings\": [{\"type\": \"ListProperty\", \"valueList\": [3, 4, 5]}],"
    "  \"config\": [{\"type\": \"JsonProperty\", \"json\": {\"mode\": \"auto\", \"level\": 3}}],"
    "  \"installedAt\": [{\"type\": \"Property\", \"value\": \"2020-03-01T10:00:00Z\"}],"
    "  \"switchOn\": [{\"type\": \"Property\", \"value\": \"18:30:00\"}],"
    "  \"https://smartdatamodels.org/dataModel.Streetlighting/powerState\": ["
    "     {\"type\": \"Property\","
    "     \"value\": \"on\", \"sub\": {\"https://uri.etsi.org/ngsi-ld/default-context/reason\":"
    "     {\"type\": \"Property\", \"value\": \"schedule\"}}}],"
    "  \"ex:short\": [{\"type\": \"Property\", \"value\": 1}],"
    "  \"location\": [{\"type\": \"GeoProperty\","
    "     \"value\": {\"type\": \"Point\", \"coordinates\": [4.87, 52.36]}}]"
    " }}";

static cJSON *doc;

static int setup(void **state)
{
    (void)state;
    doc = cJSON_Parse(DOC_TEXT);
    return doc == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    cJSON_Delete(doc);
    return 0;
}

/* Parse (must succeed), match against d, free. */
static int match_doc(const char *text, const cJSON *d)
{
    struct q_expr *q = NULL;
    struct err e = {0};
    int rc = q_parse(text, &q, &e), r;

    if (rc != 0)
        fail_msg("q_parse(%s) failed: %d %s", text, rc, e.detail);
    r = q_match(q, d);
    q_free(q);
    return r;
}

#define M(text, expect)                                                                     \
    do {                                                                                    \
        int got_ = match_doc((text), doc);                                                  \
        if (got_ != (expect))                                                               \
            fail_msg("%s: expected %d, got %d", (text), (expect), got_);                    \
    } while (0)

/* Parse must fail with ERR_INVALID_REQUEST and exactly this detail. */
static void expect_error(const char *text, const char *detail)
{
    struct q_expr *q = (struct q_expr *)&q; /* must be reset to NULL */
    struct err e = {0};
    int rc = q_parse(text, &q, &e);

    if (rc != ERR_INVALID_REQUEST)
        fail_msg("q_parse(%s): expected ERR_INVALID_REQUEST, got %d", text, rc);
    assert_null(q);
    /* A trailing '*' in detail: prefix match (regerror texts vary by libc). */
    size_t n = strlen(detail);
    int same = n > 0 && detail[n - 1] == '*' ? strncmp(e.detail, detail, n - 1) == 0
                                             : strcmp(e.detail, detail) == 0;
    if (!same)
        fail_msg("q_parse(%s):\n  expected: %s\n  got:      %s", text, detail, e.detail);
}

/* ---- parser ------------------------------------------------------------------ */

static void test_parse_accepts(void **state)
{
    static const char *const ok[] = {
        "temperature",
        "temperature==20",
        "brandName!=\"Mercedes\"",
        "isParked==\"urn:ngsi-ld:OffStreetParking:Downtown1\"",
        "speed>50;brandName!=\"Mercedes\"",
        "((speed>50|rpm>3000);brandName==\"Mercedes\")",
        "(temperature>=20;temperature<=25)|capacity<=10",
        "temperature.observedAt>=2017-12-24T12:00:00Z",
        "address[city]==\"Berlin\"",
        "sensor.rawdata[airquality.particulate]==40",
        "a[b][c]==1",
        "a.b.c[d.e][f]",
        "a==-1.5e-3",
        "a==0",
        "a==1..2",
        "a==\"x\",\"y\",3,true",
        "a==2017-12-24",
        "a==12:00:00Z..13:00:00Z",
        "a==\"\\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u00e9 \\ud83d\\ude00\"",
        "ex:foo==1",
        "https://x/y#z==1",
        "https://smartdatamodels.org/dataModel.Streetlighting/status==ok",
        "a~=^[a-z]+$",
        "a!~=\"x|y\"",
        "a~=(?i)abc",
        "!a",
        " a == 1 ; ( b | c ) ",
        "\xc3\xa9t\xc3\xa9==1",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct q_expr *q = NULL;
        struct err e = {0};
        int rc = q_parse(ok[i], &q, &e);
        if (rc != 0)
            fail_msg("q_parse(%s) failed: %d %s", ok[i], rc, e.detail);
        assert_non_null(q);
        q_free(q);
    }
}

static void test_parse_rejects(void **state)
{
    (void)state;
    expect_error("", "q: empty expression");
    expect_error(" \t", "q: empty expression");
    expect_error("temperature==",
                 "q: unexpected end of input at position 13, expected a value");
    expect_error("(a==1;b==)", "q: unexpected ')' at position 9, expected a value");
    expect_error("temp>>20", "q: unexpected '>' at position 5, expected a value");
    expect_error("temp==!1", "q: unexpected '!' at position 6, expected a value");
    expect_error("a==1)", "q: unexpected ')' at position 4, expected ';', '|' or end of input");
    expect_error("(a==1", "q: unexpected end of input at position 5, expected ';', '|' or ')'");
    expect_error("a=1", "q: unexpected '=' at position 1, expected an operator");
    expect_error("==5", "q: unexpected '=' at position 0, expected an attribute name");
    expect_error("1a==5", "q: unexpected '1' at position 0, expected an attribute name");
    expect_error("a;;b", "q: unexpected ';' at position 2, expected an attribute name");
    expect_error("a|", "q: unexpected end of input at position 2, expected an attribute name");
    expect_error("()", "q: unexpected ')' at position 1, expected an attribute name");
    expect_error("a.==1", "q: unexpected '=' at position 2, expected an attribute name");
    expect_error("a[]==1", "q: unexpected ']' at position 2, expected a member name");
    expect_error("a[x==1", "q: unexpected '=' at position 3, expected '.' or ']'");
    expect_error("a[x", "q: unexpected end of input at position 3, expected '.' or ']'");
    expect_error("a[x].b==1", "q: unexpected '.' at position 4, expected an operator");
    expect_error("a==1 2", "q: unexpected '2' at position 5, expected ';', '|' or end of input");
    expect_error("a==\"abc", "q: unexpected end of input at position 7, expected '\"'");
    expect_error("a==\"\\x\"", "q: unexpected 'x' at position 5, expected a JSON escape character");
    expect_error("a==\"\\u00g0\"", "q: unexpected 'g' at position 8, expected a hex digit");
    expect_error("a==\"\\u0000\"",
                 "q: unexpected '\\' at position 4, expected a non-NUL character");
    expect_error("a==\"\\udc00\"",
                 "q: unexpected '\\' at position 4, expected a valid \\u escape "
                 "(lone low surrogate)");
    expect_error("a==\"\\ud83dx\"",
                 "q: unexpected 'x' at position 10, expected a \\u low surrogate");
    expect_error("a==\"\x01\"",
                 "q: unexpected byte 0x01 at position 4, expected a string character (control "
                 "characters must be escaped)");
    expect_error("a==\x01", "q: unexpected byte 0x01 at position 3, expected a value");
    expect_error("a==..5", "q: unexpected '.' at position 3, expected a value");
    expect_error("a>1..5", "q: the range at position 2 needs == or != (operator at 1)");
    expect_error("a>1,2", "q: the value list at position 2 needs == or != (operator at 1)");
    expect_error("a==1..x",
                 "q: the range at position 3 needs two numbers, strings, date-times or times");
    expect_error("a==true..false",
                 "q: the range at position 3 needs two numbers, strings, date-times or times");
    expect_error("a==1..2020-01-01",
                 "q: the range at position 3 needs two numbers, strings, date-times or times");
    expect_error("a>true", "q: true/false at position 2 only compare with == or !=");
    expect_error("a==1,2..3",
                 "q: unexpected '.' at position 6, expected ',' or the end of the list "
                 "(no ranges in lists)");
    expect_error("a==1..2..3",
                 "q: unexpected '.' at position 7, expected ';', '|' or end of input");
    expect_error("!a==1",
                 "q: unexpected '=' at position 2, expected ';', '|', ')' or end of input "
                 "after '!attribute'");
    expect_error("!a b", "q: unexpected 'b' at position 3, expected ';', '|', ')' or end of input");
    expect_error("a~=", "q: unexpected end of input at position 3, expected a regular expression");
    expect_error("a~=;b", "q: unexpected ';' at position 3, expected a regular expression");
    expect_error("a~=[", "q: bad regular expression at position 3: *");
    expect_error("a~=(a)\\1",
                 "q: the regular expression at position 3 uses a back-reference (not supported)");
    expect_error("a~=a{300}",
                 "q: the regular expression at position 3 has a repetition count above 255");
    expect_error("a~=((a{20}){20}){20}",
                 "q: the regular expression at position 3 is too complex (repetition counts)");
    /* Regression (fuzz timeout): stacked repetitions made glibc regcomp explode. */
    expect_error("t~=p+++++++++++++++++++++++++++++++++e*",
                 "q: the regular expression at position 3 stacks repetition operators");
    expect_error("t~=a*{2}", "q: the regular expression at position 3 stacks repetition operators");
    expect_error("t~=a?*", "q: the regular expression at position 3 stacks repetition operators");
    expect_error("a!~=\"\\u",
                 "q: unexpected end of input at position 7, expected a hex digit");
}

static void test_parse_limits(void **state)
{
    char buf[Q_TEXT_MAX + 2];
    struct q_expr *q = NULL;
    struct err e = {0};
    size_t n = 0;

    (void)state;
    /* Nesting: 32 levels are fine, 33 are not. */
    for (int i = 0; i < Q_DEPTH_MAX; i++)
        buf[n++] = '(';
    buf[n++] = 'a';
    for (int i = 0; i < Q_DEPTH_MAX; i++)
        buf[n++] = ')';
    buf[n] = '\0';
    assert_int_equal(q_parse(buf, &q, &e), 0);
    assert_int_equal(match_doc(buf, doc), 0);
    q_free(q);
    memmove(buf + 1, buf, n + 1);
    buf[0] = '(';
    strcat(buf, ")");
    expect_error(buf, "q: parentheses nested deeper than 32 at position 32");

    /* Length: Q_TEXT_MAX bytes are fine, one more is not. */
    memset(buf, 'a', Q_TEXT_MAX);
    buf[Q_TEXT_MAX] = '\0';
    q = NULL;
    assert_int_equal(q_parse(buf, &q, &e), 0);
    q_free(q);
    buf[Q_TEXT_MAX] = 'a';
    buf[Q_TEXT_MAX + 1] = '\0';
    expect_error(buf, "q: expression longer than 8192 bytes");

    /* Regular expressions: at most Q_REGEX_MAX. */
    n = 0;
    for (int i = 0; i <= Q_REGEX_MAX; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%sa~=x", i ? ";" : "");
    expect_error(buf, "q: more than 64 regular expressions (position 323)");
    buf[n - 5] = '\0'; /* drop the last one */
    q = NULL;
    assert_int_equal(q_parse(buf, &q, &e), 0);
    q_free(q);

    /* Regex nesting and length. */
    n = (size_t)snprintf(buf, sizeof(buf), "a~=");
    for (int i = 0; i < 33; i++)
        buf[n++] = '(';
    buf[n++] = 'x';
    for (int i = 0; i < 33; i++)
        buf[n++] = ')';
    buf[n] = '\0';
    expect_error(buf, "q: the regular expression at position 3 nests parentheses deeper than 32");
    memset(buf + 3, 'x', Q_REGEX_LEN_MAX + 1);
    buf[3 + Q_REGEX_LEN_MAX + 1] = '\0';
    expect_error(buf, "q: the regular expression at position 3 is longer than 1024 bytes");

    /* API misuse. */
    assert_int_equal(q_parse(NULL, &q, &e), ERR_INVALID_REQUEST);
    assert_null(q);
    assert_int_equal(q_parse("a", NULL, NULL), ERR_INTERNAL);
    q_free(NULL);
}

/* ---- operators ------------------------------------------------------------- */

static void test_numbers(void **state)
{
    (void)state;
    M("count==7", 1);
    M("count==7.0", 1);
    M("count==7e0", 1);
    M("count==70e-1", 1);
    M("count==8", 0);
    M("count==-7", 0);
    M("count!=7", 0);
    M("count!=8", 1);
    M("count>6", 1);
    M("count>7", 0);
    M("count>=7", 1);
    M("count>=7.5", 0);
    M("count<8", 1);
    M("count<7", 0);
    M("count<=7", 1);
    M("count<=6.99", 0);
    M("count>-1e3", 1);
    M("count==\"7\"", 0);
    M("count!=\"7\"", 1); /* different types are unequal */
    M("count>\"0\"", 0);
}

static void test_strings(void **state)
{
    (void)state;
    M("status==\"ok\"", 1);
    M("status==ok", 1);
    M("status==\"OK\"", 0);
    M("status!=\"ok\"", 0);
    M("status!=\"bad\"", 1);
    M("status>\"ab\"", 1);
    M("status<\"ok\"", 0);
    M("status<=\"ok\"", 1);
    M("status>=\"ol\"", 0);
    M("status==7", 0);
    M("status!=7", 1);
    M("status==true", 0);
    M("status>2020-01-01", 0); /* not a date: no match */
}

static void test_booleans(void **state)
{
    (void)state;
    M("enabled==true", 1);
    M("enabled==false", 0);
    M("enabled!=false", 1);
    M("enabled!=true", 0);
    M("enabled==\"true\"", 0);
    M("enabled==1", 0);
}

static void test_regex(void **state)
{
    (void)state;
    M("status~=^o", 1);
    M("status~=k$", 1);
    M("status~=^x", 0);
    M("status!~=^x", 1);
    M("status!~=^o", 0);
    M("status~=(?i)^OK$", 1);
    M("status~=^OK$", 0);
    M("status~=\"o|x\"", 1);
    M("status~=(x|o)k", 1);
    M("status~=[;o]k", 1);     /* ';' inside a bracket expression is regex */
    M("status~=[[:alpha:]]{2}", 1);
    M("status~=^[+*]*ok+$", 1); /* duplication chars inside brackets are literals */
    M("status~=(o+)+k", 1);
    M("status~=x|status==ok", 1); /* unquoted: top-level '|' ends the regex */
    M("status~=x|count==99", 0);
    M("status~=^o ;count==7", 1); /* trailing blanks dropped */
    M("count~=7", 0);          /* numbers never match patterns */
    M("count!~=7", 0);
    M("tags~=^gr", 1);
    M("tags!~=^gr", 0);
    M("tags!~=^x", 1);
    M("levels!~=x", 0);        /* no string element */
    M("name~=lampe", 1);       /* any language */
    M("name[en]~=lampe", 0);
    M("missing~=.", 0);
    M("missing!~=x", 0);
}

static void test_ranges(void **state)
{
    (void)state;
    M("count==5..10", 1);
    M("count==7..7", 1);
    M("count==7.5..10", 0);
    M("count==8..10", 0);
    M("count==10..5", 0);
    M("count!=8..10", 1);
    M("count!=5..10", 0);
    M("count == 5 .. 10", 1);
    M("temperature==25..35", 1); /* second instance: 30 */
    M("temperature!=20..35", 0);
    M("installedAt==2020-01-01..2020-12-31", 1);
    M("installedAt==2020-03-02..2020-12-31", 0);
    M("switchOn==18:00:00..19:00:00", 1);
    M("status==a..z", 1);
    M("status==\"p\"..\"z\"", 0);
    M("levels==2..4", 0);
    M("levels==4..6", 1);
    M("levels!=2..4", 1);
    M("levels!=4..6", 0);
}

static void test_lists(void **state)
{
    (void)state;
    M("count==1,7,9", 1);
    M("count==1,2", 0);
    M("count!=1,2", 1);
    M("count!=1,7", 0);
    M("status==\"ok\",\"bad\"", 1);
    M("status == \"x\" , \"ok\"", 1);
    M("status==x,y", 0);
    M("enabled==false,true", 1);
    M("count==\"7\",7", 1);
    M("tags==\"black\",\"blue\"", 1);
    M("tags!=\"black\",\"blue\"", 0);
    M("tags!=\"black\",\"white\"", 1);
}

static void test_dates_and_times(void **state)
{
    (void)state;
    M("installedAt>2020-01-01T00:00:00Z", 1);
    M("installedAt>2020-01-01", 1);
    M("installedAt<2020-03-01T10:00:00.001Z", 1);
    M("installedAt<2020-03-01T10:00:00Z", 0);
    M("installedAt==2020-03-01T11:00:00+01:00", 1); /* same instant */
    M("installedAt==2020-03-01T10:00:00.000Z", 1);
    M("installedAt==\"2020-03-01T10:00:00.000Z\"", 0); /* quoted: a string */
    M("installedAt>2021-01-01", 0);
    M("temperature.observedAt>=2026-06-12T08:15:00Z", 1);
    M("temperature.observedAt>2026-06-12T08:15:00Z", 0);
    M("temperature.observedAt<2026-01-01", 0);
    M("switchOn>18:00:00", 1);
    M("switchOn>18:00", 1);
    M("switchOn<18:00:00Z", 0);
    M("switchOn==18:30:00", 1);
    M("switchOn>2020-01-01", 0); /* a time of day is not a date-time */
    M("createdAt>2026-06-01", 1);  /* entity-level member */
    M("createdAt>2026-07-01", 0);
    M("modifiedAt==2026-06-12T09:00:00Z", 1);
    M("https://uri.etsi.org/ngsi-ld/modifiedAt>2026-06-12T08:59:59Z", 1);
    M("createdAt", 1);
    M("count.createdAt", 0);
}

/* ---- paths ---------------------------------------------------------------------- */

static void test_sub_attributes(void **state)
{
    (void)state;
    M("temperature.accuracy==0.5", 1);
    M("temperature.accuracy>1", 0);
    M("temperature.accuracy", 1);
    M("temperature.missing", 0);
    M("!temperature.missing", 1);
    M("temperature.sensor==urn:ngsi-ld:Device:7", 1);
    M("temperature.sensor>a", 0);
    M("temperature.unitCode==\"CEL\"", 1);
    M("temperature.unitCode==CEL", 1);
    M("temperature.unitCode!=CEL", 0); /* the second instance has none: no target */
    M("status.unitCode!=CEL", 0);
    M("temperature.datasetId==urn:ngsi-ld:Dataset:backup", 1);
    M("temperature.https://uri.etsi.org/ngsi-ld/datasetId==urn:ngsi-ld:Dataset:backup", 1);
    M("temperature.observedAt", 1);
    M("status.observedAt", 0);
    M("temperature.observedAt.x", 0);
    M("temperature.observedAt[x]", 0);
    M("temperature.accuracy.deeper==1", 0);
    M("https://smartdatamodels.org/dataModel.Streetlighting/powerState==on", 1);
    M("https://smartdatamodels.org/dataModel.Streetlighting/powerState.https://uri.etsi.org/"
      "ngsi-ld/default-context/reason==schedule",
      1);
    M("https://smartdatamodels.org/dataModel.Streetlighting/powerState.observedAt", 0);
    M("ex:short==1", 1);
}

static void test_key_paths(void **state)
{
    (void)state;
    M("address[city]==\"Berlin\"", 1);
    M("address[city]==Berlin", 1);
    M("address[city]==Paris", 0);
    M("address[geo.zip]==10115", 1);
    M("address[geo][zip]==10115", 1);
    M("address[geo.zip]>10000", 1);
    M("address[lines.1]==\"b\"", 1);
    M("address[lines][0]==a", 1);
    M("address[lines.2]", 0);
    M("address[city]", 1);
    M("address[country]", 0);
    M("!address[country]", 1);
    M("address[country]!=\"x\"", 0); /* non-existent target */
    M("address[city.x]", 0);
    M("address==\"Berlin\"", 0);
    M("config[mode]==\"auto\"", 1);
    M("config[level]>=3", 1);
    M("name[en]==\"red lamp\"", 1);
    M("name[fr]==\"red lamp\"", 0);
    M("name[*]==\"lampe rouge\"", 1);
    M("name==\"lampe rouge\"", 1);
    M("name==rote", 1);
    M("name[de]==Lampe", 1);
    M("name[de]!=Lampe", 0);
    M("name[de]!=Katze", 1);
    M("name!=\"red lamp\"", 0);
    M("name!=\"blue lamp\"", 1);
    M("name[es]", 0);
    M("name[en]", 1);
    M("name[en.x]", 0);
    M("refDevice[x]", 0);
}

/* ---- value kinds ------------------------------------------------------------------ */

static void test_relationships(void **state)
{
    (void)state;
    M("refDevice==urn:ngsi-ld:Device:1", 1);
    M("refDevice==\"urn:ngsi-ld:Device:1\"", 1);
    M("refDevice!=urn:ngsi-ld:Device:1", 0);
    M("refDevice!=urn:ngsi-ld:Device:2", 1);
    M("refDevice>a", 0); /* only == and != on relationships */
    M("refDevice<=z", 0);
    M("refDevice~=Device", 0);
    M("refDevice", 1);
    M("neighbours==urn:ngsi-ld:Streetlight:3", 1);
    M("neighbours!=urn:ngsi-ld:Streetlight:3", 0);
    M("neighbours!=urn:ngsi-ld:Streetlight:4", 1);
    M("neighbours==urn:ngsi-ld:Streetlight:9,urn:ngsi-ld:Streetlight:2", 1);
    M("route==urn:ngsi-ld:Stop:2", 1);
    M("route!=urn:ngsi-ld:Stop:3", 1);
    M("route!=urn:ngsi-ld:Stop:1", 0);
    M("category==https://ex.org/Lamp", 1);
    M("category~=Lamp$", 1);
}

static void test_arrays_and_instances(void **state)
{
    (void)state;
    M("tags==\"red\"", 1);
    M("tags!=\"red\"", 0);
    M("tags!=\"black\"", 1);
    M("levels>8", 1);
    M("levels>9", 0);
    M("levels<1", 0);
    M("levels==5", 1);
    M("readings==4", 1);
    M("readings>5", 0);
    /* Two instances (default + datasetId): any of them. */
    M("temperature==21.5", 1);
    M("temperature==30", 1);
    M("temperature==22", 0);
    M("temperature!=21.5", 1);
    M("temperature>25", 1);
    M("temperature>30", 0);
    M("temperature==21.5;temperature==30", 1);
    M("location", 1);
    M("location==\"x\"", 0);
    M("location!=\"x\"", 1);
    M("missing", 0);
    M("!missing", 1);
    M("!status", 0);
    M("missing!=5", 0);
    M("missing==5", 0);
}

static void test_precedence(void **state)
{
    (void)state;
    M("count==1;count==7|status==ok", 1);
    /* ; binds tighter: 7 | (bad ; 1) is true; (7 | bad) ; 1 would be false. */
    M("count==7|status==bad;count==1", 1);
    M("(count==7|status==bad);count==1", 0);
    M("status==bad;count==7|count==1", 0);
    M("status==bad;(count==7|count==1)", 0);
    M("status==ok;(count==1|count==7)", 1);
    M("((count==7|x==1);(status==ok))", 1);
    M(" ( count == 7 | x ) ; status ~= o ", 1);
    M("a|b|c|count", 1);
    M("count;status;enabled;!missing", 1);
    M("count;status;enabled;missing", 0);
}

static void test_robustness(void **state)
{
    struct q_expr *q = NULL;
    struct err e = {0};
    cJSON *d;

    (void)state;
    assert_int_equal(q_parse("count==7;!x", &q, &e), 0);
    assert_int_equal(q_match(q, NULL), 0);
    assert_int_equal(q_match(NULL, doc), 0);
    d = cJSON_Parse("[1]");
    assert_int_equal(q_match(q, d), 0);
    cJSON_Delete(d);
    d = cJSON_Parse("{\"attrs\": 5}");
    assert_int_equal(q_match(q, d), 0);
    cJSON_Delete(d);
    /* An instance given as an object instead of an array is tolerated. */
    d = cJSON_Parse("{\"attrs\": {\"count\": {\"type\": \"Property\", \"value\": 7}}}");
    assert_int_equal(q_match(q, d), 1);
    cJSON_Delete(d);
    d = cJSON_Parse("{\"attrs\": {\"count\": [5, null, {\"value\": 7}]}}");
    assert_int_equal(q_match(q, d), 1); /* missing type: first value member present */
    cJSON_Delete(d);
    d = cJSON_Parse("{\"attrs\": {\"count\": [{\"type\": \"Property\"}]}}");
    assert_int_equal(q_match(q, d), 0);
    cJSON_Delete(d);
    q_free(q);
}

/* ---- q_expand, q_foreach_attr ---------------------------------------------------- */

struct calls {
    char seen[16][64];
    int n;
    int fail_on; /* 1-based call number that returns NULL, 0: never */
};

static char *expand_cb(void *ud, const char *term)
{
    struct calls *c = ud;
    char *out;

    if (c->n < 16)
        snprintf(c->seen[c->n], sizeof(c->seen[0]), "%s", term);
    c->n++;
    if (c->n == c->fail_on)
        return NULL;
    out = malloc(strlen(term) + 40);
    if (out == NULL)
        return NULL;
    if (strcmp(term, "observedAt") == 0)
        sprintf(out, "https://uri.etsi.org/ngsi-ld/%s", term);
    else
        sprintf(out, "https://ex.org/%s", term);
    return out;
}

static void test_expand(void **state)
{
    static const char *const doc2_text =
        "{\"attrs\": {"
        " \"https://ex.org/temperature\": [{\"type\": \"Property\", \"value\": 3,"
        "   \"observedAt\": \"2026-06-12T08:15:00.000Z\","
        "   \"sub\": {\"https://ex.org/accuracy\": {\"type\": \"Property\", \"value\": 1}}}],"
        " \"https://ex.org/address\": [{\"type\": \"Property\","
        "   \"value\": {\"city\": \"Berlin\"}}]}}";
    const char *text = "temperature.observedAt>2026-01-01;address[city]==Berlin;"
                       "temperature.accuracy==1";
    struct q_expr *q = NULL;
    struct err e = {0};
    struct calls c = {0};
    cJSON *doc2 = cJSON_Parse(doc2_text);

    (void)state;
    assert_non_null(doc2);
    assert_int_equal(q_parse(text, &q, &e), 0);
    assert_int_equal(q_match(q, doc2), 0); /* short names do not match IRIs */
    assert_int_equal(q_expand(q, expand_cb, &c, &e), 0);
    assert_int_equal(c.n, 5); /* never the [city] key */
    assert_string_equal(c.seen[0], "temperature");
    assert_string_equal(c.seen[1], "observedAt");
    assert_string_equal(c.seen[2], "address");
    assert_string_equal(c.seen[3], "temperature");
    assert_string_equal(c.seen[4], "accuracy");
    assert_int_equal(q_match(q, doc2), 1);
    q_free(q);

    /* A NULL from the callback is ERR_NOMEM; the expression stays freeable. */
    q = NULL;
    memset(&c, 0, sizeof(c));
    c.fail_on = 2;
    err_clear(&e);
    assert_int_equal(q_parse(text, &q, &e), 0);
    assert_int_equal(q_expand(q, expand_cb, &c, &e), ERR_NOMEM);
    assert_int_equal(e.code, ERR_NOMEM);
    assert_string_equal(e.detail, "q: cannot expand attribute name 'observedAt'");
    q_free(q);
    cJSON_Delete(doc2);
}

struct names {
    char list[8][64];
    int n;
};

static void collect(void *ud, const char *attr)
{
    struct names *nm = ud;

    if (nm->n < 8)
        snprintf(nm->list[nm->n], sizeof(nm->list[0]), "%s", attr);
    nm->n++;
}

static void test_foreach_attr(void **state)
{
    struct q_expr *q = NULL;
    struct err e = {0};
    struct names nm = {0};

    (void)state;
    assert_int_equal(q_parse("a==1;b.c==2|(a>3;!d;b[x]);e~=z", &q, &e), 0);
    q_foreach_attr(q, collect, &nm);
    assert_int_equal(nm.n, 4);
    assert_string_equal(nm.list[0], "a");
    assert_string_equal(nm.list[1], "b");
    assert_string_equal(nm.list[2], "d");
    assert_string_equal(nm.list[3], "e");
    q_foreach_attr(NULL, collect, &nm);
    q_foreach_attr(q, NULL, &nm);
    assert_int_equal(nm.n, 4);
    q_free(q);
}

/* ---- q_index_hint ------------------------------------------------------------------ */

static int hint_of(const char *text, struct q_hint *h)
{
    struct q_expr *q = NULL;
    struct err e = {0};
    int r;

    if (q_parse(text, &q, &e) != 0)
        fail_msg("q_parse(%s): %s", text, e.detail);
    memset(h, 0x5a, sizeof(*h));
    r = q_index_hint(q, h);
    if (r) {
        /* attr/str point into q: copy what the tests look at before freeing. */
        static char attr[64], str[64];
        snprintf(attr, sizeof(attr), "%s", h->attr);
        h->attr = attr;
        if (h->str) {
            snprintf(str, sizeof(str), "%s", h->str);
            h->str = str;
        }
    }
    q_free(q);
    return r;
}

static void test_index_hint(void **state)
{
    struct q_hint h;

    (void)state;
    assert_int_equal(hint_of("count==7", &h), 1);
    assert_int_equal(h.kind, Q_HINT_EQ_NUM);
    assert_string_equal(h.attr, "count");
    assert_true(h.num == 7 && h.lo == 7 && h.hi == 7 && h.lo_incl && h.hi_incl);
    assert_null(h.str);

    assert_int_equal(hint_of("status==ok", &h), 1);
    assert_int_equal(h.kind, Q_HINT_EQ_STR);
    assert_string_equal(h.attr, "status");
    assert_string_equal(h.str, "ok");

    assert_int_equal(hint_of("count>1;count<=5", &h), 1);
    assert_int_equal(h.kind, Q_HINT_RANGE);
    assert_string_equal(h.attr, "count");
    assert_true(h.lo == 1 && !h.lo_incl && h.hi == 5 && h.hi_incl);

    assert_int_equal(hint_of("count>=3", &h), 1);
    assert_int_equal(h.kind, Q_HINT_RANGE);
    assert_true(h.lo == 3 && h.lo_incl && isinf(h.hi) && h.hi > 0 && !h.hi_incl);

    assert_int_equal(hint_of("count<3", &h), 1);
    assert_true(isinf(h.lo) && h.lo < 0 && !h.lo_incl && h.hi == 3 && !h.hi_incl);

    assert_int_equal(hint_of("count==1..5;status==\"ok\"", &h), 1);
    assert_int_equal(h.kind, Q_HINT_EQ_STR); /* equality first */
    assert_string_equal(h.attr, "status");

    assert_int_equal(hint_of("a>1;b==2..3;c<0", &h), 1);
    assert_int_equal(h.kind, Q_HINT_RANGE); /* two-sided beats one-sided */
    assert_string_equal(h.attr, "b");
    assert_true(h.lo == 2 && h.lo_incl && h.hi == 3 && h.hi_incl);

    assert_int_equal(hint_of("a==1..10;a>=2;a<10;a>1", &h), 1);
    assert_true(h.lo == 2 && h.lo_incl && h.hi == 10 && !h.hi_incl);

    assert_int_equal(hint_of("(a==1|b==2);c>3", &h), 1);
    assert_string_equal(h.attr, "c");

    assert_int_equal(hint_of("(count==7);x", &h), 1);
    assert_int_equal(h.kind, Q_HINT_EQ_NUM);

    assert_int_equal(hint_of("a==1;b==2", &h), 1);
    assert_string_equal(h.attr, "a"); /* first equality */

    assert_int_equal(hint_of("count==7|status==ok", &h), 0);
    assert_int_equal(hint_of("count.sub==7", &h), 0);
    assert_int_equal(hint_of("address[city]==x", &h), 0);
    assert_int_equal(hint_of("count!=7", &h), 0);
    assert_int_equal(hint_of("count==1,2", &h), 0);
    assert_int_equal(hint_of("status~=x", &h), 0);
    assert_int_equal(hint_of("count", &h), 0);
    assert_int_equal(hint_of("!count", &h), 0);
    assert_int_equal(hint_of("count>2020-01-01", &h), 0);
    assert_int_equal(hint_of("count>\"a\"", &h), 0);
    assert_int_equal(hint_of("count==true", &h), 0);
    assert_int_equal(hint_of("createdAt>5", &h), 0);
    assert_int_equal(q_index_hint(NULL, &h), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_dates_and_times),
        cmocka_unit_test(test_sub_attributes),
        cmocka_unit_test(test_key_paths),
        cmocka_unit_test(test_relationships),
        cmocka_unit_test(test_arrays_and_instances),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_robustness),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_foreach_attr),
        cmocka_unit_test(test_index_hint),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
