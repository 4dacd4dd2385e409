/* SPDX-License-Identifier: MIT */
/*
 * weft_select / weft_select_try: -EINVAL; select_try -EAGAIN with nothing
 * ready; several ready receive cases over many rounds: exactly one fires
 * per call, every case fires, the buffered counts stay consistent; ready
 * send and receive cases mixed; closed channels fire with err = -EPIPE; a
 * waiting select woken by a sender, by a receiver, by a close; a select
 * that is cancelled or times out takes no effect (on capacity-0 channels
 * no waiter is left behind); selecting senders and receivers moving
 * numbered messages exactly once.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

#define NC 4

static weft_chan *c[NC];

static void new_chans(size_t cap)
{
	int i;

	for (i = 0; i < NC; i++)
		assert_int_equal(weft_chan_new(&c[i], sizeof(int), cap), 0);
}

static void free_chans(void)
{
	int i;

	for (i = 0; i < NC; i++)
		weft_chan_free(c[i]);
}

static void test_invalid_and_try(void **state)
{
	weft_select_case sc[2];
	int v = 0, w = 0;

	(void)state;
	new_chans(1);
	assert_int_equal(weft_select(sc, 0), -EINVAL);
	assert_int_equal(weft_select_try(sc, 0), -EINVAL);
	sc[0] = (weft_select_case){ .chan = NULL, .op = WEFT_SELECT_RECV,
				    .elem = &v };
	assert_int_equal(weft_select_try(sc, 1), -EINVAL);
	sc[0] = (weft_select_case){ .chan = c[0], .op = WEFT_SELECT_RECV,
				    .elem = NULL };
	assert_int_equal(weft_select_try(sc, 1), -EINVAL);

	/* Nothing ready: c[0] empty (recv), c[1] full (send). */
	v = 5;
	assert_int_equal(weft_chan_send(c[1], &v), 0);
	sc[0] = (weft_select_case){ .chan = c[0], .op = WEFT_SELECT_RECV,
				    .elem = &v };
	sc[1] = (weft_select_case){ .chan = c[1], .op = WEFT_SELECT_SEND,
				    .elem = &w };
	assert_int_equal(weft_select_try(sc, 2), -EAGAIN);
	assert_int_equal(weft_chan_len(c[0]), 0);
	assert_int_equal(weft_chan_len(c[1]), 1);
	/* Make c[0] ready: only case 0 can fire. */
	w = 9;
	assert_int_equal(weft_chan_send(c[0], &w), 0);
	v = 0;
	sc[0].err = sc[1].err = 1234;
	assert_int_equal(weft_select_try(sc, 2), 0);
	assert_int_equal(sc[0].err, 0);
	assert_int_equal(v, 9);
	assert_int_equal(weft_chan_len(c[0]), 0);
	assert_int_equal(weft_chan_len(c[1]), 1);
	/* Blocking select with a ready case returns at once. */
	assert_int_equal(weft_chan_recv(c[1], &v), 0);
	w = 11;
	assert_int_equal(weft_select(sc, 2), 1);
	assert_int_equal(sc[1].err, 0);
	assert_int_equal(weft_chan_recv(c[1], &v), 0);
	assert_int_equal(v, 11);
	free_chans();
}

/*
 * Fairness: four buffered channels, each holding enough items, one select
 * per round over their receive cases. Exactly one fires per call: the
 * total buffered drops by one and only the returned channel's count
 * changes; the value received is the next one of that channel. Over 1000
 * rounds every case fires.
 */
#define ROUNDS 1000

static int fair_root(void *arg)
{
	weft_select_case sc[NC];
	int fired[NC] = { 0 }, next[NC] = { 0 }, got[NC];
	ssize_t len[NC];
	int i, k, r;

	(void)arg;
	for (i = 0; i < NC; i++)
		for (k = 0; k < ROUNDS; k++) {
			int v = i * 100000 + k;

			WT_CHECK_EQ(weft_chan_send(c[i], &v), 0);
		}
	for (r = 0; r < ROUNDS; r++) {
		for (i = 0; i < NC; i++) {
			got[i] = -1;
			sc[i] = (weft_select_case){ .chan = c[i],
						    .op = WEFT_SELECT_RECV,
						    .err = 77,
						    .elem = &got[i] };
			len[i] = weft_chan_len(c[i]);
		}
		k = (r & 1) ? weft_select(sc, NC) : weft_select_try(sc, NC);
		if (k < 0 || k >= NC) {
			WT_CHECK(!"select returned no case");
			return -1;
		}
		fired[k]++;
		WT_CHECK_EQ(sc[k].err, 0);
		WT_CHECK_EQ(got[k], k * 100000 + next[k]);
		next[k]++;
		for (i = 0; i < NC; i++) {
			WT_CHECK_EQ(weft_chan_len(c[i]),
				    len[i] - (i == k));
			if (i != k)
				WT_CHECK_EQ(got[i], -1);
		}
	}
	for (i = 0; i < NC; i++) {
		WT_CHECK(fired[i] > 0);
		WT_CHECK_EQ(weft_chan_len(c[i]), ROUNDS - fired[i]);
	}
	return 0;
}

