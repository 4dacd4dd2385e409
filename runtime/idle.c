/* SPDX-License-Identifier: MIT */
/*
 * Parking and waking workers without losing a wake-up and without a
 * thundering herd.
 *
 * State: `state` counts unparked workers and, among them, searching ones
 * (looking for work to steal). `sleepers` lists parked workers, under lock.
 * Each worker has a word `park` (PARK_NOTIFIED / PARK_WAITING), and parks in
 * its I/O driver (io/driver.h), which a write to its eventfd wakes.
 *
 * Protocol:
 *  1. Producer (any thread that made a task runnable in a queue that another
 *     worker could take it from: a local run queue or the inject queue):
 *     publishes the task, then FENCE(seq_cst), then reads `state`. If some
 *     worker is searching, it does nothing: that worker will find the task
 *     (rule 3). Otherwise, if a worker is parked, it pops one sleeper under
 *     lock, counts it unparked AND searching (so concurrent producers do not
 *     wake a second one for the same work) and sets its `park` word to
 *     NOTIFIED, all under the lock, then wakes its driver. One task, at most
 *     one wake: no herd.
 *  2. A worker out of local work becomes a searcher only while fewer than
 *     half of the unparked workers search (bounded spinning); it steals from
 *     the others and polls the inject queue a few rounds.
 *  3. A searcher that finds work stops searching; if it was the LAST
 *     searcher it notifies one more parked worker (rule 1), because the
 *     producers that saw it searching relied on it, and there may be more
 *     work than it took.
 *  4. A worker with nothing to do parks: under lock it sets park=WAITING,
 *     decrements `unparked` (and `searching` if it was one) with a seq_cst
 *     RMW, and adds itself to `sleepers`. If it was the last searcher, it
 *     then (after FENCE(seq_cst)) looks at every run queue and the inject
 *     queue again, and if any holds work, notifies (rule 1: that may be
 *     itself).
 *  5. It then waits in its I/O driver until park == NOTIFIED, its next
 *     timer is due, or I/O completions made tasks runnable on its queue. On a timeout it removes itself from `sleepers` under lock and
 *     counts itself unparked again (not searching), unless a notifier got
 *     there first, in which case it is already counted as a searcher.
 *
 * Local pushes: a worker that queues work on its OWN run queue is awake and
 * will run that work itself, so a missed notify there costs parallelism,
 * never liveness. It uses idle_notify_hint(): the same test without the
 * fence, which can read a stale `state` and skip a notify. The worker
 * repeats the hint every INJECT_INTERVAL ticks while its queue is not empty
 * (sched.c maintenance), which bounds how long a parked worker can miss
 * stealable work. A worker's overflow spill into the inject queue is the
 * same case (the spilling worker is awake and polls the inject queue) and
 * also uses the hint. Pushes from outside the workers, which only a worker
 * can run, always use the full rule 1.
 *
 * Parallelism, not liveness: a worker that may not search (rule 2) parks
 * without re-checking the queues; if the last searcher stops searching
 * before that worker is on `sleepers`, the rule 3 notify finds nobody and
 * work waits for a busy worker to reach it. Tokio has the same shape.
 *
 * Why no wake-up is lost: a producer's publish + fence + read of `state`
 * and a parker's seq_cst decrement + fence + read of the queues form a
 * Dekker pair. Either the producer sees the parker still counted (searching
 * or unparked-and-busy, and then the parker sees the task in rule 4 or the
 * busy worker reaches it), or the parker's re-check in rule 4 sees the task.
 * The re-check is only needed by the last searcher and by the last worker
 * to park: while another searcher exists, it carries the same obligation,
 * and while another worker is unparked and busy, it polls its own queue
 * and the inject queue before it could park (and then it is the last).
 * A notify that arrives while the target is between rule 4 and its wait
 * is not lost either: the notifier's eventfd write stays counted until the
 * driver reads it, so the wait returns at once.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include "idle.h"
#include "internal.h"
#include "../io/driver.h"

#define SEARCH_ONE 1u
#define UNPARK_ONE (1u << 16)

static inline uint32_t n_searching(uint32_t s)
{
	return s & 0xffff;
}

static inline uint32_t n_unparked(uint32_t s)
{
	return s >> 16;
}

int idle_init(struct idle *id, int nworkers)
{
	id->sleepers = calloc((size_t)nworkers, sizeof(int));
	if (!id->sleepers)
		return -ENOMEM;
	id->nsleepers = 0;
	id->nworkers = nworkers;
	/* Workers start unparked and not searching. */
	STORE(&id->state, (uint32_t)nworkers << 16, relaxed);
	pthread_mutex_init(&id->lock, NULL);
	return 0;
}

void idle_destroy(struct idle *id)
{
	pthread_mutex_destroy(&id->lock);
	free(id->sleepers);
}

