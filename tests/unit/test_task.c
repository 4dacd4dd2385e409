/* SPDX-License-Identifier: MIT */
/*
 * Tasks: weft_spawn, weft_spawn_ex (name, stack size, a deep recursion on an
 * 8 MiB stack), weft_join (results, -EINVAL, -EDEADLK, -ETIMEDOUT and
 * -ECANCELED with the handle still valid), weft_detach, weft_current,
 * weft_task_id, weft_worker_id, weft_yield; 100,000 tasks spawned by many
 * tasks at once; tasks that may migrate at every yield.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "weft_test.h"

/* Runs fn as the first task of a runtime with `workers` workers and
 * returns its result; no task may have recorded a failure. */
static int run(unsigned workers, int (*fn)(void *), void *arg)
{
	weft_config c = wt_cfg(workers);
	int r = -12345;

	assert_int_equal(weft_run(&c, fn, arg, &r), 0);
	assert_int_equal(wt_take_failures(), 0);
	return r;
}

static int times3_plus1(void *arg)
{
	intptr_t i = (intptr_t)arg;

	if (i % 3 == 0)
		WT_CHECK_EQ(weft_yield(), 0);
	return (int)(i * 3 + 1);
}

/* Results come back through join, in any join order, and result may be
 * NULL. */
static int spawn_and_join(void *arg)
{
	enum { N = 1000 };
	static weft_task *t[N];
	int i, r, ok = 0;

	(void)arg;
	for (i = 0; i < N; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], times3_plus1,
				       (void *)(intptr_t)i), 0);
	for (i = N - 1; i >= 0; i--) {
		if (i == 500) {
			WT_CHECK_EQ(weft_join(t[i], NULL), 0);
			ok++;
			continue;
		}
		r = -1;
		WT_CHECK_EQ(weft_join(t[i], &r), 0);
		if (r == i * 3 + 1)
			ok++;
	}
	return ok;
}

static void test_spawn_join(void **state)
{
	(void)state;
	assert_int_equal(run(1, spawn_and_join, NULL), 1000);
	assert_int_equal(run(2, spawn_and_join, NULL), 1000);
}

/* Detached tasks (out == NULL, or weft_detach) still run to the end. */
static _Atomic int detached_done, quick_finished;

static int detached_body(void *arg)
{
	(void)arg;
	WT_CHECK_EQ(weft_sleep(50 * WT_US), 0);
	WT_CHECK_EQ(weft_yield(), 0);
	atomic_fetch_add(&detached_done, 1);
	return 0;
}

static int quick_done(void *arg)
{
	(void)arg;
	atomic_fetch_add(&detached_done, 1);
	atomic_store(&quick_finished, 1);
	return 0;
}

static int spawn_detached(void *arg)
{
	weft_task *t;
	int i;

	(void)arg;
	for (i = 0; i < 100; i++)
		WT_CHECK_EQ(weft_spawn(NULL, detached_body, NULL), 0);
	for (i = 0; i < 100; i++) {
		/* Detached while still running or before it started. */
		WT_CHECK_EQ(weft_spawn(&t, detached_body, NULL), 0);
		weft_detach(t);
	}
	/* Detached after it finished: the record is freed right away. */
	WT_CHECK_EQ(weft_spawn(&t, quick_done, NULL), 0);
	while (!atomic_load(&quick_finished))
		WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	weft_detach(t);
	weft_detach(NULL);
	while (atomic_load(&detached_done) < 201)
		WT_CHECK_EQ(weft_sleep(100 * WT_US), 0);
	return 0;
}

static void test_detach(void **state)
{
	(void)state;
	assert_int_equal(run(2, spawn_detached, NULL), 0);
	assert_int_equal(atomic_load(&detached_done), 201);
}

