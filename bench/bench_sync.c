/* SPDX-License-Identifier: MIT */
/*
 * Workloads of synchronisation and channels (issue 3): mutex, channel,
 * pingpong, rwlock, and rwlock-pthread (the same rwlock workload on plain
 * threads with a pthread_rwlock_t, the baseline rwlock is compared with).
 * Each runs inside the first task of weft_run() and checks its own result.
 *
 * Every workload keeps its state on the first task's stack or in memory it
 * allocates, so that a warm-up pass (-W) leaves nothing behind for the
 * measured one. A task that fails makes the others end too (it closes the
 * channels they wait on), so a failure is reported, never a hang.
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------- */

/* The first failed weft call of any task of a workload; the main task
 * reads it after joining them all (the joins order it). */
struct sync_fail {
	atomic_int set;
	const char *call;
	const char *who;
	uint64_t idx;
	int rc;
};

static void sync_note(struct sync_fail *f, const char *call, const char *who,
		      uint64_t idx, int rc)
{
	int zero = 0;

	if (atomic_compare_exchange_strong(&f->set, &zero, 1)) {
		f->call = call;
		f->who = who;
		f->idx = idx;
		f->rc = rc;
	}
}

/* weft_strerror(-EPERM) speaks of tasks; from an unlock it means "not
 * held". */
static const char *sync_strerror(const char *call, int rc)
{
	if (rc == -EPERM && strstr(call, "unlock"))
		return "it was not held";
	return weft_strerror(rc);
}

/* Records f's failure, if any, as the workload's; returns -1 if there was
 * one. */
static int sync_report(struct bench_run *r, const struct sync_fail *f)
{
	if (!atomic_load(&f->set))
		return 0;
	return bench_fail(r, "%s #%llu: %s returned %d (%s)", f->who,
			  (unsigned long long)f->idx, f->call, f->rc,
			  sync_strerror(f->call, f->rc));
}

/* Rate in M ops/s over the measured interval, as the value. */
static void sync_rate(struct bench_run *r)
{
	uint64_t wall = r->t1 - r->t0;

	r->has_value = 1;
	r->value = wall ? (double)r->ops * 1e3 / (double)wall : 0.0;
}

/* ---- mutex: n tasks x m lock/unlock of one weft_mutex; ns per lock. ---- */

struct mutex_shared {
	weft_mutex mu;
	uint64_t count; /* plain: only touched with mu held */
	uint64_t m;     /* lock/unlock pairs per task */
	struct sync_fail fail;
};

struct mutex_arg {
	struct mutex_shared *s;
	uint64_t idx;
};

static int mutex_task(void *arg)
{
	const struct mutex_arg *a = arg;
	struct mutex_shared *s = a->s;
	uint64_t i;
	int rc;

	for (i = 0; i < s->m; i++) {
		rc = weft_mutex_lock(&s->mu);
		if (rc < 0) {
			sync_note(&s->fail, "weft_mutex_lock", "task", a->idx,
				  rc);
			return rc;
		}
		s->count++;
		rc = weft_mutex_unlock(&s->mu);
		if (rc < 0) {
			sync_note(&s->fail, "weft_mutex_unlock", "task",
				  a->idx, rc);
			return rc;
		}
	}
	return 0;
}

