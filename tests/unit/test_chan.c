/* SPDX-License-Identifier: MIT */
/*
 * Channels: argument checks; try_send/try_recv -EAGAIN; len; close
 * semantics (send -EPIPE, recv drains then -EPIPE, close twice -EPIPE);
 * the largest element size copied intact; an unbounded channel never
 * waits; capacity 0, 1, 1024 and unbounded with 8 senders and 8 receivers
 * moving numbered messages, each received exactly once and in per-sender
 * order at each receiver; plain threads as senders and receivers; close
 * while senders and receivers wait; receivers and senders cancelled or
 * timed out mid-operation lose and duplicate nothing; FIFO service of
 * waiting receivers.
 *
 * Buffered channels keep their elements in a ring whose send and receive
 * ends each have a lock (runtime/chan.c, chan_ring.h): odd capacities and
 * element sizes across many laps of wrap-around; a receive that frees room
 * completes a waiting send at once; plain threads on tiny capacities, where
 * every message crosses the empty or full edge (a lost wake-up hangs);
 * select on buffered channels racing plain sends and receives; ping-pong
 * over buffered channels, where nothing can hide a lost wake-up.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "weft_test.h"

static int run(unsigned workers, int (*fn)(void *), void *arg)
{
	weft_config c = wt_cfg(workers);
	int r = -12345;

	assert_int_equal(weft_run(&c, fn, arg, &r), 0);
	assert_int_equal(wt_take_failures(), 0);
	return r;
}

/* A message: its number and a check word, so torn copies show. */
struct msg {
	uint32_t seq;
	uint32_t check;
};

#define MAGIC 0x9e3779b9u

static struct msg mk(uint32_t seq)
{
	struct msg m = { seq, seq ^ MAGIC };

	return m;
}

static void test_args_and_try(void **state)
{
	weft_chan *c = NULL;
	struct msg m = mk(1), o;
	int i;

	(void)state;
	assert_int_equal(weft_chan_new(&c, 0, 1), -EINVAL);
	assert_int_equal(weft_chan_new(&c, 65537, 1), -EINVAL);
	assert_int_equal(weft_chan_new(NULL, 8, 1), -EINVAL);
	assert_int_equal(weft_chan_len(NULL), -EINVAL);

	/* Capacity 2. */
	assert_int_equal(weft_chan_new(&c, sizeof(m), 2), 0);
	assert_non_null(c);
	assert_int_equal(weft_chan_len(c), 0);
	assert_int_equal(weft_chan_try_recv(c, &o), -EAGAIN);
	assert_int_equal(weft_chan_try_send(c, &m), 0);
	m = mk(2);
	assert_int_equal(weft_chan_send(c, &m), 0);
	assert_int_equal(weft_chan_len(c), 2);
	m = mk(3);
	assert_int_equal(weft_chan_try_send(c, &m), -EAGAIN);
	assert_int_equal(weft_chan_len(c), 2);
	assert_int_equal(weft_chan_recv(c, &o), 0);
	assert_int_equal(o.seq, 1);
	assert_int_equal(weft_chan_try_send(c, &m), 0);
	/* Close: send fails, the buffer drains in order, then -EPIPE. */
	assert_int_equal(weft_chan_close(c), 0);
	assert_int_equal(weft_chan_close(c), -EPIPE);
	assert_int_equal(weft_chan_send(c, &m), -EPIPE);
	assert_int_equal(weft_chan_try_send(c, &m), -EPIPE);
	assert_int_equal(weft_chan_len(c), 2);
	assert_int_equal(weft_chan_try_recv(c, &o), 0);
	assert_int_equal(o.seq, 2);
	assert_int_equal(weft_chan_recv(c, &o), 0);
	assert_int_equal(o.seq, 3);
	assert_int_equal(o.check, 3 ^ MAGIC);
	assert_int_equal(weft_chan_recv(c, &o), -EPIPE);
	assert_int_equal(weft_chan_try_recv(c, &o), -EPIPE);
	assert_int_equal(weft_chan_len(c), 0);
	weft_chan_free(c);

	/* Capacity 0: nothing is ever buffered; no receiver, no send. */
	assert_int_equal(weft_chan_new(&c, sizeof(m), 0), 0);
	assert_int_equal(weft_chan_try_send(c, &m), -EAGAIN);
	assert_int_equal(weft_chan_try_recv(c, &o), -EAGAIN);
	assert_int_equal(weft_chan_len(c), 0);
	assert_int_equal(weft_chan_close(c), 0);
	assert_int_equal(weft_chan_try_recv(c, &o), -EPIPE);
	assert_int_equal(weft_chan_recv(c, &o), -EPIPE);
	weft_chan_free(c);

	/* Capacity 1, one-byte elements. */
	assert_int_equal(weft_chan_new(&c, 1, 1), 0);
	for (i = 0; i < 300; i++) {
		unsigned char b = (unsigned char)i, r = 0;

		assert_int_equal(weft_chan_try_send(c, &b), 0);
		assert_int_equal(weft_chan_try_send(c, &b), -EAGAIN);
		assert_int_equal(weft_chan_recv(c, &r), 0);
		assert_int_equal(r, b);
	}
	weft_chan_free(c);

	/* Closing an empty channel with nobody around, and freeing it. */
	assert_int_equal(weft_chan_new(&c, 4, WEFT_CHAN_UNBOUNDED), 0);
	weft_chan_free(c);
}

