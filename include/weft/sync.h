/* SPDX-License-Identifier: MIT */
/*
 * Synchronisation objects that suspend only the calling task: mutex, RW lock,
 * semaphore, event, condition variable, barrier, wait group and once.
 *
 * Every object is a plain value the caller places anywhere (a struct field,
 * a global, the stack): opaque fixed-size storage with a static initializer,
 * as with pthreads. An all-zero object is an initialised one, except where a
 * count is given (WEFT_SEM_INIT(n), WEFT_BARRIER_INIT(n)).
 *
 * All of them work from tasks (suspending only the task) and from plain
 * threads (blocking the thread), and may be shared between the two.
 * Waiting calls honour cancellation (-ECANCELED) and deadline scopes
 * (-ETIMEDOUT) when called from a task; plain threads wait until woken.
 * Waiters are served first-in first-out, so none starves. Try-variants
 * return -EAGAIN instead of waiting. An object must not be destroyed, freed
 * or moved while a task or thread waits on it or holds it.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <stdint.h>
#include <weft/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_MUTEX_SIZE 32
#define WEFT_RWLOCK_SIZE 48
#define WEFT_SEM_SIZE 32
#define WEFT_EVENT_SIZE 32
#define WEFT_COND_SIZE 32
#define WEFT_BARRIER_SIZE 40
#define WEFT_WAITGROUP_SIZE 32
#define WEFT_ONCE_SIZE 32

/* The storage: an 8-byte aligned header (a count for semaphores and
 * barriers) followed by private state. Never touch the fields. */
#define WEFT__OPAQUE(name, size)                                            \
	typedef union name {                                                \
		int64_t __hdr;                                              \
		unsigned char __opaque[size];                               \
	} name

WEFT__OPAQUE(weft_mutex, WEFT_MUTEX_SIZE);
WEFT__OPAQUE(weft_rwlock, WEFT_RWLOCK_SIZE);
WEFT__OPAQUE(weft_sem, WEFT_SEM_SIZE);
WEFT__OPAQUE(weft_event, WEFT_EVENT_SIZE);
WEFT__OPAQUE(weft_cond, WEFT_COND_SIZE);
WEFT__OPAQUE(weft_barrier, WEFT_BARRIER_SIZE);
WEFT__OPAQUE(weft_waitgroup, WEFT_WAITGROUP_SIZE);
WEFT__OPAQUE(weft_once, WEFT_ONCE_SIZE);

#define WEFT_MUTEX_INIT { 0 }
#define WEFT_RWLOCK_INIT { 0 }
#define WEFT_SEM_INIT(n) { (int64_t)(n) }
#define WEFT_EVENT_INIT { 0 }
#define WEFT_COND_INIT { 0 }
#define WEFT_BARRIER_INIT(n) { (int64_t)(n) }
#define WEFT_WAITGROUP_INIT { 0 }
#define WEFT_ONCE_INIT { 0 }

/*
 * Mutex. Uncontended lock and unlock take no syscall and no allocation.
 * lock: 0, -ECANCELED, -ETIMEDOUT (the mutex is then not held).
 * trylock: 0 or -EAGAIN. unlock: 0, or -EPERM if it was not locked (any
 * task or thread may unlock, as with Go's sync.Mutex). destroy: 0, or
 * -EBUSY if it is locked or waited on. init/destroy: -EINVAL for NULL.
 */
WEFT_EXPORT int weft_mutex_init(weft_mutex *m);
WEFT_EXPORT int weft_mutex_destroy(weft_mutex *m);
WEFT_EXPORT int weft_mutex_lock(weft_mutex *m);
WEFT_EXPORT int weft_mutex_trylock(weft_mutex *m);
WEFT_EXPORT int weft_mutex_unlock(weft_mutex *m);

/*
 * Readers-writer lock: any number of readers, or one writer. Readers may
 * keep entering while a writer waits for the lock to be free, which keeps a
 * read-mostly lock fast; but a writer that has waited 1 ms holds back new
 * readers until it has had the lock, so a stream of readers cannot starve
 * it, and every unlock that frees the lock lets all queued readers compete.
 * rdlock/wrlock: 0, -ECANCELED, -ETIMEDOUT. try*: 0 or -EAGAIN.
 * unlock releases a read or the write lock: 0, or -EPERM if not held.
 */
