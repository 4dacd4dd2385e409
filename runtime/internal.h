/* SPDX-License-Identifier: MIT */
/*
 * weft's private structures and cross-module functions. Never installed.
 */
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <weft.h>
#include "atomic.h"
#include "ctx.h"
#include "idle.h"
#include "inject.h"
#include "rq.h"
#include "stack.h"
#include "timer.h"

#define WEFT_MAX_WORKERS 1024
/* Scheduling ticks between looks at the inject queue and the timers. */
#define INJECT_INTERVAL 61
/* Consecutive LIFO-slot runs before the slot yields to the queue. */
#define LIFO_MAX_STREAK 3
/* Ready operations a task may complete in a row before it must yield. */
#define COOP_BUDGET 128

/*
 * A task's wait state word, `wstate` (the park/wake protocol is at the top
 * of sched.c):
 *
 *     63            8  7   5    4          3..2       1..0
 *     [   seq        ][ 0 ][CANCELLABLE][ reason ][ state ]
 */
#define WS_RUNNING 0u		/* running, runnable, or woken */
#define WS_PARKING 1u		/* switching away to wait; not yet off-CPU */
#define WS_WAITING 2u		/* off-CPU, waiting for a wake */
#define WS_STATE_MASK 3u
#define WS_REASON_SHIFT 2
#define WS_REASON_MASK (3u << WS_REASON_SHIFT)
#define WS_CANCELLABLE (1u << 4)
#define WS_SEQ_SHIFT 8

/* Why a wait ended. */
enum wake_reason {
	WAKE_NONE = 0,
	WAKE_OK = 1,
	WAKE_TIMEDOUT = 2,
	WAKE_CANCELED = 3,
};

/* Task flags (`flags`, atomic). */
#define TF_CANCELLED 1u		/* weft_cancel was called */
#define TF_DONE 2u		/* fn returned (or never ran); result set */
#define TF_STARTED 4u		/* has a stack and a context */
#define TF_DETACHED 8u		/* the handle was joined or detached */
#define TF_RELEASED 32u		/* the run side is done with the record */
#define TF_JOINWAIT 16u		/* a joiner takes the slow path (task.c) */

/* What the worker does right after switching away from a task, on the
 * next coroutine (the task's stack is not in use any more by then). */
enum pending_op {
	PEND_NONE,
	PEND_YIELD,		/* put the task at the back of the run queue */
	PEND_PARK,		/* finish parking: PARKING -> WAITING */
	PEND_EXIT,		/* release the stack and the run reference */
};

struct registry;
struct bpool;
struct io_driver;
struct fd_desc;

/*
 * The task record: 128 bytes, cache-line aligned, laid out by who touches
 * what. Spawn writes both lines; the join of a finished task reads only the
 * first. What only a running task needs is in struct task_run, which lives
 * at the top of the task's stack (in the page the task touches anyway) and
 * exists from its first run until it ends: a record waiting in a queue, or
 * finished and waiting for its join, costs 128 bytes.
 */
struct task_run;

struct weft_task {
	/* --- line 0: spawn, wake, cancel, join --- */
	/* `next` links the task into an inject-queue fallback chain or a free
	 * magazine; owned by whoever holds the task. */
	struct weft_task *next;
	/* Park/wake word. Written by the task (park) and any waker (CAS). */
	_Atomic uint64_t wstate;
	struct weft_rt *rt;		/* constant */
	int (*fn)(void *);		/* constant */
	void *arg;			/* constant */
	/* Head of the list of waiters registered by weft_join and
	 * weft_wait_any (linked through their next/prev); under lock. */
	struct weft__waiter *joiner;
	int result;			/* written before TF_DONE */
	_Atomic uint32_t flags;		/* TF_*: any thread */
	spinlock lock;			/* protects the joiner list */

