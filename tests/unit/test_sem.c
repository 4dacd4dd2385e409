/* SPDX-License-Identifier: MIT */
/*
 * weft_sem: init, value, tryacquire -EAGAIN, release -EOVERFLOW, the
 * static initializer; never more holders than permits under stress (tasks
 * on 1-8 workers, and plain threads with them); FIFO service of waiters;
 * a waiter that is cancelled or times out takes no permit, and a later
 * release is not lost to it.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "weft_test.h"

static int run(unsigned workers, int (*fn)(void *), void *arg)
{
	weft_config c = wt_cfg(workers);
	int r = -12345;

	assert_int_equal(weft_run(&c, fn, arg, &r), 0);
	assert_int_equal(wt_take_failures(), 0);
	return r;
}

static weft_sem s3 = WEFT_SEM_INIT(3);

static void test_basic_plain(void **state)
{
	weft_sem s;

	(void)state;
	assert_int_equal(weft_sem_value(&s3), 3);
	assert_int_equal(weft_sem_init(NULL, 1), -EINVAL);
	assert_int_equal(weft_sem_init(&s, -1), -EINVAL);
	assert_int_equal(weft_sem_init(&s, 2), 0);
	assert_int_equal(weft_sem_value(&s), 2);
	assert_int_equal(weft_sem_acquire(&s), 0);
	assert_int_equal(weft_sem_tryacquire(&s), 0);
	assert_int_equal(weft_sem_value(&s), 0);
	assert_int_equal(weft_sem_tryacquire(&s), -EAGAIN);
	assert_int_equal(weft_sem_value(&s), 0);
	assert_int_equal(weft_sem_release(&s), 0);
	assert_int_equal(weft_sem_value(&s), 1);
	assert_int_equal(weft_sem_release(&s), 0);
	assert_int_equal(weft_sem_release(&s), 0);
	assert_int_equal(weft_sem_value(&s), 3);

	assert_int_equal(weft_sem_init(&s, 0), 0);
	assert_int_equal(weft_sem_tryacquire(&s), -EAGAIN);
	assert_int_equal(weft_sem_init(&s, INT64_MAX), 0);
	assert_int_equal(weft_sem_value(&s), INT64_MAX);
	assert_int_equal(weft_sem_release(&s), -EOVERFLOW);
	assert_int_equal(weft_sem_value(&s), INT64_MAX);
	assert_int_equal(weft_sem_tryacquire(&s), 0);
	assert_int_equal(weft_sem_release(&s), 0);
	assert_int_equal(weft_sem_release(&s), -EOVERFLOW);
}

/*
 * Stress: tasks (and, in the mixed test, plain threads) take a permit,
 * count themselves in `holders`, yield now and then, count out and
 * release. The maximum of holders never exceeds the permits; every
 * acquisition is counted, and all permits are back at the end.
 */
#define ST_TASKS 64
#define ST_PERMITS 3

static weft_sem st = WEFT_SEM_INIT(ST_PERMITS);
static _Atomic int holders, max_holders;
static _Atomic long acquisitions;
static unsigned st_iters;

static void hold(uint64_t *rng)
{
	int v = atomic_fetch_add(&holders, 1) + 1, m;

	m = atomic_load(&max_holders);
	while (v > m && !atomic_compare_exchange_weak(&max_holders, &m, v))
		;
	WT_CHECK(v <= ST_PERMITS);
	atomic_fetch_add(&acquisitions, 1);
	if (weft_current() && wt_below(rng, 3) == 0)
		WT_CHECK_EQ(weft_yield(), 0);
	atomic_fetch_sub(&holders, 1);
}

static int st_task(void *arg)
{
	uint64_t rng = wt_seed(3, (uintptr_t)arg);
	unsigned i;

	for (i = 0; i < st_iters; i++) {
		if (wt_below(&rng, 4) == 0) {
			int rc;

			while ((rc = weft_sem_tryacquire(&st)) == -EAGAIN)
				WT_CHECK_EQ(weft_yield(), 0);
			WT_CHECK_EQ(rc, 0);
		} else {
			WT_CHECK_EQ(weft_sem_acquire(&st), 0);
		}
		hold(&rng);
		WT_CHECK_EQ(weft_sem_release(&st), 0);
	}
	return 0;
}

