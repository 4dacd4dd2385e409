/* SPDX-License-Identifier: MIT */
/*
 * Task groups (asyncio.TaskGroup) and gather.
 *
 * A child is an ordinary joinable task running child_main(), which runs
 * the user's fn and then reports to the group. Each child has a node,
 * allocated by weft_group_spawn and freed by weft_group_wait after it
 * joined the child. The group's spinlock protects the node list, `err`
 * and `waiting`.
 *
 * Invariants:
 *  - a node is linked (under the lock) only after weft_spawn stored its
 *    handle, and only the waiter unlinks it, after the child has ended and
 *    just before joining it. So a handle reached through the list under the
 *    lock is never freed: weft_cancel on it is always safe;
 *  - child_main touches its node and the group only before it returns, so
 *    once the waiter has seen the child end (join), nothing else touches
 *    the node;
 *  - the first child to return a negative value other than -ECANCELED
 *    stores it in `err` and cancels every linked child, under the lock.
 *    A child spawned after that (by a sibling) is cancelled by
 *    weft_group_spawn itself, which reads `cancelled` under the lock after
 *    linking, so none escapes: either the canceller sees it linked or it
 *    sees `cancelled`. A child that never ran (cancelled or no stack)
 *    reports nothing itself; the waiter applies the same rule to the
 *    result it joins.
 *
 * Wait joins the children in order: for each linked node it first waits
 * with weft_wait_any (which consumes nothing, so a cancelled waiter still
 * holds every handle), then unlinks and joins. A waiter that is cancelled
 * or times out cancels the group and from then on joins under a hold
 * (internal.h: shielded and without deadline), so the group never outlives
 * its wait. Children that spawn grandchildren into the group do so before
 * they end, hence before the waiter gets past them: an empty list after
 * the last join means the group is finished.
 */
#include <errno.h>
#include <stdlib.h>
#include "internal.h"

struct gnode {
	struct gnode *next;		/* under g->lock */
	struct weft_group *g;		/* constant */
	int (*fn)(void *);		/* constant */
	void *arg;			/* constant */
	weft_task *t;			/* written before the node is linked */
};

struct weft_group {
	spinlock lock;
	struct gnode *head, *tail;	/* children not yet joined; lock */
	int err;			/* first failure; lock */
	bool waiting;			/* a wait is running; lock */
	/* Set under the lock by weft_group_cancel and the first failure,
	 * cleared by the end of a wait. Also read without the lock, relaxed,
	 * by child_main as a shortcut only: the cancel of the task itself
	 * is what makes a child stop. */
	_Atomic bool cancelled;
};

/* Cancels every linked child except `skip`. Lock held. */
static void cancel_locked(struct weft_group *g, const struct gnode *skip)
{
	STORE(&g->cancelled, true, relaxed); /* lock orders it */
	for (struct gnode *n = g->head; n; n = n->next)
		if (n != skip)
			weft_cancel(n->t); /* linked: handle valid */
}

/* Records a child's result: the first real failure cancels the rest. */
static void report(struct weft_group *g, const struct gnode *self, int r)
{
	if (r >= 0 || r == -ECANCELED)
		return;
	spin_lock(&g->lock);
	if (!g->err) {
		g->err = r;
		cancel_locked(g, self);
	}
	spin_unlock(&g->lock);
}

static int child_main(void *arg)
{
	struct gnode *n = arg;
	int r;

	if (LOAD(&n->g->cancelled, relaxed))
		return -ECANCELED; /* do not start work for a dead group */
	r = n->fn(n->arg);
	report(n->g, n, r);
	return r;
}

int weft_group_new(weft_group **out)
{
	struct weft_group *g;

	if (!out)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->lock = (spinlock)SPINLOCK_INIT;
	STORE(&g->cancelled, false, relaxed); /* published by the caller */
	*out = g;
	return 0;
}

