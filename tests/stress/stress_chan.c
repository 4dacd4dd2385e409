/* SPDX-License-Identifier: MIT */
/*
 * Channel stress validator: NCH channels of random capacities (0, 1, 3, 4,
 * 64, 1024, unbounded: the bounded ones from 1 up are the split-lock rings of
 * runtime/chan.c, 3 is not a power of two, 1024 reaches the senders'
 * backpressure); sender tasks push numbered messages with send,
 * try_send or select over several channels; receiver tasks take them
 * with recv, try_recv or select; a controller cancels random receivers
 * and senders (replacing receivers), opens short deadline scopes in
 * senders, and closes a random channel midway. Choices come from
 * xorshift states derived from one printed seed.
 *
 *	stress_chan [workers [seed [size]]]
 *
 * size: messages (default 400,000; 40,000 in sanitizer builds).
 * Exactly-once accounting: a message counts as sent iff its send (or its
 * select case) returned 0; it must then be received exactly once
 * (by a receiver, or by the final drain after every channel is closed),
 * and a message not sent must never be received.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "weft_test.h"

/* End-of-run counts, reported under this program's name. */
#define check(...) wt_check("stress_chan", __VA_ARGS__)

#define NCH 4
#define SENDERS 8
#define RECEIVERS 8

struct msg {
	uint32_t seq;
	uint32_t check;
};

#define MAGIC 0x85ebca6bu

static uint64_t seed;
static unsigned size;
static weft_chan *ch[NCH];
static size_t caps[NCH];
static _Atomic unsigned char *sent_ok, *seen;

static _Atomic long n_sent, n_refused, n_timed, n_recv, n_selects;
static _Atomic long n_try_again, n_cancel_send, n_cancel_recv, n_closed_ch;
static _Atomic int senders_done;
static _Atomic int sender_cancel_asked[SENDERS];
static _Atomic int sender_started[SENDERS];

static void mark_received(const struct msg *m)
{
	if (m->seq >= size || m->check != (m->seq ^ MAGIC)) {
		WT_CHECK(!"corrupt message");
		return;
	}
	if (atomic_fetch_add(&seen[m->seq], 1) != 0)
		WT_CHECK(!"message received twice");
	atomic_fetch_add(&n_recv, 1);
}

/* Sender i sends i, i + SENDERS, ... Returns when done or cancelled. */
static int sender(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg, q;
	uint64_t rng = wt_seed(seed, id);

	atomic_store(&sender_started[id], 1);

	for (q = id; q < size; q += SENDERS) {
		struct msg m = { q, q ^ MAGIC };
		unsigned how = wt_below(&rng, 10);
		bool scoped = wt_below(&rng, 16) == 0;
		int rc;

		if (scoped)
			WT_CHECK_EQ(weft_timeout_begin(wt_below(&rng, 100) *
						       WT_US), 0);
		if (how < 5) {
			rc = weft_chan_send(ch[wt_below(&rng, NCH)], &m);
		} else if (how < 7) {
			weft_chan *c = ch[wt_below(&rng, NCH)];

			unsigned tries = 0;

			/* A few tries, then wait (capacity 0 without a
			 * waiting receiver would spin for long). */
			while ((rc = weft_chan_try_send(c, &m)) == -EAGAIN) {
				atomic_fetch_add(&n_try_again, 1);
				if (++tries == 4) {
					rc = weft_chan_send(c, &m);
					break;
				}
				rc = weft_yield();
				if (rc)
					break;
			}
		} else {
			weft_select_case sc[NCH];
			unsigned k, n = 2 + wt_below(&rng, NCH - 1);

			for (k = 0; k < n; k++)
				sc[k] = (weft_select_case){
					.chan = ch[(k + q) % NCH],
					.op = WEFT_SELECT_SEND,
					.elem = &m };
			atomic_fetch_add(&n_selects, 1);
			rc = weft_select(sc, n);
			if (rc >= 0) {
				WT_CHECK(rc < (int)n);
				rc = sc[rc].err;
			}
		}
		if (scoped)
			WT_CHECK(weft_timeout_end() >= 0);
		if (rc == 0) {
			atomic_store(&sent_ok[q], 1);
			atomic_fetch_add(&n_sent, 1);
		} else if (rc == -EPIPE) {
			atomic_fetch_add(&n_refused, 1);
		} else if (rc == -ETIMEDOUT && scoped) {
			atomic_fetch_add(&n_timed, 1);
		} else if (rc == -ECANCELED) {
			WT_CHECK(atomic_load(&sender_cancel_asked[id]));
			atomic_fetch_add(&n_cancel_send, 1);
			break;
		} else {
			WT_CHECK_EQ(rc, 0);
		}
	}
	atomic_fetch_add(&senders_done, 1);
	return 0;
}