WEFT_EXPORT int weft_rwlock_init(weft_rwlock *l);
WEFT_EXPORT int weft_rwlock_destroy(weft_rwlock *l);
WEFT_EXPORT int weft_rwlock_rdlock(weft_rwlock *l);
WEFT_EXPORT int weft_rwlock_wrlock(weft_rwlock *l);
WEFT_EXPORT int weft_rwlock_tryrdlock(weft_rwlock *l);
WEFT_EXPORT int weft_rwlock_trywrlock(weft_rwlock *l);
WEFT_EXPORT int weft_rwlock_unlock(weft_rwlock *l);

/*
 * Counting semaphore (asyncio.Semaphore). init: n permits (0 .. INT64_MAX).
 * acquire: 0, -ECANCELED, -ETIMEDOUT. tryacquire: 0 or -EAGAIN.
 * release: 0, or -EOVERFLOW past INT64_MAX permits. Waiters are served
 * in order (a release hands its permit to the longest waiter), though an
 * acquire arriving at the same moment as the release may take it first.
 */
WEFT_EXPORT int weft_sem_init(weft_sem *s, int64_t n);
WEFT_EXPORT int weft_sem_acquire(weft_sem *s);
WEFT_EXPORT int weft_sem_tryacquire(weft_sem *s);
WEFT_EXPORT int weft_sem_release(weft_sem *s);
/* The permits available now (a snapshot). */
WEFT_EXPORT int64_t weft_sem_value(weft_sem *s);

/*
 * Event (asyncio.Event): set wakes every waiter, and later waits return at
 * once until clear. wait: 0, -ECANCELED, -ETIMEDOUT. is_set: 1 or 0.
 */
WEFT_EXPORT int weft_event_init(weft_event *e);
WEFT_EXPORT int weft_event_set(weft_event *e);
WEFT_EXPORT int weft_event_clear(weft_event *e);
WEFT_EXPORT int weft_event_wait(weft_event *e);
WEFT_EXPORT int weft_event_is_set(weft_event *e);

/*
 * Condition variable, used with a weft_mutex. wait atomically unlocks m and
 * waits for a signal, then locks m again before it returns, also when it
 * returns -ECANCELED or -ETIMEDOUT (re-locking is shielded). As with every
 * condition variable, re-check the predicate in a loop.
 * signal wakes the longest waiter, broadcast all of them.
 */
WEFT_EXPORT int weft_cond_init(weft_cond *c);
WEFT_EXPORT int weft_cond_destroy(weft_cond *c);
WEFT_EXPORT int weft_cond_wait(weft_cond *c, weft_mutex *m);
WEFT_EXPORT int weft_cond_signal(weft_cond *c);
WEFT_EXPORT int weft_cond_broadcast(weft_cond *c);

/*
 * Barrier for n parties (n >= 1). wait returns once n have arrived: 1 in
 * exactly one of them (like PTHREAD_BARRIER_SERIAL_THREAD), 0 in the
 * others; the barrier then starts over for the next n. A waiter that is
 * cancelled or times out leaves (-ECANCELED / -ETIMEDOUT) and no longer
 * counts. init: -EINVAL for n < 1.
 */
WEFT_EXPORT int weft_barrier_init(weft_barrier *b, int64_t n);
WEFT_EXPORT int weft_barrier_wait(weft_barrier *b);

/*
 * Wait group (Go's sync.WaitGroup): add(delta) changes the counter; done
 * is add(-1); wait returns when it is zero. add: 0, or -EINVAL if the
 * counter would go negative (it is left unchanged).
 */
WEFT_EXPORT int weft_waitgroup_add(weft_waitgroup *wg, int64_t delta);
WEFT_EXPORT int weft_waitgroup_done(weft_waitgroup *wg);
WEFT_EXPORT int weft_waitgroup_wait(weft_waitgroup *wg);

/*
 * Runs fn(arg) exactly once per weft_once object. Callers that arrive while
 * it runs wait for it to finish. Returns 0 once fn has run (by this call or
 * an earlier one), or -ECANCELED / -ETIMEDOUT for a caller that gave up
 * waiting (fn still runs to its end in the caller that started it).
 */
WEFT_EXPORT int weft_once_call(weft_once *o, void (*fn)(void *), void *arg);

#ifdef __cplusplus
}
#endif
#endif