	/* --- line 1: set at spawn, read when it first runs --- */
	uint64_t id __attribute__((aligned(64))); /* constant */
	const char *name;		/* constant */
	size_t stack_req;		/* constant: 0 = runtime default */
	union {
		/* Set by prepare() when it first runs; read by the task,
		 * whoever completes it, and under the heap or registry locks
		 * by timers and shutdown. */
		struct task_run *run;
		struct weft_task *mag_next; /* while free (task.c) */
	};
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct weft_task) == 128,
	       "struct weft_task is two cache lines (see above)");

/* A running task's state, at the top of its stack (see struct weft_task). */
struct task_run {
	struct coro co;			/* context; stack bounds below the run */
	struct weft_task *task;		/* constant: back-pointer */
	size_t stack_bytes;		/* constant: the whole stack mapping */
	/* Registry of tasks that ever parked, for shutdown (task.c). The
	 * links are under reg->lock; reg is set by the task at its first
	 * park and read by whoever completes it. */
	struct registry *reg;
	struct weft_task *reg_prev, *reg_next;
	uint64_t wseq;			/* task only: sequence of its last wait */
	/* Timer: written by the task before it arms, read by the thread
	 * that fires it (worker or monitor), under that heap's lock. */
	uint64_t timer_at;
	int timer_reason;
	int heap_idx;			/* under the heap's lock; -1: not armed */
	struct timer_heap *armed;	/* task only: heap it armed, or NULL */
	/* Deadline scopes and shields: the task only. */
	uint64_t deadline;		/* effective deadline, UINT64_MAX: none */
	uint64_t *outer;		/* enclosing deadlines, allocated by the
					   first weft_timeout_begin */
	uint32_t shield;
	uint8_t ndeadlines;
};

/* Bytes reserved for struct task_run at the top of every stack. */
#define RUN_RESERVE ((sizeof(struct task_run) + 63) & ~(size_t)63)

/* Something blocked until a wake: a task or a plain thread. Lives on the
 * waiter's stack for the duration of the wait. See waitq.h. */
struct weft__waiter {
	struct weft__waiter *next, *prev; /* in a waitq: under its lock */
	struct weft_task *task;		/* NULL: a plain thread */
	uint64_t seq;			/* the task's wait sequence */
	_Atomic uint32_t futex;		/* plain thread: 0 waiting, 1 woken */
	/* Written by the waker under the waited-on object's lock, read by
	 * the waiter under the same lock after it wakes: nonzero means the
	 * waiter was granted what it waited for (see waitq.h). */
	int status;
	void *data;			/* object-specific, e.g. an element */
	uint64_t arg;			/* object-specific */
};

/* Tasks that have parked at least once, so shutdown can wake and cancel
 * them; one per worker (where the task first parked). */
struct registry {
	spinlock lock;
	struct weft_task *head;		/* under lock */
} cacheline_aligned;

#define PARK_NOTIFIED 0u
#define PARK_WAITING 1u

struct worker {
	struct rq rq;			/* owner pushes/pops; others steal */
	/* The task it just woke or spawned, run next: swapped by the owner,
	 * taken from a stuck worker by the monitor (sched.c). */
	_Atomic(struct weft_task *) lifo;
	/* Owner-only fields. */
	struct weft_task *current;	/* running task, NULL in scheduler */
	struct coro sched;		/* the thread's own scheduler context */
	enum pending_op pend_op;
	struct weft_task *pend_task;
	uint32_t tick;
	uint32_t lifo_streak;
	uint32_t budget;
	uint32_t rng;
	bool searching;			/* counted as searching in idle.state */
	bool reaping;			/* in the I/O driver's reap: wakes
					   notify once per batch (driver.c) */
	bool io_quiet;			/* no completion woke a task for a
					   whole grace period (idle.c) */
	uint32_t backlog_mark;		/* run queue tail at the last
					   maintenance (sched.c) */
	uint64_t id_next, id_end;	/* block of task ids */
	/* Free task records (task.c): the current magazine, and full ones. */
	struct weft_task *mag;
	uint32_t mag_n;
	uint32_t nfull;
	struct weft_task *full, *full_tail;
	struct stack_cache stacks;
	struct timer_heap timers;	/* see timer.h for who touches it */
	struct registry reg;
	/* Tasks spawned on / completed on this worker. Written only by the
	 * worker's thread (release), summed by shutdown (rt.c). */
	_Atomic uint64_t n_spawned, n_completed;
	/* The I/O driver (io/driver.h); the worker's thread alone uses it,
	 * except for io_unpark and cancel requests. Constant pointer. */
	struct io_driver *io;
	/* Bumped by every maintenance (relaxed, owner only); the monitor
	 * reads it to tell a stuck worker (monitor.c). */
	_Atomic uint32_t beat;
	_Atomic uint32_t park cacheline_aligned; /* park word, idle.c */
	int index;			/* constant */
	struct weft_rt *rt;		/* constant */
	pthread_t thread;
	void *altstack;
};

