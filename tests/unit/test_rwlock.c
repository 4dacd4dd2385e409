/* SPDX-License-Identifier: MIT */
/*
 * weft_rwlock: try-variants and -EPERM; readers really inside together on
 * 2 workers; writers exclusive against readers and each other under
 * stress; a writer not starved by a continuous stream of readers; a
 * waiting writer holds back new readers; the readers queued behind a
 * writer enter together when it unlocks; waiters that are cancelled or
 * time out; use from plain threads.
 *
 * Overlap is checked without timing assumptions: a reader stays inside
 * until it has seen another reader inside, and only a 10 s guard (which
 * fails the test) ends that wait otherwise.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "weft_test.h"

#define GUARD (10 * WT_SEC)

static weft_rwlock l = WEFT_RWLOCK_INIT;

/* Runs fn as the first task of a fresh runtime, on a fresh lock. */
static int run(unsigned workers, int (*fn)(void *), void *arg)
{
	weft_config c = wt_cfg(workers);
	int r = -12345;

	assert_int_equal(weft_rwlock_init(&l), 0);
	assert_int_equal(weft_run(&c, fn, arg, &r), 0);
	assert_int_equal(wt_take_failures(), 0);
	return r;
}

static void test_basic_plain(void **state)
{
	(void)state;
	assert_int_equal(weft_rwlock_init(NULL), -EINVAL);
	assert_int_equal(weft_rwlock_destroy(NULL), -EINVAL);
	assert_int_equal(weft_rwlock_init(&l), 0);
	assert_int_equal(weft_rwlock_unlock(&l), -EPERM);
	/* Two readers, no writer. */
	assert_int_equal(weft_rwlock_rdlock(&l), 0);
	assert_int_equal(weft_rwlock_tryrdlock(&l), 0);
	assert_int_equal(weft_rwlock_trywrlock(&l), -EAGAIN);
	assert_int_equal(weft_rwlock_destroy(&l), -EBUSY);
	assert_int_equal(weft_rwlock_unlock(&l), 0);
	assert_int_equal(weft_rwlock_trywrlock(&l), -EAGAIN);
	assert_int_equal(weft_rwlock_unlock(&l), 0);
	assert_int_equal(weft_rwlock_unlock(&l), -EPERM);
	/* One writer. */
	assert_int_equal(weft_rwlock_wrlock(&l), 0);
	assert_int_equal(weft_rwlock_tryrdlock(&l), -EAGAIN);
	assert_int_equal(weft_rwlock_trywrlock(&l), -EAGAIN);
	assert_int_equal(weft_rwlock_destroy(&l), -EBUSY);
	assert_int_equal(weft_rwlock_unlock(&l), 0);
	assert_int_equal(weft_rwlock_unlock(&l), -EPERM);
	assert_int_equal(weft_rwlock_trywrlock(&l), 0);
	assert_int_equal(weft_rwlock_unlock(&l), 0);
	assert_int_equal(weft_rwlock_tryrdlock(&l), 0);
	assert_int_equal(weft_rwlock_unlock(&l), 0);
	assert_int_equal(weft_rwlock_destroy(&l), 0);
}

/*
 * Overlap: OV_READERS tasks on 2 workers each take a read lock and stay
 * inside (yielding, so they never hold a worker) until they see another
 * reader inside. The maximum seen must reach 2.
 */
#define OV_READERS 4

static _Atomic int readers_in, max_readers, writers_in, gave_up;

static void note_max(_Atomic int *max, int v)
{
	int m = atomic_load(max);

	while (v > m && !atomic_compare_exchange_weak(max, &m, v))
		;
}

/* Stays until `want` readers are inside at once; false after GUARD. */
static bool wait_for_readers(int want)
{
	uint64_t start = wt_clock();

	while (atomic_load(&readers_in) < want) {
		if (wt_clock() - start > GUARD) {
			atomic_fetch_add(&gave_up, 1);
			return false;
		}
		WT_CHECK_EQ(weft_yield(), 0);
	}
	return true;
}

