/* SPDX-License-Identifier: MIT */
/*
 * Tasks: spawn, join, detach, cancel, sleep, yield, deadline scopes, shields.
 *
 * A task record has two references: the run reference, dropped after the
 * task ended and its stack was released, and the handle, dropped by join or
 * detach. Whichever goes last frees the record.
 *
 * Join hand-off (t->lock, a spinlock held for a few instructions):
 *  - the ending task, under the lock, stores its result, sets TF_DONE and
 *    wakes the registered joiner, if any;
 *  - the joiner, under the lock, either finds TF_DONE or registers itself,
 *    parks, and after any wake takes the lock again to deregister. Because
 *    the ending task wakes the joiner while holding the lock, the waiter
 *    (on the joiner's stack) is alive for as long as anyone can touch it.
 *
 * Shutdown: every live task is in a registry (its spawning worker's, or the
 * runtime's for spawns from outside) so that weft_rt_shutdown can cancel
 * them all. A spawn inserts under the registry lock and then reads
 * rt->closing; shutdown sets closing before it walks the registries under
 * the same locks, so either it sees the new task or the task sees closing
 * and starts cancelled.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "internal.h"

static inline struct weft_task *current_task(void)
{
	struct worker *w = weft__worker();

	return w ? w->current : NULL;
}

/* --- registry ----------------------------------------------------------- */

static bool registry_add(struct registry *r, struct weft_task *t)
{
	bool closing;

	spin_lock(&r->lock);
	t->reg = r;
	t->reg_prev = NULL;
	t->reg_next = r->head;
	if (r->head)
		r->head->reg_prev = t;
	r->head = t;
	STORE(&r->count, LOAD(&r->count, relaxed) + 1, relaxed);
	/* acquire: with the lock, orders this after a shutdown that
	 * already walked this registry (see the top of this file). */
	closing = LOAD(&t->rt->closing, acquire);
	spin_unlock(&r->lock);
	return closing;
}

static void registry_remove(struct weft_task *t)
{
	struct registry *r = t->reg;

	spin_lock(&r->lock);
	if (t->reg_prev)
		t->reg_prev->reg_next = t->reg_next;
	else
		r->head = t->reg_next;
	if (t->reg_next)
		t->reg_next->reg_prev = t->reg_prev;
	/* release (with the unlock): shutdown reads count without the
	 * lock and then may free the runtime's structures. */
	STORE(&r->count, LOAD(&r->count, relaxed) - 1, release);
	spin_unlock(&r->lock);
}

/* Cancels every task in r (shutdown). */
void weft__registry_cancel_all(struct registry *r)
{
	spin_lock(&r->lock);
	for (struct weft_task *t = r->head; t; t = t->reg_next)
		weft_cancel(t); /* alive: unlinked under this lock first */
	spin_unlock(&r->lock);
}

/* --- lifecycle ---------------------------------------------------------- */

void weft__task_unref(struct weft_task *t)
{
	/* acq_rel: the last owner sees every write of the others. */
	if (FSUB(&t->refs, 1, acq_rel) == 1)
		free(t);
}

void weft__task_complete(struct weft_task *t, int result)
{
	struct weft_rt *rt = t->rt;

	spin_lock(&t->lock);
	t->result = result;
	/* release: the result is visible to whoever sees TF_DONE
	 * (weft_cancel's -ESRCH, join under the lock). */
	FOR(&t->flags, TF_DONE, release);
	if (t->joiner)
		weft__waiter_wake(t->joiner, WAKE_OK);
	spin_unlock(&t->lock);
	registry_remove(t);
	/* seq_cst: pairs with shutdown's read of exit_epoch before it sums
	 * the registries, so it either sees our count or a new epoch. */
	if (LOAD(&rt->closing, seq_cst)) {
		FADD(&rt->exit_epoch, 1, seq_cst);
		weft__futex_wake(&rt->exit_epoch, 1);
	}
}

