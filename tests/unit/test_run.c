/* SPDX-License-Identifier: MIT */
/*
 * weft_run(): the example, NULL and zeroed configs, invalid configs,
 * results passed through untouched, the config's worker count and stack
 * size, and the cancellation of every task still alive when fn returns.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "weft_test.h"

/* The example of the issue, as a user would write it. */
static int example_child(void *arg)
{
	weft_sleep(1000000);
	return *(int *)arg * 2;
}

static int example_main(void *arg)
{
	int x = 21;
	weft_task *t;
	int r;

	(void)arg;
	if (weft_spawn(&t, example_child, &x) < 0 || weft_join(t, &r) < 0)
		return -1;
	return r;
}

static void test_example_42(void **state)
{
	int r = 0;

	(void)state;
	assert_int_equal(weft_run(NULL, example_main, NULL, &r), 0);
	assert_int_equal(r, 42);
}

/* Reports the worker it runs on: in range, and never -1 in a task. */
static int report_worker(void *arg)
{
	int workers = *(int *)arg;
	int w = weft_worker_id();

	WT_CHECK(w >= 0 && w < workers);
	WT_CHECK(weft_current() != NULL);
	return 1000 + w;
}

static void test_null_and_zeroed_config(void **state)
{
	weft_config zero = wt_cfg(0);
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	int workers; /* 0 means the online CPUs, at most 1024 */
	int r = -1;

	(void)state;
	workers = online < 1 ? 1 : online > 1024 ? 1024 : (int)online;
	assert_int_equal(weft_run(NULL, report_worker, &workers, &r), 0);
	assert_true(r >= 1000 && r < 1000 + workers);
	r = -1;
	assert_int_equal(weft_run(&zero, report_worker, &workers, &r), 0);
	assert_true(r >= 1000 && r < 1000 + workers);
	assert_int_equal(wt_take_failures(), 0);
}

static int return_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

static void test_result_passes_through(void **state)
{
	static const int values[] = { 0, 1, -1, -7, -ECANCELED, -ETIMEDOUT,
				      2147483647, -2147483647 - 1 };
	weft_config c = wt_cfg(1);
	size_t i;

	(void)state;
	/* A negative task result is not a failure of weft_run. */
	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		int r = 12345;

		assert_int_equal(weft_run(&c, return_arg,
					  (void *)(intptr_t)values[i], &r), 0);
		assert_int_equal(r, values[i]);
	}
	/* result == NULL is allowed. */
	assert_int_equal(weft_run(&c, return_arg, (void *)(intptr_t)-3, NULL),
			 0);
}

static _Atomic int invalid_ran;

static int mark_ran(void *arg)
{
	(void)arg;
	atomic_store(&invalid_ran, 1);
	return 0;
}

static void expect_einval(const weft_config *c)
{
	int r = 77;

	assert_int_equal(weft_run(c, mark_ran, NULL, &r), -EINVAL);
	assert_int_equal(atomic_load(&invalid_ran), 0);
}

static void test_invalid_config(void **state)
{
	weft_config c;
	size_t i;

	(void)state;
	c = wt_cfg(1);
	c.flags = 1;
	expect_einval(&c);
	for (i = 0; i < sizeof(c.reserved_u) / sizeof(c.reserved_u[0]); i++) {
		c = wt_cfg(1);
		c.reserved_u[i] = 1;
		expect_einval(&c);
	}
	for (i = 0; i < sizeof(c.reserved) / sizeof(c.reserved[0]); i++) {
		c = wt_cfg(1);
		c.reserved[i] = 1ull << 40;
		expect_einval(&c);
	}
	/* A valid config still works after the failures. */
	c = wt_cfg(1);
	assert_int_equal(weft_run(&c, mark_ran, NULL, NULL), 0);
	assert_int_equal(atomic_load(&invalid_ran), 1);
	atomic_store(&invalid_ran, 0);
}

/* Every worker index seen is below the configured count, and with enough
 * sleeping tasks more than one worker takes part. */
static _Atomic unsigned seen_workers;

static int note_worker(void *arg)
{
	int workers = *(int *)arg;
	int i;

	for (i = 0; i < 20; i++) {
		int w = weft_worker_id();

		WT_CHECK(w >= 0 && w < workers);
		if (w >= 0 && w < 32)
			atomic_fetch_or(&seen_workers, 1u << w);
		WT_CHECK_EQ(weft_sleep(50 * WT_US), 0);
	}
	return 0;
}

