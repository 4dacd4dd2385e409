/* SPDX-License-Identifier: MIT */
/*
 * Workloads of the core runtime (issue 2): spawn, yield, chain, memory.
 * Each runs inside the first task of weft_run() and checks its own count.
 */
#include "bench.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- spawn: n tasks bump a counter; keep every handle, then join all. */

static int spawn_bump(void *arg)
{
	atomic_fetch_add_explicit((atomic_ulong *)arg, 1, memory_order_relaxed);
	return 0;
}

int bench_spawn(struct bench_run *r)
{
	atomic_ulong counter = 0;
	weft_task **h;
	uint64_t i, got;
	int rc = 0;

	h = bench_handles(r, r->n);
	if (!h)
		return -1;
	bench_start(r);
	for (i = 0; i < r->n; i++) {
		rc = weft_spawn(&h[i], spawn_bump, &counter);
		if (rc < 0) {
			bench_fail(r, "weft_spawn #%llu: %s",
				   (unsigned long long)i, weft_strerror(rc));
			break;
		}
	}
	/* On a spawn failure, still join the spawned ones: they use counter. */
	bench_join_all(r, h, i, "task", true);
	bench_stop(r);
	free(h);
	r->ops = r->n;
	got = atomic_load_explicit(&counter, memory_order_relaxed);
	if (!r->err[0] && got != r->n)
		bench_fail(r, "counter %llu after joining %llu tasks",
			   (unsigned long long)got, (unsigned long long)r->n);
	return r->err[0] ? -1 : 0;
}

/* ---- yield: n tasks x m weft_yield() each; ns per yield. */

static int yield_task(void *arg)
{
	uint64_t i, m = *(const uint64_t *)arg;
	int rc;

	for (i = 0; i < m; i++) {
		rc = weft_yield();
		if (rc < 0)
			return rc;
	}
	return 0;
}

int bench_yield(struct bench_run *r)
{
	weft_task **h;
	uint64_t i;
	int rc;

	h = bench_handles(r, r->n);
	if (!h)
		return -1;
	bench_start(r);
	for (i = 0; i < r->n; i++) {
		rc = weft_spawn(&h[i], yield_task, &r->m);
		if (rc < 0) {
			bench_fail(r, "weft_spawn #%llu: %s",
				   (unsigned long long)i, weft_strerror(rc));
			break;
		}
	}
	bench_join_all(r, h, i, "task", true);
	bench_stop(r);
	free(h);
	r->ops = r->n * r->m;
	return r->err[0] ? -1 : 0;
}

/*
 * ---- chain: hop k spawns hop k+1 detached and returns; n hops.
 *
 * The main task waits by joining a sink task that sleeps "forever"; the last
 * hop stamps the time and cancels the sink. Nothing polls, so the chain has
 * its workers to itself, and the interval ends at the last hop itself, not
 * at the main task's wake-up.
 */
static struct {
	weft_task *sink;
	_Atomic uint64_t t_end;
	atomic_int err;
} chain;

static int chain_sink(void *arg)
{
	int rc;

	(void)arg;
	rc = weft_sleep(BENCH_LONG_SLEEP);
	return rc == -ECANCELED ? 0 : rc < 0 ? rc : -ETIME;
}

static int chain_hop(void *arg)
{
	uintptr_t left = (uintptr_t)arg;
	int rc;

	if (left > 1) {
		rc = weft_spawn(NULL, chain_hop, (void *)(left - 1));
		if (rc == 0)
			return 0;
		atomic_store_explicit(&chain.err, rc, memory_order_relaxed);
	}
	/* Release: t_end (and err) before the cancel that ends the sink;
	 * pairs with the acquire load after weft_join in bench_chain. */
	atomic_store_explicit(&chain.t_end, weft_now(), memory_order_release);
	weft_cancel(chain.sink);
	return 0;
}

