/* SPDX-License-Identifier: MIT */
/*
 * weft_blocking: fn runs on a plain pool thread (not a worker, not a
 * task) and its value is stored; fn may use the caller's stack; 64 calls
 * with blocking_threads = 4 all complete and never more than 4 run at
 * once; from a plain thread fn runs inline; a task cancelled (or whose
 * deadline expires) during the call gets -ECANCELED (-ETIMEDOUT) only
 * after fn ended, with *result set.
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

static int run_cfg(weft_config *c, int (*fn)(void *), void *arg)
{
	int r = -12345;

	assert_int_equal(weft_run(c, fn, arg, &r), 0);
	assert_int_equal(wt_take_failures(), 0);
	return r;
}

struct call {
	int in;
	unsigned long thread;
	int worker;
	int in_task;
};

static int probe(void *arg)
{
	struct call *c = arg;

	c->thread = wt_thread_self();
	c->worker = weft_worker_id();
	c->in_task = weft_current() != NULL;
	return c->in * 2 + 1;
}

static int basic_root(void *arg)
{
	struct call c = { .in = 20 }; /* on the caller's stack */
	int result = 0;

	(void)arg;
	WT_CHECK_EQ(weft_blocking(probe, &c, &result), 0);
	WT_CHECK_EQ(result, 41);
	WT_CHECK_EQ(c.worker, -1);
	WT_CHECK_EQ(c.in_task, 0);
	WT_CHECK(c.thread != wt_thread_self());
	/* result may be NULL. */
	c.in = 1;
	WT_CHECK_EQ(weft_blocking(probe, &c, NULL), 0);
	return 0;
}

static void test_basic(void **state)
{
	weft_config c = wt_cfg(2);

	(void)state;
	assert_int_equal(run_cfg(&c, basic_root, NULL), 0);
}

static void test_plain_thread_inline(void **state)
{
	struct call c = { .in = 4 };
	int result = 0;

	(void)state;
	assert_int_equal(weft_blocking(probe, &c, &result), 0);
	assert_int_equal(result, 9);
	assert_true(c.thread == wt_thread_self());
	assert_int_equal(c.in_task, 0);
}

/*
 * Saturation: 64 tasks each make one call that naps 2 ms and counts
 * itself in `running`; the pool has 4 threads, so the calls queue. All
 * complete with their own value; at most 4 ran at once.
 */
#define CALLS 64
#define POOL 4

static _Atomic int running, max_running, completed;

static int nap_fn(void *arg)
{
	int v = atomic_fetch_add(&running, 1) + 1;
	int m = atomic_load(&max_running);

	while (v > m && !atomic_compare_exchange_weak(&max_running, &m, v))
		;
	wt_nap(2 * WT_MS);
	atomic_fetch_sub(&running, 1);
	atomic_fetch_add(&completed, 1);
	return (int)(intptr_t)arg * 7;
}

static int caller(void *arg)
{
	int result = -1;

	WT_CHECK_EQ(weft_blocking(nap_fn, arg, &result), 0);
	WT_CHECK_EQ(result, (int)(intptr_t)arg * 7);
	return 0;
}

static int saturate_root(void *arg)
{
	weft_task *t[CALLS];
	intptr_t i;

	(void)arg;
	for (i = 0; i < CALLS; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], caller, (void *)i), 0);
	for (i = 0; i < CALLS; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	return 0;
}

static void test_saturated_pool(void **state)
{
	weft_config c = wt_cfg(2);

	(void)state;
	c.blocking_threads = POOL;
	atomic_store(&max_running, 0);
	atomic_store(&completed, 0);
	assert_int_equal(run_cfg(&c, saturate_root, NULL), 0);
	assert_int_equal(atomic_load(&completed), CALLS);
	assert_true(atomic_load(&max_running) <= POOL);
	assert_true(atomic_load(&max_running) >= 1);
	/* A pool of one, workers = 1: still no deadlock. */
	c = wt_cfg(1);
	c.blocking_threads = 1;
	atomic_store(&max_running, 0);
	atomic_store(&completed, 0);
	assert_int_equal(run_cfg(&c, saturate_root, NULL), 0);
	assert_int_equal(atomic_load(&completed), CALLS);
	assert_int_equal(atomic_load(&max_running), 1);
}

/*
 * Cancelled during the call: fn waits until the test releases it (after
 * the cancellation), and records that it ended. The task's call returns
 * -ECANCELED only after that, with *result set.
 */
static _Atomic int fn_in, fn_release, fn_ended;

static int gated_fn(void *arg)
{
	(void)arg;
	atomic_store(&fn_in, 1);
	while (!atomic_load(&fn_release))
		wt_nap(100 * WT_US);
	wt_nap(WT_MS);
	atomic_store(&fn_ended, 1);
	return 77;
}

