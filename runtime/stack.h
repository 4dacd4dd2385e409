/* SPDX-License-Identifier: MIT */
/*
 * Task stacks: pooled, guarded, lazily backed by memory. See stack.c for how
 * the design meets both "a million sleeping tasks on a default kernel" and
 * "a stack overflow never corrupts memory silently".
 */
#ifndef WEFT_STACK_H
#define WEFT_STACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include "atomic.h"

#define STACK_DEFAULT_SIZE ((size_t)256 * 1024)
#define STACK_MIN_SIZE ((size_t)16 * 1024)

struct stack_slab;

/* One per runtime: the default-size stacks not cached by a worker. */
struct stack_pool {
	pthread_mutex_t lock;
	void *free;		/* under lock: free stacks linked at their top */
	size_t nfree;		/* under lock */
	struct stack_slab *slabs; /* under lock: every mapping, for teardown */
	size_t stack_size;	/* default stack size; constant */
	/* Set when the last attempt to map stacks failed, cleared when a
	 * stack is returned; lets spawn fail early with -ENOMEM. Relaxed:
	 * a hint. */
	_Atomic bool exhausted;
};

/* One per worker, touched only by its worker thread. */
struct stack_cache {
	void *free;
	size_t n;
};

int stack_pool_init(struct stack_pool *p, size_t stack_size);
void stack_pool_destroy(struct stack_pool *p);
void stack_cache_drain(struct stack_pool *p, struct stack_cache *c);

/* size == 0 means the pool's default. Returns 0 and *lo, or -ENOMEM. */
int stack_get(struct stack_pool *p, struct stack_cache *c, size_t size,
	      void **lo);
void stack_put(struct stack_pool *p, struct stack_cache *c, void *lo,
	       size_t size);

/* Rounds a requested stack size to what stack_get will map, or 0 if it is
 * out of range. */
size_t stack_round_size(size_t size);

/* Canary check for the fallback mode without guard pages; true if intact.
 * Inline: it runs at every switch away from a task. */
extern _Atomic int weft__guard_madvise;
bool weft__stack_canary_intact(const void *lo);
static inline bool stack_canary_ok(const void *lo)
{
	return LOAD(&weft__guard_madvise, relaxed) != 0 ||
	       weft__stack_canary_intact(lo);
}

/* Installs the process-wide SIGSEGV handler that turns a guard-page hit into
 * a one-line report (once per process), and gives the calling worker thread
 * an alternate signal stack. Returns the alt stack to free, or NULL. */
void *stack_thread_init(void);
void stack_thread_fini(void *altstack);

#endif
