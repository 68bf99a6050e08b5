/*
 * auth.c - who may call the pilotlight (non-NGSI-LD) endpoints, in one
 * place so the governance issue's tokens and roles replace it here.
 *
 * Admin API (/pilotlight/v1/...): "Authorization: Bearer <admin secret>",
 * the secret generated at first start into <data>/admin.secret (mode 0600)
 * and printed once in the log. Webhooks: "Authorization: Bearer <ingest
 * secret>" of the request's tenant (set through the admin API, stored
 * hashed). Comparisons are constant-time; a failure is 401 (the http
 * layer adds WWW-Authenticate).
 */
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ingest/ingest.h"
#include "util/log.h"
#include "util/sha256.h"

/* The token of an "Authorization: Bearer <token>" header, or NULL. */
static const char *bearer(struct req *r)
{
    const char *h = req_header(r, "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

static int unauthorized(struct req *r, const char *what)
{
    return err_set(&r->err, ERR_UNAUTHORIZED, "%s", what);
}

int api_auth_admin(struct req *r)
{
    struct app *app = api_app(r);
    const char *tok = bearer(r);
    size_t n = strlen(app->admin_secret);
    if (n == 0)
        return err_set(&r->err, ERR_UNAVAILABLE, "the admin API is not configured");
    if (tok == NULL)
        return unauthorized(r, "the admin API needs 'Authorization: Bearer <admin secret>' "
                               "(the secret is in <data dir>/admin.secret)");
    if (strlen(tok) != n || !mem_equal_ct(tok, app->admin_secret, n))
        return unauthorized(r, "wrong admin secret");
    r->caller.role = API_ROLE_ADMIN;
    return 0;
}

int api_auth_ingest(struct req *r)
{
    struct app *app = api_app(r);
    const char *tok = bearer(r);
    struct err e = {0};
    if (app->ingest == NULL)
        return err_set(&r->err, ERR_UNAVAILABLE, "ingest is not running");
    if (tok == NULL)
        return unauthorized(r, "webhooks need 'Authorization: Bearer <ingest secret>' of the "
                               "tenant (set with PUT /pilotlight/v1/ingest/secret)");
    if (ingest_secret_check(app->ingest, r->tenant, tok, &e) != 0)
        return unauthorized(r, e.detail);
    r->caller.role = API_ROLE_INGEST;
    return 0;
}

int api_admin_secret_load(const char *data_dir, char out[65], struct err *e)
{
    char path[600], buf[128];
    FILE *f;
    int fd;
    size_t n;

    out[0] = '\0';
    snprintf(path, sizeof(path), "%s/admin.secret", data_dir);
    if ((f = fopen(path, "r")) != NULL) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        if (strlen(buf) < 16 || strlen(buf) > 64)
            return err_set(e, ERR_BAD_DATA, "%s must hold 16 to 64 characters", path);
        memcpy(out, buf, strlen(buf) + 1);
        return 0;
    }
    if (errno != ENOENT)
        return err_set(e, ERR_IO, "cannot read %s: %s", path, strerror(errno));
    if (secret_new(buf) != 0)
        return err_set(e, ERR_INTERNAL, "no randomness for the admin secret");
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0)
        return err_set(e, ERR_IO, "cannot create %s: %s", path, strerror(errno));
    n = strlen(buf);
    buf[n] = '\n';
    if (write(fd, buf, n + 1) != (ssize_t)(n + 1) || fsync(fd) != 0) {
        close(fd);
        unlink(path);
        return err_set(e, ERR_IO, "cannot write %s", path);
    }
    close(fd);
    buf[n] = '\0';
    memcpy(out, buf, n + 1);
    log_msg(LOG_WARN, "admin API secret generated (shown once; kept in %s): %s", path, out);
    return 0;
}