static int overlap_reader(void *arg)
{
	uint64_t start;
	int v;

	(void)arg;
	WT_CHECK_EQ(weft_rwlock_rdlock(&l), 0);
	WT_CHECK_EQ(atomic_load(&writers_in), 0);
	v = atomic_fetch_add(&readers_in, 1) + 1;
	note_max(&max_readers, v);
	/* Stay until two readers have been inside at once (this one or a
	 * later pair saw it), or the guard expires. */
	start = wt_clock();
	while (atomic_load(&max_readers) < 2) {
		if (wt_clock() - start > GUARD) {
			atomic_fetch_add(&gave_up, 1);
			break;
		}
		WT_CHECK_EQ(weft_yield(), 0);
		note_max(&max_readers, atomic_load(&readers_in));
	}
	atomic_fetch_sub(&readers_in, 1);
	WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	return 0;
}

static int overlap_root(void *arg)
{
	weft_task *t[OV_READERS];
	int i;

	(void)arg;
	for (i = 0; i < OV_READERS; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], overlap_reader, NULL), 0);
	for (i = 0; i < OV_READERS; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	return 0;
}

static void test_readers_overlap(void **state)
{
	(void)state;
	atomic_store(&max_readers, 0);
	atomic_store(&gave_up, 0);
	assert_int_equal(run(2, overlap_root, NULL), 0);
	assert_int_equal(atomic_load(&gave_up), 0);
	assert_true(atomic_load(&max_readers) >= 2);
	assert_int_equal(atomic_load(&readers_in), 0);
}

/*
 * The same with plain threads: two pthreads hold read locks at once
 * (each blocks its thread, so a missing overlap would hang, not pass).
 */
static void *overlap_thread(void *arg)
{
	uint64_t start = wt_clock();

	(void)arg;
	WT_CHECK_EQ(weft_rwlock_rdlock(&l), 0);
	atomic_fetch_add(&readers_in, 1);
	while (atomic_load(&readers_in) < 2 && wt_clock() - start < GUARD)
		wt_nap(20 * WT_US);
	note_max(&max_readers, atomic_load(&readers_in));
	WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	return NULL;
}

static void test_readers_overlap_plain(void **state)
{
	pthread_t th[2];
	int i;

	(void)state;
	assert_int_equal(weft_rwlock_init(&l), 0);
	atomic_store(&max_readers, 0);
	atomic_store(&readers_in, 0);
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, overlap_thread,
						NULL), 0);
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(wt_take_failures(), 0);
	assert_int_equal(atomic_load(&max_readers), 2);
	atomic_store(&readers_in, 0);
}

/*
 * Exclusion under stress: writers update two plain fields that readers
 * check for equality; writers_in and readers_in catch overlaps directly.
 */
#define EX_TASKS 32

static long field_a, field_b;
static unsigned ex_iters;

static int mixed_task(void *arg)
{
	uint64_t rng = wt_seed(5, (uintptr_t)arg);
	unsigned i;

	for (i = 0; i < ex_iters; i++) {
		unsigned pick = wt_below(&rng, 10);

		if (pick < 3) {
			if (pick == 0) {
				int rc;

				while ((rc = weft_rwlock_trywrlock(&l)) ==
				       -EAGAIN)
					WT_CHECK_EQ(weft_yield(), 0);
				WT_CHECK_EQ(rc, 0);
			} else {
				WT_CHECK_EQ(weft_rwlock_wrlock(&l), 0);
			}
			WT_CHECK_EQ(atomic_fetch_add(&writers_in, 1), 0);
			WT_CHECK_EQ(atomic_load(&readers_in), 0);
			field_a++;
			if (wt_below(&rng, 4) == 0)
				WT_CHECK_EQ(weft_yield(), 0);
			field_b++;
			WT_CHECK_EQ(atomic_fetch_sub(&writers_in, 1), 1);
		} else {
			if (pick == 3) {
				int rc;

				while ((rc = weft_rwlock_tryrdlock(&l)) ==
				       -EAGAIN)
					WT_CHECK_EQ(weft_yield(), 0);
				WT_CHECK_EQ(rc, 0);
			} else {
				WT_CHECK_EQ(weft_rwlock_rdlock(&l), 0);
			}
			note_max(&max_readers,
				 atomic_fetch_add(&readers_in, 1) + 1);
			WT_CHECK_EQ(atomic_load(&writers_in), 0);
			WT_CHECK_EQ(field_a, field_b);
			if (wt_below(&rng, 4) == 0)
				WT_CHECK_EQ(weft_yield(), 0);
			WT_CHECK_EQ(field_a, field_b);
			atomic_fetch_sub(&readers_in, 1);
		}
		WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	}
	return (int)i;
}

