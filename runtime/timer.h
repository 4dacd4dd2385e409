/* SPDX-License-Identifier: MIT */
/*
 * Per-worker timers: a 4-ary min-heap of tasks keyed by wake-up time,
 * O(log n) insert and remove, O(1) peek.
 *
 * Who touches it:
 *  - the task being suspended inserts itself into the heap of the worker it
 *    runs on (timer_arm), before it switches away;
 *  - that worker fires expired entries (timer_fire_expired), and so does
 *    the monitor thread when that worker is stuck in one task (monitor.c);
 *  - the task removes itself after it resumes, possibly on another worker,
 *    if something else woke it first (timer_disarm).
 * So the heap has a lock, held only for the heap operation itself; it is
 * uncontended unless a task resumed elsewhere disarms at the moment its old
 * worker fires. `min` lets the owner and the monitor check for due timers
 * without locking; to the monitor it is a hint that may be stale: too
 * large, it fires at its next look instead.
 */
#ifndef WEFT_TIMER_H
#define WEFT_TIMER_H

#include <stddef.h>
#include <stdint.h>
#include "atomic.h"

struct task_run;

struct timer_heap {
	spinlock lock;
	struct task_run **v;	/* under lock: running tasks */
	size_t n, cap;		/* under lock */
	/* Earliest deadline or UINT64_MAX; written under lock, read
	 * without it by the owner and the monitor as a hint (relaxed). */
	_Atomic uint64_t min;
};

void timer_heap_init(struct timer_heap *h);
void timer_heap_destroy(struct timer_heap *h);
/* Inserts r (r->timer_at and r->timer_reason set by the caller).
 * Returns -ENOMEM if the heap cannot grow. */
int timer_arm(struct timer_heap *h, struct task_run *r);
/* Removes r if it is still in h. */
void timer_disarm(struct timer_heap *h, struct task_run *r);
/* Wakes every task due at `now`; returns how many it woke. */
size_t timer_fire_expired(struct timer_heap *h, uint64_t now);
static inline uint64_t timer_next(struct timer_heap *h)
{
	return LOAD(&h->min, relaxed);
}

#endif
