/* SPDX-License-Identifier: MIT */
/*
 * Task stacks.
 *
 * Requirements, and how this file meets them:
 *
 *  1. Ordinary C code must fit: the default stack is 256 KiB of address
 *     space. Only pages a task touches cost memory (anonymous mappings are
 *     backed on first touch, and MAP_NORESERVE keeps the untouched rest out
 *     of the commit charge), so a sleeping task typically costs one page.
 *
 *  2. A million concurrent tasks on a default kernel (vm.max_map_count =
 *     65530): stacks are carved out of slabs of SLAB_STACKS stacks, one
 *     mmap each, so a million stacks need about 16,000 mappings, and
 *     adjacent slabs usually merge into one VMA anyway. An mprotect'ed guard
 *     page per stack would split every slab into 2 VMAs per stack and run
 *     out near 32,750 stacks.
 *
 *  3. Overflow is never silent:
 *     - Linux 6.13+ has MADV_GUARD_INSTALL, which marks pages as guard
 *       regions in the page tables without creating a VMA: the GUARD_BYTES
 *       below every stack become one, and touching them raises SIGSEGV. The
 *       handler below recognises a fault in the running task's guard region
 *       and prints one line naming the task and its stack size, then aborts.
 *       It runs on a per-worker alternate signal stack, since the task's own
 *       stack is exhausted. The region is 64 KiB, not one page, so that a
 *       frame with a large local array cannot step over it into the
 *       neighbouring stack (code with frames larger than that should be
 *       built with -fstack-clash-protection, as weft itself is). The guard
 *       costs address space only, and sits outside the requested size.
 *     - Older kernels (madvise fails with EINVAL): a canary word at the
 *       lowest usable address of every stack, checked each time a task
 *       switches away and when it ends; a damaged canary aborts with the
 *       same line. This catches the overflow late (at the next switch) and
 *       touches one more page per stack, but never lets it pass unnoticed
 *       once the task suspends. Stacks of a custom size, mapped one by one,
 *       get an mprotect guard page in that mode too.
 *
 *  4. No mmap per spawn in steady state: finished tasks return their stack
 *     to the worker's cache (LIFO, so the next task gets warm memory); the
 *     runtime-wide pool takes a cache's surplus and refills empty caches in
 *     batches. Stacks are only unmapped when the runtime is freed. Custom
 *     sizes are mapped and unmapped one by one.
 *
 * Layout of one stack (addresses grow upwards):
 *
 *     lo-GUARD_BYTES    lo                                    lo+size
 *     | guard region    | canary (fallback) | ....... stack ... | top |
 *                                             grows down  <----
 *     `lo` is what stack_get returns. A free stack stores its free-list
 *     link in its top 16 bytes; a running task keeps its struct task_run
 *     there (sched.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "stack.h"
#include "internal.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define SLAB_STACKS 64
#define CACHE_MAX 128		/* per worker; the surplus goes to the pool */
#define CACHE_REFILL 32
#define CANARY 0x5745465443414e59ULL	/* "WEFTCANY" */
#define GUARD_BYTES ((size_t)64 * 1024)

struct stack_slab {
	struct stack_slab *next;
	void *base;
	size_t len;
};

static size_t page_size;
/* 1: MADV_GUARD_INSTALL works, 0: it does not (canary mode), -1: untried.
 * Relaxed: every thread that tries gets the same answer. */
_Atomic int weft__guard_madvise = -1;
#define guard_madvise weft__guard_madvise

static size_t pagesz(void)
{
	if (!page_size)
		page_size = (size_t)sysconf(_SC_PAGESIZE);
	return page_size;
}

size_t stack_round_size(size_t size)
{
	size_t pg = pagesz();

	if (size < STACK_MIN_SIZE)
		size = STACK_MIN_SIZE;
	if (size > ((size_t)1 << 40))
		return 0;
	return (size + pg - 1) & ~(pg - 1);
}

static void **link_of(void *lo, size_t size)
{
	return (void **)((char *)lo + size - 16);
}

