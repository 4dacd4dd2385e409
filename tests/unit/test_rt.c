/* SPDX-License-Identifier: MIT */
/*
 * The embedding API: weft_rt_new, weft_rt_workers, weft_rt_block_on,
 * weft_rt_spawn (from plain threads, from tasks of the runtime and of another
 * runtime), weft_join from plain threads, weft_rt_shutdown (sleepers
 * cancelled, -ETIMEDOUT while a shielded task holds on, -ESHUTDOWN after it,
 * spawns by tasks during it start cancelled, several threads shutting down
 * at once) and weft_rt_free.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "weft_test.h"

static weft_rt *new_rt(unsigned workers)
{
	weft_config c = wt_cfg(workers);
	weft_rt *rt = NULL;

	assert_int_equal(weft_rt_new(&rt, &c), 0);
	assert_non_null(rt);
	return rt;
}

static int plus_one(void *arg)
{
	return (int)(intptr_t)arg + 1;
}

static void test_new_workers_free(void **state)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	weft_config c = wt_cfg(0);
	weft_rt *rt;
	int i;

	(void)state;
	for (i = 1; i <= 4; i++) {
		rt = new_rt((unsigned)i);
		assert_int_equal(weft_rt_workers(rt), i);
		weft_rt_free(rt);
	}
	if (online > 1024)
		online = 1024;
	rt = NULL;
	assert_int_equal(weft_rt_new(&rt, NULL), 0);
	assert_int_equal(weft_rt_workers(rt), (int)online);
	weft_rt_free(rt);
	rt = NULL;
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	assert_int_equal(weft_rt_workers(rt), (int)online);
	weft_rt_free(rt);
	weft_rt_free(NULL);
}

static void test_new_invalid_config(void **state)
{
	weft_config c;
	weft_rt *rt = NULL;
	size_t i;

	(void)state;
	c = wt_cfg(1);
	c.flags = 2;
	assert_int_equal(weft_rt_new(&rt, &c), -EINVAL);
	for (i = 0; i < sizeof(c.reserved_u) / sizeof(c.reserved_u[0]); i++) {
		c = wt_cfg(1);
		c.reserved_u[i] = 3;
		assert_int_equal(weft_rt_new(&rt, &c), -EINVAL);
	}
	for (i = 0; i < sizeof(c.reserved) / sizeof(c.reserved[0]); i++) {
		c = wt_cfg(1);
		c.reserved[i] = 1;
		assert_int_equal(weft_rt_new(&rt, &c), -EINVAL);
	}
}

static void test_block_on(void **state)
{
	weft_rt *rt = new_rt(2);
	int i, r;

	(void)state;
	for (i = 0; i < 100; i++) {
		r = -1;
		assert_int_equal(weft_rt_block_on(rt, plus_one,
						  (void *)(intptr_t)i, &r), 0);
		assert_int_equal(r, i + 1);
	}
	/* The task's negative result is not the call's failure. */
	assert_int_equal(weft_rt_block_on(rt, plus_one,
					  (void *)(intptr_t)-5, &r), 0);
	assert_int_equal(r, -4);
	assert_int_equal(weft_rt_block_on(rt, NULL, NULL, &r), -EINVAL);
	weft_rt_free(rt);
}

/* block_on and shutdown from a task of the runtime would wait for
 * themselves. */
static int call_from_task(void *arg)
{
	weft_rt *rt = arg;
	int r = 0;

	WT_CHECK_EQ(weft_rt_block_on(rt, plus_one, NULL, &r), -EDEADLK);
	WT_CHECK_EQ(weft_rt_shutdown(rt, 0), -EDEADLK);
	WT_CHECK_EQ(weft_rt_shutdown(rt, UINT64_MAX), -EDEADLK);
	/* The refused shutdown did not begin one: a child still runs. */
	{
		weft_task *c = NULL;

		WT_CHECK_EQ(weft_spawn(&c, plus_one, (void *)1), 0);
		WT_CHECK_EQ(weft_join(c, &r), 0);
		WT_CHECK_EQ(r, 2);
	}
	return 3;
}

static void test_deadlock_from_task(void **state)
{
	weft_rt *rt = new_rt(2);
	weft_task *t;
	int r = -1;

	(void)state;
	assert_int_equal(weft_rt_block_on(rt, call_from_task, rt, &r), 0);
	assert_int_equal(r, 3);
	assert_int_equal(weft_rt_spawn(rt, &t, plus_one, (void *)7), 0);
	assert_int_equal(weft_join(t, &r), 0);
	assert_int_equal(r, 8);
	assert_int_equal(weft_rt_shutdown(rt, UINT64_MAX), 0);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
}