/* Receives until every channel is closed and drained, or cancelled. */
static int receiver(void *arg)
{
	uint64_t rng = wt_seed(seed ^ 0xabcdefu, (uintptr_t)arg);
	bool open[NCH];
	int nopen = NCH, i;

	for (i = 0; i < NCH; i++)
		open[i] = true;
	while (nopen > 0) {
		unsigned how = wt_below(&rng, 10);
		struct msg m;
		int rc, c;

		if (how < 5) {
			do
				c = (int)wt_below(&rng, NCH);
			while (!open[c]);
			rc = weft_chan_recv(ch[c], &m);
		} else if (how < 7) {
			do
				c = (int)wt_below(&rng, NCH);
			while (!open[c]);
			rc = weft_chan_try_recv(ch[c], &m);
			if (rc == -EAGAIN) {
				rc = weft_yield();
				if (rc == 0)
					continue;
			}
		} else {
			weft_select_case sc[NCH];
			struct msg box[NCH];
			int map[NCH], n = 0, k;

			for (i = 0; i < NCH; i++)
				if (open[i]) {
					map[n] = i;
					sc[n++] = (weft_select_case){
						.chan = ch[i],
						.op = WEFT_SELECT_RECV,
						.elem = &box[i] };
				}
			atomic_fetch_add(&n_selects, 1);
			k = weft_select(sc, (size_t)n);
			if (k < 0) {
				rc = k;
				c = -1;
			} else {
				c = map[k];
				rc = sc[k].err;
				m = box[c];
			}
		}
		if (rc == 0) {
			mark_received(&m);
		} else if (rc == -EPIPE) {
			open[c] = false;
			nopen--;
		} else if (rc == -ECANCELED) {
			atomic_fetch_add(&n_cancel_recv, 1);
			return 0;
		} else {
			WT_CHECK_EQ(rc, 0);
			return rc;
		}
	}
	return 0;
}

