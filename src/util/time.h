/*
 * time.h - ISO 8601 date-times and durations as int64 milliseconds since the
 * Unix epoch (UTC). Pure functions, no allocation, any thread.
 */
#ifndef PL_TIME_H
#define PL_TIME_H

#include <stdint.h>
#include <stddef.h>

#define TM_ISO_LEN 32 /* buffer size for tm_format */

/* Parse an ISO 8601 date-time "YYYY-MM-DDThh:mm:ss[.fff...][Z|+hh:mm|-hh:mm]"
 * (the zone may be omitted: UTC). Also accepts a plain date "YYYY-MM-DD"
 * (midnight UTC). Strict: the whole string must match, fields in range.
 * Returns 0 and *ms, or ERR_BAD_DATA. */
int tm_parse(const char *s, int64_t *ms);

/* Parse a time of day "hh:mm:ss[.fff][Z]" into milliseconds since midnight. */
int tm_parse_time(const char *s, int64_t *ms);

/* Is s a date-time / a date / a time of day, as tm_parse(_time) accepts? */
int tm_is_datetime(const char *s);

/* Format as "YYYY-MM-DDThh:mm:ss.fffZ" into out (TM_ISO_LEN bytes). */
void tm_format(int64_t ms, char out[TM_ISO_LEN]);

/* ms plus n calendar months (UTC; n may be negative), the day of month
 * clamped to the target month's last day (Jan 31 + 1 month = Feb 28/29). */
int64_t tm_add_months(int64_t ms, int64_t n);

/* Wall-clock now, ms since the epoch. */
int64_t tm_now_ms(void);

/* Monotonic clock, microseconds (for durations and latency only). */
int64_t tm_mono_us(void);

/* Parse an ISO 8601 duration "PnYnMnWnDTnHnMnS" (fractional seconds allowed;
 * a year counts 365 days, a month 30). Returns 0 and *ms, or ERR_BAD_DATA. */
int tm_parse_duration(const char *s, int64_t *ms);

#endif