int bench_mutex(struct bench_run *r)
{
	struct mutex_shared *s;
	struct mutex_arg *args;
	weft_task **h;
	uint64_t i;
	int64_t bad;
	int rc;

	/* On the heap: if a join fails, tasks may outlive this frame. */
	s = calloc(1, sizeof(*s));
	args = calloc(r->n ? r->n : 1, sizeof(*args));
	h = bench_handles(r, r->n);
	if (!s || !args || !h) {
		free(s);
		free(args);
		free(h);
		return bench_fail(r, "no memory");
	}
	rc = weft_mutex_init(&s->mu);
	if (rc < 0) {
		bench_fail(r, "weft_mutex_init: %s", weft_strerror(rc));
		goto out;
	}
	s->m = r->m;
	for (i = 0; i < r->n; i++) {
		args[i].s = s;
		args[i].idx = i;
	}

	bench_start(r);
	for (i = 0; i < r->n; i++) {
		rc = weft_spawn(&h[i], mutex_task, &args[i]);
		if (rc < 0) {
			bench_fail(r, "weft_spawn #%llu: %s",
				   (unsigned long long)i, weft_strerror(rc));
			break;
		}
	}
	bad = bench_join_all(r, h, i, "task", false);
	bench_stop(r);
	if (bad < 0)
		return -1; /* leaks s and args: tasks may still use them */
	if (sync_report(r, &s->fail) < 0 || r->err[0])
		goto out;
	if (bad)
		bench_fail(r, "%lld tasks failed", (long long)bad);
	r->ops = r->n * r->m;
	/* Every task is joined (join orders their writes before our reads):
	 * the count is ours to read, and the mutex must be free. */
	if (!r->err[0] && s->count != r->ops)
		bench_fail(r, "count %llu after %llu locked increments "
			   "(lost updates: the mutex let two tasks in)",
			   (unsigned long long)s->count,
			   (unsigned long long)r->ops);
	rc = weft_mutex_destroy(&s->mu);
	if (rc < 0)
		bench_fail(r, "weft_mutex_destroy after the run: %s",
			   rc == -EBUSY ? "still locked or waited on" :
					  weft_strerror(rc));
out:
	free(h);
	free(args);
	free(s);
	return r->err[0] ? -1 : 0;
}

/*
 * ---- channel: m producers x n 8-byte messages into one channel of
 * capacity CHAN_CAP, one consumer; M messages/s.
 *
 * Producer p sends (p << CHAN_SEQ_BITS) | k for k = 1..n. The consumer
 * checks that each producer's messages arrive in order, each exactly once,
 * and sums them all. After joining the producers the main task closes the
 * channel, and the consumer drains it until -EPIPE. The interval runs from
 * the first spawn to the consumer's join.
 */
#define CHAN_CAP 1024
#define CHAN_SEQ_BITS 40
#define CHAN_MAX_PRODUCERS 1024

struct chan_shared {
	weft_chan *c;
	uint64_t n;        /* messages per producer */
	uint64_t m;        /* producers */
	struct sync_fail fail;
	/* The consumer's, read by the main task after joining it: */
	uint64_t *next;    /* the next sequence number of each producer */
	uint64_t received; /* messages */
	uint64_t sum;      /* of every message, mod 2^64 */
	uint64_t bad;      /* the first unexpected message + 1, or 0 */
	uint64_t bad_at;   /* its position in the stream */
};

struct chan_producer {
	struct chan_shared *s;
	uint64_t id;
};

static int chan_producer(void *arg)
{
	const struct chan_producer *p = arg;
	weft_chan *c = p->s->c;
	uint64_t k, n = p->s->n, base = p->id << CHAN_SEQ_BITS, v;
	int rc;

	for (k = 1; k <= n; k++) {
		v = base | k;
		rc = weft_chan_send(c, &v);
		if (rc < 0) {
			sync_note(&p->s->fail, "weft_chan_send", "producer",
				  p->id, rc);
			return rc;
		}
	}
	return 0;
}

static int chan_consumer(void *arg)
{
	struct chan_shared *s = arg;
	const uint64_t mask = (1ULL << CHAN_SEQ_BITS) - 1;
	uint64_t v, p, got = 0, sum = 0;
	int rc;

	while ((rc = weft_chan_recv(s->c, &v)) == 0) {
		p = v >> CHAN_SEQ_BITS;
		if (p < s->m && (v & mask) == s->next[p]) {
			s->next[p]++;
		} else if (!s->bad) {
			s->bad = v + 1;
			s->bad_at = got;
		}
		sum += v;
		got++;
	}
	s->received = got;
	s->sum = sum;
	if (rc != -EPIPE) {
		sync_note(&s->fail, "weft_chan_recv", "consumer", 0, rc);
		/* Wake the producers: they must not wait for us forever. */
		weft_chan_close(s->c);
		return rc;
	}
	return 0;
}

/* sum over p < m, 1 <= k <= n of (p << CHAN_SEQ_BITS) | k, mod 2^64 */
static uint64_t chan_expected_sum(uint64_t n, uint64_t m)
{
	uint64_t p, tri, sum = 0;

	/* n (n + 1) / 2 without overflowing first */
	tri = n % 2 ? (n + 1) / 2 * n : n / 2 * (n + 1);
	for (p = 0; p < m; p++)
		sum += n * (p << CHAN_SEQ_BITS) + tri;
	return sum;
}

