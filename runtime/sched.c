/* SPDX-License-Identifier: MIT */
/*
 * The scheduler: worker threads, task switching, and the park/wake protocol.
 *
 * Switching. A task that suspends does not return to a scheduler loop if it
 * can avoid it: switch_out() picks the next local task and switches to it
 * directly. What must happen once the old task's stack is no longer in use
 * (requeue it after a yield, publish that it is off-CPU after a park, free
 * its stack after it ended) is left in w->pend_* and done by after_switch()
 * on the next coroutine. Only when nothing is runnable locally does it
 * switch to the worker's scheduler context (the thread's own stack), which
 * steals, fires timers and parks.
 *
 * Park/wake protocol for a task t (one wait has one sequence number `seq`):
 *  1. t: weft__park_begin() stores wstate = {seq, PARKING, CANCELLABLE if
 *     not shielded} (seq_cst), then re-reads its CANCELLED flag: weft_cancel
 *     sets the flag then reads wstate (seq_cst), so one of them sees the
 *     other (Dekker) and a cancellation is never missed.
 *  2. t registers a waiter {t, seq} with whatever it waits for, under that
 *     object's lock, arms a timer if it has a deadline, and switches away.
 *  3. After the switch, on the next coroutine, the worker CASes
 *     PARKING -> WAITING (release: the saved context is published).
 *  4. A waker CASes {seq, PARKING or WAITING} -> {seq, RUNNING, reason}
 *     (acq_rel). Exactly one waker wins. If it saw WAITING, t is off-CPU
 *     and the winner queues it. If it saw PARKING, the CAS of step 3 fails
 *     and that worker queues t instead. Either way t is queued exactly once.
 *  5. A waker with a stale seq, or one that finds RUNNING, does nothing, so
 *     late wakes (a timer that fires after a join completed) are harmless.
 *     Wakers must keep t alive while they wake it: they do so under the lock
 *     that t takes to deregister its waiter before it may return.
 *  6. Resumed, t disarms its timer and returns the wake reason.
 *
 * Timers: a worker (or the monitor, for a worker stuck in one task) fires
 * the heap's expired entries under the heap lock and wakes them there; a
 * task woken by something else disarms under the same lock before it can
 * end, so the timer never touches a freed task.
 *
 * TLS and migration: a task can resume on another thread after any switch,
 * and compilers may keep a thread-local variable's address in a register
 * across calls. All of weft reads its per-worker state through
 * weft__worker(), an out-of-line function the compiler cannot fold, and
 * re-reads it after every switch.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include "internal.h"
#include "../io/driver.h"

static __thread struct worker *tls_worker
	__attribute__((tls_model("initial-exec")));

__attribute__((noinline)) struct worker *weft__worker(void)
{
	struct worker *w = tls_worker;

	/* An opaque asm on the result: the compiler can prove nothing about
	 * this function (not pure, not const), so it calls it each time. */
	__asm__ volatile("" : "+r"(w));
	return w;
}

const struct weft_task *weft__signal_current_task(void)
{
	struct worker *w = tls_worker;

	return w ? w->current : NULL;
}

static void spill_to_inject(void *ctx, struct weft_task *const *v, size_t n)
{
	struct weft_rt *rt = ctx;

	inject_push_many(&rt->inject, v, n);
	idle_notify_hint(rt); /* the pusher is awake and polls inject too */
}

static inline void push_local(struct worker *w, struct weft_task *t)
{
	rq_push_local(&w->rq, t, spill_to_inject, w->rt);
}

/* Work this worker queued on its own queue could keep another busy: see
 * idle.c, "Local pushes". With a single worker there is no other. The hint
 * is one relaxed load of a line that changes only when a worker parks,
 * wakes or starts or stops searching, so it is checked on every push: a
 * task that spawns in a loop without ever switching must still wake the
 * others. */
static inline void notify_others(struct worker *w)
{
	if (w->rt->nworkers > 1 && !w->reaping)
		idle_notify_hint(w->rt);
}

/* The same for work that this worker's own I/O brought in (idle.c,
 * "Workers waiting for their own I/O"). */
static inline void notify_free(struct worker *w)
{
	if (w->rt->nworkers > 1 && !w->reaping)
		idle_notify_free(w->rt);
}