static void test_fair_recv(void **state)
{
	(void)state;
	new_chans(ROUNDS);
	assert_int_equal(run(1, fair_root, NULL), 0);
	free_chans();
}

/* Mixed: cases 0, 1 receive from non-empty channels, cases 2, 3 send into
 * channels with room. Each call moves exactly one element. */
static int mixed_root(void *arg)
{
	weft_select_case sc[NC];
	int fired[NC] = { 0 }, vals[NC];
	ssize_t before[NC];
	int i, k, r;

	(void)arg;
	for (i = 0; i < 2; i++)
		for (k = 0; k < ROUNDS; k++)
			WT_CHECK_EQ(weft_chan_send(c[i], &k), 0);
	for (r = 0; r < ROUNDS; r++) {
		for (i = 0; i < NC; i++) {
			vals[i] = i < 2 ? -1 : r;
			sc[i] = (weft_select_case){
				.chan = c[i],
				.op = i < 2 ? WEFT_SELECT_RECV
					    : WEFT_SELECT_SEND,
				.elem = &vals[i] };
			before[i] = weft_chan_len(c[i]);
		}
		k = weft_select(sc, NC);
		if (k < 0 || k >= NC) {
			WT_CHECK(!"select returned no case");
			return -1;
		}
		fired[k]++;
		for (i = 0; i < NC; i++) {
			ssize_t want = before[i];

			if (i == k)
				want += i < 2 ? -1 : 1;
			WT_CHECK_EQ(weft_chan_len(c[i]), want);
		}
	}
	for (i = 0; i < NC; i++)
		WT_CHECK(fired[i] > 0);
	return 0;
}

static void test_mixed_send_recv(void **state)
{
	(void)state;
	new_chans(ROUNDS);
	assert_int_equal(run(2, mixed_root, NULL), 0);
	free_chans();
}

/* Closed channels: a receive case on a closed, drained channel and a
 * send case on a closed channel fire with -EPIPE; a buffered item on a
 * closed channel is still received with err 0 first. */
static void test_closed(void **state)
{
	weft_select_case sc[2];
	int v = 3, w = 4, fired[2] = { 0, 0 }, i;

	(void)state;
	new_chans(2);
	assert_int_equal(weft_chan_send(c[0], &v), 0);
	assert_int_equal(weft_chan_close(c[0]), 0);
	sc[0] = (weft_select_case){ .chan = c[0], .op = WEFT_SELECT_RECV,
				    .err = 5, .elem = &v };
	v = 0;
	assert_int_equal(weft_select(sc, 1), 0);
	assert_int_equal(sc[0].err, 0);
	assert_int_equal(v, 3);
	sc[0].err = 5;
	assert_int_equal(weft_select(sc, 1), 0);
	assert_int_equal(sc[0].err, -EPIPE);
	sc[0].err = 5;
	assert_int_equal(weft_select_try(sc, 1), 0);
	assert_int_equal(sc[0].err, -EPIPE);

	assert_int_equal(weft_chan_close(c[1]), 0);
	sc[0] = (weft_select_case){ .chan = c[1], .op = WEFT_SELECT_SEND,
				    .elem = &w };
	assert_int_equal(weft_select_try(sc, 1), 0);
	assert_int_equal(sc[0].err, -EPIPE);
	assert_int_equal(weft_chan_len(c[1]), 0);

	/* Both closed: both ready; each fires now and then. */
	sc[0] = (weft_select_case){ .chan = c[0], .op = WEFT_SELECT_RECV,
				    .elem = &v };
	sc[1] = (weft_select_case){ .chan = c[1], .op = WEFT_SELECT_SEND,
				    .elem = &w };
	for (i = 0; i < 200; i++) {
		int k = weft_select(sc, 2);

		assert_true(k == 0 || k == 1);
		assert_int_equal(sc[k].err, -EPIPE);
		fired[k]++;
	}
	assert_true(fired[0] > 0 && fired[1] > 0);
	free_chans();
}