int bench_channel(struct bench_run *r)
{
	struct chan_shared *s;
	struct chan_producer *prod;
	weft_task *cons = NULL, **h;
	uint64_t i, mask = (1ULL << CHAN_SEQ_BITS) - 1;
	int64_t bad;
	int rc, res = 0;

	if (r->m < 1 || r->m > CHAN_MAX_PRODUCERS)
		return bench_fail(r, "-m (producers) must be 1..%d",
				  CHAN_MAX_PRODUCERS);
	if (r->n > mask)
		return bench_fail(r, "-n too large");
	s = calloc(1, sizeof(*s));
	prod = calloc(r->m, sizeof(*prod));
	h = bench_handles(r, r->m);
	if (s)
		s->next = malloc(r->m * sizeof(*s->next));
	if (!s || !s->next || !prod || !h) {
		bench_fail(r, "no memory");
		goto out;
	}
	s->n = r->n;
	s->m = r->m;
	for (i = 0; i < r->m; i++) {
		s->next[i] = 1;
		prod[i].s = s;
		prod[i].id = i;
	}
	rc = weft_chan_new(&s->c, sizeof(uint64_t), CHAN_CAP);
	if (rc < 0) {
		bench_fail(r, "weft_chan_new: %s", weft_strerror(rc));
		goto out;
	}

	bench_start(r);
	rc = weft_spawn(&cons, chan_consumer, s);
	if (rc < 0) {
		bench_fail(r, "weft_spawn consumer: %s", weft_strerror(rc));
		goto out;
	}
	for (i = 0; i < r->m; i++) {
		rc = weft_spawn(&h[i], chan_producer, &prod[i]);
		if (rc < 0) {
			bench_fail(r, "weft_spawn producer #%llu: %s",
				   (unsigned long long)i, weft_strerror(rc));
			break;
		}
	}
	bad = bench_join_all(r, h, i, "producer", false);
	if (bad < 0)
		return -1; /* leaks everything: producers may still run */
	rc = weft_chan_close(s->c);
	if (rc < 0 && !atomic_load(&s->fail.set)) /* else the consumer's */
		bench_fail(r, "weft_chan_close: %s", weft_strerror(rc));
	rc = weft_join(cons, &res);
	bench_stop(r);
	if (rc < 0) {
		/* Leaks everything: the consumer may still run. */
		return bench_fail(r, "weft_join consumer: %s",
				  weft_strerror(rc));
	}
	if (sync_report(r, &s->fail) < 0 || r->err[0])
		goto out;
	if (bad || res)
		bench_fail(r, "a producer or the consumer failed");

	r->ops = r->n * r->m;
	sync_rate(r);
	bench_extra(r, "producers", (double)r->m);
	bench_extra(r, "capacity", CHAN_CAP);
	if (s->bad)
		bench_fail(r, "message #%llu: producer %llu, number %llu: out "
			   "of order, duplicated or corrupt",
			   (unsigned long long)s->bad_at,
			   (unsigned long long)((s->bad - 1) >> CHAN_SEQ_BITS),
			   (unsigned long long)((s->bad - 1) & mask));
	else if (s->received != r->ops)
		bench_fail(r, "received %llu of %llu messages",
			   (unsigned long long)s->received,
			   (unsigned long long)r->ops);
	else if (s->sum != chan_expected_sum(r->n, r->m))
		bench_fail(r, "the messages sum to %llu, expected %llu",
			   (unsigned long long)s->sum,
			   (unsigned long long)chan_expected_sum(r->n, r->m));
out:
	if (s && s->c)
		weft_chan_free(s->c);
	if (s)
		free(s->next);
	free(s);
	free(prod);
	free(h);
	return r->err[0] ? -1 : 0;
}

/*
 * ---- pingpong: a token goes back and forth between two tasks over two
 * channels of capacity 1, n round trips; ns per round trip.
 *
 * The pinger sends k on ping and expects k + 1 back on pong; the ponger
 * adds one. A side that fails closes both channels, so the other ends too.
 */
struct pp_shared {
	weft_chan *ping, *pong;
	uint64_t n;
	struct sync_fail fail;
	uint64_t bad_k, bad_v; /* the pinger's: first wrong reply (k != 0) */
};

static void pp_fail(struct pp_shared *s, const char *call, const char *who,
		    uint64_t k, int rc)
{
	sync_note(&s->fail, call, who, k, rc);
	weft_chan_close(s->ping);
	weft_chan_close(s->pong);
}

