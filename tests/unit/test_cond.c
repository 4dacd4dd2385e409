/* SPDX-License-Identifier: MIT */
/*
 * weft_cond with weft_mutex: init/destroy, signal and broadcast with no
 * waiter, a producer/consumer queue under stress (every item consumed
 * exactly once), signal waking waiters in FIFO order, broadcast waking
 * all, and a wait that returns -ECANCELED or -ETIMEDOUT still holding the
 * mutex again (re-locking waits for the current holder).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

static weft_mutex m = WEFT_MUTEX_INIT;
static weft_cond cv = WEFT_COND_INIT;

static void test_basic_plain(void **state)
{
	(void)state;
	assert_int_equal(weft_cond_init(NULL), -EINVAL);
	assert_int_equal(weft_cond_init(&cv), 0);
	assert_int_equal(weft_cond_signal(&cv), 0);
	assert_int_equal(weft_cond_broadcast(&cv), 0);
	assert_int_equal(weft_cond_destroy(&cv), 0);
	assert_int_equal(weft_cond_init(&cv), 0);
}

/*
 * Producer/consumer: a bounded ring of RING slots protected by m, with
 * not_empty / not_full conditions. Producers push numbered items, the
 * consumers mark each one; every number must be seen exactly once.
 */
#define RING 4
#define PRODUCERS 4
#define CONSUMERS 4

static weft_cond not_empty, not_full;
static unsigned ring[RING], ring_head, ring_len;
static bool producers_done;
static unsigned items_per_producer;
static _Atomic unsigned char *seen;

static int producer(void *arg)
{
	unsigned base = (unsigned)(uintptr_t)arg * items_per_producer, i;

	for (i = 0; i < items_per_producer; i++) {
		WT_CHECK_EQ(weft_mutex_lock(&m), 0);
		while (ring_len == RING)
			WT_CHECK_EQ(weft_cond_wait(&not_full, &m), 0);
		ring[(ring_head + ring_len++) % RING] = base + i;
		WT_CHECK_EQ(weft_cond_signal(&not_empty), 0);
		WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
	}
	return 0;
}

static int consumer(void *arg)
{
	int got = 0;

	(void)arg;
	for (;;) {
		unsigned v;

		WT_CHECK_EQ(weft_mutex_lock(&m), 0);
		while (ring_len == 0 && !producers_done)
			WT_CHECK_EQ(weft_cond_wait(&not_empty, &m), 0);
		/* The mutex is held again after every wait. */
		WT_CHECK_EQ(weft_mutex_trylock(&m), -EAGAIN);
		if (ring_len == 0) {
			WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
			return got;
		}
		v = ring[ring_head];
		ring_head = (ring_head + 1) % RING;
		ring_len--;
		WT_CHECK_EQ(weft_cond_signal(&not_full), 0);
		WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
		atomic_fetch_add(&seen[v], 1);
		got++;
	}
}

static int pc_root(void *arg)
{
	weft_task *p[PRODUCERS], *c[CONSUMERS];
	uintptr_t i;
	int total = 0, r;

	(void)arg;
	ring_head = ring_len = 0;
	producers_done = false;
	WT_CHECK_EQ(weft_cond_init(&not_empty), 0);
	WT_CHECK_EQ(weft_cond_init(&not_full), 0);
	for (i = 0; i < CONSUMERS; i++)
		WT_CHECK_EQ(weft_spawn(&c[i], consumer, NULL), 0);
	for (i = 0; i < PRODUCERS; i++)
		WT_CHECK_EQ(weft_spawn(&p[i], producer, (void *)i), 0);
	for (i = 0; i < PRODUCERS; i++)
		WT_CHECK_EQ(weft_join(p[i], NULL), 0);
	WT_CHECK_EQ(weft_mutex_lock(&m), 0);
	producers_done = true;
	WT_CHECK_EQ(weft_cond_broadcast(&not_empty), 0);
	WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
	for (i = 0; i < CONSUMERS; i++) {
		WT_CHECK_EQ(weft_join(c[i], &r), 0);
		total += r;
	}
	return total;
}

