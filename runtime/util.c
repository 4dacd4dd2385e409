/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

const char *weft_version(void)
{
	return WEFT_VERSION_STRING;
}

const char *weft_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -ECANCELED:
		return "the task was cancelled";
	case -ETIMEDOUT:
		/* weft's deadlines and the kernel's own timeouts (a
		 * connect that got no answer) share the code. */
		return "timed out (a deadline scope or a kernel timeout)";
	case -ESHUTDOWN:
		return "the runtime is shutting down";
	case -EPERM:
		return "not allowed outside a weft task";
	case -EDEADLK:
		return "the call would wait for itself";
	case -ESRCH:
		return "the task has already finished";
	case -ENOSPC:
		return "too many nested deadline scopes";
	default:
		/* strerror is not thread-safe in every libc; the table in
		 * glibc is, and weft only runs on glibc-compatible Linux. */
		if (err >= 0 || err == INT_MIN)
			return "not an error code";
		return strerror(-err);
	}
}

uint64_t weft_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int weft__futex_wait(_Atomic uint32_t *addr, uint32_t expect,
		     uint64_t timeout_ns)
{
	struct timespec ts, *tp = NULL;

	if (timeout_ns != UINT64_MAX) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
		ts.tv_nsec = (long)(timeout_ns % 1000000000u);
		tp = &ts;
	}
	/* FUTEX_PRIVATE: the words are never shared between processes. */
	if (syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expect, tp, NULL, 0))
		return -errno;
	return 0;
}

void weft__futex_wake(_Atomic uint32_t *addr, int n)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/*
 * Fault injection for tests: WEFT_FAIL_MALLOC=N, WEFT_FAIL_MMAP=N or
 * WEFT_FAIL_URING=N in the environment makes the Nth counted allocation,
 * mapping or io_uring setup fail (1-based).
 * Read once; costs one relaxed load per call otherwise.
 */
static const char *const fail_env[] = {
	[WEFT_FAIL_MALLOC] = "WEFT_FAIL_MALLOC",
	[WEFT_FAIL_MMAP] = "WEFT_FAIL_MMAP",
	[WEFT_FAIL_URING] = "WEFT_FAIL_URING",
};
static _Atomic long fail_at[3] = { -1, -1, -1 };
static _Atomic long fail_count[3];

bool weft__fail_point(enum fail_kind k)
{
	long at = LOAD(&fail_at[k], relaxed);

	if (at == -1) {
		const char *e = getenv(fail_env[k]);

		at = e ? atol(e) : 0;
		STORE(&fail_at[k], at, relaxed);
	}
	if (at <= 0)
		return false;
	return FADD(&fail_count[k], 1, relaxed) + 1 == at;
}

/*
 * errno for code that may have suspended since the failing call's
 * function began: glibc declares __errno_location() const, so a compiler
 * may look the address up once per function, and after a suspension the
 * task may run on another thread, whose errno that address is not. An
 * out-of-line call is looked up afresh every time.
 */
__attribute__((noinline)) int weft__errno(void)
{
	int e = errno;

	__asm__ volatile("" : "+r"(e));
	return e;
}

int weft__thread_start(pthread_t *th, void *(*fn)(void *), void *arg,
		       bool detached)
{
	sigset_t all, old;
	pthread_attr_t attr;
	int rc;

	/* The thread starts with every signal blocked (it inherits this
	 * mask): the program's handlers and sigwait() never land on it. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_attr_init(&attr);
	if (rc == 0) {
		if (detached)
			pthread_attr_setdetachstate(&attr,
						    PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		rc = pthread_create(th, &attr, fn, arg);
		pthread_attr_destroy(&attr);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -rc;
}
