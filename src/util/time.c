/*
 * time.c - ISO 8601 parsing and formatting without libc's locale- and
 * TZ-dependent functions: days-from-civil arithmetic (H. Hinnant's
 * algorithm) keeps it pure and thread-safe.
 */
#define _POSIX_C_SOURCE 200809L
#include "util/time.h"
#include "util/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int64_t tm_add_months(int64_t ms, int64_t n)
{
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t clock = ms - days * 86400000, y, mi;
    unsigned m, d, last;

    civil_from_days(days, &y, &m, &d);
    mi = y * 12 + (m - 1) + n;
    y = mi >= 0 ? mi / 12 : -((-mi + 11) / 12);
    m = (unsigned)(mi - y * 12) + 1;
    last = mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    if (d > last)
        d = last;
    return days_from_civil(y, m, d) * 86400000 + clock;
}

/* Read exactly n digits. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

/* hh:mm:ss[.frac] then optional zone; *ms = ms since midnight, *off_ms zone offset. */
static int parse_clock(const char **pp, int64_t *ms, int64_t *off_ms)
{
    const char *p = *pp;
    int hh, mm, ss = 0, frac = 0;

    if (digits(&p, 2, &hh) || *p++ != ':' || digits(&p, 2, &mm))
        return -1;
    if (*p == ':') {
        p++;
        if (digits(&p, 2, &ss))
            return -1;
        if (*p == '.' || *p == ',') {
            p++;
            int n = 0;
            if (!isdigit((unsigned char)*p))
                return -1;
            while (isdigit((unsigned char)*p)) {
                if (n < 3) {
                    frac = frac * 10 + (*p - '0');
                    n++;
                }
                p++;
            }
            while (n++ < 3)
                frac *= 10;
        }
    }
    if (hh > 23 || mm > 59 || ss > 60)
        return -1;
    *off_ms = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om = 0;
        p++;
        if (digits(&p, 2, &oh))
            return -1;
        if (*p == ':')
            p++;
        if (*p && digits(&p, 2, &om))
            return -1;
        if (oh > 23 || om > 59)
            return -1;
        *off_ms = sign * ((int64_t)oh * 3600000 + (int64_t)om * 60000);
    }
    *ms = ((int64_t)hh * 3600 + mm * 60 + (ss > 59 ? 59 : ss)) * 1000 + frac;
    *pp = p;
    return 0;
}

int tm_parse(const char *s, int64_t *ms)
{
    const char *p = s;
    int y, m, d;
    int64_t clock = 0, off = 0;

    if (s == NULL || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &m) || *p++ != '-' ||
        digits(&p, 2, &d))
        return ERR_BAD_DATA;
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return ERR_BAD_DATA;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (parse_clock(&p, &clock, &off))
            return ERR_BAD_DATA;
    }
    if (*p != '\0')
        return ERR_BAD_DATA;
    *ms = days_from_civil(y, (unsigned)m, (unsigned)d) * 86400000 + clock - off;
    return 0;
}

int tm_parse_time(const char *s, int64_t *ms)
{
    const char *p = s;
    int64_t clock, off;

    if (s == NULL || parse_clock(&p, &clock, &off) || *p != '\0')
        return ERR_BAD_DATA;
    *ms = clock - off;
    return 0;
}

int tm_is_datetime(const char *s)
{
    int64_t v;
    return tm_parse(s, &v) == 0 || tm_parse_time(s, &v) == 0;
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

/* Hand-rolled: this runs for every stamped attribute, and snprintf was a
 * tenth of a batch upsert's CPU. */
void tm_format(int64_t ms, char out[TM_ISO_LEN])
{
    int64_t days = ms / 86400000, rem = ms % 86400000;
    int64_t y;
    unsigned m, d, msec;

    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    if (y < 0)
        y = 0; /* ISO 8601 basic range; earlier instants are clamped */
    else if (y > 9999)
        y = 9999;
    put2(out, (unsigned)y / 100);
    put2(out + 2, (unsigned)y % 100);
    out[4] = '-';
    put2(out + 5, m);
    out[7] = '-';
    put2(out + 8, d);
    out[10] = 'T';
    put2(out + 11, (unsigned)(rem / 3600000));
    out[13] = ':';
    put2(out + 14, (unsigned)(rem / 60000 % 60));
    out[16] = ':';
    put2(out + 17, (unsigned)(rem / 1000 % 60));
    out[19] = '.';
    msec = (unsigned)(rem % 1000);
    out[20] = (char)('0' + msec / 100);
    put2(out + 21, msec % 100);
    out[23] = 'Z';
    out[24] = '\0';
}

int64_t tm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tm_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int tm_parse_duration(const char *s, int64_t *ms)
{
    const char *p = s;
    int in_time = 0, any = 0;
    double total = 0;

    if (s == NULL || *p++ != 'P')
        return ERR_BAD_DATA;
    while (*p) {
        if (*p == 'T') {
            if (in_time)
                return ERR_BAD_DATA;
            in_time = 1;
            p++;
            continue;
        }
        char *end;
        if (!isdigit((unsigned char)*p))
            return ERR_BAD_DATA;
        double v = strtod(p, &end);
        if (end == p)
            return ERR_BAD_DATA;
        p = end;
        double unit;
        switch (*p) {
        case 'Y': unit = in_time ? -1 : 365.0 * 86400000; break;
        case 'M': unit = in_time ? 60000 : 30.0 * 86400000; break;
        case 'W': unit = in_time ? -1 : 7.0 * 86400000; break;
        case 'D': unit = in_time ? -1 : 86400000; break;
        case 'H': unit = in_time ? 3600000 : -1; break;
        case 'S': unit = in_time ? 1000 : -1; break;
        default: return ERR_BAD_DATA;
        }
        if (unit < 0)
            return ERR_BAD_DATA;
        total += v * unit;
        any = 1;
        p++;
    }
    if (!any)
        return ERR_BAD_DATA;
    *ms = (int64_t)total;
    return 0;
}
