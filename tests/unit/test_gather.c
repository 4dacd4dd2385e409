/* SPDX-License-Identifier: MIT */
/*
 * weft_gather: mixed successes and failures, every result stored in its
 * slot, return 0 (return_exceptions=True: a failure cancels nothing);
 * children really run concurrently; n = 1 and a large n; a caller that
 * is cancelled or whose deadline expires cancels them all, waits for
 * them, returns its error, and the results hold what each returned.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

static _Atomic int ended, started;

static int value(void *arg)
{
	WT_CHECK_EQ(weft_yield(), 0);
	atomic_fetch_add(&ended, 1);
	return (int)(intptr_t)arg;
}

static int slow_value(void *arg)
{
	WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	atomic_fetch_add(&ended, 1);
	return (int)(intptr_t)arg;
}

/* Waits for a partner that a sibling signals: only works if both run
 * at the same time. */
static _Atomic int ping;

static int needs_partner(void *arg)
{
	(void)arg;
	atomic_store(&ping, 1);
	WT_TASK_WAIT(atomic_load(&ping) == 2);
	atomic_fetch_add(&ended, 1);
	return 7;
}

static int partner(void *arg)
{
	(void)arg;
	WT_TASK_WAIT(atomic_load(&ping) == 1);
	atomic_store(&ping, 2);
	atomic_fetch_add(&ended, 1);
	return 8;
}

static int mixed_root(void *arg)
{
	int (*const fns[])(void *) = { value, slow_value, value, slow_value,
				       needs_partner, value, partner };
	void *const args[] = { (void *)(intptr_t)0,
			       (void *)(intptr_t)-EIO,
			       (void *)(intptr_t)42,
			       (void *)(intptr_t)5,
			       NULL,
			       (void *)(intptr_t)-ENOENT,
			       NULL };
	const int want[] = { 0, -EIO, 42, 5, 7, -ENOENT, 8 };
	int results[7], i;

	(void)arg;
	atomic_store(&ended, 0);
	atomic_store(&ping, 0);
	for (i = 0; i < 7; i++)
		results[i] = 0x5a5a;
	WT_CHECK_EQ(weft_gather(7, fns, args, results), 0);
	WT_CHECK_EQ(atomic_load(&ended), 7);
	for (i = 0; i < 7; i++)
		WT_CHECK_EQ(results[i], want[i]);

	/* n = 1. */
	WT_CHECK_EQ(weft_gather(1, fns + 1, args + 1, results), 0);
	WT_CHECK_EQ(results[0], -EIO);
	return 0;
}

static void test_mixed(void **state)
{
	unsigned workers[] = { 1, 2, 4 };
	size_t k;

	(void)state;
	for (k = 0; k < 3; k++)
		assert_int_equal(run(workers[k], mixed_root, NULL), 0);
}

/* A large gather: each slot gets its own value. */
#define BIG 1000

static int big_root(void *arg)
{
	int (**fns)(void *) = calloc(BIG, sizeof(*fns));
	void **args = calloc(BIG, sizeof(*args));
	int *results = calloc(BIG, sizeof(*results));
	intptr_t i;

	(void)arg;
	if (!fns || !args || !results) {
		WT_CHECK(!"out of memory");
		return -1;
	}
	atomic_store(&ended, 0);
	for (i = 0; i < BIG; i++) {
		fns[i] = value;
		args[i] = (void *)(i * 3 - 500);
	}
	WT_CHECK_EQ(weft_gather(BIG, (int (*const *)(void *))fns,
				(void *const *)args, results), 0);
	WT_CHECK_EQ(atomic_load(&ended), BIG);
	for (i = 0; i < BIG; i++)
		WT_CHECK_EQ(results[i], i * 3 - 500);
	free(fns);
	free(args);
	free(results);
	return 0;
}

static void test_big(void **state)
{
	(void)state;
	assert_int_equal(run(4, big_root, NULL), 0);
}

/*
 * The caller gives up: children block until cancelled (they return what
 * their sleep returned) except one that finishes at once. gather returns
 * only once every child has ended.
 */
static int blocker(void *arg)
{
	int rc;

	(void)arg;
	atomic_fetch_add(&started, 1);
	rc = weft_sleep(WT_LONG_SLEEP);
	atomic_fetch_add(&ended, 1);
	return rc;
}

static _Atomic int gathering;

static int gatherer(void *arg)
{
	int (*const fns[])(void *) = { blocker, value, blocker, blocker };
	void *const args[] = { NULL, (void *)(intptr_t)9, NULL, NULL };
	int results[4] = { 1, 1, 1, 1 }, rc;

	if (arg)
		WT_CHECK_EQ(weft_timeout_begin(5 * WT_MS), 0);
	atomic_store(&gathering, 1);
	rc = weft_gather(4, fns, args, results);
	if (arg)
		WT_CHECK_EQ(weft_timeout_end(), 1);
	WT_CHECK_EQ(atomic_load(&ended), 4);
	WT_CHECK_EQ(results[0], -ECANCELED);
	WT_CHECK_EQ(results[1], 9);
	WT_CHECK_EQ(results[2], -ECANCELED);
	WT_CHECK_EQ(results[3], -ECANCELED);
	return rc;
}

static int give_up_root(void *arg)
{
	weft_task *t;
	int r = 1;

	(void)arg;
	atomic_store(&ended, 0);
	atomic_store(&started, 0);
	atomic_store(&gathering, 0);
	WT_CHECK_EQ(weft_spawn(&t, gatherer, NULL), 0);
	WT_TASK_WAIT(atomic_load(&gathering) && atomic_load(&started) == 3);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(t), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);

	atomic_store(&ended, 0);
	WT_CHECK_EQ(weft_spawn(&t, gatherer, (void *)1), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ETIMEDOUT);
	return 0;
}

static void test_caller_gives_up(void **state)
{
	(void)state;
	assert_int_equal(run(1, give_up_root, NULL), 0);
	assert_int_equal(run(2, give_up_root, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mixed),
		cmocka_unit_test(test_big),
		cmocka_unit_test(test_caller_gives_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
