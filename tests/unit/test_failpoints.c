/* SPDX-License-Identifier: MIT */
/*
 * Failure paths: WEFT_FAIL_MALLOC=N / WEFT_FAIL_MMAP=N / WEFT_FAIL_URING=N
 * make weft's Nth counted allocation, mapping or io_uring setup fail
 * (runtime/util.c). Each case runs in a
 * child process, because the variables are read once per process. Every
 * failure must come back as a clean -ENOMEM: no crash, no hang, no lost
 * task.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <weft.h>

#define CHILDREN 300

static atomic_int ran;

static int child(void *arg)
{
	atomic_fetch_add(&ran, 1);
	return (int)(intptr_t)arg;
}

/* Spawns CHILDREN tasks; those whose spawn fails must fail with -ENOMEM,
 * the others must be joined with their own result, or with -ENOMEM if no
 * stack could be had for them. Returns 0 if all of that held. */
static int spawner(void *arg)
{
	weft_task *t[CHILDREN];
	int ok[CHILDREN];

	(void)arg;
	for (int i = 0; i < CHILDREN; i++) {
		int rc = weft_spawn(&t[i], child, (void *)(intptr_t)i);

		if (rc != 0 && rc != -ENOMEM)
			return 1;
		ok[i] = rc == 0;
	}
	for (int i = 0; i < CHILDREN; i++) {
		int r;

		if (!ok[i])
			continue;
		if (weft_join(t[i], &r) != 0)
			return 2;
		if (r != i && r != -ENOMEM)
			return 3;
	}
	return 0;
}

/* Runs the scenario in a child with env var=n; returns the child's exit
 * status (0: every failure was clean), or -1 if it crashed. */
static int run_child(const char *var, int n, int *weft_rc)
{
	int fd[2];
	pid_t pid;
	int st;

	if (pipe(fd) != 0)
		return -2;
	pid = fork();
	if (pid == 0) {
		char v[16];
		weft_config c = { .workers = 2 };
		int rc, r = -1;

		close(fd[0]);
		snprintf(v, sizeof(v), "%d", n);
		setenv(var, v, 1);
		rc = weft_run(&c, spawner, NULL, &r);
		if (write(fd[1], &rc, sizeof(rc)) != sizeof(rc))
			_exit(9);
		/* weft_run may fail as a whole (-ENOMEM), never otherwise. */
		_exit(rc == 0 ? (r == 0 ? 0 : 10 + r) : (rc == -ENOMEM ? 0 : 8));
	}
	close(fd[1]);
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -2;
	if (read(fd[0], weft_rc, sizeof(*weft_rc)) != sizeof(*weft_rc))
		*weft_rc = 1;
	close(fd[0]);
	if (!WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void sweep(const char *var, int max)
{
	int failed_runs = 0;

	for (int n = 1; n <= max; n++) {
		int rc = 0, st = run_child(var, n, &rc);

		if (st != 0)
			fail_msg("%s=%d: child status %d (weft_run returned %d)",
				 var, n, st, rc);
		failed_runs += rc == -ENOMEM;
	}
	/* The first counted call is in weft_run itself: it must fail. */
	assert_true(failed_runs >= 1);
}

static void test_malloc_failures(void **state)
{
	(void)state;
	sweep("WEFT_FAIL_MALLOC", 12);
}

static void test_mmap_failures(void **state)
{
	(void)state;
	sweep("WEFT_FAIL_MMAP", 4);
}

/* In a child: the Nth io_uring setup fails. A runtime that may choose
 * (forced == 0) falls back to epoll and works; one that insists on
 * io_uring gets the error. Exit status 0 when that held. */
static int uring_child(int n, int forced)
{
	weft_config c = { .workers = 2 };
	weft_rt *rt;
	char v[16];
	int rc, r = -1;

	snprintf(v, sizeof(v), "%d", n);
	setenv("WEFT_FAIL_URING", v, 1);
	unsetenv("WEFT_IO");
	c.io_backend = forced ? WEFT_IO_URING : WEFT_IO_AUTO;
	rc = weft_rt_new(&rt, &c);
	if (forced)
		return rc == -ENOMEM ? 0 : 1;
	if (rc != 0)
		return 2;
	if (weft_rt_io_backend(rt) != WEFT_IO_EPOLL)
		return 3;
	rc = weft_rt_block_on(rt, spawner, NULL, &r);
	weft_rt_free(rt);
	return rc == 0 && r == 0 ? 0 : 4;
}

static void test_uring_failures(void **state)
{
	(void)state;
	for (int n = 1; n <= 2; n++) {
		for (int forced = 0; forced <= 1; forced++) {
			pid_t pid = fork();
			int st;

			if (pid == 0)
				_exit(uring_child(n, forced));
			assert_true(pid > 0);
			assert_int_equal(waitpid(pid, &st, 0), pid);
			assert_true(WIFEXITED(st));
			if (WEXITSTATUS(st) != 0)
				fail_msg("WEFT_FAIL_URING=%d (%s): child status %d",
					 n, forced ? "io_uring forced" : "auto",
					 WEXITSTATUS(st));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malloc_failures),
		cmocka_unit_test(test_mmap_failures),
		cmocka_unit_test(test_uring_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
