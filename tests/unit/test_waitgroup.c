/* SPDX-License-Identifier: MIT */
/*
 * weft_waitgroup: add/done/wait; wait on zero returns at once; add that
 * would go negative is -EINVAL and leaves the counter unchanged; wait
 * returns only after every done (tasks on several workers, plain
 * threads); several waiters; reuse after reaching zero; a waiter that is
 * cancelled or times out.
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

static weft_waitgroup wg = WEFT_WAITGROUP_INIT;

static void test_basic_plain(void **state)
{
	(void)state;
	assert_int_equal(weft_waitgroup_wait(&wg), 0);
	assert_int_equal(weft_waitgroup_done(&wg), -EINVAL);
	assert_int_equal(weft_waitgroup_add(&wg, -1), -EINVAL);
	assert_int_equal(weft_waitgroup_wait(&wg), 0);
	assert_int_equal(weft_waitgroup_add(&wg, 2), 0);
	assert_int_equal(weft_waitgroup_add(&wg, -3), -EINVAL);
	assert_int_equal(weft_waitgroup_done(&wg), 0);
	assert_int_equal(weft_waitgroup_add(&wg, 0), 0);
	assert_int_equal(weft_waitgroup_done(&wg), 0);
	assert_int_equal(weft_waitgroup_wait(&wg), 0);
	assert_int_equal(weft_waitgroup_done(&wg), -EINVAL);
	assert_int_equal(weft_waitgroup_add(&wg, 5), 0);
	assert_int_equal(weft_waitgroup_add(&wg, -5), 0);
	assert_int_equal(weft_waitgroup_wait(&wg), 0);
}

/* Workers finish at random moments; each waiter must see all of them
 * done when wait returns. */
#define WORKERS 48
#define WAITERS 4

static _Atomic int finished;
static _Atomic int waiters_out;

static int worker(void *arg)
{
	uint64_t rng = wt_seed(21, (uintptr_t)arg);
	unsigned n = wt_below(&rng, 20);

	while (n--)
		WT_CHECK_EQ(weft_yield(), 0);
	if (wt_below(&rng, 4) == 0)
		WT_CHECK_EQ(weft_sleep(wt_below(&rng, 500) * WT_US), 0);
	atomic_fetch_add(&finished, 1);
	return weft_waitgroup_done(&wg);
}

static int waiter(void *arg)
{
	(void)arg;
	WT_CHECK_EQ(weft_waitgroup_wait(&wg), 0);
	WT_CHECK_EQ(atomic_load(&finished), WORKERS);
	atomic_fetch_add(&waiters_out, 1);
	return 0;
}

static int all_root(void *arg)
{
	weft_task *t[WORKERS], *w[WAITERS];
	uintptr_t i;
	int round, r;

	(void)arg;
	/* Twice: the group is reusable once it is back at zero. */
	for (round = 0; round < 2; round++) {
		atomic_store(&finished, 0);
		atomic_store(&waiters_out, 0);
		WT_CHECK_EQ(weft_waitgroup_add(&wg, WORKERS), 0);
		for (i = 0; i < WAITERS; i++)
			WT_CHECK_EQ(weft_spawn(&w[i], waiter, NULL), 0);
		for (i = 0; i < WORKERS; i++)
			WT_CHECK_EQ(weft_spawn(&t[i], worker,
					       (void *)(i + 100 * round)), 0);
		WT_CHECK_EQ(weft_waitgroup_wait(&wg), 0);
		WT_CHECK_EQ(atomic_load(&finished), WORKERS);
		for (i = 0; i < WORKERS; i++) {
			r = 1;
			WT_CHECK_EQ(weft_join(t[i], &r), 0);
			WT_CHECK_EQ(r, 0);
		}
		for (i = 0; i < WAITERS; i++)
			WT_CHECK_EQ(weft_join(w[i], NULL), 0);
		WT_CHECK_EQ(atomic_load(&waiters_out), WAITERS);
	}
	return 0;
}

static void test_wait_for_all(void **state)
{
	unsigned workers[] = { 1, 2, 4, 8 };
	size_t k;

	(void)state;
	for (k = 0; k < 4; k++)
		assert_int_equal(run(workers[k], all_root, NULL), 0);
}

/* A plain thread waits for tasks; tasks wait for a plain thread. */
static void *thread_waiter(void *arg)
{
	waiter(arg);
	return NULL;
}

static void *thread_worker(void *arg)
{
	(void)arg;
	wt_nap(WT_MS);
	atomic_fetch_add(&finished, 1);
	WT_CHECK_EQ(weft_waitgroup_done(&wg), 0);
	return NULL;
}

static void test_plain_threads(void **state)
{
	weft_config c = wt_cfg(2);
	weft_rt *rt = NULL;
	weft_task *t[WORKERS - 1], *w;
	pthread_t th_wait, th_work;
	uintptr_t i;

	(void)state;
	atomic_store(&finished, 0);
	atomic_store(&waiters_out, 0);
	assert_int_equal(weft_waitgroup_add(&wg, WORKERS), 0);
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	assert_int_equal(weft_rt_spawn(rt, &w, waiter, NULL), 0);
	assert_int_equal(pthread_create(&th_wait, NULL, thread_waiter, NULL),
			 0);
	for (i = 0; i < WORKERS - 1; i++)
		assert_int_equal(weft_rt_spawn(rt, &t[i], worker, (void *)i),
				 0);
	assert_int_equal(pthread_create(&th_work, NULL, thread_worker, NULL),
			 0);
	assert_int_equal(weft_waitgroup_wait(&wg), 0);
	assert_int_equal(atomic_load(&finished), WORKERS);
	assert_int_equal(pthread_join(th_work, NULL), 0);
	assert_int_equal(pthread_join(th_wait, NULL), 0);
	assert_int_equal(weft_join(w, NULL), 0);
	for (i = 0; i < WORKERS - 1; i++)
		assert_int_equal(weft_join(t[i], NULL), 0);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
	assert_int_equal(atomic_load(&waiters_out), 2);
}

/* Waiters that give up; the counter is unaffected. */
static _Atomic int started;

static int cancelled_waiter(void *arg)
{
	(void)arg;
	atomic_store(&started, 1);
	return weft_waitgroup_wait(&wg);
}

static int give_up_root(void *arg)
{
	weft_task *t;
	int r = 1, rc;

	(void)arg;
	atomic_store(&started, 0);
	WT_CHECK_EQ(weft_waitgroup_add(&wg, 1), 0);
	WT_CHECK_EQ(weft_spawn(&t, cancelled_waiter, NULL), 0);
	WT_TASK_WAIT(atomic_load(&started));
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(t), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);
	WT_CHECK_EQ(weft_timeout_begin(3 * WT_MS), 0);
	rc = weft_waitgroup_wait(&wg);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	WT_CHECK_EQ(rc, -ETIMEDOUT);
	WT_CHECK_EQ(weft_waitgroup_done(&wg), 0);
	WT_CHECK_EQ(weft_waitgroup_wait(&wg), 0);
	WT_CHECK_EQ(weft_waitgroup_done(&wg), -EINVAL);
	return 0;
}

static void test_waiters_give_up(void **state)
{
	(void)state;
	assert_int_equal(run(1, give_up_root, NULL), 0);
	assert_int_equal(run(2, give_up_root, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_plain),
		cmocka_unit_test(test_wait_for_all),
		cmocka_unit_test(test_plain_threads),
		cmocka_unit_test(test_waiters_give_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