/* Bad arguments, and spawn outside a task. */
static int spawn_invalid(void *arg)
{
	weft_spawn_opts o;
	weft_task *t = NULL;
	size_t i;

	(void)arg;
	WT_CHECK_EQ(weft_spawn(&t, NULL, NULL), -EINVAL);
	memset(&o, 0, sizeof(o));
	WT_CHECK_EQ(weft_spawn_ex(&t, &o, NULL, NULL), -EINVAL);
	for (i = 0; i < sizeof(o.reserved) / sizeof(o.reserved[0]); i++) {
		memset(&o, 0, sizeof(o));
		o.reserved[i] = 1;
		WT_CHECK_EQ(weft_spawn_ex(&t, &o, times3_plus1, NULL),
			    -EINVAL);
	}
	WT_CHECK_EQ(weft_join(NULL, NULL), -EINVAL);
	return 0;
}

static void test_spawn_invalid(void **state)
{
	weft_spawn_opts o;
	weft_task *t = NULL;

	(void)state;
	assert_int_equal(run(1, spawn_invalid, NULL), 0);
	memset(&o, 0, sizeof(o));
	assert_int_equal(weft_spawn(&t, times3_plus1, NULL), -EPERM);
	assert_int_equal(weft_spawn(NULL, times3_plus1, NULL), -EPERM);
	assert_int_equal(weft_spawn_ex(&t, &o, times3_plus1, NULL), -EPERM);
	assert_int_equal(weft_join(NULL, NULL), -EINVAL);
}

/* spawn_ex: names, stack sizes (rounded up to a page), zeroed options. */
static int use_kib(void *arg)
{
	unsigned kib = (unsigned)(uintptr_t)arg;

	WT_CHECK_EQ(weft_yield(), 0);
	return wt_stack_use(kib) == wt_stack_expect(kib) ? (int)kib : -1;
}

static int spawn_ex_variants(void *arg)
{
	static const struct {
		size_t stack;
		const char *name;
		unsigned use_kib;
	} v[] = {
		{ 0, NULL, 64 },
		{ 0, "named", 64 },
		{ 16 << 10, "smallest", 4 },
		{ 100000, "odd-size", 48 },
		{ 1 << 20, "one-mib", 700 },
	};
	weft_spawn_opts o;
	weft_task *t;
	size_t i;
	int r;

	(void)arg;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		memset(&o, 0, sizeof(o));
		o.stack_size = v[i].stack;
		o.name = v[i].name;
		r = -1;
		WT_CHECK_EQ(weft_spawn_ex(&t, &o, use_kib,
					  (void *)(uintptr_t)v[i].use_kib), 0);
		WT_CHECK_EQ(weft_join(t, &r), 0);
		WT_CHECK_EQ(r, v[i].use_kib);
	}
	/* Detached through spawn_ex. */
	memset(&o, 0, sizeof(o));
	o.name = "detached";
	WT_CHECK_EQ(weft_spawn_ex(NULL, &o, use_kib, (void *)1), 0);
	return 0;
}

static void test_spawn_ex(void **state)
{
	(void)state;
	assert_int_equal(run(2, spawn_ex_variants, NULL), 0);
}

/* Several MiB of frames inside a task with an 8 MiB stack, on two tasks at
 * once, suspending in between. */
#define DEEP_KIB 5120

static int deep(void *arg)
{
	uint64_t got;

	(void)arg;
	WT_CHECK_EQ(weft_yield(), 0);
	got = wt_stack_use(DEEP_KIB);
	WT_CHECK_EQ(weft_sleep(100 * WT_US), 0);
	got += wt_stack_use(DEEP_KIB);
	return got == 2 * wt_stack_expect(DEEP_KIB);
}

static int spawn_deep(void *arg)
{
	weft_spawn_opts o;
	weft_task *t[2];
	int i, r, ok = 0;

	(void)arg;
	memset(&o, 0, sizeof(o));
	o.stack_size = 8u << 20;
	o.name = "deep";
	for (i = 0; i < 2; i++)
		WT_CHECK_EQ(weft_spawn_ex(&t[i], &o, deep, NULL), 0);
	for (i = 0; i < 2; i++) {
		r = 0;
		WT_CHECK_EQ(weft_join(t[i], &r), 0);
		ok += r;
	}
	return ok;
}

static void test_deep_recursion(void **state)
{
	(void)state;
	assert_int_equal(run(2, spawn_deep, NULL), 2);
}