static int spawn_note_workers(void *arg)
{
	weft_task *t[64];
	int i, r;

	for (i = 0; i < 64; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], note_worker, arg), 0);
	for (i = 0; i < 64; i++) {
		WT_CHECK_EQ(weft_join(t[i], &r), 0);
		WT_CHECK_EQ(r, 0);
	}
	return 0;
}

static void test_worker_count(void **state)
{
	static int counts[] = { 1, 2, 3 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		weft_config c = wt_cfg((unsigned)counts[i]);
		int r = -1;

		atomic_store(&seen_workers, 0);
		assert_int_equal(weft_run(&c, spawn_note_workers, &counts[i],
					  &r), 0);
		assert_int_equal(r, 0);
		assert_int_equal(wt_take_failures(), 0);
		assert_true(atomic_load(&seen_workers) != 0);
		assert_true(atomic_load(&seen_workers) < (1u << counts[i]));
		printf("workers=%d: worker mask seen 0x%x\n", counts[i],
		       atomic_load(&seen_workers));
	}
}

/* cfg.stack_size is the default stack of every task. */
static int use_stack(void *arg)
{
	unsigned kib = *(unsigned *)arg;

	return weft_sleep(0) == 0 && wt_stack_use(kib) == wt_stack_expect(kib);
}

static int spawn_use_stack(void *arg)
{
	weft_task *t;
	int r = -1;

	WT_CHECK_EQ(weft_spawn(&t, use_stack, arg), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	return r;
}

static void test_stack_size_config(void **state)
{
	weft_config c = wt_cfg(2);
	unsigned kib;
	int r;

	(void)state;
	/* The default (256 KiB) holds ordinary C code. */
	kib = 96;
	r = -1;
	assert_int_equal(weft_run(&c, spawn_use_stack, &kib, &r), 0);
	assert_int_equal(r, 1);
	/* 2 MiB default stacks hold 1.5 MiB of frames, both in the first
	 * task and in the tasks it spawns. */
	c.stack_size = 2u << 20;
	kib = 1536;
	r = -1;
	assert_int_equal(weft_run(&c, use_stack, &kib, &r), 0);
	assert_int_equal(r, 1);
	r = -1;
	assert_int_equal(weft_run(&c, spawn_use_stack, &kib, &r), 0);
	assert_int_equal(r, 1);
	/* A size that is not a multiple of the page is rounded up. */
	c.stack_size = 100000;
	kib = 48;
	r = -1;
	assert_int_equal(weft_run(&c, spawn_use_stack, &kib, &r), 0);
	assert_int_equal(r, 1);
	assert_int_equal(wt_take_failures(), 0);
}

/*
 * When fn returns, weft_run cancels every task still alive and waits for
 * it: sleepers wake with -ECANCELED and get to run their cleanup.
 */
#define LEFTOVERS 32
static _Atomic int left_started, left_canceled, left_finished;

static int leftover(void *arg)
{
	int rc;

	(void)arg;
	atomic_fetch_add(&left_started, 1);
	rc = weft_sleep(WT_LONG_SLEEP);
	if (rc == -ECANCELED)
		atomic_fetch_add(&left_canceled, 1);
	/* Cleanup that suspends gets -ECANCELED at once, so it cannot hang. */
	WT_CHECK_EQ(weft_yield(), -ECANCELED);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ECANCELED);
	atomic_fetch_add(&left_finished, 1);
	return 0;
}

static int leave_sleepers(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < LEFTOVERS; i++)
		WT_CHECK_EQ(weft_spawn(NULL, leftover, NULL), 0);
	/* Return only once every one of them sleeps (or is about to). */
	while (atomic_load(&left_started) < LEFTOVERS)
		WT_CHECK_EQ(weft_sleep(100 * WT_US), 0);
	return 5;
}

static void test_leftover_tasks_cancelled(void **state)
{
	weft_config c = wt_cfg(2);
	int r = -1;

	(void)state;
	assert_int_equal(weft_run(&c, leave_sleepers, NULL, &r), 0);
	assert_int_equal(r, 5);
	assert_int_equal(atomic_load(&left_started), LEFTOVERS);
	assert_int_equal(atomic_load(&left_canceled), LEFTOVERS);
	assert_int_equal(atomic_load(&left_finished), LEFTOVERS);
	assert_int_equal(wt_take_failures(), 0);
}

