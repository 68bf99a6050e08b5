/*
 * log.h - the event log: one line per event on stderr,
 * "2026-11-23T01:32:25.123Z INFO  store: opened ./data/pilotlight.db".
 * The level is checked before anything is formatted, so a disabled
 * log_msg costs one comparison. Any thread; lines are written with one
 * write(2) each so they do not interleave.
 */
#ifndef PL_LOG_H
#define PL_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

extern enum log_level log_level_current;

/* Parse "debug", "info", "warn", "error", "off"; -1 if unknown. */
int log_level_parse(const char *name);
void log_set_level(enum log_level level);

void log_write(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_msg(level, ...)                                                    \
    do {                                                                       \
        if ((level) >= log_level_current)                                      \
            log_write((level), __VA_ARGS__);                                   \
    } while (0)

#endif
