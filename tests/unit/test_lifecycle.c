/* SPDX-License-Identifier: MIT */
/*
 * The task-lifecycle matrix, run many times:
 *
 *	cancel: never / before its first run / while running / while asleep /
 *		after it finished
 *	join:	never (detached) / before it finishes / after it finished
 *	origin:	weft_spawn from a task / weft_rt_spawn from a plain thread
 *
 * (cancel after it finished x join before it finishes is not a case: the
 * join that sees the end frees the handle, so nothing is left to cancel.)
 *
 * Checked: every task body runs at most once; one cancelled before its first
 * run never runs; every join returns 0 and stores the body's result, or
 * -ECANCELED for a task that never ran; a cancelled task's suspending calls
 * fail with -ECANCELED and only after a cancel was asked for; bodies started
 * == bodies finished. That every task record is freed exactly once is left
 * to ASan and LSan (no leak, no double free, no use after free).
 *
 * Phase 1 uses one worker, where "before its first run" is certain: a task
 * spawner does not suspend between spawn and cancel, and a plain thread
 * holds the only worker with a gate task while it spawns and cancels.
 * Phase 2 uses two workers, where the task may win the race and start
 * first; then it must run to its end and see the cancellation.
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

enum cancel_mode { C_NEVER, C_BEFORE, C_RUNNING, C_ASLEEP, C_AFTER, C_N };
enum join_mode { J_DETACH, J_BEFORE, J_AFTER, J_N };
enum origin { O_TASK, O_PLAIN, O_N };

static const char *const cancel_names[] = { "never", "before-run",
					    "running", "asleep", "after" };
static const char *const join_names[] = { "detach", "before-end",
					  "after-end" };

#define CELLS_PER_ORIGIN (C_N * J_N - 1)
#define CELLS (O_N * CELLS_PER_ORIGIN)
#define ITERATIONS WT_SCALE(500, 100)

struct rec {
	/* Set before the spawn, read-only afterwards. */
	enum cancel_mode cmode;
	enum join_mode jmode;
	enum origin origin;
	bool strict;	/* one worker: "before its first run" is certain */
	int key;	/* what the body returns; > 0 */
	weft_rt *rt;
	/* Written by the body, read by the driver and the checks. */
	_Atomic int runs;
	_Atomic int running;
	_Atomic int asleep;
	_Atomic int finished;
	/* Written by the driver before it cancels; read by the body. */
	_Atomic int cancel_asked;
	/* The gate task of this cell, if any, and its driver. */
	_Atomic int gate_running, gate_open;
	/* Written by the driver. */
	bool joined;
	int result;
};

static _Atomic long spawned, started, finished, esrch;

/* Holds the only worker, without suspending, while a plain thread spawns
 * and cancels a task that therefore cannot start first. */
static int gate(void *arg)
{
	struct rec *r = arg;

	atomic_store(&r->gate_running, 1);
	while (!atomic_load(&r->gate_open))
		;
	return 0;
}

static void spin_a_little(void)
{
	volatile int i;

	for (i = 0; i < 200; i++)
		;
}

static int body(void *arg)
{
	struct rec *r = arg;
	int rc;

	if (atomic_fetch_add(&r->runs, 1) != 0)
		WT_CHECK(!"task body ran twice");
	atomic_fetch_add(&started, 1);
	switch (r->cmode) {
	case C_NEVER:
		WT_CHECK_EQ(weft_yield(), 0);
		WT_CHECK_EQ(weft_sleep(20 * WT_US), 0);
		break;
	case C_BEFORE:
		if (r->strict)
			WT_CHECK(!"task cancelled before its first run ran");
		/* It started before the cancel: it sees it soon. */
		while ((rc = weft_yield()) == 0)
			;
		WT_CHECK_EQ(rc, -ECANCELED);
		WT_CHECK(atomic_load(&r->cancel_asked));
		break;
	case C_RUNNING:
		atomic_store(&r->running, 1);
		do
			spin_a_little();
		while ((rc = weft_yield()) == 0);
		WT_CHECK_EQ(rc, -ECANCELED);
		WT_CHECK(atomic_load(&r->cancel_asked));
		WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ECANCELED);
		break;
	case C_ASLEEP:
		atomic_store(&r->asleep, 1);
		rc = weft_sleep(WT_LONG_SLEEP);
		WT_CHECK_EQ(rc, -ECANCELED);
		WT_CHECK(atomic_load(&r->cancel_asked));
		WT_CHECK_EQ(weft_yield(), -ECANCELED);
		break;
	case C_AFTER:
		WT_CHECK_EQ(weft_yield(), 0);
		break;
	default:
		WT_CHECK(!"bad cancel mode");
	}
	atomic_fetch_add(&finished, 1);
	atomic_store(&r->finished, 1);
	return r->key;
}

