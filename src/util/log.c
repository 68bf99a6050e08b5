/*
 * log.c - see log.h. Formats into a stack buffer and writes it with a
 * single write(2) (atomic for lines under PIPE_BUF on pipes).
 */
#include "util/log.h"
#include "util/time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum log_level log_level_current = LOG_INFO;

int log_level_parse(const char *name)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

void log_set_level(enum log_level level)
{
    log_level_current = level;
}

void log_write(enum log_level level, const char *fmt, ...)
{
    static const char *tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR", "OFF  "};
    char line[1024], ts[TM_ISO_LEN];
    va_list ap;
    int n;

    tm_format(tm_now_ms(), ts);
    n = snprintf(line, sizeof(line), "%s %s ", ts, tags[level > LOG_OFF ? LOG_OFF : level]);
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    /* one event, one line: flatten embedded newlines */
    for (int i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
