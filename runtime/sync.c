/* SPDX-License-Identifier: MIT */
/*
 * Mutex, RW lock, semaphore, event, condition variable, barrier, wait group
 * and once, for tasks and plain threads alike.
 *
 * Every object is a spinlock-protected wait queue (waitq.h, whose 4-step
 * protocol makes a wake impossible to lose and a hand-over impossible to
 * drop) plus, where a fast path pays off, a state word that uncontended
 * callers update with one atomic RMW and no lock:
 *
 *  mutex    LOCKED is taken with a CAS and dropped with a fetch_and, no
 *           lock, no syscall. Contended lockers spin briefly, then queue.
 *           An unlock that sees waiters and no woken waiter on its way
 *           wakes the first one, which competes for the mutex (barging
 *           keeps a contended mutex fast: the running task may take it
 *           again at once). A woken waiter that loses goes back to the
 *           front; once it has waited longer than STARVE_NS it turns on
 *           STARVING, and the next unlock hands the mutex to it directly
 *           (no one may barge meanwhile). The hand-over ends starvation
 *           mode, so it serves that one waiter and never becomes a convoy;
 *           every waiter reaches the front in FIFO order, so none starves.
 *  rwlock   state = WRITER | WRITER_WAITING | readers. Readers enter with a
 *           CAS while neither bit is set, so a waiting writer holds new
 *           readers back. The last reader out, seeing WRITER_WAITING, hands
 *           the lock to the first writer; a writer's unlock admits every
 *           queued reader at once, or else the next writer.
 *  sem      count is the permits; waiters > 0 turns fast acquires off, so
 *           waiters are served in order. A release that sees waiters (seq_cst
 *           Dekker pair with the waiter's increment and re-check) hands its
 *           permit over under the lock.
 *  others   (event, cond, barrier, wait group, once) take the lock on every
 *           call except the read-only fast paths of event_wait, wait group
 *           wait and once.
 *
 * Memory orders: a fast-path acquisition is an acquire RMW and a release a
 * release RMW, pairing with each other like any lock. Grants happen under
 * the spinlock, whose acquire/release orders the waker's writes before the
 * waiter's reads (the waiter re-takes the lock, step 4).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <weft/sync.h>
#include "waitq.h"

/* A mutex waiter older than this is handed the lock on the next unlock. */
#define STARVE_NS 1000000
/* A contended locker looks SPIN_ROUNDS times, SPIN_PAUSES pauses apart,
 * before it queues. */
#define SPIN_ROUNDS 4
#define SPIN_PAUSES 30

