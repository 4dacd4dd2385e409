/* SPDX-License-Identifier: MIT */
/*
 * Tasks: spawn, join, detach, cancel, sleep, yield, deadline scopes, shields.
 *
 * A task record has two owners: the run side, which lets go (TF_RELEASED)
 * after the task ended and its stack was released, and the handle, which
 * lets go (TF_DETACHED) in join or detach. Whichever goes last frees the
 * record. Each side sets its bit with an acq_rel RMW; a side that already
 * sees the other's bit (acquire) frees at once without an RMW, which keeps
 * a locked instruction out of the join of a finished task.
 *
 * Join hand-off, built so that the common cases take no lock:
 *  - the ending task stores its result and sets TF_DONE with one release
 *    RMW. Only if that RMW shows TF_JOINWAIT does it take t->lock and wake
 *    the registered joiner under it;
 *  - a joiner that sees TF_DONE (acquire) takes the result at once.
 *    Otherwise it takes t->lock, sets TF_JOINWAIT with an acq_rel RMW and,
 *    if that RMW did not show TF_DONE, registers itself and parks; after any
 *    wake it takes the lock again to deregister. The two RMWs on `flags`
 *    are totally ordered, so either the joiner sees TF_DONE, or the ending
 *    task sees TF_JOINWAIT and then waits for the lock until the joiner is
 *    registered. The waker holds the lock while it wakes, so the waiter (on
 *    the joiner's stack) is alive for as long as anyone can touch it.
 *
 * Several waiters may be registered on one task at once (weft_join, and any
 * number of weft_wait_any callers): t->joiner heads a list of them, linked
 * through their next/prev under t->lock, and the ending task wakes every
 * one. A weft_wait_any caller registers one waiter on each task it waits
 * for, all with the same {task, seq}: whichever task ends first wakes it,
 * and the other wakes of that wait are stale no-ops (sched.c step 5). It
 * then deregisters from every task under each task's lock before it may
 * return, so no waker can reach a dead waiter.
 *
 * Shutdown must find every live task:
 *  - each worker counts tasks spawned on it and tasks completed on it
 *    (atomic counters that only their worker writes), and spawns from
 *    outside are counted in one shared counter, so shutdown knows how many
 *    are alive (rt.c). An outside spawn counts itself and then reads
 *    `closing` (both seq_cst); shutdown stores `closing` before it reads the
 *    counters, so either shutdown counts the task or the spawn sees
 *    `closing`, takes its count back and fails with -ESHUTDOWN;
 *  - a task that was never parked is runnable or running: it sees the
 *    runtime's `closing` flag in weft__check_interrupt at its next
 *    suspending call, or in prepare() if it never started (a task spawned
 *    just as shutdown begins may still start: prepare's read is relaxed;
 *    it is then cancelled at its first suspension);
 *  - a task that parks joins its worker's registry at its first park, and
 *    shutdown cancels everything in the registries. The first park inserts
 *    under the registry lock and then reads `closing`; shutdown sets
 *    `closing` before it walks the registries under the same locks, so
 *    either it sees the task or the task sees `closing` and cancels itself.
 * Keeping never-parked tasks out of the registries keeps a lock and two
 * shared cache lines off the spawn path.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "internal.h"

static inline struct weft_task *current_task(void)
{
	struct worker *w = weft__worker();

	return w ? w->current : NULL;
}

struct weft_task *weft__current(void)
{
	return current_task();
}

/* --- registry ----------------------------------------------------------- */

bool weft__registry_add(struct registry *r, struct weft_task *t)
{
	bool closing;

	spin_lock(&r->lock);
	t->run->reg = r;
	t->run->reg_prev = NULL;
	t->run->reg_next = r->head;
	if (r->head)
		r->head->run->reg_prev = t;
	r->head = t;
	/* With the lock: ordered after a shutdown that already walked this
	 * registry (see the top of this file). */
	closing = LOAD(&t->rt->closing, acquire);
	spin_unlock(&r->lock);
	return closing;
}

