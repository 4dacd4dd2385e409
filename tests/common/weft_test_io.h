/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the I/O tests (test_io, test_net, test_fs, test_stream,
 * test_serve, test_signal), whose whole cmocka suite runs once under the
 * io_uring backend and once under epoll.
 *
 * These use cmocka (its assertions and its group runner), so they live in
 * their own library, weft_testio, apart from weft_test.c, which the stress
 * validators link without cmocka. The wt_run_* helpers assert: call them
 * on the test's main thread, never in a task. The pair helpers run
 * anywhere and record failures with WT_CHECK.
 */
#ifndef WEFT_TEST_IO_H
#define WEFT_TEST_IO_H

#include <stddef.h>
#include <weft.h>

#include "weft_test.h"

struct CMUnitTest;

/* The backend of the suite being run: WEFT_IO_URING or WEFT_IO_EPOLL. Set
 * by wt_run_both_backends on the main thread before each suite, read by the
 * tests (the runtime's start orders the write before its tasks' reads). */
extern unsigned wt_backend;

/*
 * Runs the suite tests[0..n) as the cmocka group "<name>/io_uring" with
 * wt_backend = WEFT_IO_URING, then as "<name>/epoll" with WEFT_IO_EPOLL;
 * setup and teardown (either may be NULL) are the group's fixtures, run
 * around each of the two. The io_uring half is skipped, with a note on
 * stdout, where a runtime cannot be set up on io_uring here; the epoll half
 * always runs. WEFT_IO is unset first, so that runtimes the tests create
 * with WEFT_IO_AUTO do not follow the caller's environment.
 * Returns main's exit status: 0 if every test passed, else 1.
 */
int wt_run_both_backends(const char *name, const struct CMUnitTest *tests,
			 size_t n, int (*setup)(void **),
			 int (*teardown)(void **));

/* The same, for an array of tests (its length is taken with sizeof). */
#define WT_RUN_BOTH_BACKENDS(name, tests, setup, teardown)		\
	wt_run_both_backends((name), (tests),				\
			     sizeof(tests) / sizeof((tests)[0]),	\
			     (setup), (teardown))

/*
 * Starts a runtime of `workers` on wt_backend, asserts that it got that
 * backend, runs fn(arg) as a task, frees the runtime and asserts that no
 * WT_CHECK failed. Returns fn's value.
 */
int wt_run_io(unsigned workers, int (*fn)(void *), void *arg);

/*
 * The same on a runtime the test made itself with io_backend = wt_backend
 * (other config fields, or a signal mask for its workers): asserts its
 * backend, runs fn(arg) as a task, frees rt, asserts that no WT_CHECK
 * failed. Returns fn's value.
 */
int wt_run_io_rt(weft_rt *rt, int (*fn)(void *), void *arg);

/* A bound on waits that only a bug makes long: a call inside a deadline
 * scope of WT_BUG_BOUND then fails with -ETIMEDOUT instead of hanging until
 * ctest's timeout. */
#define WT_BUG_BOUND WT_SCALE(20 * WT_SEC, 100 * WT_SEC)

/* The byte at offset i of the test data stream number s. */
static inline unsigned char wt_pat(unsigned s, size_t i)
{
	return (unsigned char)(wt_seed(s, i / 8) >> (8 * (i % 8)));
}

/* Fills p[0..n) with stream s from offset off. */
static inline void wt_fill(unsigned char *p, size_t n, unsigned s, size_t off)
{
	for (size_t i = 0; i < n; i++)
		p[i] = wt_pat(s, off + i);
}

/* The first index in p[0..n) whose byte differs from stream s at offset
 * off + index, or n. */
static inline size_t wt_mismatch(const unsigned char *p, size_t n, unsigned s,
				 size_t off)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != wt_pat(s, off + i))
			return i;
	return n;
}

/* A connected pair of non-blocking, close-on-exec Unix stream sockets. */
void wt_socketpair(int sv[2]);

/* A loopback TCP connection made through weft: *c is the connecting end,
 * *a the accepted one (-1 where that step failed). */
void wt_tcp_pair(int *c, int *a);

#endif
