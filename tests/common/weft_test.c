/* SPDX-License-Identifier: MIT */
#include <unistd.h>
#include <stdlib.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "weft_test.h"

_Atomic unsigned wt_failures;

void wt_fail(const char *file, int line, const char *what)
{
	atomic_fetch_add_explicit(&wt_failures, 1, memory_order_relaxed);
	fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
}

void wt_fail_eq(const char *file, int line, const char *a, const char *b,
		long long va, long long vb)
{
	atomic_fetch_add_explicit(&wt_failures, 1, memory_order_relaxed);
	fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n",
		file, line, a, b, va, vb);
}

unsigned wt_take_failures(void)
{
	return atomic_exchange_explicit(&wt_failures, 0, memory_order_acq_rel);
}

void wt_nap(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000ull),
		.tv_nsec = (long)(ns % 1000000000ull),
	};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

uint64_t wt_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Read through a volatile so that the compiler cannot fold the recursion. */
static volatile unsigned wt_stack_salt = 7;

__attribute__((noinline)) uint64_t wt_stack_use(unsigned kib)
{
	volatile unsigned char frame[1024];
	uint64_t below;

	if (kib == 0)
		return 0;
	frame[0] = (unsigned char)(kib + wt_stack_salt);
	frame[sizeof(frame) - 1] = (unsigned char)(kib * 3);
	below = wt_stack_use(kib - 1);
	return below + frame[0] + frame[sizeof(frame) - 1];
}

uint64_t wt_stack_expect(unsigned kib)
{
	uint64_t sum = 0;
	unsigned k;

	for (k = 1; k <= kib; k++)
		sum += (unsigned char)(k + wt_stack_salt) +
		       (unsigned char)(k * 3);
	return sum;
}

__attribute__((noinline)) unsigned long wt_thread_self(void)
{
	return (unsigned long)pthread_self();
}

int wt_stress_args(int argc, char **argv, unsigned long *workers,
		   uint64_t *seed, unsigned *size, unsigned default_size)
{
	*workers = argc > 1 ? strtoul(argv[1], NULL, 0) : 4;
	*seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 0;
	if (!*seed)
		*seed = (wt_clock() ^ ((uint64_t)getpid() << 32)) | 1;
	*size = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 0) : default_size;
	if (*workers == 0 || *workers > 1024 || *size == 0) {
		fprintf(stderr,
			"usage: %s [workers (1-1024) [seed [size (> 0)]]]\n",
			argv[0]);
		return 2;
	}
	return 0;
}

bool wt_check(const char *prog, const char *what, long got, long want)
{
	if (got == want)
		return true;
	fprintf(stderr, "%s: %s: %ld, expected %ld\n", prog, what, got, want);
	return false;
}
