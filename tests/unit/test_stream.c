/* SPDX-License-Identifier: MIT */
/*
 * weft_stream, under both I/O backends (the whole suite runs once with
 * io_uring, skipped with a note where it cannot be set up, and once with
 * epoll): read_line and a multi-byte read_until over input cut in two at
 * every byte boundary (the reader drains the first piece before the second
 * is sent), with a buffer just as large as the longest record and with the
 * default one; -EMSGSIZE for a record longer than the buffer or the
 * caller's capacity, with the stream still usable and nothing lost;
 * read_exact at end of stream (0, and -EPIPE with the partial bytes still
 * buffered) below and above the buffer size; a read_line cut short by a
 * deadline loses nothing; megabytes written in uneven pieces and flushed
 * to a reader task over loopback TCP arrive intact; writes to a closed
 * peer return -EPIPE and raise no SIGPIPE; a pipe (not a socket) works
 * too; argument checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "weft_test_io.h"

/* SIGPIPE deliveries: must stay 0 (a handler, not SIG_IGN, so that weft
 * leaves it in place and a stray SIGPIPE would be seen). */
static _Atomic unsigned sigpipes;

static void on_sigpipe(int s)
{
	(void)s;
	atomic_fetch_add(&sigpipes, 1);
}

/* --- input cut at every byte boundary ----------------------------------- */

struct split {
	int wfd, rfd;		/* writer's end, reader's end */
	const char *data;
	size_t len, cut;
};

/* Sends data[0, cut), waits until the reader has taken it out of the
 * socket (bounded), pauses so the reader is waiting again, then sends the
 * rest and ends the stream. */
static int split_writer(void *arg)
{
	struct split *s = arg;

	if (s->cut > 0) {
		WT_CHECK_EQ(weft_write_all(s->wfd, s->data, s->cut),
			    (ssize_t)s->cut);
		for (int i = 0; i < 4000; i++) {
			int queued = 0;

			if (ioctl(s->rfd, FIONREAD, &queued) < 0 ||
			    queued == 0)
				break;
			WT_CHECK_EQ(weft_sleep(50 * WT_US), 0);
		}
		WT_CHECK_EQ(weft_sleep(200 * WT_US), 0);
	}
	WT_CHECK_EQ(weft_write_all(s->wfd, s->data + s->cut, s->len - s->cut),
		    (ssize_t)(s->len - s->cut));
	WT_CHECK_EQ(weft_shutdown(s->wfd, SHUT_WR), 0);
	return 0;
}

/* The records a correct reader returns: up to and including each
 * delimiter, then the rest if any. Stored as lengths in lens[]. */
static size_t ref_split(const char *data, size_t len, const char *delim,
			size_t dlen, size_t *lens, size_t max)
{
	size_t n = 0, off = 0;

	while (off < len && n < max) {
		const char *p = memmem(data + off, len - off, delim, dlen);
		size_t l = p ? (size_t)(p - (data + off)) + dlen : len - off;

		lens[n++] = l;
		off += l;
	}
	return n;
}

static const char line_input[] =
	"alpha\nbeta gamma\n\n\nd\nlonger line number six\nno newline at end";
/* Prefixes of the delimiter everywhere, so a search that resumes in the
 * wrong place misses or invents a delimiter. */
static const char rec_input[] =
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n\r\na\r\n\rb\r\r\n\r\n"
	"c\r\n\r\r\n\r\n\r\r\ntail\r\n\r";

#define MAX_RECS 32