static uint64_t next_id(struct weft_rt *rt, struct worker *w)
{
	static _Atomic uint64_t ids = 1;

	if (!w || w->rt != rt)
		return FADD(&ids, 1, relaxed);
	if (w->id_next == w->id_end) {
		w->id_next = FADD(&ids, 1024, relaxed);
		w->id_end = w->id_next + 1024;
	}
	return w->id_next++;
}

/* Spawns onto rt; w is the calling thread's worker (NULL for a plain
 * thread, or a worker of another runtime). */
static int spawn(struct weft_rt *rt, struct worker *w, weft_task **out,
		 const weft_spawn_opts *opts, int (*fn)(void *), void *arg)
{
	size_t stack = 0;
	const char *name = NULL;
	struct weft_task *t;
	bool local = w && w->rt == rt && w->current;

	if (!fn)
		return -EINVAL;
	if (opts) {
		for (size_t i = 0; i < 4; i++)
			if (opts->reserved[i])
				return -EINVAL;
		if (opts->stack_size) {
			stack = stack_round_size(opts->stack_size);
			if (!stack)
				return -EINVAL;
			if (stack == rt->stack_size)
				stack = 0;
		}
		name = opts->name;
	}
	if (LOAD(&rt->stacks.exhausted, relaxed))
		return -ENOMEM;
	t = weft__fail_point(WEFT_FAIL_MALLOC) ? NULL : malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->next = NULL;
	STORE(&t->wstate, 0, relaxed);
	t->wseq = 0;
	t->rt = rt;
	t->fn = fn;
	t->arg = arg;
	t->result = 0;
	STORE(&t->flags, out ? 0 : TF_DETACHED, relaxed);
	STORE(&t->refs, out ? 2 : 1, relaxed);
	t->lock = (spinlock)SPINLOCK_INIT;
	t->joiner = NULL;
	t->heap_idx = -1;
	t->armed = NULL;
	t->deadline = UINT64_MAX;
	t->ndeadlines = 0;
	t->shield = 0;
	t->id = next_id(rt, w);
	t->name = name;
	t->stack_req = stack;
	if (registry_add(local ? &w->reg : &rt->ext_reg, t))
		FOR(&t->flags, TF_CANCELLED, relaxed);
	if (out)
		*out = t;
	/* The queue push publishes the record to the worker that runs it. */
	weft__schedule(t, local);
	return 0;
}

int weft_spawn_ex(weft_task **out, const weft_spawn_opts *opts,
		  int (*fn)(void *), void *arg)
{
	struct worker *w = weft__worker();

	if (!w || !w->current)
		return -EPERM;
	return spawn(w->rt, w, out, opts, fn, arg);
}

int weft_spawn(weft_task **out, int (*fn)(void *), void *arg)
{
	return weft_spawn_ex(out, NULL, fn, arg);
}

int weft_rt_spawn(weft_rt *rt, weft_task **out, int (*fn)(void *), void *arg)
{
	if (!rt)
		return -EINVAL;
	if (LOAD(&rt->closing, acquire))
		return -ESHUTDOWN;
	return spawn(rt, weft__worker(), out, NULL, fn, arg);
}

/* Blocks a plain thread until its waiter is woken. */
static void thread_wait(struct weft__waiter *wt)
{
	/* acquire: pairs with the release in weft__waiter_wake. */
	while (!LOAD(&wt->futex, acquire))
		weft__futex_wait(&wt->futex, 0, UINT64_MAX);
}

