/*
 * sim.c - the simulated devices and their messages (see sim.h); the
 * transports and the command line are in simrun.c.
 *
 * Everything is a pure function of a 64-bit hash of (seed, device index,
 * message number, stream): no state is kept per device, so message k of a
 * run of any length is computed in O(1), any thread may generate any
 * message, and two runs with one seed send the same values. Only the
 * ChirpStack deduplicationId and the TTS correlation id are random (a
 * per-thread generator seeded from getrandom), as on a real network.
 *
 * Devices. Index i has kind KIND_ORDER[i % 10] (4 air, 4 light, 2 water in
 * every 10, so even 3 devices cover all kinds); DevEUI 5e:SS:SS:SS:ii:ii:ii:ii
 * (SS = 24 bits of the seed's hash, ii = i), so it is unique per (seed, i);
 * position uniform in the disc of radius_m around (lat, lon). Every
 * device keeps its spreading factor (SF7-SF10), link quality, road exposure
 * and sensor offsets for life (hashes of (seed, i)).
 *
 * Time of day is local solar time, UTC + lon / 15 h, which is what the
 * sun and, near enough, the traffic follow; day of year from the epoch.
 *
 * Wire formats (fPort, channel, Cayenne LPP type, unit, model):
 *   air   fPort 1, 23 bytes, profile sim-air-quality-lpp
 *     ch1 temperature 0x67  degC  seasonal mean 10.5 +- 7.5, daily +-4 (max 15:00,
 *                                 min 03:00), device offset +-0.8, noise 0.3;
 *                                 [-25, 45]
 *     ch2 humidity    0x68  %     78 - 15 * daily + noise 4; [15, 100]
 *     ch3 analog in   0x02  ug/m3 PM2.5: 6 + 14 * traffic * road + noise 2.5; [0, 300]
 *     ch4 analog in   0x02  ug/m3 PM10: 1.55 * PM2.5 + 3 + noise 3; [PM2.5, 320]
 *     ch5 analog in   0x02  ug/m3 NO2: 12 + 45 * traffic * road + noise 4; [0, 300]
 *     ch6 voltage     0x74  V     battery, see below
 *     NO2 and PM are "analog input" (0.01 resolution, signed 16 bit) because
 *     LPP's concentration type counts whole ppm, too coarse for urban NO2
 *     (tens of ug/m3 = tens of ppb).
 *     traffic(h) = 0.05 + 0.3 * day + rush; day = sin(pi (h - 5.5) / 17) on
 *     5.5..22.5 h; rush = exp(-((h-8)/1.3)^2) + 0.9 exp(-((h-17.5)/1.6)^2),
 *     x0.35 at weekends. road (per device) 0.5..1.5.
 *   light fPort 2, 6 bytes [towards u16][away u16][occupancy % u8][lampOn u8],
 *         decoded by the network server into {peopleCount, peopleCountTowards,
 *         peopleCountAway, occupancy, lampOn}; profile sim-light-counter
 *     people per 5-minute interval: lambda = busy * activity(h), busy 20..120 per
 *     device; activity = 0.03 + 0.55 day + 0.8 morning rush (8:18) + 0.9
 *     evening rush (17:24), rushes x0.3 and day x1.2 at weekends; counts =
 *     max(0, round(lambda + sqrt(lambda) * noise)), split towards/away 75/25 in
 *     the morning rush, 25/75 in the evening, even otherwise.
 *     occupancy = min(1, count / (1.8 busy)), 0.01 steps; lampOn between
 *     sunset and sunrise (solar declination at lat). Mains powered: status
 *     events say externalPowerSource.
 *   water fPort 3, 18 bytes, profile sim-water-lpp
 *     ch1 temperature 0x67  degC  11 + 8 seasonal + 0.4 daily + offset +-0.5; [0, 30]
 *     ch2 analog in   0x02  pH    7.5 + offset +-0.3 + 0.15 sin(days / 3..6 d
 *                                 period) + 0.02 noise; [6, 9]
 *     ch3 distance    0x82  m     sensor to surface: 0.6 + 0.6 offset + 0.08
 *                                 sin(weekly) + 0.003 noise; [0.05, 5]
 *     ch4 voltage     0x74  V     battery
 *   battery (air, water): 3.3..4.15 V new, -0.00002 V per message, noise
 *     0.01, [3.0, 4.2]; ChirpStack status batteryLevel = (V - 3.0) / 1.2 * 100.
 *   radio: 1-3 gateways of a pool of 8; rssi per device -75..-110 dBm, -6 dB
 *     per further gateway, noise 3, [-120, -60]; snr = 0.35 (rssi + 110)
 *     + noise 1.5, quarter dB, [-10, 12]; EU868 channels.
 */
#include "sim/sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ingest/lpp.h"
#include "sim/lppenc.h"
#include "util/base64.h"
#include "util/time.h"

#define PI 3.14159265358979323846
#define DEMO_LAT 52.3700 /* src/demo/demo.c: Hoekplein */
#define DEMO_LON 4.8900
#define MAX_MESSAGE (64 * 1024)
#define MAX_SEQ 4294967295L /* fCnt is 32 bits */
#define N_GATEWAYS 8
#define STATUS_EVERY 50

enum kind { K_AIR, K_LIGHT, K_WATER };

static const enum kind KIND_ORDER[10] = {K_AIR,   K_LIGHT, K_WATER, K_LIGHT, K_AIR,
                                         K_LIGHT, K_AIR,   K_LIGHT, K_WATER, K_AIR};

static const struct kind_info {
    const char *name;    /* "air" */
    const char *profile; /* profile id */
    const char *app;     /* ChirpStack applicationName / TTS application_id */
    const char *what;    /* device description */
    int f_port;
} KINDS[3] = {
    {"air", "sim-air-quality-lpp", "sim-air", "Simulated air-quality node", 1},
    {"light", "sim-light-counter", "sim-light", "Simulated light post with pedestrian counter", 2},
    {"water", "sim-water-lpp", "sim-water", "Simulated canal water sensor", 3},
};

