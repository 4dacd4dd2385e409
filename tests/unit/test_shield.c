/* SPDX-License-Identifier: MIT */
/*
 * Shields: a cancelled parent shields its cleanup, cancels its children and
 * joins them; a cancellation that arrives inside a shield waits for the
 * first suspending call after the outermost shield ends; sleeps inside a
 * shield last their full time; deadlines still apply inside; shields nest;
 * -EINVAL for an end without a begin, -EPERM outside a task.
 */
#include <errno.h>
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

static void test_shield_plain(void **state)
{
	(void)state;
	assert_int_equal(weft_shield_begin(), -EPERM);
	assert_int_equal(weft_shield_end(), -EPERM);
}

static int unbalanced(void *arg)
{
	(void)arg;
	WT_CHECK_EQ(weft_shield_end(), -EINVAL);
	WT_CHECK_EQ(weft_shield_begin(), 0);
	WT_CHECK_EQ(weft_shield_end(), 0);
	WT_CHECK_EQ(weft_shield_end(), -EINVAL);
	WT_CHECK_EQ(weft_yield(), 0);
	return 0;
}

static void test_shield_unbalanced(void **state)
{
	(void)state;
	assert_int_equal(run(1, unbalanced, NULL), 0);
}

/*
 * The parent sleeps until it is cancelled, then, in a shield, cancels its
 * children and joins each of them; the children's own cleanup runs (they
 * return 100 + i). After the shield its cancellation shows again.
 */
#define CHILDREN 16
static _Atomic int children_canceled, children_started, parent_asleep;

static int child(void *arg)
{
	int rc;

	atomic_fetch_add(&children_started, 1);
	rc = weft_sleep(WT_LONG_SLEEP);

	WT_CHECK_EQ(rc, -ECANCELED);
	if (rc == -ECANCELED)
		atomic_fetch_add(&children_canceled, 1);
	return 100 + (int)(intptr_t)arg;
}

static int parent(void *arg)
{
	weft_task *c[CHILDREN];
	int i, r, ok = 0;

	(void)arg;
	for (i = 0; i < CHILDREN; i++)
		WT_CHECK_EQ(weft_spawn(&c[i], child, (void *)(intptr_t)i), 0);
	atomic_store(&parent_asleep, 1);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ECANCELED);
	WT_CHECK_EQ(weft_shield_begin(), 0);
	/* Waiting works again inside the shield. */
	WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_sleep(100 * WT_US), 0);
	for (i = 0; i < CHILDREN; i++)
		WT_CHECK_EQ(weft_cancel(c[i]), 0);
	for (i = 0; i < CHILDREN; i++) {
		r = -1;
		WT_CHECK_EQ(weft_join(c[i], &r), 0);
		if (r == 100 + i)
			ok++;
	}
	WT_CHECK_EQ(weft_shield_end(), 0);
	WT_CHECK_EQ(weft_yield(), -ECANCELED);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ECANCELED);
	return ok;
}

static int cancel_parent(void *arg)
{
	weft_task *p;
	int r = -1;

	(void)arg;
	atomic_store(&parent_asleep, 0);
	WT_CHECK_EQ(weft_spawn(&p, parent, NULL), 0);
	while (!atomic_load(&parent_asleep))
		WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(p), 0);
	WT_CHECK_EQ(weft_join(p, &r), 0);
	return r;
}

static void test_cancelled_parent_joins_children(void **state)
{
	(void)state;
	atomic_store(&children_canceled, 0);
	assert_int_equal(run(2, cancel_parent, NULL), CHILDREN);
	assert_int_equal(atomic_load(&children_canceled), CHILDREN);
	atomic_store(&children_canceled, 0);
	assert_int_equal(run(1, cancel_parent, NULL), CHILDREN);
	assert_int_equal(atomic_load(&children_canceled), CHILDREN);
}

/*
 * A cancellation that arrives inside the (nested) shield is held back: the
 * sleeps inside last their full time and return 0; it is delivered at the
 * first suspending call after the outermost shield ends.
 */
static _Atomic int in_shield, cancel_sent;

static int shielded(void *arg)
{
	uint64_t t0;

	(void)arg;
	WT_CHECK_EQ(weft_shield_begin(), 0);
	WT_CHECK_EQ(weft_shield_begin(), 0);
	atomic_store(&in_shield, 1);
	while (!atomic_load(&cancel_sent))
		WT_CHECK_EQ(weft_sleep(100 * WT_US), 0);
	/* Cancelled now; this sleep is woken by nothing. */
	t0 = weft_now();
	WT_CHECK_EQ(weft_sleep(20 * WT_MS), 0);
	WT_CHECK(weft_now() - t0 >= 20 * WT_MS);
	WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_shield_end(), 0);
	/* Still inside the outer shield. */
	WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_sleep(10 * WT_US), 0);
	WT_CHECK_EQ(weft_shield_end(), 0);
	WT_CHECK_EQ(weft_yield(), -ECANCELED);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ECANCELED);
	/* A new shield holds it back again. */
	WT_CHECK_EQ(weft_shield_begin(), 0);
	WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_shield_end(), 0);
	WT_CHECK_EQ(weft_yield(), -ECANCELED);
	return 21;
}

