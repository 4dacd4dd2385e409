/* SPDX-License-Identifier: MIT */
/*
 * A worker's local run queue: a bounded ring that its owner pushes at the
 * tail and pops at the head, and that other workers steal half of at once.
 * The protocol and the reasons for each memory order are in rq.c.
 */
#ifndef WEFT_RQ_H
#define WEFT_RQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "atomic.h"

#ifndef WEFT_RQ_CAP
#define WEFT_RQ_CAP 1024
#endif
#define RQ_CAP ((uint32_t)WEFT_RQ_CAP)
#define RQ_MASK (RQ_CAP - 1)
_Static_assert(WEFT_RQ_CAP >= 2 && (WEFT_RQ_CAP & (WEFT_RQ_CAP - 1)) == 0,
	       "run queue capacity must be a power of two >= 2");

struct weft_task;

struct rq {
	/* Low 32 bits: `real` head, the next slot the owner pops.
	 * High 32 bits: `steal` head; equal to real unless a thief is copying
	 * slots [steal, real) out. Written by owner (pop) and thieves (CAS). */
	_Atomic uint64_t head cacheline_aligned;
	/* Next slot to fill. Written only by the owner; read by thieves. */
	_Atomic uint32_t tail;
	/* Owner-only lower bound of steal, as last observed: pushes that have
	 * room for sure need not read the shared head line. */
	uint32_t steal_seen;
	_Atomic(struct weft_task *) buf[WEFT_RQ_CAP];
};

/* Overflow sink: called by the owner, possibly several times, with n tasks
 * in v[] when the ring is full. */
typedef void (*rq_overflow_fn)(void *ctx, struct weft_task *const *v,
			       size_t n);

void rq_init(struct rq *q);
/* Owner only. Never fails: moves half the ring plus t to `spill` when full. */
void rq_push_local(struct rq *q, struct weft_task *t, rq_overflow_fn spill,
		   void *ctx);
/* Owner only. NULL when empty. */
struct weft_task *rq_pop_local(struct rq *q);
/* Any thread: moves about half of src's tasks into dst (which must belong to
 * the caller) and returns one of them to run now, or NULL. */
struct weft_task *rq_steal_into(struct rq *src, struct rq *dst);
/* Any thread: a hint; exact only when the owner is not running. */
uint32_t rq_len(struct rq *q);

/* Owner only: the position after the last task pushed so far. */
static inline uint32_t rq_mark(struct rq *q)
{
	return LOAD(&q->tail, relaxed);
}

/* Owner only, a hint: whether a task pushed before `mark` (an rq_mark()
 * value) is still queued: not popped, stolen or spilled. */
static inline bool rq_holds_before(struct rq *q, uint32_t mark)
{
	uint32_t head = (uint32_t)LOAD(&q->head, relaxed);

	return (int32_t)(mark - head) > 0;
}

#endif