/*
 * The LIFO slot: the task a worker runs next, the last one it woke or
 * spawned. Other workers do not steal it (it would cost the message-passing
 * locality it is for), but the monitor takes it from a worker stuck in one
 * long task (monitor.c), so that a task woken or spawned just before a long
 * computation runs elsewhere, as Go's sysmon does with runnext.
 *
 * Invariant: every access that moves a task into or out of the slot is an
 * atomic exchange, so the owner and the monitor never both get the same
 * task: a task leaves the slot exactly once. (Relaxed loads only ask
 * whether it looks empty: a take skips the locked exchange, and leaves the
 * line alone, when it does.) The exchange costs the owner about 1 ns a hop
 * on the chain and ping-pong benchmarks, less than an asymmetric protocol
 * with plain accesses on the owner's side and membarrier(2) on the
 * monitor's (bench/RESULTS.md). Orders: a put is release and a take
 * acquire, which publishes the task to the monitor (the inject queue takes
 * it on from there). The owner's own takes need no acquire (they read what
 * it stored, or the monitor's NULL); on x86 the exchange is the same
 * instruction either way.
 */
static inline struct weft_task *lifo_put(struct worker *w, struct weft_task *t)
{
	return XCHG(&w->lifo, t, release);
}

static inline struct weft_task *lifo_take(struct worker *w)
{
	if (!LOAD(&w->lifo, relaxed))
		return NULL;
	return XCHG(&w->lifo, NULL, acquire);
}

struct weft_task *weft__lifo_take(struct worker *v)
{
	return lifo_take(v);
}

void weft__schedule(struct weft_task *t, bool lifo)
{
	struct weft_rt *rt = t->rt;
	struct worker *w = weft__worker();

	if (w && w->rt == rt) {
		if (lifo && w->current) {
			/* Run t next here (message-passing latency). This
			 * worker is awake, so only a displaced task is news to
			 * the others. */
			t = lifo_put(w, t);
			if (!t)
				return;
		}
		push_local(w, t);
		notify_others(w);
	} else {
		inject_push(&rt->inject, t);
		idle_notify(rt); /* idle.c rule 1 */
	}
}

bool weft__wake(struct weft_task *t, uint64_t seq, int reason, bool lifo)
{
	uint64_t s = LOAD(&t->wstate, acquire);

	for (;;) {
		uint32_t st = (uint32_t)s & WS_STATE_MASK;
		uint64_t ns;

		if ((s >> WS_SEQ_SHIFT) != seq || st == WS_RUNNING)
			return false;
		if (reason == WAKE_CANCELED && !(s & WS_CANCELLABLE))
			return false;
		ns = (s & ~(uint64_t)(WS_STATE_MASK | WS_REASON_MASK)) |
		     WS_RUNNING | ((uint64_t)reason << WS_REASON_SHIFT);
		/* Step 4. release: what the waker wrote for t (a result, a
		 * message) is visible when t reads its wake reason (acquire in
		 * park_commit). acquire: pairs with the release of step 3, so
		 * t's saved context is complete before we queue it. */
		if (CAS(&t->wstate, &s, ns, acq_rel, acquire)) {
			if (st == WS_WAITING)
				weft__schedule(t, lifo);
			return true;
		}
	}
}

void weft__waiter_wake(struct weft__waiter *wt, int reason)
{
	if (wt->task) {
		weft__wake(wt->task, wt->seq, reason, true);
		return;
	}
	/* release: pairs with the acquire loop in the thread's wait. */
	STORE(&wt->futex, 1, release);
	weft__futex_wake(&wt->futex, 1);
}

/* --- picking the next task ---------------------------------------------- */

/* Gives t a stack and a context the first time it is picked. A task
 * cancelled before it ever ran ends here without running. Returns false if
 * t ended instead. Always inline: a small change to next_local made gcc 12
 * stop inlining it, and the call cost 1-4 ns a pick (chain, ping-pong). */
static inline __attribute__((always_inline)) bool
prepare(struct worker *w, struct weft_task *t)
{
	/* acquire: pairs with weft_cancel's seq_cst RMW; a cancel that is
	 * ordered before this load keeps t from ever running. */
	uint32_t f = LOAD(&t->flags, acquire);
	struct task_run *r;
	size_t size;
	void *lo;

	if (f & TF_STARTED)
		return true;
	t->run = NULL;
	if ((f & TF_CANCELLED) || LOAD(&w->rt->closing, relaxed)) {
		weft__task_complete(t, -ECANCELED);
		weft__task_release(t, TF_RELEASED);
		return false;
	}
	if (stack_get(&w->rt->stacks, &w->stacks, t->stack_req, &lo) < 0) {
		weft__task_complete(t, -ENOMEM);
		weft__task_release(t, TF_RELEASED);
		return false;
	}
	size = t->stack_req ? t->stack_req : w->rt->stack_size;
	r = (struct task_run *)((char *)lo + size - RUN_RESERVE);
#ifdef WEFT_ASAN
	__asan_unpoison_memory_region(r, RUN_RESERVE);
#endif
	r->task = t;
	r->stack_bytes = size;
	r->reg = NULL;
	r->wseq = LOAD(&t->wstate, relaxed) >> WS_SEQ_SHIFT;
	r->heap_idx = -1;
	r->armed = NULL;
	r->deadline = UINT64_MAX;
	r->outer = NULL;
	r->shield = 0;
	r->ndeadlines = 0;
	coro_make(&r->co, lo, size - RUN_RESERVE, weft__task_entry, t, t->name);
	t->run = r;
	FOR(&t->flags, TF_STARTED, relaxed);
	return true;
}