/* The monitor thread (monitor.c). */
struct monitor {
	pthread_t thread;
	bool started;
	/* Monitor only, per worker: its beat when it last moved, and when
	 * the monitor saw that. */
	struct mon_seen {
		uint32_t beat;
		uint64_t at;
	} *seen;
	_Atomic uint32_t stop;		/* futex: set once by monitor_stop */
	_Atomic uint32_t sleeping;	/* futex: asleep until an unpark */
};

struct weft_rt {
	int nworkers;			/* constant */
	struct worker **workers;	/* constant array */
	size_t stack_size;		/* constant: default stack size */
	struct inject inject;
	struct idle idle;
	struct stack_pool stacks;
	_Atomic uint64_t ext_spawned;	/* tasks spawned from outside */
	/* Magazines of free task records not held by a worker, and every
	 * chunk of records (task.c); under task_lock. */
	pthread_mutex_t task_lock;
	struct weft_task *depot;
	struct task_chunk *task_chunks;
	size_t nchunks;
	/* Shutdown: `closing` is set once (seq_cst, see task.c spawn);
	 * `exit_epoch` is a futex bumped when a task ends while closing;
	 * `stop` tells workers to exit once every task has ended. */
	_Atomic int closing;
	_Atomic uint32_t exit_epoch;
	_Atomic int stop;
	/* weft_run's first task: its end closes the runtime. Written by
	 * spawn before the task is queued (the queue push publishes it). */
	struct weft_task *root;
	/* Set once the workers are joined; the stop itself runs under
	 * stop_lock, so that concurrent shutdowns join them once and all
	 * return after it. */
	_Atomic bool stopped;
	pthread_mutex_t stop_lock;
	/* The blocking pool (blocking.c): set up by weft_rt_new, stopped
	 * by shutdown, freed with the runtime. The pointer is constant. */
	struct bpool *bpool;
	int io_kind;			/* constant: WEFT_IO_URING / _EPOLL */
	/* Epoll backend: fd -> waiters, pages allocated on first use. */
	_Atomic(struct fd_desc *) *fdtab;
	struct monitor mon;
};

/* --- cross-module functions --------------------------------------------- */

/* The worker the calling thread is, or NULL. Never cached across a
 * suspension by the compiler: see sched.c. */
struct worker *weft__worker(void);
const struct weft_task *weft__signal_current_task(void);

/* Wakes t's wait number seq with reason; false if that wait had already
 * ended (or is not cancellable, for WAKE_CANCELED). lifo: run t next on
 * this worker (message-passing latency). See sched.c. */
bool weft__wake(struct weft_task *t, uint64_t seq, int reason, bool lifo);
void weft__waiter_wake(struct weft__waiter *w, int reason);
/* The calling task, or NULL on a plain thread. */
struct weft_task *weft__current(void);

/* Makes a runnable task visible to the scheduler. */
void weft__schedule(struct weft_task *t, bool lifo);
/* The monitor: takes stuck worker v's LIFO slot (NULL if empty; then it
 * does not write the slot's line). */
struct weft_task *weft__lifo_take(struct worker *v);

