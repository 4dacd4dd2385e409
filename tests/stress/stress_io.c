/* SPDX-License-Identifier: MIT */
/*
 * I/O stress validator (a TSan target): NCONN loopback TCP connections,
 * each carrying `size` messages of random lengths (1..MSG_MAX bytes) to
 * an echo handler and back, in one of four modes (connection id % 4):
 *  0. lockstep: write a message in 1-3 pieces, read its echo in
 *     random-sized reads;
 *  1. full duplex: a writer task streams every message while the client
 *     task reads the echo at once, so two tasks wait on one fd in both
 *     directions, often on different workers;
 *  2. cancelled readers: a writer streams; the echo is read by a chain of
 *     reader tasks, each cancelled at a random moment (often while its
 *     read waits in the kernel);
 *  3. cancelled writers: the stream is written by a chain of writer tasks
 *     cancelled the same way (small socket buffers, so writes wait) while
 *     a reader task reads the echo.
 * A cancelled call must move no byte; a call that moved bytes must say
 * how many. Every client task is spawned by one spawner task (they start
 * on its worker and are stolen from there), and the tasks insert random
 * weft_yield calls, so connections move between workers in mid-stream.
 *
 *	stress_io [workers [seed [size [uring|epoll|auto]]]]
 *
 * size: messages per connection (default 1,000; 300 in sanitizer builds).
 * The backend is the fourth argument, else WEFT_IO from the environment
 * (the runtime reads it), else io_uring where it can be set up. Exit 77
 * (skip) when the io_uring backend is asked for and cannot be set up.
 *
 * Exactly-once accounting: byte i of connection c is a function of
 * (seed, c, i); the client checks every byte it gets back at its offset,
 * so a byte lost, doubled or moved fails. The total bytes written, echoed
 * and read back must each equal the total of the message lengths, which
 * the main thread computes from the seed alone.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "weft_test.h"

#define check(...) wt_check("stress_io", __VA_ARGS__)

#define NCONN 64
#define MSG_MAX 700
#define BUF 4096

static uint64_t seed;
static unsigned size;
static int port;

static _Atomic long n_written, n_echoed, n_read, n_yields, n_conns;
static _Atomic long n_moved;	/* reads that resumed on another worker */
static long want_bytes[NCONN];	/* from the seed (main thread) */
static _Atomic long got_bytes[NCONN];

/* The byte at offset i of connection c. */
static unsigned char pat(unsigned c, uint64_t i)
{
	return (unsigned char)(wt_seed(seed ^ ((uint64_t)c << 48), i / 8) >>
			       (8 * (i % 8)));
}

/* The length of message k of connection c (1..MSG_MAX): one PRNG per
 * connection, so the main thread can replay it. */
static unsigned msg_len(uint64_t *rng)
{
	return 1 + wt_below(rng, MSG_MAX);
}

static void maybe_yield(uint64_t *rng, unsigned one_in)
{
	if (wt_below(rng, one_in) == 0) {
		WT_CHECK_EQ(weft_yield(), 0);
		atomic_fetch_add(&n_yields, 1);
	}
}

/* Echo handler: reads what comes, writes it back, until end of stream. */
static int echo(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint64_t rng = wt_seed(seed, 0xec40 + (unsigned)fd);
	unsigned char buf[BUF];
	ssize_t r;

	for (;;) {
		size_t want = 1 + wt_below(&rng, BUF);

		r = weft_read(fd, buf, want);
		if (r <= 0)
			break;
		WT_CHECK_EQ(weft_write_all(fd, buf, (size_t)r), r);
		atomic_fetch_add(&n_echoed, r);
		maybe_yield(&rng, 4);
	}
	WT_CHECK_EQ(r, 0);
	WT_CHECK_EQ(weft_close(fd), 0);
	return 0;
}