/* Takes one task from the inject queue, or with `batch` a fair share of it
 * into the local queue as well (when the local queue ran dry). */
static struct weft_task *pop_inject(struct worker *w, bool batch)
{
	struct weft_rt *rt = w->rt;
	struct weft_task *v[64];
	size_t n, max = 1;

	if (inject_empty(&rt->inject))
		return NULL;
	if (batch) {
		max = LOAD(&rt->inject.len, relaxed) / (size_t)rt->nworkers + 1;
		if (max > 64)
			max = 64;
	}
	n = inject_pop_many(&rt->inject, v, max);
	if (n == 0)
		return NULL;
	for (size_t i = 1; i < n; i++)
		push_local(w, v[i]);
	return v[0];
}

static void maintenance(struct worker *w)
{
	uint64_t next = timer_next(&w->timers);

	/* Not stuck (monitor.c). */
	STORE(&w->beat, LOAD(&w->beat, relaxed) + 1, relaxed);
	if (next != UINT64_MAX)
		timer_fire_expired(&w->timers, weft_now());
	if (weft__io_busy(w))
		weft__io_poll(w); /* I/O cannot be starved either */
	/* Bounds a missed hint (idle.c). Work queued before the previous
	 * maintenance and still waiting means this worker is behind: then
	 * even a worker parked for its own I/O is asked to help. */
	if (rq_holds_before(&w->rq, w->backlog_mark))
		notify_others(w);
	else if (rq_len(&w->rq) > 0)
		notify_free(w);
	w->backlog_mark = rq_mark(&w->rq);
	/* The next maintenance comes a whole interval after this one, also
	 * when this one ran out of turn (after a park, or for a due timer):
	 * otherwise the tasks that woke this worker from its park, still
	 * queued a tick later, would read as a backlog, and every wake-up
	 * would ask an IO worker to help: 800 notifies a second under the
	 * 2-worker HTTP benchmark, each trading connections between rings. */
	w->tick = 0;
}

static struct weft_task *next_local(struct worker *w)
{
	for (;;) {
		struct weft_task *t = NULL;

		if (++w->tick == INJECT_INTERVAL) {
			/* Fairness: timers and the inject queue cannot be
			 * starved by a busy local queue. */
			maintenance(w);
			t = pop_inject(w, false);
		}
		if (!t && (t = lifo_take(w))) {
			if (w->lifo_streak < LIFO_MAX_STREAK) {
				w->lifo_streak++;
			} else {
				/* Two tasks waking each other would otherwise
				 * keep the queue waiting forever. */
				push_local(w, t);
				t = NULL;
			}
		}
		if (!t) {
			t = rq_pop_local(&w->rq);
			if (t)
				w->lifo_streak = 0;
		}
		if (!t)
			t = pop_inject(w, true);
		if (!t) {
			/* Local work ran dry: the moment to hand the queued
			 * submissions to the kernel and reap what completed
			 * (one system call for the whole batch). */
			if (!weft__io_busy(w) || weft__io_poll(w) == 0)
				return NULL;
			continue;
		}
		if (prepare(w, t))
			return t;
	}
}

/* How long an idle worker keeps looking for work before it parks: long
 * enough to bridge the gaps of a producer that spawns or wakes in a loop
 * (each park and wake costs both sides a futex syscall), short enough not
 * to matter to an idle process. */
#define SEARCH_SPIN_NS 20000

/* One pass over the other workers' queues, from a random one, then the
 * inject queue. */
static struct weft_task *steal_once(struct worker *w)
{
	struct weft_rt *rt = w->rt;
	int n = rt->nworkers, start;

	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 17;
	w->rng ^= w->rng << 5;
	start = (int)(w->rng % (uint32_t)n);
	for (int i = 0; i < n; i++) {
		struct worker *v = rt->workers[(start + i) % n];
		struct weft_task *t;

		if (v == w)
			continue;
		t = rq_steal_into(&v->rq, &w->rq);
		if (t)
			return t;
	}
	return pop_inject(w, true);
}

