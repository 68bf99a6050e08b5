/*
 * live.h - live data for the demo city: provision the simulator's device
 * profiles and devices in the default tenant, give the tenant a fresh
 * webhook secret, and run `pilotlight simulate` in a thread against the
 * hub's own ChirpStack/TTS webhooks over loopback HTTP. So `make run`
 * shows sensors reporting with nothing else installed, through the same
 * path a real network server uses (webhook -> ingest -> writer -> history,
 * subscriptions).
 */
#ifndef PL_DEMO_LIVE_H
#define PL_DEMO_LIVE_H

#include "util/err.h"

struct ingest;
struct demo_live;

/* Provision n_devices simulated devices and start publishing rate messages
 * per second to http://127.0.0.1:port. Returns 0 and *out (stop with
 * demo_live_stop). */
int demo_live_start(struct ingest *g, int port, int n_devices, double rate,
                    struct demo_live **out, struct err *e);

/* Stop the simulator thread and free. NULL ok. */
void demo_live_stop(struct demo_live *l);

#endif
