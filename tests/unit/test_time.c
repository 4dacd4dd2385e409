/* SPDX-License-Identifier: MIT */
/*
 * weft_now (CLOCK_MONOTONIC, never going back, across workers too),
 * weft_sleep (at least the time asked for, in tasks and on plain threads;
 * no upper bound is asserted) and deadline scopes: expiry while asleep,
 * calls inside an expired scope, nesting (an inner scope shortens, never
 * extends; the outer applies again after it), the value of
 * weft_timeout_end, -ENOSPC past WEFT_TIMEOUT_DEPTH, -EINVAL, -EPERM.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "weft_test.h"

#define HOUR (3600 * WT_SEC)

static int run(unsigned workers, int (*fn)(void *), void *arg)
{
	weft_config c = wt_cfg(workers);
	int r = -12345;

	assert_int_equal(weft_run(&c, fn, arg, &r), 0);
	assert_int_equal(wt_take_failures(), 0);
	return r;
}

static void test_now_plain(void **state)
{
	uint64_t prev = weft_now();
	int i;

	(void)state;
	assert_true(prev > 0);
	for (i = 0; i < 100000; i++) {
		uint64_t before = wt_clock(), now = weft_now();

		assert_true(now >= prev);
		/* It is CLOCK_MONOTONIC: not before a reading taken first. */
		assert_true(now >= before);
		prev = now;
	}
	{
		uint64_t a = weft_now(), b;

		wt_nap(2 * WT_MS);
		b = weft_now();
		assert_true(b - a >= 2 * WT_MS);
		assert_true(b <= wt_clock());
	}
}

/* Readings published by one task and read by another never go back, even
 * when the two run on different workers. */
static _Atomic uint64_t latest;

static int now_reader(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < 2000; i++) {
		uint64_t seen = atomic_load(&latest);
		uint64_t now = weft_now();

		WT_CHECK(now >= seen);
		while (seen < now &&
		       !atomic_compare_exchange_weak(&latest, &seen, now))
			;
		if (i % 16 == 0)
			WT_CHECK_EQ(weft_yield(), 0);
	}
	return 0;
}

static int spawn_now_readers(void *arg)
{
	weft_task *t[8];
	int i;

	(void)arg;
	for (i = 0; i < 8; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], now_reader, NULL), 0);
	for (i = 0; i < 8; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	return 0;
}

static void test_now_tasks(void **state)
{
	(void)state;
	assert_int_equal(run(2, spawn_now_readers, NULL), 0);
}

/* Sleeps last at least as long as asked, by weft's clock and the test's. */
static void check_sleep(uint64_t ns)
{
	uint64_t a = weft_now(), b = wt_clock();

	WT_CHECK_EQ(weft_sleep(ns), 0);
	WT_CHECK(weft_now() - a >= ns);
	WT_CHECK(wt_clock() - b >= ns);
}

static int sleep_durations(void *arg)
{
	static const uint64_t ns[] = { 0, 1, 999, 50 * WT_US, WT_MS,
				       3 * WT_MS, 20 * WT_MS };
	size_t i;

	(void)arg;
	for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		check_sleep(ns[i]);
	return 0;
}

static void test_sleep_at_least(void **state)
{
	(void)state;
	assert_int_equal(run(1, sleep_durations, NULL), 0);
	assert_int_equal(run(2, sleep_durations, NULL), 0);
}

/* Many concurrent sleepers with random durations, each at least its own. */
static int random_sleeper(void *arg)
{
	uint64_t s = wt_seed(7, (uintptr_t)arg);
	int i;

	for (i = 0; i < 5; i++)
		check_sleep((uint64_t)wt_below(&s, 3000) * WT_US);
	return 0;
}

static int spawn_random_sleepers(void *arg)
{
	enum { N = 300 };
	static weft_task *t[N];
	int i;

	(void)arg;
	for (i = 0; i < N; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], random_sleeper,
				       (void *)(uintptr_t)i), 0);
	for (i = 0; i < N; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	return 0;
}