static void registry_remove(struct weft_task *t)
{
	struct task_run *run = t->run;
	struct registry *r = run->reg;

	spin_lock(&r->lock);
	if (run->reg_prev)
		run->reg_prev->run->reg_next = run->reg_next;
	else
		r->head = run->reg_next;
	if (run->reg_next)
		run->reg_next->run->reg_prev = run->reg_prev;
	spin_unlock(&r->lock);
}

/* Cancels every task in r (shutdown). */
void weft__registry_cancel_all(struct registry *r)
{
	spin_lock(&r->lock);
	for (struct weft_task *t = r->head; t; t = t->run->reg_next)
		weft_cancel(t); /* alive: unlinked under this lock first */
	spin_unlock(&r->lock);
}

/* Owner-only counter bump, readable by other threads. release: the
 * shutdown sum (rt.c) reads these with acquire. */
static inline void count_up(_Atomic uint64_t *c)
{
	STORE(c, LOAD(c, relaxed) + 1, release);
}

/* --- lifecycle ---------------------------------------------------------- */

/*
 * Task records: a magazine allocator (Bonwick's). Records come from chunks
 * owned by the runtime. Each worker holds a current magazine (a LIFO list of
 * up to TASK_MAG free records, so the next spawn gets a record still in
 * cache) and a list of full magazines; past MAG_MAX full ones it hands all of
 * them to the runtime's depot in O(1), and an empty worker takes one
 * magazine back in O(1). No record list is ever walked: in a burst of a
 * million spawns that walk would be a chain of cache misses. Neither spawn
 * nor join calls malloc in steady state. Chunks are freed with the runtime,
 * so a handle must be joined or detached before weft_rt_free.
 *
 * A free record links to the next one in its magazine through ->next; the
 * head of a magazine keeps the magazine's length in ->id and the next
 * magazine in ->mag_next (both unused while the record is free).
 */
#define TASK_MAG 64
#define MAG_MAX 64
/* After this many small chunks (malloc, TASK_MAG records each), a runtime
 * that keeps spawning gets its records in 2 MiB chunks backed by a
 * transparent huge page when the kernel allows: a burst of a million
 * spawns then takes ~100 page faults instead of ~50,000. */
#define SMALL_CHUNKS 16
#define BIG_CHUNK ((size_t)2 << 20)

struct task_chunk {
	struct task_chunk *next;
	size_t bytes;			/* 0: malloc'd; else mmap'd length */
	size_t n;			/* records */
	struct weft_task t[];		/* 64-byte aligned (the struct's) */
};

#define mag_next(t) ((t)->mag_next)

/* Links records [0, n) of c into magazines and pushes them on the depot.
 * Called with task_lock held. */
static void depot_add_chunk(struct weft_rt *rt, struct task_chunk *c)
{
	c->next = rt->task_chunks;
	rt->task_chunks = c;
	for (size_t m = 0; m < c->n; m += TASK_MAG) {
		size_t end = m + TASK_MAG < c->n ? m + TASK_MAG : c->n;

		for (size_t i = m; i < end; i++) {
			c->t[i].next = i + 1 < end ? &c->t[i + 1] : NULL;
			STORE(&c->t[i].wstate, 0, relaxed);
		}
		c->t[m].id = end - m;
		mag_next(&c->t[m]) = rt->depot;
		rt->depot = &c->t[m];
	}
}

/* Pops a magazine from the depot, or fills the depot from a new chunk.
 * Returns its head (length in ->id) or NULL. Called with task_lock held. */
static struct weft_task *depot_take(struct weft_rt *rt)
{
	struct weft_task *m = rt->depot;
	struct task_chunk *c = NULL;

