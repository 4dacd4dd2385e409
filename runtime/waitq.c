/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include "waitq.h"

void waiter_prepare(struct weft__waiter *w)
{
	struct weft_task *t = weft__current();

	w->next = w->prev = NULL;
	w->task = t;
	w->status = 0;
	STORE(&w->futex, 0, relaxed);
	/* A task begins its park here, under the object's lock, so that a
	 * grant or a cancellation from now on is seen (sched.c step 1). */
	w->seq = t ? weft__park_begin(t) : 0;
}

int waiter_sleep(struct weft__waiter *w)
{
	return waiter_sleep_until(w, UINT64_MAX);
}

int waiter_sleep_until(struct weft__waiter *w, uint64_t at)
{
	if (w->task)
		return weft__park_commit(w->task, at);
	/* acquire: pairs with the release in weft__waiter_wake. */
	while (!LOAD(&w->futex, acquire)) {
		uint64_t now = weft_now();

		if (now >= at)
			return 0;
		weft__futex_wait(&w->futex, 0,
				 at == UINT64_MAX ? UINT64_MAX : at - now);
	}
	return 0;
}

void waiter_grant(struct weft__waiter *w, int status)
{
	w->status = status;
	weft__waiter_wake(w, WAKE_OK);
}

int waiter_wait(spinlock *l, struct waitq *q, struct weft__waiter *w)
{
	int rc = waiter_sleep(w);

	spin_lock(l);
	if (w->status)
		return 0; /* granted: that wins over a cancel (step 4) */
	waitq_remove(q, w);
	/* Not granted means woken by a cancel or a deadline; a bare 0 here
	 * would be taken for a grant. */
	return rc ? rc : -EINTR;
}
