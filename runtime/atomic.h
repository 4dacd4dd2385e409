/* SPDX-License-Identifier: MIT */
/*
 * All of weft's atomics go through C11 <stdatomic.h> with explicit orders.
 *
 * Why C11 and not Concurrency Kit's ck_pr here: ThreadSanitizer does not see
 * ck_pr operations as atomics (they are inline assembly or volatile
 * accesses), so every hand-off built on them would need hand-written
 * __tsan_release/__tsan_acquire annotations that can drift from the code.
 * C11 atomics compile to the same instructions and TSan checks them as they
 * are. CK is still used where it adds something C11 lacks: ck_pr_stall()
 * (the PAUSE/YIELD hint) in spin loops.
 *
 * Every acquire/release below is commented at its call site with what it
 * publishes and which site it pairs with.
 */
#ifndef WEFT_ATOMIC_H
#define WEFT_ATOMIC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sched.h>
#include <ck_pr.h>

#define LOAD(p, mo) atomic_load_explicit((p), memory_order_##mo)
#define STORE(p, v, mo) atomic_store_explicit((p), (v), memory_order_##mo)
#define FADD(p, v, mo) atomic_fetch_add_explicit((p), (v), memory_order_##mo)
#define FSUB(p, v, mo) atomic_fetch_sub_explicit((p), (v), memory_order_##mo)
#define FOR(p, v, mo) atomic_fetch_or_explicit((p), (v), memory_order_##mo)
#define XCHG(p, v, mo) atomic_exchange_explicit((p), (v), memory_order_##mo)
/* CAS: on failure *expected is reloaded with the failure order. */
#define CAS(p, e, d, mo_ok, mo_fail)                                        \
	atomic_compare_exchange_strong_explicit((p), (e), (d),              \
						memory_order_##mo_ok,       \
						memory_order_##mo_fail)
#define FENCE(mo) atomic_thread_fence(memory_order_##mo)

#define weft_likely(x) __builtin_expect(!!(x), 1)
#define weft_unlikely(x) __builtin_expect(!!(x), 0)
#define CACHELINE 64
#define cacheline_aligned __attribute__((aligned(CACHELINE)))

static inline void cpu_relax(void)
{
	ck_pr_stall();
}

/*
 * One step of a bounded busy wait: an exponentially growing run of pauses
 * (up to 64), and after `i` reaches 512 steps a sched_yield per step, so a
 * waiter whose partner was preempted does not burn its time slice. Start
 * with i = 0.
 */
static inline void spin_wait_step(unsigned *i)
{
	unsigned n = *i < 6 ? 1u << *i : 64;

	if (++*i > 512) {
		sched_yield();
		return;
	}
	while (n--)
		cpu_relax();
}

/*
 * A test-and-test-and-set spinlock for critical sections of a few dozen
 * instructions that never suspend (a channel, a sync object's queue, a task's
 * join hand-off, a timer heap, a registry). Contended, it polls the word with
 * exponential backoff (spin_wait_step): workers that hit one lock in a tight
 * loop otherwise steal its cache line from the holder at every probe.
 * Acquire on lock pairs with release on unlock: everything written inside
 * the section is visible to the next holder.
 */
typedef struct {
	atomic_bool held;
} spinlock;

#define SPINLOCK_INIT { false }

static inline void spin_lock(spinlock *l)
{
	unsigned i = 0;

	while (atomic_exchange_explicit(&l->held, true, memory_order_acquire))
		/* relaxed: only a hint that the lock may be free. */
		while (LOAD(&l->held, relaxed))
			spin_wait_step(&i);
}

static inline bool spin_trylock(spinlock *l)
{
	return !LOAD(&l->held, relaxed) &&
	       !atomic_exchange_explicit(&l->held, true, memory_order_acquire);
}

static inline void spin_unlock(spinlock *l)
{
	STORE(&l->held, false, release);
}

#endif