	if (!m) {
		if (weft__fail_point(WEFT_FAIL_MALLOC))
			return NULL;
		if (rt->nchunks >= SMALL_CHUNKS) {
			void *p = mmap(NULL, BIG_CHUNK, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS |
					       MAP_POPULATE,
				       -1, 0);

			if (p != MAP_FAILED) {
				c = p;
				c->bytes = BIG_CHUNK;
				c->n = (BIG_CHUNK - sizeof(*c)) / sizeof(c->t[0]);
			}
		}
		if (!c) {
			c = aligned_alloc(64, sizeof(*c) +
						 TASK_MAG * sizeof(c->t[0]));
			if (!c)
				return NULL;
			c->bytes = 0;
			c->n = TASK_MAG;
		}
		rt->nchunks++;
		depot_add_chunk(rt, c);
		m = rt->depot;
	}
	rt->depot = mag_next(m);
	return m;
}

static struct weft_task *task_alloc(struct weft_rt *rt, struct worker *w)
{
	struct weft_task *t;

	if (w && w->rt == rt) {
		if (!w->mag) {
			if (w->full) {
				w->mag = w->full;
				w->full = mag_next(w->full);
				w->nfull--;
			} else {
				pthread_mutex_lock(&rt->task_lock);
				w->mag = depot_take(rt);
				pthread_mutex_unlock(&rt->task_lock);
				if (!w->mag)
					return NULL;
			}
			w->mag_n = (uint32_t)w->mag->id;
		}
		t = w->mag;
		w->mag = t->next;
		w->mag_n--;
		return t;
	}
	/* A plain thread: one record off the depot's first magazine. */
	pthread_mutex_lock(&rt->task_lock);
	t = depot_take(rt);
	if (t && t->next) {
		t->next->id = t->id - 1;
		mag_next(t->next) = rt->depot;
		rt->depot = t->next;
	}
	pthread_mutex_unlock(&rt->task_lock);
	return t;
}

static void task_free(struct weft_task *t)
{
	struct weft_rt *rt = t->rt;
	struct worker *w = weft__worker();

	if (w && w->rt == rt) {
		if (w->mag_n == TASK_MAG) {
			/* The current magazine is full: shelve it. */
			w->mag->id = TASK_MAG;
			mag_next(w->mag) = w->full;
			if (!w->full)
				w->full_tail = w->mag;
			w->full = w->mag;
			w->mag = NULL;
			w->mag_n = 0;
			if (++w->nfull > MAG_MAX) {
				pthread_mutex_lock(&rt->task_lock);
				mag_next(w->full_tail) = rt->depot;
				rt->depot = w->full;
				pthread_mutex_unlock(&rt->task_lock);
				w->full = w->full_tail = NULL;
				w->nfull = 0;
			}
		}
		t->next = w->mag;
		w->mag = t;
		w->mag_n++;
		return;
	}
	pthread_mutex_lock(&rt->task_lock);
	t->next = NULL;
	t->id = 1;
	mag_next(t) = rt->depot;
	rt->depot = t;
	pthread_mutex_unlock(&rt->task_lock);
}

void weft__task_release(struct weft_task *t, uint32_t side)
{
	uint32_t other = side ^ (TF_RELEASED | TF_DETACHED);

	/* acquire: pairs with the other side's release RMW below; it will
	 * never touch t again. Otherwise acq_rel: whoever is second sees the
	 * first one's writes. */
	if (!(LOAD(&t->flags, acquire) & other) &&
	    !(FOR(&t->flags, side, acq_rel) & other))
		return;
	task_free(t);
}

void weft__task_pool_destroy(struct weft_rt *rt)
{
	struct task_chunk *c, *next;

	for (c = rt->task_chunks; c; c = next) {
		next = c->next;
		if (c->bytes)
			munmap(c, c->bytes);
		else
			free(c);
	}
	rt->task_chunks = NULL;
	rt->depot = NULL;
	pthread_mutex_destroy(&rt->task_lock);
}

/* --- joiners: under t->lock (see the top of this file) ------------------ */

