/* SPDX-License-Identifier: MIT */
/*
 * weft_barrier: init -EINVAL for n < 1, the static initializer, n = 1;
 * many rounds with N parties on several workers: nobody leaves a round
 * before all N arrived, and exactly one party per round gets the serial
 * return (1); plain threads and tasks as parties of one barrier; a waiter
 * that is cancelled or times out leaves and no longer counts.
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

static int run(unsigned workers, int (*fn)(void *), void *arg)
{
	weft_config c = wt_cfg(workers);
	int r = -12345;

	assert_int_equal(weft_run(&c, fn, arg, &r), 0);
	assert_int_equal(wt_take_failures(), 0);
	return r;
}

static weft_barrier b = WEFT_BARRIER_INIT(1);

static void test_basic_plain(void **state)
{
	weft_barrier x;

	(void)state;
	/* One party: every wait is serial and returns at once. */
	assert_int_equal(weft_barrier_wait(&b), 1);
	assert_int_equal(weft_barrier_wait(&b), 1);
	assert_int_equal(weft_barrier_init(NULL, 1), -EINVAL);
	assert_int_equal(weft_barrier_init(&x, 0), -EINVAL);
	assert_int_equal(weft_barrier_init(&x, -3), -EINVAL);
	assert_int_equal(weft_barrier_init(&x, 1), 0);
	assert_int_equal(weft_barrier_wait(&x), 1);
}

/*
 * Rounds: each party increments arrived[r] before waiting; after the wait
 * arrived[r] must be N (nobody passed early), and serial[r] counts the
 * parties that got 1.
 */
#define PARTIES 8
#define MAX_ROUNDS 2000

static _Atomic int arrived[MAX_ROUNDS], serial[MAX_ROUNDS];
static unsigned rounds;
static int nparties;

static void party(uintptr_t id)
{
	uint64_t rng = wt_seed(11, id);
	unsigned r;

	for (r = 0; r < rounds; r++) {
		int rc;

		atomic_fetch_add(&arrived[r], 1);
		if (weft_current() && wt_below(&rng, 4) == 0)
			WT_CHECK_EQ(weft_yield(), 0);
		rc = weft_barrier_wait(&b);
		WT_CHECK(rc == 0 || rc == 1);
		WT_CHECK_EQ(atomic_load(&arrived[r]), nparties);
		if (rc == 1)
			atomic_fetch_add(&serial[r], 1);
	}
}

static int party_task(void *arg)
{
	party((uintptr_t)arg);
	return 0;
}

static void *party_thread(void *arg)
{
	party((uintptr_t)arg);
	return NULL;
}

static int rounds_root(void *arg)
{
	weft_task *t[PARTIES];
	uintptr_t i;

	(void)arg;
	for (i = 0; i < PARTIES; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], party_task, (void *)i), 0);
	for (i = 0; i < PARTIES; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	return 0;
}

static void reset(unsigned n)
{
	unsigned r;

	for (r = 0; r < MAX_ROUNDS; r++) {
		atomic_store(&arrived[r], 0);
		atomic_store(&serial[r], 0);
	}
	nparties = (int)n;
	assert_int_equal(weft_barrier_init(&b, n), 0);
}

static void check_serial(void)
{
	unsigned r;

	for (r = 0; r < rounds; r++)
		if (atomic_load(&serial[r]) != 1)
			fail_msg("round %u: %d serial returns", r,
				 atomic_load(&serial[r]));
}

static void test_rounds(void **state)
{
	unsigned workers[] = { 1, 2, 4, 8 };
	size_t k;

	(void)state;
	rounds = WT_SCALE(MAX_ROUNDS, 200);
	for (k = 0; k < 4; k++) {
		reset(PARTIES);
		assert_int_equal(run(workers[k], rounds_root, NULL), 0);
		check_serial();
	}
}

/* Two plain threads and four tasks are the six parties. */
static void test_rounds_mixed(void **state)
{
	weft_config c = wt_cfg(2);
	weft_rt *rt = NULL;
	weft_task *t[4];
	pthread_t th[2];
	uintptr_t i;

	(void)state;
	rounds = WT_SCALE(500, 100);
	reset(6);
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(weft_rt_spawn(rt, &t[i], party_task,
					       (void *)i), 0);
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, party_thread,
						(void *)(i + 10)), 0);
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(weft_join(t[i], NULL), 0);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
	check_serial();
}

/*
 * Leaving: n = 3. Two tasks wait; one is cancelled and leaves, so one
 * more arrival does not complete the round, two more do. Then a waiter
 * times out and leaves in the same way.
 */
static _Atomic int waiting, passed, serials;

static int leaver(void *arg)
{
	(void)arg;
	atomic_fetch_add(&waiting, 1);
	return weft_barrier_wait(&b);
}

static int stayer(void *arg)
{
	int rc;

	(void)arg;
	atomic_fetch_add(&waiting, 1);
	rc = weft_barrier_wait(&b);
	WT_CHECK(rc == 0 || rc == 1);
	atomic_fetch_add(&passed, 1);
	if (rc == 1)
		atomic_fetch_add(&serials, 1);
	return 0;
}

static int timed_leaver(void *arg)
{
	int rc;

	(void)arg;
	WT_CHECK_EQ(weft_timeout_begin(3 * WT_MS), 0);
	rc = weft_barrier_wait(&b);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	return rc;
}

static int leave_root(void *arg)
{
	weft_task *l, *s[4];
	int r = 1, i;

	(void)arg;
	atomic_store(&waiting, 0);
	atomic_store(&passed, 0);
	atomic_store(&serials, 0);
	WT_CHECK_EQ(weft_barrier_init(&b, 3), 0);
	WT_CHECK_EQ(weft_spawn(&s[0], stayer, NULL), 0);
	WT_CHECK_EQ(weft_spawn(&l, leaver, NULL), 0);
	WT_TASK_WAIT(atomic_load(&waiting) == 2);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(l), 0);
	WT_CHECK_EQ(weft_join(l, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);
	/* A timed waiter arrives and leaves too. */
	WT_CHECK_EQ(weft_spawn(&l, timed_leaver, NULL), 0);
	WT_CHECK_EQ(weft_join(l, &r), 0);
	WT_CHECK_EQ(r, -ETIMEDOUT);
	/* One more: two of three, the round must not complete. */
	WT_CHECK_EQ(weft_spawn(&s[1], stayer, NULL), 0);
	WT_TASK_WAIT(atomic_load(&waiting) == 3);
	WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	WT_CHECK_EQ(atomic_load(&passed), 0);
	/* The third completes it. */
	WT_CHECK_EQ(weft_spawn(&s[2], stayer, NULL), 0);
	for (i = 0; i < 3; i++)
		WT_CHECK_EQ(weft_join(s[i], NULL), 0);
	WT_CHECK_EQ(atomic_load(&passed), 3);
	WT_CHECK_EQ(atomic_load(&serials), 1);
	return 0;
}

static void test_leavers(void **state)
{
	(void)state;
	assert_int_equal(run(1, leave_root, NULL), 0);
	assert_int_equal(run(2, leave_root, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_plain),
		cmocka_unit_test(test_rounds),
		cmocka_unit_test(test_rounds_mixed),
		cmocka_unit_test(test_leavers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