int bench_chain(struct bench_run *r)
{
	int rc, res = 0;

	if (r->n > UINTPTR_MAX)
		return bench_fail(r, "-n too large");
	atomic_store(&chain.t_end, 0);
	atomic_store(&chain.err, 0);
	rc = weft_spawn(&chain.sink, chain_sink, NULL);
	if (rc < 0)
		return bench_fail(r, "weft_spawn sink: %s", weft_strerror(rc));
	bench_start(r);
	rc = weft_spawn(NULL, chain_hop, (void *)(uintptr_t)r->n);
	if (rc < 0) {
		weft_cancel(chain.sink);
		bench_fail(r, "weft_spawn first hop: %s", weft_strerror(rc));
	}
	rc = weft_join(chain.sink, &res);
	bench_stop(r);
	if (rc < 0)
		return bench_fail(r, "weft_join sink: %s", weft_strerror(rc));
	if (res != 0 && res != -ECANCELED)
		return bench_fail(r, "sink returned %d (%s)", res,
				  weft_strerror(res));
	r->t1 = atomic_load_explicit(&chain.t_end, memory_order_acquire);
	rc = atomic_load_explicit(&chain.err, memory_order_relaxed);
	if (rc)
		return bench_fail(r, "a hop failed to spawn the next: %s",
				  weft_strerror(rc));
	if (r->err[0])
		return -1;
	if (r->t1 < r->t0)
		return bench_fail(r, "the last hop never ran");
	r->ops = r->n;
	return 0;
}

/*
 * ---- memory: n tasks asleep at once; (peak RSS - RSS before) / n.
 *
 * The sleepers are detached: weft_run cancels them when the main task
 * returns, which also exercises shutdown with a million sleeping tasks.
 */
static atomic_ulong mem_asleep;

static int mem_sleeper(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&mem_asleep, 1, memory_order_relaxed);
	weft_sleep(BENCH_LONG_SLEEP); /* until cancelled */
	return 0;
}

#define MEM_POLL_NS 1000000ULL           /* 1 ms */
#define MEM_GIVE_UP_NS 300000000000ULL   /* 300 s */

int bench_memory(struct bench_run *r)
{
	long base, hwm0, rss, hwm;
	uint64_t i, now;
	int rc;

	base = bench_proc_kb("VmRSS");
	hwm0 = bench_proc_kb("VmHWM");
	if (base < 0 || hwm0 < 0)
		return bench_fail(r, "cannot read /proc/self/status");
	atomic_store(&mem_asleep, 0);
	bench_start(r);
	for (i = 0; i < r->n; i++) {
		rc = weft_spawn(NULL, mem_sleeper, NULL);
		if (rc < 0)
			return bench_fail(r, "weft_spawn #%llu: %s",
					  (unsigned long long)i,
					  weft_strerror(rc));
	}
	while (atomic_load_explicit(&mem_asleep, memory_order_relaxed) < r->n) {
		rc = weft_sleep(MEM_POLL_NS);
		if (rc < 0)
			return bench_fail(r, "weft_sleep: %s",
					  weft_strerror(rc));
		now = weft_now();
		if (now - r->t0 > MEM_GIVE_UP_NS)
			return bench_fail(r, "only %lu of %llu tasks started "
					  "after %llu s",
					  atomic_load(&mem_asleep),
					  (unsigned long long)r->n,
					  MEM_GIVE_UP_NS / 1000000000ULL);
	}
	bench_stop(r);
	/* The last ones counted themselves just before they went to sleep. */
	rc = weft_sleep(10 * MEM_POLL_NS);
	if (rc < 0)
		return bench_fail(r, "weft_sleep: %s", weft_strerror(rc));
	rss = bench_proc_kb("VmRSS");
	hwm = bench_proc_kb("VmHWM");
	if (rss < 0 || hwm < 0)
		return bench_fail(r, "cannot read /proc/self/status");
	r->ops = r->n;
	r->has_value = 1;
	r->value = (double)(hwm - base) * 1024.0 / (double)r->n;
	bench_extra(r, "rss_per_task", (double)(rss - base) * 1024.0 /
				       (double)r->n);
	bench_extra(r, "rss_base_kb", (double)base);
	bench_extra(r, "hwm_base_kb", (double)hwm0);
	bench_extra(r, "rss_kb", (double)rss);
	bench_extra(r, "hwm_kb", (double)hwm);
	return 0;
}