static int split_case(const char *data, size_t len, const char *delim,
		      size_t dlen, size_t cut, size_t bufsz)
{
	size_t lens[MAX_RECS], nrec, off = 0, i;
	struct split s = { .data = data, .len = len, .cut = cut };
	weft_stream *st = NULL;
	weft_task *w;
	char out[256];
	int sv[2];

	nrec = ref_split(data, len, delim, dlen, lens, MAX_RECS);
	wt_socketpair(sv);
	s.wfd = sv[0];
	s.rfd = sv[1];
	WT_CHECK_EQ(weft_stream_new(&st, sv[1], bufsz), 0);
	WT_CHECK_EQ(weft_spawn(&w, split_writer, &s), 0);
	for (i = 0; i <= nrec; i++) {
		ssize_t r = dlen == 1 && delim[0] == '\n'
				    ? weft_stream_read_line(st, out, sizeof(out))
				    : weft_stream_read_until(st, delim, dlen,
							     out, sizeof(out));

		if (i == nrec) {
			WT_CHECK_EQ(r, 0); /* end of stream */
			break;
		}
		WT_CHECK_EQ(r, (ssize_t)lens[i]);
		if (r != (ssize_t)lens[i])
			break;
		WT_CHECK(memcmp(out, data + off, lens[i]) == 0);
		off += lens[i];
	}
	WT_CHECK_EQ(weft_join(w, NULL), 0);
	weft_stream_free(st);
	WT_CHECK_EQ(weft_close(sv[0]), 0);
	WT_CHECK_EQ(weft_close(sv[1]), 0);
	return 0;
}

static size_t longest(const char *data, size_t len, const char *delim,
		      size_t dlen)
{
	size_t lens[MAX_RECS], n = ref_split(data, len, delim, dlen, lens,
					     MAX_RECS), m = 0;

	for (size_t i = 0; i < n; i++)
		if (lens[i] > m)
			m = lens[i];
	return m;
}

static int every_split_root(void *arg)
{
	static const struct {
		const char *data;
		size_t len;
		const char *delim;
		size_t dlen;
	} cases[] = {
		{ line_input, sizeof(line_input) - 1, "\n", 1 },
		{ rec_input, sizeof(rec_input) - 1, "\r\n\r\n", 4 },
	};

	(void)arg;
	for (size_t k = 0; k < 2; k++) {
		/* The smallest buffer that holds every record, so records
		 * end exactly at the limit and the buffer compacts all the
		 * time; then the default buffer. */
		size_t sizes[2] = { longest(cases[k].data, cases[k].len,
					    cases[k].delim, cases[k].dlen),
				    0 };

		for (size_t b = 0; b < 2; b++)
			for (size_t cut = 0; cut <= cases[k].len; cut++)
				split_case(cases[k].data, cases[k].len,
					   cases[k].delim, cases[k].dlen, cut,
					   sizes[b]);
	}
	return 0;
}

static void test_every_split(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, every_split_root, NULL), 0);
}

/* --- a writer task for short scripted inputs ----------------------------- */

struct script {
	int fd;
	const char *data;
	size_t len;
	bool end;		/* shut down the write side afterwards */
};

static int script_writer(void *arg)
{
	struct script *s = arg;

	WT_CHECK_EQ(weft_write_all(s->fd, s->data, s->len), (ssize_t)s->len);
	if (s->end)
		WT_CHECK_EQ(weft_shutdown(s->fd, SHUT_WR), 0);
	return 0;
}

/* Runs a script writer to completion (the data fits in the socket). */
static void feed(int fd, const char *data, bool end)
{
	struct script s = { fd, data, strlen(data), end };
	weft_task *t;

	WT_CHECK_EQ(weft_spawn(&t, script_writer, &s), 0);
	WT_CHECK_EQ(weft_join(t, NULL), 0);
}

/* --- -EMSGSIZE ------------------------------------------------------------ */

