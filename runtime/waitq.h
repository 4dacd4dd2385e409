/* SPDX-License-Identifier: MIT */
/*
 * Wait queues: the one way weft's synchronisation objects and channels make
 * a task or a plain thread wait, and hand something over to it.
 *
 * A waitq is a FIFO of struct weft__waiter, each living on its waiter's
 * stack, protected by the owning object's spinlock. The protocol (every
 * object follows it, so a wake is never lost and nothing handed over is
 * ever lost):
 *
 *  1. Under the object's lock, the waiter checks its condition; if it must
 *     wait, it calls waiter_prepare() (which, for a task, begins the park:
 *     a cancellation from here on is not missed) and waitq_push().
 *  2. It drops the lock and calls waiter_sleep().
 *  3. A waker, under the lock, pops the waiter, completes the operation on
 *     its behalf (hands over a lock, a permit, an element) and calls
 *     waiter_grant(w, status), which sets w->status and wakes it while the
 *     lock is still held: the waiter cannot return, and free its stack,
 *     before taking the lock itself.
 *  4. The waiter retakes the lock. If w->status is set, it was granted, and
 *     that wins over a cancellation or timeout that raced with it: the
 *     operation took effect, so it returns success. Otherwise it removes
 *     itself from the queue and returns the error from waiter_sleep().
 *
 * Object state words that fast paths update without the lock must be read
 * again under the lock before a waiter enqueues (each object documents how).
 */
#ifndef WEFT_WAITQ_H
#define WEFT_WAITQ_H

#include <stdbool.h>
#include <stddef.h>
#include "internal.h"

struct waitq {
	struct weft__waiter *head, *tail;
};

static inline bool waitq_empty(const struct waitq *q)
{
	return q->head == NULL;
}

static inline void waitq_push(struct waitq *q, struct weft__waiter *w)
{
	w->next = NULL;
	w->prev = q->tail;
	if (q->tail)
		q->tail->next = w;
	else
		q->head = w;
	q->tail = w;
}

static inline void waitq_push_front(struct waitq *q, struct weft__waiter *w)
{
	w->prev = NULL;
	w->next = q->head;
	if (q->head)
		q->head->prev = w;
	else
		q->tail = w;
	q->head = w;
}

static inline void waitq_remove(struct waitq *q, struct weft__waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		q->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		q->tail = w->prev;
	w->next = w->prev = NULL;
}

static inline struct weft__waiter *waitq_pop(struct waitq *q)
{
	struct weft__waiter *w = q->head;

	if (w)
		waitq_remove(q, w);
	return w;
}

/* Step 1: sets w up for the calling task or thread (lock held). */
void waiter_prepare(struct weft__waiter *w);
/* Step 2: waits until granted (lock NOT held). Returns 0 when woken by a
 * grant; -ECANCELED / -ETIMEDOUT when a task gave up (it may still have
 * been granted: check w->status under the lock, step 4). */
int waiter_sleep(struct weft__waiter *w);
/* The same, but also returns 0 at weft_now() time `at` without a grant:
 * for objects that act when a waiter has waited long (check w->status
 * under the lock to tell which). */
int waiter_sleep_until(struct weft__waiter *w, uint64_t at);
/* Step 3: hands over and wakes (lock held). status must be nonzero. */
void waiter_grant(struct weft__waiter *w, int status);
/* Steps 2 and 4 for a waiter already queued on q (lock l NOT held):
 * sleeps, retakes l and returns with it held: 0 if granted (w->status
 * says how), else the error, with w removed from q. */
int waiter_wait(spinlock *l, struct waitq *q, struct weft__waiter *w);

#endif
