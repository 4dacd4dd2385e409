/* SPDX-License-Identifier: MIT */
/*
 * The blocking pool (run_in_executor / spawn_blocking): plain threads that
 * run calls which would block a worker.
 *
 * Everything here is under one pthread mutex, `mu`: the job queue, the
 * thread counts and the list of exited threads. It is not a worker's hot
 * path (a blocking call costs a thread hand-off anyway), and a mutex with
 * condition variables gives idle threads a keep-alive timeout for free.
 *
 * A job lives on the calling task's stack and holds a struct weft__waiter;
 * the queue is a waitq of those waiters, and the waitq protocol (waitq.h)
 * with `mu` as the object's lock makes the hand-off:
 *  1. the task, under mu, prepares its waiter (begins its park), queues the
 *     job, and wakes an idle thread or starts a new one (up to `max`);
 *  2. it drops mu and sleeps;
 *  3. a pool thread pops the job under mu and marks it running, runs fn
 *     without mu, then under mu stores the result and grants the waiter
 *     (status 1). It never touches the job after dropping mu again;
 *  4. the task retakes mu. Granted: it takes the result. Not granted (it
 *     was cancelled or its deadline expired): if the job never started it
 *     takes it off the queue and returns at once; if fn is running, it
 *     must not return (fn may use its stack): it waits again under a hold
 *     (internal.h: no cancellation, no deadline), refreshing its waiter's seq
 *     under mu each time, until granted, and then returns the error.
 *
 * Threads: a thread is started when a job is queued and there are more
 * queued jobs than idle threads, as long as there are fewer than `max`;
 * otherwise the job waits in the queue for a thread that finishes its
 * current job (each thread drains the queue before idling), so a full
 * pool queues and never deadlocks. An idle thread waits on `work` for
 * KEEPALIVE_NS and exits if the queue is still empty; it leaves itself on
 * `zombies`, to be joined by the next submit or by the stop. Stop (at
 * runtime shutdown, when no task is alive and so no job exists) sets
 * `stopping`, wakes every idle thread, waits on `gone` for the count to
 * reach zero and joins them all.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include "blocking.h"
#include "waitq.h"

#define KEEPALIVE_NS (10ull * 1000000000ull)

struct bjob {
	struct weft__waiter w;		/* queue link; status 1 = done */
	int (*fn)(void *);		/* constant */
	void *arg;			/* constant */
	int result;			/* written under mu before the grant */
	bool running;			/* under mu: popped by a thread */
};

struct bthread {
	pthread_t tid;
	struct bthread *next;		/* on zombies; under mu */
	struct bpool *p;		/* constant */
};

struct bpool {
	pthread_mutex_t mu;
	pthread_cond_t work;		/* idle threads wait here */
	pthread_cond_t gone;		/* stop waits for nthreads == 0 */
	struct waitq q;			/* queued jobs; under mu */
	size_t qlen;			/* under mu */
	unsigned max;			/* constant */
	unsigned nthreads, nidle;	/* under mu */
	bool stopping;			/* under mu */
	struct bthread *zombies;	/* exited, not yet joined; under mu */
};

static struct bjob *job_of(struct weft__waiter *w)
{
	return (struct bjob *)((char *)w - offsetof(struct bjob, w));
}

static void *bthread_main(void *arg)
{
	struct bthread *self = arg;
	struct bpool *p = self->p;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct weft__waiter *w = waitq_pop(&p->q);

		if (w) {
			struct bjob *j = job_of(w);
			int r;

			p->qlen--;
			j->running = true;
			pthread_mutex_unlock(&p->mu);
			r = j->fn(j->arg);
			pthread_mutex_lock(&p->mu);
			j->result = r;
			/* Step 3: under mu, so the task (which retakes mu
			 * before it returns) outlives this call. */
			waiter_grant(&j->w, 1);
			continue;
		}
		if (p->stopping)
			break;
		struct timespec ts;
		uint64_t at;
		int rc;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		at = (uint64_t)ts.tv_sec * 1000000000ull +
		     (uint64_t)ts.tv_nsec + KEEPALIVE_NS;
		ts.tv_sec = (time_t)(at / 1000000000ull);
		ts.tv_nsec = (long)(at % 1000000000ull);
		p->nidle++;
		rc = pthread_cond_timedwait(&p->work, &p->mu, &ts);
		p->nidle--;
		if (rc == ETIMEDOUT && waitq_empty(&p->q))
			break; /* kept alive long enough */
	}
	p->nthreads--;
	self->next = p->zombies;
	p->zombies = self;
	if (p->nthreads == 0)
		pthread_cond_broadcast(&p->gone);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Starts one thread. mu held. Returns 0 or a positive errno. */