static void joiner_add(struct weft_task *t, struct weft__waiter *w)
{
	w->prev = NULL;
	w->next = t->joiner;
	if (t->joiner)
		t->joiner->prev = w;
	t->joiner = w;
}

static void joiner_remove(struct weft_task *t, struct weft__waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		t->joiner = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
}

/* Wakes one registered waiter. A plain thread in weft_wait_any registers
 * several waiters that share one futex word, which `data` points to. */
static void joiner_wake(struct weft__waiter *w)
{
	_Atomic uint32_t *f = w->data;

	if (w->task || !f) {
		weft__waiter_wake(w, WAKE_OK);
		return;
	}
	/* release: pairs with the acquire loop in weft_wait_any. */
	STORE(f, 1, release);
	weft__futex_wake(f, 1);
}

void weft__task_complete(struct weft_task *t, int result)
{
	struct weft_rt *rt = t->rt;
	uint32_t f;

	t->result = result;
	/* release: publishes result to a joiner that sees TF_DONE. acquire:
	 * if TF_JOINWAIT is set, its registration is under t->lock. */
	f = FOR(&t->flags, TF_DONE, acq_rel);
	if (f & TF_JOINWAIT) {
		spin_lock(&t->lock);
		/* Woken waiters deregister under this lock, after we drop
		 * it: the list cannot change while we walk it. */
		for (struct weft__waiter *w = t->joiner; w; w = w->next)
			joiner_wake(w);
		spin_unlock(&t->lock);
	}
	if (t->run) {
		if (t->run->reg)
			registry_remove(t);
		free(t->run->outer);
		t->run->outer = NULL;
	}
	if (t == rt->root)
		/* weft_run's first task returned: like asyncio.run, nothing
		 * else may start from now on (task.c, shutdown). */
		STORE(&rt->closing, 1, seq_cst);
	count_up(&weft__worker()->n_completed);
	/* If this sees `closing`, shutdown is (or will be) waiting: bump
	 * the epoch it sleeps on. There is deliberately no fence between the
	 * count and this load (it would cost every task a full barrier): in
	 * the store-buffering case neither side sees the other, and shutdown
	 * finds the count at its next poll (rt.c, SHUTDOWN_POLL_NS). */
	if (LOAD(&rt->closing, seq_cst)) {
		FADD(&rt->exit_epoch, 1, seq_cst);
		weft__futex_wake(&rt->exit_epoch, 1);
	}
}

static uint64_t next_id(struct weft_rt *rt, struct worker *w)
{
	static _Atomic uint64_t ids = 1;

	if (!w || w->rt != rt)
		return FADD(&ids, 1, relaxed);
	if (w->id_next == w->id_end) {
		w->id_next = FADD(&ids, 1024, relaxed);
		w->id_end = w->id_next + 1024;
	}
	return w->id_next++;
}

/* Spawns onto rt; w is the calling thread's worker (NULL for a plain
 * thread, or a worker of another runtime). */
/* An outside spawn that will not happen after all takes its count back;
 * a shutdown that saw the count is waiting on the epoch. */
static void ext_uncount(struct weft_rt *rt)
{
	FSUB(&rt->ext_spawned, 1, seq_cst);
	FADD(&rt->exit_epoch, 1, seq_cst);
	weft__futex_wake(&rt->exit_epoch, 1);
}

