/* SPDX-License-Identifier: MIT */
/*
 * weft_cancel: a running task, a sleeping task, a task that has not started
 * yet (it never runs; its join stores -ECANCELED), a finished task
 * (-ESRCH, its result kept), the caller itself, NULL; after a cancellation
 * every suspending call of the task returns -ECANCELED until it returns.
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

static weft_rt *new_rt(unsigned workers)
{
	weft_config c = wt_cfg(workers);
	weft_rt *rt = NULL;

	assert_int_equal(weft_rt_new(&rt, &c), 0);
	return rt;
}

static int sleep_long(void *arg)
{
	(void)arg;
	return weft_sleep(WT_LONG_SLEEP);
}

/* Every kind of suspending call returns -ECANCELED, again and again. */
static void expect_cancelled_calls(void)
{
	weft_task *c = NULL;
	int i;

	for (i = 0; i < 3; i++) {
		WT_CHECK_EQ(weft_yield(), -ECANCELED);
		WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ECANCELED);
		WT_CHECK_EQ(weft_sleep(1), -ECANCELED);
	}
	/* Spawning does not suspend; joining does. The handle stays valid,
	 * so it is detached. */
	WT_CHECK_EQ(weft_spawn(&c, sleep_long, NULL), 0);
	WT_CHECK_EQ(weft_join(c, NULL), -ECANCELED);
	WT_CHECK_EQ(weft_join(c, NULL), -ECANCELED);
	WT_CHECK_EQ(weft_cancel(c), 0);
	weft_detach(c);
	/* A deadline scope opens, but a cancelled task's calls still fail. */
	WT_CHECK_EQ(weft_timeout_begin(WT_SEC), 0);
	WT_CHECK(weft_yield() < 0);
	WT_CHECK(weft_timeout_end() >= 0);
	WT_CHECK_EQ(weft_yield(), -ECANCELED);
}

/*
 * A task cancelled while it runs (on a worker, between suspensions) sees
 * the cancellation at its next suspending call. The canceller is the plain
 * test thread, so the spinning task never waits for a worker.
 */
static _Atomic int spin_started, spin_release;

static int spinner(void *arg)
{
	(void)arg;
	WT_CHECK_EQ(weft_yield(), 0);
	atomic_store(&spin_started, 1);
	while (!atomic_load(&spin_release))
		; /* running, not suspended */
	expect_cancelled_calls();
	/* Its own return value is kept. */
	return 5;
}

static void test_cancel_running(void **state)
{
	weft_rt *rt = new_rt(2);
	weft_task *t;
	int r = -1;

	(void)state;
	atomic_store(&spin_started, 0);
	atomic_store(&spin_release, 0);
	assert_int_equal(weft_rt_spawn(rt, &t, spinner, NULL), 0);
	WT_WAIT(atomic_load(&spin_started));
	assert_int_equal(weft_cancel(t), 0);
	assert_int_equal(weft_cancel(t), 0); /* twice is fine */
	atomic_store(&spin_release, 1);
	assert_int_equal(weft_join(t, &r), 0);
	assert_int_equal(r, 5);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
}

/* A sleeping task wakes with -ECANCELED; canceller is a task. */
static _Atomic int asleep;

static int sleeper(void *arg)
{
	int rc;

	(void)arg;
	atomic_store(&asleep, 1);
	rc = weft_sleep(WT_LONG_SLEEP);
	WT_CHECK_EQ(rc, -ECANCELED);
	expect_cancelled_calls();
	return 6;
}

static int cancel_sleeper(void *arg)
{
	weft_task *t;
	int r = -1;

	(void)arg;
	atomic_store(&asleep, 0);
	WT_CHECK_EQ(weft_spawn(&t, sleeper, NULL), 0);
	while (!atomic_load(&asleep))
		WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(t), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	return r;
}

static void test_cancel_sleeping(void **state)
{
	(void)state;
	assert_int_equal(run(1, cancel_sleeper, NULL), 6);
	assert_int_equal(run(2, cancel_sleeper, NULL), 6);
}

/* The same from a plain thread, and joined from it. */
static void test_cancel_sleeping_from_plain(void **state)
{
	weft_rt *rt = new_rt(2);
	weft_task *t;
	int r = -1;

	(void)state;
	atomic_store(&asleep, 0);
	assert_int_equal(weft_rt_spawn(rt, &t, sleeper, NULL), 0);
	WT_WAIT(atomic_load(&asleep));
	wt_nap(2 * WT_MS);
	assert_int_equal(weft_cancel(t), 0);
	assert_int_equal(weft_join(t, &r), 0);
	assert_int_equal(r, 6);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
}

/*
 * Cancelled before its first run: it never runs, and its join stores
 * -ECANCELED. With one worker a spawned task cannot start before the
 * spawner suspends, so the order is certain.
 */
static _Atomic int unstarted_ran;

static int must_not_run(void *arg)
{
	(void)arg;
	atomic_fetch_add(&unstarted_ran, 1);
	return 99;
}

static int cancel_unstarted(void *arg)
{
	weft_task *t, *d;
	int r = 0;

	(void)arg;
	WT_CHECK_EQ(weft_spawn(&t, must_not_run, NULL), 0);
	WT_CHECK_EQ(weft_spawn(&d, must_not_run, NULL), 0);
	WT_CHECK_EQ(weft_cancel(t), 0);
	WT_CHECK_EQ(weft_cancel(d), 0);
	weft_detach(d);
	WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);
	/* Give the worker time to run the detached one, which it must not. */
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	return r;
}

