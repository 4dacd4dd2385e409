/* SPDX-License-Identifier: MIT */
/*
 * Sync stress validator: many tasks on N workers pick random operations
 * on one mutex, one semaphore, one RW lock and one condition variable
 * (with its own mutex), yield at random inside and outside critical
 * sections, and sometimes open short deadline scopes; a canceller task
 * cancels random tasks. Every choice comes from per-task xorshift states
 * derived from one printed seed.
 *
 *	stress_sync [workers [seed [size]]]
 *
 * size is the number of tasks (default 400, 100 in sanitizer builds);
 * each does up to 300 operations. At the end:
 *	- the plain counter the mutex protects equals the number of lock
 *	  calls that returned 0 (a lock that returned an error held nothing);
 *	- at most one mutex holder, at most SEM_N semaphore holders, never a
 *	  reader beside a writer nor two writers (checked on every entry);
 *	- condition tokens produced == consumed + left over;
 *	- every object is free again (trylock / tryacquire succeed);
 *	- a task saw -ECANCELED only if it had been cancelled.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "weft_test.h"

/* End-of-run counts, reported under this program's name. */
#define check(...) wt_check("stress_sync", __VA_ARGS__)

#define SEM_N 3
#define OPS 300

struct node {
	weft_task *t;
	uint64_t index;
	_Atomic int cancel_asked;
};

static uint64_t seed;
static unsigned size;
static struct node *nodes;

static weft_mutex mtx = WEFT_MUTEX_INIT;
static long counter;			/* under mtx */
static _Atomic long lock_ok, lock_err;
static _Atomic int mtx_in;

static weft_sem sem = WEFT_SEM_INIT(SEM_N);
static _Atomic int sem_in, sem_max;
static _Atomic long sem_ok, sem_err;

static weft_rwlock rw = WEFT_RWLOCK_INIT;
static _Atomic int rd_in, wr_in;
static long rw_a, rw_b;			/* written under the write lock */
static _Atomic long rd_ok, wr_ok, rw_err;

static weft_mutex cmtx = WEFT_MUTEX_INIT;
static weft_cond cv = WEFT_COND_INIT;
static long tokens;			/* under cmtx */
static _Atomic long produced, consumed, cond_err;

static _Atomic long yields, scopes, saw_cancel, bad_cancel;
static _Atomic int running;

static void stall(uint64_t *rng)
{
	volatile unsigned i, n = wt_below(rng, 1000);

	for (i = 0; i < n; i++)
		;
}

static void maybe_yield(uint64_t *rng)
{
	if (wt_below(rng, 4) == 0) {
		atomic_fetch_add(&yields, 1);
		(void)weft_yield(); /* may be -ECANCELED: the next call tells */
	} else if (wt_below(rng, 4) == 0) {
		stall(rng);
	}
}

/* Classifies a failed call. Returns true when the task should stop. */
static bool failed(struct node *self, int rc, bool scoped)
{
	if (rc == -ETIMEDOUT && scoped)
		return false;
	if (rc == -ECANCELED) {
		atomic_fetch_add(&saw_cancel, 1);
		if (!atomic_load(&self->cancel_asked))
			atomic_fetch_add(&bad_cancel, 1);
		return true;
	}
	fprintf(stderr, "stress_sync: unexpected result %d\n", rc);
	WT_CHECK(!"unexpected result");
	return true;
}

static bool op_mutex(struct node *self, uint64_t *rng, bool scoped)
{
	int rc = wt_below(rng, 5) ? weft_mutex_lock(&mtx)
				  : weft_mutex_trylock(&mtx);

	if (rc == -EAGAIN)
		return false;
	if (rc) {
		atomic_fetch_add(&lock_err, 1);
		return failed(self, rc, scoped);
	}
	WT_CHECK_EQ(atomic_fetch_add(&mtx_in, 1), 0);
	counter++;
	maybe_yield(rng);
	atomic_fetch_add(&lock_ok, 1);
	WT_CHECK_EQ(atomic_fetch_sub(&mtx_in, 1), 1);
	WT_CHECK_EQ(weft_mutex_unlock(&mtx), 0);
	return false;
}