/* The largest element, 64 KiB, copied in and out intact. */
static void test_big_elements(void **state)
{
	enum { SZ = 65536 };
	unsigned char *in = malloc(SZ), *out = malloc(SZ);
	weft_chan *c = NULL;
	int k;
	size_t i;

	(void)state;
	assert_non_null(in);
	assert_non_null(out);
	assert_int_equal(weft_chan_new(&c, SZ, 3), 0);
	for (k = 0; k < 3; k++) {
		for (i = 0; i < SZ; i++)
			in[i] = (unsigned char)(i * 7 + (size_t)k);
		assert_int_equal(weft_chan_send(c, in), 0);
	}
	memset(in, 0, SZ); /* copied at send: the buffer is ours again */
	for (k = 0; k < 3; k++) {
		assert_int_equal(weft_chan_recv(c, out), 0);
		for (i = 0; i < SZ; i++)
			if (out[i] != (unsigned char)(i * 7 + (size_t)k))
				fail_msg("element %d byte %zu", k, i);
	}
	weft_chan_free(c);
	free(in);
	free(out);
}

/* Unbounded: sends never wait; everything comes back in order. */
static weft_chan *uc;

static int unbounded_root(void *arg)
{
	unsigned n = WT_SCALE(100000, 20000), i;
	struct msg m, o;

	(void)arg;
	for (i = 0; i < n; i++) {
		m = mk(i);
		WT_CHECK_EQ(weft_chan_try_send(uc, &m), 0);
	}
	WT_CHECK_EQ(weft_chan_len(uc), n);
	for (i = 0; i < n; i++) {
		WT_CHECK_EQ(weft_chan_recv(uc, &o), 0);
		WT_CHECK_EQ(o.seq, i);
	}
	WT_CHECK_EQ(weft_chan_try_recv(uc, &o), -EAGAIN);
	return 0;
}

static void test_unbounded_never_waits(void **state)
{
	(void)state;
	assert_int_equal(weft_chan_new(&uc, sizeof(struct msg),
				       WEFT_CHAN_UNBOUNDED), 0);
	assert_int_equal(run(1, unbounded_root, NULL), 0);
	weft_chan_free(uc);
}

/*
 * The main exercise: NS senders and NR receivers over one channel. Sender
 * s sends s, s + NS, s + 2 NS, ... < total. Receivers mark every number
 * in `seen` and check that numbers from one sender arrive in increasing
 * order. When all senders are done the root closes the channel, and the
 * receivers drain it and see -EPIPE.
 */
#define NS 8
#define NR 8

static weft_chan *ch;
static unsigned total;
static _Atomic unsigned char *seen;
static _Atomic unsigned long received;

struct rx {
	uint32_t last[NS]; /* last seq + 1 from each sender, 0 = none */
	unsigned long n;
};

static int sender(void *arg)
{
	uint32_t s = (uint32_t)(uintptr_t)arg, q;

	for (q = s; q < total; q += NS) {
		struct msg m = mk(q);
		int rc = weft_chan_send(ch, &m);

		if (rc != 0) {
			WT_CHECK_EQ(rc, 0);
			return rc;
		}
	}
	return 0;
}

static void take(struct rx *r, const struct msg *m)
{
	uint32_t s;

	if (m->check != (m->seq ^ MAGIC) || m->seq >= total) {
		WT_CHECK(!"corrupt message");
		return;
	}
	s = m->seq % NS;
	WT_CHECK(r->last[s] == 0 || m->seq >= r->last[s]);
	r->last[s] = m->seq + 1;
	if (atomic_fetch_add_explicit(&seen[m->seq], 1,
				      memory_order_relaxed) != 0)
		WT_CHECK(!"message received twice");
	r->n++;
}

static int receiver(void *arg)
{
	struct rx r;
	struct msg m;
	int rc;

	(void)arg;
	memset(&r, 0, sizeof(r));
	while ((rc = weft_chan_recv(ch, &m)) == 0)
		take(&r, &m);
	WT_CHECK_EQ(rc, -EPIPE);
	atomic_fetch_add(&received, r.n);
	return 0;
}

static void *thread_sender(void *arg)
{
	WT_CHECK_EQ(sender(arg), 0);
	return NULL;
}

static void *thread_receiver(void *arg)
{
	receiver(arg);
	return NULL;
}

static int mpmc_root(void *arg)
{
	weft_task *s[NS], *r[NR];
	uintptr_t i;

	(void)arg;
	for (i = 0; i < NR; i++)
		WT_CHECK_EQ(weft_spawn(&r[i], receiver, NULL), 0);
	for (i = 0; i < NS; i++)
		WT_CHECK_EQ(weft_spawn(&s[i], sender, (void *)i), 0);
	for (i = 0; i < NS; i++)
		WT_CHECK_EQ(weft_join(s[i], NULL), 0);
	WT_CHECK_EQ(weft_chan_close(ch), 0);
	for (i = 0; i < NR; i++)
		WT_CHECK_EQ(weft_join(r[i], NULL), 0);
	return 0;
}

static void check_all_once(void)
{
	unsigned i;

	assert_int_equal(atomic_load(&received), total);
	for (i = 0; i < total; i++)
		if (atomic_load(&seen[i]) != 1)
			fail_msg("message %u received %u times", i,
				 atomic_load(&seen[i]));
}

static void mpmc(size_t cap, unsigned workers, unsigned n)
{
	total = n;
	seen = calloc(total, 1);
	assert_non_null(seen);
	atomic_store(&received, 0);
	assert_int_equal(weft_chan_new(&ch, sizeof(struct msg), cap), 0);
	assert_int_equal(run(workers, mpmc_root, NULL), 0);
	check_all_once();
	assert_int_equal(weft_chan_len(ch), 0);
	weft_chan_free(ch);
	free((void *)seen);
}