static struct weft_task *steal(struct worker *w)
{
	struct weft_rt *rt = w->rt;
	uint64_t until = 0;
	struct weft_task *t;

	if (rt->nworkers == 1)
		return pop_inject(w, true);
	/* A first pass before counting ourselves as searching: a worker that
	 * runs dry between two steals of a steady stream would otherwise
	 * update the shared idle state twice per steal, and every producer's
	 * notify check reads that line. Not searching here is safe: to the
	 * idle protocol this worker is simply unparked and busy. */
	t = steal_once(w);
	/* A worker with I/O in flight does not spin: it waits in its driver,
	 * which a completion wakes at once (spinning would take the core
	 * from whoever is about to produce that completion). */
	if (t || weft__io_busy(w) || !idle_begin_search(rt, w))
		return t;
	for (unsigned round = 0;; round++) {
		t = steal_once(w);
		if (t)
			return t;
		if (timer_next(&w->timers) != UINT64_MAX)
			return NULL; /* go and fire timers, park until due */
		if (weft__io_ready_hint(w))
			return NULL; /* completions to reap */
		if (LOAD(&rt->stop, relaxed))
			return NULL;
		if (round == 0)
			until = weft_now() + SEARCH_SPIN_NS;
		else if (weft_now() >= until)
			return NULL;
		for (int k = 0; k < 64; k++)
			cpu_relax();
	}
}

/* --- switching ---------------------------------------------------------- */

static void after_switch(struct worker *w)
{
	struct weft_task *t = w->pend_task;
	enum pending_op op = w->pend_op;

	w->pend_op = PEND_NONE;
	w->pend_task = NULL;
	w->budget = COOP_BUDGET;
	switch (op) {
	case PEND_NONE:
		break;
	case PEND_YIELD:
		push_local(w, t);
		break;
	case PEND_PARK: {
		uint64_t s = LOAD(&t->wstate, relaxed);

		while ((s & WS_STATE_MASK) == WS_PARKING) {
			/* Step 3. release: publishes t's saved context to the
			 * waker that will queue it (acquire in weft__wake). */
			if (CAS(&t->wstate, &s,
				(s & ~(uint64_t)WS_STATE_MASK) | WS_WAITING,
				release, acquire))
				return;
		}
		/* Woken while switching away: queueing it is ours. Mostly
		 * by a completion that the switch itself reaped. */
		push_local(w, t);
		notify_free(w);
		break;
	}
	case PEND_EXIT:
		coro_release(&t->run->co);
		stack_put(&w->rt->stacks, &w->stacks, t->run->co.stack_lo,
			  t->run->stack_bytes);
		weft__task_release(t, TF_RELEASED);
		break;
	}
}

/* Leaves the running task t with `op` pending and resumes the next local
 * task, or the scheduler. Returns when t is resumed (maybe elsewhere). */
static void switch_out(struct worker *w, struct weft_task *t,
		       enum pending_op op)
{
	struct weft_task *next;

	if (weft_unlikely(!stack_canary_ok(t->run->co.stack_lo)))
		weft__stack_overflow_abort(t);
	next = next_local(w);
	if (!next && op == PEND_YIELD)
		return; /* nothing else to run here: carry on */
	w->pend_op = op;
	w->pend_task = t;
	w->current = next;
	coro_switch(&t->run->co, next ? &next->run->co : &w->sched,
		    op == PEND_EXIT);
	/* Resumed, maybe on another thread: re-read the worker. */
	after_switch(weft__worker());
}

void weft__yield_now(struct weft_task *t)
{
	switch_out(weft__worker(), t, PEND_YIELD);
}

void weft__coop_ready(void)
{
	struct worker *w = weft__worker();

	if (w && w->current && --w->budget == 0) {
		w->budget = COOP_BUDGET;
		weft__yield_now(w->current);
	}
}

uint64_t weft__park_begin(struct weft_task *t)
{
	struct task_run *r = t->run;
	uint64_t seq = ++r->wseq;
	bool cancellable = r->shield == 0;

	if (weft_unlikely(!r->reg) &&
	    weft__registry_add(&weft__worker()->reg, t))
		FOR(&t->flags, TF_CANCELLED, seq_cst); /* shutdown began */

	/* Step 1: seq_cst store, then seq_cst load of the flag. */
	STORE(&t->wstate,
	      (seq << WS_SEQ_SHIFT) | WS_PARKING |
		      (cancellable ? WS_CANCELLABLE : 0),
	      seq_cst);
	if (cancellable && (LOAD(&t->flags, seq_cst) & TF_CANCELLED))
		weft__wake(t, seq, WAKE_CANCELED, false);
	return seq;
}

