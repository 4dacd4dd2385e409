/* SPDX-License-Identifier: MIT */
/*
 * Scheduler stress validator: thousands of tasks that randomly spawn,
 * yield, sleep, open short deadline scopes, cancel, join and detach one
 * another, and a few that compute for 15 ms right after a spawn, across
 * any number of workers. Every choice comes from a per-task xorshift state
 * derived from one seed, which is printed; the interleaving is up to the
 * scheduler.
 *
 *	stress_sched [workers [seed [size]]]
 *
 * workers defaults to 4, seed to one taken from the clock, size (the number
 * of tasks, not counting the first) to 200,000, or 20,000 in sanitizer builds
 * (under TSan every live task is a TSan fiber with its own trace buffers,
 * and 50,000 of them at once exhaust its memory mappings).
 *
 * Every task has a node, allocated by its spawner before the spawn. At the
 * end every count must add up:
 *	- each body ran at most once; bodies started == bodies finished;
 *	- a task that never ran had been cancelled (cancel_asked);
 *	- a task saw -ECANCELED only after someone asked to cancel it;
 *	- each handle was consumed once: joined + detached == spawned with a
 *	  handle; each join stored the body's value, or -ECANCELED for a task
 *	  that never ran.
 *
 * So that the final cancellation by weft_run cannot be taken for a wrong
 * one, the first task returns only when no body is running and every task
 * not cancelled has finished, and a task never spawns once it has been
 * asked to cancel (its spawner sets cancel_asked before weft_cancel).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "weft_test.h"

/* End-of-run counts, reported under this program's name. */
#define check(...) wt_check("stress_sched", __VA_ARGS__)

#define MAX_CHILDREN 8
#define TOP_TASKS 64

struct node {
	uint64_t index;
	int expect;			/* the body's return value */
	_Atomic int ran;		/* body entries */
	_Atomic int done;		/* body returned */
	_Atomic int cancel_asked;	/* set before any weft_cancel of it */
	_Atomic int saw_cancel;		/* a call of it returned -ECANCELED */
};

struct child {
	weft_task *t;
	struct node *n;
};

static uint64_t seed;
static unsigned size;
static struct node *nodes;
static _Atomic unsigned allocated;

static _Atomic long spawned, spawned_detached, spawn_failed;
static _Atomic long started, finished, joined, join_never_ran, detached;
static _Atomic long join_interrupted, cancels, cancels_esrch, yields;
static _Atomic long sleeps, timeouts, shields, saw_cancels, peak_live;
static _Atomic long computes;

static int body(void *arg);

static struct node *node_alloc(void)
{
	unsigned i = atomic_load(&allocated);

	do {
		if (i >= size)
			return NULL;
	} while (!atomic_compare_exchange_weak(&allocated, &i, i + 1));
	nodes[i].index = i;
	nodes[i].expect = (int)(wt_seed(seed, i) & 0xffffff) + 1;
	return &nodes[i];
}

/* Spawns a child unless the budget is spent; out == NULL: detached. */
static bool spawn_child(struct child *c, bool keep_handle)
{
	struct node *n = node_alloc();
	int rc;

	if (!n)
		return false;
	c->n = n;
	c->t = NULL;
	rc = weft_spawn(keep_handle ? &c->t : NULL, body, n);
	WT_CHECK_EQ(rc, 0);
	if (rc != 0) {
		/* Keep the node consistent: it will never run. */
		atomic_store(&n->cancel_asked, 1);
		atomic_fetch_add(&spawn_failed, 1);
		return false;
	}
	atomic_fetch_add(&spawned, 1);
	if (!keep_handle)
		atomic_fetch_add(&spawned_detached, 1);
	return true;
}

static void cancel_child(struct child *c)
{
	int rc;

	atomic_store(&c->n->cancel_asked, 1);
	rc = weft_cancel(c->t);
	WT_CHECK(rc == 0 || rc == -ESRCH);
	atomic_fetch_add(rc == 0 ? &cancels : &cancels_esrch, 1);
}

/* Joins c; on success checks the stored value. Returns weft_join's
 * result. */
static int join_child(struct child *c)
{
	int res = 0x7fffffff;
	int rc = weft_join(c->t, &res);

	if (rc != 0) {
		WT_CHECK(rc == -ECANCELED || rc == -ETIMEDOUT);
		atomic_fetch_add(&join_interrupted, 1);
		return rc;
	}
	atomic_fetch_add(&joined, 1);
	if (atomic_load(&c->n->ran)) {
		WT_CHECK_EQ(res, c->n->expect);
	} else {
		WT_CHECK_EQ(res, -ECANCELED);
		WT_CHECK(atomic_load(&c->n->cancel_asked));
		atomic_fetch_add(&join_never_ran, 1);
	}
	return 0;
}

static void detach_child(struct child *c)
{
	weft_detach(c->t);
	atomic_fetch_add(&detached, 1);
}

static void remove_child(struct child *kids, int *nkids, int i)
{
	kids[i] = kids[--*nkids];
}