#define MILLION WT_SCALE(1000000u, 100000u)

static void test_mpmc_cap0(void **state)
{
	(void)state;
	mpmc(0, 4, MILLION);
}

static void test_mpmc_cap1(void **state)
{
	(void)state;
	mpmc(1, 4, MILLION);
}

static void test_mpmc_cap1024(void **state)
{
	(void)state;
	mpmc(1024, 4, MILLION);
}

static void test_mpmc_unbounded(void **state)
{
	(void)state;
	mpmc(WEFT_CHAN_UNBOUNDED, 4, MILLION);
}

/* Fewer messages, other worker counts. */
static void test_mpmc_workers(void **state)
{
	size_t caps[] = { 0, 1, 7, WEFT_CHAN_UNBOUNDED };
	unsigned workers[] = { 1, 2, 8 };
	size_t i, k;

	(void)state;
	for (k = 0; k < 3; k++)
		for (i = 0; i < 4; i++)
			mpmc(caps[i], workers[k], WT_SCALE(40000, 8000));
}

/* Half the senders and receivers are plain threads. */
static void test_mpmc_plain_threads(void **state)
{
	size_t caps[] = { 0, 1, 3, 16 };
	size_t k;

	(void)state;
	for (k = 0; k < 4; k++) {
		weft_config c = wt_cfg(2);
		weft_rt *rt = NULL;
		weft_task *s[NS / 2], *r[NR / 2];
		pthread_t ts[NS / 2], tr[NR / 2];
		uintptr_t i;

		total = WT_SCALE(100000, 10000);
		seen = calloc(total, 1);
		assert_non_null(seen);
		atomic_store(&received, 0);
		assert_int_equal(weft_chan_new(&ch, sizeof(struct msg),
					       caps[k]), 0);
		assert_int_equal(weft_rt_new(&rt, &c), 0);
		for (i = 0; i < NR / 2; i++) {
			assert_int_equal(weft_rt_spawn(rt, &r[i], receiver,
						       NULL), 0);
			assert_int_equal(pthread_create(&tr[i], NULL,
							thread_receiver, NULL),
					 0);
		}
		for (i = 0; i < NS / 2; i++) {
			assert_int_equal(weft_rt_spawn(rt, &s[i], sender,
						       (void *)(2 * i)), 0);
			assert_int_equal(pthread_create(&ts[i], NULL,
							thread_sender,
							(void *)(2 * i + 1)),
					 0);
		}
		for (i = 0; i < NS / 2; i++) {
			assert_int_equal(weft_join(s[i], NULL), 0);
			assert_int_equal(pthread_join(ts[i], NULL), 0);
		}
		assert_int_equal(weft_chan_close(ch), 0);
		for (i = 0; i < NR / 2; i++) {
			assert_int_equal(weft_join(r[i], NULL), 0);
			assert_int_equal(pthread_join(tr[i], NULL), 0);
		}
		weft_rt_free(rt);
		assert_int_equal(wt_take_failures(), 0);
		check_all_once();
		weft_chan_free(ch);
		free((void *)seen);
	}
}

/*
 * Close while waiting. Capacity 2 holding 2 items with 3 senders blocked
 * on it: close wakes them with -EPIPE and the 2 items are still received.
 * An empty channel with 4 receivers blocked: close wakes them with -EPIPE.
 * Capacity 0 with senders blocked: they get -EPIPE, nothing is received.
 */
static _Atomic int blocked;

static int blocked_sender(void *arg)
{
	struct msg m = mk((uint32_t)(uintptr_t)arg);

	atomic_fetch_add(&blocked, 1);
	return weft_chan_send(ch, &m);
}

static int blocked_receiver(void *arg)
{
	struct msg m;

	(void)arg;
	atomic_fetch_add(&blocked, 1);
	return weft_chan_recv(ch, &m);
}

static int close_root(void *arg)
{
	size_t caps[] = { 2, 0 };
	weft_task *t[4];
	struct msg m;
	size_t k;
	int i, r;

	(void)arg;
	for (k = 0; k < 2; k++) {
		size_t cap = caps[k];

		WT_CHECK_EQ(weft_chan_new(&ch, sizeof(m), cap), 0);
		for (i = 0; i < (int)cap; i++) {
			m = mk(100 + (uint32_t)i);
			WT_CHECK_EQ(weft_chan_send(ch, &m), 0);
		}
		atomic_store(&blocked, 0);
		for (i = 0; i < 3; i++)
			WT_CHECK_EQ(weft_spawn(&t[i], blocked_sender,
					       (void *)(uintptr_t)i), 0);
		WT_TASK_WAIT(atomic_load(&blocked) == 3);
		WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
		WT_CHECK_EQ(weft_chan_len(ch), (long)cap);
		WT_CHECK_EQ(weft_chan_close(ch), 0);
		for (i = 0; i < 3; i++) {
			r = 1;
			WT_CHECK_EQ(weft_join(t[i], &r), 0);
			WT_CHECK_EQ(r, -EPIPE);
		}
		for (i = 0; i < (int)cap; i++) {
			WT_CHECK_EQ(weft_chan_recv(ch, &m), 0);
			WT_CHECK_EQ(m.seq, 100 + (uint32_t)i);
		}
		WT_CHECK_EQ(weft_chan_recv(ch, &m), -EPIPE);
		weft_chan_free(ch);

		WT_CHECK_EQ(weft_chan_new(&ch, sizeof(m), cap), 0);
		atomic_store(&blocked, 0);
		for (i = 0; i < 4; i++)
			WT_CHECK_EQ(weft_spawn(&t[i], blocked_receiver, NULL),
				    0);
		WT_TASK_WAIT(atomic_load(&blocked) == 4);
		WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
		WT_CHECK_EQ(weft_chan_close(ch), 0);
		for (i = 0; i < 4; i++) {
			r = 1;
			WT_CHECK_EQ(weft_join(t[i], &r), 0);
			WT_CHECK_EQ(r, -EPIPE);
		}
		weft_chan_free(ch);
	}
	return 0;
}