static int pp_pinger(void *arg)
{
	struct pp_shared *s = arg;
	uint64_t k, v;
	int rc;

	for (k = 1; k <= s->n; k++) {
		v = k;
		rc = weft_chan_send(s->ping, &v);
		if (rc < 0) {
			pp_fail(s, "weft_chan_send", "pinger, round trip", k,
				rc);
			return rc;
		}
		rc = weft_chan_recv(s->pong, &v);
		if (rc < 0) {
			pp_fail(s, "weft_chan_recv", "pinger, round trip", k,
				rc);
			return rc;
		}
		if (v != k + 1 && !s->bad_k) {
			s->bad_k = k;
			s->bad_v = v;
		}
	}
	return 0;
}

static int pp_ponger(void *arg)
{
	struct pp_shared *s = arg;
	uint64_t k, v;
	int rc;

	for (k = 1; k <= s->n; k++) {
		rc = weft_chan_recv(s->ping, &v);
		if (rc < 0) {
			pp_fail(s, "weft_chan_recv", "ponger, round trip", k,
				rc);
			return rc;
		}
		v++;
		rc = weft_chan_send(s->pong, &v);
		if (rc < 0) {
			pp_fail(s, "weft_chan_send", "ponger, round trip", k,
				rc);
			return rc;
		}
	}
	return 0;
}

int bench_pingpong(struct bench_run *r)
{
	struct pp_shared *s;
	weft_task *h[2] = { NULL, NULL };
	uint64_t spawned = 0;
	ssize_t len1, len2;
	int64_t bad;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return bench_fail(r, "no memory");
	s->n = r->n;
	rc = weft_chan_new(&s->ping, sizeof(uint64_t), 1);
	if (rc == 0)
		rc = weft_chan_new(&s->pong, sizeof(uint64_t), 1);
	if (rc < 0) {
		bench_fail(r, "weft_chan_new: %s", weft_strerror(rc));
		goto out;
	}

	bench_start(r);
	rc = weft_spawn(&h[0], pp_ponger, s);
	if (rc < 0) {
		bench_fail(r, "weft_spawn ponger: %s", weft_strerror(rc));
	} else {
		spawned = 1;
		rc = weft_spawn(&h[1], pp_pinger, s);
		if (rc < 0) {
			bench_fail(r, "weft_spawn pinger: %s",
				   weft_strerror(rc));
			weft_chan_close(s->ping); /* ends the ponger */
		} else {
			spawned = 2;
		}
	}
	bad = bench_join_all(r, h, spawned,
			     spawned < 2 ? "ponger" : "ponger/pinger", false);
	bench_stop(r);
	if (bad < 0)
		return -1; /* leaks s: a task may still use it */
	if (sync_report(r, &s->fail) < 0 || r->err[0])
		goto out;
	if (bad)
		bench_fail(r, "the pinger or the ponger failed");
	r->ops = r->n;
	if (s->bad_k) {
		bench_fail(r, "round trip %llu: sent %llu, got %llu back "
			   "(expected %llu)", (unsigned long long)s->bad_k,
			   (unsigned long long)s->bad_k,
			   (unsigned long long)s->bad_v,
			   (unsigned long long)s->bad_k + 1);
		goto out;
	}
	len1 = weft_chan_len(s->ping);
	len2 = weft_chan_len(s->pong);
	if (len1 != 0 || len2 != 0)
		bench_fail(r, "the channels hold %zd and %zd elements after "
			   "the last round trip", len1, len2);
out:
	if (s->ping)
		weft_chan_free(s->ping);
	if (s->pong)
		weft_chan_free(s->pong);
	free(s);
	return r->err[0] ? -1 : 0;
}

/*
 * ---- rwlock: n tasks x m operations on a small table behind one
 * weft_rwlock; 90% reads, 10% writes; M operations/s.
 * ---- rwlock-pthread: the same n x m operations on as many plain threads
 * as weft has workers (-w), split evenly, behind one pthread_rwlock_t with
 * default attributes (glibc: readers first); the baseline in the same run.
 *
 * A read takes the lock shared and sums the table; a write takes it
 * exclusive, moves an amount from one slot to another (so the sum stays 0)
 * and bumps a version. Whether to read or write, the slots and the amount
 * come from a per-task (per-thread) xorshift. Self-check: no read saw a
 * sum other than 0 (a read overlapping a write would catch it half-done),
 * the version equals the writes made (no write lost to another), and the
 * table still sums to 0.
 *
 * 1,000 tasks, as in the mutex workload. Tasks are not preempted, so only
 * those running at the same moment (one per worker) contend, as the
 * baseline's threads do; a task that must wait lets the next task of its
 * worker run, where a thread would sleep.
 */
