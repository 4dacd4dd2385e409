/* SPDX-License-Identifier: MIT */
/*
 * Which workers are parked or searching, and waking them one at a time.
 * The protocol is described at the top of idle.c.
 */
#ifndef WEFT_IDLE_H
#define WEFT_IDLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "atomic.h"

struct weft_rt;
struct worker;

struct idle {
	/* (unparked << 16) | searching. Any worker reads and updates it with
	 * seq_cst RMWs (see the protocol). */
	_Atomic uint32_t state cacheline_aligned;
	/* How many workers are parked on the FREE list; the lock-free check
	 * of the hint reads it (a stale value only skips a hint or takes the
	 * lock for nothing). Written under lock. Same line as `state`. */
	_Atomic uint32_t nfree;
	pthread_mutex_t lock;
	/* Under lock: indices of parked workers, as two stacks: FREE (parked
	 * with nothing in flight) and IO (parked waiting for their own I/O,
	 * within IO_GRACE_NS). See idle.c, "Workers waiting for their own
	 * I/O". */
	int *sleepers[2];
	int nsleepers[2];
	int nworkers;		/* constant */
};

int idle_init(struct idle *id, int nworkers);
void idle_destroy(struct idle *id);

/* After making work visible: wakes one parked worker if none is searching.*/
void idle_notify(struct weft_rt *rt);
/* The cheap form for a worker's pushes of new work onto its own run queue
 * (see idle.c, "Local pushes"). */
void idle_notify_hint(struct weft_rt *rt);
/* The same for tasks that the worker's own I/O completions woke: wakes only
 * a worker that is not waiting for I/O of its own (idle.c, "Workers waiting
 * for their own I/O"). */
void idle_notify_free(struct weft_rt *rt);
/* A worker about to look for work elsewhere; false if enough already do. */
bool idle_begin_search(struct weft_rt *rt, struct worker *w);
/* A searching worker found work. */
void idle_end_search(struct weft_rt *rt, struct worker *w);
/* Parks the worker until notified or `deadline` (weft_now() ns, UINT64_MAX
 * for none). Returns with the worker unparked. */
void idle_park(struct weft_rt *rt, struct worker *w, uint64_t deadline);
/* Whether every worker is parked (the monitor's test before it sleeps;
 * a seq_cst load, see monitor.c). */
bool idle_all_parked(struct weft_rt *rt);
/* Wakes every parked worker (shutdown). */
void idle_wake_all(struct weft_rt *rt);

#endif