static void test_close_wakes_waiters(void **state)
{
	(void)state;
	assert_int_equal(run(1, close_root, NULL), 0);
	assert_int_equal(run(4, close_root, NULL), 0);
}

/*
 * Close during traffic: senders stop at -EPIPE; whatever send returned 0
 * for is received exactly once, whatever it refused never is.
 */
static _Atomic unsigned char *sent_ok;
static _Atomic unsigned long sends_ok;

static int counting_sender(void *arg)
{
	uint32_t s = (uint32_t)(uintptr_t)arg, q;

	for (q = s; q < total; q += NS) {
		struct msg m = mk(q);
		int rc = weft_chan_send(ch, &m);

		if (rc == -EPIPE)
			return 0;
		WT_CHECK_EQ(rc, 0);
		atomic_store(&sent_ok[q], 1);
		atomic_fetch_add(&sends_ok, 1);
	}
	return 0;
}

static int close_traffic_root(void *arg)
{
	weft_task *s[NS], *r[NR];
	uintptr_t i;

	(void)arg;
	for (i = 0; i < NR; i++)
		WT_CHECK_EQ(weft_spawn(&r[i], receiver, NULL), 0);
	for (i = 0; i < NS; i++)
		WT_CHECK_EQ(weft_spawn(&s[i], counting_sender, (void *)i), 0);
	WT_TASK_WAIT(atomic_load(&sends_ok) >= total / 4);
	WT_CHECK_EQ(weft_chan_close(ch), 0);
	for (i = 0; i < NS; i++)
		WT_CHECK_EQ(weft_join(s[i], NULL), 0);
	for (i = 0; i < NR; i++)
		WT_CHECK_EQ(weft_join(r[i], NULL), 0);
	return 0;
}

static void test_close_during_traffic(void **state)
{
	size_t caps[] = { 0, 3, 256, WEFT_CHAN_UNBOUNDED };
	size_t k;
	unsigned i;

	(void)state;
	for (k = 0; k < 4; k++) {
		total = WT_SCALE(200000, 20000);
		seen = calloc(total, 1);
		sent_ok = calloc(total, 1);
		assert_non_null(seen);
		assert_non_null(sent_ok);
		atomic_store(&received, 0);
		atomic_store(&sends_ok, 0);
		assert_int_equal(weft_chan_new(&ch, sizeof(struct msg),
					       caps[k]), 0);
		assert_int_equal(run(4, close_traffic_root, NULL), 0);
		assert_int_equal(atomic_load(&received),
				 atomic_load(&sends_ok));
		for (i = 0; i < total; i++)
			if (atomic_load(&seen[i]) != atomic_load(&sent_ok[i]))
				fail_msg("message %u: sent %u, received %u", i,
					 atomic_load(&sent_ok[i]),
					 atomic_load(&seen[i]));
		weft_chan_free(ch);
		free((void *)seen);
		free((void *)sent_ok);
	}
}

/*
 * Cancellation mid-operation: senders send with short deadline scopes now
 * and then, receivers are cancelled at random by the root and replaced.
 * A send counts as done iff it returned 0; a receive iff recv returned 0.
 * After the senders finish the root closes the channel and drains it:
 * every number sent is received exactly once, nothing else is.
 */
#define CR_RECEIVERS 6

static int timed_sender(void *arg)
{
	uint32_t s = (uint32_t)(uintptr_t)arg, q;
	uint64_t rng = wt_seed(31, s);

	for (q = s; q < total; q += NS) {
		struct msg m = mk(q);
		bool scoped = wt_below(&rng, 8) == 0;
		int rc;

		if (scoped)
			WT_CHECK_EQ(weft_timeout_begin(
					    wt_below(&rng, 50) * WT_US), 0);
		rc = weft_chan_send(ch, &m);
		if (scoped)
			WT_CHECK(weft_timeout_end() >= 0);
		if (rc == -ETIMEDOUT && scoped)
			continue;
		WT_CHECK_EQ(rc, 0);
		atomic_store(&sent_ok[q], 1);
		atomic_fetch_add(&sends_ok, 1);
	}
	return 0;
}

static int cancellable_receiver(void *arg)
{
	struct rx r;
	struct msg m;
	int rc;

	(void)arg;
	memset(&r, 0, sizeof(r));
	while ((rc = weft_chan_recv(ch, &m)) == 0)
		take(&r, &m);
	WT_CHECK(rc == -EPIPE || rc == -ECANCELED);
	atomic_fetch_add(&received, r.n);
	return 0;
}

static _Atomic int senders_done;
static _Atomic unsigned long cancels_done;

static int counted_timed_sender(void *arg)
{
	int rc = timed_sender(arg);

	atomic_fetch_add(&senders_done, 1);
	return rc;
}