/*
 * A waiting select is woken: by a sender on one of its receive cases, by
 * a receiver on one of its send cases (capacity 0), by a close.
 */
static _Atomic int selecting;

static int wait_select(void *arg)
{
	weft_select_case sc[NC];
	int v[NC], i, k;

	(void)arg;
	for (i = 0; i < NC; i++) {
		v[i] = 1000 + i;
		sc[i] = (weft_select_case){
			.chan = c[i],
			.op = i < 2 ? WEFT_SELECT_RECV : WEFT_SELECT_SEND,
			.elem = &v[i] };
	}
	atomic_fetch_add(&selecting, 1);
	k = weft_select(sc, NC);
	if (k < 0)
		return k;
	WT_CHECK(k < NC);
	return k * 10000 + (sc[k].err == -EPIPE ? 9999 : v[k]);
}

static int wake_root(void *arg)
{
	weft_task *t;
	int r = -1, v = 42;

	(void)arg;
	/* Sender on c[1]. */
	atomic_store(&selecting, 0);
	WT_CHECK_EQ(weft_spawn(&t, wait_select, NULL), 0);
	WT_TASK_WAIT(atomic_load(&selecting) == 1);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_chan_send(c[1], &v), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, 10000 + 42);
	/* Receiver on c[3]: takes the select's element 1003. */
	atomic_store(&selecting, 0);
	WT_CHECK_EQ(weft_spawn(&t, wait_select, NULL), 0);
	WT_TASK_WAIT(atomic_load(&selecting) == 1);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_chan_recv(c[3], &v), 0);
	WT_CHECK_EQ(v, 1003);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, 30000 + 1003);
	/* Nothing left over anywhere (capacity 0). */
	WT_CHECK_EQ(weft_chan_try_recv(c[2], &v), -EAGAIN);
	WT_CHECK_EQ(weft_chan_try_send(c[0], &v), -EAGAIN);
	/* Close c[0]: its receive case fires with -EPIPE. */
	atomic_store(&selecting, 0);
	WT_CHECK_EQ(weft_spawn(&t, wait_select, NULL), 0);
	WT_TASK_WAIT(atomic_load(&selecting) == 1);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_chan_close(c[0]), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, 9999);
	return 0;
}

static void test_wakeups(void **state)
{
	(void)state;
	new_chans(0);
	assert_int_equal(run(1, wake_root, NULL), 0);
	free_chans();
	new_chans(0);
	assert_int_equal(run(2, wake_root, NULL), 0);
	free_chans();
}

/*
 * Giving up: a select on capacity-0 channels is cancelled, another times
 * out. Neither takes effect, and neither leaves a waiter behind: a later
 * try_send / try_recv on those channels finds no partner.
 */
static int give_up_root(void *arg)
{
	weft_task *t;
	int r = 1, v = 0, rc;

	(void)arg;
	atomic_store(&selecting, 0);
	WT_CHECK_EQ(weft_spawn(&t, wait_select, NULL), 0);
	WT_TASK_WAIT(atomic_load(&selecting) == 1);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(t), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);
	WT_CHECK_EQ(weft_timeout_begin(2 * WT_MS), 0);
	rc = wait_select(NULL);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	WT_CHECK_EQ(rc, -ETIMEDOUT);
	WT_CHECK_EQ(weft_chan_try_send(c[0], &v), -EAGAIN);
	WT_CHECK_EQ(weft_chan_try_send(c[1], &v), -EAGAIN);
	WT_CHECK_EQ(weft_chan_try_recv(c[2], &v), -EAGAIN);
	WT_CHECK_EQ(weft_chan_try_recv(c[3], &v), -EAGAIN);
	return 0;
}

static void test_give_up(void **state)
{
	(void)state;
	new_chans(0);
	assert_int_equal(run(1, give_up_root, NULL), 0);
	assert_int_equal(run(2, give_up_root, NULL), 0);
	free_chans();
}

/*
 * Exactly once under contention: SEL senders each select-send numbered
 * messages over all NC channels (capacity 0 or 2), SEL receivers
 * select-receive over all of them and plain recv receivers compete too.
 * Every number arrives exactly once.
 */
#define SEL 4

static unsigned total;
static _Atomic unsigned char *seen;
static _Atomic unsigned long received;
static _Atomic int senders_left;