/* Accepts NCONN connections, a detached echo task each. */
static int acceptor(void *arg)
{
	int lfd = (int)(intptr_t)arg;

	for (int i = 0; i < NCONN; i++) {
		int fd = weft_accept(lfd, NULL, NULL);

		WT_CHECK(fd >= 0);
		if (fd < 0)
			return fd;
		WT_CHECK_EQ(weft_spawn(NULL, echo, (void *)(intptr_t)fd), 0);
	}
	return 0;
}

struct conn {
	unsigned id;
	int fd;
};

/* Writes message bytes [off, off + n) in 1-3 pieces. */
static bool send_msg(struct conn *c, uint64_t *rng, uint64_t off, size_t n)
{
	unsigned char buf[MSG_MAX];
	size_t done = 0;

	for (size_t i = 0; i < n; i++)
		buf[i] = pat(c->id, off + i);
	while (done < n) {
		size_t piece = n - done;
		ssize_t r;

		if (piece > 1 && wt_below(rng, 3) == 0)
			piece = 1 + wt_below(rng, (unsigned)piece);
		r = weft_write_all(c->fd, buf + done, piece);
		WT_CHECK_EQ(r, piece);
		if (r != (ssize_t)piece)
			return false;
		atomic_fetch_add(&n_written, r);
		done += piece;
		maybe_yield(rng, 3);
	}
	return true;
}

/* Reads and checks n bytes of the echo from offset off. */
static bool recv_check(struct conn *c, uint64_t *rng, uint64_t off, size_t n)
{
	unsigned char buf[BUF];
	size_t done = 0;

	while (done < n) {
		size_t want = 1 + wt_below(rng, BUF);
		int before = weft_worker_id();
		ssize_t r = weft_read(c->fd, buf, want < n - done ? want
								 : n - done);

		if (r <= 0) {
			fprintf(stderr, "stress_io: connection %u: read %zd "
					"at offset %" PRIu64 "\n", c->id, r,
				off + done);
			WT_CHECK(!"read failed or ended early");
			return false;
		}
		if (weft_worker_id() != before)
			atomic_fetch_add(&n_moved, 1);
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != pat(c->id, off + done + (size_t)i)) {
				fprintf(stderr, "stress_io: connection %u: "
						"byte %" PRIu64 " differs\n",
					c->id, off + done + (size_t)i);
				WT_CHECK(!"echoed byte differs");
				return false;
			}
		done += (size_t)r;
		atomic_fetch_add(&n_read, r);
		atomic_fetch_add(&got_bytes[c->id], r);
		maybe_yield(rng, 3);
	}
	return true;
}

/* Full duplex: this task writes every message, then shuts down. */
static int duplex_writer(void *arg)
{
	struct conn *c = arg;
	uint64_t lens = wt_seed(seed, c->id), rng = wt_seed(seed ^ 1, c->id);
	uint64_t off = 0;

	for (unsigned k = 0; k < size; k++) {
		unsigned n = msg_len(&lens);

		if (!send_msg(c, &rng, off, n))
			return -1;
		off += n;
	}
	WT_CHECK_EQ(weft_shutdown(c->fd, SHUT_WR), 0);
	return 0;
}

/*
 * Cancelled readers and writers: one short-lived task at a time moves the
 * stream on from s->off until the client cancels it. A read or write that
 * returns a count moved those bytes; -ECANCELED moved none (weft waits
 * for the kernel's cancellation, and reports a completion that won the
 * race as a count). The per-byte check at the other end catches a byte
 * lost or sent twice.
 */
static _Atomic long n_io_cancelled;	/* reads and writes -ECANCELED */

struct relay {
	struct conn *c;
	uint64_t off, total;	/* written by the one live task; the join
				   orders it for the next */
	uint64_t rng;
};

static size_t relay_len(struct relay *s)
{
	size_t n = 1 + wt_below(&s->rng, BUF);

	return n < s->total - s->off ? n : (size_t)(s->total - s->off);
}