/* A task cannot join itself. */
static int join_self(void *arg)
{
	int r = 0;

	(void)arg;
	WT_CHECK_EQ(weft_join(weft_current(), &r), -EDEADLK);
	WT_CHECK_EQ(weft_join(weft_current(), NULL), -EDEADLK);
	return 4;
}

static int spawn_join_self(void *arg)
{
	weft_task *t;
	int r = -1;

	(void)arg;
	WT_CHECK_EQ(weft_join(weft_current(), &r), -EDEADLK);
	WT_CHECK_EQ(weft_spawn(&t, join_self, NULL), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	return r;
}

static void test_join_self(void **state)
{
	(void)state;
	assert_int_equal(run(2, spawn_join_self, NULL), 4);
}

/* A join that times out leaves the handle valid: join it again later. */
static _Atomic int child_release;

static int wait_release(void *arg)
{
	while (!atomic_load(&child_release))
		WT_CHECK_EQ(weft_sleep(100 * WT_US), 0);
	return (int)(intptr_t)arg;
}

static int join_timeout(void *arg)
{
	weft_task *t;
	uint64_t t0;
	int r = -1;

	(void)arg;
	atomic_store(&child_release, 0);
	WT_CHECK_EQ(weft_spawn(&t, wait_release, (void *)31), 0);
	WT_CHECK_EQ(weft_timeout_begin(2 * WT_MS), 0);
	t0 = weft_now();
	WT_CHECK_EQ(weft_join(t, &r), -ETIMEDOUT);
	WT_CHECK(weft_now() - t0 >= WT_MS);
	WT_CHECK_EQ(r, -1);
	/* Still expired: joins keep failing. */
	WT_CHECK_EQ(weft_join(t, &r), -ETIMEDOUT);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	atomic_store(&child_release, 1);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	return r;
}

static void test_join_timeout(void **state)
{
	(void)state;
	assert_int_equal(run(2, join_timeout, NULL), 31);
	assert_int_equal(run(1, join_timeout, NULL), 31);
}

/* A cancelled joiner gets -ECANCELED; the handle stays valid and another
 * task joins it. */
static weft_task *_Atomic joined_child;
static _Atomic int joiner_joining, joiner_rc;

static int joiner(void *arg)
{
	weft_task *c;

	(void)arg;
	WT_CHECK_EQ(weft_spawn(&c, wait_release, (void *)55), 0);
	atomic_store(&joined_child, c);
	atomic_store(&joiner_joining, 1);
	atomic_store(&joiner_rc, weft_join(c, NULL));
	return 11;
}

static int cancel_joiner(void *arg)
{
	weft_task *p;
	int r = -1;

	(void)arg;
	atomic_store(&child_release, 0);
	atomic_store(&joiner_joining, 0);
	WT_CHECK_EQ(weft_spawn(&p, joiner, NULL), 0);
	while (!atomic_load(&joiner_joining))
		WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0); /* most likely inside join now */
	WT_CHECK_EQ(weft_cancel(p), 0);
	WT_CHECK_EQ(weft_join(p, &r), 0);
	WT_CHECK_EQ(r, 11);
	WT_CHECK_EQ(atomic_load(&joiner_rc), -ECANCELED);
	atomic_store(&child_release, 1);
	r = -1;
	WT_CHECK_EQ(weft_join(atomic_load(&joined_child), &r), 0);
	return r;
}

static void test_join_cancelled_joiner(void **state)
{
	(void)state;
	assert_int_equal(run(2, cancel_joiner, NULL), 55);
	assert_int_equal(run(1, cancel_joiner, NULL), 55);
}

/* weft_current, weft_task_id, weft_worker_id. */
#define ID_TASKS 1000
static uint64_t ids_inside[ID_TASKS];