int weft_group_spawn(weft_group *g, int (*fn)(void *), void *arg)
{
	struct gnode *n;
	bool cancelled;
	int rc;

	if (!g || !fn)
		return -EINVAL;
	if (!weft__current())
		return -EPERM;
	n = malloc(sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->next = NULL;
	n->g = g;
	n->fn = fn;
	n->arg = arg;
	/* The spawn's queue push publishes the node to the child. */
	rc = weft_spawn(&n->t, child_main, n);
	if (rc) {
		free(n);
		return rc;
	}
	spin_lock(&g->lock);
	if (g->tail)
		g->tail->next = n;
	else
		g->head = n;
	g->tail = n;
	cancelled = LOAD(&g->cancelled, relaxed); /* under the lock */
	if (cancelled)
		weft_cancel(n->t);
	spin_unlock(&g->lock);
	return 0;
}

int weft_group_cancel(weft_group *g)
{
	if (!g)
		return -EINVAL;
	spin_lock(&g->lock);
	cancel_locked(g, NULL);
	spin_unlock(&g->lock);
	return 0;
}

int weft_group_wait(weft_group *g)
{
	struct weft_task *self = weft__current();
	uint64_t saved = 0;
	bool held = false;
	int rc = 0, err;

	if (!g)
		return -EINVAL;
	spin_lock(&g->lock);
	if (g->waiting) {
		spin_unlock(&g->lock);
		return -EBUSY;
	}
	g->waiting = true;
	spin_unlock(&g->lock);

	for (;;) {
		struct gnode *n;
		uint64_t s2 = 0;
		int r, res;

		spin_lock(&g->lock);
		n = g->head; /* only we unlink: it stays valid */
		spin_unlock(&g->lock);
		if (!n)
			break;
		if (!held) {
			r = weft_wait_any(1, &n->t);
			if (r < 0) {
				/* Cancelled or timed out: take the group
				 * down with us, then wait for all of it. */
				rc = r;
				weft_group_cancel(g);
				weft__hold_begin(self, &saved);
				held = true;
			}
		}
		spin_lock(&g->lock);
		g->head = n->next;
		if (!g->head)
			g->tail = NULL;
		spin_unlock(&g->lock);
		/* Ended (or cancelled, if held): a join that nothing may
		 * interrupt, so the handle is always consumed here. */
		if (!held)
			weft__hold_begin(self, &s2);
		weft_join(n->t, &res);
		if (!held)
			weft__hold_end(self, s2);
		report(g, NULL, res); /* a no-op unless it never ran */
		free(n);
	}
	if (held)
		weft__hold_end(self, saved);

	spin_lock(&g->lock);
	err = g->err;
	g->err = 0;
	STORE(&g->cancelled, false, relaxed); /* under the lock */
	g->waiting = false;
	spin_unlock(&g->lock);
	return rc ? rc : err;
}

int weft_group_free(weft_group *g)
{
	bool busy;

	if (!g)
		return -EINVAL;
	spin_lock(&g->lock);
	busy = g->head || g->waiting;
	spin_unlock(&g->lock);
	if (busy)
		return -EBUSY;
	free(g);
	return 0;
}

/* Handles a gather keeps on the caller's stack. */
#define GATHER_STACK 16

int weft_gather(size_t n, int (*const fns[])(void *), void *const args[],
		int results[])
{
	struct weft_task *self = weft__current();
	weft_task *stackh[GATHER_STACK], **h = stackh;
	uint64_t saved = 0;
	bool held = false;
	int rc = 0;

	if (!self)
		return -EPERM;
	if (n == 0)
		return 0;
	if (!fns || !results)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!fns[i])
			return -EINVAL;
	if (n > GATHER_STACK) {
		h = malloc(n * sizeof(*h));
		if (!h)
			return -ENOMEM;
	}
	/* A child that cannot be spawned reports the error as its result
	 * (return_exceptions=True). */
	for (size_t i = 0; i < n; i++) {
		int r = weft_spawn(&h[i], fns[i], args ? args[i] : NULL);

		if (r) {
			h[i] = NULL;
			results[i] = r;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!h[i])
			continue;
		if (!held) {
			int r = weft_join(h[i], &results[i]);

			if (r == 0)
				continue;
			/* Cancelled or timed out: the handles from i on are
			 * still ours; cancel them all and wait for them. */
			rc = r;
			for (size_t j = i; j < n; j++)
				if (h[j])
					weft_cancel(h[j]);
			weft__hold_begin(self, &saved);
			held = true;
		}
		weft_join(h[i], &results[i]); /* held: returns 0 */
	}
	if (held)
		weft__hold_end(self, saved);
	if (h != stackh)
		free(h);
	return rc;
}
