/* SPDX-License-Identifier: MIT */
/*
 * Stack overflow never corrupts memory silently: a task that recurses
 * without bound on a small stack makes the process die with one clear line
 *
 *	weft: stack overflow in task "NAME" (id N, stack S bytes)
 *
 * Each case runs in a child process whose stderr the parent reads through a
 * pipe; the child must not exit with status 0. It runs under ASan and TSan
 * too: the runtime's guard and its handler (on the worker's signal stack)
 * report the overflow before the sanitizers' own handlers would.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "weft_test.h"

/* Read through a volatile: the recursion has no visible end, yet neither
 * the compiler nor -Winfinite-recursion can tell. */
static volatile unsigned long dive_limit = ULONG_MAX;

__attribute__((noinline)) static unsigned long dive(unsigned long depth)
{
	volatile unsigned char frame[256];

	frame[0] = (unsigned char)depth;
	frame[sizeof(frame) - 1] = (unsigned char)(depth >> 3);
	if (depth >= dive_limit)
		return frame[0];
	/* Not a tail call: the frame is used after the call returns. */
	return dive(depth + 1) + frame[sizeof(frame) - 1];
}

/* Frames of 24 KiB that touch only their lowest bytes: each call lands
 * 24 KiB below the last, so a one-page guard could be stepped over into the
 * neighbouring stack (this file is not built with -fstack-clash-protection).
 * weft's guard region is wider than that. */
__attribute__((noinline)) static unsigned long dive_big(unsigned long depth)
{
	volatile unsigned char frame[24 << 10];

	frame[0] = (unsigned char)depth;
	if (depth >= dive_limit)
		return frame[0];
	return dive_big(depth + 1) + frame[0];
}

struct overflow_case {
	size_t cfg_stack;	/* weft_config.stack_size */
	size_t opt_stack;	/* weft_spawn_opts.stack_size */
	const char *name;	/* weft_spawn_opts.name */
	size_t expect_stack;	/* S in the report */
	int big_frames;		/* recurse with 24 KiB frames */
};

static int victim(void *arg)
{
	const struct overflow_case *oc = arg;

	/* Tell the parent which id to expect in the report. */
	fprintf(stderr, "victim id %llu\n",
		(unsigned long long)weft_task_id(weft_current()));
	fflush(stderr);
	WT_CHECK_EQ(weft_yield(), 0);
	return (int)(oc->big_frames ? dive_big(0) : dive(0));
}

static int spawn_victim(void *arg)
{
	const struct overflow_case *oc = arg;
	weft_spawn_opts o;
	weft_task *t;
	int r = 0;

	memset(&o, 0, sizeof(o));
	o.stack_size = oc->opt_stack;
	o.name = oc->name;
	if (weft_spawn_ex(&t, &o, victim, (void *)oc) != 0)
		return -1;
	weft_join(t, &r);
	return r;
}

static void child(const struct overflow_case *oc, int fd)
{
	struct rlimit no_core = { 0, 0 };
	weft_config c = wt_cfg(2);
	int r;

	/* The test harness's signal handlers must not catch the crash and
	 * carry on running tests in the child. */
	signal(SIGSEGV, SIG_DFL);
	signal(SIGBUS, SIG_DFL);
	setrlimit(RLIMIT_CORE, &no_core);
	if (dup2(fd, STDERR_FILENO) < 0)
		_exit(3);
	close(fd);
	c.stack_size = oc->cfg_stack;
	weft_run(&c, spawn_victim, (void *)oc, &r);
	/* Reaching this point means the overflow went unnoticed. */
	_exit(0);
}

/* Runs oc in a child; returns its stderr (NUL-terminated, caller frees)
 * and its wait status. */
static char *run_child(const struct overflow_case *oc, int *status)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	int fds[2];
	pid_t pid;

	assert_non_null(buf);
	assert_int_equal(pipe(fds), 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		child(oc, fds[1]);
	}
	close(fds[1]);
	for (;;) {
		ssize_t n = read(fds[0], buf + len, cap - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == cap - 1)
			break;
	}
	buf[len] = '\0';
	close(fds[0]);
	while (waitpid(pid, status, 0) < 0)
		assert_int_equal(errno, EINTR);
	return buf;
}

static void check_case(const struct overflow_case *oc)
{
	char expect[256];
	unsigned long long id = 0;
	const char *p;
	char *out;
	int status;

	out = run_child(oc, &status);
	printf("--- child stderr ---\n%s--- end ---\n", out);
	if (WIFEXITED(status))
		printf("child exited with %d\n", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		printf("child killed by signal %d\n", WTERMSIG(status));
	assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	p = strstr(out, "victim id ");
	assert_non_null(p);
	assert_int_equal(sscanf(p, "victim id %llu", &id), 1);
	assert_true(id != 0);
	if (oc->name)
		snprintf(expect, sizeof(expect),
			 "weft: stack overflow in task \"%s\" (id %llu, stack %zu bytes)\n",
			 oc->name, id, oc->expect_stack);
	else
		snprintf(expect, sizeof(expect), "(id %llu, stack %zu bytes)\n",
			 id, oc->expect_stack);
	assert_true(strstr(out, "weft: stack overflow in task") != NULL);
	if (!strstr(out, expect))
		fail_msg("no line containing: %s", expect);
	free(out);
}

static void test_overflow_named(void **state)
{
	static const struct overflow_case oc = {
		.opt_stack = 64 << 10,
		.name = "overflow-victim",
		.expect_stack = 64 << 10,
	};

	(void)state;
	check_case(&oc);
}

/* The runtime's default stack (from the config) is the one reported. */
static void test_overflow_config_stack(void **state)
{
	static const struct overflow_case oc = {
		.cfg_stack = 128 << 10,
		.name = "cfg-default",
		.expect_stack = 128 << 10,
	};

	(void)state;
	check_case(&oc);
}

/* Without a name the line still names the id and the stack size. */
static void test_overflow_unnamed(void **state)
{
	static const struct overflow_case oc = {
		.opt_stack = 32 << 10,
		.expect_stack = 32 << 10,
	};

	(void)state;
	check_case(&oc);
}

/* Large frames cannot step over the guard into another task's stack. */
static void test_overflow_big_frames(void **state)
{
	static const struct overflow_case oc = {
		.name = "big-frames",
		.expect_stack = 256 << 10,
		.big_frames = 1,
	};

	(void)state;
	check_case(&oc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overflow_named),
		cmocka_unit_test(test_overflow_big_frames),
		cmocka_unit_test(test_overflow_config_stack),
		cmocka_unit_test(test_overflow_unnamed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