/* With one worker, tasks spawned by fn cannot start before fn suspends;
 * fn returns without suspending, so they are cancelled before their first
 * run and never run. */
static _Atomic int unstarted_ran;

static int must_not_run(void *arg)
{
	(void)arg;
	atomic_fetch_add(&unstarted_ran, 1);
	return 0;
}

static int leave_unstarted(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < 16; i++)
		WT_CHECK_EQ(weft_spawn(NULL, must_not_run, NULL), 0);
	return 9;
}

static void test_leftover_unstarted_never_run(void **state)
{
	weft_config c = wt_cfg(1);
	int r = -1;

	(void)state;
	assert_int_equal(weft_run(&c, leave_unstarted, NULL, &r), 0);
	assert_int_equal(r, 9);
	assert_int_equal(atomic_load(&unstarted_ran), 0);
	assert_int_equal(wt_take_failures(), 0);
}

/* Runtimes come and go: many in a row, and two at once. */
static void test_many_runs(void **state)
{
	int i, n = WT_SCALE(100, 20);

	(void)state;
	for (i = 0; i < n; i++) {
		weft_config c = wt_cfg((unsigned)(1 + i % 3));
		int r = -1;

		assert_int_equal(weft_run(&c, example_main, NULL, &r), 0);
		assert_int_equal(r, 42);
	}
}

static void *run_in_thread(void *arg)
{
	int i, *bad = arg;

	for (i = 0; i < WT_SCALE(20, 5); i++) {
		weft_config c = wt_cfg(2);
		int r = -1;

		if (weft_run(&c, spawn_note_workers, &(int){ 2 }, &r) != 0 ||
		    r != 0)
			(*bad)++;
	}
	return NULL;
}

static void test_concurrent_runs(void **state)
{
	pthread_t th[2];
	int bad[2] = { 0, 0 };
	int i;

	(void)state;
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, run_in_thread,
						&bad[i]), 0);
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(bad[0] + bad[1], 0);
	assert_int_equal(wt_take_failures(), 0);
}

/* weft_current_rt: the runtime weft_run started, usable like a weft_rt_new
 * one, from the first task and from tasks it spawned; NULL on plain
 * threads. */
static int child_rt(void *arg)
{
	return weft_current_rt() == (weft_rt *)arg ? 7 : -1;
}

static int use_current_rt(void *arg)
{
	weft_rt *rt = weft_current_rt();
	weft_task *t;
	int r = -1, backend;

	WT_CHECK(rt != NULL);
	if (!rt)
		return -1;
	WT_CHECK_EQ(weft_rt_workers(rt), *(int *)arg);
	backend = weft_rt_io_backend(rt);
	WT_CHECK(backend == WEFT_IO_URING || backend == WEFT_IO_EPOLL);
	WT_CHECK_EQ(weft_rt_spawn(rt, &t, child_rt, rt), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, 7);
	return 0;
}

static int return_current_rt_is(void *arg)
{
	return weft_current_rt() == (weft_rt *)arg;
}

static void test_current_rt(void **state)
{
	weft_config c = wt_cfg(2);
	weft_rt *rt;
	int r = -1;

	(void)state;
	assert_null(weft_current_rt());
	assert_int_equal(weft_run(&c, use_current_rt, &(int){ 2 }, &r), 0);
	assert_int_equal(r, 0);
	assert_null(weft_current_rt());
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	assert_int_equal(weft_rt_block_on(rt, return_current_rt_is, rt, &r),
			 0);
	assert_int_equal(r, 1);
	assert_null(weft_current_rt());
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_42),
		cmocka_unit_test(test_null_and_zeroed_config),
		cmocka_unit_test(test_result_passes_through),
		cmocka_unit_test(test_invalid_config),
		cmocka_unit_test(test_worker_count),
		cmocka_unit_test(test_stack_size_config),
		cmocka_unit_test(test_leftover_tasks_cancelled),
		cmocka_unit_test(test_leftover_unstarted_never_run),
		cmocka_unit_test(test_many_runs),
		cmocka_unit_test(test_concurrent_runs),
		cmocka_unit_test(test_current_rt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
