/* SPDX-License-Identifier: MIT */
/*
 * weft_mutex: init/destroy argument checks and -EBUSY, trylock -EAGAIN,
 * unlock of an unlocked mutex -EPERM, unlock by another task, an exact
 * counter under 1, 2, 4 and 8 workers with many tasks, handoff between
 * tasks and plain pthreads sharing one mutex, a waiter that is cancelled
 * or times out (it returns the error and does not hold the lock), and
 * FIFO service of waiters.
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

/* Argument checks and the single-owner results, from a plain thread. */
static void test_basic_plain(void **state)
{
	weft_mutex m = WEFT_MUTEX_INIT, z;

	(void)state;
	assert_int_equal(weft_mutex_init(NULL), -EINVAL);
	assert_int_equal(weft_mutex_destroy(NULL), -EINVAL);
	assert_int_equal(weft_mutex_unlock(&m), -EPERM);
	assert_int_equal(weft_mutex_lock(&m), 0);
	assert_int_equal(weft_mutex_trylock(&m), -EAGAIN);
	assert_int_equal(weft_mutex_destroy(&m), -EBUSY);
	assert_int_equal(weft_mutex_unlock(&m), 0);
	assert_int_equal(weft_mutex_unlock(&m), -EPERM);
	assert_int_equal(weft_mutex_trylock(&m), 0);
	assert_int_equal(weft_mutex_unlock(&m), 0);
	assert_int_equal(weft_mutex_destroy(&m), 0);

	/* init on garbage gives an unlocked mutex. */
	memset(&z, 0xa5, sizeof(z));
	assert_int_equal(weft_mutex_init(&z), 0);
	assert_int_equal(weft_mutex_trylock(&z), 0);
	assert_int_equal(weft_mutex_unlock(&z), 0);
	assert_int_equal(weft_mutex_destroy(&z), 0);
}

/* The same from a task, plus unlock by another task (Go semantics). */
static weft_mutex g_m = WEFT_MUTEX_INIT;

static int unlock_other(void *arg)
{
	(void)arg;
	return weft_mutex_unlock(&g_m);
}

static int basic_task(void *arg)
{
	weft_task *t;
	int r = -1;

	(void)arg;
	WT_CHECK_EQ(weft_mutex_init(&g_m), 0);
	WT_CHECK_EQ(weft_mutex_unlock(&g_m), -EPERM);
	WT_CHECK_EQ(weft_mutex_lock(&g_m), 0);
	WT_CHECK_EQ(weft_mutex_trylock(&g_m), -EAGAIN);
	WT_CHECK_EQ(weft_mutex_destroy(&g_m), -EBUSY);
	WT_CHECK_EQ(weft_spawn(&t, unlock_other, NULL), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, 0);
	WT_CHECK_EQ(weft_mutex_unlock(&g_m), -EPERM);
	WT_CHECK_EQ(weft_mutex_trylock(&g_m), 0);
	WT_CHECK_EQ(weft_mutex_unlock(&g_m), 0);
	WT_CHECK_EQ(weft_mutex_destroy(&g_m), 0);
	return 0;
}

static void test_basic_task(void **state)
{
	(void)state;
	assert_int_equal(run(1, basic_task, NULL), 0);
	assert_int_equal(run(2, basic_task, NULL), 0);
}

/*
 * Counter: many tasks each lock, increment a plain (non-atomic) counter
 * with a yield inside the critical section now and then, and unlock.
 * `inside` catches two holders at once directly.
 */
#define CNT_TASKS 64

static weft_mutex cnt_m = WEFT_MUTEX_INIT;
static long counter;
static _Atomic int inside;
static unsigned cnt_iters;

static void critical(uint64_t *rng)
{
	long v;

	WT_CHECK_EQ(atomic_fetch_add(&inside, 1), 0);
	v = counter;
	if (weft_current() && wt_below(rng, 16) == 0)
		WT_CHECK_EQ(weft_yield(), 0);
	counter = v + 1;
	WT_CHECK_EQ(atomic_fetch_sub(&inside, 1), 1);
}

static int counter_task(void *arg)
{
	uint64_t rng = wt_seed(77, (uintptr_t)arg);
	unsigned i;

	for (i = 0; i < cnt_iters; i++) {
		if (wt_below(&rng, 4) == 0) {
			int rc;

			while ((rc = weft_mutex_trylock(&cnt_m)) == -EAGAIN)
				WT_CHECK_EQ(weft_yield(), 0);
			WT_CHECK_EQ(rc, 0);
		} else {
			WT_CHECK_EQ(weft_mutex_lock(&cnt_m), 0);
		}
		critical(&rng);
		WT_CHECK_EQ(weft_mutex_unlock(&cnt_m), 0);
		if (wt_below(&rng, 8) == 0)
			WT_CHECK_EQ(weft_yield(), 0);
	}
	return 0;
}

