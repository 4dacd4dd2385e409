/* SPDX-License-Identifier: MIT */
/*
 * Run-queue validator (rq.c), built against 4-slot queues so that the ring
 * wraps around, overflows to the spill sink, and steals race with pushes
 * and pops thousands of times per second.
 *
 * One owner pushes numbered items and pops some of them back; thieves steal
 * half of the owner's queue into their own and pop from there; overflow goes
 * to a mutex-protected sink that everyone drains. Every item must be taken
 * exactly once. Random short stalls widen the race windows (the seed is
 * printed). The items are fake task records: rq only stores the pointers.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "internal.h"

#define THIEVES 3
#if WEFT_TEST_SANITIZED
#define ITEMS 60000
#else
#define ITEMS 600000
#endif

_Static_assert(RQ_CAP == 4, "test_rq needs the 4-slot build");

static struct weft_task *items;
static _Atomic uint32_t *seen;
static _Atomic long taken;
static _Atomic int owner_done;
static _Atomic long spilled_batches;

static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static struct weft_task **sink;
static size_t sink_n;

static void spill(void *ctx, struct weft_task *const *v, size_t n)
{
	(void)ctx;
	pthread_mutex_lock(&sink_lock);
	memcpy(&sink[sink_n], v, n * sizeof(*v));
	sink_n += n;
	pthread_mutex_unlock(&sink_lock);
	atomic_fetch_add(&spilled_batches, 1);
}

static struct weft_task *sink_pop(void)
{
	struct weft_task *t = NULL;

	pthread_mutex_lock(&sink_lock);
	if (sink_n)
		t = sink[--sink_n];
	pthread_mutex_unlock(&sink_lock);
	return t;
}

static void take(struct weft_task *t)
{
	size_t i = (size_t)(t - items);

	atomic_fetch_add(&seen[i], 1);
	atomic_fetch_add(&taken, 1);
}

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void stall(uint32_t *s)
{
	uint32_t r = rnd(s) % 64;

	if (r == 0)
		sched_yield();
	else if (r < 8)
		for (uint32_t k = 0; k < r * 20; k++)
			cpu_relax();
}

static struct rq owner_q;

struct thief {
	struct rq q;
	uint32_t seed;
	long stolen;
};

static void *thief_main(void *arg)
{
	struct thief *th = arg;

	while (!atomic_load(&owner_done) || rq_len(&owner_q) ||
	       rq_len(&th->q)) {
		struct weft_task *t = rq_steal_into(&owner_q, &th->q);

		if (t) {
			th->stolen++;
			take(t);
		}
		while ((t = rq_pop_local(&th->q)))
			take(t);
		if ((t = sink_pop()))
			take(t);
		stall(&th->seed);
	}
	return NULL;
}

static void run_validator(uint32_t seed)
{
	pthread_t tid[THIEVES];
	struct thief th[THIEVES];
	uint32_t s = seed;
	long stolen = 0;

	items = calloc(ITEMS, sizeof(*items));
	seen = calloc(ITEMS, sizeof(*seen));
	sink = calloc(ITEMS, sizeof(*sink));
	assert_non_null(items);
	assert_non_null(seen);
	assert_non_null(sink);
	sink_n = 0;
	atomic_store(&taken, 0);
	atomic_store(&owner_done, 0);
	atomic_store(&spilled_batches, 0);
	rq_init(&owner_q);
	for (int i = 0; i < THIEVES; i++) {
		rq_init(&th[i].q);
		th[i].seed = seed * 7919u + (uint32_t)i + 1;
		th[i].stolen = 0;
		assert_int_equal(pthread_create(&tid[i], NULL, thief_main, &th[i]), 0);
	}
	for (size_t i = 0; i < ITEMS; i++) {
		struct weft_task *t;

		rq_push_local(&owner_q, &items[i], spill, NULL);
		/* Pop back about a third, like a worker running its queue. */
		if (rnd(&s) % 3 == 0 && (t = rq_pop_local(&owner_q)))
			take(t);
		stall(&s);
	}
	atomic_store(&owner_done, 1);
	for (struct weft_task *t; (t = rq_pop_local(&owner_q));)
		take(t);
	for (int i = 0; i < THIEVES; i++) {
		pthread_join(tid[i], NULL);
		stolen += th[i].stolen;
	}
	for (struct weft_task *t; (t = sink_pop());)
		take(t);

	printf("rq: seed %u: %d items, %ld steals, %ld overflow batches\n",
	       seed, ITEMS, stolen, atomic_load(&spilled_batches));
	assert_int_equal(atomic_load(&taken), ITEMS);
	for (size_t i = 0; i < ITEMS; i++)
		if (atomic_load(&seen[i]) != 1)
			fail_msg("item %zu taken %u times (seed %u)", i,
				 atomic_load(&seen[i]), seed);
	/* The tiny queue must have exercised both slow paths. */
	assert_true(atomic_load(&spilled_batches) > 0);
	assert_true(stolen > 0);
	free(items);
	free((void *)seen);
	free(sink);
}

static uint32_t test_seed(void)
{
	const char *e = getenv("WEFT_TEST_SEED");

	return e ? (uint32_t)strtoul(e, NULL, 0)
		 : (uint32_t)time(NULL) | 1u;
}

static void test_rq_exactly_once(void **state)
{
	(void)state;
	run_validator(test_seed());
}

/* Single-threaded: FIFO order, capacity, and the half-overflow. */
static void test_rq_fifo_and_overflow(void **state)
{
	struct weft_task it[16];
	struct rq q;

	(void)state;
	rq_init(&q);
	sink_n = 0;
	sink = calloc(16, sizeof(*sink));
	assert_non_null(sink);
	for (int round = 0; round < 3; round++) { /* wraps the indices */
		for (int i = 0; i < 4; i++)
			rq_push_local(&q, &it[i], spill, NULL);
		assert_int_equal(rq_len(&q), 4);
		for (int i = 0; i < 4; i++)
			assert_ptr_equal(rq_pop_local(&q), &it[i]);
		assert_null(rq_pop_local(&q));
	}
	for (int i = 0; i < 5; i++)
		rq_push_local(&q, &it[i], spill, NULL);
	/* Full at 4: the fifth push moved the older half plus itself. */
	assert_int_equal(sink_n, 3);
	assert_ptr_equal(sink[0], &it[0]);
	assert_ptr_equal(sink[1], &it[1]);
	assert_ptr_equal(sink[2], &it[4]);
	assert_ptr_equal(rq_pop_local(&q), &it[2]);
	assert_ptr_equal(rq_pop_local(&q), &it[3]);
	assert_null(rq_pop_local(&q));
	free(sink);
}

/* A steal takes half (rounded up) and returns one of them to run. */
static void test_rq_steal_half(void **state)
{
	struct weft_task it[4];
	struct rq a, b;

	(void)state;
	rq_init(&a);
	rq_init(&b);
	for (int i = 0; i < 4; i++)
		rq_push_local(&a, &it[i], spill, NULL);
	assert_ptr_equal(rq_steal_into(&a, &b), &it[1]);
	assert_int_equal(rq_len(&a), 2);
	assert_int_equal(rq_len(&b), 1);
	assert_ptr_equal(rq_pop_local(&b), &it[0]);
	assert_ptr_equal(rq_pop_local(&a), &it[2]);
	assert_ptr_equal(rq_steal_into(&a, &b), &it[3]);
	assert_null(rq_steal_into(&a, &b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rq_fifo_and_overflow),
		cmocka_unit_test(test_rq_steal_half),
		cmocka_unit_test(test_rq_exactly_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