static void test_producer_consumer(void **state)
{
	unsigned workers[] = { 1, 2, 4 };
	unsigned n, i;
	size_t k;

	(void)state;
	items_per_producer = WT_SCALE(20000, 2000);
	n = PRODUCERS * items_per_producer;
	seen = calloc(n, 1);
	assert_non_null(seen);
	for (k = 0; k < 3; k++) {
		memset((void *)seen, 0, n);
		assert_int_equal(run(workers[k], pc_root, NULL), (int)n);
		for (i = 0; i < n; i++)
			if (atomic_load(&seen[i]) != 1)
				fail_msg("item %u seen %u times", i,
					 atomic_load(&seen[i]));
	}
	free((void *)seen);
	assert_int_equal(weft_cond_destroy(&not_empty), 0);
	assert_int_equal(weft_cond_destroy(&not_full), 0);
}

/*
 * One worker, so a waiter that announces itself under the mutex and then
 * waits is waiting once the root gets the mutex. Signal wakes the longest
 * waiter; broadcast wakes all of them.
 */
#define FW 5

static int tokens, order[FW];
static _Atomic int nwoken;
static bool open_all;
static _Atomic int announced;

static int fifo_waiter(void *arg)
{
	WT_CHECK_EQ(weft_mutex_lock(&m), 0);
	atomic_fetch_add(&announced, 1);
	while (tokens == 0 && !open_all)
		WT_CHECK_EQ(weft_cond_wait(&cv, &m), 0);
	if (!open_all)
		tokens--;
	order[atomic_fetch_add(&nwoken, 1)] = (int)(uintptr_t)arg;
	WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
	return 0;
}