static int spawn(struct weft_rt *rt, struct worker *w, weft_task **out,
		 const weft_spawn_opts *opts, int (*fn)(void *), void *arg,
		 bool root)
{
	size_t stack = 0;
	const char *name = NULL;
	struct weft_task *t;
	bool local_rt = w && w->rt == rt;
	bool local = local_rt && w->current;

	if (!fn)
		return -EINVAL;
	if (opts) {
		for (size_t i = 0; i < 4; i++)
			if (opts->reserved[i])
				return -EINVAL;
		if (opts->stack_size) {
			stack = stack_round_size(opts->stack_size);
			if (!stack)
				return -EINVAL;
			if (stack == rt->stack_size)
				stack = 0;
		}
		name = opts->name;
	}
	if (LOAD(&rt->stacks.exhausted, relaxed))
		return -ENOMEM;
	if (!local_rt) {
		/* Counted before it is visible, so its completion is counted
		 * after; seq_cst: a Dekker pair with shutdown (top of file). */
		FADD(&rt->ext_spawned, 1, seq_cst);
		if (LOAD(&rt->closing, seq_cst)) {
			ext_uncount(rt);
			return -ESHUTDOWN;
		}
	}
	t = task_alloc(rt, w);
	if (!t) {
		if (!local_rt)
			ext_uncount(rt);
		return -ENOMEM;
	}
	/* Lines 0 and 1 only; prepare() initialises the rest. The wait
	 * sequence carries on from the record's previous task, so no stale
	 * {task, seq} can ever match a wait of this one. */
	t->next = NULL;
	STORE(&t->wstate,
	      LOAD(&t->wstate, relaxed) & ~(((uint64_t)1 << WS_SEQ_SHIFT) - 1),
	      relaxed);
	t->rt = rt;
	t->fn = fn;
	t->arg = arg;
	t->joiner = NULL;
	t->result = 0;
	STORE(&t->flags, out ? 0 : TF_DETACHED, relaxed);
	t->lock = (spinlock)SPINLOCK_INIT;
	t->id = next_id(rt, w);
	t->name = name;
	t->stack_req = stack;
	t->run = NULL;
	if (local_rt)
		count_up(&w->n_spawned); /* before it is visible, as above */
	if (root)
		rt->root = t;
	if (out)
		*out = t;
	/* The queue push publishes the record to the worker that runs it. */
	weft__schedule(t, local);
	return 0;
}

int weft_spawn_ex(weft_task **out, const weft_spawn_opts *opts,
		  int (*fn)(void *), void *arg)
{
	struct worker *w = weft__worker();

	if (!w || !w->current)
		return -EPERM;
	return spawn(w->rt, w, out, opts, fn, arg, false);
}

int weft_spawn(weft_task **out, int (*fn)(void *), void *arg)
{
	return weft_spawn_ex(out, NULL, fn, arg);
}

static int rt_spawn(weft_rt *rt, weft_task **out, int (*fn)(void *),
		    void *arg, bool root)
{
	if (!rt)
		return -EINVAL;
	if (LOAD(&rt->closing, acquire))
		return -ESHUTDOWN;
	return spawn(rt, weft__worker(), out, NULL, fn, arg, root);
}

int weft_rt_spawn(weft_rt *rt, weft_task **out, int (*fn)(void *), void *arg)
{
	return rt_spawn(rt, out, fn, arg, false);
}

int weft__rt_spawn_root(weft_rt *rt, weft_task **out, int (*fn)(void *),
			void *arg)
{
	return rt_spawn(rt, out, fn, arg, true);
}

/* Blocks a plain thread until its waiter is woken. */
static void thread_wait(struct weft__waiter *wt)
{
	/* acquire: pairs with the release in weft__waiter_wake. */
	while (!LOAD(&wt->futex, acquire))
		weft__futex_wait(&wt->futex, 0, UINT64_MAX);
}

int weft_join(weft_task *t, int *result)
{
	return weft__join(t, result, NULL);
}

