/* SPDX-License-Identifier: MIT */
/*
 * Coroutine contexts: the machine-level switch plus the sanitizer and
 * Valgrind bookkeeping that must surround every switch.
 *
 * A coroutine is either a task (its own stack from stack.c) or a worker's
 * scheduler context (the worker thread's own stack). Switching is
 * symmetric: coro_switch(from, to) saves `from` and resumes `to`; it returns
 * when some later switch resumes `from`, possibly on another thread.
 */
#ifndef WEFT_CTX_H
#define WEFT_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#ifdef WEFT_CTX_UCONTEXT
#include <ucontext.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif

#ifdef WEFT_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_set_fiber_name(void *fiber, const char *name);
#endif
#ifdef WEFT_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save,
				    const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
				     const void **bottom_old, size_t *size_old);
void __asan_unpoison_memory_region(const volatile void *addr, size_t size);
#endif

struct coro {
#ifdef WEFT_CTX_UCONTEXT
	ucontext_t uc;
#else
	void *sp;		/* saved stack pointer while switched out */
#endif
	void *stack_lo;		/* lowest address of the stack mapping */
	size_t stack_size;	/* bytes, including the guard page */
#ifdef WEFT_TSAN
	void *tsan_fiber;
#endif
#ifdef WEFT_ASAN
	void *asan_fake;	/* ASan fake-stack handle while switched out */
#endif
	unsigned vg_id;		/* Valgrind stack id, 0 if none */
};

/*
 * Prepares c to run entry(arg) on [stack_lo, stack_lo + size) the first time
 * it is switched to. entry must never return (it switches away for good).
 */
void coro_make(struct coro *c, void *stack_lo, size_t size,
	       void (*entry)(void *), void *arg, const char *name);

/* Adopts the calling thread's own stack as coroutine c (a scheduler). */
void coro_adopt_thread(struct coro *c);

/* Releases what coro_make set up (sanitizer fiber, Valgrind id). Must be
 * called from another coroutine, after c switched away for the last time. */
void coro_release(struct coro *c);

/* Must be the first thing a new coroutine's entry function does. */
void coro_entered(struct coro *c);

#ifndef WEFT_CTX_UCONTEXT
void weft__ctx_swap(void **save_sp, void *load_sp);
#endif

/*
 * Saves `from`, resumes `to`. from_dies: `from` will never be resumed (a
 * finished task), which lets ASan drop its fake stack.
 */
static inline void coro_switch(struct coro *from, struct coro *to,
			       bool from_dies)
{
#ifdef WEFT_TSAN
	/* flags 0: the switch synchronises, as it does in reality: the code
	 * after it runs on the same OS thread as the code before it. */
	__tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
#ifdef WEFT_ASAN
	__sanitizer_start_switch_fiber(from_dies ? NULL : &from->asan_fake,
				       to->stack_lo, to->stack_size);
#endif
	(void)from_dies;
#ifdef WEFT_CTX_UCONTEXT
	swapcontext(&from->uc, &to->uc);
#else
	weft__ctx_swap(&from->sp, to->sp);
#endif
#ifdef WEFT_ASAN
	__sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
#endif
}

#endif