/* hash streams: each independent quantity has its own */
enum stream {
    S_EUI = 1,
    S_POS_R,
    S_POS_A,
    S_SF,
    S_LINK,
    S_ROAD,
    S_BUSY,
    S_OFF_T,
    S_OFF_PH,
    S_OFF_LVL,
    S_PERIOD,
    S_BATT,
    S_FMT,
    S_ADDR,
    S_N_GW,
    S_GW,
    S_RSSI,
    S_SNR,
    S_CHAN,
    S_MICRO,
    S_NS,
    S_MARGIN,
    S_N1,
    S_N2,
    S_N3,
    S_N4,
    S_N5,
    S_N6,
    S_APP,
    S_PROF,
    S_TENANT,
};

/* --- hashing ------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t hash4(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    return mix64(mix64(mix64(mix64(seed) ^ a) ^ b) ^ c);
}

/* uniform [0, 1) */
static double unif(uint64_t h)
{
    return (double)(h >> 11) * 0x1.0p-53;
}

/* standard normal, tails cut at 4 sigma */
static double gauss(uint64_t h)
{
    double u1 = ((double)(h >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
    double u2 = unif(mix64(h));
    double g = sqrt(-2.0 * log(u1)) * cos(2 * PI * u2);
    return g > 4 ? 4 : g < -4 ? -4 : g;
}

/* per device, constant for life */
static double dev_u(const struct sim_conf *c, int i, enum stream s)
{
    return unif(hash4(c->seed, (uint64_t)i, 0xdddd, (uint64_t)s));
}

/* per message noise */
static double msg_g(const struct sim_conf *c, int i, long seq, enum stream s)
{
    return gauss(hash4(c->seed, (uint64_t)i, (uint64_t)seq + 1, (uint64_t)s));
}

static uint64_t msg_h(const struct sim_conf *c, int i, long seq, enum stream s)
{
    return hash4(c->seed, (uint64_t)i, (uint64_t)seq + 1, (uint64_t)s);
}

/* Random 64-bit values for ids that real senders make random. */
static _Thread_local uint64_t rng_state;
static _Thread_local int rng_ready;

static uint64_t rng_next(void)
{
    if (!rng_ready) {
        uint64_t s = 0;
        if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&s;
        }
        rng_state = s;
        rng_ready = 1;
    }
    rng_state += 0x9e3779b97f4a7c15ULL;
    return mix64(rng_state);
}

/* --- small helpers -------------------------------------------------------- */

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static double sq(double x)
{
    return x * x;
}

/* v rounded to the LPP type's resolution (value k) */
static double on_step(double v, int type)
{
    double step = lppenc_step(type, 0);
    return round(v / step) * step;
}

static double local_hour(int64_t t_ms, double lon)
{
    double h = fmod((double)t_ms / 3600000.0 + lon / 15.0, 24.0);
    return h < 0 ? h + 24 : h;
}

static double day_of_year(int64_t t_ms)
{
    double d = fmod((double)t_ms / 86400000.0, 365.2425);
    return d < 0 ? d + 365.2425 : d;
}

static int is_weekend(int64_t t_ms, double lon)
{
    int64_t days = (int64_t)floor(((double)t_ms / 3600000.0 + lon / 15.0) / 24.0);
    int64_t dow = ((days + 4) % 7 + 7) % 7; /* 1970-01-01 was a Thursday; 0 = Sunday */
    return dow == 0 || dow == 6;
}

/* 1 between sunset and sunrise at latitude lat (solar time h). */
static int is_dark(double h, double doy, double lat)
{
    double decl = 23.44 * PI / 180 * sin(2 * PI * (doy - 80) / 365.2425);
    double x = -tan(lat * PI / 180) * tan(decl);
    double day_len = x <= -1 ? 24 : x >= 1 ? 0 : 24 / PI * acos(x);
    return h < 12 - day_len / 2 || h > 12 + day_len / 2;
}

static enum kind kind_of(int i)
{
    return KIND_ORDER[i % 10];
}

/* --- configuration and devices --------------------------------------------- */

void sim_conf_defaults(struct sim_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->n_devices = 60;
    c->rate = 5;
    c->format = "chirpstack-v4";
    c->seed = 1;
    c->lat = DEMO_LAT;
    c->lon = DEMO_LON;
    c->radius_m = 1500;
}

void sim_device_at(const struct sim_conf *c, int i, struct sim_device *out)
{
    static const char HEX[] = "0123456789abcdef";
    enum kind k = kind_of(i < 0 ? 0 : i);
    uint64_t eui =
        (UINT64_C(0x5e) << 56) | ((mix64(c->seed ^ S_EUI) & 0xFFFFFF) << 32) | (uint32_t)i;
    /* uniform in the disc: r = R sqrt(u); 0.999 keeps rounding inside R */
    double r = c->radius_m * 0.999 * sqrt(dev_u(c, i, S_POS_R));
    double a = 2 * PI * dev_u(c, i, S_POS_A);
    double dlat = r * cos(a) / 111320.0;
    double dlon = r * sin(a) / (111320.0 * cos(c->lat * PI / 180));

    memset(out, 0, sizeof(*out));
    for (int b = 0; b < 16; b++)
        out->dev_eui[b] = HEX[(eui >> (60 - 4 * b)) & 0xF];
    snprintf(out->name, sizeof(out->name), "sim-%s-%04d", KINDS[k].name, i);
    out->kind = KINDS[k].name;
    out->profile = KINDS[k].profile;
    out->lat = round((c->lat + dlat) * 1e7) / 1e7;
    out->lon = round((c->lon + dlon) * 1e7) / 1e7;
}

int sim_device_tts(const struct sim_conf *c, int i)
{
    if (c->format == NULL)
        return 0;
    if (strcmp(c->format, "tts-v3") == 0)
        return 1;
    if (strcmp(c->format, "mix") == 0)
        return (int)(hash4(c->seed, (uint64_t)i, 0xdddd, S_FMT) & 1);
    return 0;
}

/* --- value models ------------------------------------------------------------- */

static double battery_volts(const struct sim_conf *c, int i, long seq)
{
    double v0 = 3.3 + 0.85 * dev_u(c, i, S_BATT);
    return clamp(v0 - 0.00002 * (double)seq + 0.01 * msg_g(c, i, seq, S_N6), 3.0, 4.2);
}

static double daily(double h, double peak_h)
{
    return cos(2 * PI * (h - peak_h) / 24);
}

static double traffic(double h, int weekend)
{
    double day = h > 5.5 && h < 22.5 ? sin(PI * (h - 5.5) / 17) : 0;
    double rush = exp(-sq((h - 8) / 1.3)) + 0.9 * exp(-sq((h - 17.5) / 1.6));
    return 0.05 + 0.3 * day + rush * (weekend ? 0.35 : 1);
}

static void put(struct sim_reading *r, int *n, const char *name, int ch, int type, double v)
{
    r[*n].name = name;
    r[*n].channel = ch;
    r[*n].lpp_type = type;
    r[*n].value = type >= 0 ? on_step(v, type) : v;
    (*n)++;
}

struct light {
    int towards, away, occupancy_pct, lamp_on;
};

static void light_values(const struct sim_conf *c, int i, long seq, int64_t t_ms, struct light *l)
{
    double h = local_hour(t_ms, c->lon);
    int weekend = is_weekend(t_ms, c->lon);
    double busy = 20 + 100 * dev_u(c, i, S_BUSY);
    double day = h > 6 && h < 23 ? sin(PI * (h - 6) / 17) : 0;
    double morning = exp(-sq((h - 8.3) / 1.0)), evening = exp(-sq((h - 17.4) / 1.3));
    double act = 0.03 + 0.55 * day * (weekend ? 1.2 : 1) +
                 (0.8 * morning + 0.9 * evening) * (weekend ? 0.3 : 1);
    double p = 0.5 + 0.25 * (exp(-sq((h - 8.3) / 1.5)) - exp(-sq((h - 17.4) / 1.5)));
    double lt = busy * act * p, la = busy * act * (1 - p);

    l->towards = (int)fmax(0, round(lt + sqrt(lt) * msg_g(c, i, seq, S_N1)));
    l->away = (int)fmax(0, round(la + sqrt(la) * msg_g(c, i, seq, S_N2)));
    l->occupancy_pct = (int)fmin(100, round(100.0 * (l->towards + l->away) / (1.8 * busy)));
    l->lamp_on = is_dark(h, day_of_year(t_ms), c->lat);
}

int sim_readings(const struct sim_conf *c, int i, long seq, int64_t t_ms,
                 struct sim_reading out[SIM_MAX_READINGS])
{
    double h, doy, season, g;
    int n = 0;

    if (i < 0 || seq < 0)
        return 0;
    h = local_hour(t_ms, c->lon);
    doy = day_of_year(t_ms);
    switch (kind_of(i)) {
    case K_AIR: {
        double road = 0.5 + dev_u(c, i, S_ROAD);
        double tr = traffic(h, is_weekend(t_ms, c->lon)) * road;
        double temp, pm25, pm10;
        season = sin(2 * PI * (doy - 110) / 365.2425);
        temp = 10.5 + 7.5 * season + 4 * daily(h, 15) + 1.6 * (dev_u(c, i, S_OFF_T) - 0.5) +
               0.3 * msg_g(c, i, seq, S_N1);
        put(out, &n, "temperature", 1, LPP_TEMPERATURE, clamp(temp, -25, 45));
        g = msg_g(c, i, seq, S_N2);
        put(out, &n, "humidity", 2, LPP_HUMIDITY, clamp(78 - 15 * daily(h, 15) + 4 * g, 15, 100));
        pm25 = clamp(6 + 14 * tr + 2.5 * msg_g(c, i, seq, S_N3), 0, 300);
        pm10 = clamp(1.55 * pm25 + 3 + 3 * msg_g(c, i, seq, S_N4), pm25, 320);
        put(out, &n, "pm25", 3, LPP_ANALOG_INPUT, pm25);
        put(out, &n, "pm10", 4, LPP_ANALOG_INPUT, pm10);
        put(out, &n, "no2", 5, LPP_ANALOG_INPUT,
            clamp(12 + 45 * tr + 4 * msg_g(c, i, seq, S_N5), 0, 300));
        put(out, &n, "batteryVoltage", 6, LPP_VOLTAGE, battery_volts(c, i, seq));
        break;
    }
    case K_LIGHT: {
        struct light l;
        light_values(c, i, seq, t_ms, &l);
        put(out, &n, "peopleCountTowards", 0, -1, l.towards);
        put(out, &n, "peopleCountAway", 0, -1, l.away);
        put(out, &n, "occupancy", 0, -1, l.occupancy_pct / 100.0);
        put(out, &n, "lampOn", 0, -1, l.lamp_on);
        break;
    }
    case K_WATER: {
        double days = (double)t_ms / 86400000.0;
        double period = 3 + 3 * dev_u(c, i, S_PERIOD);
        double temp, ph, dist;
        season = sin(2 * PI * (doy - 120) / 365.2425);
        temp = 11 + 8 * season + 0.4 * daily(h, 16) + (dev_u(c, i, S_OFF_T) - 0.5) +
               0.05 * msg_g(c, i, seq, S_N1);
        ph = 7.5 + 0.6 * (dev_u(c, i, S_OFF_PH) - 0.5) + 0.15 * sin(2 * PI * days / period) +
             0.02 * msg_g(c, i, seq, S_N2);
        dist = 0.6 + 0.6 * dev_u(c, i, S_OFF_LVL) +
               0.08 * sin(2 * PI * (days / 7 + dev_u(c, i, S_PERIOD))) +
               0.003 * msg_g(c, i, seq, S_N3);
        put(out, &n, "temperature", 1, LPP_TEMPERATURE, clamp(temp, 0, 30));
        put(out, &n, "pH", 2, LPP_ANALOG_INPUT, clamp(ph, 6, 9));
        put(out, &n, "distance", 3, LPP_DISTANCE, clamp(dist, 0.05, 5));
        put(out, &n, "batteryVoltage", 4, LPP_VOLTAGE, battery_volts(c, i, seq));
        break;
    }
    }
    return n;
}

/* --- JSON text writer ------------------------------------------------------------ */

/* A growable text buffer capped at MAX_MESSAGE; err latches. Messages are
 * written with literal keys and hand-formatted numbers: no printf on the
 * hot path, which keeps a message at a few microseconds. */
struct jw {
    char *p;
    size_t len, cap;
    int err;
};

static void jw_mem(struct jw *w, const char *s, size_t n)
{
    if (w->err)
        return;
    if (w->cap - w->len <= n) {
        size_t cap = w->cap ? w->cap : 2048;
        char *np;
        while (cap - w->len <= n)
            cap *= 2;
        if (cap > MAX_MESSAGE) {
            w->err = ERR_TOO_LARGE;
            return;
        }
        if ((np = realloc(w->p, cap)) == NULL) {
            w->err = ERR_NOMEM;
            return;
        }
        w->p = np;
        w->cap = cap;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
    w->p[w->len] = '\0';
}

#define JW_LIT(w, s) jw_mem((w), (s), sizeof(s) - 1)

static void jw_raw(struct jw *w, const char *s)
{
    jw_mem(w, s, strlen(s));
}

/* a JSON string: quotes, escapes for '"', '\\' and control characters */
static void jw_str(struct jw *w, const char *s)
{
    static const char HEX[] = "0123456789abcdef";
    const char *run = s;

    JW_LIT(w, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        jw_mem(w, run, (size_t)(s - run));
        if (ch == '"' || ch == '\\') {
            char esc[2] = {'\\', (char)ch};
            jw_mem(w, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', HEX[ch >> 4], HEX[ch & 15]};
            jw_mem(w, esc, 6);
        }
        run = s + 1;
    }
    jw_mem(w, run, (size_t)(s - run));
    JW_LIT(w, "\"");
}

static void jw_i64(struct jw *w, int64_t v)
{
    char tmp[24], *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    jw_mem(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* v with at most `decimals` (<= 6) digits after the point, trailing zeros
 * dropped: 6.25, -3, 0.41. |v| must be below 1e12. */
static void jw_fix(struct jw *w, double v, int decimals)
{
    static const int64_t POW10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    int64_t scaled = (int64_t)llround(v * (double)POW10[decimals]);
    uint64_t mag = scaled < 0 ? (uint64_t)0 - (uint64_t)scaled : (uint64_t)scaled;
    uint64_t ip = mag / (uint64_t)POW10[decimals], frac = mag % (uint64_t)POW10[decimals];
    char tmp[16];
    int d = decimals;

    if (scaled < 0)
        JW_LIT(w, "-");
    jw_i64(w, (int64_t)ip);
    while (d > 0 && frac % 10 == 0) {
        frac /= 10;
        d--;
    }
    if (d == 0)
        return;
    tmp[0] = '.';
    for (int k = d; k >= 1; k--) {
        tmp[k] = (char)('0' + frac % 10);
        frac /= 10;
    }
    jw_mem(w, tmp, (size_t)d + 1);
}

/* --- ids and times ---------------------------------------------------------------- */

static void hex_lower(char *out, uint64_t v, int digits)
{
    static const char HEX[] = "0123456789abcdef";
    for (int k = 0; k < digits; k++)
        out[k] = HEX[(v >> (4 * (digits - 1 - k))) & 0xF];
}

/* UUID text (36 chars + NUL) with version 4 and RFC 4122 variant bits */
static void uuid_text(char out[37], uint64_t hi, uint64_t lo)
{
    hi = (hi & ~UINT64_C(0xF000)) | UINT64_C(0x4000);
    lo = (lo & ~(UINT64_C(3) << 62)) | (UINT64_C(2) << 62);
    hex_lower(out, hi >> 32, 8);
    out[8] = '-';
    hex_lower(out + 9, (hi >> 16) & 0xFFFF, 4);
    out[13] = '-';
    hex_lower(out + 14, hi & 0xFFFF, 4);
    out[18] = '-';
    hex_lower(out + 19, lo >> 48, 4);
    out[23] = '-';
    hex_lower(out + 24, lo & 0xFFFFFFFFFFFFULL, 12);
    out[36] = '\0';
}

/* deterministic UUID of a named thing of the seed (tenant, application...) */
static void seed_uuid(const struct sim_conf *c, enum stream s, int k, char out[37])
{
    uuid_text(out, hash4(c->seed, (uint64_t)s, (uint64_t)k, 1),
              hash4(c->seed, (uint64_t)s, (uint64_t)k, 2));
}

/* ChirpStack's time form: 2026-06-12T08:15:02.118734+00:00 */
static void time_cs(int64_t t_ms, unsigned micro3, char out[40])
{
    char iso[TM_ISO_LEN];
    tm_format(t_ms, iso); /* YYYY-MM-DDThh:mm:ss.fffZ */
    memcpy(out, iso, 23);
    out[23] = (char)('0' + micro3 / 100 % 10);
    out[24] = (char)('0' + micro3 / 10 % 10);
    out[25] = (char)('0' + micro3 % 10);
    memcpy(out + 26, "+00:00", 7);
}

/* --- message parts ----------------------------------------------------------------- */

struct msgctx {
    const struct sim_conf *c;
    int i;
    long seq;
    int64_t t_ms;
    enum kind kind;
    struct sim_device dev;
    char tenant_id[37], app_id[37], prof_id[37];
};

static const long FREQS[8] = {868100000, 868300000, 868500000, 867100000,
                              867300000, 867500000, 867700000, 867900000};

struct rx {
    int gw; /* pool index 0..7 */
    int rssi;
    double snr;
    int channel;  /* 0..7 */
    int64_t t_ms; /* gateway reception time */
};

static int radio(const struct msgctx *m, struct rx rx[3])
{
    const struct sim_conf *c = m->c;
    uint64_t hn = msg_h(c, m->i, m->seq, S_N_GW);
    int n = 1 + (int)(hn % 3);
    int first = (int)(msg_h(c, m->i, m->seq, S_GW) % N_GATEWAYS);
    int channel = (int)(msg_h(c, m->i, m->seq, S_CHAN) % 8);
    double base = -75 - 35 * dev_u(c, m->i, S_LINK);

    for (int k = 0; k < n; k++) {
        double rssi =
            base - 6 * k +
            3 * gauss(hash4(c->seed, (uint64_t)m->i, (uint64_t)m->seq + 1, S_RSSI + 100u * k));
        double snr =
            0.35 * (rssi + 110) +
            1.5 * gauss(hash4(c->seed, (uint64_t)m->i, (uint64_t)m->seq + 1, S_SNR + 100u * k));
        rx[k].gw = (first + 3 * k) % N_GATEWAYS;
        rx[k].rssi = (int)clamp(round(rssi), -120, -60);
        rx[k].snr = clamp(round(snr * 4) / 4, -10, 12);
        rx[k].channel = channel;
        rx[k].t_ms = m->t_ms;
    }
    return n;
}

static int spreading_factor(const struct msgctx *m)
{
    return 7 + (int)(dev_u(m->c, m->i, S_SF) * 4); /* SF7..SF10 */
}

static void gateway_eui(const struct sim_conf *c, int gw, char out[17])
{
    hex_lower(
        out, UINT64_C(0x0016c001ff000000) | (hash4(c->seed, S_GW, (uint64_t)gw, 3) & 0xFFFFFF), 16);
    out[16] = '\0';
}

static void gateway_pos(const struct sim_conf *c, int gw, double *lat, double *lon)
{
    double a = 2 * PI * gw / N_GATEWAYS, r = c->radius_m * 0.8;
    *lat = c->lat + r * cos(a) / 111320.0;
    *lon = c->lon + r * sin(a) / (111320.0 * cos(c->lat * PI / 180));
}

/* The application payload of an uplink: LPP (air, water) or the light's
 * binary frame. Returns its length. */
static size_t payload(const struct msgctx *m, uint8_t *buf, size_t cap, struct light *l)
{
    struct sim_reading r[SIM_MAX_READINGS];
    struct lppenc w;
    int n;

    if (m->kind == K_LIGHT) {
        light_values(m->c, m->i, m->seq, m->t_ms, l);
        /* counts stay far below 65535 (busy <= 120 per interval) */
        buf[0] = (uint8_t)(l->towards >> 8);
        buf[1] = (uint8_t)(l->towards & 0xFF);
        buf[2] = (uint8_t)(l->away >> 8);
        buf[3] = (uint8_t)(l->away & 0xFF);
        buf[4] = (uint8_t)l->occupancy_pct;
        buf[5] = (uint8_t)l->lamp_on;
        return 6;
    }
    n = sim_readings(m->c, m->i, m->seq, m->t_ms, r);
    lppenc_init(&w, buf, cap);
    for (int k = 0; k < n; k++)
        if (lppenc_put1(&w, (uint8_t)r[k].channel, r[k].lpp_type, r[k].value) != 0)
            return 0; /* cannot happen: every model is clamped to its type's range */
    return w.len;
}

static void light_object(struct jw *w, const struct light *l)
{
    JW_LIT(w, "{\"peopleCount\":");
    jw_i64(w, l->towards + l->away);
    JW_LIT(w, ",\"peopleCountTowards\":");
    jw_i64(w, l->towards);
    JW_LIT(w, ",\"peopleCountAway\":");
    jw_i64(w, l->away);
    JW_LIT(w, ",\"occupancy\":");
    jw_fix(w, l->occupancy_pct / 100.0, 2);
    if (l->lamp_on)
        JW_LIT(w, ",\"lampOn\":true}");
    else
        JW_LIT(w, ",\"lampOn\":false}");
}

static void cs_device_info(struct jw *w, const struct msgctx *m)
{
    const struct sim_conf *c = m->c;

    JW_LIT(w, "\"deviceInfo\":{\"tenantId\":\"");
    jw_raw(w, m->tenant_id);
    JW_LIT(w, "\",\"tenantName\":");
    jw_str(w, c->tenant != NULL && c->tenant[0] ? c->tenant : "pilotlight-sim");
    JW_LIT(w, ",\"applicationId\":\"");
    jw_raw(w, m->app_id);
    JW_LIT(w, "\",\"applicationName\":\"");
    jw_raw(w, KINDS[m->kind].app);
    JW_LIT(w, "\",\"deviceProfileId\":\"");
    jw_raw(w, m->prof_id);
    JW_LIT(w, "\",\"deviceProfileName\":\"");
    jw_raw(w, KINDS[m->kind].profile);
    JW_LIT(w, "\",\"deviceName\":\"");
    jw_raw(w, m->dev.name);
    JW_LIT(w, "\",\"devEui\":\"");
    jw_raw(w, m->dev.dev_eui);
    JW_LIT(w, "\",\"deviceClassEnabled\":\"CLASS_A\",\"tags\":{\"kind\":\"");
    jw_raw(w, m->dev.kind);
    JW_LIT(w, "\"}}");
}

static void cs_head(struct jw *w, const struct msgctx *m)
{
    char id[37], when[40];
    uuid_text(id, rng_next(), rng_next());
    time_cs(m->t_ms, (unsigned)(msg_h(m->c, m->i, m->seq, S_MICRO) % 1000), when);
    JW_LIT(w, "{\"deduplicationId\":\"");
    jw_raw(w, id);
    JW_LIT(w, "\",\"time\":\"");
    jw_raw(w, when);
    JW_LIT(w, "\",");
    cs_device_info(w, m);
}

static void cs_up(struct jw *w, const struct msgctx *m)
{
    const struct sim_conf *c = m->c;
    uint8_t pl[64];
    char b64[B64_ENCODED_LEN(sizeof(pl)) + 1], addr[9], when[40], eui[17];
    struct light l;
    struct rx rx[3];
    size_t len = payload(m, pl, sizeof(pl), &l);
    int n_rx = radio(m, rx), sf = spreading_factor(m);

    b64_encode(pl, len, b64, sizeof(b64));
    hex_lower(addr,
              UINT64_C(0x260b0000) | (hash4(c->seed, (uint64_t)m->i, 0xdddd, S_ADDR) & 0xFFFF), 8);
    addr[8] = '\0';
    cs_head(w, m);
    JW_LIT(w, ",\"devAddr\":\"");
    jw_raw(w, addr);
    JW_LIT(w, "\",\"adr\":true,\"dr\":");
    jw_i64(w, 12 - sf);
    if (m->seq > 0) { /* protobuf JSON omits zero values */
        JW_LIT(w, ",\"fCnt\":");
        jw_i64(w, m->seq);
    }
    JW_LIT(w, ",\"fPort\":");
    jw_i64(w, KINDS[m->kind].f_port);
    JW_LIT(w, ",\"confirmed\":false,\"data\":\"");
    jw_raw(w, b64);
    JW_LIT(w, "\"");
    if (m->kind == K_LIGHT) {
        JW_LIT(w, ",\"object\":");
        light_object(w, &l);
    }
    JW_LIT(w, ",\"rxInfo\":[");
    for (int k = 0; k < n_rx; k++) {
        double glat, glon;
        gateway_eui(c, rx[k].gw, eui);
        gateway_pos(c, rx[k].gw, &glat, &glon);
        time_cs(rx[k].t_ms - 8 + (int64_t)(msg_h(c, m->i, m->seq, S_NS) % 6),
                (unsigned)(msg_h(c, m->i, m->seq, S_NS + 100u * (unsigned)k) % 1000), when);
        if (k)
            JW_LIT(w, ",");
        JW_LIT(w, "{\"gatewayId\":\"");
        jw_raw(w, eui);
        JW_LIT(w, "\",\"uplinkId\":");
        jw_i64(w, (int64_t)(msg_h(c, m->i, m->seq, S_GW + 100u * (unsigned)k) & 0xFFFFFFFF));
        JW_LIT(w, ",\"nsTime\":\"");
        jw_raw(w, when);
        JW_LIT(w, "\",\"rssi\":");
        jw_i64(w, rx[k].rssi);
        if (rx[k].snr != 0) {
            JW_LIT(w, ",\"snr\":");
            jw_fix(w, rx[k].snr, 2);
        }
        JW_LIT(w, ",\"channel\":");
        jw_i64(w, rx[k].channel);
        JW_LIT(w, ",\"location\":{\"latitude\":");
        jw_fix(w, glat, 6);
        JW_LIT(w, ",\"longitude\":");
        jw_fix(w, glon, 6);
        JW_LIT(w, "},\"context\":\"AAECAw==\",\"metadata\":{\"region_common_name\":\"EU868\","
                  "\"region_config_id\":\"eu868\"},\"crcStatus\":\"CRC_OK\"}");
    }
    JW_LIT(w, "],\"txInfo\":{\"frequency\":");
    jw_i64(w, FREQS[rx[0].channel]);
    JW_LIT(w, ",\"modulation\":{\"lora\":{\"bandwidth\":125000,\"spreadingFactor\":");
    jw_i64(w, sf);
    JW_LIT(w, ",\"codeRate\":\"CR_4_5\"}}}}");
}

static void cs_status(struct jw *w, const struct msgctx *m)
{
    cs_head(w, m);
    JW_LIT(w, ",\"margin\":");
    jw_i64(w, 2 + (int64_t)(msg_h(m->c, m->i, m->seq, S_MARGIN) % 18));
    if (m->kind == K_LIGHT) {
        JW_LIT(w, ",\"externalPowerSource\":true}");
        return;
    }
    JW_LIT(w, ",\"externalPowerSource\":false,\"batteryLevel\":");
    jw_fix(w, clamp((battery_volts(m->c, m->i, m->seq) - 3.0) / 1.2 * 100, 0, 100), 2);
    JW_LIT(w, "}");
}

/* 26 Crockford base32 characters, the shape of TTS correlation ids */
static void ulid_text(char out[27])
{
    static const char B32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint64_t a = rng_next(), b = rng_next();
    for (int k = 0; k < 13; k++) {
        out[k] = B32[(a >> (5 * k)) & 31];
        out[13 + k] = B32[(b >> (5 * k)) & 31];
    }
    out[26] = '\0';
}

static void tts_up(struct jw *w, const struct msgctx *m)
{
    const struct sim_conf *c = m->c;
    uint8_t pl[64];
    char b64[B64_ENCODED_LEN(sizeof(pl)) + 1], eui_up[17], gw_eui[17], when[TM_ISO_LEN], corr[27];
    struct light l;
    struct rx rx[3];
    size_t len = payload(m, pl, sizeof(pl), &l);
    int n_rx = radio(m, rx), sf = spreading_factor(m);

    b64_encode(pl, len, b64, sizeof(b64));
    for (int k = 0; k < 17; k++)
        eui_up[k] = (char)(m->dev.dev_eui[k] >= 'a' ? m->dev.dev_eui[k] - 32 : m->dev.dev_eui[k]);
    ulid_text(corr);
    JW_LIT(w, "{\"end_device_ids\":{\"device_id\":\"");
    jw_raw(w, m->dev.name);
    JW_LIT(w, "\",\"application_ids\":{\"application_id\":\"");
    jw_raw(w, KINDS[m->kind].app);
    JW_LIT(w, "\"},\"dev_eui\":\"");
    jw_raw(w, eui_up);
    JW_LIT(w, "\",\"join_eui\":\"0000000000000000\"},\"correlation_ids\":[\"as:up:");
    jw_raw(w, corr);
    tm_format(m->t_ms + 180 + (int64_t)(msg_h(c, m->i, m->seq, S_NS) % 60), when);
    JW_LIT(w, "\"],\"received_at\":\"");
    jw_raw(w, when);
    JW_LIT(w, "\",\"uplink_message\":{\"f_port\":");
    jw_i64(w, KINDS[m->kind].f_port);
    if (m->seq > 0) {
        JW_LIT(w, ",\"f_cnt\":");
        jw_i64(w, m->seq);
    }
    JW_LIT(w, ",\"frm_payload\":\"");
    jw_raw(w, b64);
    JW_LIT(w, "\"");
    if (m->kind == K_LIGHT) {
        JW_LIT(w, ",\"decoded_payload\":");
        light_object(w, &l);
    }
    JW_LIT(w, ",\"rx_metadata\":[");
    for (int k = 0; k < n_rx; k++) {
        gateway_eui(c, rx[k].gw, gw_eui);
        for (int d = 0; d < 16; d++)
            if (gw_eui[d] >= 'a')
                gw_eui[d] = (char)(gw_eui[d] - 32);
        tm_format(rx[k].t_ms - 10, when);
        if (k)
            JW_LIT(w, ",");
        JW_LIT(w, "{\"gateway_ids\":{\"gateway_id\":\"sim-gw-");
        jw_i64(w, rx[k].gw + 1);
        JW_LIT(w, "\",\"eui\":\"");
        jw_raw(w, gw_eui);
        JW_LIT(w, "\"},\"time\":\"");
        jw_raw(w, when);
        JW_LIT(w, "\",\"timestamp\":");
        jw_i64(w, (int64_t)(msg_h(c, m->i, m->seq, S_GW + 100u * (unsigned)k) & 0xFFFFFFFF));
        JW_LIT(w, ",\"rssi\":");
        jw_i64(w, rx[k].rssi);
        JW_LIT(w, ",\"channel_rssi\":");
        jw_i64(w, rx[k].rssi);
        if (rx[k].snr != 0) {
            JW_LIT(w, ",\"snr\":");
            jw_fix(w, rx[k].snr, 2);
        }
        if (rx[k].channel) {
            JW_LIT(w, ",\"channel_index\":");
            jw_i64(w, rx[k].channel);
        }
        JW_LIT(w, "}");
    }
    JW_LIT(w, "],\"settings\":{\"data_rate\":{\"lora\":{\"bandwidth\":125000,"
              "\"spreading_factor\":");
    jw_i64(w, sf);
    JW_LIT(w, ",\"coding_rate\":\"4/5\"}},\"frequency\":\"");
    jw_i64(w, FREQS[rx[0].channel]);
    tm_format(m->t_ms, when);
    JW_LIT(w, "\"},\"received_at\":\"");
    jw_raw(w, when);
    JW_LIT(w, "\",\"consumed_airtime\":\"");
    jw_fix(w, (double)((int64_t)1 << (sf - 7)) * 0.061696, 6);
    JW_LIT(w, "s\"}}");
}

int sim_message(const struct sim_conf *c, int i, long seq, int64_t t_ms, int tts, char **json,
                char *topic, size_t topic_cap, struct err *e)
{
    struct msgctx m;
    struct jw w = {0};
    int status, n;

    *json = NULL;
    if (i < 0 || seq < 0 || seq > MAX_SEQ)
        return err_set(e, ERR_INVALID_REQUEST, "device index or message number out of range");
    memset(&m, 0, sizeof(m));
    m.c = c;
    m.i = i;
    m.seq = seq;
    m.t_ms = t_ms;
    m.kind = kind_of(i);
    sim_device_at(c, i, &m.dev);
    status = !tts && seq % STATUS_EVERY == STATUS_EVERY - 1;
    if (tts)
        n = snprintf(topic, topic_cap, "v3/%s@ttn/devices/%s/up", KINDS[m.kind].app, m.dev.name);
    else {
        seed_uuid(c, S_TENANT, 0, m.tenant_id);
        seed_uuid(c, S_APP, (int)m.kind, m.app_id);
        seed_uuid(c, S_PROF, (int)m.kind, m.prof_id);
        n = snprintf(topic, topic_cap, "application/%s/device/%s/event/%s", m.app_id, m.dev.dev_eui,
                     status ? "status" : "up");
    }
    if (n < 0 || (size_t)n >= topic_cap)
        return err_set(e, ERR_TOO_LARGE, "topic buffer too small");
    if (tts)
        tts_up(&w, &m);
    else if (status)
        cs_status(&w, &m);
    else
        cs_up(&w, &m);
    if (w.err) {
        free(w.p);
        return err_set(e, w.err, w.err == ERR_NOMEM ? "out of memory" : "message too large");
    }
    *json = w.p;
    return 0;
}

/* --- profiles and devices ------------------------------------------------------------ */

/* The profiles in /work/briefs/profile.md's format. Water level: the
 * sensors hang 3.0 m above the canal bed and measure the distance down to
 * the surface, so level = 3.0 - distance (scale -1, offset 3). */
static const char PROFILES[] =
    "["
    "{\"id\":\"sim-air-quality-lpp\","
    "\"description\":\"Simulated air-quality node: Cayenne LPP on fPort 1 (pilotlight simulate)\","
    "\"codec\":\"cayenne-lpp\",\"entityType\":\"AirQualityObserved\","
    "\"entityIdPattern\":\"urn:ngsi-ld:AirQualityObserved:{name}\","
    "\"fields\":["
    "{\"from\":\"temperature_1\",\"attribute\":\"temperature\",\"unitCode\":\"CEL\"},"
    "{\"from\":\"humidity_2\",\"attribute\":\"relativeHumidity\",\"scale\":0.01},"
    "{\"from\":\"analog_input_3\",\"attribute\":\"pm25\",\"unitCode\":\"GQ\"},"
    "{\"from\":\"analog_input_4\",\"attribute\":\"pm10\",\"unitCode\":\"GQ\"},"
    "{\"from\":\"analog_input_5\",\"attribute\":\"no2\",\"unitCode\":\"GQ\"},"
    "{\"from\":\"voltage_6\",\"attribute\":\"batteryVoltage\",\"unitCode\":\"VLT\"}],"
    "\"unmapped\":\"ignore\",\"staticAttributes\":{\"dataProvider\":\"pilotlight simulator\"},"
    "\"deviceEntity\":true},"
    "{\"id\":\"sim-light-counter\","
    "\"description\":\"Simulated light post with pedestrian counter: network-decoded, fPort 2 "
    "(pilotlight simulate)\","
    "\"codec\":\"network-decoded\",\"entityType\":\"CrowdFlowObserved\","
    "\"entityIdPattern\":\"urn:ngsi-ld:CrowdFlowObserved:{name}\","
    "\"fields\":["
    "{\"from\":\"peopleCount\",\"attribute\":\"peopleCount\"},"
    "{\"from\":\"peopleCountTowards\",\"attribute\":\"peopleCountTowards\"},"
    "{\"from\":\"peopleCountAway\",\"attribute\":\"peopleCountAway\"},"
    "{\"from\":\"occupancy\",\"attribute\":\"occupancy\"},"
    "{\"from\":\"lampOn\",\"attribute\":\"lampOn\"}],"
    "\"unmapped\":\"ignore\",\"staticAttributes\":{\"dataProvider\":\"pilotlight simulator\"},"
    "\"deviceEntity\":true},"
    "{\"id\":\"sim-water-lpp\","
    "\"description\":\"Simulated canal water sensor: Cayenne LPP on fPort 3 (pilotlight "
    "simulate)\","
    "\"codec\":\"cayenne-lpp\",\"entityType\":\"WaterQualityObserved\","
    "\"entityIdPattern\":\"urn:ngsi-ld:WaterQualityObserved:{name}\","
    "\"fields\":["
    "{\"from\":\"temperature_1\",\"attribute\":\"temperature\",\"unitCode\":\"CEL\"},"
    "{\"from\":\"analog_input_2\",\"attribute\":\"pH\"},"
    "{\"from\":\"distance_3\",\"attribute\":\"waterLevel\",\"unitCode\":\"MTR\","
    "\"scale\":-1,\"offset\":3.0},"
    "{\"from\":\"voltage_4\",\"attribute\":\"batteryVoltage\",\"unitCode\":\"VLT\"}],"
    "\"unmapped\":\"ignore\",\"staticAttributes\":{\"dataProvider\":\"pilotlight simulator\"},"
    "\"deviceEntity\":true}"
    "]";

cJSON *sim_profiles_json(void)
{
    return cJSON_Parse(PROFILES);
}

cJSON *sim_devices_json(const struct sim_conf *c)
{
    cJSON *arr = cJSON_CreateArray();

    if (arr == NULL)
        return NULL;
    for (int i = 0; i < c->n_devices; i++) {
        struct sim_device d;
        char desc[96];
        cJSON *dev, *loc, *coords, *tags;

        sim_device_at(c, i, &d);
        snprintf(desc, sizeof(desc), "%s %d (pilotlight simulate, seed %llu)",
                 KINDS[kind_of(i)].what, i, (unsigned long long)c->seed);
        if ((dev = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(arr, dev) ||
            !cJSON_AddStringToObject(dev, "devEui", d.dev_eui) ||
            !cJSON_AddStringToObject(dev, "profile", d.profile) ||
            !cJSON_AddStringToObject(dev, "name", d.name) ||
            (loc = cJSON_AddObjectToObject(dev, "location")) == NULL ||
            !cJSON_AddStringToObject(loc, "type", "Point") ||
            (coords = cJSON_AddArrayToObject(loc, "coordinates")) == NULL ||
            !cJSON_AddItemToArray(coords, cJSON_CreateNumber(d.lon)) ||
            !cJSON_AddItemToArray(coords, cJSON_CreateNumber(d.lat)) ||
            !cJSON_AddStringToObject(dev, "description", desc) ||
            (tags = cJSON_AddObjectToObject(dev, "tags")) == NULL ||
            !cJSON_AddStringToObject(tags, "kind", d.kind) ||
            !cJSON_AddStringToObject(tags, "source", "pilotlight-simulate"))
            goto fail;
    }
    return arr;
fail:
    cJSON_Delete(arr);
    return NULL;
}