static int cancel_reader(void *arg)
{
	struct relay *s = arg;
	unsigned char buf[BUF];

	while (s->off < s->total) {
		ssize_t r = weft_read(s->c->fd, buf, relay_len(s));

		if (r == -ECANCELED) {
			atomic_fetch_add(&n_io_cancelled, 1);
			return 0;
		}
		if (r <= 0) {
			fprintf(stderr, "stress_io: connection %u: read %zd "
					"at offset %" PRIu64 "\n", s->c->id, r,
				s->off);
			WT_CHECK(!"read failed or ended early");
			return -1;
		}
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != pat(s->c->id, s->off + (size_t)i)) {
				fprintf(stderr, "stress_io: connection %u: "
						"byte %" PRIu64 " differs\n",
					s->c->id, s->off + (size_t)i);
				WT_CHECK(!"echoed byte differs");
				return -1;
			}
		s->off += (size_t)r;
		atomic_fetch_add(&n_read, r);
		atomic_fetch_add(&got_bytes[s->c->id], r);
		if (wt_below(&s->rng, 4) == 0 && weft_yield() == -ECANCELED)
			return 0;
	}
	return 0;
}

static int cancel_writer(void *arg)
{
	struct relay *s = arg;
	unsigned char buf[BUF];

	while (s->off < s->total) {
		size_t n = relay_len(s);
		ssize_t r;

		for (size_t i = 0; i < n; i++)
			buf[i] = pat(s->c->id, s->off + i);
		r = weft_write(s->c->fd, buf, n);
		if (r == -ECANCELED) {
			atomic_fetch_add(&n_io_cancelled, 1);
			return 0;
		}
		WT_CHECK(r > 0 && (size_t)r <= n);
		if (r <= 0)
			return -1;
		s->off += (size_t)r;
		atomic_fetch_add(&n_written, r);
		if (wt_below(&s->rng, 4) == 0 && weft_yield() == -ECANCELED)
			return 0;
	}
	return 0;
}

static _Atomic long n_relay_cancels;	/* cancels of live tasks */

/* Runs fn(s) in a task after task, cancelling each at a random moment,
 * until the stream is through. Returns false on a failure. */
static bool relay(struct relay *s, int (*fn)(void *), uint64_t *rng)
{
	while (s->off < s->total) {
		weft_task *t;
		int r = -1;

		WT_CHECK_EQ(weft_spawn(&t, fn, s), 0);
		switch (wt_below(rng, 3)) {
		case 0:
			WT_CHECK_EQ(weft_yield(), 0);
			break;
		case 1:
			for (unsigned k = wt_below(rng, 8); k > 0; k--)
				WT_CHECK_EQ(weft_yield(), 0);
			break;
		default:
			WT_CHECK_EQ(weft_sleep(wt_below(rng, 200) * WT_US), 0);
			break;
		}
		if (weft_cancel(t) == 0)
			atomic_fetch_add(&n_relay_cancels, 1);
		WT_CHECK_EQ(weft_join(t, &r), 0);
		/* -ECANCELED: cancelled before it first ran. */
		WT_CHECK(r == 0 || r == -ECANCELED);
		if (r != 0 && r != -ECANCELED)
			return false;
	}
	return true;
}

/* Mode 3's reader: the whole echo, then end of stream. */
static int stream_reader(void *arg)
{
	struct relay *s = arg;
	uint64_t rng = wt_seed(seed ^ 3, s->c->id);
	char tail;

	if (recv_check(s->c, &rng, 0, s->total))
		WT_CHECK_EQ(weft_read(s->c->fd, &tail, 1), 0);
	return 0;
}

/* Small socket buffers, so that writes wait and get cancelled there. */
static void small_buffers(int fd)
{
	int v = 4096;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}

/*
 * Modes by connection id % 4: 0 lockstep, 1 full duplex, 2 cancelled
 * readers (the writer streams), 3 cancelled writers (a reader task reads).
 */