int weft__join(weft_task *t, int *result, bool *started)
{
	struct weft_task *self = current_task();
	struct weft__waiter wt = { .task = self };
	int rc = 0;

	if (!t)
		return -EINVAL;
	if (t == self)
		return -EDEADLK;
	/* acquire: pairs with the release in weft__task_complete. */
	if (LOAD(&t->flags, acquire) & TF_DONE) {
		if ((rc = weft__check_interrupt(self)))
			return rc;
		weft__coop_ready();
		goto done;
	}
	for (;;) {
		if ((rc = weft__check_interrupt(self)))
			return rc; /* the handle stays valid */
		spin_lock(&t->lock);
		if (FOR(&t->flags, TF_JOINWAIT, acq_rel) & TF_DONE) {
			spin_unlock(&t->lock);
			break;
		}
		if (self)
			wt.seq = weft__park_begin(self);
		joiner_add(t, &wt);
		spin_unlock(&t->lock);

		if (self)
			rc = weft__park_commit(self, UINT64_MAX);
		else
			thread_wait(&wt);

		spin_lock(&t->lock);
		joiner_remove(t, &wt);
		bool done = LOAD(&t->flags, acquire) & TF_DONE;
		spin_unlock(&t->lock);
		if (done)
			break; /* even if a deadline fired too: no result lost */
		if (self && rc)
			return rc;
	}
done:
	if (result)
		*result = t->result;
	if (started)
		*started = LOAD(&t->flags, relaxed) & TF_STARTED;
	weft__task_release(t, TF_DETACHED);
	return 0;
}

/* Waiters of a weft_wait_any that live on the caller's stack. */
#define WAIT_ANY_STACK 8

/* The lowest index of an ended task, or -1. acquire: pairs with the release
 * in weft__task_complete (the caller may join the task at once). */
static int first_done(size_t n, weft_task *const tasks[])
{
	for (size_t i = 0; i < n; i++)
		if (LOAD(&tasks[i]->flags, acquire) & TF_DONE)
			return (int)i;
	return -1;
}

int weft_wait_any(size_t n, weft_task *const tasks[])
{
	struct weft_task *self = current_task();
	struct weft__waiter stackw[WAIT_ANY_STACK], *ws = stackw;
	_Atomic uint32_t woken; /* a plain thread's one futex word */
	size_t i, reg;
	int rc, idx;

	if (n == 0 || !tasks || n > INT_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!tasks[i])
			return -EINVAL;
		if (tasks[i] == self)
			return -EDEADLK;
	}
	if ((rc = weft__check_interrupt(self)))
		return rc;
	idx = first_done(n, tasks);
	if (idx >= 0) {
		weft__coop_ready();
		return idx;
	}
	if (n > WAIT_ANY_STACK) {
		ws = malloc(n * sizeof(*ws));
		if (!ws)
			return -ENOMEM;
	}
	for (;;) {
		uint64_t seq = 0;
		bool early = false;

		/* Relaxed: no waker can see it before the first waiter is
		 * published under a task's lock. */
		STORE(&woken, 0, relaxed);
		if (self)
			seq = weft__park_begin(self);
		for (reg = 0; reg < n; reg++) {
			struct weft_task *t = tasks[reg];

			spin_lock(&t->lock);
			/* As in weft__join: the acq_rel RMW orders us against
			 * the ending task's TF_DONE RMW. */
			if (FOR(&t->flags, TF_JOINWAIT, acq_rel) & TF_DONE) {
				spin_unlock(&t->lock);
				early = true;
				break;
			}
			ws[reg].task = self;
			ws[reg].seq = seq;
			ws[reg].status = 0;
			ws[reg].data = self ? NULL : (void *)&woken;
			STORE(&ws[reg].futex, 0, relaxed);
			joiner_add(t, &ws[reg]);
			spin_unlock(&t->lock);
		}
		rc = 0;
		if (early) {
			/* Ends the park we began: a task already ended. */
			if (self)
				weft__wake(self, seq, WAKE_OK, false);
		} else if (self) {
			rc = weft__park_commit(self, UINT64_MAX);
		} else {
			/* acquire: pairs with the release in joiner_wake. */
			while (!LOAD(&woken, acquire))
				weft__futex_wait(&woken, 0, UINT64_MAX);
		}
		for (i = 0; i < reg; i++) {
			spin_lock(&tasks[i]->lock);
			joiner_remove(tasks[i], &ws[i]);
			spin_unlock(&tasks[i]->lock);
		}
		/* An ended task wins over a cancellation or timeout that
		 * raced with it: nothing is consumed either way. */
		idx = first_done(n, tasks);
		if (idx >= 0 || rc)
			break;
	}
	if (ws != stackw)
		free(ws);
	return idx >= 0 ? idx : rc;
}