static int cancel_root(void *arg)
{
	weft_task *s[NS], *r[CR_RECEIVERS];
	uint64_t rng = wt_seed(41, 0);
	struct rx rest;
	struct msg m;
	uintptr_t i;
	int rc;

	(void)arg;
	for (i = 0; i < CR_RECEIVERS; i++)
		WT_CHECK_EQ(weft_spawn(&r[i], cancellable_receiver, NULL), 0);
	for (i = 0; i < NS; i++)
		WT_CHECK_EQ(weft_spawn(&s[i], counted_timed_sender, (void *)i),
			    0);
	/* Cancel and replace receivers while the senders run. */
	while (atomic_load(&senders_done) < NS) {
		unsigned k = wt_below(&rng, CR_RECEIVERS);

		WT_CHECK_EQ(weft_sleep(wt_below(&rng, 200) * WT_US), 0);
		WT_CHECK_EQ(weft_cancel(r[k]), 0);
		WT_CHECK_EQ(weft_join(r[k], NULL), 0);
		atomic_fetch_add(&cancels_done, 1);
		WT_CHECK_EQ(weft_spawn(&r[k], cancellable_receiver, NULL), 0);
	}
	for (i = 0; i < NS; i++)
		WT_CHECK_EQ(weft_join(s[i], NULL), 0);
	WT_CHECK_EQ(weft_chan_close(ch), 0);
	for (i = 0; i < CR_RECEIVERS; i++)
		WT_CHECK_EQ(weft_join(r[i], NULL), 0);
	/* What the cancelled receivers left behind is still there. */
	memset(&rest, 0, sizeof(rest));
	while ((rc = weft_chan_recv(ch, &m)) == 0)
		take(&rest, &m);
	WT_CHECK_EQ(rc, -EPIPE);
	atomic_fetch_add(&received, rest.n);
	return 0;
}

static void test_cancel_mid_operation(void **state)
{
	size_t caps[] = { 0, 1, 64, WEFT_CHAN_UNBOUNDED };
	size_t k;
	unsigned i;

	(void)state;
	for (k = 0; k < 4; k++) {
		total = WT_SCALE(100000, 10000);
		seen = calloc(total, 1);
		sent_ok = calloc(total, 1);
		assert_non_null(seen);
		assert_non_null(sent_ok);
		atomic_store(&received, 0);
		atomic_store(&sends_ok, 0);
		atomic_store(&senders_done, 0);
		atomic_store(&cancels_done, 0);
		assert_int_equal(weft_chan_new(&ch, sizeof(struct msg),
					       caps[k]), 0);
		assert_int_equal(run(k % 2 ? 4 : 2, cancel_root, NULL), 0);
		assert_true(atomic_load(&cancels_done) > 0);
		assert_int_equal(atomic_load(&received),
				 atomic_load(&sends_ok));
		for (i = 0; i < total; i++)
			if (atomic_load(&seen[i]) != atomic_load(&sent_ok[i]))
				fail_msg("message %u: sent %u, received %u", i,
					 atomic_load(&sent_ok[i]),
					 atomic_load(&seen[i]));
		weft_chan_free(ch);
		free((void *)seen);
		free((void *)sent_ok);
	}
}

/*
 * FIFO, one worker: receivers queue in a known order on an empty channel;
 * items sent one by one reach them in that order. Then senders queue on a
 * full capacity-1 channel and their items come out in their order.
 */
#define FQ 5

static _Atomic int fifo_got[FQ];

static int fifo_receiver(void *arg)
{
	struct msg m;

	atomic_fetch_add(&blocked, 1);
	WT_CHECK_EQ(weft_chan_recv(ch, &m), 0);
	atomic_store(&fifo_got[(uintptr_t)arg], (int)m.seq);
	return 0;
}

static int fifo_root(void *arg)
{
	size_t caps[] = { 0, 1, WEFT_CHAN_UNBOUNDED };
	weft_task *t[FQ];
	struct msg m;
	uintptr_t i;
	size_t k;

	(void)arg;
	for (k = 0; k < 3; k++) {
		WT_CHECK_EQ(weft_chan_new(&ch, sizeof(m), caps[k]), 0);
		atomic_store(&blocked, 0);
		for (i = 0; i < FQ; i++) {
			WT_CHECK_EQ(weft_spawn(&t[i], fifo_receiver,
					       (void *)i), 0);
			WT_TASK_WAIT(atomic_load(&blocked) == (int)i + 1);
		}
		for (i = 0; i < FQ; i++) {
			m = mk(1000 + (uint32_t)i);
			/* A receiver waits, so even capacity 0 takes it
			 * without waiting. */
			if (caps[k] == 0)
				WT_CHECK_EQ(weft_chan_try_send(ch, &m), 0);
			else
				WT_CHECK_EQ(weft_chan_send(ch, &m), 0);
		}
		for (i = 0; i < FQ; i++) {
			WT_CHECK_EQ(weft_join(t[i], NULL), 0);
			WT_CHECK_EQ(atomic_load(&fifo_got[i]),
				    1000 + (int)i);
		}
		weft_chan_free(ch);
	}

	WT_CHECK_EQ(weft_chan_new(&ch, sizeof(m), 1), 0);
	m = mk(0);
	WT_CHECK_EQ(weft_chan_send(ch, &m), 0);
	atomic_store(&blocked, 0);
	for (i = 0; i < FQ; i++) {
		WT_CHECK_EQ(weft_spawn(&t[i], blocked_sender,
				       (void *)(i + 1)), 0);
		WT_TASK_WAIT(atomic_load(&blocked) == (int)i + 1);
	}
	for (i = 0; i <= FQ; i++) {
		WT_CHECK_EQ(weft_chan_recv(ch, &m), 0);
		WT_CHECK_EQ(m.seq, (uint32_t)i);
	}
	for (i = 0; i < FQ; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	WT_CHECK_EQ(weft_chan_len(ch), 0);
	weft_chan_free(ch);
	return 0;
}

static void test_fifo(void **state)
{
	(void)state;
	assert_int_equal(run(1, fifo_root, NULL), 0);
}

/* A receiver waiting with a deadline times out and takes nothing; a
 * sender on a full channel likewise leaves nothing behind. */
static int timeout_root(void *arg)
{
	struct msg m = mk(7), o;
	int rc;

	(void)arg;
	WT_CHECK_EQ(weft_chan_new(&ch, sizeof(m), 1), 0);
	WT_CHECK_EQ(weft_timeout_begin(2 * WT_MS), 0);
	rc = weft_chan_recv(ch, &o);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	WT_CHECK_EQ(rc, -ETIMEDOUT);
	WT_CHECK_EQ(weft_chan_send(ch, &m), 0);
	m = mk(8);
	WT_CHECK_EQ(weft_timeout_begin(2 * WT_MS), 0);
	rc = weft_chan_send(ch, &m);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	WT_CHECK_EQ(rc, -ETIMEDOUT);
	WT_CHECK_EQ(weft_chan_len(ch), 1);
	WT_CHECK_EQ(weft_chan_recv(ch, &o), 0);
	WT_CHECK_EQ(o.seq, 7);
	WT_CHECK_EQ(weft_chan_try_recv(ch, &o), -EAGAIN);
	weft_chan_free(ch);
	return 0;
}

static void test_timeouts(void **state)
{
	(void)state;
	assert_int_equal(run(1, timeout_root, NULL), 0);
}

/*
 * The ring's edges on one thread: capacities that are not powers of two,
 * element sizes that are not multiples of 8, exactly `cap` elements fit,
 * len follows, and everything comes out in order over dozens of laps, with
 * the fill level wandering so that head and tail wrap at every offset.
 */
static void fill_elem(unsigned char *b, size_t n, uint32_t seq)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(seq * 31u + (uint32_t)i * 7u + 1u);
}