static int counter_root(void *arg)
{
	weft_task *t[CNT_TASKS];
	uintptr_t i;

	(void)arg;
	for (i = 0; i < CNT_TASKS; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], counter_task, (void *)i), 0);
	for (i = 0; i < CNT_TASKS; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	return 0;
}

static void test_counter_workers(void **state)
{
	unsigned workers[] = { 1, 2, 4, 8 };
	size_t k;

	(void)state;
	cnt_iters = WT_SCALE(2000, 300);
	for (k = 0; k < sizeof(workers) / sizeof(workers[0]); k++) {
		counter = 0;
		assert_int_equal(run(workers[k], counter_root, NULL), 0);
		assert_int_equal(counter, (long)CNT_TASKS * cnt_iters);
		assert_int_equal(weft_mutex_trylock(&cnt_m), 0);
		assert_int_equal(weft_mutex_unlock(&cnt_m), 0);
	}
}

/*
 * Handoff: tasks and plain pthreads lock and unlock the same mutex; the
 * counter is exact. The pthreads block their thread while a task holds it
 * and vice versa.
 */
#define HO_TASKS 8
#define HO_THREADS 3

static void *handoff_thread(void *arg)
{
	uint64_t rng = wt_seed(99, (uintptr_t)arg);
	unsigned i;

	for (i = 0; i < cnt_iters; i++) {
		WT_CHECK_EQ(weft_mutex_lock(&cnt_m), 0);
		critical(&rng);
		WT_CHECK_EQ(weft_mutex_unlock(&cnt_m), 0);
	}
	return NULL;
}

static void test_handoff_task_pthread(void **state)
{
	weft_config c = wt_cfg(2);
	weft_rt *rt = NULL;
	weft_task *t[HO_TASKS];
	pthread_t th[HO_THREADS];
	uintptr_t i;

	(void)state;
	cnt_iters = WT_SCALE(5000, 500);
	counter = 0;
	assert_int_equal(weft_mutex_init(&cnt_m), 0);
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	/* The main thread holds the lock while everyone starts, so the first
	 * acquisitions are handoffs from a plain thread. */
	assert_int_equal(weft_mutex_lock(&cnt_m), 0);
	for (i = 0; i < HO_TASKS; i++)
		assert_int_equal(weft_rt_spawn(rt, &t[i], counter_task,
					       (void *)i), 0);
	for (i = 0; i < HO_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, handoff_thread,
						(void *)(i + 100)), 0);
	wt_nap(2 * WT_MS);
	assert_int_equal(weft_mutex_unlock(&cnt_m), 0);
	for (i = 0; i < HO_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (i = 0; i < HO_TASKS; i++)
		assert_int_equal(weft_join(t[i], NULL), 0);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
	assert_int_equal(counter, (long)(HO_TASKS + HO_THREADS) * cnt_iters);
	assert_int_equal(weft_mutex_destroy(&cnt_m), 0);
}

/*
 * Strict alternation between one task and one pthread through the mutex
 * and a turn variable it protects: every step is a real handoff.
 */
static weft_mutex pp_m = WEFT_MUTEX_INIT;
static int turn;
static unsigned pp_rounds;

static void pingpong(int me)
{
	unsigned done = 0;

	while (done < pp_rounds) {
		WT_CHECK_EQ(weft_mutex_lock(&pp_m), 0);
		if (turn == me) {
			turn = !me;
			done++;
		}
		WT_CHECK_EQ(weft_mutex_unlock(&pp_m), 0);
		if (weft_current())
			WT_CHECK_EQ(weft_yield(), 0);
	}
}

static int pp_task(void *arg)
{
	(void)arg;
	pingpong(0);
	return 0;
}

static void *pp_thread(void *arg)
{
	(void)arg;
	pingpong(1);
	return NULL;
}