static int client(void *arg)
{
	struct conn *c = arg;
	uint64_t lens = wt_seed(seed, c->id), rng = wt_seed(seed ^ 2, c->id);
	struct relay s = { .c = c, .total = (uint64_t)want_bytes[c->id],
			   .rng = wt_seed(seed ^ 4, c->id) };
	uint64_t off = 0;
	weft_task *w = NULL;
	char tail;
	int r = 0;

	c->fd = weft_tcp_connect("127.0.0.1", (uint16_t)port);
	WT_CHECK(c->fd >= 0);
	if (c->fd < 0)
		return c->fd;
	atomic_fetch_add(&n_conns, 1);
	maybe_yield(&rng, 2);
	switch (c->id % 4) {
	case 0:
		for (unsigned k = 0; k < size; k++) {
			unsigned n = msg_len(&lens);

			if (!send_msg(c, &rng, off, n) ||
			    !recv_check(c, &rng, off, n))
				break;
			off += n;
		}
		WT_CHECK_EQ(weft_shutdown(c->fd, SHUT_WR), 0);
		WT_CHECK_EQ(weft_read(c->fd, &tail, 1), 0);
		break;
	case 1:
		WT_CHECK_EQ(weft_spawn(&w, duplex_writer, c), 0);
		for (unsigned k = 0; k < size; k++) {
			unsigned n = msg_len(&lens);

			if (!recv_check(c, &rng, off, n))
				break;
			off += n;
		}
		WT_CHECK_EQ(weft_join(w, &r), 0);
		WT_CHECK_EQ(r, 0);
		WT_CHECK_EQ(weft_read(c->fd, &tail, 1), 0);
		break;
	case 2:
		small_buffers(c->fd);
		WT_CHECK_EQ(weft_spawn(&w, duplex_writer, c), 0);
		relay(&s, cancel_reader, &rng);
		WT_CHECK_EQ(weft_join(w, &r), 0);
		WT_CHECK_EQ(r, 0);
		WT_CHECK_EQ(weft_read(c->fd, &tail, 1), 0);
		break;
	default:
		small_buffers(c->fd);
		WT_CHECK_EQ(weft_spawn(&w, stream_reader, &s), 0);
		if (relay(&s, cancel_writer, &rng))
			WT_CHECK_EQ(weft_shutdown(c->fd, SHUT_WR), 0);
		WT_CHECK_EQ(weft_join(w, &r), 0);
		WT_CHECK_EQ(r, 0);
		break;
	}
	WT_CHECK_EQ(weft_close(c->fd), 0);
	return 0;
}

static struct conn conns[NCONN];

/* Spawns every client from one task, then joins them. */
static int spawner(void *arg)
{
	weft_task *t[NCONN];
	int r;

	(void)arg;
	for (unsigned i = 0; i < NCONN; i++) {
		conns[i] = (struct conn){ .id = i, .fd = -1 };
		WT_CHECK_EQ(weft_spawn(&t[i], client, &conns[i]), 0);
	}
	for (unsigned i = 0; i < NCONN; i++) {
		WT_CHECK_EQ(weft_join(t[i], &r), 0);
		WT_CHECK_EQ(r, 0);
	}
	return 0;
}