int weft_join(weft_task *t, int *result)
{
	struct weft_task *self = current_task();
	struct weft__waiter wt = { .task = self };
	int rc;

	if (!t)
		return -EINVAL;
	if (t == self)
		return -EDEADLK;
	for (bool first = true;; first = false) {
		if (self && (rc = weft__check_interrupt(self)))
			return rc; /* the handle stays valid */
		spin_lock(&t->lock);
		if (LOAD(&t->flags, relaxed) & TF_DONE) {
			spin_unlock(&t->lock);
			if (first)
				weft__coop_ready();
			break;
		}
		if (self)
			wt.seq = weft__park_begin(self);
		t->joiner = &wt;
		spin_unlock(&t->lock);

		if (self)
			rc = weft__park_commit(self, UINT64_MAX);
		else
			thread_wait(&wt);

		spin_lock(&t->lock);
		t->joiner = NULL;
		bool done = LOAD(&t->flags, relaxed) & TF_DONE;
		spin_unlock(&t->lock);
		if (done)
			break; /* even if a deadline fired too: no result lost */
		if (self && rc)
			return rc;
	}
	if (result)
		*result = t->result;
	weft__task_unref(t);
	return 0;
}

void weft_detach(weft_task *t)
{
	if (!t)
		return;
	FOR(&t->flags, TF_DETACHED, relaxed);
	weft__task_unref(t);
}

int weft_cancel(weft_task *t)
{
	uint32_t f;
	uint64_t s;

	if (!t)
		return -EINVAL;
	/* seq_cst: Dekker with weft__park_begin (sched.c step 1). */
	f = FOR(&t->flags, TF_CANCELLED, seq_cst);
	if (f & TF_DONE)
		return -ESRCH;
	s = LOAD(&t->wstate, seq_cst);
	if ((s & WS_STATE_MASK) != WS_RUNNING && (s & WS_CANCELLABLE))
		weft__wake(t, s >> WS_SEQ_SHIFT, WAKE_CANCELED, false);
	return 0;
}

weft_task *weft_current(void)
{
	return current_task();
}

uint64_t weft_task_id(const weft_task *t)
{
	return t ? t->id : 0;
}

int weft_worker_id(void)
{
	struct worker *w = weft__worker();

	return w ? w->index : -1;
}

int weft_yield(void)
{
	struct weft_task *t = current_task();
	int rc;

	if (!t)
		return -EPERM;
	rc = weft__check_interrupt(t);
	if (rc)
		return rc;
	weft__yield_now(t);
	/* Cancelled or expired while it waited for its turn? */
	return weft__check_interrupt(current_task());
}

int weft_sleep(uint64_t ns)
{
	struct weft_task *t = current_task();
	int rc;

	if (!t) {
		struct timespec ts = { (time_t)(ns / 1000000000u),
				       (long)(ns % 1000000000u) };

		while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
			;
		return 0;
	}
	rc = weft__check_interrupt(t);
	if (rc)
		return rc;
	if (ns == 0) {
		weft__yield_now(t);
		return weft__check_interrupt(current_task());
	}
	uint64_t now = weft_now();
	uint64_t at = ns > UINT64_MAX - now ? UINT64_MAX - 1 : now + ns;

	weft__park_begin(t);
	return weft__park_commit(t, at);
}

int weft_timeout_begin(uint64_t ns)
{
	struct weft_task *t = current_task();
	uint64_t now, d;

	if (!t)
		return -EPERM;
	if (t->ndeadlines == WEFT_TIMEOUT_DEPTH)
		return -ENOSPC;
	now = weft_now();
	d = ns > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + ns;
	t->outer[t->ndeadlines++] = t->deadline;
	if (d < t->deadline)
		t->deadline = d;
	return 0;
}

int weft_timeout_end(void)
{
	struct weft_task *t = current_task();
	bool expired;

	if (!t)
		return -EPERM;
	if (t->ndeadlines == 0)
		return -EINVAL;
	expired = t->deadline != UINT64_MAX && weft_now() >= t->deadline;
	t->deadline = t->outer[--t->ndeadlines];
	return expired ? 1 : 0;
}

int weft_shield_begin(void)
{
	struct weft_task *t = current_task();

	if (!t)
		return -EPERM;
	t->shield++;
	return 0;
}

int weft_shield_end(void)
{
	struct weft_task *t = current_task();

	if (!t)
		return -EPERM;
	if (t->shield == 0)
		return -EINVAL;
	t->shield--;
	return 0;
}