int weft__park_commit(struct weft_task *t, uint64_t wake_at)
{
	struct worker *w = weft__worker();
	struct task_run *r = t->run;
	uint64_t seq = r->wseq, at = wake_at;
	int at_reason = WAKE_OK, err = 0;
	uint64_t s;

	if (r->deadline < at) {
		at = r->deadline;
		at_reason = WAKE_TIMEDOUT;
	}
	if (at != UINT64_MAX) {
		if (at <= weft_now()) {
			weft__wake(t, seq, at_reason, false);
		} else {
			r->timer_at = at;
			r->timer_reason = at_reason;
			err = timer_arm(&w->timers, r);
			if (err == 0)
				r->armed = &w->timers;
			else
				weft__wake(t, seq, WAKE_NONE, false);
		}
	}
	/* Already woken (by a racing waker, ourselves, or cancellation)? */
	if ((LOAD(&t->wstate, relaxed) & WS_STATE_MASK) == WS_PARKING)
		switch_out(w, t, PEND_PARK);
	if (r->armed) {
		timer_disarm(r->armed, r);
		r->armed = NULL;
	}
	/* acquire: pairs with the winning waker's release CAS (step 4). */
	s = LOAD(&t->wstate, acquire);
	switch ((s & WS_REASON_MASK) >> WS_REASON_SHIFT) {
	case WAKE_OK:
		return 0;
	case WAKE_TIMEDOUT:
		return -ETIMEDOUT;
	case WAKE_CANCELED:
		return -ECANCELED;
	default:
		return err;
	}
}

int weft__check_interrupt(struct weft_task *t)
{
	/* Relaxed: a cancel that this misses is caught by park_begin. A
	 * closing runtime cancels every task, including the ones that
	 * never parked and so are in no registry (task.c). */
	struct task_run *r;

	if (!t)
		return 0; /* a plain thread: no cancellation, no deadlines */
	r = t->run;

	if (r->shield == 0 && ((LOAD(&t->flags, relaxed) & TF_CANCELLED) ||
			       LOAD(&t->rt->closing, relaxed)))
		return -ECANCELED;
	if (r->deadline != UINT64_MAX && weft_now() >= r->deadline)
		return -ETIMEDOUT;
	return 0;
}

void weft__task_entry(void *arg)
{
	struct weft_task *t = arg;
	int r;

	coro_entered(&t->run->co);
	after_switch(weft__worker());
	r = t->fn(t->arg);
	weft__task_complete(t, r);
	switch_out(weft__worker(), t, PEND_EXIT);
	__builtin_unreachable();
}

/* --- the worker thread -------------------------------------------------- */

bool weft__rt_has_work(struct weft_rt *rt)
{
	if (!inject_empty(&rt->inject))
		return true;
	for (int i = 0; i < rt->nworkers; i++)
		if (rq_len(&rt->workers[i]->rq) > 0)
			return true;
	return false;
}

static void run(struct worker *w, struct weft_task *t)
{
	w->current = t;
	coro_switch(&w->sched, &t->run->co, false);
	after_switch(w);
}

void *weft__worker_main(void *arg)
{
	struct worker *w = arg;
	struct weft_rt *rt = w->rt;

	tls_worker = w;
	/* Timer slack: the kernel may defer a futex timeout by up to this
	 * much (50 us by default) to batch wake-ups; sleeps should be close
	 * to what tasks ask for. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	w->altstack = stack_thread_init();
	coro_adopt_thread(&w->sched);
	weft__io_thread_start(w);
	for (;;) {
		struct weft_task *t = next_local(w);

		if (!t) {
			t = steal(w);
			if (t && !prepare(w, t))
				continue;
		}
		if (t) {
			if (w->searching)
				idle_end_search(rt, w);
			run(w, t);
			continue;
		}
		/* acquire: pairs with the release in weft_rt_shutdown; every
		 * task has ended. */
		if (LOAD(&rt->stop, acquire))
			break;
		uint64_t next = timer_next(&w->timers);

		if (next != UINT64_MAX && next <= weft_now()) {
			maintenance(w);
			continue;
		}
		idle_park(rt, w, next);
		maintenance(w);
	}
	stack_cache_drain(&rt->stacks, &w->stacks);
	stack_thread_fini(w->altstack);
	tls_worker = NULL;
	return NULL;
}
