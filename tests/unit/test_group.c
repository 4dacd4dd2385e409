/* SPDX-License-Identifier: MIT */
/*
 * Task groups: new/spawn/wait/cancel/free. All children succeed (wait
 * 0, positive results ignored); one child fails and the others, blocked,
 * are cancelled (wait returns that error, each of them saw -ECANCELED);
 * children returning -ECANCELED themselves are no failure; the first
 * failure wins; group_cancel; a waiter that is cancelled or whose deadline
 * expires cancels every child and waits for all of them; free -EBUSY while
 * children may run; many children on several workers.
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

static _Atomic int started, ended, saw_cancel;

/* Sleeps until cancelled; records what it saw. */
static int sleeper(void *arg)
{
	int rc;

	(void)arg;
	atomic_fetch_add(&started, 1);
	rc = weft_sleep(WT_LONG_SLEEP);
	if (rc == -ECANCELED)
		atomic_fetch_add(&saw_cancel, 1);
	WT_CHECK_EQ(rc, -ECANCELED);
	atomic_fetch_add(&ended, 1);
	return rc;
}

static int returns(void *arg)
{
	int i;

	for (i = 0; i < 3; i++)
		WT_CHECK_EQ(weft_yield(), 0);
	atomic_fetch_add(&ended, 1);
	return (int)(intptr_t)arg;
}

/* Fails once every sleeper has started, so they are surely blocked. */
static _Atomic int want_started;

static int failer(void *arg)
{
	WT_TASK_WAIT(atomic_load(&started) == atomic_load(&want_started));
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	atomic_fetch_add(&ended, 1);
	return (int)(intptr_t)arg;
}

static void reset(void)
{
	atomic_store(&started, 0);
	atomic_store(&ended, 0);
	atomic_store(&saw_cancel, 0);
}

static int basic_root(void *arg)
{
	weft_group *g = NULL;
	int i;

	(void)arg;
	reset();
	WT_CHECK_EQ(weft_group_new(NULL), -EINVAL);
	/* No child at all. */
	WT_CHECK_EQ(weft_group_new(&g), 0);
	WT_CHECK_EQ(weft_group_wait(g), 0);
	WT_CHECK_EQ(weft_group_free(g), 0);
	WT_CHECK_EQ(weft_group_new(&g), 0);
	WT_CHECK_EQ(weft_group_free(g), 0);
	/* Successes, including positive values. */
	WT_CHECK_EQ(weft_group_new(&g), 0);
	WT_CHECK_EQ(weft_group_spawn(g, NULL, NULL), -EINVAL);
	for (i = 0; i < 10; i++)
		WT_CHECK_EQ(weft_group_spawn(g, returns,
					     (void *)(intptr_t)i), 0);
	WT_CHECK_EQ(weft_group_wait(g), 0);
	WT_CHECK_EQ(atomic_load(&ended), 10);
	WT_CHECK_EQ(weft_group_free(g), 0);
	/* Children that return -ECANCELED themselves are no failure. */
	WT_CHECK_EQ(weft_group_new(&g), 0);
	WT_CHECK_EQ(weft_group_spawn(g, returns, (void *)(intptr_t)-ECANCELED),
		    0);
	WT_CHECK_EQ(weft_group_spawn(g, returns, (void *)(intptr_t)3), 0);
	WT_CHECK_EQ(weft_group_wait(g), 0);
	WT_CHECK_EQ(weft_group_free(g), 0);
	return 0;
}

static void test_basic(void **state)
{
	(void)state;
	assert_int_equal(run(1, basic_root, NULL), 0);
	assert_int_equal(run(4, basic_root, NULL), 0);
}

/* One child fails: the sleepers are cancelled, wait returns -EIO. */
#define SLEEPERS 8

static int fail_root(void *arg)
{
	weft_group *g = NULL;
	int i, rc;

	(void)arg;
	reset();
	atomic_store(&want_started, SLEEPERS);
	WT_CHECK_EQ(weft_group_new(&g), 0);
	for (i = 0; i < SLEEPERS / 2; i++)
		WT_CHECK_EQ(weft_group_spawn(g, sleeper, NULL), 0);
	WT_CHECK_EQ(weft_group_spawn(g, failer, (void *)(intptr_t)-EIO), 0);
	for (i = 0; i < SLEEPERS / 2; i++)
		WT_CHECK_EQ(weft_group_spawn(g, sleeper, NULL), 0);
	WT_CHECK_EQ(weft_group_spawn(g, returns, (void *)(intptr_t)1), 0);
	rc = weft_group_wait(g);
	WT_CHECK_EQ(rc, -EIO);
	/* A group never outlives its wait. */
	WT_CHECK_EQ(atomic_load(&ended), SLEEPERS + 2);
	WT_CHECK_EQ(atomic_load(&saw_cancel), SLEEPERS);
	WT_CHECK_EQ(weft_group_free(g), 0);
	return 0;
}

static void test_one_fails(void **state)
{
	unsigned workers[] = { 1, 2, 4 };
	size_t k;

	(void)state;
	for (k = 0; k < 3; k++)
		assert_int_equal(run(workers[k], fail_root, NULL), 0);
}

/*
 * The first failure wins: child A fails with -EIO at once; child B would
 * fail with -ENOENT but only after A's failure cancelled it (its sleep
 * returns -ECANCELED, and it then returns -ENOENT anyway).
 */
static int late_failer(void *arg)
{
	int rc;

	(void)arg;
	atomic_fetch_add(&started, 1);
	rc = weft_sleep(WT_LONG_SLEEP);
	WT_CHECK_EQ(rc, -ECANCELED);
	atomic_fetch_add(&ended, 1);
	return -ENOENT;
}

