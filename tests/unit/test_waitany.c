/* SPDX-License-Identifier: MIT */
/*
 * weft_wait_any: -EINVAL for n == 0 or a NULL handle; returns the index
 * of the one task that can finish (the others wait on an event that is
 * set only afterwards); the lowest index when several have ended; the
 * handles stay valid and are joined afterwards with their results; with
 * a deadline scope (wait_for) -ETIMEDOUT, and -ECANCELED for a cancelled
 * caller, both leaving every handle valid.
 */
#include <errno.h>
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

#define N 6

static weft_event gate;
static _Atomic int done_count;

/* Waits for the gate, then returns its index. */
static int gated(void *arg)
{
	WT_CHECK_EQ(weft_event_wait(&gate), 0);
	atomic_fetch_add(&done_count, 1);
	return (int)(intptr_t)arg;
}

static int quick(void *arg)
{
	atomic_fetch_add(&done_count, 1);
	return (int)(intptr_t)arg;
}

static void spawn_all(weft_task **t, int fast1, int fast2)
{
	intptr_t i;

	for (i = 0; i < N; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], i == fast1 || i == fast2 ? quick
								: gated,
				       (void *)(100 + i)), 0);
}

static void join_all(weft_task **t)
{
	int i, r;

	for (i = 0; i < N; i++) {
		r = -1;
		WT_CHECK_EQ(weft_join(t[i], &r), 0);
		WT_CHECK_EQ(r, 100 + i);
	}
}

static int first_root(void *arg)
{
	weft_task *t[N];
	int k;

	(void)arg;
	WT_CHECK_EQ(weft_event_init(&gate), 0);
	atomic_store(&done_count, 0);
	WT_CHECK_EQ(weft_wait_any(0, t), -EINVAL);
	/* Only task 3 can finish. */
	spawn_all(t, 3, -1);
	k = weft_wait_any(N, t);
	WT_CHECK_EQ(k, 3);
	WT_CHECK_EQ(atomic_load(&done_count), 1);
	/* Again: it has still ended, handles are valid. */
	WT_CHECK_EQ(weft_wait_any(N, t), 3);
	WT_CHECK_EQ(weft_wait_any(1, t + 3), 0);
	WT_CHECK_EQ(weft_event_set(&gate), 0);
	join_all(t);

	/* Tasks 4 and 1 end: the lowest index of the ended ones is 1. */
	WT_CHECK_EQ(weft_event_init(&gate), 0);
	atomic_store(&done_count, 0);
	spawn_all(t, 4, 1);
	WT_TASK_WAIT(atomic_load(&done_count) == 2);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_wait_any(N, t), 1);
	WT_CHECK_EQ(weft_wait_any(N - 2, t + 2), 2); /* index of t[4] */
	{
		weft_task *with_null[2] = { t[0], NULL };

		WT_CHECK_EQ(weft_wait_any(2, with_null), -EINVAL);
	}
	WT_CHECK_EQ(weft_event_set(&gate), 0);
	join_all(t);
	return 0;
}

static void test_first(void **state)
{
	unsigned workers[] = { 1, 2, 4 };
	size_t k;

	(void)state;
	for (k = 0; k < 3; k++)
		assert_int_equal(run(workers[k], first_root, NULL), 0);
}

/* Give up: deadline (wait_for) and cancellation; handles stay valid. */
static weft_task *gt[N];
static _Atomic int waiting;

static int any_waiter(void *arg)
{
	int rc;

	(void)arg;
	atomic_store(&waiting, 1);
	rc = weft_wait_any(N, gt);
	return rc;
}

static int give_up_root(void *arg)
{
	weft_task *t;
	int r = 1, rc;

	(void)arg;
	WT_CHECK_EQ(weft_event_init(&gate), 0);
	atomic_store(&done_count, 0);
	atomic_store(&waiting, 0);
	spawn_all(gt, -1, -1);
	WT_CHECK_EQ(weft_timeout_begin(3 * WT_MS), 0);
	rc = weft_wait_any(N, gt);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	WT_CHECK_EQ(rc, -ETIMEDOUT);
	WT_CHECK_EQ(weft_spawn(&t, any_waiter, NULL), 0);
	WT_TASK_WAIT(atomic_load(&waiting));
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(t), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);
	WT_CHECK_EQ(atomic_load(&done_count), 0);
	/* A waiter that is woken by the last task to become ready. */
	WT_CHECK_EQ(weft_spawn(&t, any_waiter, NULL), 0);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_event_set(&gate), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK(r >= 0 && r < N);
	join_all(gt);
	return 0;
}

static void test_give_up(void **state)
{
	(void)state;
	assert_int_equal(run(1, give_up_root, NULL), 0);
	assert_int_equal(run(2, give_up_root, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first),
		cmocka_unit_test(test_give_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