static bool op_sem(struct node *self, uint64_t *rng, bool scoped)
{
	int rc = wt_below(rng, 5) ? weft_sem_acquire(&sem)
				  : weft_sem_tryacquire(&sem);
	int v, m;

	if (rc == -EAGAIN)
		return false;
	if (rc) {
		atomic_fetch_add(&sem_err, 1);
		return failed(self, rc, scoped);
	}
	v = atomic_fetch_add(&sem_in, 1) + 1;
	m = atomic_load(&sem_max);
	while (v > m && !atomic_compare_exchange_weak(&sem_max, &m, v))
		;
	WT_CHECK(v <= SEM_N);
	maybe_yield(rng);
	atomic_fetch_sub(&sem_in, 1);
	atomic_fetch_add(&sem_ok, 1);
	WT_CHECK_EQ(weft_sem_release(&sem), 0);
	return false;
}

static bool op_rw(struct node *self, uint64_t *rng, bool scoped)
{
	bool writer = wt_below(rng, 4) == 0;
	int rc;

	if (writer)
		rc = wt_below(rng, 5) ? weft_rwlock_wrlock(&rw)
				      : weft_rwlock_trywrlock(&rw);
	else
		rc = wt_below(rng, 5) ? weft_rwlock_rdlock(&rw)
				      : weft_rwlock_tryrdlock(&rw);
	if (rc == -EAGAIN)
		return false;
	if (rc) {
		atomic_fetch_add(&rw_err, 1);
		return failed(self, rc, scoped);
	}
	if (writer) {
		WT_CHECK_EQ(atomic_fetch_add(&wr_in, 1), 0);
		WT_CHECK_EQ(atomic_load(&rd_in), 0);
		rw_a++;
		maybe_yield(rng);
		rw_b++;
		atomic_fetch_add(&wr_ok, 1);
		WT_CHECK_EQ(atomic_fetch_sub(&wr_in, 1), 1);
	} else {
		atomic_fetch_add(&rd_in, 1);
		WT_CHECK_EQ(atomic_load(&wr_in), 0);
		WT_CHECK_EQ(rw_a, rw_b);
		maybe_yield(rng);
		WT_CHECK_EQ(rw_a, rw_b);
		atomic_fetch_add(&rd_ok, 1);
		atomic_fetch_sub(&rd_in, 1);
	}
	WT_CHECK_EQ(weft_rwlock_unlock(&rw), 0);
	return false;
}

/* Produce a token, or consume one waiting on the condition (with a
 * short deadline so that a consumer never waits for ever). */
static bool op_cond(struct node *self, uint64_t *rng, bool scoped)
{
	bool produce = wt_below(rng, 2) == 0, own_scope = false;
	int rc = weft_mutex_lock(&cmtx);

	if (rc) {
		atomic_fetch_add(&cond_err, 1);
		return failed(self, rc, scoped);
	}
	if (produce) {
		tokens++;
		atomic_fetch_add(&produced, 1);
		WT_CHECK_EQ(wt_below(rng, 2) ? weft_cond_signal(&cv)
					     : weft_cond_broadcast(&cv), 0);
		WT_CHECK_EQ(weft_mutex_unlock(&cmtx), 0);
		return false;
	}
	if (!scoped) {
		WT_CHECK_EQ(weft_timeout_begin((1 + wt_below(rng, 500)) *
					       WT_US), 0);
		own_scope = true;
	}
	rc = 0;
	while (tokens == 0 && rc == 0)
		rc = weft_cond_wait(&cv, &cmtx);
	/* Held again in every case. */
	WT_CHECK_EQ(weft_mutex_trylock(&cmtx), -EAGAIN);
	if (tokens > 0) {
		tokens--;
		atomic_fetch_add(&consumed, 1);
	}
	WT_CHECK_EQ(weft_mutex_unlock(&cmtx), 0);
	if (own_scope)
		WT_CHECK(weft_timeout_end() >= 0);
	if (rc) {
		atomic_fetch_add(&cond_err, 1);
		return failed(self, rc, true);
	}
	return false;
}