static int emsgsize_root(void *arg)
{
	weft_stream *st = NULL;
	char out[64];
	int sv[2];

	(void)arg;
	wt_socketpair(sv);
	WT_CHECK_EQ(weft_stream_new(&st, sv[1], 16), 0);
	/* 20 bytes without a newline, then a line that fills the buffer
	 * exactly, then one longer than the caller's capacity. */
	feed(sv[0], "0123456789abcdefghij\nABCDEFGHIJKLMNO\n"
		    "hello\nok\n", true);
	WT_CHECK_EQ(weft_stream_read_line(st, out, sizeof(out)), -EMSGSIZE);
	/* Asking again changes nothing. */
	WT_CHECK_EQ(weft_stream_read_line(st, out, sizeof(out)), -EMSGSIZE);
	/* The 16 bytes searched are still buffered. */
	WT_CHECK_EQ(weft_stream_read_exact(st, out, 16), 16);
	WT_CHECK(memcmp(out, "0123456789abcdef", 16) == 0);
	WT_CHECK_EQ(weft_stream_read_line(st, out, sizeof(out)), 5);
	WT_CHECK(memcmp(out, "ghij\n", 5) == 0);
	/* 15 characters and the newline: exactly the buffer. */
	WT_CHECK_EQ(weft_stream_read_line(st, out, sizeof(out)), 16);
	WT_CHECK(memcmp(out, "ABCDEFGHIJKLMNO\n", 16) == 0);
	/* The caller's capacity is a limit too, and nothing is lost. */
	WT_CHECK_EQ(weft_stream_read_line(st, out, 4), -EMSGSIZE);
	WT_CHECK_EQ(weft_stream_read_line(st, out, 6), 6);
	WT_CHECK(memcmp(out, "hello\n", 6) == 0);
	/* A multi-byte delimiter that does not fit. */
	WT_CHECK_EQ(weft_stream_read_until(st, "k\n", 2, out, 2), -EMSGSIZE);
	WT_CHECK_EQ(weft_stream_read_until(st, "k\n", 2, out, 3), 3);
	WT_CHECK(memcmp(out, "ok\n", 3) == 0);
	WT_CHECK_EQ(weft_stream_read_line(st, out, sizeof(out)), 0);
	weft_stream_free(st);
	WT_CHECK_EQ(weft_close(sv[0]), 0);
	WT_CHECK_EQ(weft_close(sv[1]), 0);
	return 0;
}

static void test_emsgsize(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, emsgsize_root, NULL), 0);
}

/* --- read_exact and read at end of stream -------------------------------- */

static int exact_root(void *arg)
{
	weft_stream *st = NULL;
	char out[64];
	int sv[2];

	(void)arg;
	/* Below the buffer size: partial bytes stay buffered. */
	wt_socketpair(sv);
	WT_CHECK_EQ(weft_stream_new(&st, sv[1], 8), 0);
	feed(sv[0], "abcdef", true);
	WT_CHECK_EQ(weft_stream_read_exact(st, out, 4), 4);
	WT_CHECK(memcmp(out, "abcd", 4) == 0);
	WT_CHECK_EQ(weft_stream_read_exact(st, out, 4), -EPIPE);
	WT_CHECK_EQ(weft_stream_read(st, out, sizeof(out)), 2);
	WT_CHECK(memcmp(out, "ef", 2) == 0);
	WT_CHECK_EQ(weft_stream_read_exact(st, out, 4), 0);
	WT_CHECK_EQ(weft_stream_read_exact(st, out, 0), 0);
	WT_CHECK_EQ(weft_stream_read(st, out, sizeof(out)), 0);
	weft_stream_free(st);
	WT_CHECK_EQ(weft_close(sv[0]), 0);
	WT_CHECK_EQ(weft_close(sv[1]), 0);

	/* Above the buffer size (8): straight into the caller's buffer. */
	wt_socketpair(sv);
	WT_CHECK_EQ(weft_stream_new(&st, sv[1], 8), 0);
	feed(sv[0], "0123456789ABCDEFGHIJ", true);
	WT_CHECK_EQ(weft_stream_read_exact(st, out, 3), 3);
	WT_CHECK(memcmp(out, "012", 3) == 0);
	WT_CHECK_EQ(weft_stream_read_exact(st, out, 12), 12);
	WT_CHECK(memcmp(out, "3456789ABCDE", 12) == 0);
	WT_CHECK_EQ(weft_stream_read_exact(st, out, 10), -EPIPE);
	WT_CHECK_EQ(weft_stream_read_exact(st, out, 10), 0);
	weft_stream_free(st);
	WT_CHECK_EQ(weft_close(sv[0]), 0);
	WT_CHECK_EQ(weft_close(sv[1]), 0);

	/* read: what is buffered first, then one read; a large read with
	 * nothing buffered goes straight through. */
	wt_socketpair(sv);
	WT_CHECK_EQ(weft_stream_new(&st, sv[1], 8), 0);
	feed(sv[0], "xy\nzzzzzzzzzzzzzzzzzzzz", true);
	WT_CHECK_EQ(weft_stream_read_line(st, out, sizeof(out)), 3);
	WT_CHECK_EQ(weft_stream_read(st, out, 2), 2);
	{
		size_t total = 2;
		ssize_t r;

		while ((r = weft_stream_read(st, out, sizeof(out))) > 0) {
			for (ssize_t i = 0; i < r; i++)
				WT_CHECK_EQ(out[i], 'z');
			total += (size_t)r;
		}
		WT_CHECK_EQ(r, 0);
		WT_CHECK_EQ(total, 20);
	}
	weft_stream_free(st);
	WT_CHECK_EQ(weft_close(sv[0]), 0);
	WT_CHECK_EQ(weft_close(sv[1]), 0);
	return 0;
}