static void test_cancel_before_start(void **state)
{
	(void)state;
	atomic_store(&unstarted_ran, 0);
	assert_int_equal(run(1, cancel_unstarted, NULL), -ECANCELED);
	assert_int_equal(atomic_load(&unstarted_ran), 0);
}

/* From a plain thread: a gate task holds the only worker while the test
 * thread spawns and cancels. */
static _Atomic int gate_running, gate_open;

static int gate(void *arg)
{
	(void)arg;
	atomic_store(&gate_running, 1);
	while (!atomic_load(&gate_open))
		; /* holds the worker without suspending */
	return 0;
}

static void test_cancel_before_start_plain(void **state)
{
	weft_rt *rt = new_rt(1);
	weft_task *g, *t, *d;
	int r = 0;

	(void)state;
	atomic_store(&unstarted_ran, 0);
	atomic_store(&gate_running, 0);
	atomic_store(&gate_open, 0);
	assert_int_equal(weft_rt_spawn(rt, &g, gate, NULL), 0);
	WT_WAIT(atomic_load(&gate_running));
	assert_int_equal(weft_rt_spawn(rt, &t, must_not_run, NULL), 0);
	assert_int_equal(weft_rt_spawn(rt, &d, must_not_run, NULL), 0);
	assert_int_equal(weft_cancel(t), 0);
	assert_int_equal(weft_cancel(d), 0);
	weft_detach(d);
	atomic_store(&gate_open, 1);
	assert_int_equal(weft_join(g, &r), 0);
	assert_int_equal(weft_join(t, &r), 0);
	assert_int_equal(r, -ECANCELED);
	weft_rt_free(rt);
	assert_int_equal(atomic_load(&unstarted_ran), 0);
}

/* A finished task: -ESRCH, and its result is kept. */
static int quick(void *arg)
{
	(void)arg;
	return 8;
}

static int cancel_finished(void *arg)
{
	weft_task *t;
	int rc, r = -1, polls = 0;

	(void)arg;
	WT_CHECK_EQ(weft_spawn(&t, quick, NULL), 0);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	/* It has most likely ended; until it has, cancel returns 0, which
	 * cannot change a result that needs no suspension. */
	while ((rc = weft_cancel(t)) == 0 && polls++ < 100000)
		WT_CHECK_EQ(weft_sleep(100 * WT_US), 0);
	WT_CHECK_EQ(rc, -ESRCH);
	WT_CHECK_EQ(weft_cancel(t), -ESRCH);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, 8);
	WT_CHECK_EQ(weft_cancel(NULL), -EINVAL);
	return r;
}

static void test_cancel_finished(void **state)
{
	(void)state;
	assert_int_equal(run(2, cancel_finished, NULL), 8);
	assert_int_equal(weft_cancel(NULL), -EINVAL);
}

/* A task may cancel itself; the cancellation lands at its next suspension. */
static int cancel_self(void *arg)
{
	(void)arg;
	WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_cancel(weft_current()), 0);
	expect_cancelled_calls();
	return 12;
}

static int spawn_cancel_self(void *arg)
{
	weft_task *t;
	int r = -1;

	(void)arg;
	WT_CHECK_EQ(weft_spawn(&t, cancel_self, NULL), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	return r;
}

static void test_cancel_self(void **state)
{
	(void)state;
	assert_int_equal(run(2, spawn_cancel_self, NULL), 12);
}

/* A cancelled task's cancellation does not leak to others: its siblings
 * and its parent keep running normally. */
static _Atomic int healthy_done;

static int healthy(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < 50; i++) {
		WT_CHECK_EQ(weft_yield(), 0);
		WT_CHECK_EQ(weft_sleep(20 * WT_US), 0);
	}
	atomic_fetch_add(&healthy_done, 1);
	return 1;
}

static int cancel_some(void *arg)
{
	enum { N = 64 };
	weft_task *t[N];
	int i, r, sum = 0;

	(void)arg;
	for (i = 0; i < N; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], i % 2 ? healthy : sleep_long,
				       NULL), 0);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	for (i = 0; i < N; i += 2)
		WT_CHECK_EQ(weft_cancel(t[i]), 0);
	for (i = 0; i < N; i++) {
		r = 0;
		WT_CHECK_EQ(weft_join(t[i], &r), 0);
		if (i % 2)
			WT_CHECK_EQ(r, 1);
		else /* sleep_long returns its sleep's result */
			WT_CHECK_EQ(r, -ECANCELED);
		sum += r == 1;
	}
	WT_CHECK_EQ(weft_yield(), 0);
	return sum;
}

static void test_cancel_is_per_task(void **state)
{
	(void)state;
	assert_int_equal(run(2, cancel_some, NULL), 32);
	assert_int_equal(atomic_load(&healthy_done), 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cancel_running),
		cmocka_unit_test(test_cancel_sleeping),
		cmocka_unit_test(test_cancel_sleeping_from_plain),
		cmocka_unit_test(test_cancel_before_start),
		cmocka_unit_test(test_cancel_before_start_plain),
		cmocka_unit_test(test_cancel_finished),
		cmocka_unit_test(test_cancel_self),
		cmocka_unit_test(test_cancel_is_per_task),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