static int sel_sender(void *arg)
{
	unsigned s = (unsigned)(uintptr_t)arg, q;
	weft_select_case sc[NC];
	int v, i;

	for (q = s; q < total; q += SEL) {
		v = (int)q;
		for (i = 0; i < NC; i++)
			sc[i] = (weft_select_case){ .chan = c[i],
						    .op = WEFT_SELECT_SEND,
						    .elem = &v };
		i = weft_select(sc, NC);
		WT_CHECK(i >= 0 && i < NC);
		if (i >= 0)
			WT_CHECK_EQ(sc[i].err, 0);
	}
	if (atomic_fetch_sub(&senders_left, 1) == 1)
		for (i = 0; i < NC; i++)
			WT_CHECK_EQ(weft_chan_close(c[i]), 0);
	return 0;
}

static void mark(int v)
{
	if (v < 0 || (unsigned)v >= total) {
		WT_CHECK(!"value out of range");
		return;
	}
	if (atomic_fetch_add(&seen[v], 1) != 0)
		WT_CHECK(!"received twice");
	atomic_fetch_add(&received, 1);
}

static int sel_receiver(void *arg)
{
	weft_select_case sc[NC];
	bool open[NC];
	int v[NC], i, n = NC, k;

	(void)arg;
	for (i = 0; i < NC; i++)
		open[i] = true;
	while (n > 0) {
		int map[NC], m = 0;

		for (i = 0; i < NC; i++)
			if (open[i]) {
				map[m] = i;
				sc[m++] = (weft_select_case){
					.chan = c[i], .op = WEFT_SELECT_RECV,
					.elem = &v[i] };
			}
		k = weft_select(sc, (size_t)m);
		if (k < 0 || k >= m) {
			WT_CHECK(!"select failed");
			return -1;
		}
		if (sc[k].err == -EPIPE) {
			open[map[k]] = false;
			n--;
		} else {
			WT_CHECK_EQ(sc[k].err, 0);
			mark(v[map[k]]);
		}
	}
	return 0;
}

static int plain_receiver(void *arg)
{
	weft_chan *ch = c[(uintptr_t)arg];
	int v, rc;

	while ((rc = weft_chan_recv(ch, &v)) == 0)
		mark(v);
	WT_CHECK_EQ(rc, -EPIPE);
	return 0;
}

static int contention_root(void *arg)
{
	weft_task *s[SEL], *r[SEL], *p[NC];
	uintptr_t i;

	(void)arg;
	atomic_store(&senders_left, SEL);
	for (i = 0; i < SEL; i++)
		WT_CHECK_EQ(weft_spawn(&r[i], sel_receiver, NULL), 0);
	for (i = 0; i < NC; i++)
		WT_CHECK_EQ(weft_spawn(&p[i], plain_receiver, (void *)i), 0);
	for (i = 0; i < SEL; i++)
		WT_CHECK_EQ(weft_spawn(&s[i], sel_sender, (void *)i), 0);
	for (i = 0; i < SEL; i++)
		WT_CHECK_EQ(weft_join(s[i], NULL), 0);
	for (i = 0; i < SEL; i++)
		WT_CHECK_EQ(weft_join(r[i], NULL), 0);
	for (i = 0; i < NC; i++)
		WT_CHECK_EQ(weft_join(p[i], NULL), 0);
	return 0;
}

static void test_contention_exactly_once(void **state)
{
	size_t caps[] = { 0, 2 };
	unsigned workers[] = { 1, 4 };
	size_t k, w;
	unsigned i;

	(void)state;
	for (k = 0; k < 2; k++)
		for (w = 0; w < 2; w++) {
			total = WT_SCALE(100000, 10000);
			seen = calloc(total, 1);
			assert_non_null(seen);
			atomic_store(&received, 0);
			new_chans(caps[k]);
			assert_int_equal(run(workers[w], contention_root,
					     NULL), 0);
			assert_int_equal(atomic_load(&received), total);
			for (i = 0; i < total; i++)
				if (atomic_load(&seen[i]) != 1)
					fail_msg("value %u seen %u times", i,
						 atomic_load(&seen[i]));
			free_chans();
			free((void *)seen);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invalid_and_try),
		cmocka_unit_test(test_fair_recv),
		cmocka_unit_test(test_mixed_send_recv),
		cmocka_unit_test(test_closed),
		cmocka_unit_test(test_wakeups),
		cmocka_unit_test(test_give_up),
		cmocka_unit_test(test_contention_exactly_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