static void test_read_exact_eof(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, exact_root, NULL), 0);
}

/* --- a read cut short by a deadline loses nothing ------------------------ */

static int deadline_root(void *arg)
{
	weft_stream *st = NULL;
	char out[64];
	int sv[2];

	(void)arg;
	wt_socketpair(sv);
	WT_CHECK_EQ(weft_stream_new(&st, sv[1], 0), 0);
	feed(sv[0], "par", false);
	WT_CHECK_EQ(weft_timeout_begin(5 * WT_MS), 0);
	WT_CHECK_EQ(weft_stream_read_line(st, out, sizeof(out)), -ETIMEDOUT);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	feed(sv[0], "tial\nnext\n", true);
	WT_CHECK_EQ(weft_stream_read_line(st, out, sizeof(out)), 8);
	WT_CHECK(memcmp(out, "partial\n", 8) == 0);
	WT_CHECK_EQ(weft_stream_read_line(st, out, sizeof(out)), 5);
	WT_CHECK_EQ(weft_stream_read_line(st, out, sizeof(out)), 0);
	weft_stream_free(st);
	WT_CHECK_EQ(weft_close(sv[0]), 0);
	WT_CHECK_EQ(weft_close(sv[1]), 0);
	return 0;
}

static void test_deadline_keeps_data(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, deadline_root, NULL), 0);
}

/* --- large writes, uneven pieces, a reader task -------------------------- */

static inline unsigned char pattern(size_t i)
{
	return (unsigned char)(i ^ (i >> 8) ^ (i >> 16) ^ 0x5a);
}

static size_t big_total;

static int big_reader(void *arg)
{
	int fd = *(int *)arg;
	weft_stream *st = NULL;
	static const size_t asks[] = { 1, 5, 4096, 70000, 13, 65536, 2 };
	unsigned char *buf = malloc(70000);
	size_t got = 0, k = 0;
	ssize_t r;
	int bad = 0;

	WT_CHECK(buf != NULL);
	if (!buf)
		return -1;
	WT_CHECK_EQ(weft_stream_new(&st, fd, 0), 0);
	while ((r = weft_stream_read(st, buf, asks[k++ % 7])) > 0) {
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != pattern(got + (size_t)i))
				bad++;
		got += (size_t)r;
	}
	WT_CHECK_EQ(r, 0);
	WT_CHECK_EQ(bad, 0);
	weft_stream_free(st);
	free(buf);
	return (int)(got == big_total);
}