static _Atomic long writes_expected;

static int mixed_root(void *arg)
{
	weft_task *t[EX_TASKS];
	uintptr_t i;

	(void)arg;
	for (i = 0; i < EX_TASKS; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], mixed_task, (void *)i), 0);
	for (i = 0; i < EX_TASKS; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	return 0;
}

static long count_writes(void)
{
	long n = 0;
	uintptr_t i;
	unsigned k;

	for (i = 0; i < EX_TASKS; i++) {
		uint64_t rng = wt_seed(5, i);

		for (k = 0; k < ex_iters; k++) {
			unsigned pick = wt_below(&rng, 10);

			if (pick < 3)
				n++;
			wt_below(&rng, 4); /* the yield decision */
		}
	}
	return n;
}

static void test_exclusion_stress(void **state)
{
	unsigned workers[] = { 1, 2, 4 };
	size_t k;

	(void)state;
	ex_iters = WT_SCALE(3000, 300);
	atomic_store(&writes_expected, count_writes());
	for (k = 0; k < 3; k++) {
		field_a = field_b = 0;
		assert_int_equal(run(workers[k], mixed_root, NULL), 0);
		assert_int_equal(field_a, atomic_load(&writes_expected));
		assert_int_equal(field_b, field_a);
		assert_int_equal(weft_rwlock_trywrlock(&l), 0);
		assert_int_equal(weft_rwlock_unlock(&l), 0);
	}
}

/*
 * Writer not starved: readers come and go continuously so that some
 * reader is always inside (each enters, yields, leaves, and enters again).
 * A writer arrives meanwhile and must get in. The readers stop when the
 * writer got in, or after GUARD, which fails the test.
 */
#define ST_READERS 6

static _Atomic int writer_done, starve_guard;

static int stream_reader(void *arg)
{
	uint64_t start = wt_clock();

	(void)arg;
	while (!atomic_load(&writer_done)) {
		if (wt_clock() - start > GUARD) {
			atomic_store(&starve_guard, 1);
			break;
		}
		WT_CHECK_EQ(weft_rwlock_rdlock(&l), 0);
		atomic_fetch_add(&readers_in, 1);
		WT_CHECK_EQ(weft_yield(), 0);
		WT_CHECK_EQ(weft_yield(), 0);
		atomic_fetch_sub(&readers_in, 1);
		WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	}
	return 0;
}

static int starve_writer(void *arg)
{
	(void)arg;
	WT_CHECK_EQ(weft_rwlock_wrlock(&l), 0);
	WT_CHECK_EQ(atomic_load(&readers_in), 0);
	atomic_store(&writer_done, 1);
	WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	return 0;
}

static int starve_root(void *arg)
{
	weft_task *r[ST_READERS], *w;
	int i;

	(void)arg;
	for (i = 0; i < ST_READERS; i++)
		WT_CHECK_EQ(weft_spawn(&r[i], stream_reader, NULL), 0);
	/* Let the stream get going first. */
	WT_TASK_WAIT(atomic_load(&readers_in) > 0);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_spawn(&w, starve_writer, NULL), 0);
	WT_CHECK_EQ(weft_join(w, NULL), 0);
	for (i = 0; i < ST_READERS; i++)
		WT_CHECK_EQ(weft_join(r[i], NULL), 0);
	return 0;
}

