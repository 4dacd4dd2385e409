/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by weft's tests.
 *
 * cmocka's assertions longjmp to the test's main thread, so code that runs
 * inside a task or on any other thread must never call them. It records a
 * failure with WT_CHECK() / WT_CHECK_EQ() instead: the failure is printed at
 * once (file, line, expression, values) and counted in wt_failures. The test
 * asserts on its main thread, once the tasks have ended, that no failure was
 * recorded (wt_take_failures() returns the count and resets it).
 *
 * Waits on a plain thread use wt_nap() (nanosleep, independent of weft).
 * Nothing here bounds a wait by the clock: a wait that never ends is a hang
 * that ctest's TIMEOUT turns into a failure.
 */
#ifndef WEFT_TEST_H
#define WEFT_TEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <weft.h>

/*
 * WEFT_TEST_SANITIZED is 1 in sanitizer builds (tests/CMakeLists.txt), where
 * code runs 5-20 times slower: heavy tests use smaller counts there but keep
 * every path.
 */
#ifndef WEFT_TEST_SANITIZED
#define WEFT_TEST_SANITIZED 0
#endif
#define WT_SCALE(plain, sanitized) (WEFT_TEST_SANITIZED ? (sanitized) : (plain))

#define WT_US 1000ull
#define WT_MS 1000000ull
#define WT_SEC 1000000000ull

/*
 * A sleep that only a cancellation or a deadline is meant to end. If the
 * runtime fails to end it, the sleep ends on its own and the test fails on
 * the result instead of hanging until ctest's timeout.
 */
#define WT_LONG_SLEEP (20 * WT_SEC)

/* Written by every thread and task (relaxed increments), read by the test's
 * main thread after the tasks ended (the runtime's join or shutdown orders
 * the increments before the read). */
extern _Atomic unsigned wt_failures;

void wt_fail(const char *file, int line, const char *what);
void wt_fail_eq(const char *file, int line, const char *a, const char *b,
		long long va, long long vb);

#define WT_CHECK(cond)							\
	do {								\
		if (!(cond))						\
			wt_fail(__FILE__, __LINE__, #cond);		\
	} while (0)

#define WT_CHECK_EQ(a, b)						\
	do {								\
		long long wt_a_ = (long long)(a);			\
		long long wt_b_ = (long long)(b);			\
		if (wt_a_ != wt_b_)					\
			wt_fail_eq(__FILE__, __LINE__, #a, #b, wt_a_,	\
				   wt_b_);				\
	} while (0)

/* Returns the number of failures recorded since the last call, and resets
 * it. */
unsigned wt_take_failures(void);

/* Sleeps the calling plain thread for ns nanoseconds with nanosleep(). */
void wt_nap(uint64_t ns);

/*
 * pthread_self() of the calling thread, through a call the compiler cannot
 * see into: glibc declares pthread_self() const, so a direct call may be
 * reused across a suspension after which the task runs on another thread.
 */
unsigned long wt_thread_self(void);

/* CLOCK_MONOTONIC in nanoseconds, read without weft. */
uint64_t wt_clock(void);

/*
 * Stress validators: parses `prog [workers [seed [size]]]`. workers
 * defaults to 4, seed to one from the clock, size to default_size. Prints
 * a usage line and returns 2 on bad arguments, else 0.
 */
int wt_stress_args(int argc, char **argv, unsigned long *workers,
		   uint64_t *seed, unsigned *size, unsigned default_size);
/* One end-of-run count: true if got == want, else prints what differs. */
bool wt_check(const char *prog, const char *what, long got, long want);

/* Waits on a plain thread until cond holds, polling every 20 us. */
#define WT_WAIT(cond)							\
	do {								\
		while (!(cond))						\
			wt_nap(20 * WT_US);				\
	} while (0)

/* Waits in a task until cond holds, yielding in between. The task must not
 * be cancelled while it waits. */
#define WT_TASK_WAIT(cond)						\
	do {								\
		while (!(cond))						\
			WT_CHECK_EQ(weft_yield(), 0);			\
	} while (0)

/*
 * Uses about kib KiB of the calling stack: a non-tail recursion with a 1 KiB
 * frame that writes both ends of its frame, so every page is touched.
 * Returns a checksum equal to wt_stack_expect(kib).
 */
uint64_t wt_stack_use(unsigned kib);
uint64_t wt_stack_expect(unsigned kib);

/* A config with `workers` workers and every other field zero. */
static inline weft_config wt_cfg(unsigned workers)
{
	weft_config c;

	memset(&c, 0, sizeof(c));
	c.workers = workers;
	return c;
}

/* xorshift64 (Marsaglia): a tiny PRNG, one state per task, seeded
 * deterministically. The state must never be 0. */
static inline uint64_t wt_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* A well-mixed non-zero seed derived from a base seed and an index
 * (splitmix64 finaliser). */
static inline uint64_t wt_seed(uint64_t base, uint64_t index)
{
	uint64_t z = base + (index + 1) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z ? z : 1;
}

/* Uniform-enough value in [0, n) for small n. */
static inline unsigned wt_below(uint64_t *s, unsigned n)
{
	return (unsigned)((wt_rand(s) >> 11) % n);
}

#endif