/* Protects the GUARD_BYTES below lo and, in canary mode, writes the canary
 * at lo. own_mapping: the stack is a mapping of its own (mprotect, which
 * splits the VMA, is acceptable). */
static int guard(char *lo, bool own_mapping)
{
	int g = LOAD(&guard_madvise, relaxed);

	if (g != 0) {
		if (madvise(lo - GUARD_BYTES, GUARD_BYTES, MADV_GUARD_INSTALL) == 0) {
			if (g < 0)
				STORE(&guard_madvise, 1, relaxed);
			return 0;
		}
		if (errno != EINVAL)
			return -errno;
		STORE(&guard_madvise, 0, relaxed);
	}
	if (own_mapping && mprotect(lo - GUARD_BYTES, GUARD_BYTES, PROT_NONE) != 0)
		return -errno;
	*(uint64_t *)lo = CANARY ^ (uintptr_t)lo;
	return 0;
}

bool weft__stack_canary_intact(const void *lo)
{
	return *(const uint64_t *)lo == (CANARY ^ (uintptr_t)lo);
}

static void *map(size_t len)
{
	void *p = weft__fail_point(WEFT_FAIL_MMAP)
			  ? MAP_FAILED
			  : mmap(NULL, len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
					 MAP_STACK,
				 -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

int stack_pool_init(struct stack_pool *p, size_t stack_size)
{
	memset(p, 0, sizeof(*p));
	p->stack_size = stack_size;
	return -pthread_mutex_init(&p->lock, NULL);
}

void stack_pool_destroy(struct stack_pool *p)
{
	struct stack_slab *s, *next;

	for (s = p->slabs; s; s = next) {
		next = s->next;
		munmap(s->base, s->len);
		free(s);
	}
	p->slabs = NULL;
	pthread_mutex_destroy(&p->lock);
}

/* Maps a new slab and links all its stacks onto *list. Pool lock held. */
static int new_slab(struct stack_pool *p)
{
	size_t sz = p->stack_size, stride = sz + GUARD_BYTES;
	size_t len = stride * SLAB_STACKS;
	struct stack_slab *s = malloc(sizeof(*s));
	char *base;

	if (!s)
		return -ENOMEM;
	base = map(len);
	if (!base) {
		free(s);
		return -ENOMEM;
	}
	for (size_t i = 0; i < SLAB_STACKS; i++) {
		char *lo = base + i * stride + GUARD_BYTES;
		int rc = guard(lo, false);

		if (rc < 0) {
			munmap(base, len);
			free(s);
			return rc;
		}
		*link_of(lo, sz) = p->free;
		p->free = lo;
	}
	p->nfree += SLAB_STACKS;
	s->base = base;
	s->len = len;
	s->next = p->slabs;
	p->slabs = s;
	return 0;
}

/* Moves up to n stacks from the pool into the cache. */
static int refill(struct stack_pool *p, struct stack_cache *c, size_t n)
{
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	if (!p->free)
		rc = new_slab(p);
	while (n-- && p->free) {
		void *lo = p->free;

		p->free = *link_of(lo, p->stack_size);
		p->nfree--;
		*link_of(lo, p->stack_size) = c->free;
		c->free = lo;
		c->n++;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int stack_get(struct stack_pool *p, struct stack_cache *c, size_t size,
	      void **lo)
{
	if (size == 0 || size == p->stack_size) {
		if (!c->free && refill(p, c, CACHE_REFILL) < 0 && !c->free) {
			STORE(&p->exhausted, true, relaxed);
			return -ENOMEM;
		}
		*lo = c->free;
		c->free = *link_of(c->free, p->stack_size);
		c->n--;
		return 0;
	}
	char *m = map(size + GUARD_BYTES);

	if (!m || guard(m + GUARD_BYTES, true) < 0) {
		if (m)
			munmap(m, size + GUARD_BYTES);
		STORE(&p->exhausted, true, relaxed);
		return -ENOMEM;
	}
	*lo = m + GUARD_BYTES;
	return 0;
}

void stack_put(struct stack_pool *p, struct stack_cache *c, void *lo,
	       size_t size)
{
	if (LOAD(&p->exhausted, relaxed))
		STORE(&p->exhausted, false, relaxed);
	if (size != p->stack_size) {
		munmap((char *)lo - GUARD_BYTES, size + GUARD_BYTES);
		return;
	}
	*link_of(lo, size) = c->free;
	c->free = lo;
	if (++c->n > CACHE_MAX) {
		/* Give half back so other workers can reuse them. */
		pthread_mutex_lock(&p->lock);
		while (c->n > CACHE_MAX / 2) {
			void *s = c->free;

			c->free = *link_of(s, size);
			c->n--;
			*link_of(s, size) = p->free;
			p->free = s;
			p->nfree++;
		}
		pthread_mutex_unlock(&p->lock);
	}
}

void stack_cache_drain(struct stack_pool *p, struct stack_cache *c)
{
	pthread_mutex_lock(&p->lock);
	while (c->free) {
		void *s = c->free;

		c->free = *link_of(s, p->stack_size);
		*link_of(s, p->stack_size) = p->free;
		p->free = s;
		p->nfree++;
	}
	c->n = 0;
	pthread_mutex_unlock(&p->lock);
}

/* --- overflow reports ---------------------------------------------------- */

static struct sigaction old_segv, old_bus;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

static size_t fmt_u64(char *buf, uint64_t v)
{
	char tmp[24];
	size_t n = 0, i = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		buf[i++] = tmp[--n];
	return i;
}

/* Async-signal-safe: formats with no allocation and writes once. */
void weft__stack_overflow_abort(const struct weft_task *t)
{
	char msg[256];
	size_t n = 0;
	const char *name = t->name ? t->name : "(unnamed)";

#define PUT(s)                                                          \
	do {                                                            \
		const char *s_ = (s);                                   \
		while (*s_ && n < sizeof(msg) - 2)                      \
			msg[n++] = *s_++;                               \
	} while (0)
	PUT("weft: stack overflow in task \"");
	PUT(name);
	PUT("\" (id ");
	n += fmt_u64(msg + n, t->id);
	PUT(", stack ");
	n += fmt_u64(msg + n, t->run->stack_bytes);
	PUT(" bytes)");
#undef PUT
	msg[n++] = '\n';
	(void)!write(STDERR_FILENO, msg, n);
	signal(SIGABRT, SIG_DFL);
	abort();
}

static void chain(struct sigaction *old, int sig, siginfo_t *si, void *uc)
{
	if (old->sa_flags & SA_SIGINFO) {
		if (old->sa_sigaction) {
			old->sa_sigaction(sig, si, uc);
			return;
		}
	} else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
		return;
	}
	/* Default action: reinstall it and return; the faulting instruction
	 * runs again and the kernel delivers the signal with SIG_DFL. */
	signal(sig, SIG_DFL);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	const struct weft_task *t = weft__signal_current_task();

	if (t && t->run) {
		uintptr_t lo = (uintptr_t)t->run->co.stack_lo;
		uintptr_t a = (uintptr_t)si->si_addr;

		/* The guard region below the stack. */
		if (a >= lo - GUARD_BYTES && a < lo)
			weft__stack_overflow_abort(t);
	}
	chain(sig == SIGSEGV ? &old_segv : &old_bus, sig, si, uc);
}

static void install_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
}

#define ALTSTACK_SIZE (64 * 1024)

void *stack_thread_init(void)
{
	stack_t ss;
	void *mem;

	pthread_once(&handler_once, install_handler);
	mem = malloc(ALTSTACK_SIZE);
	if (!mem)
		return NULL;
	ss.ss_sp = mem;
	ss.ss_size = ALTSTACK_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) != 0) {
		free(mem);
		return NULL;
	}
	return mem;
}

void stack_thread_fini(void *altstack)
{
	stack_t ss;

	if (!altstack)
		return;
	memset(&ss, 0, sizeof(ss));
	ss.ss_flags = SS_DISABLE;
	sigaltstack(&ss, NULL);
	free(altstack);
}