static int st_root(void *arg)
{
	weft_task *t[ST_TASKS];
	uintptr_t i;

	(void)arg;
	for (i = 0; i < ST_TASKS; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], st_task, (void *)i), 0);
	for (i = 0; i < ST_TASKS; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	return 0;
}

static void test_bound_stress(void **state)
{
	unsigned workers[] = { 1, 2, 4, 8 };
	size_t k;

	(void)state;
	st_iters = WT_SCALE(1000, 150);
	for (k = 0; k < 4; k++) {
		atomic_store(&acquisitions, 0);
		atomic_store(&max_holders, 0);
		assert_int_equal(weft_sem_init(&st, ST_PERMITS), 0);
		assert_int_equal(run(workers[k], st_root, NULL), 0);
		assert_int_equal(atomic_load(&acquisitions),
				 (long)ST_TASKS * st_iters);
		assert_true(atomic_load(&max_holders) <= ST_PERMITS);
		assert_true(atomic_load(&max_holders) >= 1);
		assert_int_equal(weft_sem_value(&st), ST_PERMITS);
	}
}

#define MX_THREADS 3

static void *st_thread(void *arg)
{
	uint64_t rng = wt_seed(4, (uintptr_t)arg);
	unsigned i;

	for (i = 0; i < st_iters; i++) {
		WT_CHECK_EQ(weft_sem_acquire(&st), 0);
		hold(&rng);
		WT_CHECK_EQ(weft_sem_release(&st), 0);
	}
	return NULL;
}

static void test_bound_with_threads(void **state)
{
	weft_config c = wt_cfg(2);
	weft_rt *rt = NULL;
	weft_task *t[16];
	pthread_t th[MX_THREADS];
	uintptr_t i;

	(void)state;
	st_iters = WT_SCALE(2000, 200);
	atomic_store(&acquisitions, 0);
	atomic_store(&max_holders, 0);
	assert_int_equal(weft_sem_init(&st, ST_PERMITS), 0);
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	for (i = 0; i < 16; i++)
		assert_int_equal(weft_rt_spawn(rt, &t[i], st_task, (void *)i),
				 0);
	for (i = 0; i < MX_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, st_thread,
						(void *)i), 0);
	for (i = 0; i < MX_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (i = 0; i < 16; i++)
		assert_int_equal(weft_join(t[i], NULL), 0);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
	assert_int_equal(atomic_load(&acquisitions),
			 (long)(16 + MX_THREADS) * st_iters);
	assert_true(atomic_load(&max_holders) <= ST_PERMITS);
	assert_int_equal(weft_sem_value(&st), ST_PERMITS);
}

/*
 * FIFO, on one worker (a task that sets a flag and then waits is waiting
 * when another task sees the flag): each release hands its permit to the
 * longest waiter.
 */
#define FIFO_N 5

static weft_sem fs;
static int order[FIFO_N];
static _Atomic int nexti, queued;

static int fifo_waiter(void *arg)
{
	atomic_fetch_add(&queued, 1);
	WT_CHECK_EQ(weft_sem_acquire(&fs), 0);
	order[atomic_fetch_add(&nexti, 1)] = (int)(uintptr_t)arg;
	return 0;
}

