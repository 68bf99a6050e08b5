/*
 * buf.h - a growable byte buffer with a hard cap (after curl's dynbuf).
 * Every buffer that grows from network input is a struct buf with a cap:
 * appending past the cap fails with ERR_TOO_LARGE instead of growing.
 * The content is always NUL-terminated. Not thread-safe (one owner).
 */
#ifndef PL_BUF_H
#define PL_BUF_H

#include <stddef.h>

struct buf {
    char *data; /* NUL-terminated; NULL until the first append */
    size_t len;
    size_t cap_alloc;
    size_t max; /* hard cap on len */
};

void buf_init(struct buf *b, size_t max);
/* Make room for n more bytes (growth happens once, not per append). */
int buf_reserve(struct buf *b, size_t n);
/* Append; ERR_TOO_LARGE past max, ERR_NOMEM. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_appends(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the content to the caller (malloc'd, caller frees; "" if empty) and reset. */
char *buf_detach(struct buf *b);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