static int record_id(void *arg)
{
	intptr_t i = (intptr_t)arg;
	weft_task *self = weft_current();

	WT_CHECK(self != NULL);
	ids_inside[i] = weft_task_id(self);
	WT_CHECK_EQ(weft_yield(), 0);
	/* The same task after a suspension. */
	WT_CHECK(weft_current() == self);
	WT_CHECK_EQ(weft_task_id(weft_current()), ids_inside[i]);
	WT_CHECK(weft_worker_id() >= 0 && weft_worker_id() < 2);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int check_ids(void *arg)
{
	static weft_task *t[ID_TASKS];
	static uint64_t ids_outside[ID_TASKS];
	uint64_t me = weft_task_id(weft_current());
	int i;

	(void)arg;
	WT_CHECK(me != 0);
	for (i = 0; i < ID_TASKS; i++) {
		WT_CHECK_EQ(weft_spawn(&t[i], record_id, (void *)(intptr_t)i),
			    0);
		ids_outside[i] = weft_task_id(t[i]);
		WT_CHECK(ids_outside[i] != 0);
		WT_CHECK(ids_outside[i] != me);
	}
	for (i = 0; i < ID_TASKS; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	for (i = 0; i < ID_TASKS; i++)
		WT_CHECK_EQ(ids_inside[i], ids_outside[i]);
	qsort(ids_outside, ID_TASKS, sizeof(ids_outside[0]), cmp_u64);
	for (i = 1; i < ID_TASKS; i++)
		WT_CHECK(ids_outside[i] != ids_outside[i - 1]);
	return 0;
}

static void test_current_and_ids(void **state)
{
	(void)state;
	assert_null(weft_current());
	assert_int_equal(weft_task_id(NULL), 0);
	assert_int_equal(weft_worker_id(), -1);
	assert_int_equal(run(2, check_ids, NULL), 0);
	/* Still nothing on the plain thread after the runtime ended. */
	assert_null(weft_current());
	assert_int_equal(weft_worker_id(), -1);
}

/* Yield lets the other runnable task of the worker run: with one worker,
 * two yielding tasks alternate. */
#define YIELDS 200
static _Atomic int steps[2], yield_done[2], alternation_misses;

static int alternate(void *arg)
{
	int me = (int)(intptr_t)arg, other = !me;
	int i;

	for (i = 0; i < YIELDS; i++) {
		int before = atomic_load(&steps[other]);

		atomic_fetch_add(&steps[me], 1);
		WT_CHECK_EQ(weft_yield(), 0);
		if (!atomic_load(&yield_done[other]) &&
		    atomic_load(&steps[other]) == before)
			atomic_fetch_add(&alternation_misses, 1);
	}
	atomic_store(&yield_done[me], 1);
	return 0;
}

static int yield_pair(void *arg)
{
	weft_task *a, *b;

	(void)arg;
	WT_CHECK_EQ(weft_yield(), 0); /* alone: returns at once */
	WT_CHECK_EQ(weft_spawn(&a, alternate, (void *)0), 0);
	WT_CHECK_EQ(weft_spawn(&b, alternate, (void *)1), 0);
	WT_CHECK_EQ(weft_join(a, NULL), 0);
	WT_CHECK_EQ(weft_join(b, NULL), 0);
	return atomic_load(&steps[0]) + atomic_load(&steps[1]);
}

static void test_yield(void **state)
{
	(void)state;
	assert_int_equal(weft_yield(), -EPERM);
	assert_int_equal(run(1, yield_pair, NULL), 2 * YIELDS);
	assert_int_equal(atomic_load(&alternation_misses), 0);
}

/*
 * 100,000 tasks spawned by 100 tasks at once; every result is checked by
 * its spawner, and the spawners' tallies by the first task.
 */
#define SPAWNERS 100
#define PER_SPAWNER WT_SCALE(1000, 100)

static int hundred_k_leaf(void *arg)
{
	uintptr_t v = (uintptr_t)arg;

	if (v % 7 == 0)
		WT_CHECK_EQ(weft_yield(), 0);
	return (int)(v * 2 + 1);
}

static int hundred_k_spawner(void *arg)
{
	uintptr_t base = (uintptr_t)arg * PER_SPAWNER;
	weft_task **t = calloc(PER_SPAWNER, sizeof(*t));
	int i, ok = 0;

	WT_CHECK(t != NULL);
	if (!t)
		return 0;
	for (i = 0; i < PER_SPAWNER; i++)
		if (weft_spawn(&t[i], hundred_k_leaf,
			       (void *)(base + (uintptr_t)i)) != 0) {
			WT_CHECK(!"spawn failed");
			t[i] = NULL;
		}
	for (i = 0; i < PER_SPAWNER; i++) {
		int r = -1;

		if (t[i] && weft_join(t[i], &r) == 0 &&
		    r == (int)((base + (uintptr_t)i) * 2 + 1))
			ok++;
	}
	free(t);
	return ok;
}

static int hundred_k(void *arg)
{
	weft_task *s[SPAWNERS];
	int i, total = 0;

	(void)arg;
	for (i = 0; i < SPAWNERS; i++)
		WT_CHECK_EQ(weft_spawn(&s[i], hundred_k_spawner,
				       (void *)(uintptr_t)i), 0);
	for (i = 0; i < SPAWNERS; i++) {
		int r = 0;

		WT_CHECK_EQ(weft_join(s[i], &r), 0);
		WT_CHECK_EQ(r, PER_SPAWNER);
		total += r;
	}
	return total;
}

static void test_hundred_thousand(void **state)
{
	(void)state;
	assert_int_equal(run(2, hundred_k, NULL), SPAWNERS * PER_SPAWNER);
}

/*
 * Tasks that may move at every yield keep their own state right, and
 * weft_worker_id() follows them: after every yield the worker index must
 * map to the OS thread the task now runs on. Migrations are counted and
 * printed, not asserted: whether they happen depends on the scheduler.
 */
#define MIGRANTS 16
#define MIGRANT_YIELDS WT_SCALE(2000, 300)
static _Atomic unsigned long worker_thread[2];
static _Atomic unsigned long migrations;

static uint64_t mix(uint64_t h, uint64_t i)
{
	return (h ^ i) * 0x100000001b3ull + (i << 7);
}

static void check_worker_thread(void)
{
	unsigned long self = wt_thread_self(), expect = 0;
	int w = weft_worker_id();

	if (w < 0 || w > 1) {
		WT_CHECK(!"worker index out of range");
		return;
	}
	if (!atomic_compare_exchange_strong(&worker_thread[w], &expect,
					    self))
		WT_CHECK_EQ(expect, self);
}

static int migrant(void *arg)
{
	uint64_t h = wt_seed(42, (uintptr_t)arg);
	unsigned long moves = 0;
	int i;

	for (i = 0; i < MIGRANT_YIELDS; i++) {
		int before = weft_worker_id();

		check_worker_thread();
		h = mix(h, (uint64_t)i);
		WT_CHECK_EQ(weft_yield(), 0);
		check_worker_thread();
		if (weft_worker_id() != before)
			moves++;
	}
	atomic_fetch_add(&migrations, moves);
	return (int)(h % 1000003);
}

static int spawn_migrants(void *arg)
{
	weft_task *t[MIGRANTS];
	int i, ok = 0;

	(void)arg;
	for (i = 0; i < MIGRANTS; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], migrant, (void *)(uintptr_t)i),
			    0);
	for (i = 0; i < MIGRANTS; i++) {
		uint64_t h = wt_seed(42, (uint64_t)i);
		int j, r = -1;

		for (j = 0; j < MIGRANT_YIELDS; j++)
			h = mix(h, (uint64_t)j);
		WT_CHECK_EQ(weft_join(t[i], &r), 0);
		if (r == (int)(h % 1000003))
			ok++;
	}
	return ok;
}

static void test_migration(void **state)
{
	(void)state;
	assert_int_equal(run(2, spawn_migrants, NULL), MIGRANTS);
	printf("migration: %lu of %d yields moved to another worker\n",
	       atomic_load(&migrations), MIGRANTS * MIGRANT_YIELDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spawn_join),
		cmocka_unit_test(test_detach),
		cmocka_unit_test(test_spawn_invalid),
		cmocka_unit_test(test_spawn_ex),
		cmocka_unit_test(test_deep_recursion),
		cmocka_unit_test(test_join_self),
		cmocka_unit_test(test_join_timeout),
		cmocka_unit_test(test_join_cancelled_joiner),
		cmocka_unit_test(test_current_and_ids),
		cmocka_unit_test(test_yield),
		cmocka_unit_test(test_hundred_thousand),
		cmocka_unit_test(test_migration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
