/* SPDX-License-Identifier: MIT */
/*
 * Runtime lifecycle: create workers, run a first task, shut down.
 *
 * Shutdown (weft_rt_shutdown):
 *  1. set `closing` (seq_cst): from here spawns from outside fail with
 *     -ESHUTDOWN, and spawns by tasks create tasks already cancelled;
 *  2. cancel every task that ever parked (the registries) and let the
 *     others see `closing` at their next suspending call (task.c explains
 *     why none is missed);
 *  3. wait until no task is alive (live_tasks): a task that ends while closing
 *     bumps `exit_epoch` and futex-wakes it; the waiter reads the epoch
 *     before summing the counts, so an end it did not count changes the
 *     epoch and its futex_wait returns at once;
 *  4. stop the blocking pool (blocking.c): with no task alive no blocking
 *     call is queued or running, so its threads are idle; they are joined;
 *  5. set `stop` and wake every parked worker; workers exit when they find
 *     no work and see `stop`, and are joined.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "blocking.h"
#include "internal.h"
#include "../io/driver.h"

/* How often shutdown re-reads the counters while it waits. */
#define SHUTDOWN_POLL_NS 2000000

static int validate(const weft_config *c)
{
	if (c->flags)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(c->reserved_u) / sizeof(c->reserved_u[0]); i++)
		if (c->reserved_u[i])
			return -EINVAL;
	for (size_t i = 0; i < sizeof(c->reserved) / sizeof(c->reserved[0]); i++)
		if (c->reserved[i])
			return -EINVAL;
	if (c->workers > WEFT_MAX_WORKERS)
		return -EINVAL;
	if (c->stack_size && !stack_round_size(c->stack_size))
		return -EINVAL;
	if (c->blocking_threads > BPOOL_MAX)
		return -EINVAL;
	return 0;
}

static void free_workers(struct weft_rt *rt)
{
	for (int i = 0; rt->workers && i < rt->nworkers; i++) {
		struct worker *w = rt->workers[i];

		if (!w)
			continue;
		timer_heap_destroy(&w->timers);
		free(w);
	}
	free(rt->workers);
}

static void destroy(struct weft_rt *rt)
{
	weft__io_fini(rt);
	free_workers(rt);
	weft__bpool_destroy(rt);
	weft__task_pool_destroy(rt);
	stack_pool_destroy(&rt->stacks);
	idle_destroy(&rt->idle);
	inject_destroy(&rt->inject);
	pthread_mutex_destroy(&rt->stop_lock);
	free(rt);
}

static void stop_workers(struct weft_rt *rt, int started)
{
	monitor_stop(rt);
	/* release: pairs with the acquire in the worker loop; every task
	 * has ended before this store. */
	STORE(&rt->stop, 1, release);
	idle_wake_all(rt);
	for (int i = 0; i < started; i++)
		pthread_join(rt->workers[i]->thread, NULL);
	/* release: a shutdown that sees it (acquire) returns after the
	 * workers ended. */
	STORE(&rt->stopped, true, release);
}

int weft_rt_new(weft_rt **out, const weft_config *cfg)
{
	weft_config c;
	struct weft_rt *rt;
	long ncpu;
	int n, rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	memset(&c, 0, sizeof(c));
	if (cfg)
		c = *cfg;
	rc = validate(&c);
	if (rc)
		return rc;
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	n = c.workers ? (int)c.workers : (int)(ncpu > 0 ? ncpu : 1);
	if (n > WEFT_MAX_WORKERS)
		n = WEFT_MAX_WORKERS;

	rt = weft__fail_point(WEFT_FAIL_MALLOC) ? NULL : calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	rt->nworkers = n;
	rt->stack_size = c.stack_size ? stack_round_size(c.stack_size)
				      : STACK_DEFAULT_SIZE;
	inject_init(&rt->inject);
	pthread_mutex_init(&rt->task_lock, NULL);
	pthread_mutex_init(&rt->stop_lock, NULL);
	if (idle_init(&rt->idle, n) < 0) {
		inject_destroy(&rt->inject);
		free(rt);
		return -ENOMEM;
	}
	rc = stack_pool_init(&rt->stacks, rt->stack_size);
	rt->workers = calloc((size_t)n, sizeof(*rt->workers));
	if (!rc)
		rc = weft__bpool_init(rt, c.blocking_threads);
	if (rc || !rt->workers) {
		destroy(rt);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		struct worker *w = aligned_alloc(CACHELINE,
			(sizeof(*w) + CACHELINE - 1) & ~(size_t)(CACHELINE - 1));

		if (!w) {
			destroy(rt);
			return -ENOMEM;
		}
		memset(w, 0, sizeof(*w));
		rq_init(&w->rq);
		timer_heap_init(&w->timers);
		w->reg.lock = (spinlock)SPINLOCK_INIT;
		STORE(&w->park, PARK_NOTIFIED, relaxed);
		w->index = i;
		w->rt = rt;
		w->rng = 0x9e3779b9u * (uint32_t)(i + 1);
		rt->workers[i] = w;
	}
	rc = weft__io_init(rt, &c);
	if (rc) {
		destroy(rt);
		return rc;
	}
	for (int i = 0; i < n; i++) {
		rc = pthread_create(&rt->workers[i]->thread, NULL,
				    weft__worker_main, rt->workers[i]);
		if (rc) {
			stop_workers(rt, i);
			destroy(rt);
			return -rc;
		}
	}
	rc = monitor_start(rt);
	if (rc) {
		stop_workers(rt, n);
		destroy(rt);
		return rc;
	}
	*out = rt;
	return 0;
}