/*
 * Notes the result of a suspending call. Returns true if the task has been
 * cancelled (which must have been asked for).
 */
static bool note(struct node *self, int rc, bool in_scope)
{
	if (rc == 0)
		return false;
	if (rc == -ETIMEDOUT && in_scope) {
		atomic_fetch_add(&timeouts, 1);
		return false;
	}
	WT_CHECK_EQ(rc, -ECANCELED);
	WT_CHECK(atomic_load(&self->cancel_asked));
	if (!atomic_exchange(&self->saw_cancel, 1))
		atomic_fetch_add(&saw_cancels, 1);
	return true;
}

/* Widens race windows now and then. */
static void stall(uint64_t *rng)
{
	volatile unsigned i, n = wt_below(rng, 2000);

	for (i = 0; i < n; i++)
		;
}

/*
 * A few times a run, a computation longer than the monitor's period right
 * after a spawn: the child waits in this worker's LIFO slot until the
 * monitor moves it to another worker (runtime/monitor.c), while the rest of
 * the run goes on around it.
 */
#define COMPUTES 24
#define COMPUTE_NS (15 * WT_MS)

static bool compute_after_spawn(struct node *self, struct child *c)
{
	uint64_t t0;

	if (atomic_load(&self->cancel_asked) ||
	    atomic_load(&computes) >= COMPUTES || !spawn_child(c, true))
		return false;
	if (atomic_fetch_add(&computes, 1) < COMPUTES) {
		t0 = weft_now();
		while (weft_now() - t0 < COMPUTE_NS)
			;
	}
	return c->t != NULL;
}

static int body(void *arg)
{
	struct node *self = arg;
	struct child kids[MAX_CHILDREN];
	uint64_t rng = wt_seed(seed ^ 0x5bd1e995u, self->index);
	unsigned ops = 4 + wt_below(&rng, 16);
	bool cancelled = false;
	int nkids = 0, i;
	long live, peak;

	if (atomic_fetch_add(&self->ran, 1) != 0)
		WT_CHECK(!"task body ran twice");
	live = atomic_fetch_add(&started, 1) + 1 - atomic_load(&finished);
	peak = atomic_load_explicit(&peak_live, memory_order_relaxed);
	while (live > peak &&
	       !atomic_compare_exchange_weak(&peak_live, &peak, live))
		;

	while (ops-- && !cancelled) {
		unsigned pick = wt_below(&rng, 100);
		int k = nkids ? (int)wt_below(&rng, (unsigned)nkids) : -1;

		if (pick < 30) {
			/* Never spawn once asked to cancel: see the top. */
			if (nkids < MAX_CHILDREN &&
			    !atomic_load(&self->cancel_asked) &&
			    spawn_child(&kids[nkids], wt_below(&rng, 8) != 0))
				nkids += kids[nkids].t != NULL;
		} else if (pick < 48) {
			atomic_fetch_add(&yields, 1);
			cancelled = note(self, weft_yield(), false);
		} else if (pick < 60) {
			atomic_fetch_add(&sleeps, 1);
			cancelled = note(self, weft_sleep((uint64_t)wt_below(
							  &rng, 200) * WT_US),
					 false);
		} else if (pick < 66) {
			WT_CHECK_EQ(weft_timeout_begin((uint64_t)wt_below(
					    &rng, 300) * WT_US), 0);
			cancelled = note(self, weft_sleep((uint64_t)wt_below(
							  &rng, 600) * WT_US),
					 true);
			WT_CHECK(weft_timeout_end() >= 0);
		} else if (pick < 76) {
			if (k >= 0)
				cancel_child(&kids[k]);
		} else if (pick < 90) {
			if (k >= 0) {
				int rc = join_child(&kids[k]);

				if (rc == 0)
					remove_child(kids, &nkids, k);
				else
					cancelled = note(self, rc, false);
			}
		} else if (pick < 95) {
			if (k >= 0) {
				detach_child(&kids[k]);
				remove_child(kids, &nkids, k);
			}
		} else if (wt_below(&rng, 256) == 0 && nkids < MAX_CHILDREN) {
			nkids += compute_after_spawn(self, &kids[nkids]);
		} else {
			stall(&rng);
		}
	}

	/*
	 * Cleanup. Not cancelled: join the children (a cancellation may
	 * still interrupt that). Cancelled: in a shield, cancel some of them
	 * and join them all, or detach them.
	 */
	while (nkids && !cancelled) {
		int rc = join_child(&kids[nkids - 1]);

		if (rc == 0)
			nkids--;
		else
			cancelled = note(self, rc, false);
	}
	if (nkids && wt_below(&rng, 4) == 0) {
		for (i = 0; i < nkids; i++)
			detach_child(&kids[i]);
		nkids = 0;
	}
	if (nkids) {
		atomic_fetch_add(&shields, 1);
		WT_CHECK_EQ(weft_shield_begin(), 0);
		for (i = 0; i < nkids; i++)
			if (wt_below(&rng, 2))
				cancel_child(&kids[i]);
		for (i = 0; i < nkids; i++)
			WT_CHECK_EQ(join_child(&kids[i]), 0);
		WT_CHECK_EQ(weft_shield_end(), 0);
	}
	atomic_fetch_add(&finished, 1);
	atomic_store(&self->done, 1);
	return self->expect;
}

