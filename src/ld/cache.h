/*
 * cache.h - the @context cache: remote context documents by URL, memoized
 * active contexts, and the data behind the NGSI-LD /jsonldContexts API
 * (ETSI GS CIM 009, 5.13).
 *
 * Documents have one of three kinds (5.13.1):
 *   "Cached"            fetched from its URL (libcurl) when a request used it;
 *   "Hosted"            added with POST /jsonldContexts, served by this broker
 *                       at hosted_base_url + localId, resolved without a fetch;
 *   "ImplicitlyCreated" made by the broker for an inline/array @context it must
 *                       refer to by URL later (e.g. a subscription's), served
 *                       like a Hosted one; its maker deletes it when no longer
 *                       needed (notify: with the last subscription naming it).
 * The built-in core context is listed as a "Cached" entry (URL LD_CORE_URL,
 * localId LD_CACHE_CORE_ID); it is never fetched and cannot be deleted.
 *
 * Persistence: every document added at run time (fetched, hosted, implicit,
 * reloaded) is handed to the persist hook, every removal to unpersist, so a
 * store can write them; at startup ld_cache_preload puts them back, and the
 * broker then works offline for every context it has seen.
 *
 * Thread safety: all functions may be called from any thread. One mutex
 * guards the tables; it is never held during a fetch or a hook call, so a
 * slow remote server delays only the requests that need its document. Two
 * requests needing the same unknown URL at the same moment may both fetch it
 * (the second result is dropped).
 */
#ifndef PL_LD_CACHE_H
#define PL_LD_CACHE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "ld/ld.h"
#include "util/err.h"

struct ld_cache;

#define LD_KIND_CACHED "Cached"
#define LD_KIND_HOSTED "Hosted"
#define LD_KIND_IMPLICIT "ImplicitlyCreated"

/* localId of the core context in listings and GET /jsonldContexts/{id}. */
#define LD_CACHE_CORE_ID "ngsi-ld-core-context"

struct ld_cache_opts {
    /* Prefix of the URL of Hosted and ImplicitlyCreated contexts, e.g.
     * "http://localhost:1026/ngsi-ld/v1/jsonldContexts/" (a '/' is appended
     * if missing). NULL: "http://localhost/ngsi-ld/v1/jsonldContexts/". */
    const char *hosted_base_url;
    long fetch_timeout_ms; /* whole fetch, connect included; 0: 5000 */
    size_t max_doc_bytes;  /* fetched or hosted document size; 0: 1 MiB */
    size_t max_entries;    /* documents held; 0: 1024. Cached ones are evicted
                            * least recently used first; Hosted never are */
    size_t max_memo;       /* memoized active contexts (LRU); 0: 256 */
    /* Persistence hooks (may be NULL), called without the cache lock.
     * kind is one of LD_KIND_*; text is the document as served. */
    void (*persist)(void *ud, const char *url, const char *kind, const char *text);
    void (*unpersist)(void *ud, const char *url);
    void *hook_ud;
};

/* Create a cache (o may be NULL for all defaults; strings are copied).
 * Initialises libcurl once per process. Returns 0 and *out, or ERR_NOMEM /
 * ERR_INTERNAL (libcurl init) with nothing allocated. */
int ld_cache_new(const struct ld_cache_opts *o, struct ld_cache **out);

/* Free the cache and its documents. Active contexts handed out stay valid
 * (they are reference counted). Accepts NULL. No hooks are called. */
void ld_cache_free(struct ld_cache *c);

/* Resolve an @context value (NULL, null, a URL string, an object or an array)
 * to an active context, as ld_ctx_build does, with remote documents taken
 * from the cache or fetched (http/https only, Accept: application/ld+json,
 * application/json; timeout and size cap from the options; redirects
 * followed up to 3), stored as "Cached" and persisted. Hosted and
 * ImplicitlyCreated URLs resolve locally (also when named through another
 * host name: any URL ending in "/jsonldContexts/{localId}" of one of them);
 * an unknown URL under hosted_base_url fails without a fetch. Results are memoized by the JSON
 * text of the value (bounded LRU), so a repeated @context costs one hash
 * lookup. Returns 0 and *out (caller releases with ld_ctx_release), or
 * ERR_LD_CONTEXT (a document could not be obtained: unreachable, HTTP error,
 * timeout, too large, not a JSON-LD context), ERR_BAD_DATA (invalid
 * context) or ERR_NOMEM, with the reason in e. Every use of a document
 * counts as a hit (numberOfHits, lastUsage). */