static int cancel_in_shield(void *arg)
{
	weft_task *t;
	int r = -1;

	(void)arg;
	atomic_store(&in_shield, 0);
	atomic_store(&cancel_sent, 0);
	WT_CHECK_EQ(weft_spawn(&t, shielded, NULL), 0);
	while (!atomic_load(&in_shield))
		WT_CHECK_EQ(weft_yield(), 0);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(t), 0);
	atomic_store(&cancel_sent, 1);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	return r;
}

static void test_cancel_delivered_after_shield(void **state)
{
	(void)state;
	assert_int_equal(run(2, cancel_in_shield, NULL), 21);
	assert_int_equal(run(1, cancel_in_shield, NULL), 21);
}

/* Deadlines apply inside a shield, even for a cancelled task. */
static int deadline_in_shield(void *arg)
{
	uint64_t t0;

	(void)arg;
	WT_CHECK_EQ(weft_shield_begin(), 0);
	t0 = weft_now();
	WT_CHECK_EQ(weft_timeout_begin(5 * WT_MS), 0);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ETIMEDOUT);
	WT_CHECK(weft_now() - t0 >= 5 * WT_MS);
	WT_CHECK_EQ(weft_yield(), -ETIMEDOUT);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	WT_CHECK_EQ(weft_yield(), 0);
	/* Cancelled inside the shield: the deadline still ends the wait. */
	WT_CHECK_EQ(weft_cancel(weft_current()), 0);
	WT_CHECK_EQ(weft_timeout_begin(5 * WT_MS), 0);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ETIMEDOUT);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	WT_CHECK_EQ(weft_shield_end(), 0);
	WT_CHECK_EQ(weft_yield(), -ECANCELED);
	return 0;
}

static int spawn_deadline_in_shield(void *arg)
{
	weft_task *t;
	int r = -1;

	(void)arg;
	WT_CHECK_EQ(weft_spawn(&t, deadline_in_shield, NULL), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	return r;
}

static void test_deadline_in_shield(void **state)
{
	(void)state;
	assert_int_equal(run(2, spawn_deadline_in_shield, NULL), 0);
}

/* Shielded cleanup also runs when the runtime itself cancels everything:
 * weft_run waits for the children the shield joins. */
static _Atomic int cleanup_joined;

static int cleanup_on_shutdown(void *arg)
{
	weft_task *c[4];
	int i, r;

	(void)arg;
	for (i = 0; i < 4; i++)
		WT_CHECK_EQ(weft_spawn(&c[i], child, (void *)(intptr_t)i), 0);
	/* Children that never ran would store -ECANCELED: let them start. */
	while (atomic_load(&children_started) < 4)
		WT_CHECK_EQ(weft_yield(), 0);
	atomic_store(&parent_asleep, 1);
	WT_CHECK_EQ(weft_sleep(WT_LONG_SLEEP), -ECANCELED);
	WT_CHECK_EQ(weft_shield_begin(), 0);
	for (i = 0; i < 4; i++) {
		int rc = weft_cancel(c[i]);

		/* The runtime cancelled the children too: some may be done. */
		WT_CHECK(rc == 0 || rc == -ESRCH);
		r = -1;
		WT_CHECK_EQ(weft_join(c[i], &r), 0);
		/* A child that had not started when weft_run's first task
		 * returned never runs (asyncio.run does the same), and its
		 * join stores -ECANCELED. */
		WT_CHECK(r == 100 + i || r == -ECANCELED);
		atomic_fetch_add(&cleanup_joined, 1);
	}
	WT_CHECK_EQ(weft_shield_end(), 0);
	return 0;
}

static int leave_cleaner(void *arg)
{
	(void)arg;
	atomic_store(&parent_asleep, 0);
	WT_CHECK_EQ(weft_spawn(NULL, cleanup_on_shutdown, NULL), 0);
	while (!atomic_load(&parent_asleep))
		WT_CHECK_EQ(weft_yield(), 0);
	return 0;
}

static void test_shielded_cleanup_at_shutdown(void **state)
{
	(void)state;
	atomic_store(&cleanup_joined, 0);
	atomic_store(&children_started, 0);
	assert_int_equal(run(2, leave_cleaner, NULL), 0);
	assert_int_equal(atomic_load(&cleanup_joined), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shield_plain),
		cmocka_unit_test(test_shield_unbalanced),
		cmocka_unit_test(test_cancelled_parent_joins_children),
		cmocka_unit_test(test_cancel_delivered_after_shield),
		cmocka_unit_test(test_deadline_in_shield),
		cmocka_unit_test(test_shielded_cleanup_at_shutdown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