static int body(void *arg)
{
	struct node *self = arg;
	uint64_t rng = wt_seed(seed, self->index);
	unsigned ops = OPS / 2 + wt_below(&rng, OPS / 2), i;
	bool stop = false;

	for (i = 0; i < ops && !stop; i++) {
		bool scoped = wt_below(&rng, 10) == 0;
		unsigned pick = wt_below(&rng, 4);

		if (scoped) {
			atomic_fetch_add(&scopes, 1);
			WT_CHECK_EQ(weft_timeout_begin(wt_below(&rng, 300) *
						       WT_US), 0);
		}
		switch (pick) {
		case 0: stop = op_mutex(self, &rng, scoped); break;
		case 1: stop = op_sem(self, &rng, scoped); break;
		case 2: stop = op_rw(self, &rng, scoped); break;
		default: stop = op_cond(self, &rng, scoped); break;
		}
		if (scoped)
			WT_CHECK(weft_timeout_end() >= 0);
		maybe_yield(&rng);
	}
	atomic_fetch_sub(&running, 1);
	return 0;
}

static int root(void *arg)
{
	uint64_t rng = wt_seed(seed, UINT32_MAX);
	unsigned i;

	(void)arg;
	atomic_store(&running, (int)size);
	for (i = 0; i < size; i++) {
		nodes[i].index = i;
		WT_CHECK_EQ(weft_spawn(&nodes[i].t, body, &nodes[i]), 0);
	}
	/* Cancel about one task in eight at random moments. */
	for (i = 0; i < size / 8 && atomic_load(&running) > 0; i++) {
		struct node *n = &nodes[wt_below(&rng, size)];
		int rc;

		WT_CHECK_EQ(weft_sleep(wt_below(&rng, 200) * WT_US), 0);
		atomic_store(&n->cancel_asked, 1);
		rc = weft_cancel(n->t);
		WT_CHECK(rc == 0 || rc == -ESRCH);
	}
	for (i = 0; i < size; i++)
		WT_CHECK_EQ(weft_join(nodes[i].t, NULL), 0);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long workers;
	weft_config cfg;
	bool ok = true;
	int rc, r = -1;

	if (wt_stress_args(argc, argv, &workers, &seed, &size,
			   WT_SCALE(400, 100)))
		return 2;
	printf("stress_sync: workers=%lu seed=%" PRIu64 " size=%u\n",
	       workers, seed, size);
	fflush(stdout);
	nodes = calloc(size, sizeof(*nodes));
	if (!nodes)
		return 2;
	cfg = wt_cfg((unsigned)workers);
	rc = weft_run(&cfg, root, NULL, &r);
	ok &= check("weft_run", rc, 0);
	ok &= check("first task's result", r, 0);

	printf("mutex %ld ok %ld err; sem %ld ok %ld err (max %d); rw %ld "
	       "reads %ld writes %ld err; cond %ld produced %ld consumed "
	       "%ld err; yields %ld, scopes %ld, saw cancel %ld\n",
	       atomic_load(&lock_ok), atomic_load(&lock_err),
	       atomic_load(&sem_ok), atomic_load(&sem_err),
	       atomic_load(&sem_max), atomic_load(&rd_ok),
	       atomic_load(&wr_ok), atomic_load(&rw_err),
	       atomic_load(&produced), atomic_load(&consumed),
	       atomic_load(&cond_err), atomic_load(&yields),
	       atomic_load(&scopes), atomic_load(&saw_cancel));
	ok &= check("checks failed inside tasks", wt_take_failures(), 0);
	ok &= check("mutex counter vs successful locks", counter,
		    atomic_load(&lock_ok));
	ok &= check("semaphore max holders within permits",
		    atomic_load(&sem_max) <= SEM_N, 1);
	ok &= check("rw writes", rw_a, atomic_load(&wr_ok));
	ok &= check("rw fields", rw_b, rw_a);
	ok &= check("tokens produced vs consumed + left", atomic_load(&produced),
		    atomic_load(&consumed) + tokens);
	ok &= check("cancellations nobody asked for", atomic_load(&bad_cancel),
		    0);
	ok &= check("mutex free at the end", weft_mutex_trylock(&mtx), 0);
	ok &= check("cond mutex free at the end", weft_mutex_trylock(&cmtx), 0);
	ok &= check("rwlock free at the end", weft_rwlock_trywrlock(&rw), 0);
	ok &= check("semaphore permits at the end", weft_sem_value(&sem),
		    SEM_N);
	free(nodes);
	printf("stress_sync: %s (seed %" PRIu64 ")\n", ok ? "PASS" : "FAIL",
	       seed);
	return ok ? 0 : 1;
}