static int fifo_root(void *arg)
{
	weft_task *t[FIFO_N];
	uintptr_t i;

	(void)arg;
	atomic_store(&queued, 0);
	atomic_store(&nexti, 0);
	WT_CHECK_EQ(weft_sem_init(&fs, 0), 0);
	for (i = 0; i < FIFO_N; i++) {
		WT_CHECK_EQ(weft_spawn(&t[i], fifo_waiter, (void *)i), 0);
		WT_TASK_WAIT(atomic_load(&queued) == (int)i + 1);
	}
	/* Each release goes straight to the longest waiter, so a
	 * tryacquire right after it finds no permit. */
	for (i = 0; i < FIFO_N; i++) {
		WT_CHECK_EQ(weft_sem_release(&fs), 0);
		WT_CHECK_EQ(weft_sem_tryacquire(&fs), -EAGAIN);
		WT_TASK_WAIT(atomic_load(&nexti) == (int)i + 1);
	}
	for (i = 0; i < FIFO_N; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	for (i = 0; i < FIFO_N; i++)
		WT_CHECK_EQ(order[i], (int)i);
	WT_CHECK_EQ(weft_sem_value(&fs), 0);
	return 0;
}

static void test_fifo(void **state)
{
	(void)state;
	assert_int_equal(run(1, fifo_root, NULL), 0);
}

/*
 * Waiters that give up take no permit: one cancelled, one timed out. A
 * release afterwards goes to the count (or to a live waiter), not to them.
 */
static _Atomic int started;

static int cancelled_acquirer(void *arg)
{
	(void)arg;
	atomic_store(&started, 1);
	return weft_sem_acquire(&fs);
}

static int timed_acquirer(void *arg)
{
	int rc;

	(void)arg;
	WT_CHECK_EQ(weft_timeout_begin(3 * WT_MS), 0);
	rc = weft_sem_acquire(&fs);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	return rc;
}

static int live_acquirer(void *arg)
{
	(void)arg;
	atomic_fetch_add(&queued, 1);
	return weft_sem_acquire(&fs);
}

static int give_up_root(void *arg)
{
	weft_task *a, *b, *c;
	int r = 1;

	(void)arg;
	atomic_store(&started, 0);
	atomic_store(&queued, 0);
	WT_CHECK_EQ(weft_sem_init(&fs, 0), 0);
	WT_CHECK_EQ(weft_spawn(&a, cancelled_acquirer, NULL), 0);
	WT_TASK_WAIT(atomic_load(&started));
	WT_CHECK_EQ(weft_spawn(&c, live_acquirer, NULL), 0);
	WT_TASK_WAIT(atomic_load(&queued) == 1);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(a), 0);
	WT_CHECK_EQ(weft_join(a, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);
	WT_CHECK_EQ(weft_spawn(&b, timed_acquirer, NULL), 0);
	WT_CHECK_EQ(weft_join(b, &r), 0);
	WT_CHECK_EQ(r, -ETIMEDOUT);
	WT_CHECK_EQ(weft_sem_value(&fs), 0);
	/* The one live waiter gets the permit. */
	WT_CHECK_EQ(weft_sem_release(&fs), 0);
	WT_CHECK_EQ(weft_join(c, &r), 0);
	WT_CHECK_EQ(r, 0);
	WT_CHECK_EQ(weft_sem_value(&fs), 0);
	/* Nobody waits now: the next release is counted. */
	WT_CHECK_EQ(weft_sem_release(&fs), 0);
	WT_CHECK_EQ(weft_sem_value(&fs), 1);
	return 0;
}

static void test_waiters_give_up(void **state)
{
	(void)state;
	assert_int_equal(run(1, give_up_root, NULL), 0);
	assert_int_equal(run(2, give_up_root, NULL), 0);
}

/* A plain thread blocks in acquire until a task releases. */
static _Atomic int thread_got;

static void *plain_acquirer(void *arg)
{
	(void)arg;
	WT_CHECK_EQ(weft_sem_acquire(&fs), 0);
	atomic_store(&thread_got, 1);
	return NULL;
}

static int releaser(void *arg)
{
	(void)arg;
	WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	WT_CHECK_EQ(atomic_load(&thread_got), 0);
	return weft_sem_release(&fs);
}

static void test_plain_waiter(void **state)
{
	weft_config c = wt_cfg(1);
	weft_rt *rt = NULL;
	weft_task *t;
	pthread_t th;
	int r = 1;

	(void)state;
	atomic_store(&thread_got, 0);
	assert_int_equal(weft_sem_init(&fs, 0), 0);
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	assert_int_equal(pthread_create(&th, NULL, plain_acquirer, NULL), 0);
	assert_int_equal(weft_rt_spawn(rt, &t, releaser, NULL), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(weft_join(t, &r), 0);
	assert_int_equal(r, 0);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
	assert_int_equal(atomic_load(&thread_got), 1);
	assert_int_equal(weft_sem_value(&fs), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_plain),
		cmocka_unit_test(test_bound_stress),
		cmocka_unit_test(test_bound_with_threads),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_waiters_give_up),
		cmocka_unit_test(test_plain_waiter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