static void test_writer_not_starved(void **state)
{
	unsigned workers[] = { 1, 2 };
	size_t k;

	(void)state;
	for (k = 0; k < 2; k++) {
		atomic_store(&writer_done, 0);
		atomic_store(&starve_guard, 0);
		atomic_store(&readers_in, 0);
		assert_int_equal(run(workers[k], starve_root, NULL), 0);
		assert_int_equal(atomic_load(&starve_guard), 0);
		assert_int_equal(atomic_load(&writer_done), 1);
	}
}

/*
 * One worker, so a task that sets a flag and then waits is known to be
 * waiting when another task sees the flag.
 *  - A reader holds the lock; a writer queues and, once it has waited
 *    over 1 ms, tryrdlock fails.
 *  - Three readers queue behind the writer; when it unlocks, they are all
 *    inside together (each waits to see the other two).
 */
static _Atomic int queued;

static int queued_writer(void *arg)
{
	(void)arg;
	atomic_fetch_add(&queued, 1);
	WT_CHECK_EQ(weft_rwlock_wrlock(&l), 0);
	WT_CHECK_EQ(atomic_fetch_add(&writers_in, 1), 0);
	WT_CHECK_EQ(atomic_load(&readers_in), 0);
	/* Readers queue meanwhile (the root sees to it). */
	WT_TASK_WAIT(atomic_load(&queued) == 4);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	atomic_fetch_sub(&writers_in, 1);
	WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	return 0;
}

static int queued_reader(void *arg)
{
	(void)arg;
	atomic_fetch_add(&queued, 1);
	WT_CHECK_EQ(weft_rwlock_rdlock(&l), 0);
	WT_CHECK_EQ(atomic_load(&writers_in), 0);
	atomic_fetch_add(&readers_in, 1);
	wait_for_readers(3);
	note_max(&max_readers, atomic_load(&readers_in));
	WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	return 0;
}

static int queue_root(void *arg)
{
	weft_task *w, *r[3];
	int i;

	(void)arg;
	atomic_store(&queued, 0);
	WT_CHECK_EQ(weft_rwlock_rdlock(&l), 0);
	WT_CHECK_EQ(weft_spawn(&w, queued_writer, NULL), 0);
	WT_TASK_WAIT(atomic_load(&queued) == 1);
	/* A writer that has waited over 1 ms holds new readers back (one
	 * worker: the writer is queued while we sleep). */
	WT_CHECK_EQ(weft_sleep(5 * WT_MS), 0);
	WT_CHECK_EQ(weft_rwlock_tryrdlock(&l), -EAGAIN);
	WT_CHECK_EQ(weft_rwlock_trywrlock(&l), -EAGAIN);
	WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	/* The writer now owns it (or will as soon as it runs). */
	WT_TASK_WAIT(atomic_load(&writers_in) == 1);
	WT_CHECK_EQ(weft_rwlock_tryrdlock(&l), -EAGAIN);
	for (i = 0; i < 3; i++) {
		WT_CHECK_EQ(weft_spawn(&r[i], queued_reader, NULL), 0);
		WT_TASK_WAIT(atomic_load(&queued) == i + 2);
	}
	WT_CHECK_EQ(weft_join(w, NULL), 0);
	for (i = 0; i < 3; i++)
		WT_CHECK_EQ(weft_join(r[i], NULL), 0);
	return 0;
}

static void test_writer_queue(void **state)
{
	(void)state;
	atomic_store(&readers_in, 0);
	atomic_store(&writers_in, 0);
	atomic_store(&max_readers, 0);
	atomic_store(&gave_up, 0);
	assert_int_equal(run(1, queue_root, NULL), 0);
	assert_int_equal(atomic_load(&gave_up), 0);
	assert_int_equal(atomic_load(&max_readers), 3);
}

/*
 * Waiters that give up: a writer waiting behind a reader is cancelled, a
 * reader waiting behind a writer times out. Neither holds the lock
 * afterwards, and the lock still works.
 */
static _Atomic int started;

static int wr_cancelled(void *arg)
{
	(void)arg;
	atomic_store(&started, 1);
	return weft_rwlock_wrlock(&l);
}