/* Several plain threads block on one runtime at once. */
struct blocker {
	weft_rt *rt;
	int base;
	int bad;
};

static int sleepy_plus_one(void *arg)
{
	WT_CHECK_EQ(weft_sleep(10 * WT_US), 0);
	WT_CHECK_EQ(weft_yield(), 0);
	return (int)(intptr_t)arg + 1;
}

/* For detached tasks, which weft_rt_free may cancel before they end. */
static int sleepy_detached(void *arg)
{
	int rc = weft_sleep(10 * WT_US);

	WT_CHECK(rc == 0 || rc == -ECANCELED);
	rc = weft_yield();
	WT_CHECK(rc == 0 || rc == -ECANCELED);
	return (int)(intptr_t)arg;
}

static void *block_on_many(void *arg)
{
	struct blocker *b = arg;
	int i, r;

	for (i = 0; i < 200; i++) {
		r = -1;
		if (weft_rt_block_on(b->rt, sleepy_plus_one,
				     (void *)(intptr_t)(b->base + i), &r) != 0 ||
		    r != b->base + i + 1)
			b->bad++;
	}
	return NULL;
}

static void test_block_on_concurrent(void **state)
{
	weft_rt *rt = new_rt(2);
	struct blocker b[4];
	pthread_t th[4];
	int i;

	(void)state;
	for (i = 0; i < 4; i++) {
		b[i] = (struct blocker){ .rt = rt, .base = i * 1000 };
		assert_int_equal(pthread_create(&th[i], NULL, block_on_many,
						&b[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(b[i].bad, 0);
	}
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
}

/*
 * weft_rt_spawn from a plain pthread; the handles are joined by another
 * plain thread (the test's) and by the spawning thread itself.
 */
#define PLAIN_SPAWNS 200

struct plain_spawner {
	weft_rt *rt;
	weft_task *handles[PLAIN_SPAWNS];
	int spawn_fail;
	int self_join_bad;
};

static void *spawn_from_plain(void *arg)
{
	struct plain_spawner *ps = arg;
	weft_task *mine;
	int i, r = -1;

	WT_CHECK(weft_current() == NULL);
	WT_CHECK_EQ(weft_worker_id(), -1);
	for (i = 0; i < PLAIN_SPAWNS; i++)
		if (weft_rt_spawn(ps->rt, &ps->handles[i], sleepy_plus_one,
				  (void *)(intptr_t)i) != 0)
			ps->spawn_fail++;
	/* Detached spawns from a plain thread. */
	for (i = 0; i < 10; i++)
		if (weft_rt_spawn(ps->rt, NULL, sleepy_detached, NULL) != 0)
			ps->spawn_fail++;
	if (weft_rt_spawn(ps->rt, &mine, plus_one, (void *)41) != 0 ||
	    weft_join(mine, &r) != 0 || r != 42)
		ps->self_join_bad++;
	return NULL;
}

static void test_spawn_plain_join_plain(void **state)
{
	struct plain_spawner ps = { 0 };
	pthread_t th;
	int i, r;

	(void)state;
	ps.rt = new_rt(2);
	assert_int_equal(pthread_create(&th, NULL, spawn_from_plain, &ps), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(ps.spawn_fail, 0);
	assert_int_equal(ps.self_join_bad, 0);
	for (i = 0; i < PLAIN_SPAWNS; i++) {
		r = -1;
		assert_int_equal(weft_join(ps.handles[i], &r), 0);
		assert_int_equal(r, i + 1);
	}
	assert_int_equal(weft_rt_spawn(ps.rt, &ps.handles[0], NULL, NULL),
			 -EINVAL);
	weft_rt_free(ps.rt);
	assert_int_equal(wt_take_failures(), 0);
}

/* weft_rt_spawn from a task: onto its own runtime and onto another one;
 * the task joins both handles. */
struct two_rts {
	weft_rt *own, *other;
};

static int worker_of_other(void *arg)
{
	(void)arg;
	WT_CHECK(weft_worker_id() >= 0);
	WT_CHECK_EQ(weft_sleep(100 * WT_US), 0);
	return 77;
}

static int spawn_across(void *arg)
{
	struct two_rts *rts = arg;
	weft_task *a, *b;
	int ra = -1, rb = -1;

	WT_CHECK_EQ(weft_rt_spawn(rts->own, &a, plus_one, (void *)1), 0);
	WT_CHECK_EQ(weft_rt_spawn(rts->other, &b, worker_of_other, NULL), 0);
	WT_CHECK_EQ(weft_join(b, &rb), 0);
	WT_CHECK_EQ(weft_join(a, &ra), 0);
	return ra * 100 + rb;
}

static void test_spawn_across_runtimes(void **state)
{
	struct two_rts rts;
	int r = -1;

	(void)state;
	rts.own = new_rt(1);
	rts.other = new_rt(1);
	assert_int_equal(weft_rt_block_on(rts.own, spawn_across, &rts, &r), 0);
	assert_int_equal(r, 277);
	weft_rt_free(rts.own);
	weft_rt_free(rts.other);
	assert_int_equal(wt_take_failures(), 0);
}

/* Shutdown with tasks still asleep: they wake with -ECANCELED, their
 * results stay readable through the handles, and the call returns 0. */
#define SLEEPERS 64
static _Atomic int sleepers_started, sleepers_canceled;

static int sleeper(void *arg)
{
	int rc;

	atomic_fetch_add(&sleepers_started, 1);
	rc = weft_sleep(WT_LONG_SLEEP);
	if (rc == -ECANCELED)
		atomic_fetch_add(&sleepers_canceled, 1);
	WT_CHECK_EQ(rc, -ECANCELED);
	WT_CHECK_EQ(weft_sleep(1), -ECANCELED);
	return (int)(intptr_t)arg;
}

static void test_shutdown_sleepers(void **state)
{
	weft_rt *rt = new_rt(2);
	weft_task *t[SLEEPERS];
	int i, r;

	(void)state;
	atomic_store(&sleepers_started, 0);
	atomic_store(&sleepers_canceled, 0);
	for (i = 0; i < SLEEPERS; i++)
		assert_int_equal(weft_rt_spawn(rt, i % 2 ? &t[i] : NULL,
					       sleeper, (void *)(intptr_t)i),
				 0);
	WT_WAIT(atomic_load(&sleepers_started) == SLEEPERS);
	assert_int_equal(weft_rt_shutdown(rt, UINT64_MAX), 0);
	assert_int_equal(atomic_load(&sleepers_canceled), SLEEPERS);
	/* No new tasks once shutdown has begun. */
	assert_int_equal(weft_rt_spawn(rt, &t[0], plus_one, NULL),
			 -ESHUTDOWN);
	assert_int_equal(weft_rt_spawn(rt, NULL, plus_one, NULL), -ESHUTDOWN);
	assert_int_equal(weft_rt_block_on(rt, plus_one, NULL, &r), -ESHUTDOWN);
	/* A second shutdown has nothing left to wait for. */
	assert_int_equal(weft_rt_shutdown(rt, 0), 0);
	for (i = 1; i < SLEEPERS; i += 2) {
		r = -1;
		assert_int_equal(weft_join(t[i], &r), 0);
		assert_int_equal(r, i);
	}
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
}

static void test_shutdown_idle(void **state)
{
	weft_rt *rt = new_rt(2);

	(void)state;
	assert_int_equal(weft_rt_shutdown(rt, 0), 0);
	weft_rt_free(rt);
	rt = new_rt(1);
	assert_int_equal(weft_rt_shutdown(rt, UINT64_MAX), 0);
	weft_rt_free(rt);
}

/*
 * Shutdowns from several threads at once (a signal thread and the main
 * thread, say): the workers are stopped and joined once, and every call
 * returns 0 after they ended. Repeated, with sleepers to cancel, since
 * the calls must overlap to matter.
 */
#define SHUTTERS 3

static void *shutter(void *arg)
{
	return (void *)(intptr_t)weft_rt_shutdown(arg, UINT64_MAX);
}

static void test_shutdown_concurrent(void **state)
{
	(void)state;
	for (int round = 0; round < 50; round++) {
		weft_rt *rt = new_rt(2);
		pthread_t th[SHUTTERS];
		void *rc;

		for (int i = 0; i < 4; i++)
			assert_int_equal(weft_rt_spawn(rt, NULL, sleeper, NULL),
					 0);
		for (int i = 0; i < SHUTTERS; i++)
			assert_int_equal(
				pthread_create(&th[i], NULL, shutter, rt), 0);
		for (int i = 0; i < SHUTTERS; i++) {
			assert_int_equal(pthread_join(th[i], &rc), 0);
			assert_int_equal((int)(intptr_t)rc, 0);
		}
		assert_int_equal(weft_rt_spawn(rt, NULL, plus_one, NULL),
				 -ESHUTDOWN);
		weft_rt_free(rt);
	}
	assert_int_equal(wt_take_failures(), 0);
}

/* weft_rt_free without a shutdown shuts down first. */
static void test_free_cancels(void **state)
{
	weft_rt *rt = new_rt(2);
	int i;

	(void)state;
	atomic_store(&sleepers_started, 0);
	atomic_store(&sleepers_canceled, 0);
	for (i = 0; i < 16; i++)
		assert_int_equal(weft_rt_spawn(rt, NULL, sleeper, NULL), 0);
	WT_WAIT(atomic_load(&sleepers_started) == 16);
	weft_rt_free(rt);
	assert_int_equal(atomic_load(&sleepers_canceled), 16);
	assert_int_equal(wt_take_failures(), 0);
}

/*
 * A task that holds on to a shield while the runtime shuts down:
 * shutdown(timeout) returns -ETIMEDOUT; once the task lets go, the
 * cancellation reaches its next suspending call and a second shutdown
 * succeeds (or weft_rt_free waits for it).
 */
static _Atomic int holder_in_shield, holder_release, holder_done;

static int shielded_holder(void *arg)
{
	(void)arg;
	WT_CHECK_EQ(weft_shield_begin(), 0);
	atomic_store(&holder_in_shield, 1);
	while (!atomic_load(&holder_release))
		WT_CHECK_EQ(weft_sleep(200 * WT_US), 0);
	WT_CHECK_EQ(weft_shield_end(), 0);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ECANCELED);
	atomic_store(&holder_done, 1);
	return 0;
}

static weft_rt *start_holder(void)
{
	weft_rt *rt = new_rt(2);

	atomic_store(&holder_in_shield, 0);
	atomic_store(&holder_release, 0);
	atomic_store(&holder_done, 0);
	assert_int_equal(weft_rt_spawn(rt, NULL, shielded_holder, NULL), 0);
	WT_WAIT(atomic_load(&holder_in_shield));
	return rt;
}

static void test_shutdown_timeout(void **state)
{
	weft_rt *rt = start_holder();
	uint64_t t0;

	(void)state;
	t0 = wt_clock();
	assert_int_equal(weft_rt_shutdown(rt, 20 * WT_MS), -ETIMEDOUT);
	assert_true(wt_clock() - t0 >= 20 * WT_MS);
	assert_int_equal(weft_rt_shutdown(rt, 0), -ETIMEDOUT);
	assert_int_equal(atomic_load(&holder_done), 0);
	/* Shutdown has begun: spawns fail. */
	assert_int_equal(weft_rt_spawn(rt, NULL, plus_one, NULL), -ESHUTDOWN);
	atomic_store(&holder_release, 1);
	assert_int_equal(weft_rt_shutdown(rt, UINT64_MAX), 0);
	assert_int_equal(atomic_load(&holder_done), 1);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
}

static void *release_later(void *arg)
{
	(void)arg;
	wt_nap(20 * WT_MS);
	atomic_store(&holder_release, 1);
	return NULL;
}

static void test_free_after_timeout(void **state)
{
	weft_rt *rt = start_holder();
	pthread_t th;

	(void)state;
	assert_int_equal(weft_rt_shutdown(rt, WT_MS), -ETIMEDOUT);
	assert_int_equal(pthread_create(&th, NULL, release_later, NULL), 0);
	weft_rt_free(rt); /* waits again, until the holder ends */
	assert_int_equal(atomic_load(&holder_done), 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(wt_take_failures(), 0);
}

/*
 * Spawns by a task of rt while rt shuts down create tasks that are already
 * cancelled: they never run and their join stores -ECANCELED. A helper
 * thread tells the task when shutdown has begun (weft_rt_spawn from a plain
 * thread starts failing with -ESHUTDOWN).
 */
static _Atomic int late_ready, late_shutdown_seen, late_child_ran;
static _Atomic int late_join_rc, late_result, late_done;

static int late_child(void *arg)
{
	(void)arg;
	atomic_store(&late_child_ran, 1);
	return 1;
}

static int late_spawner(void *arg)
{
	weft_task *c = NULL;
	int r = 0;

	(void)arg;
	WT_CHECK_EQ(weft_shield_begin(), 0);
	atomic_store(&late_ready, 1);
	while (!atomic_load(&late_shutdown_seen))
		WT_CHECK_EQ(weft_sleep(200 * WT_US), 0);
	WT_CHECK_EQ(weft_spawn(&c, late_child, NULL), 0);
	atomic_store(&late_join_rc, weft_join(c, &r));
	atomic_store(&late_result, r);
	WT_CHECK_EQ(weft_shield_end(), 0);
	atomic_store(&late_done, 1);
	return 0;
}

static int noop(void *arg)
{
	(void)arg;
	return 0;
}

static void *watch_shutdown(void *arg)
{
	weft_rt *rt = arg;
	int rc;

	while ((rc = weft_rt_spawn(rt, NULL, noop, NULL)) == 0)
		wt_nap(100 * WT_US);
	WT_CHECK_EQ(rc, -ESHUTDOWN);
	atomic_store(&late_shutdown_seen, 1);
	return NULL;
}

static void test_spawn_during_shutdown(void **state)
{
	weft_rt *rt = new_rt(2);
	pthread_t th;

	(void)state;
	assert_int_equal(weft_rt_spawn(rt, NULL, late_spawner, NULL), 0);
	WT_WAIT(atomic_load(&late_ready));
	assert_int_equal(pthread_create(&th, NULL, watch_shutdown, rt), 0);
	assert_int_equal(weft_rt_shutdown(rt, UINT64_MAX), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&late_done), 1);
	assert_int_equal(atomic_load(&late_join_rc), 0);
	assert_int_equal(atomic_load(&late_result), -ECANCELED);
	assert_int_equal(atomic_load(&late_child_ran), 0);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
}

/*
 * block_on whose task is cancelled by a shutdown before it ever ran:
 * -ESHUTDOWN, and *result is -ECANCELED. A gate task holds the only worker
 * so that the task cannot start; the shutdown cannot finish until the gate
 * opens. If the blocking thread is so slow that it spawns only after the
 * shutdown began, block_on fails to spawn: -ESHUTDOWN as well, with *result
 * left alone; both are accepted.
 */
static _Atomic int bo_gate_running, bo_gate_open, bo_ran;

static int bo_gate(void *arg)
{
	(void)arg;
	atomic_store(&bo_gate_running, 1);
	while (!atomic_load(&bo_gate_open))
		; /* holds the only worker without suspending */
	return 0;
}

static int bo_body(void *arg)
{
	(void)arg;
	atomic_store(&bo_ran, 1);
	return 1;
}

struct bo_call {
	weft_rt *rt;
	int rc;
	int result;
};

static void *bo_thread(void *arg)
{
	struct bo_call *c = arg;

	c->rc = weft_rt_block_on(c->rt, bo_body, NULL, &c->result);
	return NULL;
}

static void test_block_on_during_shutdown(void **state)
{
	struct bo_call call = { .rc = 1, .result = 12345 };
	weft_task *g;
	pthread_t th;
	int r = -1;

	(void)state;
	call.rt = new_rt(1);
	assert_int_equal(weft_rt_spawn(call.rt, &g, bo_gate, NULL), 0);
	WT_WAIT(atomic_load(&bo_gate_running));
	assert_int_equal(pthread_create(&th, NULL, bo_thread, &call), 0);
	wt_nap(20 * WT_MS); /* lets the thread spawn; not required */
	assert_int_equal(weft_rt_shutdown(call.rt, WT_MS), -ETIMEDOUT);
	atomic_store(&bo_gate_open, 1);
	assert_int_equal(weft_rt_shutdown(call.rt, UINT64_MAX), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	printf("block_on: rc %d, result %d\n", call.rc, call.result);
	assert_int_equal(atomic_load(&bo_ran), 0);
	assert_int_equal(call.rc, -ESHUTDOWN);
	assert_true(call.result == -ECANCELED || call.result == 12345);
	assert_int_equal(weft_join(g, &r), 0);
	assert_int_equal(r, 0);
	weft_rt_free(call.rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_workers_free),
		cmocka_unit_test(test_new_invalid_config),
		cmocka_unit_test(test_block_on),
		cmocka_unit_test(test_deadlock_from_task),
		cmocka_unit_test(test_block_on_concurrent),
		cmocka_unit_test(test_spawn_plain_join_plain),
		cmocka_unit_test(test_spawn_across_runtimes),
		cmocka_unit_test(test_shutdown_sleepers),
		cmocka_unit_test(test_shutdown_idle),
		cmocka_unit_test(test_shutdown_concurrent),
		cmocka_unit_test(test_free_cancels),
		cmocka_unit_test(test_shutdown_timeout),
		cmocka_unit_test(test_free_after_timeout),
		cmocka_unit_test(test_spawn_during_shutdown),
		cmocka_unit_test(test_block_on_during_shutdown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