#define IMPL(type, p) ((struct type *)(void *)(p))
#define CHECK_SIZE(type, pub)                                               \
	_Static_assert(sizeof(struct type) <= sizeof(pub) &&                \
			       _Alignof(struct type) <= _Alignof(pub),      \
		       #type " does not fit " #pub)


/* Grants every waiter of q (lock held). */
static void grant_all(struct waitq *q, int status)
{
	struct weft__waiter *w;

	while ((w = waitq_pop(q)))
		waiter_grant(w, status);
}

/* The whole wait for objects whose waiters only wait to be granted: called
 * with *l held, queues the caller on q, waits, and returns with *l
 * released: 0 if granted, else -ECANCELED / -ETIMEDOUT. */
static int wait_on(spinlock *l, struct waitq *q)
{
	struct weft__waiter w;
	int rc;

	waiter_prepare(&w);
	waitq_push(q, &w);
	spin_unlock(l);
	rc = waiter_wait(l, q, &w);
	spin_unlock(l);
	return rc;
}

/* weft_X_init for the objects whose all-zero state is the initial one. */
static int zero_init(void *p, size_t n)
{
	if (!p)
		return -EINVAL;
	memset(p, 0, n);
	return 0;
}

/* ---- mutex ------------------------------------------------------------ */

/*
 * State bits. LOCKED is taken and dropped by atomic RMWs outside the lock;
 * the other bits change only under x->lock:
 *   WAITERS   the queue is not empty;
 *   WOKEN     an unlock woke a waiter that has not yet retried: later
 *             unlocks need not wake another (no wake storms);
 *   STARVING  a waiter has waited longer than STARVE_NS: the lock is handed
 *             over in queue order, and nobody may barge in (fast lock fails,
 *             the slow path queues).
 */
#define M_LOCKED 1u
#define M_WAITERS 2u
#define M_WOKEN 4u
#define M_STARVING 8u
#define MUTEX_WOKEN 1		/* grant: compete for it */
#define MUTEX_HANDOFF 2		/* grant: you own it */

struct mutex_impl {
	_Atomic uint32_t state;
	spinlock lock;
	struct waitq q;		/* under lock */
};
CHECK_SIZE(mutex_impl, weft_mutex);

int weft_mutex_init(weft_mutex *m)
{
	return zero_init(m, sizeof(*m));
}

int weft_mutex_destroy(weft_mutex *m)
{
	if (!m)
		return -EINVAL;
	return LOAD(&IMPL(mutex_impl, m)->state, acquire) ? -EBUSY : 0;
}

/* Takes the mutex if it is free and not reserved for the queue (waiters
 * may exist: barging in is what keeps a contended mutex fast). */
static inline bool mutex_try(struct mutex_impl *x)
{
	uint32_t s = LOAD(&x->state, relaxed);

	/* acquire: pairs with the release in unlock. */
	return !(s & (M_LOCKED | M_STARVING)) &&
	       CAS(&x->state, &s, s | M_LOCKED, acquire, relaxed);
}

/* Sets the bits in `set` and clears those in `clr` (x->lock held for
 * anything but M_LOCKED). Returns the old state. */
static uint32_t mutex_update(struct mutex_impl *x, uint32_t set, uint32_t clr)
{
	uint32_t s = LOAD(&x->state, relaxed);

	while (!CAS(&x->state, &s, (s | set) & ~clr, acq_rel, relaxed))
		;
	return s;
}

/* x->lock held, the mutex possibly free: wakes the first waiter to compete
 * for it, or hands it over in starvation mode. */
static void mutex_wake_next(struct mutex_impl *x)
{
	uint32_t s = LOAD(&x->state, relaxed);
	struct weft__waiter *w;

	if ((s & (M_LOCKED | M_WOKEN)) || waitq_empty(&x->q))
		return;
	w = waitq_pop(&x->q);
	if (s & M_STARVING) {
		/* Hand over: LOCKED is set on the waiter's behalf, and
		 * starvation mode ends with the queue. */
		mutex_update(x, M_LOCKED, waitq_empty(&x->q)
					  ? M_WAITERS | M_STARVING : 0);
		waiter_grant(w, MUTEX_HANDOFF);
		return;
	}
	mutex_update(x, M_WOKEN, waitq_empty(&x->q) ? M_WAITERS : 0);
	waiter_grant(w, MUTEX_WOKEN);
}

static int mutex_lock_slow(struct mutex_impl *x)
{
	struct weft_task *t = weft__current();
	struct weft__waiter w;
	uint64_t since = 0;
	bool woken = false;
	int rc;

	/* Brief spin: the holder of a short critical section on another
	 * worker lets go within nanoseconds. Look only every SPIN_PAUSES
	 * pauses: every look pulls the cache line away from the holder. */
	for (int i = 0; i < SPIN_ROUNDS; i++) {
		for (int k = 0; k < SPIN_PAUSES; k++)
			cpu_relax();
		if (mutex_try(x))
			return 0;
	}
	if ((rc = weft__check_interrupt(t)))
		return rc;
	spin_lock(&x->lock);
	for (;;) {
		uint32_t s = LOAD(&x->state, relaxed), n;

		if (!(s & (M_LOCKED | M_STARVING)) ||
		    (woken && !(s & M_LOCKED) && waitq_empty(&x->q))) {
			/* Free (and not reserved for the queue): take it. */
			n = (s | M_LOCKED) & ~(woken ? M_WOKEN | M_STARVING : 0);
			if (!CAS(&x->state, &s, n, acq_rel, relaxed))
				continue;
			break;
		}
		/* Wait. A waiter that has waited too long turns on
		 * starvation mode; a woken one that lost goes first. */
		n = (s | M_WAITERS) & ~(woken ? M_WOKEN : 0);
		if (since && weft_now() - since >= STARVE_NS)
			n |= M_STARVING;
		if (!CAS(&x->state, &s, n, acq_rel, relaxed))
			continue;
		if (!since)
			since = weft_now();
		waiter_prepare(&w);
		if (woken)
			waitq_push_front(&x->q, &w);
		else
			waitq_push(&x->q, &w);
		spin_unlock(&x->lock);
		woken = false;
		rc = waiter_wait(&x->lock, &x->q, &w);
		if (rc) {
			/* Gave up and does not hold the mutex. */
			if (waitq_empty(&x->q))
				mutex_update(x, 0, M_WAITERS | M_STARVING);
			mutex_wake_next(x);
			spin_unlock(&x->lock);
			return rc;
		}
		if (w.status == MUTEX_HANDOFF) {
			/* Ours. Starvation mode served its one waiter, the
			 * one that set it; the others go back to competing
			 * (a mode that stayed on would turn every lock into
			 * a hand-off: a convoy at a context switch per lock).
			 * Each of them can set it again in its turn. */
			mutex_update(x, 0, M_STARVING);
			break;
		}
		woken = true;
	}
	spin_unlock(&x->lock);
	return 0;
}

int weft_mutex_lock(weft_mutex *m)
{
	struct mutex_impl *x = IMPL(mutex_impl, m);

	if (!m)
		return -EINVAL;
	/* The budget is spent before the lock is taken: a task must never
	 * be made to yield while it holds the mutex. */
	weft__coop_ready();
	if (weft_likely(mutex_try(x)))
		return 0;
	return mutex_lock_slow(x);
}

int weft_mutex_trylock(weft_mutex *m)
{
	struct mutex_impl *x = IMPL(mutex_impl, m);
	uint32_t s;

	if (!m)
		return -EINVAL;
	s = LOAD(&x->state, relaxed);
	while (!(s & (M_LOCKED | M_STARVING)))
		if (CAS(&x->state, &s, s | M_LOCKED, acquire, relaxed))
			return 0;
	return -EAGAIN;
}

int weft_mutex_unlock(weft_mutex *m)
{
	struct mutex_impl *x = IMPL(mutex_impl, m);
	uint32_t old;

	if (!m)
		return -EINVAL;
	/* release: publishes the critical section to the next owner. */
	old = atomic_fetch_and_explicit(&x->state, ~M_LOCKED,
					memory_order_release);
	if (weft_unlikely(!(old & M_LOCKED)))
		return -EPERM;
	if (weft_likely(!(old & M_WAITERS) || (old & M_WOKEN)))
		return 0; /* nobody to wake, or a woken one is on its way */
	spin_lock(&x->lock);
	mutex_wake_next(x);
	spin_unlock(&x->lock);
	return 0;
}

/* ---- RW lock ----------------------------------------------------------- */

/*
 * state = WRITER | WSTARVE | WAITERS | readers. Built like the mutex above:
 *
 *  - Readers enter with a CAS unless a writer holds the lock or WSTARVE is
 *    set; writers with a CAS when nobody holds it and WSTARVE is not set.
 *  - A contended locker spins briefly, then queues (readers and writers in
 *    their own queues) and sets WAITERS (under x->lock, with a CAS, so an
 *    unlock that raced with it is seen).
 *  - An unlock that leaves the lock free of its holders (a writer, or the
 *    last reader) and sees WAITERS takes x->lock and wakes every queued
 *    locker to compete again (status RW_WOKEN). Woken readers mostly all get
 *    in together; nothing is handed to a task that is not running yet, so
 *    no holder is a task still waiting for a CPU.
 *  - A writer that has waited longer than STARVE_NS sets WSTARVE when it
 *    queues again (first in line): new readers and writers keep out, and
 *    once the holders are gone the lock is handed to it (RW_HANDOFF, with
 *    WRITER set on its behalf). So no writer starves, and since every wake
 *    wakes all queued readers, no reader does either.
 */
#define RW_WRITER 0x80000000u
#define RW_WSTARVE 0x40000000u
#define RW_WAITERS 0x20000000u
#define RW_READERS 0x1fffffffu
#define RW_WOKEN 1		/* grant: compete again */
#define RW_HANDOFF 2		/* grant: you hold it (starving writer) */
#define RW_SPIN 128		/* looks before a contended locker queues */

struct rwlock_impl {
	_Atomic uint32_t state;
	spinlock lock;
	struct waitq rq, wq;	/* under lock: readers, writers */
};
CHECK_SIZE(rwlock_impl, weft_rwlock);

int weft_rwlock_init(weft_rwlock *l)
{
	return zero_init(l, sizeof(*l));
}

int weft_rwlock_destroy(weft_rwlock *l)
{
	if (!l)
		return -EINVAL;
	return LOAD(&IMPL(rwlock_impl, l)->state, acquire) ? -EBUSY : 0;
}

static inline bool rw_can_read(uint32_t s)
{
	/* A full reader count waits rather than carry into the flags. */
	return !(s & (RW_WRITER | RW_WSTARVE)) &&
	       (s & RW_READERS) != RW_READERS;
}

static inline bool rw_can_write(uint32_t s)
{
	return !(s & (RW_WRITER | RW_WSTARVE | RW_READERS));
}

static inline bool rw_try_read(struct rwlock_impl *x)
{
	uint32_t s = LOAD(&x->state, relaxed);

	/* acquire: pairs with the release of the last writer's unlock. */
	while (rw_can_read(s))
		if (CAS(&x->state, &s, s + 1, acquire, relaxed))
			return true;
	return false;
}

static inline bool rw_try_write(struct rwlock_impl *x)
{
	uint32_t s = LOAD(&x->state, relaxed);

	while (rw_can_write(s))
		if (CAS(&x->state, &s, s | RW_WRITER, acquire, relaxed))
			return true;
	return false;
}

/* Sets `set` and clears `clr` in the state (x->lock held). */
static uint32_t rw_update(struct rwlock_impl *x, uint32_t set, uint32_t clr)
{
	uint32_t s = LOAD(&x->state, relaxed);

	while (!CAS(&x->state, &s, (s | set) & ~clr, acq_rel, relaxed))
		;
	return (s | set) & ~clr;
}

/* x->lock held, the lock possibly free: lets the queues move on. */
static void rw_wake(struct rwlock_impl *x)
{
	uint32_t s = LOAD(&x->state, relaxed);

	if (s & RW_WSTARVE) {
		/* Reserved for the first writer: hand over once free. */
		for (;;) {
			if (s & (RW_WRITER | RW_READERS) || waitq_empty(&x->wq))
				return;
			uint32_t n = (s | RW_WRITER) & ~RW_WSTARVE;

			if (x->wq.head == x->wq.tail && waitq_empty(&x->rq))
				n &= ~RW_WAITERS;
			if (CAS(&x->state, &s, n, acq_rel, relaxed))
				break;
		}
		waiter_grant(waitq_pop(&x->wq), RW_HANDOFF);
		return;
	}
	if (s & RW_WRITER)
		return; /* its unlock wakes them */
	rw_update(x, 0, RW_WAITERS);
	grant_all(&x->rq, RW_WOKEN);
	grant_all(&x->wq, RW_WOKEN);
}

static int rw_wait(struct rwlock_impl *x, bool writer)
{
	struct weft_task *t = weft__current();
	struct waitq *q = writer ? &x->wq : &x->rq;
	struct weft__waiter w;
	uint64_t since = 0;
	bool woken = false;
	int rc;

	for (int i = 0; i < RW_SPIN; i++) {
		cpu_relax();
		if (writer ? rw_try_write(x) : rw_try_read(x))
			return 0;
	}
	if ((rc = weft__check_interrupt(t)))
		return rc;
	spin_lock(&x->lock);
	for (;;) {
		uint32_t s = LOAD(&x->state, relaxed), n;

		if (writer ? rw_can_write(s) : rw_can_read(s)) {
			n = writer ? s | RW_WRITER : s + 1;
			if (!CAS(&x->state, &s, n, acq_rel, relaxed))
				continue;
			break;
		}
		n = s | RW_WAITERS;
		if (writer && since && weft_now() - since >= STARVE_NS)
			n |= RW_WSTARVE;
		if (!CAS(&x->state, &s, n, acq_rel, relaxed))
			continue;
		if (!since)
			since = weft_now();
		waiter_prepare(&w);
		if (woken && writer)
			waitq_push_front(q, &w);
		else
			waitq_push(q, &w);
		spin_unlock(&x->lock);
		/* A writer also wakes once it has waited STARVE_NS: readers
		 * that never all leave at once would otherwise keep it out
		 * for good. It then queues again, first, with WSTARVE. */
		rc = waiter_sleep_until(&w, writer && !(n & RW_WSTARVE)
						    ? since + STARVE_NS
						    : UINT64_MAX);
		spin_lock(&x->lock);
		if (!w.status) {
			waitq_remove(q, &w);
			if (rc != -ECANCELED && rc != -ETIMEDOUT) {
				/* Its starvation timer fired (or could not be
				 * armed: act as if it had). */
				since = since > STARVE_NS ? since - STARVE_NS : 1;
				woken = true;
				continue;
			}
		}
		if (rc && !w.status) {
			/* Gave up without the lock. If it held the others
			 * back (WSTARVE), release them. */
			if (waitq_empty(&x->rq) && waitq_empty(&x->wq))
				rw_update(x, 0, RW_WAITERS | RW_WSTARVE);
			else if (writer && (LOAD(&x->state, relaxed) & RW_WSTARVE))
				rw_update(x, 0, RW_WSTARVE);
			rw_wake(x);
			spin_unlock(&x->lock);
			return rc;
		}
		if (w.status == RW_HANDOFF)
			break;
		woken = true;
	}
	spin_unlock(&x->lock);
	return 0;
}

int weft_rwlock_rdlock(weft_rwlock *l)
{
	if (!l)
		return -EINVAL;
	weft__coop_ready(); /* before taking it, as in weft_mutex_lock */
	if (weft_likely(rw_try_read(IMPL(rwlock_impl, l))))
		return 0;
	return rw_wait(IMPL(rwlock_impl, l), false);
}

int weft_rwlock_wrlock(weft_rwlock *l)
{
	if (!l)
		return -EINVAL;
	weft__coop_ready();
	if (weft_likely(rw_try_write(IMPL(rwlock_impl, l))))
		return 0;
	return rw_wait(IMPL(rwlock_impl, l), true);
}

int weft_rwlock_tryrdlock(weft_rwlock *l)
{
	if (!l)
		return -EINVAL;
	return rw_try_read(IMPL(rwlock_impl, l)) ? 0 : -EAGAIN;
}

int weft_rwlock_trywrlock(weft_rwlock *l)
{
	if (!l)
		return -EINVAL;
	return rw_try_write(IMPL(rwlock_impl, l)) ? 0 : -EAGAIN;
}

int weft_rwlock_unlock(weft_rwlock *l)
{
	struct rwlock_impl *x = IMPL(rwlock_impl, l);
	uint32_t s, n;

	if (!l)
		return -EINVAL;
	s = LOAD(&x->state, relaxed);
	do {
		if (s & RW_WRITER)
			n = s & ~RW_WRITER;
		else if (s & RW_READERS)
			n = s - 1;
		else
			return -EPERM;
		/* release: the critical section before the next holder's. */
	} while (!CAS(&x->state, &s, n, release, relaxed));
	if ((n & RW_WAITERS) && !(n & (RW_WRITER | RW_READERS))) {
		spin_lock(&x->lock);
		rw_wake(x);
		spin_unlock(&x->lock);
	}
	return 0;
}

/* ---- semaphore --------------------------------------------------------- */

#define SEM_GRANTED 1

struct sem_impl {
	_Atomic int64_t count;	/* first: WEFT_SEM_INIT(n) sets it */
	_Atomic uint32_t waiters; /* queued acquirers (seq_cst, see top) */
	spinlock lock;
	struct waitq q;
};
CHECK_SIZE(sem_impl, weft_sem);
_Static_assert(offsetof(struct sem_impl, count) == 0, "count is the header");

int weft_sem_init(weft_sem *s, int64_t n)
{
	if (!s || n < 0)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	STORE(&IMPL(sem_impl, s)->count, n, relaxed);
	return 0;
}

/* Takes a permit if there is one and nobody queues before us. */
static inline bool sem_take(struct sem_impl *x, bool ignore_waiters)
{
	int64_t c;

	if (!ignore_waiters && LOAD(&x->waiters, seq_cst))
		return false;
	c = LOAD(&x->count, seq_cst);
	while (c > 0)
		if (CAS(&x->count, &c, c - 1, seq_cst, seq_cst))
			return true;
	return false;
}

int weft_sem_tryacquire(weft_sem *s)
{
	if (!s)
		return -EINVAL;
	return sem_take(IMPL(sem_impl, s), false) ? 0 : -EAGAIN;
}

int weft_sem_acquire(weft_sem *s)
{
	struct sem_impl *x = IMPL(sem_impl, s);
	struct weft_task *t;
	struct weft__waiter w;
	int rc;

	if (!s)
		return -EINVAL;
	weft__coop_ready(); /* before taking a permit, as for a mutex */
	if (weft_likely(sem_take(x, false)))
		return 0;
	t = weft__current();
	if ((rc = weft__check_interrupt(t)))
		return rc;
	spin_lock(&x->lock);
	/* Dekker with release: count ourselves, then look at count again
	 * (both seq_cst); a release either sees us or we see its permit. */
	FADD(&x->waiters, 1, seq_cst);
	if (waitq_empty(&x->q) && sem_take(x, true)) {
		FSUB(&x->waiters, 1, relaxed);
		spin_unlock(&x->lock);
		return 0;
	}
	waiter_prepare(&w);
	waitq_push(&x->q, &w);
	spin_unlock(&x->lock);
	rc = waiter_wait(&x->lock, &x->q, &w);
	if (rc)
		FSUB(&x->waiters, 1, relaxed);
	spin_unlock(&x->lock);
	return rc;
}

int weft_sem_release(weft_sem *s)
{
	struct sem_impl *x = IMPL(sem_impl, s);
	struct weft__waiter *w;
	int64_t c;

	if (!s)
		return -EINVAL;
	c = LOAD(&x->count, relaxed);
	do {
		if (c == INT64_MAX)
			return -EOVERFLOW;
	} while (!CAS(&x->count, &c, c + 1, seq_cst, relaxed));
	if (!LOAD(&x->waiters, seq_cst))
		return 0;
	/* Someone queues: move permits to waiters, in order. */
	spin_lock(&x->lock);
	while (!waitq_empty(&x->q) && sem_take(x, true)) {
		w = waitq_pop(&x->q);
		FSUB(&x->waiters, 1, relaxed);
		waiter_grant(w, SEM_GRANTED);
	}
	spin_unlock(&x->lock);
	return 0;
}

int64_t weft_sem_value(weft_sem *s)
{
	return s ? LOAD(&IMPL(sem_impl, s)->count, relaxed) : -EINVAL;
}

/* ---- event ------------------------------------------------------------- */

struct event_impl {
	_Atomic uint32_t set;
	spinlock lock;
	struct waitq q;
};
CHECK_SIZE(event_impl, weft_event);

int weft_event_init(weft_event *e)
{
	return zero_init(e, sizeof(*e));
}

int weft_event_set(weft_event *e)
{
	struct event_impl *x = IMPL(event_impl, e);

	if (!e)
		return -EINVAL;
	spin_lock(&x->lock);
	/* release: what the setter did before is visible to fast waits. */
	STORE(&x->set, 1, release);
	grant_all(&x->q, 1);
	spin_unlock(&x->lock);
	return 0;
}

int weft_event_clear(weft_event *e)
{
	if (!e)
		return -EINVAL;
	STORE(&IMPL(event_impl, e)->set, 0, relaxed);
	return 0;
}

int weft_event_is_set(weft_event *e)
{
	return e ? (int)LOAD(&IMPL(event_impl, e)->set, acquire) : -EINVAL;
}

int weft_event_wait(weft_event *e)
{
	struct event_impl *x = IMPL(event_impl, e);
	struct weft_task *t;
	int rc;

	if (!e)
		return -EINVAL;
	t = weft__current();
	if ((rc = weft__check_interrupt(t)))
		return rc;
	if (LOAD(&x->set, acquire)) {
		weft__coop_ready();
		return 0;
	}
	spin_lock(&x->lock);
	if (LOAD(&x->set, relaxed)) {
		spin_unlock(&x->lock);
		return 0;
	}
	return wait_on(&x->lock, &x->q);
}

/* ---- condition variable ------------------------------------------------ */

struct cond_impl {
	spinlock lock;
	struct waitq q;
};
CHECK_SIZE(cond_impl, weft_cond);

int weft_cond_init(weft_cond *c)
{
	return zero_init(c, sizeof(*c));
}

int weft_cond_destroy(weft_cond *c)
{
	struct cond_impl *x = IMPL(cond_impl, c);
	int busy;

	if (!c)
		return -EINVAL;
	spin_lock(&x->lock);
	busy = !waitq_empty(&x->q);
	spin_unlock(&x->lock);
	return busy ? -EBUSY : 0;
}

/* Locks m, ignoring cancellation and deadlines: a condition wait must
 * return with its mutex held whatever ended the wait. */
static void mutex_lock_uninterruptible(weft_mutex *m)
{
	struct weft_task *t = weft__current();
	uint64_t saved = 0;

	weft__hold_begin(t, &saved);
	while (weft_mutex_lock(m) != 0)
		;
	weft__hold_end(t, saved);
}

int weft_cond_wait(weft_cond *c, weft_mutex *m)
{
	struct cond_impl *x = IMPL(cond_impl, c);
	struct weft_task *t;
	struct weft__waiter w;
	int rc;

	if (!c || !m)
		return -EINVAL;
	if (!(LOAD(&IMPL(mutex_impl, m)->state, relaxed) & M_LOCKED))
		return -EPERM; /* the caller must hold m */
	t = weft__current();
	if ((rc = weft__check_interrupt(t)))
		return rc;
	/* Queued before m is released: a signal sent once m is free finds
	 * us, so no wake-up between the unlock and the sleep is lost. */
	spin_lock(&x->lock);
	waiter_prepare(&w);
	waitq_push(&x->q, &w);
	spin_unlock(&x->lock);
	weft_mutex_unlock(m);
	rc = waiter_wait(&x->lock, &x->q, &w);
	spin_unlock(&x->lock);
	mutex_lock_uninterruptible(m);
	return rc;
}

int weft_cond_signal(weft_cond *c)
{
	struct cond_impl *x = IMPL(cond_impl, c);
	struct weft__waiter *w;

	if (!c)
		return -EINVAL;
	spin_lock(&x->lock);
	if ((w = waitq_pop(&x->q)))
		waiter_grant(w, 1);
	spin_unlock(&x->lock);
	return 0;
}

int weft_cond_broadcast(weft_cond *c)
{
	struct cond_impl *x = IMPL(cond_impl, c);

	if (!c)
		return -EINVAL;
	spin_lock(&x->lock);
	grant_all(&x->q, 1);
	spin_unlock(&x->lock);
	return 0;
}

/* ---- barrier ----------------------------------------------------------- */

struct barrier_impl {
	int64_t parties;	/* first: WEFT_BARRIER_INIT(n) sets it */
	uint32_t arrived;	/* under lock */
	spinlock lock;
	struct waitq q;
};
CHECK_SIZE(barrier_impl, weft_barrier);
_Static_assert(offsetof(struct barrier_impl, parties) == 0, "header");

int weft_barrier_init(weft_barrier *b, int64_t n)
{
	if (!b || n < 1 || n > UINT32_MAX)
		return -EINVAL;
	memset(b, 0, sizeof(*b));
	IMPL(barrier_impl, b)->parties = n;
	return 0;
}

int weft_barrier_wait(weft_barrier *b)
{
	struct barrier_impl *x = IMPL(barrier_impl, b);
	struct weft_task *t;
	struct weft__waiter w;
	int rc;

	if (!b || x->parties < 1)
		return -EINVAL;
	t = weft__current();
	if ((rc = weft__check_interrupt(t)))
		return rc;
	spin_lock(&x->lock);
	if (++x->arrived == (uint64_t)x->parties) {
		/* The last one releases this round and starts the next. */
		x->arrived = 0;
		grant_all(&x->q, 1);
		spin_unlock(&x->lock);
		return 1;
	}
	waiter_prepare(&w);
	waitq_push(&x->q, &w);
	spin_unlock(&x->lock);
	rc = waiter_wait(&x->lock, &x->q, &w);
	if (rc)
		x->arrived--; /* left before the round completed */
	spin_unlock(&x->lock);
	return rc;
}

/* ---- wait group -------------------------------------------------------- */

struct waitgroup_impl {
	_Atomic int64_t count;	/* written under lock; read by fast waits */
	spinlock lock;
	struct waitq q;
};
CHECK_SIZE(waitgroup_impl, weft_waitgroup);

int weft_waitgroup_add(weft_waitgroup *wg, int64_t delta)
{
	struct waitgroup_impl *x = IMPL(waitgroup_impl, wg);
	int64_t c;

	if (!wg)
		return -EINVAL;
	spin_lock(&x->lock);
	c = LOAD(&x->count, relaxed);
	if ((delta < 0 && c < -delta) || (delta > 0 && c > INT64_MAX - delta)) {
		spin_unlock(&x->lock);
		return -EINVAL;
	}
	c += delta;
	/* release: work done before done() is visible to fast waits. */
	STORE(&x->count, c, release);
	if (c == 0)
		grant_all(&x->q, 1);
	spin_unlock(&x->lock);
	return 0;
}

int weft_waitgroup_done(weft_waitgroup *wg)
{
	return weft_waitgroup_add(wg, -1);
}

int weft_waitgroup_wait(weft_waitgroup *wg)
{
	struct waitgroup_impl *x = IMPL(waitgroup_impl, wg);
	struct weft_task *t;
	int rc;

	if (!wg)
		return -EINVAL;
	t = weft__current();
	if ((rc = weft__check_interrupt(t)))
		return rc;
	if (LOAD(&x->count, acquire) == 0) {
		weft__coop_ready();
		return 0;
	}
	spin_lock(&x->lock);
	if (LOAD(&x->count, relaxed) == 0) {
		spin_unlock(&x->lock);
		return 0;
	}
	return wait_on(&x->lock, &x->q);
}

/* ---- once -------------------------------------------------------------- */

#define ONCE_RUNNING 1u
#define ONCE_DONE 2u

struct once_impl {
	_Atomic uint32_t state;
	spinlock lock;
	struct waitq q;
};
CHECK_SIZE(once_impl, weft_once);

int weft_once_call(weft_once *o, void (*fn)(void *), void *arg)
{
	struct once_impl *x = IMPL(once_impl, o);
	struct weft_task *t;
	int rc;

	if (!o || !fn)
		return -EINVAL;
	/* acquire: pairs with the release below; fn's effects are visible. */
	if (LOAD(&x->state, acquire) == ONCE_DONE) {
		weft__coop_ready();
		return 0;
	}
	spin_lock(&x->lock);
	switch (LOAD(&x->state, relaxed)) {
	case ONCE_DONE:
		spin_unlock(&x->lock);
		return 0;
	case 0:
		STORE(&x->state, ONCE_RUNNING, relaxed);
		spin_unlock(&x->lock);
		fn(arg);
		spin_lock(&x->lock);
		STORE(&x->state, ONCE_DONE, release);
		grant_all(&x->q, 1);
		spin_unlock(&x->lock);
		return 0;
	}
	/* Running in another task or thread: wait for it. */
	spin_unlock(&x->lock);
	t = weft__current();
	if ((rc = weft__check_interrupt(t)))
		return rc;
	spin_lock(&x->lock);
	if (LOAD(&x->state, relaxed) == ONCE_DONE) {
		spin_unlock(&x->lock);
		return 0;
	}
	return wait_on(&x->lock, &x->q);
}
