/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <string.h>
#include "ctx.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WEFT_VALGRIND 1
#endif
#endif

#ifndef WEFT_CTX_UCONTEXT
void weft__ctx_start(void);
#endif

#ifdef WEFT_CTX_UCONTEXT
/* makecontext passes int arguments only: split the two pointers. */
static void uc_entry(unsigned e_hi, unsigned e_lo, unsigned a_hi,
		     unsigned a_lo)
{
	void (*entry)(void *) = (void (*)(void *))(
		((uintptr_t)e_hi << 16 << 16) | e_lo);
	void *arg = (void *)(((uintptr_t)a_hi << 16 << 16) | a_lo);

	entry(arg);
	__builtin_trap();
}
#endif

void coro_make(struct coro *c, void *stack_lo, size_t size,
	       void (*entry)(void *), void *arg, const char *name)
{
	c->stack_lo = stack_lo;
	c->stack_size = size;
#ifdef WEFT_CTX_UCONTEXT
	uintptr_t e = (uintptr_t)entry, a = (uintptr_t)arg;

	getcontext(&c->uc);
	c->uc.uc_stack.ss_sp = stack_lo;
	c->uc.uc_stack.ss_size = size;
	c->uc.uc_link = NULL;
	makecontext(&c->uc, (void (*)(void))uc_entry, 4,
		    (unsigned)(e >> 16 >> 16), (unsigned)e,
		    (unsigned)(a >> 16 >> 16), (unsigned)a);
#elif defined(__x86_64__)
	/* The frame weft__ctx_swap pops; see the drawing in ctx_x86_64.S. */
	uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
	uint64_t *sp = (uint64_t *)(top - 16);

	*--sp = (uint64_t)(uintptr_t)weft__ctx_start;	/* return address */
	*--sp = 0;					/* rbp */
	*--sp = 0;					/* rbx */
	*--sp = (uint64_t)(uintptr_t)arg;		/* r12 */
	*--sp = (uint64_t)(uintptr_t)entry;		/* r13 */
	*--sp = 0;					/* r14 */
	*--sp = 0;					/* r15 */
	*--sp = 0x1f80 | (0x037fULL << 32);	/* default MXCSR, x87 CW */
	c->sp = sp;
#elif defined(__aarch64__)
	/* The frame weft__ctx_swap pops; see ctx_aarch64.S. */
	uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
	uint64_t *sp = (uint64_t *)(top - 176);

	memset(sp, 0, 176);
	sp[0] = (uint64_t)(uintptr_t)arg;		/* x19 */
	sp[1] = (uint64_t)(uintptr_t)entry;		/* x20 */
	sp[11] = (uint64_t)(uintptr_t)weft__ctx_start;	/* x30 */
	c->sp = sp;
#else
#error "no context switch for this architecture: configure with -DWEFT_CONTEXT=ucontext"
#endif
#ifdef WEFT_TSAN
	c->tsan_fiber = __tsan_create_fiber(0);
	if (name)
		__tsan_set_fiber_name(c->tsan_fiber, name);
#endif
	(void)name;
#ifdef WEFT_ASAN
	c->asan_fake = NULL;
	/* The stack may have held an earlier task whose frames left poisoned
	 * redzones behind. */
	__asan_unpoison_memory_region(stack_lo, size);
#endif
#ifdef WEFT_VALGRIND
	c->vg_id = VALGRIND_STACK_REGISTER(stack_lo, (char *)stack_lo + size);
#else
	c->vg_id = 0;
#endif
}

void coro_adopt_thread(struct coro *c)
{
	pthread_attr_t attr;
	void *lo = NULL;
	size_t size = 0;

	memset(c, 0, sizeof(*c));
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		pthread_attr_getstack(&attr, &lo, &size);
		pthread_attr_destroy(&attr);
	}
	c->stack_lo = lo;
	c->stack_size = size;
#ifdef WEFT_TSAN
	c->tsan_fiber = __tsan_get_current_fiber();
#endif
}

void coro_release(struct coro *c)
{
#ifdef WEFT_TSAN
	__tsan_destroy_fiber(c->tsan_fiber);
	c->tsan_fiber = NULL;
#endif
#ifdef WEFT_VALGRIND
	if (c->vg_id)
		VALGRIND_STACK_DEREGISTER(c->vg_id);
#endif
	c->vg_id = 0;
}

void coro_entered(struct coro *c)
{
	(void)c;
#ifdef WEFT_ASAN
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
}
