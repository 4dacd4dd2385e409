/* SPDX-License-Identifier: MIT */
/*
 * The monitor: one thread per runtime of two or more workers that keeps a
 * worker stuck in one long task (a computation that never suspends, a
 * blocking system call) from holding back what the other workers could
 * do. Go's sysmon plays this part.
 *
 * Timers live in per-worker heaps, and a worker fires its own when it gets
 * back to its scheduler (sched.c, maintenance). A task asleep on a stuck
 * worker would sleep until that worker's task ended, while the others
 * parked with nothing to do; likewise tasks queued on a stuck worker wait
 * for a hint (idle.c, "Local pushes") that only that worker repeats.
 *
 * The monitor looks at each worker every MON_PERIOD_NS, and MON_GRACE_NS
 * after the earliest timer due on a worker it found stuck:
 *  - parked (its park word is WAITING): it fires its own timers on time;
 *  - its `beat` moved since the last look: it reached its maintenance,
 *    which comes at least every INJECT_INTERVAL task switches and after
 *    every park, so it is not stuck;
 *  - otherwise, once its beat has stood still for a whole period, it is
 *    stuck: it has run one task, or fewer than INJECT_INTERVAL tasks, in
 *    that time. The monitor fires the heap's due timers itself (under the
 *    heap's lock, which is what makes firing safe from any thread:
 *    timer.c), so the woken tasks go to the inject queue and a parked
 *    worker is notified (sched.c, weft__schedule from a plain thread); it
 *    moves the task in the worker's LIFO slot to the inject queue the
 *    same way (sched.c, "The LIFO slot"); and if the worker's queue holds
 *    tasks, it notifies a parked worker, which steals them.
 * A worker is found stuck at the second look after it got stuck, 10 to 20
 * ms later; from then on its timers fire about MON_GRACE_NS late. A worker
 * that merely ran a task longer than the time between two looks has its
 * due timers fired by the monitor instead of by itself, which is harmless.
 * Grace looks follow only stuck workers' timers, so a busy runtime full of
 * timers still costs 100 looks a second, not one per timer. Left behind a
 * stuck worker: its ring's completions (only the owner may reap a
 * SINGLE_ISSUER, DEFER_TASKRUN ring).
 *
 * An idle runtime costs no wake-ups: when the monitor has seen every worker
 * parked MON_IDLE_LOOKS times in a row, it sleeps on `mon.sleeping` until
 * the next worker unparks (idle.c calls monitor_unparked when the count of
 * unparked workers leaves 0). The monitor stores sleeping = 1 and then
 * reads idle.state; an unparker changes idle.state and then reads
 * sleeping; all four accesses are seq_cst, so at least one side sees the
 * other (a Dekker pair): either the monitor sees a worker unparked and
 * does not sleep, or the unparker sees it asleep and wakes it. A timer
 * that wakes a parked worker also wakes the monitor, for at least
 * MON_IDLE_LOOKS looks.
 */
#include <errno.h>
#include <stdlib.h>
#include "internal.h"
#include "idle.h"

/* Go's sysmon settles at the same period; 100 wake-ups a second while any
 * worker is awake cost about 0.1% of a core. A due timer on a stuck
 * worker brings the next look forward to MON_GRACE_NS after it. */
#define MON_PERIOD_NS 10000000ull
#define MON_GRACE_NS 1000000ull
#define MON_IDLE_LOOKS 8

/* One look at every worker. Returns when to look next, or 0 if every
 * worker was parked. */
static uint64_t look(struct weft_rt *rt, struct mon_seen *seen)
{
	uint64_t now = weft_now(), next = now + MON_PERIOD_NS;
	bool awake = false;

	for (int i = 0; i < rt->nworkers; i++) {
		struct worker *v = rt->workers[i];
		uint32_t beat = LOAD(&v->beat, relaxed);
		struct weft_task *t;
		uint64_t due;

		if (LOAD(&v->park, relaxed) == PARK_WAITING) {
			/* Woken, it counts as moved until its first
			 * maintenance, which comes right after the park. */
			seen[i].beat = beat - 1;
			continue;
		}
		awake = true;
		if (beat != seen[i].beat) {
			seen[i].beat = beat;
			seen[i].at = now;
			continue;
		}
		/* Stuck only if unmoved for a whole period: a grace look
		 * comes sooner, and a busy worker whose tasks are long-ish
		 * reaches maintenance only every INJECT_INTERVAL of them. */
		if (now - seen[i].at < MON_PERIOD_NS)
			continue;
		timer_fire_expired(&v->timers, now);
		if ((t = weft__lifo_take(v)))
			weft__schedule(t, false);
		if (rq_len(&v->rq) > 0)
			idle_notify(rt);
		due = timer_next(&v->timers);
		if (due < next - MON_GRACE_NS)
			next = (due > now ? due : now) + MON_GRACE_NS;
	}
	return awake ? next : 0;
}

static void *monitor_main(void *arg)
{
	struct weft_rt *rt = arg;
	struct monitor *m = &rt->mon;
	uint64_t next = weft_now() + MON_PERIOD_NS;
	int idle_looks = 0;

	/* stop is seq_cst here and in monitor_stop: with the seq_cst
	 * accesses to sleeping, the single total order keeps a stop that
	 * clears sleeping before the monitor sets it from going unseen. */
	while (!LOAD(&m->stop, seq_cst)) {
		uint64_t now = weft_now();

		if (now < next) {
			weft__futex_wait(&m->stop, 0, next - now);
			continue;
		}
		next = look(rt, m->seen);
		if (next) {
			idle_looks = 0;
			continue;
		}
		next = weft_now() + MON_PERIOD_NS;
		if (++idle_looks < MON_IDLE_LOOKS)
			continue;
		STORE(&m->sleeping, 1, seq_cst);
		while (idle_all_parked(rt) && LOAD(&m->sleeping, seq_cst) &&
		       !LOAD(&m->stop, seq_cst))
			weft__futex_wait(&m->sleeping, 1, UINT64_MAX);
		STORE(&m->sleeping, 0, relaxed);
		idle_looks = 0;
		next = weft_now() + MON_PERIOD_NS;
	}
	return NULL;
}

void monitor_unparked(struct weft_rt *rt)
{
	struct monitor *m = &rt->mon;

	/* seq_cst: the second half of the Dekker pair above. */
	if (LOAD(&m->sleeping, seq_cst) && XCHG(&m->sleeping, 0, seq_cst))
		weft__futex_wake(&m->sleeping, 1);
}

int monitor_start(struct weft_rt *rt)
{
	struct monitor *m = &rt->mon;
	int rc;

	if (rt->nworkers < 2)
		return 0; /* a stuck single worker leaves nothing to run on */
	m->seen = calloc((size_t)rt->nworkers, sizeof(*m->seen));
	if (!m->seen)
		return -ENOMEM;
	rc = weft__thread_start(&m->thread, monitor_main, rt, false);
	if (rc) {
		free(m->seen);
		m->seen = NULL;
		return rc;
	}
	m->started = true;
	return 0;
}

void monitor_stop(struct weft_rt *rt)
{
	struct monitor *m = &rt->mon;

	if (!m->started)
		return;
	STORE(&m->stop, 1, seq_cst);
	weft__futex_wake(&m->stop, 1);
	STORE(&m->sleeping, 0, seq_cst);
	weft__futex_wake(&m->sleeping, 1);
	pthread_join(m->thread, NULL);
	m->started = false;
	free(m->seen);
	m->seen = NULL;
}