static int big_write_root(void *arg)
{
	static const size_t pieces[] = { 1, 3, 100, 4095, 4096, 4097, 20000,
					 7, 100000 };
	unsigned char *data;
	weft_stream *st = NULL;
	weft_task *r;
	size_t off = 0, k = 0;
	int c, a, ok = 0;

	(void)arg;
	big_total = WT_SCALE(8u << 20, 1u << 20);
	data = malloc(big_total);
	WT_CHECK(data != NULL);
	if (!data)
		return -1;
	for (size_t i = 0; i < big_total; i++)
		data[i] = pattern(i);
	wt_tcp_pair(&c, &a);
	WT_CHECK_EQ(weft_spawn(&r, big_reader, &a), 0);
	WT_CHECK_EQ(weft_stream_new(&st, c, 4096), 0);
	while (off < big_total) {
		size_t n = pieces[k++ % 9];

		if (n > big_total - off)
			n = big_total - off;
		WT_CHECK_EQ(weft_stream_write(st, data + off, n), (ssize_t)n);
		off += n;
	}
	WT_CHECK_EQ(weft_stream_flush(st), 0);
	WT_CHECK_EQ(weft_stream_flush(st), 0); /* nothing left: a no-op */
	WT_CHECK_EQ(weft_shutdown(c, SHUT_WR), 0);
	WT_CHECK_EQ(weft_join(r, &ok), 0);
	WT_CHECK_EQ(ok, 1);
	weft_stream_free(st);
	WT_CHECK_EQ(weft_close(c), 0);
	WT_CHECK_EQ(weft_close(a), 0);
	free(data);
	return 0;
}

static void test_big_write_flush(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(3, big_write_root, NULL), 0);
}

/* --- a closed peer: -EPIPE, no SIGPIPE ----------------------------------- */

static int epipe_root(void *arg)
{
	static char chunk[16384];
	weft_stream *st = NULL;
	bool epipe = false;
	int sv[2], c, a;

	(void)arg;
	/* Unix socket: the first write after the close fails. */
	wt_socketpair(sv);
	WT_CHECK_EQ(weft_close(sv[0]), 0);
	WT_CHECK_EQ(weft_stream_new(&st, sv[1], 64), 0);
	WT_CHECK_EQ(weft_stream_write(st, "0123456789", 10), 10); /* buffered */
	WT_CHECK_EQ(weft_stream_flush(st), -EPIPE);
	WT_CHECK_EQ(weft_stream_flush(st), -EPIPE); /* still buffered */
	/* Too large to join them: flushes first, and that fails. */
	WT_CHECK_EQ(weft_stream_write(st, chunk, 100), -EPIPE);
	weft_stream_free(st);
	WT_CHECK_EQ(weft_stream_new(&st, sv[1], 64), 0);
	WT_CHECK_EQ(weft_stream_write(st, chunk, 100), -EPIPE); /* direct */
	weft_stream_free(st);
	WT_CHECK_EQ(weft_close(sv[1]), 0);

	/* TCP: the peer's reset may come first as -ECONNRESET. */
	wt_tcp_pair(&c, &a);
	WT_CHECK_EQ(weft_close(a), 0);
	WT_CHECK_EQ(weft_stream_new(&st, c, 4096), 0);
	for (int i = 0; i < 1000 && !epipe; i++) {
		ssize_t r = weft_stream_write(st, chunk, sizeof(chunk));

		if (r >= 0)
			r = weft_stream_flush(st);
		if (r == -EPIPE)
			epipe = true;
		else if (r < 0 && r != -ECONNRESET)
			WT_CHECK_EQ(r, -EPIPE);
		else if (r >= 0)
			WT_CHECK_EQ(weft_sleep(100 * WT_US), 0);
	}
	WT_CHECK(epipe);
	weft_stream_free(st);
	WT_CHECK_EQ(weft_close(c), 0);
	return 0;
}

static void test_closed_peer_epipe(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, epipe_root, NULL), 0);
	assert_int_equal(atomic_load(&sigpipes), 0);
}