void weft_detach(weft_task *t)
{
	if (!t)
		return;
	weft__task_release(t, TF_DETACHED);
}

int weft_cancel(weft_task *t)
{
	uint32_t f;
	uint64_t s;

	if (!t)
		return -EINVAL;
	/* seq_cst: Dekker with weft__park_begin (sched.c step 1). */
	f = FOR(&t->flags, TF_CANCELLED, seq_cst);
	if (f & TF_DONE)
		return -ESRCH;
	s = LOAD(&t->wstate, seq_cst);
	if ((s & WS_STATE_MASK) != WS_RUNNING && (s & WS_CANCELLABLE))
		weft__wake(t, s >> WS_SEQ_SHIFT, WAKE_CANCELED, false);
	return 0;
}

weft_task *weft_current(void)
{
	return current_task();
}

weft_rt *weft_current_rt(void)
{
	struct weft_task *t = current_task();

	return t ? t->rt : NULL;
}

uint64_t weft_task_id(const weft_task *t)
{
	return t ? t->id : 0;
}

int weft_worker_id(void)
{
	struct worker *w = weft__worker();

	return w ? w->index : -1;
}

int weft_yield(void)
{
	struct weft_task *t = current_task();
	int rc;

	if (!t)
		return -EPERM;
	rc = weft__check_interrupt(t);
	if (rc)
		return rc;
	weft__yield_now(t);
	/* Cancelled or expired while it waited for its turn? */
	return weft__check_interrupt(t);
}

int weft_sleep(uint64_t ns)
{
	struct weft_task *t = current_task();
	int rc;

	if (!t) {
		struct timespec ts = { (time_t)(ns / 1000000000u),
				       (long)(ns % 1000000000u) };

		while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
			;
		return 0;
	}
	rc = weft__check_interrupt(t);
	if (rc)
		return rc;
	if (ns == 0) {
		weft__yield_now(t);
		return weft__check_interrupt(t);
	}
	uint64_t now = weft_now();
	uint64_t at = ns > UINT64_MAX - now ? UINT64_MAX - 1 : now + ns;

	weft__park_begin(t);
	return weft__park_commit(t, at);
}

int weft_timeout_begin(uint64_t ns)
{
	struct weft_task *t = current_task();
	uint64_t now, d;

	if (!t)
		return -EPERM;
	if (t->run->ndeadlines == WEFT_TIMEOUT_DEPTH)
		return -ENOSPC;
	if (!t->run->outer) {
		t->run->outer = malloc(WEFT_TIMEOUT_DEPTH * sizeof(*t->run->outer));
		if (!t->run->outer)
			return -ENOMEM;
	}
	now = weft_now();
	d = ns > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + ns;
	t->run->outer[t->run->ndeadlines++] = t->run->deadline;
	if (d < t->run->deadline)
		t->run->deadline = d;
	return 0;
}

int weft_timeout_end(void)
{
	struct weft_task *t = current_task();
	bool expired;

	if (!t)
		return -EPERM;
	if (t->run->ndeadlines == 0)
		return -EINVAL;
	expired = t->run->deadline != UINT64_MAX && weft_now() >= t->run->deadline;
	t->run->deadline = t->run->outer[--t->run->ndeadlines];
	return expired ? 1 : 0;
}

int weft_shield_begin(void)
{
	struct weft_task *t = current_task();

	if (!t)
		return -EPERM;
	t->run->shield++;
	return 0;
}

int weft_shield_end(void)
{
	struct weft_task *t = current_task();

	if (!t)
		return -EPERM;
	if (t->run->shield == 0)
		return -EINVAL;
	t->run->shield--;
	return 0;
}
