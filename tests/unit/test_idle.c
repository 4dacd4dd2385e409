/* SPDX-License-Identifier: MIT */
/*
 * An idle runtime does not spin: with 2 workers and 1,000 tasks asleep for
 * 2 s, the process uses under 5% of one core. The CPU time (getrusage
 * RUSAGE_SELF, user + system, every thread) is measured over a window that
 * lies inside the sleep and compared with the wall time of that window;
 * nothing here bounds the wall time itself.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <cmocka.h>

#include "weft_test.h"

#define SLEEPERS 1000
#define SLEEP_NS (2 * WT_SEC)

static _Atomic int asleep, woke;

static int sleeper(void *arg)
{
	uint64_t t0 = weft_now();

	(void)arg;
	atomic_fetch_add(&asleep, 1);
	WT_CHECK_EQ(weft_sleep(SLEEP_NS), 0);
	WT_CHECK(weft_now() - t0 >= SLEEP_NS);
	atomic_fetch_add(&woke, 1);
	return 0;
}

static int spawn_sleepers(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < SLEEPERS; i++)
		WT_CHECK_EQ(weft_spawn(NULL, sleeper, NULL), 0);
	return 0;
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) *
		       WT_SEC +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) *
		       WT_US;
}

static void test_idle_sleepers(void **state)
{
	weft_config c = wt_cfg(2);
	weft_rt *rt = NULL;
	uint64_t t0, t1, c0, c1, wall, cpu;
	int r = -1;

	(void)state;
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	t0 = wt_clock();
	assert_int_equal(weft_rt_block_on(rt, spawn_sleepers, NULL, &r), 0);
	assert_int_equal(r, 0);
	WT_WAIT(atomic_load(&asleep) == SLEEPERS);
	/* Let the last ones settle into their sleep and the workers park. */
	wt_nap(100 * WT_MS);
	/* The window: from now until 1.5 s after the first spawn, when every
	 * task is still asleep (they wake 2 s after they started). */
	c0 = cpu_ns();
	t1 = wt_clock();
	if (t1 - t0 < 1500 * WT_MS)
		wt_nap(1500 * WT_MS - (t1 - t0));
	c1 = cpu_ns();
	wall = wt_clock() - t1;
	cpu = c1 - c0;
	printf("idle: %.1f ms CPU over %.1f ms with %d sleepers (%.2f%%)\n",
	       cpu / 1e6, wall / 1e6, SLEEPERS, 100.0 * cpu / wall);
	/* Spawning took so long that the window left is too short to mean
	 * anything: that says nothing about idling, so skip. */
	if (wall < 500 * WT_MS) {
		WT_WAIT(atomic_load(&woke) == SLEEPERS);
		weft_rt_free(rt);
		skip();
	}
	assert_int_equal(atomic_load(&woke), 0);
	assert_true(cpu * 20 < wall);
	/* The sleepers all wake and end. */
	WT_WAIT(atomic_load(&woke) == SLEEPERS);
	assert_int_equal(weft_rt_shutdown(rt, UINT64_MAX), 0);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_sleepers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