/* Parking from a task: begin publishes intent (returns the wait's seq),
 * the caller registers a waiter with that seq, then weft__park_commit
 * suspends until woken, wake_at passes, or the deadline expires.
 * Returns 0, -ETIMEDOUT, -ECANCELED. */
uint64_t weft__park_begin(struct weft_task *t);
int weft__park_commit(struct weft_task *t, uint64_t wake_at);
/*
 * Holds: waits that nothing may interrupt. A cancelled group waiter,
 * gather, a blocking call whose task gave up and a condition wait that must
 * re-lock its mutex still have to wait for what they started. A shield
 * holds cancellation back, but a deadline scope still applies inside it,
 * and an expired deadline would make every wait return -ETIMEDOUT at once.
 * A hold is a shield that also lifts the deadline until it ends. Only
 * runtime code that opens no deadline scope in between may use it. NULL (a
 * plain thread) holds nothing. Task-only fields: no other thread reads them.
 */
static inline void weft__hold_begin(struct weft_task *t, uint64_t *saved)
{
	if (!t)
		return;
	t->run->shield++;
	*saved = t->run->deadline;
	t->run->deadline = UINT64_MAX;
}

static inline void weft__hold_end(struct weft_task *t, uint64_t saved)
{
	if (!t)
		return;
	t->run->deadline = saved;
	t->run->shield--;
}

/* Checks at the entry of every suspending call: 0, -ECANCELED or
 * -ETIMEDOUT; always 0 for t == NULL (a plain thread). */
int weft__check_interrupt(struct weft_task *t);
/* Budget for operations that completed without suspending. */
void weft__coop_ready(void);
/* Moves on to the next task; the current one is pushed to the back. */
void weft__yield_now(struct weft_task *t);

/* Finishes a task that never ran (cancelled before start, or no stack). */
void weft__task_complete(struct weft_task *t, int result);
/* Drops the run side's (TF_RELEASED) or the handle's (TF_DETACHED) claim
 * on the record; the second one frees it. */
void weft__task_release(struct weft_task *t, uint32_t side);
void weft__task_pool_destroy(struct weft_rt *rt);
void weft__task_entry(void *arg);
int weft__join(weft_task *t, int *result, bool *started);
int weft__rt_spawn_root(weft_rt *rt, weft_task **out, int (*fn)(void *),
			void *arg);

bool weft__rt_has_work(struct weft_rt *rt);
/* monitor.c: started with the workers (after them), stopped before they
 * are; monitor_unparked is idle.c's call when a worker unparks while none
 * was. */
int monitor_start(struct weft_rt *rt);
void monitor_stop(struct weft_rt *rt);
void monitor_unparked(struct weft_rt *rt);
void weft__registry_cancel_all(struct registry *r);
/* A task's first park: joins its worker's registry. Returns true if the
 * runtime is closing (the caller then cancels the task). */
bool weft__registry_add(struct registry *r, struct weft_task *t);
void *weft__worker_main(void *arg);

void weft__stack_overflow_abort(const struct weft_task *t)
	__attribute__((noreturn));

/* errno, read afresh (util.c): use it wherever the calling function may
 * have suspended before, or may suspend in a loop around, the failing call. */
int weft__errno(void);

/* futex helpers; timeout in ns, UINT64_MAX = forever. */
int weft__futex_wait(_Atomic uint32_t *addr, uint32_t expect,
		     uint64_t timeout_ns);
void weft__futex_wake(_Atomic uint32_t *addr, int n);
/* A service thread of weft's own (the monitor, the signal dispatcher):
 * 64 KiB of stack, every signal blocked. 0 or -errno. */
int weft__thread_start(pthread_t *th, void *(*fn)(void *), void *arg,
		       bool detached);

/* Testing: make the Nth allocation, mmap or io_uring setup fail. */
enum fail_kind { WEFT_FAIL_MALLOC, WEFT_FAIL_MMAP, WEFT_FAIL_URING };
bool weft__fail_point(enum fail_kind k);

#endif
