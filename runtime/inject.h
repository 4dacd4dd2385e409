/* SPDX-License-Identifier: MIT */
/*
 * The global injection queue: tasks spawned or woken from outside the
 * runtime's workers, and the overflow of full local queues. FIFO.
 *
 * A mutex-protected queue of segments, each an array of task pointers, so
 * that moving a batch in or out copies pointers and never walks the task
 * records (a walk is a chain of cache misses when a million tasks wait).
 * It is off the hot path: workers take one task every INJECT_INTERVAL
 * scheduling ticks (fairness) and a batch when their own queue ran dry, and
 * `len` lets them skip the lock when it is empty. If a segment cannot be
 * allocated the tasks are linked through their own `next` field instead,
 * so a push never fails.
 *
 * ck_fifo_mpmc was not used: it needs a node allocation per entry and is
 * opaque to TSan (see atomic.h).
 */
#ifndef WEFT_INJECT_H
#define WEFT_INJECT_H

#include <pthread.h>
#include <stddef.h>
#include "atomic.h"

struct weft_task;
struct inject_seg;

struct inject {
	pthread_mutex_t lock;
	struct inject_seg *head, *tail;	/* under lock */
	struct inject_seg *spare;	/* under lock: one cached segment */
	struct weft_task *chain, *chain_tail; /* under lock: OOM fallback */
	/* Written under lock, read without it as an emptiness hint by any
	 * worker (relaxed: a stale value only delays a look by a tick; the
	 * idle protocol in idle.c orders it with fences where it matters). */
	_Atomic size_t len;
};

void inject_init(struct inject *q);
void inject_destroy(struct inject *q);
/* Appends n tasks from v[]. */
void inject_push_many(struct inject *q, struct weft_task *const *v, size_t n);
void inject_push(struct inject *q, struct weft_task *t);
/* Pops up to max tasks into v[]; returns how many. */
size_t inject_pop_many(struct inject *q, struct weft_task **v, size_t max);
static inline bool inject_empty(struct inject *q)
{
	return LOAD(&q->len, relaxed) == 0;
}

#endif