static void test_many_sleepers(void **state)
{
	(void)state;
	assert_int_equal(run(2, spawn_random_sleepers, NULL), 0);
}

/* On a plain thread weft_sleep blocks the thread. */
static void test_sleep_plain(void **state)
{
	uint64_t a = wt_clock();

	(void)state;
	assert_int_equal(weft_sleep(5 * WT_MS), 0);
	assert_true(wt_clock() - a >= 5 * WT_MS);
	assert_int_equal(weft_sleep(0), 0);
}

/* Outside a task, scopes cannot be opened or closed. */
static void test_timeout_plain(void **state)
{
	(void)state;
	assert_int_equal(weft_timeout_begin(WT_SEC), -EPERM);
	assert_int_equal(weft_timeout_end(), -EPERM);
}

/* A scope that does not expire. */
static int scope_not_expired(void *arg)
{
	(void)arg;
	WT_CHECK_EQ(weft_timeout_end(), -EINVAL);
	WT_CHECK_EQ(weft_timeout_begin(HOUR), 0);
	WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_timeout_end(), 0);
	WT_CHECK_EQ(weft_timeout_end(), -EINVAL);
	/* UINT64_MAX must not overflow into the past. */
	WT_CHECK_EQ(weft_timeout_begin(UINT64_MAX), 0);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_timeout_end(), 0);
	return 0;
}

static void test_scope_not_expired(void **state)
{
	(void)state;
	assert_int_equal(run(2, scope_not_expired, NULL), 0);
}

/* Expiry while asleep, then every suspending call fails until the end. */
static int blocked_child(void *arg)
{
	(void)arg;
	return weft_sleep(WT_LONG_SLEEP);
}

static int scope_expires(void *arg)
{
	weft_task *c;
	uint64_t t0;
	int r = 0;

	(void)arg;
	WT_CHECK_EQ(weft_spawn(&c, blocked_child, NULL), 0);
	t0 = weft_now();
	WT_CHECK_EQ(weft_timeout_begin(10 * WT_MS), 0);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ETIMEDOUT);
	WT_CHECK(weft_now() - t0 >= 10 * WT_MS);
	WT_CHECK_EQ(weft_yield(), -ETIMEDOUT);
	WT_CHECK_EQ(weft_sleep(1), -ETIMEDOUT);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ETIMEDOUT);
	WT_CHECK_EQ(weft_join(c, &r), -ETIMEDOUT);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	/* Outside the scope all is normal again. */
	WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_cancel(c), 0);
	WT_CHECK_EQ(weft_join(c, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);
	/* A zero-length scope is expired from the start. */
	WT_CHECK_EQ(weft_timeout_begin(0), 0);
	WT_CHECK_EQ(weft_yield(), -ETIMEDOUT);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	return 0;
}

static void test_scope_expires(void **state)
{
	(void)state;
	assert_int_equal(run(1, scope_expires, NULL), 0);
	assert_int_equal(run(2, scope_expires, NULL), 0);
}

/* The inner scope shortens the deadline; after it ends the outer one (an
 * hour away) applies and nothing fails. */
static int inner_shortens(void *arg)
{
	uint64_t t0;

	(void)arg;
	WT_CHECK_EQ(weft_timeout_begin(HOUR), 0);
	t0 = weft_now();
	WT_CHECK_EQ(weft_timeout_begin(10 * WT_MS), 0);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ETIMEDOUT);
	WT_CHECK(weft_now() - t0 >= 10 * WT_MS);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_timeout_end(), 0);
	return 0;
}

/* The inner scope cannot extend the outer deadline. */
static int inner_cannot_extend(void *arg)
{
	uint64_t t0 = weft_now();

	(void)arg;
	WT_CHECK_EQ(weft_timeout_begin(10 * WT_MS), 0);
	WT_CHECK_EQ(weft_timeout_begin(HOUR), 0);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ETIMEDOUT);
	WT_CHECK(weft_now() - t0 >= 10 * WT_MS);
	/* Whether the inner scope counts as expired is not specified. */
	WT_CHECK(weft_timeout_end() >= 0);
	WT_CHECK_EQ(weft_yield(), -ETIMEDOUT);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	WT_CHECK_EQ(weft_yield(), 0);
	return 0;
}