#define RW_SLOTS 16
#define RW_WRITE_PERCENT 10

struct rw_table {
	uint64_t version;
	uint64_t slot[RW_SLOTS];
};

struct rw_shared {
	_Alignas(64) weft_rwlock wl;
	_Alignas(64) pthread_rwlock_t pl;
	_Alignas(64) struct rw_table t; /* own cache lines, after the locks */
	struct sync_fail fail;
};

struct rw_worker {
	struct rw_shared *s;
	uint64_t idx, seed, nops;
	uint64_t writes, torn; /* out */
	pthread_t thr;
};

static inline uint64_t rw_xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* splitmix64: spreads consecutive indices into unrelated nonzero seeds. */
static uint64_t rw_seed(uint64_t i)
{
	uint64_t z = (i + 1) * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z ? z : 1;
}

/* The operation loop of both variants, inlined into each with a constant
 * use_pthread, so neither pays for the other's branch. */
static inline __attribute__((always_inline)) void
rw_loop(struct rw_worker *w, const int use_pthread)
{
	struct rw_shared *s = w->s;
	struct rw_table *t = &s->t;
	uint64_t x = w->seed, i, r, sum, writes = 0, torn = 0;
	const char *call;
	unsigned k, a, b;
	int rc;

	for (i = 0; i < w->nops; i++) {
		r = rw_xorshift(&x);
		if (r % 100 < RW_WRITE_PERCENT) {
			rc = use_pthread ? -pthread_rwlock_wrlock(&s->pl) :
					   weft_rwlock_wrlock(&s->wl);
			if (rc < 0) {
				call = "wrlock";
				goto fail;
			}
			a = (unsigned)(r >> 32) % RW_SLOTS;
			b = (unsigned)(r >> 40) % RW_SLOTS;
			t->slot[a] += r >> 48;
			t->slot[b] -= r >> 48;
			t->version++;
			writes++;
		} else {
			rc = use_pthread ? -pthread_rwlock_rdlock(&s->pl) :
					   weft_rwlock_rdlock(&s->wl);
			if (rc < 0) {
				call = "rdlock";
				goto fail;
			}
			sum = 0;
			for (k = 0; k < RW_SLOTS; k++)
				sum += t->slot[k];
			torn += sum != 0;
		}
		rc = use_pthread ? -pthread_rwlock_unlock(&s->pl) :
				   weft_rwlock_unlock(&s->wl);
		if (rc < 0) {
			call = "unlock";
			goto fail;
		}
	}
	w->writes = writes;
	w->torn = torn;
	return;
fail:
	w->writes = writes;
	w->torn = torn;
	sync_note(&s->fail, call, use_pthread ? "thread" : "task", w->idx,
		  rc);
}

static int rw_task(void *arg)
{
	rw_loop(arg, 0);
	return 0;
}

static void *rw_thread(void *arg)
{
	rw_loop(arg, 1);
	return NULL;
}

/* Allocates the shared state and cnt workers for n x m operations. */
static int rw_setup(struct bench_run *r, struct rw_shared **s,
		    struct rw_worker **w, uint64_t cnt)
{
	uint64_t i, total = r->n * r->m;

	if (r->m && total / r->m != r->n)
		return bench_fail(r, "-n x -m overflows");
	*s = aligned_alloc(64, sizeof(**s));
	*w = calloc(cnt ? cnt : 1, sizeof(**w));
	if (!*s || !*w) {
		free(*s);
		free(*w);
		return bench_fail(r, "no memory");
	}
	memset(*s, 0, sizeof(**s));
	for (i = 0; i < cnt; i++) {
		(*w)[i].s = *s;
		(*w)[i].idx = i;
		(*w)[i].seed = rw_seed(i);
		(*w)[i].nops = total / cnt + (i < total % cnt);
	}
	return 0;
}

