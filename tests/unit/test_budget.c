/* SPDX-License-Identifier: MIT */
/*
 * Cooperative budget: a task whose operations keep completing without
 * suspending (here: joins of tasks that have already finished) is made to
 * yield after a bounded number of them, so the other tasks of its worker
 * still run. One worker, so nothing else could run them.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <weft.h>

#define READY 2000

static atomic_int other_ran;
static int seen_at = -1;

static int quick(void *arg)
{
	return (int)(intptr_t)arg;
}

static int other(void *arg)
{
	(void)arg;
	atomic_store(&other_ran, 1);
	return 0;
}

static int hot(void *arg)
{
	static weft_task *t[READY];
	weft_task *o;
	int r;

	(void)arg;
	for (int i = 0; i < READY; i++)
		if (weft_spawn(&t[i], quick, (void *)(intptr_t)i) != 0)
			return -1;
	/* Let all of them finish (one worker: they run while we sleep);
	 * after this, every join below is ready. */
	if (weft_sleep(1000000) != 0)
		return -5;
	if (weft_spawn(&o, other, NULL) != 0)
		return -2;
	for (int i = 0; i < READY; i++) {
		if (weft_join(t[i], &r) != 0 || r != i)
			return -3;
		if (seen_at < 0 && atomic_load(&other_ran))
			seen_at = i;
	}
	if (weft_join(o, &r) != 0)
		return -4;
	return 0;
}

static void test_ready_joins_yield(void **state)
{
	weft_config c = { .workers = 1 };
	int r = -1;

	(void)state;
	assert_int_equal(weft_run(&c, hot, NULL, &r), 0);
	assert_int_equal(r, 0);
	printf("budget: the other task ran after %d ready joins\n", seen_at);
	/* It ran while the loop was still going, well before its end. */
	assert_true(seen_at >= 0);
	assert_true(seen_at < READY / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_joins_yield),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
