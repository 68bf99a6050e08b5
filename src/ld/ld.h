/*
 * ld.h - JSON-LD contexts for NGSI-LD: the built-in core context, context
 * processing, term expansion and IRI compaction.
 *
 * A struct ld_ctx is an immutable, reference-counted "active context": a
 * term -> IRI map (with prefixes and @vocab) plus the reverse map used for
 * compaction. It is built once per distinct @context value and shared by
 * any number of threads (ld/cache.c memoizes them). The NGSI-LD core context
 * is compiled into the binary; it is always in effect, applied last, and its
 * terms cannot be redefined (ETSI GS CIM 009, 5.5.7).
 *
 * Thread safety: every function here may be called from any thread.
 */
#ifndef PL_LD_H
#define PL_LD_H

#include <cjson/cJSON.h>

#include "util/err.h"

struct ld_ctx;

/* The URL this server advertises for the core context (Link headers, bodies). */
#define LD_CORE_URL "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
/* The IRI prefix of the core vocabulary and the default @vocab. */
#define LD_NGSI_NS "https://uri.etsi.org/ngsi-ld/"
#define LD_DEFAULT_VOCAB "https://uri.etsi.org/ngsi-ld/default-context/"
/* The default GeoProperty of geo-queries. */
#define LD_LOCATION_IRI "https://uri.etsi.org/ngsi-ld/location"

/* The active context made of the core context alone. Immortal: retain and
 * release are no-ops on it. */
const struct ld_ctx *ld_core(void);

/* Text of the core context document (served at GET of the core URL and
 * /jsonldContexts). Static storage. */
const char *ld_core_text(void);

/* 1 if url is one of the published core-context URLs (unversioned, v1.0,
 * v1.3 ... v1.9, and their https/http forms), else 0. These never cause a
 * fetch. */
int ld_is_core_url(const char *url);

/* Resolves a remote context URL to the text of its document.
 * On success returns 0 and *text (NUL-terminated, malloc'd, caller frees).
 * On failure returns ERR_LD_CONTEXT (unreachable, timeout, too large, not
 * JSON) with the reason in e. */
struct ld_loader {
    int (*load)(void *ud, const char *url, char **text, struct err *e);
    void *ud;
};

/* Build the active context for an @context value: a URL string, an inline
 * object, or an array of them (JSON-LD 1.1 context processing: terms,
 * compact IRIs "prefix:suffix", @vocab, expanded term definitions with @id /
 * @type / @container, nested remote contexts up to a depth of 8, null
 * resetting). context may be NULL (core only). Core-context URLs are
 * recognised and never loaded. loader may be NULL if no remote URL is
 * expected (a remote URL then fails with ERR_LD_CONTEXT).
 * Returns 0 and *out (caller releases with ld_ctx_release), or
 * ERR_LD_CONTEXT (a remote context could not be loaded) or ERR_BAD_DATA
 * (invalid context), with the reason in e. */
int ld_ctx_build(const cJSON *context, const struct ld_loader *loader,
                 struct ld_ctx **out, struct err *e);

/* Thread-safe reference counting. Both accept NULL and ld_core(). */
void ld_ctx_retain(const struct ld_ctx *ctx);
void ld_ctx_release(const struct ld_ctx *ctx);

/* Expand a term (attribute name, type name, vocab value) to an absolute IRI:
 *   - a term defined in ctx (or the core context) -> its IRI;
 *   - "prefix:suffix" with a defined prefix -> prefix IRI + suffix;
 *   - an absolute IRI ("scheme:...", not a defined prefix) -> itself;
 *   - otherwise @vocab + term (the core's default is LD_DEFAULT_VOCAB).
 * Returns a malloc'd string (caller frees), NULL only when out of memory. */
char *ld_expand(const struct ld_ctx *ctx, const char *term);

/* Compact an IRI for output: the term ctx (or the core context) maps to it
 * (preferring the caller's own terms, then the shortest), else the part
 * after @vocab when the IRI starts with the active @vocab and that part is
 * not itself a term and has no ':' (JSON-LD tries @vocab before compact
 * IRIs, so "foo" round-trips through the default context), else the shortest
 * compact IRI "prefix:suffix" with a defined prefix that is not a term, else
 * the IRI itself. Returns a malloc'd string (caller frees), NULL only when
 * out of memory. */
char *ld_compact(const struct ld_ctx *ctx, const char *iri);

/* The expanded @type of a term's definition ("@id", "@vocab", "@json", or an
 * IRI such as "https://uri.etsi.org/ngsi-ld/DateTime"), or NULL when the
 * term is undefined or has no @type. Core definitions win, as in ld_expand.
 * The string lives as long as ctx. */
const char *ld_term_type(const struct ld_ctx *ctx, const char *term);

#endif