void idle_notify(struct weft_rt *rt)
{
	struct idle *id = &rt->idle;
	uint32_t s;
	int victim = -1;

	/* Rule 1: the task was published before this fence. */
	FENCE(seq_cst);
	s = LOAD(&id->state, relaxed);
	if (n_searching(s) != 0 || n_unparked(s) >= (uint32_t)id->nworkers)
		return;
	pthread_mutex_lock(&id->lock);
	s = LOAD(&id->state, seq_cst);
	if (n_searching(s) == 0 && id->nsleepers > 0) {
		victim = id->sleepers[--id->nsleepers];
		FADD(&id->state, UNPARK_ONE | SEARCH_ONE, seq_cst);
		/* Under the lock, together with the sleepers list and the
		 * counts: a parker whose wait timed out decides under the same
		 * lock whether it was notified (rule 5). */
		STORE(&rt->workers[victim]->park, PARK_NOTIFIED, release);
	}
	pthread_mutex_unlock(&id->lock);
	if (victim >= 0)
		weft__io_unpark(rt->workers[victim]);
}

void idle_notify_hint(struct weft_rt *rt)
{
	uint32_t s = LOAD(&rt->idle.state, relaxed);

	if (n_searching(s) == 0 && n_unparked(s) < (uint32_t)rt->idle.nworkers)
		idle_notify(rt);
}

bool idle_begin_search(struct weft_rt *rt, struct worker *w)
{
	struct idle *id = &rt->idle;
	uint32_t s;

	if (w->searching)
		return true;
	s = LOAD(&id->state, seq_cst);
	/* Rule 2: at most half of the unparked workers search. */
	if (2 * n_searching(s) >= n_unparked(s) && n_searching(s) > 0)
		return false;
	FADD(&id->state, SEARCH_ONE, seq_cst);
	w->searching = true;
	return true;
}

void idle_end_search(struct weft_rt *rt, struct worker *w)
{
	uint32_t prev;

	if (!w->searching)
		return;
	w->searching = false;
	prev = FSUB(&rt->idle.state, SEARCH_ONE, seq_cst);
	if (n_searching(prev) == 1)
		idle_notify(rt); /* rule 3 */
}

void idle_park(struct weft_rt *rt, struct worker *w, uint64_t deadline)
{
	struct idle *id = &rt->idle;
	bool recheck;
	uint32_t prev;

	/* Rule 4. */
	pthread_mutex_lock(&id->lock);
	STORE(&w->park, PARK_WAITING, relaxed);
	prev = FSUB(&id->state, UNPARK_ONE | (w->searching ? SEARCH_ONE : 0),
		    seq_cst);
	/* The re-check falls to the last searcher, and to the last worker
	 * to park: no busy worker is left to reach work that a producer
	 * queued without notifying (it may have seen this worker still
	 * counted as unparked). */
	recheck = (w->searching && n_searching(prev) == 1) ||
		  n_unparked(prev) == 1;
	w->searching = false;
	id->sleepers[id->nsleepers++] = w->index;
	pthread_mutex_unlock(&id->lock);

	if (recheck) {
		FENCE(seq_cst);
		if (weft__rt_has_work(rt))
			idle_notify(rt);
	}

	/* Rule 5. acquire: pairs with the notifier's release store. */
	while (LOAD(&w->park, acquire) == PARK_WAITING &&
	       !LOAD(&rt->stop, relaxed)) {
		uint64_t now = weft_now();

		if (deadline <= now)
			break;
		/* Completions woke tasks onto our queue: stop parking. */
		if (weft__io_wait(w, deadline) > 0)
			break;
	}

	pthread_mutex_lock(&id->lock);
	if (LOAD(&w->park, relaxed) == PARK_WAITING) {
		/* Timed out (or stopping): nobody popped us; do it here. */
		for (int i = 0; i < id->nsleepers; i++) {
			if (id->sleepers[i] == w->index) {
				id->sleepers[i] = id->sleepers[--id->nsleepers];
				break;
			}
		}
		FADD(&id->state, UNPARK_ONE, seq_cst);
		STORE(&w->park, PARK_NOTIFIED, relaxed);
	} else {
		/* A notifier counted us as searching (rule 1). */
		w->searching = true;
	}
	pthread_mutex_unlock(&id->lock);
}

void idle_wake_all(struct weft_rt *rt)
{
	struct idle *id = &rt->idle;

	/* Rule 1 for every sleeper at once: each is popped, counted and
	 * notified, so none can miss the stop flag by entering its wait
	 * after reading it. */
	pthread_mutex_lock(&id->lock);
	while (id->nsleepers > 0) {
		int v = id->sleepers[--id->nsleepers];

		FADD(&id->state, UNPARK_ONE | SEARCH_ONE, seq_cst);
		STORE(&rt->workers[v]->park, PARK_NOTIFIED, release);
		weft__io_unpark(rt->workers[v]);
	}
	pthread_mutex_unlock(&id->lock);
}
