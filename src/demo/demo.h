/*
 * demo.h - the demo city: a few dozen Smart-Data-Model entities around one
 * square (Streetlight, CrowdFlowObserved, AirQualityObserved, Device),
 * loaded into the default tenant of an empty store so a newcomer sees a
 * city at once. Attribute and type names use the core context's default
 * vocabulary, so plain queries (?type=Streetlight) find them.
 */
#ifndef PL_DEMO_H
#define PL_DEMO_H

#include "store/store.h"

/* Load the demo city if the default tenant holds no entity. Returns the
 * number of entities written (0 when the store was not empty), or a
 * negative ERR_*. Blocks until durable (startup only). */
int demo_load(struct store *s, struct err *e);

#endif