/* True when no body runs and every task not cancelled has finished. */
static bool quiescent(void)
{
	unsigned n = atomic_load(&allocated), i;
	long f, s;

	for (i = 0; i < n; i++)
		if (!atomic_load(&nodes[i].done) &&
		    !atomic_load(&nodes[i].cancel_asked))
			return false;
	/* finished first: equal counts then mean that no body was running
	 * when finished was read. */
	f = atomic_load(&finished);
	s = atomic_load(&started);
	return f == s && atomic_load(&allocated) == n;
}

static int root(void *arg)
{
	struct child top[TOP_TASKS];
	uint64_t rng = wt_seed(seed, UINT32_MAX);
	int ntop = 0, i;

	(void)arg;
	for (i = 0; i < TOP_TASKS; i++)
		if (spawn_child(&top[ntop], true))
			ntop++;
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	for (i = 0; i < ntop; i++)
		if (wt_below(&rng, 8) == 0)
			cancel_child(&top[i]);
	for (i = 0; i < ntop; i++)
		WT_CHECK_EQ(join_child(&top[i]), 0);
	while (!quiescent())
		WT_CHECK_EQ(weft_sleep(200 * WT_US), 0);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long workers;
	weft_config cfg;
	long never_ran = 0, ran = 0, lost = 0, computed;
	unsigned i, n;
	bool ok = true;
	int rc, r = -1;

	if (wt_stress_args(argc, argv, &workers, &seed, &size,
			   WT_SCALE(200000, 20000)))
		return 2;
	printf("stress_sched: workers=%lu seed=%" PRIu64 " size=%u\n",
	       workers, seed, size);
	fflush(stdout);

	nodes = calloc(size, sizeof(*nodes));
	if (!nodes)
		return 2;
	cfg = wt_cfg((unsigned)workers);
	rc = weft_run(&cfg, root, NULL, &r);
	ok &= check("weft_run", rc, 0);
	ok &= check("first task's result", r, 0);

	n = atomic_load(&allocated);
	for (i = 0; i < n; i++) {
		struct node *x = &nodes[i];
		int runs = atomic_load(&x->ran);

		if (runs > 1 || (runs && !atomic_load(&x->done)) ||
		    (!runs && !atomic_load(&x->cancel_asked))) {
			fprintf(stderr,
				"stress_sched: task %u: ran %d times, done %d, "
				"cancel asked %d\n", i, runs,
				atomic_load(&x->done),
				atomic_load(&x->cancel_asked));
			lost++;
		}
		ran += runs != 0;
		never_ran += runs == 0;
	}
	/* Claims past COMPUTES spawned but did not compute. */
	computed = atomic_load(&computes);
	if (computed > COMPUTES)
		computed = COMPUTES;
	printf("spawned %ld (%ld detached, %ld failed), ran %ld, never ran "
	       "%ld, at most %ld at once; joined %ld (%ld never ran), detached %ld, joins "
	       "interrupted %ld; cancels %ld (+%ld -ESRCH), saw cancel %ld; "
	       "yields %ld, sleeps %ld, deadlines hit %ld, shields %ld, "
	       "computations %ld\n",
	       atomic_load(&spawned), atomic_load(&spawned_detached),
	       atomic_load(&spawn_failed), ran, never_ran,
	       atomic_load(&peak_live),
	       atomic_load(&joined), atomic_load(&join_never_ran),
	       atomic_load(&detached), atomic_load(&join_interrupted),
	       atomic_load(&cancels), atomic_load(&cancels_esrch),
	       atomic_load(&saw_cancels), atomic_load(&yields),
	       atomic_load(&sleeps), atomic_load(&timeouts),
	       atomic_load(&shields), computed);

	ok &= check("tasks with a bad record", lost, 0);
	ok &= check("checks failed inside tasks", wt_take_failures(), 0);
	ok &= check("spawn failures", atomic_load(&spawn_failed), 0);
	ok &= check("nodes vs spawned", n, atomic_load(&spawned));
	ok &= check("bodies started vs tasks that ran",
		    atomic_load(&started), ran);
	ok &= check("bodies finished vs started", atomic_load(&finished),
		    atomic_load(&started));
	ok &= check("spawned vs ran + never ran", atomic_load(&spawned),
		    ran + never_ran);
	ok &= check("handles: joined + detached vs spawned with a handle",
		    atomic_load(&joined) + atomic_load(&detached),
		    atomic_load(&spawned) - atomic_load(&spawned_detached));
	free(nodes);
	printf("stress_sched: %s (seed %" PRIu64 ")\n", ok ? "PASS" : "FAIL",
	       seed);
	return ok ? 0 : 1;
}
