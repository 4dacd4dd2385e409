/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include "timer.h"
#include "internal.h"

void timer_heap_init(struct timer_heap *h)
{
	h->lock = (spinlock)SPINLOCK_INIT;
	h->v = NULL;
	h->n = h->cap = 0;
	STORE(&h->min, UINT64_MAX, relaxed);
}

void timer_heap_destroy(struct timer_heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}

static inline void place(struct timer_heap *h, size_t i, struct task_run *t)
{
	h->v[i] = t;
	t->heap_idx = (int)i;
}

static void sift_up(struct timer_heap *h, size_t i)
{
	struct task_run *t = h->v[i];

	while (i > 0) {
		size_t p = (i - 1) / 4;

		if (h->v[p]->timer_at <= t->timer_at)
			break;
		place(h, i, h->v[p]);
		i = p;
	}
	place(h, i, t);
}

static void sift_down(struct timer_heap *h, size_t i)
{
	struct task_run *t = h->v[i];

	for (;;) {
		size_t c = 4 * i + 1, best = c;

		if (c >= h->n)
			break;
		for (size_t k = c + 1; k < c + 4 && k < h->n; k++)
			if (h->v[k]->timer_at < h->v[best]->timer_at)
				best = k;
		if (h->v[best]->timer_at >= t->timer_at)
			break;
		place(h, i, h->v[best]);
		i = best;
	}
	place(h, i, t);
}

static void update_min(struct timer_heap *h)
{
	STORE(&h->min, h->n ? h->v[0]->timer_at : UINT64_MAX, relaxed);
}

static void remove_at(struct timer_heap *h, size_t i)
{
	struct task_run *t = h->v[i];

	t->heap_idx = -1;
	if (--h->n != i) {
		place(h, i, h->v[h->n]);
		/* The moved entry may belong above or below i: if it sinks,
		 * what rises into i is no smaller than i's parent, so the
		 * sift_up is then a no-op. */
		sift_down(h, i);
		sift_up(h, i);
	}
}

int timer_arm(struct timer_heap *h, struct task_run *t)
{
	spin_lock(&h->lock);
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct task_run **v = realloc(h->v, cap * sizeof(*v));

		if (!v) {
			spin_unlock(&h->lock);
			return -ENOMEM;
		}
		h->v = v;
		h->cap = cap;
	}
	place(h, h->n, t);
	sift_up(h, h->n++);
	update_min(h);
	spin_unlock(&h->lock);
	return 0;
}

void timer_disarm(struct timer_heap *h, struct task_run *t)
{
	spin_lock(&h->lock);
	if (t->heap_idx >= 0) {
		remove_at(h, (size_t)t->heap_idx);
		update_min(h);
	}
	spin_unlock(&h->lock);
}

size_t timer_fire_expired(struct timer_heap *h, uint64_t now)
{
	size_t woke = 0;

	if (timer_next(h) > now)
		return 0;
	spin_lock(&h->lock);
	while (h->n && h->v[0]->timer_at <= now) {
		struct task_run *r = h->v[0];
		struct weft_task *t = r->task;

		remove_at(h, 0);
		/* Wake under the lock: a task woken by someone else must
		 * take this lock to disarm before it may finish or wait
		 * again, so t is alive and still in the wait that armed this
		 * entry, whose seq is the one in wstate now (sched.c). */
		woke += weft__wake(t, LOAD(&t->wstate, relaxed) >> WS_SEQ_SHIFT,
				   r->timer_reason, false);
	}
	update_min(h);
	spin_unlock(&h->lock);
	return woke;
}