/* The self-check of both variants, once every worker has ended. */
static int rw_check(struct bench_run *r, struct rw_shared *s,
		    struct rw_worker *w, uint64_t cnt)
{
	uint64_t i, writes = 0, torn = 0, sum = 0;

	if (atomic_load(&s->fail.set))
		return bench_fail(r, "%s #%llu: %s_rwlock_%s returned %d (%s)",
				  s->fail.who,
				  (unsigned long long)s->fail.idx,
				  strcmp(s->fail.who, "thread") ? "weft" :
								  "pthread",
				  s->fail.call, s->fail.rc,
				  sync_strerror(s->fail.call, s->fail.rc));
	for (i = 0; i < cnt; i++) {
		writes += w[i].writes;
		torn += w[i].torn;
	}
	for (i = 0; i < RW_SLOTS; i++)
		sum += s->t.slot[i];
	r->ops = r->n * r->m;
	sync_rate(r);
	bench_extra(r, "write_share", r->ops ? (double)writes /
						   (double)r->ops : 0.0);
	if (torn)
		return bench_fail(r, "%llu reads saw a write half-done",
				  (unsigned long long)torn);
	if (s->t.version != writes)
		return bench_fail(r, "version %llu after %llu writes "
				  "(a write overlapped another)",
				  (unsigned long long)s->t.version,
				  (unsigned long long)writes);
	if (sum != 0)
		return bench_fail(r, "the table sums to %llu, not 0",
				  (unsigned long long)sum);
	return 0;
}

int bench_rwlock(struct bench_run *r)
{
	struct rw_shared *s;
	struct rw_worker *w;
	weft_task **h;
	uint64_t i;
	int64_t bad;
	int rc;

	if (rw_setup(r, &s, &w, r->n) < 0)
		return -1;
	h = bench_handles(r, r->n);
	if (!h)
		goto out;
	rc = weft_rwlock_init(&s->wl);
	if (rc < 0) {
		bench_fail(r, "weft_rwlock_init: %s", weft_strerror(rc));
		goto out;
	}
	bench_start(r);
	for (i = 0; i < r->n; i++) {
		rc = weft_spawn(&h[i], rw_task, &w[i]);
		if (rc < 0) {
			bench_fail(r, "weft_spawn #%llu: %s",
				   (unsigned long long)i, weft_strerror(rc));
			break;
		}
	}
	bad = bench_join_all(r, h, i, "task", false);
	bench_stop(r);
	if (bad < 0)
		return -1; /* leaks s and w: tasks may still use them */
	if (r->err[0] || rw_check(r, s, w, r->n) < 0)
		goto out;
	bench_extra(r, "tasks", (double)r->n);
	rc = weft_rwlock_destroy(&s->wl);
	if (rc < 0)
		bench_fail(r, "weft_rwlock_destroy after the run: %s",
			   rc == -EBUSY ? "still held or waited on" :
					  weft_strerror(rc));
out:
	free(h);
	free(w);
	free(s);
	return r->err[0] ? -1 : 0;
}

int bench_rwlock_pthread(struct bench_run *r)
{
	struct rw_shared *s;
	struct rw_worker *w;
	uint64_t i, nthr = r->workers;
	int rc;

	if (rw_setup(r, &s, &w, nthr) < 0)
		return -1;
	rc = pthread_rwlock_init(&s->pl, NULL);
	if (rc) {
		bench_fail(r, "pthread_rwlock_init: %s", weft_strerror(-rc));
		goto out;
	}
	/*
	 * pthread_join blocks this task's worker thread, which is what we
	 * want here: the measured threads get the CPUs, and weft's other
	 * workers, having nothing to run, park.
	 */
	bench_start(r);
	for (i = 0; i < nthr; i++) {
		rc = pthread_create(&w[i].thr, NULL, rw_thread, &w[i]);
		if (rc) {
			bench_fail(r, "pthread_create #%llu: %s",
				   (unsigned long long)i, weft_strerror(-rc));
			break;
		}
	}
	for (nthr = i, i = 0; i < nthr; i++)
		pthread_join(w[i].thr, NULL);
	bench_stop(r);
	if (!r->err[0] && rw_check(r, s, w, nthr) == 0)
		bench_extra(r, "threads", (double)nthr);
	pthread_rwlock_destroy(&s->pl);
out:
	free(w);
	free(s);
	return r->err[0] ? -1 : 0;
}
