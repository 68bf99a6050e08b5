/*
 * ld_int.h - internals shared by the files of the ld module (core.c, ctx.c,
 * cache.c). Not for use outside src/ld/.
 *
 * An active context is two hash maps built once and then read-only:
 *   terms:   term name -> struct ld_term (owned)
 *   reverse: IRI -> struct ld_term (borrowed from terms), the preferred term
 *            for compaction (shortest name, then smallest in byte order)
 * plus the terms usable as compact-IRI prefixes and the @vocab mapping.
 * A non-core context holds only the caller's own definitions; lookups consult
 * the core context first, which is how "the core context is applied last and
 * its terms win" (ETSI GS CIM 009, 5.5.7) is realised without copying the
 * core's ~180 terms into every context.
 */
#ifndef PL_LD_INT_H
#define PL_LD_INT_H

#include <stdatomic.h>
#include <stddef.h>

#include "ld/ld.h"
#include "util/hmap.h"

/* Limits of context processing (all inputs are untrusted). */
#define LD_MAX_DEPTH 8        /* nesting of remote contexts */
#define LD_MAX_LOADS 32       /* remote documents per ld_ctx_build */
#define LD_MAX_TERMS 10000    /* term definitions per active context */
#define LD_MAX_ARRAY 64       /* entries in one @context array */
#define LD_MAX_URL_LEN 2048

struct ld_term {
    char *name;      /* the term */
    char *iri;       /* absolute IRI, blank node or keyword ("@id") */
    char *type;      /* expanded @type ("@id", "@vocab", "@json", IRI) or NULL */
    char *container; /* first @container keyword or NULL */
    unsigned prefix : 1;  /* usable as "prefix:suffix" */
    unsigned reverse : 1; /* defined with @reverse (never used for compaction) */
};

struct ld_ctx {
    atomic_long refs;
    int immortal;             /* the core context: retain/release are no-ops */
    struct hmap *terms;       /* name -> struct ld_term * */
    struct hmap *reverse;     /* IRI -> struct ld_term * (borrowed) */
    struct ld_term **prefixes; /* terms with prefix set, borrowed */
    size_t n_prefixes;
    char *vocab; /* the caller's @vocab, NULL = the core's default */
};

/* Build an active context. is_core: building the core context itself (no
 * core lookups, keeps the document's own @vocab). See ld_ctx_build. */
int ld__build(const cJSON *context, const struct ld_loader *loader, int is_core,
              struct ld_ctx **out, struct err *e);

/* Free a context regardless of its reference count. */
void ld__free(struct ld_ctx *ctx);

#endif
