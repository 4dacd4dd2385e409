/* SPDX-License-Identifier: MIT */
/*
 * Parking and waking workers without losing a wake-up and without a
 * thundering herd.
 *
 * State: `state` counts unparked workers and, among them, searching ones
 * (looking for work to steal). `sleepers` lists parked workers, under lock,
 * in two lists, FREE and IO (see "Workers waiting for their own I/O").
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
 *     RMW, and adds itself to a `sleepers` list. If it was the last
 *     searcher, it then (after FENCE(seq_cst)) looks at every run queue and
 *     the inject queue again, and if any holds work, notifies (rule 1: that
 *     may be itself).
 *  5. It then waits in its I/O driver until park == NOTIFIED, its next
 *     timer is due, I/O completions made tasks runnable on its queue, or
 *     (on the IO list) IO_GRACE_NS passed. Unless a notifier got there
 *     first, in which case it is already counted as a searcher, it then
 *     removes itself from its list under lock and counts itself unparked
 *     again (not searching).
 *
 * Local pushes: a worker that queues work on its OWN run queue is awake and
 * will run that work itself, so a missed notify there costs parallelism,
 * never liveness. It uses a hint: the same test without the fence, which
 * can read a stale `state` and skip a notify. The worker repeats the hint
 * every INJECT_INTERVAL ticks while its queue is not empty (sched.c
 * maintenance), which bounds how long a parked worker can miss stealable
 * work. A worker's overflow spill into the inject queue is the same case
 * (the spilling worker is awake and polls the inject queue) and also uses
 * the hint. Pushes from outside the workers, which only a worker can run,
 * always use the full rule 1.
 *
 * Workers waiting for their own I/O. A worker that parks with operations
 * in flight goes on the IO list, one with nothing in flight on the FREE
 * list. Tasks that its completions woke are I/O-bound work with a home:
 * their next operation goes to the same ring, and the worker whose
 * completions come in is about to be awake anyway. Waking another worker
 * for them costs a system call on both sides and mostly trades
 * connections between workers that each have their own; with two workers
 * on a loopback echo server that took a third of the CPU time and left
 * weft at 0.8x the round trips of a raw io_uring server. So:
 *  - idle_notify_free() (the hint for tasks woken by completions, which
 *    includes a task woken while it was still switching away, and the
 *    periodic repeat) wakes only a FREE worker;
 *  - idle_notify_hint() (new work: spawns, wakes by other tasks, timers),
 *    rule 1 and rules 3 and 4 prefer a FREE worker and otherwise wake an
 *    IO one, as before;
 *  - a worker whose backlog outlived a whole maintenance interval (sched.c)
 *    asks with idle_notify_hint() too: it is behind, not just batching.
 * An IO worker wakes at its next completion and, when its own queue runs
 * dry, takes one pass over the other queues (without spinning) before it
 * parks again (sched.c steal), which is how completions' work still
 * spreads. In case its I/O has gone quiet (idle connections), it waits at
 * most IO_GRACE_NS; if no completion woke a task by then, it stops
 * counting on its I/O (io_quiet, until a completion arrives), looks for
 * work, and parks on the FREE list. Deciding by this rather than by a
 * shorter grace matters: on a busy machine a worker often waits a few
 * milliseconds for its CPU, and a grace of 50 us or 1 ms ran out so often
 * that the cross wakes came back.
 *
 * Parallelism, not liveness: a worker that may not search (rule 2) parks
 * without re-checking the queues; if the last searcher stops searching
 * before that worker is on `sleepers`, the rule 3 notify finds nobody and
 * work waits for a busy worker to reach it. Tokio has the same shape.
 *
 * The monitor (monitor.c) sleeps while every worker is parked; both places
 * that count a worker unparked tell it when the count leaves 0.
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

/* The sleeper lists. */
#define FREE 0
#define IO 1

/* How long a worker parked for its own I/O may wait for a completion
 * before it stops counting on it (see above): longer than the scheduling
 * delays of a busy machine, short next to a connection's idle time. */
#define IO_GRACE_NS 10000000ull

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
	id->sleepers[FREE] = calloc(2 * (size_t)nworkers, sizeof(int));
	if (!id->sleepers[FREE])
		return -ENOMEM;
	id->sleepers[IO] = id->sleepers[FREE] + nworkers;
	id->nsleepers[FREE] = id->nsleepers[IO] = 0;
	id->nworkers = nworkers;
	/* Workers start unparked and not searching. */
	STORE(&id->state, (uint32_t)nworkers << 16, relaxed);
	STORE(&id->nfree, 0, relaxed);
	pthread_mutex_init(&id->lock, NULL);
	return 0;
}

void idle_destroy(struct idle *id)
{
	pthread_mutex_destroy(&id->lock);
	free(id->sleepers[FREE]);
}

/* Under lock, after `list` changed: nfree follows the FREE list. */
static void list_changed(struct idle *id, int list)
{
	if (list == FREE)
		STORE(&id->nfree, (uint32_t)id->nsleepers[FREE], relaxed);
}

