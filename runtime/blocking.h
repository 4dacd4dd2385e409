/* SPDX-License-Identifier: MIT */
/* The blocking pool's lifecycle, for rt.c. See blocking.c. */
#ifndef WEFT_BLOCKING_H
#define WEFT_BLOCKING_H

#include "internal.h"

/* The largest weft_config.blocking_threads; 0 means BPOOL_DEFAULT. */
#define BPOOL_MAX 4096
#define BPOOL_DEFAULT 64

/* Sets up rt->bpool (no thread yet). Returns 0 or -ENOMEM. */
int weft__bpool_init(struct weft_rt *rt, unsigned max_threads);
/* Stops and joins every pool thread. Called once no task is alive, so no
 * job is queued or running. Idempotent; NULL pool ignored. */
void weft__bpool_stop(struct weft_rt *rt);
/* Stops the pool if needed and frees it. */
void weft__bpool_destroy(struct weft_rt *rt);

#endif