static int cancelled_caller(void *arg)
{
	int result = -1, rc;

	(void)arg;
	rc = weft_blocking(gated_fn, NULL, &result);
	WT_CHECK_EQ(atomic_load(&fn_ended), 1);
	WT_CHECK_EQ(result, 77);
	/* Still cancelled afterwards. */
	WT_CHECK_EQ(weft_yield(), -ECANCELED);
	return rc;
}

/*
 * Deadlines. fn may start late on a loaded machine, even after the
 * caller's deadline: the contract covers a deadline that expires while fn
 * runs (fn ends, *result set, -ETIMEDOUT); if it expired before fn started
 * the runtime may skip fn, but then fn must never run later (it would
 * write into the returned caller's stack).
 */
static _Atomic int caller_back;

static int timed_caller(void *arg)
{
	int result = -1, rc, before = atomic_load(&completed);

	(void)arg;
	WT_CHECK_EQ(weft_timeout_begin(2 * WT_MS), 0);
	rc = weft_blocking(nap_fn, (void *)(intptr_t)3, &result);
	WT_CHECK(weft_timeout_end() >= 0);
	if (rc == 0) {
		WT_CHECK_EQ(result, 21);
	} else {
		WT_CHECK_EQ(rc, -ETIMEDOUT);
		WT_CHECK(result == 21 || result == -1);
		if (result == -1) {
			WT_CHECK_EQ(weft_sleep(20 * WT_MS), 0);
			WT_CHECK_EQ(atomic_load(&completed), before);
		}
	}
	return rc;
}

static int released_fn(void *arg)
{
	(void)arg;
	atomic_store(&fn_in, 1);
	while (!atomic_load(&fn_release))
		wt_nap(100 * WT_US);
	atomic_store(&fn_ended, 1);
	return 5;
}

static int timed_slow_caller(void *arg)
{
	int result = -1, rc;

	(void)arg;
	WT_CHECK_EQ(weft_timeout_begin(20 * WT_MS), 0);
	rc = weft_blocking(released_fn, NULL, &result);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	WT_CHECK_EQ(rc, -ETIMEDOUT);
	if (atomic_load(&fn_in)) {
		WT_CHECK_EQ(atomic_load(&fn_ended), 1);
		WT_CHECK_EQ(result, 5);
	} else {
		WT_CHECK_EQ(result, -1);
	}
	atomic_store(&caller_back, 1);
	return rc;
}

static int cancel_root(void *arg)
{
	weft_task *t;
	int r = 1;

	(void)arg;
	atomic_store(&fn_in, 0);
	atomic_store(&fn_release, 0);
	atomic_store(&fn_ended, 0);
	WT_CHECK_EQ(weft_spawn(&t, cancelled_caller, NULL), 0);
	WT_TASK_WAIT(atomic_load(&fn_in));
	WT_CHECK_EQ(weft_cancel(t), 0);
	WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	WT_CHECK_EQ(atomic_load(&fn_ended), 0);
	atomic_store(&fn_release, 1);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);

	/* fn runs until released 200 ms after it started (or until the
	 * caller is back, if the runtime skipped fn): far past the 20 ms
	 * deadline, which therefore expires while fn runs. */
	atomic_store(&fn_in, 0);
	atomic_store(&fn_ended, 0);
	atomic_store(&fn_release, 0);
	atomic_store(&caller_back, 0);
	WT_CHECK_EQ(weft_spawn(&t, timed_slow_caller, NULL), 0);
	WT_TASK_WAIT(atomic_load(&fn_in) || atomic_load(&caller_back));
	if (atomic_load(&fn_in))
		WT_CHECK_EQ(weft_sleep(200 * WT_MS), 0);
	atomic_store(&fn_release, 1);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ETIMEDOUT);
	/* A skipped fn never runs later. */
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	if (!atomic_load(&fn_in))
		WT_CHECK_EQ(atomic_load(&fn_ended), 0);

	/* A 2 ms nap under a 2 ms deadline: either outcome. */
	WT_CHECK_EQ(weft_spawn(&t, timed_caller, NULL), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK(r == 0 || r == -ETIMEDOUT);
	return 0;
}

static void test_cancel_during_call(void **state)
{
	weft_config c = wt_cfg(1);

	(void)state;
	assert_int_equal(run_cfg(&c, cancel_root, NULL), 0);
	c = wt_cfg(2);
	c.blocking_threads = 2;
	assert_int_equal(run_cfg(&c, cancel_root, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_plain_thread_inline),
		cmocka_unit_test(test_saturated_pool),
		cmocka_unit_test(test_cancel_during_call),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