/* After the inner scope expires and ends, the outer deadline still
 * applies and expires in turn. */
static int outer_applies_again(void *arg)
{
	uint64_t t0 = weft_now();

	(void)arg;
	WT_CHECK_EQ(weft_timeout_begin(30 * WT_MS), 0);
	WT_CHECK_EQ(weft_timeout_begin(5 * WT_MS), 0);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ETIMEDOUT);
	WT_CHECK(weft_now() - t0 >= 5 * WT_MS);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ETIMEDOUT);
	WT_CHECK(weft_now() - t0 >= 30 * WT_MS);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	return 0;
}

static void test_nested(void **state)
{
	(void)state;
	assert_int_equal(run(2, inner_shortens, NULL), 0);
	assert_int_equal(run(2, inner_cannot_extend, NULL), 0);
	assert_int_equal(run(2, outer_applies_again, NULL), 0);
}

/* WEFT_TIMEOUT_DEPTH scopes fit; one more is refused, and does not need an
 * end. */
static int depth_limit(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < WEFT_TIMEOUT_DEPTH; i++)
		WT_CHECK_EQ(weft_timeout_begin(HOUR - (uint64_t)i), 0);
	WT_CHECK_EQ(weft_timeout_begin(WT_SEC), -ENOSPC);
	WT_CHECK_EQ(weft_timeout_begin(0), -ENOSPC);
	/* The refused scopes did not shorten anything. */
	WT_CHECK_EQ(weft_yield(), 0);
	for (i = 0; i < WEFT_TIMEOUT_DEPTH; i++)
		WT_CHECK_EQ(weft_timeout_end(), 0);
	WT_CHECK_EQ(weft_timeout_end(), -EINVAL);
	return 0;
}

static void test_depth_limit(void **state)
{
	(void)state;
	assert_int_equal(run(1, depth_limit, NULL), 0);
}

/* Many tasks, each with its own short scope, on all workers at once. */
static int scoped_sleeper(void *arg)
{
	uint64_t s = wt_seed(11, (uintptr_t)arg);
	uint64_t ns = (uint64_t)wt_below(&s, 3000) * WT_US;
	uint64_t t0 = weft_now();

	WT_CHECK_EQ(weft_timeout_begin(ns), 0);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ETIMEDOUT);
	WT_CHECK(weft_now() - t0 >= ns);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	/* The scope is the task's own: gone after the end. */
	WT_CHECK_EQ(weft_yield(), 0);
	return 0;
}

static int spawn_scoped_sleepers(void *arg)
{
	enum { N = 300 };
	static weft_task *t[N];
	int i;

	(void)arg;
	for (i = 0; i < N; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], scoped_sleeper,
				       (void *)(uintptr_t)i), 0);
	/* The spawner's own calls are unaffected by its children's scopes. */
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	for (i = 0; i < N; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	return 0;
}

static void test_many_scopes(void **state)
{
	(void)state;
	assert_int_equal(run(2, spawn_scoped_sleepers, NULL), 0);
}

/*
 * A task asleep on a worker that another task then keeps busy without ever
 * suspending still wakes on time-ish: the monitor fires a stuck worker's
 * due timers, and the sleeper runs on the other worker while the hog still
 * spins. The hog is put on the sleeper's worker through the LIFO slot (a
 * task woken by a send runs next on the sender's worker, and that slot is
 * not stolen); the worker ids confirm it, else the round is tried again.
 * The hog gives up after WT_LONG_SLEEP, so that without the monitor the
 * test fails instead of hanging.
 */
static _Atomic int hog_ready, hog_stop, hog_gave_up, hog_worker;