static int first_wins_root(void *arg)
{
	weft_group *g = NULL;

	(void)arg;
	reset();
	atomic_store(&want_started, 1);
	WT_CHECK_EQ(weft_group_new(&g), 0);
	WT_CHECK_EQ(weft_group_spawn(g, late_failer, NULL), 0);
	WT_CHECK_EQ(weft_group_spawn(g, failer, (void *)(intptr_t)-EIO), 0);
	WT_CHECK_EQ(weft_group_wait(g), -EIO);
	WT_CHECK_EQ(atomic_load(&ended), 2);
	WT_CHECK_EQ(weft_group_free(g), 0);
	return 0;
}

static void test_first_failure_wins(void **state)
{
	(void)state;
	assert_int_equal(run(1, first_wins_root, NULL), 0);
	assert_int_equal(run(2, first_wins_root, NULL), 0);
}

/* group_cancel: every child sees -ECANCELED; wait returns 0. free is
 * -EBUSY while children may still run. */
static int cancel_root(void *arg)
{
	weft_group *g = NULL;
	int i;

	(void)arg;
	reset();
	WT_CHECK_EQ(weft_group_new(&g), 0);
	for (i = 0; i < SLEEPERS; i++)
		WT_CHECK_EQ(weft_group_spawn(g, sleeper, NULL), 0);
	WT_TASK_WAIT(atomic_load(&started) == SLEEPERS);
	WT_CHECK_EQ(weft_group_free(g), -EBUSY);
	WT_CHECK_EQ(weft_group_cancel(g), 0);
	WT_CHECK_EQ(weft_group_wait(g), 0);
	WT_CHECK_EQ(atomic_load(&saw_cancel), SLEEPERS);
	WT_CHECK_EQ(atomic_load(&ended), SLEEPERS);
	WT_CHECK_EQ(weft_group_free(g), 0);
	return 0;
}

static void test_group_cancel(void **state)
{
	(void)state;
	assert_int_equal(run(1, cancel_root, NULL), 0);
	assert_int_equal(run(2, cancel_root, NULL), 0);
}

/*
 * The waiter gives up: cancelled by another task, or its deadline
 * expires. Either way the group cancels every child and waits for all of
 * them before wait returns. Every child that started has ended, having
 * seen the cancellation; a child cancelled before it ran never starts
 * (possible only with the deadline, which does not wait for the children
 * to start: a busy machine may not start all of them within it).
 */
static _Atomic int waiting;

static int group_waiter(void *arg)
{
	weft_group *g = NULL;
	int i, rc;

	WT_CHECK_EQ(weft_group_new(&g), 0);
	for (i = 0; i < SLEEPERS; i++)
		WT_CHECK_EQ(weft_group_spawn(g, sleeper, NULL), 0);
	if (arg)
		WT_CHECK_EQ(weft_timeout_begin(5 * WT_MS), 0);
	atomic_store(&waiting, 1);
	rc = weft_group_wait(g);
	if (arg)
		WT_CHECK_EQ(weft_timeout_end(), 1);
	WT_CHECK_EQ(atomic_load(&ended), atomic_load(&started));
	WT_CHECK_EQ(atomic_load(&saw_cancel), atomic_load(&started));
	if (!arg)
		WT_CHECK_EQ(atomic_load(&started), SLEEPERS);
	WT_CHECK_EQ(weft_group_free(g), 0);
	return rc;
}

static int waiter_gives_up_root(void *arg)
{
	weft_task *t;
	int r = 1;

	(void)arg;
	reset();
	atomic_store(&waiting, 0);
	WT_CHECK_EQ(weft_spawn(&t, group_waiter, NULL), 0);
	WT_TASK_WAIT(atomic_load(&waiting) &&
		     atomic_load(&started) == SLEEPERS);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(t), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);

	reset();
	WT_CHECK_EQ(weft_spawn(&t, group_waiter, (void *)1), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ETIMEDOUT);
	return 0;
}

static void test_waiter_gives_up(void **state)
{
	(void)state;
	assert_int_equal(run(1, waiter_gives_up_root, NULL), 0);
	assert_int_equal(run(4, waiter_gives_up_root, NULL), 0);
}

/* Many children; children that spawn into the same group. */
#define MANY 2000

static weft_group *mg;

static int spawner(void *arg)
{
	int n = (int)(intptr_t)arg, i;

	for (i = 0; i < n; i++)
		WT_CHECK_EQ(weft_group_spawn(mg, returns, (void *)(intptr_t)i),
			    0);
	atomic_fetch_add(&ended, 1);
	return 0;
}

static int many_root(void *arg)
{
	int i;

	(void)arg;
	reset();
	WT_CHECK_EQ(weft_group_new(&mg), 0);
	for (i = 0; i < MANY / 10; i++)
		WT_CHECK_EQ(weft_group_spawn(mg, spawner, (void *)(intptr_t)9),
			    0);
	WT_CHECK_EQ(weft_group_wait(mg), 0);
	WT_CHECK_EQ(atomic_load(&ended), MANY);
	WT_CHECK_EQ(weft_group_free(mg), 0);
	return 0;
}

static void test_many_children(void **state)
{
	(void)state;
	assert_int_equal(run(4, many_root, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_one_fails),
		cmocka_unit_test(test_first_failure_wins),
		cmocka_unit_test(test_group_cancel),
		cmocka_unit_test(test_waiter_gives_up),
		cmocka_unit_test(test_many_children),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