int weft_rt_workers(const weft_rt *rt)
{
	return rt ? rt->nworkers : -EINVAL;
}

/*
 * Tasks alive = spawned - completed. Completions are summed FIRST: every
 * completion we count was preceded by its spawn's count (the spawn counts
 * before it queues the task; acquire/release make that visible to us), so
 * a task can never be counted completed but not spawned, and 0 really means
 * none was alive when the completions were read.
 */
static uint64_t live_tasks(struct weft_rt *rt)
{
	uint64_t done = 0, spawned;

	for (int i = 0; i < rt->nworkers; i++)
		done += LOAD(&rt->workers[i]->n_completed, acquire);
	spawned = LOAD(&rt->ext_spawned, acquire);
	for (int i = 0; i < rt->nworkers; i++)
		spawned += LOAD(&rt->workers[i]->n_spawned, acquire);
	return spawned - done;
}

int weft_rt_shutdown(weft_rt *rt, uint64_t timeout_ns)
{
	struct worker *w = weft__worker();
	uint64_t now = weft_now(), deadline;

	if (!rt)
		return -EINVAL;
	if (w && w->rt == rt)
		return -EDEADLK;
	if (LOAD(&rt->stopped, acquire))
		return 0;
	deadline = timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
	STORE(&rt->closing, 1, seq_cst);
	for (int i = 0; i < rt->nworkers; i++)
		weft__registry_cancel_all(&rt->workers[i]->reg);
	for (;;) {
		uint32_t e = LOAD(&rt->exit_epoch, seq_cst);

		if (live_tasks(rt) == 0)
			break;
		now = weft_now();
		if (now >= deadline)
			return -ETIMEDOUT;
		/* The epoch wakes us; the poll covers the one case it
		 * cannot (task.c, weft__task_complete). */
		weft__futex_wait(&rt->exit_epoch, e,
				 deadline - now < SHUTDOWN_POLL_NS
					 ? deadline - now
					 : SHUTDOWN_POLL_NS);
	}
	/* Shutdowns from several threads all get here; one stops. */
	pthread_mutex_lock(&rt->stop_lock);
	if (!LOAD(&rt->stopped, relaxed)) {
		weft__bpool_stop(rt);
		stop_workers(rt, rt->nworkers);
	}
	pthread_mutex_unlock(&rt->stop_lock);
	return 0;
}

void weft_rt_free(weft_rt *rt)
{
	struct worker *w = weft__worker();

	if (!rt || (w && w->rt == rt))
		return;
	weft_rt_shutdown(rt, UINT64_MAX); /* 0 at once if already done */
	destroy(rt);
}

static int block_on(weft_rt *rt, int (*fn)(void *), void *arg, int *result,
		    bool root)
{
	struct worker *w = weft__worker();
	weft_task *t;
	bool started;
	int rc, r;

	if (!rt || !fn)
		return -EINVAL;
	if (w && w->rt == rt)
		return -EDEADLK;
	rc = root ? weft__rt_spawn_root(rt, &t, fn, arg)
		  : weft_rt_spawn(rt, &t, fn, arg);
	if (rc)
		return rc;
	rc = weft__join(t, &r, &started);
	if (rc)
		return rc;
	if (result)
		*result = r;
	if (started)
		return 0;
	/* Cancelled by a shutdown before it ever ran, or no stack for it. */
	return r == -ECANCELED ? -ESHUTDOWN : r;
}

int weft_rt_block_on(weft_rt *rt, int (*fn)(void *), void *arg, int *result)
{
	return block_on(rt, fn, arg, result, false);
}

int weft_run(const weft_config *cfg, int (*fn)(void *), void *arg,
	     int *result)
{
	weft_rt *rt;
	int rc;

	if (!fn)
		return -EINVAL;
	rc = weft_rt_new(&rt, cfg);
	if (rc)
		return rc;
	rc = block_on(rt, fn, arg, result, true);
	weft_rt_free(rt);
	return rc;
}