static int hog(void *arg)
{
	weft_chan *c = arg;
	uint64_t t0;
	char x;

	atomic_store(&hog_ready, 1);
	WT_CHECK_EQ(weft_chan_recv(c, &x), 0);
	atomic_store(&hog_worker, weft_worker_id());
	t0 = weft_now();
	while (!atomic_load(&hog_stop)) {
		if (weft_now() - t0 > WT_LONG_SLEEP) {
			atomic_store(&hog_gave_up, 1);
			break;
		}
	}
	return 0;
}

static int sleep_beside_hog(void *arg)
{
	int round;

	(void)arg;
	for (round = 0; round < 50; round++) {
		weft_chan *c;
		weft_task *h;
		char x = 1;
		int me;

		atomic_store(&hog_ready, 0);
		atomic_store(&hog_stop, 0);
		atomic_store(&hog_worker, -1);
		WT_CHECK_EQ(weft_chan_new(&c, 1, 1), 0);
		WT_CHECK_EQ(weft_spawn(&h, hog, c), 0);
		while (!atomic_load(&hog_ready))
			WT_CHECK_EQ(weft_yield(), 0);
		WT_CHECK_EQ(weft_sleep(WT_MS), 0); /* the hog waits in recv */
		me = weft_worker_id();
		WT_CHECK_EQ(weft_chan_send(c, &x), 0);
		WT_CHECK_EQ(weft_sleep(10 * WT_MS), 0);
		/* Woken while the hog still spins, unless it ran elsewhere. */
		WT_CHECK_EQ(atomic_load(&hog_gave_up), 0);
		atomic_store(&hog_stop, 1);
		WT_CHECK_EQ(weft_join(h, NULL), 0);
		weft_chan_free(c);
		if (atomic_load(&hog_worker) == me)
			return round;
	}
	WT_CHECK(!"the hog never ran on the sleeper's worker");
	return -1;
}

static void test_sleep_beside_stuck_worker(void **state)
{
	(void)state;
	assert_true(run(2, sleep_beside_hog, NULL) >= 0);
	assert_int_equal(atomic_load(&hog_gave_up), 0);
}

/*
 * A task spawned by a task that then computes without suspending sits in
 * the computing worker's LIFO slot; the monitor moves it to the other
 * worker. Each round spawns a child and spins until it has run, or gives
 * up after WT_LONG_SLEEP (then the test fails instead of hanging).
 */
static _Atomic int child_ran, child_worker;

static int child(void *arg)
{
	(void)arg;
	atomic_store(&child_worker, weft_worker_id());
	atomic_store(&child_ran, 1);
	return 0;
}

static int spawn_then_compute(void *arg)
{
	int round;

	(void)arg;
	for (round = 0; round < 20; round++) {
		int me = weft_worker_id(), ran;
		weft_task *c;
		uint64_t t0;

		atomic_store(&child_ran, 0);
		atomic_store(&child_worker, -1);
		WT_CHECK_EQ(weft_spawn(&c, child, NULL), 0);
		t0 = weft_now();
		while (!atomic_load(&child_ran) &&
		       weft_now() - t0 < WT_LONG_SLEEP)
			;
		/* It ran while this task computed, so on the other worker. */
		ran = atomic_load(&child_ran);
		WT_CHECK_EQ(ran, 1);
		WT_CHECK(atomic_load(&child_worker) != me);
		WT_CHECK(weft_worker_id() == me);
		WT_CHECK_EQ(weft_join(c, NULL), 0);
		if (!ran)
			return -1;
	}
	return 0;
}

static void test_spawn_beside_stuck_worker(void **state)
{
	(void)state;
	assert_int_equal(run(2, spawn_then_compute, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_now_plain),
		cmocka_unit_test(test_now_tasks),
		cmocka_unit_test(test_sleep_at_least),
		cmocka_unit_test(test_many_sleepers),
		cmocka_unit_test(test_sleep_plain),
		cmocka_unit_test(test_timeout_plain),
		cmocka_unit_test(test_scope_not_expired),
		cmocka_unit_test(test_scope_expires),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_many_scopes),
		cmocka_unit_test(test_sleep_beside_stuck_worker),
		cmocka_unit_test(test_spawn_beside_stuck_worker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