static int fifo_root(void *arg)
{
	weft_task *t[FW];
	uintptr_t i;
	int n;

	(void)arg;
	tokens = 0;
	atomic_store(&nwoken, 0);
	open_all = false;
	atomic_store(&announced, 0);
	WT_CHECK_EQ(weft_cond_init(&cv), 0);
	for (i = 0; i < FW; i++) {
		WT_CHECK_EQ(weft_spawn(&t[i], fifo_waiter, (void *)i), 0);
		WT_TASK_WAIT(atomic_load(&announced) == (int)i + 1);
	}
	/* Signal twice: the two longest waiters, in order. */
	for (n = 1; n <= 2; n++) {
		WT_CHECK_EQ(weft_mutex_lock(&m), 0);
		tokens++;
		WT_CHECK_EQ(weft_cond_signal(&cv), 0);
		WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
		WT_TASK_WAIT(atomic_load(&nwoken) == n);
		WT_CHECK_EQ(weft_sleep(WT_MS), 0);
		WT_CHECK_EQ(atomic_load(&nwoken), n); /* only one woke */
		WT_CHECK_EQ(order[n - 1], n - 1);
	}
	/* Broadcast: the other three. */
	WT_CHECK_EQ(weft_mutex_lock(&m), 0);
	open_all = true;
	WT_CHECK_EQ(weft_cond_broadcast(&cv), 0);
	WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
	for (i = 0; i < FW; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	WT_CHECK_EQ(atomic_load(&nwoken), FW);
	WT_CHECK_EQ(weft_cond_destroy(&cv), 0);
	return 0;
}

static void test_signal_fifo_broadcast(void **state)
{
	(void)state;
	assert_int_equal(run(1, fifo_root, NULL), 0);
}

/* Broadcast wakes all, on several workers and with plain threads. */
#define BW 16
#define BT 2

static int bc_waiter(void *arg)
{
	(void)arg;
	WT_CHECK_EQ(weft_mutex_lock(&m), 0);
	atomic_fetch_add(&announced, 1);
	while (!open_all)
		WT_CHECK_EQ(weft_cond_wait(&cv, &m), 0);
	atomic_fetch_add(&nwoken, 1);
	WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
	return 0;
}

static void *bc_thread(void *arg)
{
	bc_waiter(arg);
	return NULL;
}

static void test_broadcast_mixed(void **state)
{
	weft_config c = wt_cfg(4);
	weft_rt *rt = NULL;
	weft_task *t[BW];
	pthread_t th[BT];
	int i;

	(void)state;
	open_all = false;
	atomic_store(&nwoken, 0);
	atomic_store(&announced, 0);
	assert_int_equal(weft_cond_init(&cv), 0);
	assert_int_equal(weft_mutex_init(&m), 0);
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	for (i = 0; i < BW; i++)
		assert_int_equal(weft_rt_spawn(rt, &t[i], bc_waiter, NULL), 0);
	for (i = 0; i < BT; i++)
		assert_int_equal(pthread_create(&th[i], NULL, bc_thread, NULL),
				 0);
	WT_WAIT(atomic_load(&announced) == BW + BT);
	assert_int_equal(weft_mutex_lock(&m), 0);
	assert_int_equal(atomic_load(&nwoken), 0);
	open_all = true;
	assert_int_equal(weft_cond_broadcast(&cv), 0);
	assert_int_equal(weft_mutex_unlock(&m), 0);
	for (i = 0; i < BT; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (i = 0; i < BW; i++)
		assert_int_equal(weft_join(t[i], NULL), 0);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
	assert_int_equal(atomic_load(&nwoken), BW + BT);
}

/*
 * A waiter cancelled (or timed out) while the root holds the mutex: its
 * wait must not return before the root unlocks, it returns the error, and
 * it holds the mutex then (trylock fails in it, unlock succeeds).
 */
static _Atomic int returned;

static int cancel_waiter(void *arg)
{
	int rc;

	(void)arg;
	WT_CHECK_EQ(weft_mutex_lock(&m), 0);
	atomic_fetch_add(&announced, 1);
	rc = weft_cond_wait(&cv, &m);
	atomic_store(&returned, 1);
	WT_CHECK_EQ(weft_mutex_trylock(&m), -EAGAIN);
	WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
	return rc;
}

static int timed_waiter(void *arg)
{
	int rc;

	(void)arg;
	WT_CHECK_EQ(weft_mutex_lock(&m), 0);
	atomic_fetch_add(&announced, 1);
	WT_CHECK_EQ(weft_timeout_begin(3 * WT_MS), 0);
	rc = weft_cond_wait(&cv, &m);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	atomic_store(&returned, 1);
	WT_CHECK_EQ(weft_mutex_trylock(&m), -EAGAIN);
	WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
	return rc;
}

static int give_up_root(void *arg)
{
	weft_task *t;
	int r = 1;

	(void)arg;
	WT_CHECK_EQ(weft_cond_init(&cv), 0);
	WT_CHECK_EQ(weft_mutex_init(&m), 0);

	atomic_store(&announced, 0);
	atomic_store(&returned, 0);
	WT_CHECK_EQ(weft_spawn(&t, cancel_waiter, NULL), 0);
	WT_TASK_WAIT(atomic_load(&announced) == 1);
	WT_CHECK_EQ(weft_mutex_lock(&m), 0); /* it waits on cv now */
	WT_CHECK_EQ(weft_cancel(t), 0);
	WT_CHECK_EQ(weft_sleep(3 * WT_MS), 0);
	WT_CHECK_EQ(atomic_load(&returned), 0); /* re-locking waits */
	WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);

	atomic_store(&announced, 0);
	atomic_store(&returned, 0);
	WT_CHECK_EQ(weft_spawn(&t, timed_waiter, NULL), 0);
	WT_TASK_WAIT(atomic_load(&announced) == 1);
	WT_CHECK_EQ(weft_mutex_lock(&m), 0);
	WT_CHECK_EQ(weft_sleep(10 * WT_MS), 0); /* its deadline passes */
	WT_CHECK_EQ(atomic_load(&returned), 0);
	WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ETIMEDOUT);

	/* Signal after they left reaches nobody, and breaks nothing. */
	WT_CHECK_EQ(weft_cond_signal(&cv), 0);
	WT_CHECK_EQ(weft_mutex_trylock(&m), 0);
	WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
	WT_CHECK_EQ(weft_cond_destroy(&cv), 0);
	return 0;
}

static void test_wait_gives_up_relocks(void **state)
{
	(void)state;
	assert_int_equal(run(1, give_up_root, NULL), 0);
	assert_int_equal(run(2, give_up_root, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_plain),
		cmocka_unit_test(test_producer_consumer),
		cmocka_unit_test(test_signal_fifo_broadcast),
		cmocka_unit_test(test_broadcast_mixed),
		cmocka_unit_test(test_wait_gives_up_relocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