static int root(void *arg)
{
	weft_task *s[SENDERS], *r[RECEIVERS];
	uint64_t rng = wt_seed(seed, UINT32_MAX);
	bool closed_one = false;
	int cancelled_senders = 0;
	uintptr_t i;
	struct msg m;
	int rc;

	(void)arg;
	for (i = 0; i < RECEIVERS; i++)
		WT_CHECK_EQ(weft_spawn(&r[i], receiver, (void *)i), 0);
	for (i = 0; i < SENDERS; i++)
		WT_CHECK_EQ(weft_spawn(&s[i], sender, (void *)i), 0);
	while (atomic_load(&senders_done) < SENDERS) {
		unsigned what = wt_below(&rng, 20);

		WT_CHECK_EQ(weft_sleep((50 + wt_below(&rng, 400)) * WT_US), 0);
		if (what < 12) {
			unsigned k = wt_below(&rng, RECEIVERS);

			WT_CHECK(weft_cancel(r[k]) == 0);
			WT_CHECK_EQ(weft_join(r[k], NULL), 0);
			WT_CHECK_EQ(weft_spawn(&r[k], receiver,
					       (void *)(uintptr_t)(k + 1000 *
						       wt_below(&rng, 1000))),
				    0);
		} else if (what == 12 && cancelled_senders < 2) {
			unsigned k = wt_below(&rng, SENDERS);

			/* A task cancelled before it first runs never runs at
			 * all, so it would never count itself done: cancel
			 * only a sender that has started. */
			if (!atomic_load(&sender_started[k]))
				continue;
			cancelled_senders++;
			atomic_store(&sender_cancel_asked[k], 1);
			rc = weft_cancel(s[k]);
			WT_CHECK(rc == 0 || rc == -ESRCH);
		} else if (what == 13 && !closed_one) {
			closed_one = true;
			atomic_fetch_add(&n_closed_ch, 1);
			WT_CHECK_EQ(weft_chan_close(ch[wt_below(&rng, NCH)]), 0);
		}
	}
	for (i = 0; i < SENDERS; i++)
		WT_CHECK_EQ(weft_join(s[i], NULL), 0);
	for (i = 0; i < NCH; i++) {
		rc = weft_chan_close(ch[i]);
		WT_CHECK(rc == 0 || rc == -EPIPE);
	}
	for (i = 0; i < RECEIVERS; i++)
		WT_CHECK_EQ(weft_join(r[i], NULL), 0);
	/* Whatever cancelled receivers left behind is still buffered. */
	for (i = 0; i < NCH; i++) {
		while ((rc = weft_chan_recv(ch[i], &m)) == 0)
			mark_received(&m);
		WT_CHECK_EQ(rc, -EPIPE);
		WT_CHECK_EQ(weft_chan_len(ch[i]), 0);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const size_t cap_choices[] = { 0, 1, 3, 4, 64, 1024,
					      WEFT_CHAN_UNBOUNDED };
	unsigned long workers;
	weft_config cfg;
	uint64_t rng;
	bool ok = true;
	long bad = 0;
	unsigned i;
	int rc, r = -1;

	if (wt_stress_args(argc, argv, &workers, &seed, &size,
			   WT_SCALE(400000, 40000)))
		return 2;
	rng = wt_seed(seed, 0xc4a2);
	for (i = 0; i < NCH; i++)
		caps[i] = cap_choices[wt_below(
			&rng, sizeof(cap_choices) / sizeof(cap_choices[0]))];
	caps[0] = 0; /* always one rendezvous channel */
	printf("stress_chan: workers=%lu seed=%" PRIu64 " size=%u caps=",
	       workers, seed, size);
	for (i = 0; i < NCH; i++)
		printf(caps[i] == WEFT_CHAN_UNBOUNDED ? "%sunbounded" : "%s%zu",
		       i ? "," : "", caps[i]);
	printf("\n");
	fflush(stdout);

	sent_ok = calloc(size, 1);
	seen = calloc(size, 1);
	if (!sent_ok || !seen)
		return 2;
	for (i = 0; i < NCH; i++)
		if (weft_chan_new(&ch[i], sizeof(struct msg), caps[i]) != 0)
			return 2;
	cfg = wt_cfg((unsigned)workers);
	rc = weft_run(&cfg, root, NULL, &r);
	ok &= check("weft_run", rc, 0);
	ok &= check("first task's result", r, 0);

	for (i = 0; i < size; i++) {
		unsigned s = atomic_load(&sent_ok[i]);
		unsigned g = atomic_load(&seen[i]);

		if (s != g) {
			if (bad < 10)
				fprintf(stderr,
					"stress_chan: message %u: sent %u, "
					"received %u\n", i, s, g);
			bad++;
		}
	}
	printf("sent %ld, refused (closed) %ld, timed out %ld, received %ld; "
	       "selects %ld, try -EAGAIN %ld; cancelled senders %ld, "
	       "receivers %ld; channels closed early %ld\n",
	       atomic_load(&n_sent), atomic_load(&n_refused),
	       atomic_load(&n_timed), atomic_load(&n_recv),
	       atomic_load(&n_selects), atomic_load(&n_try_again),
	       atomic_load(&n_cancel_send), atomic_load(&n_cancel_recv),
	       atomic_load(&n_closed_ch));
	ok &= check("checks failed inside tasks", wt_take_failures(), 0);
	ok &= check("messages not received exactly once as sent", bad, 0);
	ok &= check("received vs sent", atomic_load(&n_recv),
		    atomic_load(&n_sent));
	for (i = 0; i < NCH; i++)
		weft_chan_free(ch[i]);
	free((void *)sent_ok);
	free((void *)seen);
	printf("stress_chan: %s (seed %" PRIu64 ")\n", ok ? "PASS" : "FAIL",
	       seed);
	return ok ? 0 : 1;
}