static void ring_edges_one(size_t cap, size_t sz, uint64_t *rng)
{
	unsigned char in[24], out[24], want[24];
	uint32_t next_in = 0, next_out = 0;
	unsigned rounds = (unsigned)(40 * cap + 50), k;
	weft_chan *c = NULL;
	int rc;

	assert_int_equal(weft_chan_new(&c, sz, cap), 0);
	for (unsigned r = 0; r < rounds; r++) {
		for (k = wt_below(rng, (unsigned)cap + 2); k; k--) {
			fill_elem(in, sz, next_in);
			rc = weft_chan_try_send(c, in);
			if (next_in - next_out < cap) {
				assert_int_equal(rc, 0);
				next_in++;
			} else {
				assert_int_equal(rc, -EAGAIN);
			}
		}
		assert_int_equal(weft_chan_len(c), next_in - next_out);
		for (k = wt_below(rng, (unsigned)cap + 2); k; k--) {
			rc = weft_chan_try_recv(c, out);
			if (next_out == next_in) {
				assert_int_equal(rc, -EAGAIN);
				continue;
			}
			assert_int_equal(rc, 0);
			fill_elem(want, sz, next_out++);
			assert_memory_equal(out, want, sz);
		}
		assert_int_equal(weft_chan_len(c), next_in - next_out);
	}
	assert_int_equal(weft_chan_close(c), 0);
	fill_elem(in, sz, next_in);
	assert_int_equal(weft_chan_try_send(c, in), -EPIPE);
	while (next_out != next_in) {
		assert_int_equal(weft_chan_recv(c, out), 0);
		fill_elem(want, sz, next_out++);
		assert_memory_equal(out, want, sz);
	}
	assert_int_equal(weft_chan_recv(c, out), -EPIPE);
	assert_int_equal(weft_chan_len(c), 0);
	weft_chan_free(c);
}

static void test_ring_edges(void **state)
{
	static const size_t caps[] = { 1, 2, 3, 5, 7, 64, 100 };
	static const size_t sizes[] = { 1, 3, 8, 13, 24 };
	uint64_t rng = wt_seed(77, 0);

	(void)state;
	for (size_t ci = 0; ci < sizeof(caps) / sizeof(caps[0]); ci++)
		for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]);
		     si++)
			ring_edges_one(caps[ci], sizes[si], &rng);
}

/*
 * A receive that frees room hands it to a waiting sender at once: the
 * producer fills the channel and blocks on one more send; the root takes a
 * single element and then waits for an event that the producer sets only
 * when that send has returned. Nothing else is received meanwhile, so if
 * the waiting sender were left waiting for more room, this would hang.
 */
static weft_event prompt_ev;
static size_t prompt_cap;

static int prompt_producer(void *arg)
{
	(void)arg;
	for (uint32_t i = 0; i <= prompt_cap; i++) {
		struct msg m = mk(i);

		WT_CHECK_EQ(weft_chan_send(ch, &m), 0);
	}
	WT_CHECK_EQ(weft_event_set(&prompt_ev), 0);
	return 0;
}