int ld_cache_resolve(struct ld_cache *c, const cJSON *context, struct ld_ctx **out,
                     struct err *e);

/* At startup: put back a document the persist hook saved (no fetch, no
 * persist call, not counted against max_entries). For Hosted and
 * ImplicitlyCreated documents the localId is the last path segment of url and
 * the URL is re-based on hosted_base_url. Returns 0, ERR_BAD_DATA (unknown
 * kind, text not a JSON object with "@context", bad URL) or ERR_NOMEM. */
int ld_cache_preload(struct ld_cache *c, const char *url, const char *kind, const char *text);

/* POST /jsonldContexts: host the document text (a JSON object with an
 * "@context" member; the member must be a valid context, remote parts are
 * resolved now). On success returns 0, *local_id_out and (if url_out is not
 * NULL) *url_out, both malloc'd; the document is persisted as "Hosted".
 * Errors: ERR_TOO_LARGE (over max_doc_bytes), ERR_INVALID_REQUEST (not JSON,
 * not an object, no "@context"), ERR_BAD_DATA (invalid context),
 * ERR_LD_CONTEXT (a context it refers to cannot be loaded), ERR_UNAVAILABLE
 * (max_entries reached and nothing evictable), ERR_NOMEM. */
int ld_cache_host(struct ld_cache *c, const char *text, char **local_id_out, char **url_out,
                  struct err *e);

/* Create (or find, for the same value) an ImplicitlyCreated document
 * {"@context": context} and return its URL in *url_out (malloc'd), for a
 * broker-made reference to an inline or array @context (subscriptions,
 * notifications). context must be a valid context value. Errors as
 * ld_cache_host (ERR_BAD_DATA for an invalid context). */
int ld_cache_implicit(struct ld_cache *c, const cJSON *context, char **url_out, struct err *e);

/* GET /jsonldContexts: all documents (the core first, then in the order they
 * were added), optionally only those of kind_filter (NULL or "" for all).
 * details == 0: *out is an array of URL strings; otherwise an array of
 * objects {"URL", "localId", "kind", "createdAt"} plus "lastUsage" and
 * "numberOfHits" for Cached and ImplicitlyCreated ones (5.13.3). Caller
 * frees *out with cJSON_Delete. Errors: ERR_BAD_DATA (unknown kind),
 * ERR_NOMEM. */
int ld_cache_list(struct ld_cache *c, int details, const char *kind_filter, cJSON **out,
                  struct err *e);

/* GET /jsonldContexts/{id}: id is a localId or a URL. details == 0: *text_out
 * is the document (malloc'd) and the serve counts as a hit; a Cached document
 * is not served (5.13.4: ERR_NOT_SUPPORTED), except the core context, which
 * is served from the binary. details != 0: *info_out is the listing object
 * (cJSON_Delete). Unused out-params are set to NULL; either may be NULL when
 * not requested. Errors: ERR_NOT_FOUND, ERR_NOT_SUPPORTED, ERR_NOMEM. */
int ld_cache_get(struct ld_cache *c, const char *id, int details, char **text_out,
                 cJSON **info_out, struct err *e);

/* DELETE /jsonldContexts/{id}?reload=: without reload the document is removed
 * (unpersist hook called); with reload a Cached document is fetched again
 * and replaced (persist hook called; on failure ERR_LD_CONTEXT and the old
 * copy stays). Memoized active contexts are dropped either way. Errors:
 * ERR_NOT_FOUND (unknown id, no reload), ERR_BAD_DATA (the core context; reload
 * of anything that is not a Cached document, unknown ids included),
 * ERR_LD_CONTEXT, ERR_NOMEM. */
int ld_cache_delete(struct ld_cache *c, const char *id, int reload, struct err *e);

#endif