static int rd_timed(void *arg)
{
	int rc;

	(void)arg;
	WT_CHECK_EQ(weft_timeout_begin(3 * WT_MS), 0);
	rc = weft_rwlock_rdlock(&l);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	return rc;
}

static int wr_timed(void *arg)
{
	int rc;

	(void)arg;
	WT_CHECK_EQ(weft_timeout_begin(3 * WT_MS), 0);
	rc = weft_rwlock_wrlock(&l);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	return rc;
}

static int give_up_root(void *arg)
{
	weft_task *t;
	int r = 1;

	(void)arg;
	atomic_store(&started, 0);
	WT_CHECK_EQ(weft_rwlock_rdlock(&l), 0);
	WT_CHECK_EQ(weft_spawn(&t, wr_cancelled, NULL), 0);
	WT_TASK_WAIT(atomic_load(&started));
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(t), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);
	/* The cancelled writer no longer holds readers back. */
	WT_CHECK_EQ(weft_rwlock_tryrdlock(&l), 0);
	WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	/* A writer that times out behind a reader. */
	WT_CHECK_EQ(weft_spawn(&t, wr_timed, NULL), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ETIMEDOUT);
	WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	WT_CHECK_EQ(weft_rwlock_unlock(&l), -EPERM);

	WT_CHECK_EQ(weft_rwlock_wrlock(&l), 0);
	WT_CHECK_EQ(weft_spawn(&t, rd_timed, NULL), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ETIMEDOUT);
	WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	WT_CHECK_EQ(weft_rwlock_unlock(&l), -EPERM);
	WT_CHECK_EQ(weft_rwlock_trywrlock(&l), 0);
	WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	WT_CHECK_EQ(weft_rwlock_destroy(&l), 0);
	return 0;
}

static void test_waiters_give_up(void **state)
{
	(void)state;
	assert_int_equal(run(1, give_up_root, NULL), 0);
	assert_int_equal(run(2, give_up_root, NULL), 0);
}

/* A plain thread's writer waits for a task's read lock, and back. */
static _Atomic int task_has_read, thread_has_write;

static void *plain_writer(void *arg)
{
	(void)arg;
	WT_WAIT(atomic_load(&task_has_read));
	WT_CHECK_EQ(weft_rwlock_wrlock(&l), 0);
	atomic_store(&thread_has_write, 1);
	WT_CHECK_EQ(atomic_load(&readers_in), 0);
	wt_nap(WT_MS);
	atomic_store(&thread_has_write, 0);
	WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	return NULL;
}

static int reader_then_writer(void *arg)
{
	(void)arg;
	WT_CHECK_EQ(weft_rwlock_rdlock(&l), 0);
	atomic_fetch_add(&readers_in, 1);
	atomic_store(&task_has_read, 1);
	WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	WT_CHECK_EQ(atomic_load(&thread_has_write), 0);
	atomic_fetch_sub(&readers_in, 1);
	WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_rwlock_rdlock(&l), 0);
	WT_CHECK_EQ(atomic_load(&thread_has_write), 0);
	WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
	return 0;
}

static void test_plain_and_task(void **state)
{
	weft_config c = wt_cfg(2);
	weft_rt *rt = NULL;
	weft_task *t;
	pthread_t th;

	(void)state;
	atomic_store(&readers_in, 0);
	assert_int_equal(weft_rwlock_init(&l), 0);
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	assert_int_equal(pthread_create(&th, NULL, plain_writer, NULL), 0);
	assert_int_equal(weft_rt_spawn(rt, &t, reader_then_writer, NULL), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(weft_join(t, NULL), 0);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_plain),
		cmocka_unit_test(test_readers_overlap),
		cmocka_unit_test(test_readers_overlap_plain),
		cmocka_unit_test(test_exclusion_stress),
		cmocka_unit_test(test_writer_not_starved),
		cmocka_unit_test(test_writer_queue),
		cmocka_unit_test(test_waiters_give_up),
		cmocka_unit_test(test_plain_and_task),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