static int prompt_root(void *arg)
{
	static const size_t caps[] = { 1, 4, 1024 };
	weft_task *t;
	struct msg m;

	(void)arg;
	for (size_t k = 0; k < 3; k++) {
		prompt_cap = caps[k];
		WT_CHECK_EQ(weft_event_init(&prompt_ev), 0);
		WT_CHECK_EQ(weft_chan_new(&ch, sizeof(m), prompt_cap), 0);
		WT_CHECK_EQ(weft_spawn(&t, prompt_producer, NULL), 0);
		WT_TASK_WAIT(weft_chan_len(ch) == (long)prompt_cap);
		WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0); /* it waits now */
		WT_CHECK_EQ(weft_event_is_set(&prompt_ev), 0);
		WT_CHECK_EQ(weft_chan_recv(ch, &m), 0);
		WT_CHECK_EQ(m.seq, 0);
		WT_CHECK_EQ(weft_event_wait(&prompt_ev), 0);
		WT_CHECK_EQ(weft_join(t, NULL), 0);
		WT_CHECK_EQ(weft_chan_len(ch), (long)prompt_cap);
		for (uint32_t i = 1; i <= prompt_cap; i++) {
			WT_CHECK_EQ(weft_chan_recv(ch, &m), 0);
			WT_CHECK_EQ(m.seq, i);
		}
		WT_CHECK_EQ(weft_chan_try_recv(ch, &m), -EAGAIN);
		weft_chan_free(ch);
	}
	return 0;
}

static void test_recv_completes_waiting_send(void **state)
{
	(void)state;
	assert_int_equal(run(1, prompt_root, NULL), 0);
	assert_int_equal(run(2, prompt_root, NULL), 0);
}

/*
 * Plain threads only (no runtime), capacities 1 and 2: nearly every
 * message crosses the empty or the full edge, so each one exercises the
 * hand-over between the two ends and their waiters; a lost wake-up hangs
 * (ctest's timeout). Two producers and two consumers, per-producer order
 * checked by take(). Nearly every message puts a thread to sleep in a
 * futex, tens of microseconds each on a busy machine: keep the count
 * small.
 */
static void *edge_sender(void *arg)
{
	uint32_t s = (uint32_t)(uintptr_t)arg, q;

	for (q = s; q < total; q += 2) {
		struct msg m = mk(q);

		WT_CHECK_EQ(weft_chan_send(ch, &m), 0);
		if (q % 4096 == s)
			sched_yield();
	}
	return NULL;
}

static void *edge_receiver(void *arg)
{
	struct rx r;
	struct msg m;
	int rc;

	(void)arg;
	memset(&r, 0, sizeof(r));
	while ((rc = weft_chan_recv(ch, &m)) == 0)
		take(&r, &m);
	WT_CHECK_EQ(rc, -EPIPE);
	atomic_fetch_add(&received, r.n);
	return NULL;
}

static void test_edges_plain_threads(void **state)
{
	static const size_t caps[] = { 1, 2 };

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		pthread_t ts[2], tr[2];
		uintptr_t i;

		total = WT_SCALE(40000, 4000);
		seen = calloc(total, 1);
		assert_non_null(seen);
		atomic_store(&received, 0);
		assert_int_equal(weft_chan_new(&ch, sizeof(struct msg),
					       caps[k]), 0);
		for (i = 0; i < 2; i++) {
			assert_int_equal(pthread_create(&tr[i], NULL,
							edge_receiver, NULL),
					 0);
			assert_int_equal(pthread_create(&ts[i], NULL,
							edge_sender,
							(void *)i), 0);
		}
		for (i = 0; i < 2; i++)
			assert_int_equal(pthread_join(ts[i], NULL), 0);
		assert_int_equal(weft_chan_close(ch), 0);
		for (i = 0; i < 2; i++)
			assert_int_equal(pthread_join(tr[i], NULL), 0);
		assert_int_equal(wt_take_failures(), 0);
		check_all_once();
		weft_chan_free(ch);
		free((void *)seen);
	}
}

/*
 * Select on buffered channels while plain sends and receives take their
 * fast paths on the same channels: a select claims itself only where its
 * case cannot fail any more (exactly one case fires, nothing is lost or
 * duplicated).
 * Phase 1: plain senders feed two channels (capacities 1 and 3); half the
 * receivers select over both, half recv on one. Phase 2: senders select
 * over both, receivers recv. Every number is received exactly once.
 */
static weft_chan *sc2[2];

static int sel_sender(void *arg)
{
	uint32_t s = (uint32_t)(uintptr_t)arg, q;
	bool use_select = s % 2 == 0;

	for (q = s; q < total; q += NS) {
		struct msg m = mk(q);
		int rc;

		if (use_select) {
			weft_select_case cs[2] = {
				{ .chan = sc2[0], .op = WEFT_SELECT_SEND,
				  .elem = &m },
				{ .chan = sc2[1], .op = WEFT_SELECT_SEND,
				  .elem = &m },
			};

			rc = weft_select(cs, 2);
			WT_CHECK(rc == 0 || rc == 1);
			if (rc >= 0)
				WT_CHECK_EQ(cs[rc].err, 0);
		} else {
			rc = weft_chan_send(sc2[q % 2], &m);
			WT_CHECK_EQ(rc, 0);
		}
	}
	return 0;
}

static int sel_receiver(void *arg)
{
	bool use_select = (uintptr_t)arg % 2 == 0;
	bool open[2] = { true, true };
	unsigned long n = 0;

	while (open[0] || open[1]) {
		struct msg box[2], m;
		int rc, k;

		if (use_select && open[0] && open[1]) {
			weft_select_case cs[2] = {
				{ .chan = sc2[0], .op = WEFT_SELECT_RECV,
				  .elem = &box[0] },
				{ .chan = sc2[1], .op = WEFT_SELECT_RECV,
				  .elem = &box[1] },
			};

			k = weft_select(cs, 2);
			if (k < 0) {
				WT_CHECK_EQ(k, 0);
				break;
			}
			rc = cs[k].err;
			m = box[k];
		} else {
			k = (int)((uintptr_t)arg % 2); /* its own channel */
			if (!open[k])
				k = 1 - k;
			rc = weft_chan_recv(sc2[k], &m);
		}
		if (rc == -EPIPE) {
			open[k] = false;
			continue;
		}
		WT_CHECK_EQ(rc, 0);
		if (m.check != (m.seq ^ MAGIC) || m.seq >= total) {
			WT_CHECK(!"corrupt message");
			continue;
		}
		if (atomic_fetch_add(&seen[m.seq], 1) != 0)
			WT_CHECK(!"message received twice");
		n++;
	}
	atomic_fetch_add(&received, n);
	return 0;
}

