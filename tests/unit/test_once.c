/* SPDX-License-Identifier: MIT */
/*
 * weft_once_call: fn runs exactly once per object with many concurrent
 * callers (tasks on several workers and plain threads); every caller
 * returns 0 only after fn has finished; later calls return 0 at once
 * without running fn; a caller cancelled or timed out while fn runs
 * elsewhere returns the error, and fn still runs to its end once.
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

static weft_once once = WEFT_ONCE_INIT;
static _Atomic int runs, fn_done;
static void *last_arg;

static void count_fn(void *arg)
{
	last_arg = arg;
	atomic_fetch_add(&runs, 1);
}

static void test_basic_plain(void **state)
{
	weft_once o = WEFT_ONCE_INIT;
	int x;

	(void)state;
	atomic_store(&runs, 0);
	assert_int_equal(weft_once_call(&o, count_fn, &x), 0);
	assert_int_equal(atomic_load(&runs), 1);
	assert_ptr_equal(last_arg, &x);
	assert_int_equal(weft_once_call(&o, count_fn, NULL), 0);
	assert_int_equal(weft_once_call(&o, count_fn, NULL), 0);
	assert_int_equal(atomic_load(&runs), 1);
	assert_ptr_equal(last_arg, &x);
}

/*
 * Many callers at once: fn is slow (it yields or naps), so that most
 * callers arrive while it runs. Each caller, once back, checks that fn
 * has finished.
 */
#define CALLERS 64
#define THREADS 3

static _Atomic int go, arrived;

static void slow_fn(void *arg)
{
	int i;

	(void)arg;
	WT_CHECK_EQ(atomic_fetch_add(&runs, 1), 0);
	if (weft_current()) {
		for (i = 0; i < 20; i++)
			WT_CHECK_EQ(weft_yield(), 0);
		WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	} else {
		wt_nap(2 * WT_MS);
	}
	atomic_store(&fn_done, 1);
}

static int caller(void *arg)
{
	(void)arg;
	atomic_fetch_add(&arrived, 1);
	while (!atomic_load(&go))
		WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_once_call(&once, slow_fn, NULL), 0);
	WT_CHECK_EQ(atomic_load(&fn_done), 1);
	WT_CHECK_EQ(atomic_load(&runs), 1);
	return 0;
}

static void *thread_caller(void *arg)
{
	(void)arg;
	atomic_fetch_add(&arrived, 1);
	WT_WAIT(atomic_load(&go));
	WT_CHECK_EQ(weft_once_call(&once, slow_fn, NULL), 0);
	WT_CHECK_EQ(atomic_load(&fn_done), 1);
	return NULL;
}

static void test_concurrent(void **state)
{
	unsigned workers[] = { 1, 2, 4, 8 };
	size_t k;

	(void)state;
	for (k = 0; k < 4; k++) {
		weft_config c = wt_cfg(workers[k]);
		weft_rt *rt = NULL;
		weft_task *t[CALLERS];
		pthread_t th[THREADS];
		int i;

		memset(&once, 0, sizeof(once));
		atomic_store(&runs, 0);
		atomic_store(&fn_done, 0);
		atomic_store(&go, 0);
		atomic_store(&arrived, 0);
		assert_int_equal(weft_rt_new(&rt, &c), 0);
		for (i = 0; i < CALLERS; i++)
			assert_int_equal(weft_rt_spawn(rt, &t[i], caller,
						       NULL), 0);
		for (i = 0; i < THREADS; i++)
			assert_int_equal(pthread_create(&th[i], NULL,
							thread_caller, NULL),
					 0);
		WT_WAIT(atomic_load(&arrived) == CALLERS + THREADS);
		atomic_store(&go, 1);
		for (i = 0; i < THREADS; i++)
			assert_int_equal(pthread_join(th[i], NULL), 0);
		for (i = 0; i < CALLERS; i++)
			assert_int_equal(weft_join(t[i], NULL), 0);
		weft_rt_free(rt);
		assert_int_equal(wt_take_failures(), 0);
		assert_int_equal(atomic_load(&runs), 1);
		assert_int_equal(weft_once_call(&once, slow_fn, NULL), 0);
		assert_int_equal(atomic_load(&runs), 1);
	}
}

/*
 * Giving up: fn blocks until released. A caller that is cancelled, and
 * one whose deadline expires, return their error; fn ends once, and a
 * later caller gets 0 without running it again.
 */
static _Atomic int in_fn, release_fn;

static void gated_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&runs, 1);
	atomic_store(&in_fn, 1);
	while (!atomic_load(&release_fn))
		WT_CHECK_EQ(weft_sleep(100 * WT_US), 0);
	atomic_store(&fn_done, 1);
}

static int first_caller(void *arg)
{
	(void)arg;
	return weft_once_call(&once, gated_fn, NULL);
}

static int cancelled_caller(void *arg)
{
	(void)arg;
	atomic_fetch_add(&arrived, 1);
	return weft_once_call(&once, gated_fn, NULL);
}

static int timed_caller(void *arg)
{
	int rc;

	(void)arg;
	WT_CHECK_EQ(weft_timeout_begin(3 * WT_MS), 0);
	rc = weft_once_call(&once, gated_fn, NULL);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	return rc;
}

static int give_up_root(void *arg)
{
	weft_task *f, *c, *d;
	int r = 1;

	(void)arg;
	memset(&once, 0, sizeof(once));
	atomic_store(&runs, 0);
	atomic_store(&fn_done, 0);
	atomic_store(&in_fn, 0);
	atomic_store(&release_fn, 0);
	atomic_store(&arrived, 0);
	WT_CHECK_EQ(weft_spawn(&f, first_caller, NULL), 0);
	WT_TASK_WAIT(atomic_load(&in_fn));
	WT_CHECK_EQ(weft_spawn(&c, cancelled_caller, NULL), 0);
	WT_TASK_WAIT(atomic_load(&arrived) == 1);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(c), 0);
	WT_CHECK_EQ(weft_join(c, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);
	WT_CHECK_EQ(weft_spawn(&d, timed_caller, NULL), 0);
	WT_CHECK_EQ(weft_join(d, &r), 0);
	WT_CHECK_EQ(r, -ETIMEDOUT);
	WT_CHECK_EQ(atomic_load(&fn_done), 0);
	atomic_store(&release_fn, 1);
	WT_CHECK_EQ(weft_join(f, &r), 0);
	WT_CHECK_EQ(r, 0);
	WT_CHECK_EQ(atomic_load(&fn_done), 1);
	WT_CHECK_EQ(weft_once_call(&once, gated_fn, NULL), 0);
	WT_CHECK_EQ(atomic_load(&runs), 1);
	return 0;
}

static void test_callers_give_up(void **state)
{
	(void)state;
	assert_int_equal(run(1, give_up_root, NULL), 0);
	assert_int_equal(run(2, give_up_root, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_plain),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_callers_give_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