/* --- a pipe: read and write, not recv and send --------------------------- */

static int pipe_writer(void *arg)
{
	int fd = *(int *)arg;
	weft_stream *st = NULL;
	char line[32];

	WT_CHECK_EQ(weft_stream_new(&st, fd, 32), 0);
	for (int i = 0; i < 500; i++) {
		int n = snprintf(line, sizeof(line), "line %d\n", i);

		WT_CHECK_EQ(weft_stream_write(st, line, (size_t)n), n);
	}
	WT_CHECK_EQ(weft_stream_flush(st), 0);
	weft_stream_free(st);
	WT_CHECK_EQ(weft_close(fd), 0);
	return 0;
}

static int pipe_root(void *arg)
{
	weft_stream *st = NULL;
	char line[32], want[32];
	weft_task *w;
	int p[2], i = 0;
	ssize_t r;

	(void)arg;
	WT_CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	WT_CHECK_EQ(weft_spawn(&w, pipe_writer, &p[1]), 0);
	WT_CHECK_EQ(weft_stream_new(&st, p[0], 16), 0);
	while ((r = weft_stream_read_line(st, line, sizeof(line))) > 0) {
		int n = snprintf(want, sizeof(want), "line %d\n", i++);

		WT_CHECK_EQ(r, n);
		WT_CHECK(memcmp(line, want, (size_t)n) == 0);
	}
	WT_CHECK_EQ(r, 0);
	WT_CHECK_EQ(i, 500);
	WT_CHECK_EQ(weft_join(w, NULL), 0);
	weft_stream_free(st);
	WT_CHECK_EQ(weft_close(p[0]), 0);
	return 0;
}

static void test_pipe(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, pipe_root, NULL), 0);
}

/* --- arguments ------------------------------------------------------------ */

static int args_root(void *arg)
{
	weft_stream *st = NULL;
	char out[8];
	int sv[2], fd;

	(void)arg;
	WT_CHECK_EQ(weft_stream_new(NULL, 0, 0), -EINVAL);
	WT_CHECK_EQ(weft_stream_new(&st, -1, 0), -EINVAL);
	WT_CHECK_EQ(weft_stream_new(&st, 0, (size_t)-1), -EINVAL);
	fd = dup(0);
	WT_CHECK(fd >= 0);
	close(fd);
	WT_CHECK_EQ(weft_stream_new(&st, fd, 0), -EBADF);
	wt_socketpair(sv);
	WT_CHECK_EQ(weft_stream_new(&st, sv[1], 0), 0);
	WT_CHECK_EQ(weft_stream_read_until(st, "", 0, out, sizeof(out)),
		    -EINVAL);
	WT_CHECK_EQ(weft_stream_read_until(st, NULL, 1, out, sizeof(out)),
		    -EINVAL);
	WT_CHECK_EQ(weft_stream_read_line(NULL, out, sizeof(out)), -EINVAL);
	WT_CHECK_EQ(weft_stream_flush(NULL), -EINVAL);
	WT_CHECK_EQ(weft_stream_flush(st), 0);
	WT_CHECK_EQ(weft_stream_read(st, out, 0), 0);
	WT_CHECK_EQ(weft_stream_write(st, out, 0), 0);
	weft_stream_free(st);
	weft_stream_free(NULL);
	WT_CHECK_EQ(weft_close(sv[0]), 0);
	WT_CHECK_EQ(weft_close(sv[1]), 0);
	return 0;
}

static void test_args(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(1, args_root, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_emsgsize),
		cmocka_unit_test(test_read_exact_eof),
		cmocka_unit_test(test_deadline_keeps_data),
		cmocka_unit_test(test_big_write_flush),
		cmocka_unit_test(test_closed_peer_epipe),
		cmocka_unit_test(test_pipe),
	};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigpipe;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGPIPE, &sa, NULL);
	return WT_RUN_BOTH_BACKENDS("stream", tests, NULL, NULL);
}