static int sel_ring_root(void *arg)
{
	weft_task *s[NS], *r[NR];
	uintptr_t i;

	(void)arg;
	for (i = 0; i < NR; i++)
		WT_CHECK_EQ(weft_spawn(&r[i], sel_receiver, (void *)i), 0);
	for (i = 0; i < NS; i++)
		WT_CHECK_EQ(weft_spawn(&s[i], sel_sender, (void *)i), 0);
	for (i = 0; i < NS; i++)
		WT_CHECK_EQ(weft_join(s[i], NULL), 0);
	WT_CHECK_EQ(weft_chan_close(sc2[0]), 0);
	WT_CHECK_EQ(weft_chan_close(sc2[1]), 0);
	for (i = 0; i < NR; i++)
		WT_CHECK_EQ(weft_join(r[i], NULL), 0);
	return 0;
}

static void test_select_on_rings(void **state)
{
	static const unsigned workers[] = { 1, 2, 4 };

	(void)state;
	for (size_t w = 0; w < 3; w++) {
		total = WT_SCALE(200000, 10000);
		seen = calloc(total, 1);
		assert_non_null(seen);
		atomic_store(&received, 0);
		assert_int_equal(weft_chan_new(&sc2[0], sizeof(struct msg), 1),
				 0);
		assert_int_equal(weft_chan_new(&sc2[1], sizeof(struct msg), 3),
				 0);
		assert_int_equal(run(workers[w], sel_ring_root, NULL), 0);
		check_all_once();
		assert_int_equal(weft_chan_len(sc2[0]), 0);
		assert_int_equal(weft_chan_len(sc2[1]), 0);
		weft_chan_free(sc2[0]);
		weft_chan_free(sc2[1]);
		free((void *)seen);
	}
}

/*
 * Ping-pong over two buffered channels: each side sends one element and
 * then waits for the other's, so no later message can hide a wake-up that
 * the handshake lost (it hangs). Plain threads, and tasks on 2 workers.
 */
static weft_chan *pp_c[2];
static unsigned pp_rounds;

static int pp_side(void *arg)
{
	int me = (int)(uintptr_t)arg;
	struct msg m;

	for (uint32_t i = 0; i < pp_rounds; i++) {
		if (me == 0) {
			m = mk(i);
			WT_CHECK_EQ(weft_chan_send(pp_c[0], &m), 0);
			WT_CHECK_EQ(weft_chan_recv(pp_c[1], &m), 0);
		} else {
			WT_CHECK_EQ(weft_chan_recv(pp_c[0], &m), 0);
			WT_CHECK_EQ(weft_chan_send(pp_c[1], &m), 0);
		}
		if (m.seq != i || m.check != (i ^ MAGIC)) {
			WT_CHECK_EQ(m.seq, i);
			break;
		}
	}
	return 0;
}

static void *pp_thread(void *arg)
{
	pp_side(arg);
	return NULL;
}

static int pp_root(void *arg)
{
	weft_task *t[2];

	(void)arg;
	for (uintptr_t i = 0; i < 2; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], pp_side, (void *)i), 0);
	for (int i = 0; i < 2; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	return 0;
}

static void test_pingpong_rings(void **state)
{
	static const size_t caps[] = { 1, 2, 64 };

	(void)state;
	for (size_t k = 0; k < 3; k++) {
		pthread_t th[2];

		for (int i = 0; i < 2; i++)
			assert_int_equal(weft_chan_new(&pp_c[i],
						       sizeof(struct msg),
						       caps[k]), 0);
		/* Plain threads wait in futexes: tens of microseconds a
		 * round trip on a busy machine. */
		pp_rounds = WT_SCALE(5000, 1000);
		for (uintptr_t i = 0; i < 2; i++)
			assert_int_equal(pthread_create(&th[i], NULL,
							pp_thread, (void *)i),
					 0);
		for (int i = 0; i < 2; i++)
			assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(wt_take_failures(), 0);
		pp_rounds = WT_SCALE(100000, 5000);
		assert_int_equal(run(2, pp_root, NULL), 0);
		for (int i = 0; i < 2; i++) {
			assert_int_equal(weft_chan_len(pp_c[i]), 0);
			weft_chan_free(pp_c[i]);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args_and_try),
		cmocka_unit_test(test_big_elements),
		cmocka_unit_test(test_unbounded_never_waits),
		cmocka_unit_test(test_mpmc_cap0),
		cmocka_unit_test(test_mpmc_cap1),
		cmocka_unit_test(test_mpmc_cap1024),
		cmocka_unit_test(test_mpmc_unbounded),
		cmocka_unit_test(test_mpmc_workers),
		cmocka_unit_test(test_mpmc_plain_threads),
		cmocka_unit_test(test_close_wakes_waiters),
		cmocka_unit_test(test_close_during_traffic),
		cmocka_unit_test(test_cancel_mid_operation),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_ring_edges),
		cmocka_unit_test(test_recv_completes_waiting_send),
		cmocka_unit_test(test_edges_plain_threads),
		cmocka_unit_test(test_select_on_rings),
		cmocka_unit_test(test_pingpong_rings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