static int start_thread(struct bpool *p)
{
	struct bthread *t = malloc(sizeof(*t));
	int rc;

	if (!t)
		return ENOMEM;
	t->p = p;
	t->next = NULL;
	rc = pthread_create(&t->tid, NULL, bthread_main, t);
	if (rc) {
		free(t);
		return rc;
	}
	p->nthreads++;
	return 0;
}

/* Joins threads taken off the zombie list (mu NOT held: they may still
 * be unlocking it on their way out). */
static void join_zombies(struct bthread *z)
{
	while (z) {
		struct bthread *next = z->next;

		pthread_join(z->tid, NULL);
		free(z);
		z = next;
	}
}

int weft__bpool_init(struct weft_rt *rt, unsigned max_threads)
{
	struct bpool *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->work, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&p->gone, NULL);
	p->max = max_threads ? max_threads : BPOOL_DEFAULT;
	rt->bpool = p;
	return 0;
}

void weft__bpool_stop(struct weft_rt *rt)
{
	struct bpool *p = rt->bpool;
	struct bthread *z;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->work);
	while (p->nthreads > 0)
		pthread_cond_wait(&p->gone, &p->mu);
	z = p->zombies;
	p->zombies = NULL;
	pthread_mutex_unlock(&p->mu);
	join_zombies(z);
}

void weft__bpool_destroy(struct weft_rt *rt)
{
	struct bpool *p = rt->bpool;

	if (!p)
		return;
	weft__bpool_stop(rt);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->gone);
	pthread_mutex_destroy(&p->mu);
	free(p);
	rt->bpool = NULL;
}

int weft_blocking(int (*fn)(void *), void *arg, int *result)
{
	struct weft_task *self = weft__current();
	struct bpool *p;
	struct bthread *z;
	struct bjob j;
	int rc;

	if (!fn)
		return -EINVAL;
	if (!self) {
		int r = fn(arg); /* a plain thread may block itself */

		if (result)
			*result = r;
		return 0;
	}
	rc = weft__check_interrupt(self);
	if (rc)
		return rc;
	p = self->rt->bpool;
	j.fn = fn;
	j.arg = arg;
	j.result = 0;
	j.running = false;

	pthread_mutex_lock(&p->mu);
	/* Start a thread first, so a failure needs no undo. */
	if (p->qlen + 1 > p->nidle && p->nthreads < p->max) {
		int e = start_thread(p);

		if (e && p->nthreads == 0) {
			pthread_mutex_unlock(&p->mu);
			return -ENOMEM; /* no thread would ever run it */
		}
	}
	waiter_prepare(&j.w); /* step 1 */
	waitq_push(&p->q, &j.w);
	p->qlen++;
	if (p->nidle)
		pthread_cond_signal(&p->work);
	z = p->zombies;
	p->zombies = NULL;
	pthread_mutex_unlock(&p->mu);
	join_zombies(z);

	rc = waiter_sleep(&j.w); /* step 2 */

	pthread_mutex_lock(&p->mu); /* step 4 */
	if (j.w.status) {
		rc = 0; /* done: wins over a racing cancel or timeout */
	} else if (!j.running) {
		/* Gave up before any thread took it: fn never runs. */
		waitq_remove(&p->q, &j.w);
		p->qlen--;
		pthread_mutex_unlock(&p->mu);
		return rc;
	} else {
		uint64_t saved;

		/* fn runs and may use our stack: wait for it. */
		weft__hold_begin(self, &saved);
		while (!j.w.status) {
			/* Under mu: the thread grants {task, seq} under it
			 * too, so it sees this wait's seq. */
			j.w.seq = weft__park_begin(self);
			pthread_mutex_unlock(&p->mu);
			weft__park_commit(self, UINT64_MAX);
			pthread_mutex_lock(&p->mu);
		}
		weft__hold_end(self, saved);
	}
	pthread_mutex_unlock(&p->mu);
	if (result)
		*result = j.result;
	return rc;
}