/* Waits for a flag of the body, in a task or on a plain thread. */
static void await(struct rec *r, _Atomic int *flag)
{
	if (r->origin == O_TASK)
		WT_TASK_WAIT(atomic_load(flag));
	else
		WT_WAIT(atomic_load(flag));
}

static void pause_briefly(struct rec *r)
{
	if (r->origin == O_TASK)
		WT_CHECK_EQ(weft_sleep(100 * WT_US), 0);
	else
		wt_nap(100 * WT_US);
}

static void cancel_now(struct rec *r, weft_task *t)
{
	atomic_store(&r->cancel_asked, 1);
	WT_CHECK_EQ(weft_cancel(t), 0);
}

/* Runs one cell: spawn, cancel as the cell says, then join or detach. */
static void drive(struct rec *r)
{
	bool use_gate = r->strict && r->origin == O_PLAIN &&
			r->cmode == C_BEFORE;
	bool spawn_detached = r->cmode == C_NEVER && r->jmode == J_DETACH &&
			      (r->key & 1);
	weft_task *t = NULL, *g = NULL;
	int rc, polls;

	if (use_gate) {
		WT_CHECK_EQ(weft_rt_spawn(r->rt, &g, gate, r), 0);
		WT_WAIT(atomic_load(&r->gate_running));
	}
	if (r->origin == O_TASK)
		rc = weft_spawn(spawn_detached ? NULL : &t, body, r);
	else
		rc = weft_rt_spawn(r->rt, spawn_detached ? NULL : &t, body, r);
	WT_CHECK_EQ(rc, 0);
	if (rc != 0)
		return;
	atomic_fetch_add(&spawned, 1);

	switch (r->cmode) {
	case C_NEVER:
		break;
	case C_BEFORE:
		cancel_now(r, t);
		break;
	case C_RUNNING:
		await(r, &r->running);
		cancel_now(r, t);
		break;
	case C_ASLEEP:
		await(r, &r->asleep);
		cancel_now(r, t);
		break;
	case C_AFTER:
		await(r, &r->finished);
		/* The body has returned or is about to: 0 until the task has
		 * ended (harmless, it suspends no more), then -ESRCH. */
		for (polls = 0; (rc = weft_cancel(t)) == 0 && polls < 100000;
		     polls++)
			pause_briefly(r);
		WT_CHECK_EQ(rc, -ESRCH);
		atomic_fetch_add(&esrch, rc == -ESRCH);
		break;
	default:
		WT_CHECK(!"bad cancel mode");
	}
	if (use_gate) {
		atomic_store(&r->gate_open, 1);
		WT_CHECK_EQ(weft_join(g, NULL), 0);
	}

	switch (r->jmode) {
	case J_DETACH:
		weft_detach(t); /* NULL if spawned detached: ignored */
		return;
	case J_BEFORE:
		break;
	case J_AFTER:
		if (r->cmode == C_BEFORE)
			pause_briefly(r); /* it never ends if it never runs */
		else
			await(r, &r->finished);
		break;
	default:
		WT_CHECK(!"bad join mode");
	}
	r->result = 0;
	WT_CHECK_EQ(weft_join(t, &r->result), 0);
	r->joined = true;
	/* Ended, so runs is final. */
	if (atomic_load(&r->runs))
		WT_CHECK_EQ(r->result, r->key);
	else
		WT_CHECK_EQ(r->result, -ECANCELED);
}

static int drive_task(void *arg)
{
	drive(arg);
	return 0;
}

static void *drive_plain(void *arg)
{
	drive(arg);
	return NULL;
}

/* All the task-origin cells of one iteration, each from its own task. */
static int drive_tasks(void *arg)
{
	struct rec *recs = arg;
	weft_task *d[CELLS_PER_ORIGIN];
	int i;

	for (i = 0; i < CELLS_PER_ORIGIN; i++)
		WT_CHECK_EQ(weft_spawn(&d[i], drive_task, &recs[i]), 0);
	for (i = 0; i < CELLS_PER_ORIGIN; i++)
		WT_CHECK_EQ(weft_join(d[i], NULL), 0);
	return 0;
}

static bool must_finish(const struct rec *r)
{
	return r->cmode != C_BEFORE || atomic_load(&r->runs) != 0;
}

