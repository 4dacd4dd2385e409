/* SPDX-License-Identifier: MIT */
/*
 * weft_event: init, set, clear, is_set; wait returns at once while set and
 * waits while clear; set wakes every waiter (tasks on several workers and
 * plain threads); a waiter that is cancelled or times out; set/clear
 * cycles with waiters that never miss a set they were waiting for.
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

static weft_event ev = WEFT_EVENT_INIT;

static void test_basic_plain(void **state)
{
	(void)state;
	assert_int_equal(weft_event_is_set(&ev), 0);
	assert_int_equal(weft_event_init(NULL), -EINVAL);
	assert_int_equal(weft_event_set(&ev), 0);
	assert_int_equal(weft_event_is_set(&ev), 1);
	assert_int_equal(weft_event_set(&ev), 0); /* idempotent */
	assert_int_equal(weft_event_is_set(&ev), 1);
	assert_int_equal(weft_event_wait(&ev), 0);
	assert_int_equal(weft_event_wait(&ev), 0);
	assert_int_equal(weft_event_clear(&ev), 0);
	assert_int_equal(weft_event_is_set(&ev), 0);
	assert_int_equal(weft_event_clear(&ev), 0);
	assert_int_equal(weft_event_is_set(&ev), 0);
	assert_int_equal(weft_event_set(&ev), 0);
	assert_int_equal(weft_event_init(&ev), 0);
	assert_int_equal(weft_event_is_set(&ev), 0);
}

/* Set wakes all: WAITERS tasks and THREADS plain threads wait; each
 * counts itself in before waiting and out after. */
#define WAITERS 32
#define THREADS 3

static _Atomic int before, after;

static int waiter(void *arg)
{
	int rc;

	(void)arg;
	atomic_fetch_add(&before, 1);
	rc = weft_event_wait(&ev);
	WT_CHECK_EQ(weft_event_is_set(&ev), 1);
	atomic_fetch_add(&after, 1);
	return rc;
}

static void *thread_waiter(void *arg)
{
	WT_CHECK_EQ(waiter(arg), 0);
	return NULL;
}

static void test_set_wakes_all(void **state)
{
	unsigned workers[] = { 1, 2, 4 };
	size_t k;

	(void)state;
	for (k = 0; k < 3; k++) {
		weft_config c = wt_cfg(workers[k]);
		weft_rt *rt = NULL;
		weft_task *t[WAITERS];
		pthread_t th[THREADS];
		int i, r;

		atomic_store(&before, 0);
		atomic_store(&after, 0);
		assert_int_equal(weft_event_init(&ev), 0);
		assert_int_equal(weft_rt_new(&rt, &c), 0);
		for (i = 0; i < WAITERS; i++)
			assert_int_equal(weft_rt_spawn(rt, &t[i], waiter,
						       NULL), 0);
		for (i = 0; i < THREADS; i++)
			assert_int_equal(pthread_create(&th[i], NULL,
							thread_waiter, NULL),
					 0);
		WT_WAIT(atomic_load(&before) == WAITERS + THREADS);
		wt_nap(2 * WT_MS);
		/* Clear: nobody may have passed. */
		assert_int_equal(atomic_load(&after), 0);
		assert_int_equal(weft_event_set(&ev), 0);
		for (i = 0; i < THREADS; i++)
			assert_int_equal(pthread_join(th[i], NULL), 0);
		for (i = 0; i < WAITERS; i++) {
			r = 1;
			assert_int_equal(weft_join(t[i], &r), 0);
			assert_int_equal(r, 0);
		}
		weft_rt_free(rt);
		assert_int_equal(wt_take_failures(), 0);
		assert_int_equal(atomic_load(&after), WAITERS + THREADS);
	}
}

/* Waiters that give up, and clear making later waits wait again. */
static _Atomic int started;

static int cancelled_waiter(void *arg)
{
	(void)arg;
	atomic_store(&started, 1);
	return weft_event_wait(&ev);
}

static int timed_wait(void)
{
	int rc;

	WT_CHECK_EQ(weft_timeout_begin(3 * WT_MS), 0);
	rc = weft_event_wait(&ev);
	WT_CHECK(weft_timeout_end() >= 0);
	return rc;
}

static int give_up_root(void *arg)
{
	weft_task *t;
	int r = 1;

	(void)arg;
	atomic_store(&started, 0);
	WT_CHECK_EQ(weft_event_init(&ev), 0);
	WT_CHECK_EQ(weft_spawn(&t, cancelled_waiter, NULL), 0);
	WT_TASK_WAIT(atomic_load(&started));
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(t), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);
	WT_CHECK_EQ(timed_wait(), -ETIMEDOUT);
	WT_CHECK_EQ(weft_event_is_set(&ev), 0);
	WT_CHECK_EQ(weft_event_set(&ev), 0);
	WT_CHECK_EQ(timed_wait(), 0);
	WT_CHECK_EQ(weft_event_clear(&ev), 0);
	WT_CHECK_EQ(timed_wait(), -ETIMEDOUT);
	return 0;
}

static void test_waiters_give_up(void **state)
{
	(void)state;
	assert_int_equal(run(1, give_up_root, NULL), 0);
	assert_int_equal(run(2, give_up_root, NULL), 0);
}

/*
 * Rounds: a coordinator sets the event for round k only once every
 * waiter has announced round k, and clears it only after every waiter
 * has passed round k. Each waiter must pass every round exactly once.
 */
#define RW 8

static weft_event go, back;
static _Atomic int arrived, passed;
static unsigned rounds;

static int round_waiter(void *arg)
{
	unsigned k;

	(void)arg;
	for (k = 0; k < rounds; k++) {
		atomic_fetch_add(&arrived, 1);
		WT_CHECK_EQ(weft_event_wait(&go), 0);
		atomic_fetch_add(&passed, 1);
		WT_CHECK_EQ(weft_event_wait(&back), 0);
	}
	return 0;
}

static int rounds_root(void *arg)
{
	weft_task *t[RW];
	unsigned k;
	int i;

	(void)arg;
	WT_CHECK_EQ(weft_event_init(&go), 0);
	WT_CHECK_EQ(weft_event_init(&back), 0);
	atomic_store(&arrived, 0);
	atomic_store(&passed, 0);
	for (i = 0; i < RW; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], round_waiter, NULL), 0);
	for (k = 1; k <= rounds; k++) {
		WT_TASK_WAIT(atomic_load(&arrived) == (int)k * RW);
		WT_CHECK_EQ(weft_event_clear(&back), 0);
		WT_CHECK_EQ(weft_event_set(&go), 0);
		WT_TASK_WAIT(atomic_load(&passed) == (int)k * RW);
		WT_CHECK_EQ(weft_event_clear(&go), 0);
		WT_CHECK_EQ(weft_event_set(&back), 0);
	}
	for (i = 0; i < RW; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	WT_CHECK_EQ(atomic_load(&passed), (int)rounds * RW);
	return 0;
}

static void test_rounds(void **state)
{
	(void)state;
	rounds = WT_SCALE(300, 50);
	assert_int_equal(run(1, rounds_root, NULL), 0);
	assert_int_equal(run(4, rounds_root, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_plain),
		cmocka_unit_test(test_set_wakes_all),
		cmocka_unit_test(test_waiters_give_up),
		cmocka_unit_test(test_rounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