static void test_pingpong_task_pthread(void **state)
{
	weft_config c = wt_cfg(1);
	weft_rt *rt = NULL;
	weft_task *t;
	pthread_t th;

	(void)state;
	pp_rounds = WT_SCALE(2000, 300);
	turn = 0;
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	assert_int_equal(weft_rt_spawn(rt, &t, pp_task, NULL), 0);
	assert_int_equal(pthread_create(&th, NULL, pp_thread, NULL), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(weft_join(t, NULL), 0);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
	assert_int_equal(turn, 0);
}

/*
 * A waiter that is cancelled, or whose deadline expires, returns the error
 * and does not hold the lock: after the holder unlocks, the mutex is free.
 */
static weft_mutex w_m = WEFT_MUTEX_INIT;
static _Atomic int waiter_started;

static int cancelled_waiter(void *arg)
{
	(void)arg;
	atomic_store(&waiter_started, 1);
	return weft_mutex_lock(&w_m);
}

static int timed_waiter(void *arg)
{
	int rc, end;

	(void)arg;
	WT_CHECK_EQ(weft_timeout_begin(5 * WT_MS), 0);
	rc = weft_mutex_lock(&w_m);
	end = weft_timeout_end();
	WT_CHECK_EQ(end, 1);
	return rc;
}

static int give_up_root(void *arg)
{
	weft_task *a, *b;
	int ra = 1, rb = 1;

	(void)arg;
	atomic_store(&waiter_started, 0);
	WT_CHECK_EQ(weft_mutex_init(&w_m), 0);
	WT_CHECK_EQ(weft_mutex_lock(&w_m), 0);
	WT_CHECK_EQ(weft_spawn(&a, cancelled_waiter, NULL), 0);
	WT_CHECK_EQ(weft_spawn(&b, timed_waiter, NULL), 0);
	WT_TASK_WAIT(atomic_load(&waiter_started));
	WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(a), 0);
	WT_CHECK_EQ(weft_join(a, &ra), 0);
	WT_CHECK_EQ(ra, -ECANCELED);
	WT_CHECK_EQ(weft_join(b, &rb), 0);
	WT_CHECK_EQ(rb, -ETIMEDOUT);
	/* Still ours, and nobody waits: unlock leaves it free. */
	WT_CHECK_EQ(weft_mutex_trylock(&w_m), -EAGAIN);
	WT_CHECK_EQ(weft_mutex_unlock(&w_m), 0);
	WT_CHECK_EQ(weft_mutex_trylock(&w_m), 0);
	WT_CHECK_EQ(weft_mutex_unlock(&w_m), 0);
	WT_CHECK_EQ(weft_mutex_unlock(&w_m), -EPERM);
	WT_CHECK_EQ(weft_mutex_destroy(&w_m), 0);
	return 0;
}

static void test_waiter_gives_up(void **state)
{
	(void)state;
	assert_int_equal(run(1, give_up_root, NULL), 0);
	assert_int_equal(run(2, give_up_root, NULL), 0);
}

/* A task cancelled before it calls lock on a free mutex: the uncontended
 * path may succeed or report the cancellation, but if it reports an error
 * the lock must not be held. */
static int lock_after_cancel(void *arg)
{
	int rc;

	(void)arg;
	WT_CHECK_EQ(weft_cancel(weft_current()), 0);
	rc = weft_mutex_lock(&w_m);
	WT_CHECK(rc == 0 || rc == -ECANCELED);
	if (rc == 0)
		WT_CHECK_EQ(weft_mutex_unlock(&w_m), 0);
	WT_CHECK_EQ(weft_mutex_trylock(&w_m), 0);
	WT_CHECK_EQ(weft_mutex_unlock(&w_m), 0);
	return 0;
}

static void test_cancelled_before_lock(void **state)
{
	(void)state;
	assert_int_equal(run(2, lock_after_cancel, NULL), 0);
}

/*
 * FIFO: with one worker, a task that sets a flag and then calls lock is
 * waiting by the time another task sees the flag, so the order in which
 * they queued is known. Unlocking hands the lock on in that order.
 */
#define FIFO_N 6

static int fifo_order[FIFO_N];
static _Atomic int fifo_next, fifo_queued;

static int fifo_waiter(void *arg)
{
	(void)arg;
	atomic_fetch_add(&fifo_queued, 1);
	WT_CHECK_EQ(weft_mutex_lock(&w_m), 0);
	fifo_order[atomic_fetch_add(&fifo_next, 1)] = (int)(uintptr_t)arg;
	WT_CHECK_EQ(weft_mutex_unlock(&w_m), 0);
	return 0;
}

static int fifo_root(void *arg)
{
	weft_task *t[FIFO_N];
	uintptr_t i;

	(void)arg;
	atomic_store(&fifo_next, 0);
	atomic_store(&fifo_queued, 0);
	WT_CHECK_EQ(weft_mutex_init(&w_m), 0);
	WT_CHECK_EQ(weft_mutex_lock(&w_m), 0);
	for (i = 0; i < FIFO_N; i++) {
		WT_CHECK_EQ(weft_spawn(&t[i], fifo_waiter, (void *)i), 0);
		WT_TASK_WAIT(atomic_load(&fifo_queued) == (int)i + 1);
	}
	WT_CHECK_EQ(weft_mutex_unlock(&w_m), 0);
	for (i = 0; i < FIFO_N; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	for (i = 0; i < FIFO_N; i++)
		WT_CHECK_EQ(fifo_order[i], (int)i);
	return 0;
}

static void test_fifo(void **state)
{
	(void)state;
	assert_int_equal(run(1, fifo_root, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_plain),
		cmocka_unit_test(test_basic_task),
		cmocka_unit_test(test_counter_workers),
		cmocka_unit_test(test_handoff_task_pthread),
		cmocka_unit_test(test_pingpong_task_pthread),
		cmocka_unit_test(test_waiter_gives_up),
		cmocka_unit_test(test_cancelled_before_lock),
		cmocka_unit_test(test_fifo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