static void init_cells(struct rec *recs, weft_rt *rt, bool strict, int iter)
{
	int o, c, j, n = 0;

	for (o = 0; o < O_N; o++)
		for (c = 0; c < C_N; c++)
			for (j = 0; j < J_N; j++) {
				struct rec *r = &recs[n];

				if (c == C_AFTER && j == J_BEFORE)
					continue;
				memset(r, 0, sizeof(*r));
				r->cmode = (enum cancel_mode)c;
				r->jmode = (enum join_mode)j;
				r->origin = (enum origin)o;
				r->strict = strict;
				r->key = iter * 100 + n + 1;
				r->rt = rt;
				n++;
			}
	assert_int_equal(n, CELLS);
}

static void check_cells(const struct rec *recs, int *ran_before_cancel)
{
	int i;

	for (i = 0; i < CELLS; i++) {
		const struct rec *r = &recs[i];
		int runs = atomic_load(&r->runs);

		if (runs > 1 || (r->cmode != C_BEFORE && runs != 1) ||
		    (r->strict && r->cmode == C_BEFORE && runs != 0) ||
		    (r->jmode != J_DETACH && !r->joined))
			fail_msg("cell cancel=%s join=%s origin=%s: runs=%d "
				 "joined=%d result=%d",
				 cancel_names[r->cmode], join_names[r->jmode],
				 r->origin == O_TASK ? "task" : "plain", runs,
				 r->joined, r->result);
		if (r->cmode == C_BEFORE && runs)
			(*ran_before_cancel)++;
	}
}

static void run_phase(unsigned workers, bool strict)
{
	weft_config c = wt_cfg(workers);
	struct rec *recs = calloc((size_t)ITERATIONS * CELLS, sizeof(*recs));
	pthread_t th[CELLS_PER_ORIGIN];
	weft_rt *rt = NULL;
	int iter, i, r, raced = 0;

	assert_non_null(recs);
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	for (iter = 0; iter < ITERATIONS; iter++) {
		struct rec *it = &recs[(size_t)iter * CELLS];

		init_cells(it, rt, strict, iter);
		/* The plain-thread cells, each on its own thread... */
		for (i = 0; i < CELLS_PER_ORIGIN; i++)
			assert_int_equal(pthread_create(&th[i], NULL,
				drive_plain, &it[CELLS_PER_ORIGIN + i]), 0);
		/* ...while the task cells run from tasks. */
		r = -1;
		assert_int_equal(weft_rt_block_on(rt, drive_tasks, it, &r), 0);
		assert_int_equal(r, 0);
		for (i = 0; i < CELLS_PER_ORIGIN; i++)
			assert_int_equal(pthread_join(th[i], NULL), 0);
		/* Detached bodies still running end before the next round
		 * (and before the shutdown, whose cancellation they would
		 * take for a wrong one). */
		for (i = 0; i < CELLS; i++)
			if (must_finish(&it[i]))
				WT_WAIT(atomic_load(&it[i].finished));
		assert_int_equal(wt_take_failures(), 0);
	}
	assert_int_equal(weft_rt_shutdown(rt, UINT64_MAX), 0);
	weft_rt_free(rt);
	for (iter = 0; iter < ITERATIONS; iter++)
		check_cells(&recs[(size_t)iter * CELLS], &raced);
	free(recs);
	assert_int_equal(wt_take_failures(), 0);
	assert_int_equal(atomic_load(&started), atomic_load(&finished));
	printf("%u worker(s): %ld tasks spawned, %ld ran, %d of those "
	       "cancelled right after the spawn had started first\n",
	       workers, atomic_load(&spawned), atomic_load(&started), raced);
	if (strict)
		assert_int_equal(raced, 0);
}

static void reset_counters(void)
{
	atomic_store(&spawned, 0);
	atomic_store(&started, 0);
	atomic_store(&finished, 0);
	atomic_store(&esrch, 0);
}

static void test_matrix_one_worker(void **state)
{
	(void)state;
	reset_counters();
	run_phase(1, true);
	assert_int_equal(atomic_load(&spawned), (long)ITERATIONS * CELLS);
	/* Every cell but the before-run ones ran. */
	assert_int_equal(atomic_load(&started),
			 (long)ITERATIONS * (CELLS - O_N * J_N));
	assert_int_equal(atomic_load(&esrch), (long)ITERATIONS * O_N * (J_N - 1));
}

static void test_matrix_two_workers(void **state)
{
	(void)state;
	reset_counters();
	run_phase(2, false);
	assert_int_equal(atomic_load(&spawned), (long)ITERATIONS * CELLS);
	assert_true(atomic_load(&started) >=
		    (long)ITERATIONS * (CELLS - O_N * J_N));
	assert_int_equal(atomic_load(&esrch), (long)ITERATIONS * O_N * (J_N - 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matrix_one_worker),
		cmocka_unit_test(test_matrix_two_workers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