/* Under lock: takes a parked worker off `list`, counts it unparked and
 * searching, and marks it notified (rule 1). */
static struct worker *pop_sleeper(struct weft_rt *rt, int list)
{
	struct idle *id = &rt->idle;
	int i = id->sleepers[list][--id->nsleepers[list]];
	struct worker *v = rt->workers[i];

	list_changed(id, list);
	if (n_unparked(FADD(&id->state, UNPARK_ONE | SEARCH_ONE, seq_cst)) == 0)
		monitor_unparked(rt);
	/* Under the lock, together with the lists and the counts: a parker
	 * whose wait timed out decides under the same lock whether it was
	 * notified (rule 5). */
	STORE(&v->park, PARK_NOTIFIED, release);
	return v;
}

/* Rule 1; with `io`, an IO worker too when no FREE one is parked. */
static void notify(struct weft_rt *rt, bool io)
{
	struct idle *id = &rt->idle;
	struct worker *v = NULL;
	uint32_t s;

	/* The task was published before this fence. */
	FENCE(seq_cst);
	s = LOAD(&id->state, relaxed);
	if (n_searching(s) != 0 || n_unparked(s) >= (uint32_t)id->nworkers)
		return;
	if (!io && LOAD(&id->nfree, relaxed) == 0)
		return;
	pthread_mutex_lock(&id->lock);
	s = LOAD(&id->state, seq_cst);
	if (n_searching(s) == 0) {
		if (id->nsleepers[FREE] > 0)
			v = pop_sleeper(rt, FREE);
		else if (io && id->nsleepers[IO] > 0)
			v = pop_sleeper(rt, IO);
	}
	pthread_mutex_unlock(&id->lock);
	if (v)
		weft__io_unpark(v);
}

void idle_notify(struct weft_rt *rt)
{
	notify(rt, true);
}

void idle_notify_hint(struct weft_rt *rt)
{
	uint32_t s = LOAD(&rt->idle.state, relaxed);

	if (n_searching(s) == 0 && n_unparked(s) < (uint32_t)rt->idle.nworkers)
		notify(rt, true);
}

void idle_notify_free(struct weft_rt *rt)
{
	uint32_t s = LOAD(&rt->idle.state, relaxed);

	if (n_searching(s) == 0 && LOAD(&rt->idle.nfree, relaxed) != 0)
		notify(rt, false);
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
	bool io = !w->io_quiet && weft__io_busy(w);
	uint64_t until = deadline;
	bool recheck;
	uint32_t prev;
	int list = io ? IO : FREE;

	if (io) {
		uint64_t grace = weft_now() + IO_GRACE_NS;

		if (grace < until)
			until = grace;
	}
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
	id->sleepers[list][id->nsleepers[list]++] = w->index;
	list_changed(id, list);
	pthread_mutex_unlock(&id->lock);

	if (recheck) {
		FENCE(seq_cst);
		if (weft__rt_has_work(rt))
			idle_notify(rt);
	}

	/* Rule 5. acquire: pairs with the notifier's release store. */
	while (LOAD(&w->park, acquire) == PARK_WAITING &&
	       !LOAD(&rt->stop, relaxed)) {
		if (until <= weft_now()) {
			/* Its I/O stayed quiet a whole grace period. */
			if (until < deadline)
				w->io_quiet = true;
			break;
		}
		/* Completions woke tasks onto our queue: stop parking. */
		if (weft__io_wait(w, until) > 0)
			break;
	}

	pthread_mutex_lock(&id->lock);
	if (LOAD(&w->park, relaxed) == PARK_WAITING) {
		/* Timed out (or stopping): nobody popped us; do it here. */
		int *v = id->sleepers[list];

		for (int i = 0; i < id->nsleepers[list]; i++) {
			if (v[i] == w->index) {
				v[i] = v[--id->nsleepers[list]];
				break;
			}
		}
		list_changed(id, list);
		if (n_unparked(FADD(&id->state, UNPARK_ONE, seq_cst)) == 0)
			monitor_unparked(rt);
		STORE(&w->park, PARK_NOTIFIED, relaxed);
	} else {
		/* A notifier counted us as searching (rule 1). */
		w->searching = true;
	}
	pthread_mutex_unlock(&id->lock);
}

bool idle_all_parked(struct weft_rt *rt)
{
	return n_unparked(LOAD(&rt->idle.state, seq_cst)) == 0;
}

void idle_wake_all(struct weft_rt *rt)
{
	struct idle *id = &rt->idle;

	/* Rule 1 for every sleeper at once: each is popped, counted and
	 * notified, so none can miss the stop flag by entering its wait
	 * after reading it. */
	pthread_mutex_lock(&id->lock);
	for (int list = FREE; list <= IO; list++)
		while (id->nsleepers[list] > 0)
			weft__io_unpark(pop_sleeper(rt, list));
	pthread_mutex_unlock(&id->lock);
}
