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
 * A test-and-test-and-set spinlock for critical sections of a few dozen
 * instructions that never suspend (a task's join hand-off, a timer heap, a
 * task registry). After a short spin it yields the CPU, so a holder that was
 * preempted does not make waiters burn their time slice.
 * Acquire on lock pairs with release on unlock: everything written inside
 * the section is visible to the next holder.
 */
typedef struct {
	atomic_bool held;
} spinlock;

#define SPINLOCK_INIT { false }

static inline void spin_lock(spinlock *l)
{
	for (;;) {
		if (!atomic_exchange_explicit(&l->held, true,
					      memory_order_acquire))
			return;
		for (unsigned i = 0; LOAD(&l->held, relaxed); i++) {
			if (i < 128)
				cpu_relax();
			else
				sched_yield();
		}
	}
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
