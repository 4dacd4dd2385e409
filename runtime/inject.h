/* SPDX-License-Identifier: MIT */
/*
 * The global injection queue: tasks spawned or woken from outside the
 * runtime's workers, and the overflow of full local queues. FIFO.
 *
 * A mutex-protected intrusive list. It is off the hot path: workers look at
 * it once every INJECT_INTERVAL scheduling ticks (fairness) or when their own
 * queue and stealing came up empty, and `len` lets them skip the lock when it
 * is empty. ck_fifo_mpmc would need a node allocation per entry (the task's
 * own link cannot be reused by its ABA-safe design) and is opaque to TSan.
 */
#ifndef WEFT_INJECT_H
#define WEFT_INJECT_H

#include <pthread.h>
#include <stddef.h>
#include "atomic.h"

struct weft_task;

struct inject {
	pthread_mutex_t lock;
	struct weft_task *head, *tail;	/* under lock */
	/* Written under lock, read without it as an emptiness hint by any
	 * worker (relaxed: a stale value only delays a look by a tick; the
	 * idle protocol in idle.c re-checks with the lock before parking). */
	_Atomic size_t len;
};

void inject_init(struct inject *q);
void inject_destroy(struct inject *q);
/* Appends the chain first..last (linked by ->next, n tasks). */
void inject_push_batch(struct inject *q, struct weft_task *first,
		       struct weft_task *last, size_t n);
void inject_push(struct inject *q, struct weft_task *t);
/* Pops up to max tasks, returning the chain's head (NULL if empty) and the
 * count in *n. */
struct weft_task *inject_pop_batch(struct inject *q, size_t max, size_t *n);
static inline bool inject_empty(struct inject *q)
{
	return LOAD(&q->len, relaxed) == 0;
}

#endif