static int root(void *arg)
{
	weft_task *a, *s;
	int lfd, r;
	/* A bound so that a lost wakeup fails with a message instead of
	 * hanging until ctest's timeout. */
	uint64_t bound = WT_SCALE(100, 400) * WT_SEC;

	(void)arg;
	lfd = weft_tcp_listen("127.0.0.1", 0, NCONN);
	WT_CHECK(lfd >= 0);
	if (lfd < 0)
		return lfd;
	port = weft_local_port(lfd);
	WT_CHECK_EQ(weft_spawn(&a, acceptor, (void *)(intptr_t)lfd), 0);
	WT_CHECK_EQ(weft_spawn(&s, spawner, NULL), 0);
	WT_CHECK_EQ(weft_timeout_begin(bound), 0);
	r = weft_join(s, NULL);
	WT_CHECK_EQ(weft_timeout_end(), 0);
	if (r) {
		/* The runtime's shutdown cancels the clients. */
		fprintf(stderr, "stress_io: clients not done: %d\n", r);
		WT_CHECK(!"clients did not finish within the bound");
		weft_cancel(s);
		weft_join(s, NULL);
	}
	/* Done unless a connection was lost. */
	weft_cancel(a);
	WT_CHECK_EQ(weft_join(a, &r), 0);
	WT_CHECK_EQ(r, 0);
	WT_CHECK_EQ(weft_close(lfd), 0);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long workers;
	weft_config cfg;
	weft_rt *rt = NULL;
	long total = 0;
	bool ok = true;
	int rc, r = -1;
	const char *be = argc > 4 ? argv[4] : getenv("WEFT_IO");

	if (wt_stress_args(argc, argv, &workers, &seed, &size,
			   WT_SCALE(1000, 300)))
		return 2;
	cfg = wt_cfg((unsigned)workers);
	if (argc > 4) {
		if (!strcmp(argv[4], "uring"))
			cfg.io_backend = WEFT_IO_URING;
		else if (!strcmp(argv[4], "epoll"))
			cfg.io_backend = WEFT_IO_EPOLL;
		else if (strcmp(argv[4], "auto")) {
			fprintf(stderr, "usage: %s [workers [seed [size "
					"[uring|epoll|auto]]]]\n", argv[0]);
			return 2;
		}
	}
	rc = weft_rt_new(&rt, &cfg);
	if (rc && be && !strcmp(be, "uring")) {
		printf("stress_io: io_uring unavailable (%s): skipped\n",
		       strerror(-rc));
		return 77;
	}
	if (rc) {
		fprintf(stderr, "stress_io: weft_rt_new: %d\n", rc);
		return 1;
	}
	printf("stress_io: workers=%lu seed=%" PRIu64 " size=%u backend=%s\n",
	       workers, seed, size,
	       weft_rt_io_backend(rt) == WEFT_IO_URING ? "io_uring" : "epoll");
	fflush(stdout);

	for (unsigned c = 0; c < NCONN; c++) {
		uint64_t lens = wt_seed(seed, c);

		for (unsigned k = 0; k < size; k++)
			want_bytes[c] += msg_len(&lens);
		total += want_bytes[c];
	}
	rc = weft_rt_block_on(rt, root, NULL, &r);
	weft_rt_free(rt);
	ok &= check("weft_rt_block_on", rc, 0);
	ok &= check("first task's result", r, 0);
	printf("connections %ld; bytes: expected %ld, written %ld, echoed "
	       "%ld, read back %ld; yields %ld, reads resumed on another "
	       "worker %ld; readers and writers cancelled %ld, in a read "
	       "or write %ld\n",
	       atomic_load(&n_conns), total, atomic_load(&n_written),
	       atomic_load(&n_echoed), atomic_load(&n_read),
	       atomic_load(&n_yields), atomic_load(&n_moved),
	       atomic_load(&n_relay_cancels), atomic_load(&n_io_cancelled));
	ok &= check("checks failed inside tasks", wt_take_failures(), 0);
	ok &= check("connections", atomic_load(&n_conns), NCONN);
	ok &= check("bytes written", atomic_load(&n_written), total);
	ok &= check("bytes echoed", atomic_load(&n_echoed), total);
	ok &= check("bytes read back", atomic_load(&n_read), total);
	for (unsigned c = 0; c < NCONN; c++)
		if (atomic_load(&got_bytes[c]) != want_bytes[c]) {
			fprintf(stderr, "stress_io: connection %u: %ld bytes "
					"back, expected %ld\n", c,
				atomic_load(&got_bytes[c]), want_bytes[c]);
			ok = false;
		}
	printf("stress_io: %s (seed %" PRIu64 ")\n", ok ? "PASS" : "FAIL",
	       seed);
	return ok ? 0 : 1;
}
