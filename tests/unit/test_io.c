/* SPDX-License-Identifier: MIT */
/*
 * Byte I/O on any fd (weft/io.h), run once per backend (io_uring, then
 * epoll; the io_uring half is skipped with a note where io_uring cannot be
 * set up):
 *  - pipes: a reader that waits for a writer task, readv/writev,
 *    read_exact/write_all through more than a pipe buffer, end of file;
 *  - weft_poll on a pipe (POLLOUT at once, POLLIN after another task's
 *    write, POLLHUP);
 *  - a blocking socketpair (made without SOCK_NONBLOCK) on ONE worker: a
 *    reader, a poller and a writer of a full buffer never block the worker
 *    (a watchdog thread unsticks a worker that does block, so the bug
 *    fails instead of hanging); the same on a non-blocking socketpair;
 *  - a shutdown wakes a blocked reader (0); weft_poll for POLLIN | POLLOUT
 *    and on a regular file; MSG_PEEK reaches recv;
 *  - many readers on one datagram socket: each message reaches exactly
 *    one of them, and a reader that lost a race goes back to waiting;
 *  - recv with MSG_WAITALL gets all n bytes that arrive in two pieces, and
 *    reports the first piece when cancelled after it;
 *  - deadline scopes: a read, recv or poll that waits past its deadline
 *    returns -ETIMEDOUT, the scope reports it expired, and data sent
 *    afterwards is still there for the next read;
 *  - cancellation: a task blocked in weft_read / weft_recv / weft_readv /
 *    weft_poll (TCP, blocking and non-blocking socketpairs) is cancelled
 *    and joined (its result is -ECANCELED); data then written to the peer
 *    must never land in its buffer (heap memory filled with a canary) and
 *    must all be readable by a new read;
 *  - errno is read on the thread that made the system call, even when the
 *    task waited and moved to another worker in between;
 *  - -EPIPE instead of SIGPIPE on a pipe whose reader is gone, and
 *    SIGPIPE left ignored by weft_rt_new;
 *  - bad input: fd -1 (-EBADF), recv on a pipe (-ENOTSOCK), io_backend 7
 *    and WEFT_IO=bogus (-EINVAL), WEFT_IO=epoll honoured;
 *  - plain threads (no task): blocking reads and writes on a socketpair,
 *    a non-blocking socketpair (the call waits instead of returning
 *    -EAGAIN), weft_poll, with a runtime alive or not.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include <sys/socket.h>
#include <sys/uio.h>
#include <cmocka.h>

#include "weft_test_io.h"

/* Whether every byte of p[0..n) is c. */
static bool all_bytes(const unsigned char *p, size_t n, unsigned char c)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != c)
			return false;
	return true;
}

/*
 * Pipes: a reader task waits in weft_read until a writer task writes;
 * readv/writev; 256 KiB (four pipe buffers) through write_all/read_exact;
 * end of file: 0, and -EPIPE from read_exact cut short.
 */
#define PIPE_BIG (256u * 1024u)

struct pipe_args {
	int rfd, wfd;
	_Atomic int reading;
};

static int pipe_reader(void *arg)
{
	struct pipe_args *p = arg;
	char buf[16];

	atomic_store(&p->reading, 1);
	memset(buf, 0, sizeof(buf));
	WT_CHECK_EQ(weft_read(p->rfd, buf, sizeof(buf)), 5);
	WT_CHECK(memcmp(buf, "hello", 5) == 0);
	return 0;
}

static int big_writer(void *arg)
{
	struct pipe_args *p = arg;
	unsigned char *buf = malloc(PIPE_BIG);

	if (!buf)
		return -ENOMEM;
	wt_fill(buf, PIPE_BIG, 11, 0);
	WT_CHECK_EQ(weft_write_all(p->wfd, buf, PIPE_BIG), PIPE_BIG);
	free(buf);
	return 0;
}

static int pipes_root(void *arg)
{
	struct pipe_args p = { 0 };
	int fds[2];
	weft_task *t;
	unsigned char *big;
	char a[3], b[4];
	struct iovec iov[2];
	int r = -1;

	(void)arg;
	WT_CHECK_EQ(pipe(fds), 0);
	p.rfd = fds[0];
	p.wfd = fds[1];

	/* A reader that waits for us. */
	WT_CHECK_EQ(weft_spawn(&t, pipe_reader, &p), 0);
	WT_TASK_WAIT(atomic_load(&p.reading));
	WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	WT_CHECK_EQ(weft_write(p.wfd, "hello", 5), 5);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, 0);

	/* Gather and scatter. */
	iov[0] = (struct iovec){ .iov_base = "abc", .iov_len = 3 };
	iov[1] = (struct iovec){ .iov_base = "defg", .iov_len = 4 };
	WT_CHECK_EQ(weft_writev(p.wfd, iov, 2), 7);
	iov[0] = (struct iovec){ .iov_base = a, .iov_len = 3 };
	iov[1] = (struct iovec){ .iov_base = b, .iov_len = 4 };
	WT_CHECK_EQ(weft_readv(p.rfd, iov, 2), 7);
	WT_CHECK(memcmp(a, "abc", 3) == 0 && memcmp(b, "defg", 4) == 0);

	/* More than the pipe holds: the writer waits for room. */
	big = malloc(PIPE_BIG);
	WT_CHECK(big != NULL);
	if (!big)
		return -ENOMEM;
	WT_CHECK_EQ(weft_spawn(&t, big_writer, &p), 0);
	WT_CHECK_EQ(weft_read_exact(p.rfd, big, PIPE_BIG), PIPE_BIG);
	WT_CHECK_EQ(wt_mismatch(big, PIPE_BIG, 11, 0), PIPE_BIG);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, 0);

	/* End of file. */
	WT_CHECK_EQ(weft_write(p.wfd, "xy", 2), 2);
	WT_CHECK_EQ(weft_close(p.wfd), 0);
	WT_CHECK_EQ(weft_read_exact(p.rfd, big, 4), -EPIPE);
	WT_CHECK_EQ(weft_read(p.rfd, big, 4), 0);
	WT_CHECK_EQ(weft_read_exact(p.rfd, big, 4), 0);
	WT_CHECK_EQ(weft_close(p.rfd), 0);
	free(big);
	return 0;
}

static void test_pipes(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, pipes_root, NULL), 0);
	assert_int_equal(wt_run_io(1, pipes_root, NULL), 0);
}

/*
 * weft_poll on a pipe: POLLOUT at once on the write end; POLLIN on the
 * read end after another task writes; POLLHUP once the writer closed.
 */
static int poller(void *arg)
{
	struct pipe_args *p = arg;
	int ev;

	atomic_store(&p->reading, 1);
	ev = weft_poll(p->rfd, POLLIN);
	WT_CHECK(ev > 0 && (ev & POLLIN));
	return 0;
}

static int poll_root(void *arg)
{
	struct pipe_args p = { 0 };
	int fds[2], ev, r = -1;
	weft_task *t;
	char c;

	(void)arg;
	WT_CHECK_EQ(pipe(fds), 0);
	p.rfd = fds[0];
	p.wfd = fds[1];
	ev = weft_poll(p.wfd, POLLOUT);
	WT_CHECK(ev > 0 && (ev & POLLOUT));
	WT_CHECK_EQ(weft_spawn(&t, poller, &p), 0);
	WT_TASK_WAIT(atomic_load(&p.reading));
	WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	WT_CHECK_EQ(weft_write(p.wfd, "p", 1), 1);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, 0);
	/* Still readable: poll consumed nothing. */
	ev = weft_poll(p.rfd, POLLIN);
	WT_CHECK(ev > 0 && (ev & POLLIN));
	WT_CHECK_EQ(weft_read(p.rfd, &c, 1), 1);
	WT_CHECK_EQ(c, 'p');
	/* Writer gone: POLLHUP. */
	WT_CHECK_EQ(weft_close(p.wfd), 0);
	ev = weft_poll(p.rfd, POLLIN);
	WT_CHECK(ev > 0 && (ev & POLLHUP));
	WT_CHECK_EQ(weft_close(p.rfd), 0);
	return 0;
}

static void test_poll_pipe(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, poll_root, NULL), 0);
	assert_int_equal(wt_run_io(1, poll_root, NULL), 0);
}

/*
 * A blocking socketpair on one worker. If a call blocked the worker's
 * thread, the peer task would never run: the watchdog then shuts the
 * sockets down (which ends the blocked system call) and records it.
 */
struct watchdog {
	pthread_t th;
	int fd[2];
	uint64_t ns;
	_Atomic int done, fired;
};

static void *watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	uint64_t end = wt_clock() + w->ns;

	while (!atomic_load(&w->done) && wt_clock() < end)
		wt_nap(WT_MS);
	if (!atomic_load(&w->done)) {
		atomic_store(&w->fired, 1);
		fprintf(stderr, "watchdog: a worker stayed blocked in a "
				"system call; shutting the sockets down\n");
		shutdown(w->fd[0], SHUT_RDWR);
		shutdown(w->fd[1], SHUT_RDWR);
	}
	return NULL;
}

static void watchdog_start(struct watchdog *w, int a, int b)
{
	w->fd[0] = a;
	w->fd[1] = b;
	w->ns = WT_BUG_BOUND;
	atomic_store(&w->done, 0);
	atomic_store(&w->fired, 0);
	assert_int_equal(pthread_create(&w->th, NULL, watchdog_main, w), 0);
}

static void watchdog_stop(struct watchdog *w)
{
	atomic_store(&w->done, 1);
	assert_int_equal(pthread_join(w->th, NULL), 0);
	assert_int_equal(atomic_load(&w->fired), 0);
}

#define SP_BIG (1024u * 1024u)

struct sp_args {
	int fd[2];
	_Atomic int stage;	/* the waiting task is about to wait */
	int how;		/* 0 read, 1 recv, 2 poll, 3 big transfer */
};

/* Waits on fd[0] in the chosen way. */
static int sp_waiter(void *arg)
{
	struct sp_args *a = arg;
	unsigned char *big;
	char buf[8] = { 0 };
	int ev;

	atomic_store(&a->stage, 1);
	switch (a->how) {
	case 0:
		WT_CHECK_EQ(weft_read(a->fd[0], buf, sizeof(buf)), 3);
		break;
	case 1:
		WT_CHECK_EQ(weft_recv(a->fd[0], buf, sizeof(buf), 0), 3);
		break;
	case 2:
		ev = weft_poll(a->fd[0], POLLIN);
		WT_CHECK(ev > 0 && (ev & POLLIN));
		WT_CHECK_EQ(weft_read(a->fd[0], buf, sizeof(buf)), 3);
		break;
	default:
		/* The writer fills the buffer and must wait for us. */
		big = malloc(SP_BIG);
		if (!big)
			return -ENOMEM;
		WT_CHECK_EQ(weft_read_exact(a->fd[0], big, SP_BIG), SP_BIG);
		WT_CHECK_EQ(wt_mismatch(big, SP_BIG, 5, 0), SP_BIG);
		free(big);
		return 0;
	}
	WT_CHECK(memcmp(buf, "sp!", 3) == 0);
	return 0;
}

static int sp_writer(void *arg)
{
	struct sp_args *a = arg;
	unsigned char *big;

	if (a->how == 3) {
		/* Starts first and fills the socket buffer. */
		big = malloc(SP_BIG);
		if (!big)
			return -ENOMEM;
		wt_fill(big, SP_BIG, 5, 0);
		WT_CHECK_EQ(weft_write_all(a->fd[1], big, SP_BIG), SP_BIG);
		free(big);
		return 0;
	}
	WT_TASK_WAIT(atomic_load(&a->stage));
	WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	WT_CHECK_EQ(weft_write(a->fd[1], "sp!", 3), 3);
	return 0;
}

static int sp_root(void *arg)
{
	struct sp_args *a = arg;
	weft_task *w, *r;
	int rw = -1, rr = -1;

	atomic_store(&a->stage, 0);
	if (a->how == 3) {
		WT_CHECK_EQ(weft_spawn(&w, sp_writer, a), 0);
		WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
		WT_CHECK_EQ(weft_spawn(&r, sp_waiter, a), 0);
	} else {
		WT_CHECK_EQ(weft_spawn(&r, sp_waiter, a), 0);
		WT_CHECK_EQ(weft_spawn(&w, sp_writer, a), 0);
	}
	WT_CHECK_EQ(weft_join(r, &rr), 0);
	WT_CHECK_EQ(weft_join(w, &rw), 0);
	WT_CHECK_EQ(rr, 0);
	WT_CHECK_EQ(rw, 0);
	return 0;
}

static void test_blocking_socketpair(void **state)
{
	struct sp_args a;
	struct watchdog wd;

	(void)state;
	/* And the same on a non-blocking socketpair (io_uring answers
	 * -EAGAIN there: weft polls and tries again). */
	for (int nb = 0; nb < 2; nb++) {
		for (int how = 0; how < 4; how++) {
			int fl;

			memset(&a, 0, sizeof(a));
			a.how = how;
			assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM |
						    (nb ? SOCK_NONBLOCK : 0),
						    0, a.fd), 0);
			fl = fcntl(a.fd[0], F_GETFL);
			assert_int_equal(!!(fl & O_NONBLOCK), nb);
			watchdog_start(&wd, a.fd[0], a.fd[1]);
			assert_int_equal(wt_run_io(1, sp_root, &a), 0);
			watchdog_stop(&wd);
			close(a.fd[0]);
			close(a.fd[1]);
		}
	}
}

/*
 * A reader blocked on a TCP socket is woken by a shutdown from another
 * task (read returns 0, the usual way to stop a reader); weft_poll for
 * POLLIN | POLLOUT reports POLLOUT at once; recv passes its flags
 * (MSG_PEEK leaves the bytes queued); weft_poll on a regular file is
 * ready at once.
 */
struct stopper {
	int fd;
	_Atomic int waiting;
};

static int stopped_reader(void *arg)
{
	struct stopper *s = arg;
	char buf[8];

	atomic_store(&s->waiting, 1);
	return (int)weft_read(s->fd, buf, sizeof(buf));
}

static int misc_root(void *arg)
{
	char path[] = "/tmp/weft_io_XXXXXX";
	struct stopper s = { 0 };
	weft_task *t;
	char buf[8];
	int a, b, r = -1, ev, fd;
	static const int hows[] = { SHUT_RD, SHUT_RDWR };

	(void)arg;
	for (size_t i = 0; i < sizeof(hows) / sizeof(hows[0]); i++) {
		wt_tcp_pair(&a, &b);
		s.fd = a;
		atomic_store(&s.waiting, 0);
		WT_CHECK_EQ(weft_spawn(&t, stopped_reader, &s), 0);
		WT_TASK_WAIT(atomic_load(&s.waiting));
		WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
		WT_CHECK_EQ(weft_shutdown(a, hows[i]), 0);
		WT_CHECK_EQ(weft_join(t, &r), 0);
		WT_CHECK_EQ(r, 0);
		weft_close(a);
		weft_close(b);
	}

	wt_tcp_pair(&a, &b);
	ev = weft_poll(a, POLLIN | POLLOUT);
	WT_CHECK(ev > 0 && (ev & POLLOUT) && !(ev & POLLIN));
	WT_CHECK_EQ(weft_send(b, "peek", 4, 0), 4);
	ev = weft_poll(a, POLLIN);
	WT_CHECK(ev > 0 && (ev & POLLIN));
	memset(buf, 0, sizeof(buf));
	WT_CHECK_EQ(weft_recv(a, buf, 4, MSG_PEEK), 4);
	WT_CHECK(memcmp(buf, "peek", 4) == 0);
	memset(buf, 0, sizeof(buf));
	WT_CHECK_EQ(weft_recv(a, buf, 4, 0), 4);
	WT_CHECK(memcmp(buf, "peek", 4) == 0);
	weft_close(a);
	weft_close(b);

	fd = mkstemp(path);
	WT_CHECK(fd >= 0);
	ev = weft_poll(fd, POLLIN);
	WT_CHECK(ev > 0 && (ev & POLLIN));
	ev = weft_poll(fd, POLLOUT);
	WT_CHECK(ev > 0 && (ev & POLLOUT));
	weft_close(fd);
	unlink(path);
	return 0;
}

static void test_misc(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, misc_root, NULL), 0);
}

/*
 * Many readers on one socket: SHARED_READERS tasks on 2 workers wait in
 * weft_recv on one end of a datagram socketpair while a writer sends
 * SHARED_MSGS numbered messages (waiting for room when the socket is
 * full), then one stop message per reader. Each message must reach
 * exactly one reader, and every reader must see its stop: a wake that
 * lets several readers race for one message must send the losers back to
 * wait, never return -EAGAIN or lose the message.
 */
#define SHARED_READERS 8
#define SHARED_MSGS 20000u
#define SHARED_STOP UINT32_MAX

struct shared {
	int rfd, wfd;
	_Atomic unsigned char seen[SHARED_MSGS];
};

static int shared_reader(void *arg)
{
	struct shared *sh = arg;

	for (;;) {
		uint32_t id;
		ssize_t n = weft_recv(sh->rfd, &id, sizeof(id), 0);

		/* A failed call is reported and tried again: the messages
		 * still have to be drained, or the writer would wait. */
		WT_CHECK_EQ(n, (ssize_t)sizeof(id));
		if (n != (ssize_t)sizeof(id))
			continue;
		if (id == SHARED_STOP)
			return 0;
		WT_CHECK(id < SHARED_MSGS);
		if (id >= SHARED_MSGS)
			return -EINVAL;
		atomic_fetch_add(&sh->seen[id], 1);
	}
}

static int shared_root(void *arg)
{
	struct shared *sh = calloc(1, sizeof(*sh));
	weft_task *t[SHARED_READERS];
	int sv[2], r;

	(void)arg;
	WT_CHECK(sh != NULL);
	if (!sh)
		return -ENOMEM;
	WT_CHECK_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv), 0);
	sh->rfd = sv[0];
	sh->wfd = sv[1];
	for (int i = 0; i < SHARED_READERS; i++)
		WT_CHECK_EQ(weft_spawn(&t[i], shared_reader, sh), 0);
	for (uint32_t id = 0; id < SHARED_MSGS; id++) {
		WT_CHECK_EQ(weft_send(sh->wfd, &id, sizeof(id), 0),
			    (ssize_t)sizeof(id));
		if (id % 1000 == 0)
			weft_yield(); /* let readers drain and queue up again */
	}
	for (int i = 0; i < SHARED_READERS; i++) {
		uint32_t stop = SHARED_STOP;

		WT_CHECK_EQ(weft_send(sh->wfd, &stop, sizeof(stop), 0),
			    (ssize_t)sizeof(stop));
	}
	for (int i = 0; i < SHARED_READERS; i++) {
		r = -1;
		WT_CHECK_EQ(weft_join(t[i], &r), 0);
		WT_CHECK_EQ(r, 0);
	}
	for (uint32_t id = 0; id < SHARED_MSGS; id++) {
		if (atomic_load(&sh->seen[id]) != 1) {
			WT_CHECK_EQ(atomic_load(&sh->seen[id]), 1);
			break;
		}
	}
	weft_close(sv[0]);
	weft_close(sv[1]);
	free(sh);
	return 0;
}

static void test_shared_socket(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, shared_root, NULL), 0);
}

/*
 * recv with MSG_WAITALL waits for all n bytes (as recv(2) on a blocking
 * socket does), even when they arrive in two pieces; cancelled after the
 * first piece, it reports the bytes it moved.
 */
struct waitall {
	int fd;
	char buf[32];
	_Atomic int waiting;
};

static int waitall_reader(void *arg)
{
	struct waitall *w = arg;

	atomic_store(&w->waiting, 1);
	return (int)weft_recv(w->fd, w->buf, 20, MSG_WAITALL);
}

static int waitall_root(void *arg)
{
	struct waitall w;
	weft_task *t;
	int sv[2], r = -1;
	char rest[32];

	(void)arg;
	for (int cancel = 0; cancel < 2; cancel++) {
		memset(&w, 0, sizeof(w));
		WT_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		w.fd = sv[0];
		WT_CHECK_EQ(weft_spawn(&t, waitall_reader, &w), 0);
		WT_TASK_WAIT(atomic_load(&w.waiting));
		WT_CHECK_EQ(weft_write(sv[1], "abcdefghij", 10), 10);
		WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
		if (cancel) {
			WT_CHECK_EQ(weft_cancel(t), 0);
			WT_CHECK_EQ(weft_join(t, &r), 0);
			WT_CHECK_EQ(r, 10);
			WT_CHECK(memcmp(w.buf, "abcdefghij", 10) == 0);
			/* Nothing else was taken. */
			WT_CHECK_EQ(weft_write(sv[1], "K", 1), 1);
			WT_CHECK_EQ(weft_read(sv[0], rest, sizeof(rest)), 1);
		} else {
			WT_CHECK_EQ(weft_write(sv[1], "0123456789", 10), 10);
			WT_CHECK_EQ(weft_join(t, &r), 0);
			WT_CHECK_EQ(r, 20);
			WT_CHECK(memcmp(w.buf, "abcdefghij0123456789", 20) == 0);
		}
		weft_close(sv[0]);
		weft_close(sv[1]);
	}
	return 0;
}

static void test_recv_waitall(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, waitall_root, NULL), 0);
}

/*
 * Deadline scopes. The waits expire (-ETIMEDOUT, end() reports 1) and
 * consume nothing: bytes written afterwards are all read by the next call.
 * A scope that does not expire reports 0.
 */
static int deadline_case(int rfd, int wfd, int how)
{
	unsigned char *buf = malloc(64);
	ssize_t r;

	if (!buf)
		return -ENOMEM;
	memset(buf, 0xa5, 64);
	WT_CHECK_EQ(weft_timeout_begin(5 * WT_MS), 0);
	if (how == 0)
		r = weft_read(rfd, buf, 64);
	else if (how == 1)
		r = weft_recv(rfd, buf, 64, 0);
	else
		r = weft_poll(rfd, POLLIN);
	WT_CHECK_EQ(r, -ETIMEDOUT);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	wt_fill(buf, 64, 77, 0);
	WT_CHECK_EQ(weft_write_all(wfd, buf, 64), 64);
	memset(buf, 0xa5, 64);
	/* Not expired: the data is there. */
	WT_CHECK_EQ(weft_timeout_begin(WT_BUG_BOUND), 0);
	WT_CHECK_EQ(weft_read_exact(rfd, buf, 64), 64);
	WT_CHECK_EQ(weft_timeout_end(), 0);
	WT_CHECK_EQ(wt_mismatch(buf, 64, 77, 0), 64);
	free(buf);
	return 0;
}

static int deadline_root(void *arg)
{
	int a, b, sp[2];

	(void)arg;
	for (int how = 0; how < 3; how++) {
		wt_tcp_pair(&a, &b);
		WT_CHECK_EQ(deadline_case(a, b, how), 0);
		WT_CHECK_EQ(deadline_case(b, a, how), 0);
		weft_close(a);
		weft_close(b);
		WT_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
		WT_CHECK_EQ(deadline_case(sp[0], sp[1], how), 0);
		weft_close(sp[0]);
		weft_close(sp[1]);
	}
	return 0;
}

static void test_read_deadline(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, deadline_root, NULL), 0);
	assert_int_equal(wt_run_io(1, deadline_root, NULL), 0);
}

/*
 * Cancellation of a blocked read. The buffer is heap memory that outlives
 * the task, filled with a canary. After the cancel and the join (the
 * task's result is -ECANCELED), the peer writes; the buffer must still be
 * all canary, and a new read must get every byte.
 */
#define CANARY 0x5a
#define CAN_N 4096u
#define CAN_ITERS WT_SCALE(24, 8)

struct canary {
	int fd;
	int how;		/* 0 read, 1 recv, 2 readv, 3 poll */
	unsigned char *buf;
	_Atomic int started;
};

static int blocked_reader(void *arg)
{
	struct canary *c = arg;
	struct iovec iov[2] = {
		{ .iov_base = c->buf, .iov_len = CAN_N / 2 },
		{ .iov_base = c->buf + CAN_N / 2, .iov_len = CAN_N / 2 },
	};

	atomic_store(&c->started, 1);
	switch (c->how) {
	case 0: return (int)weft_read(c->fd, c->buf, CAN_N);
	case 1: return (int)weft_recv(c->fd, c->buf, CAN_N, 0);
	case 2: return (int)weft_readv(c->fd, iov, 2);
	default: return weft_poll(c->fd, POLLIN);
	}
}

static int canary_root(void *arg)
{
	/* 0: TCP, 1: blocking socketpair, 2: non-blocking socketpair */
	int kind = (int)(intptr_t)arg;
	struct canary c;
	unsigned char *check = malloc(CAN_N);

	if (!check)
		return -ENOMEM;
	memset(&c, 0, sizeof(c));
	c.buf = malloc(CAN_N);
	if (!c.buf) {
		free(check);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < CAN_ITERS * 4; i++) {
		int a, b, sp[2], r = 12345;
		weft_task *t;

		if (kind == 0) {
			wt_tcp_pair(&a, &b);
		} else {
			WT_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM |
					       (kind == 2 ? SOCK_NONBLOCK : 0),
					       0, sp), 0);
			a = sp[0];
			b = sp[1];
		}
		c.fd = a;
		c.how = (int)(i % 4);
		atomic_store(&c.started, 0);
		memset(c.buf, CANARY, CAN_N);
		WT_CHECK_EQ(weft_spawn(&t, blocked_reader, &c), 0);
		WT_TASK_WAIT(atomic_load(&c.started));
		/* Let the read reach the kernel (not needed for
		 * correctness: a cancel before it must work as well). */
		if (i % 3)
			WT_CHECK_EQ(weft_sleep((i % 5) * 200 * WT_US), 0);
		else
			WT_CHECK_EQ(weft_yield(), 0);
		WT_CHECK_EQ(weft_cancel(t), 0);
		WT_CHECK_EQ(weft_join(t, &r), 0);
		WT_CHECK_EQ(r, -ECANCELED);
		/* Now the data arrives: it must not reach c.buf. */
		wt_fill(check, CAN_N, i, 0);
		WT_CHECK_EQ(weft_write_all(b, check, CAN_N), CAN_N);
		WT_CHECK_EQ(weft_sleep(WT_MS), 0);
		if (!all_bytes(c.buf, CAN_N, CANARY)) {
			fprintf(stderr, "canary: iteration %u how %d: the "
					"cancelled call wrote into its buffer\n",
				i, c.how);
			WT_CHECK(!"buffer of a cancelled read was written");
		}
		/* Nothing consumed: a new read gets every byte. */
		memset(check, 0, CAN_N);
		WT_CHECK_EQ(weft_timeout_begin(WT_BUG_BOUND), 0);
		WT_CHECK_EQ(weft_read_exact(a, check, CAN_N), CAN_N);
		WT_CHECK_EQ(weft_timeout_end(), 0);
		WT_CHECK_EQ(wt_mismatch(check, CAN_N, i, 0), CAN_N);
		weft_close(a);
		weft_close(b);
	}
	free(c.buf);
	free(check);
	return 0;
}

static void test_cancel_canary_tcp(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, canary_root, (void *)0), 0);
	assert_int_equal(wt_run_io(1, canary_root, (void *)0), 0);
	assert_int_equal(wt_run_io(4, canary_root, (void *)0), 0);
}

static void test_cancel_canary_socketpair(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, canary_root, (void *)1), 0);
	assert_int_equal(wt_run_io(1, canary_root, (void *)1), 0);
	assert_int_equal(wt_run_io(2, canary_root, (void *)2), 0);
	assert_int_equal(wt_run_io(1, canary_root, (void *)2), 0);
}

/*
 * errno is read on the thread that made the system call. Reader tasks
 * share one socket (a wake grants all of them, so most retry, fail with
 * EAGAIN and wait again, often resuming on another worker); poison tasks
 * set errno to ENOTRECOVERABLE on every worker they run on. A read that
 * reports -ENOTRECOVERABLE took another thread's errno: the compiler kept
 * __errno_location()'s result (declared const) across the suspension.
 */
#define ERRNO_ROUNDS WT_SCALE(20, 6)
#define ERRNO_BYTES 300
#define ERRNO_READERS 8
#define ERRNO_POISON 4

/* The calling thread's errno location, looked up at every call (the
 * poison task itself moves between threads). */
static int *(*volatile errno_loc)(void) = __errno_location;
static _Atomic int errno_stop;
static _Atomic long errno_got;

static int errno_poison(void *arg)
{
	(void)arg;
	while (!atomic_load(&errno_stop)) {
		*errno_loc() = ENOTRECOVERABLE;
		WT_CHECK_EQ(weft_yield(), 0);
	}
	return 0;
}

static int errno_reader(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char c;

	for (;;) {
		ssize_t r = weft_read(fd, &c, 1);

		if (r == 0)
			return 0;
		if (r != 1) {
			fprintf(stderr, "errno: weft_read: %zd (%s)\n", r,
				strerror((int)-r));
			WT_CHECK_EQ(r, 1);
			return -1;
		}
		atomic_fetch_add(&errno_got, 1);
	}
}

static int errno_root(void *arg)
{
	weft_task *p[ERRNO_POISON], *r[ERRNO_READERS];
	int sv[2], res;

	(void)arg;
	atomic_store(&errno_stop, 0);
	atomic_store(&errno_got, 0);
	WT_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	for (int i = 0; i < ERRNO_POISON; i++)
		WT_CHECK_EQ(weft_spawn(&p[i], errno_poison, NULL), 0);
	for (int i = 0; i < ERRNO_READERS; i++)
		WT_CHECK_EQ(weft_spawn(&r[i], errno_reader,
				       (void *)(intptr_t)sv[0]), 0);
	for (int i = 0; i < ERRNO_BYTES; i++) {
		WT_CHECK_EQ(weft_write(sv[1], "e", 1), 1);
		WT_CHECK_EQ(weft_sleep(20 * WT_US), 0);
	}
	WT_CHECK_EQ(weft_close(sv[1]), 0);
	for (int i = 0; i < ERRNO_READERS; i++) {
		WT_CHECK_EQ(weft_join(r[i], &res), 0);
		WT_CHECK_EQ(res, 0);
	}
	atomic_store(&errno_stop, 1);
	for (int i = 0; i < ERRNO_POISON; i++)
		WT_CHECK_EQ(weft_join(p[i], NULL), 0);
	WT_CHECK_EQ(atomic_load(&errno_got), ERRNO_BYTES);
	WT_CHECK_EQ(weft_close(sv[0]), 0);
	return 0;
}

static void test_errno_migration(void **state)
{
	(void)state;
	/* A fresh runtime each round: how tasks settle on the workers
	 * decides how often they move. */
	for (int i = 0; i < ERRNO_ROUNDS; i++)
		assert_int_equal(wt_run_io(4, errno_root, NULL), 0);
}

/*
 * A pipe whose reader is gone: -EPIPE, and the process lives (weft_rt_new
 * set SIGPIPE to be ignored, since it was at its default).
 */
static int epipe_root(void *arg)
{
	int fds[2];
	struct sigaction sa;

	(void)arg;
	WT_CHECK_EQ(sigaction(SIGPIPE, NULL, &sa), 0);
	WT_CHECK(sa.sa_handler == SIG_IGN);
	WT_CHECK_EQ(pipe(fds), 0);
	WT_CHECK_EQ(weft_close(fds[0]), 0);
	WT_CHECK_EQ(weft_write(fds[1], "x", 1), -EPIPE);
	WT_CHECK_EQ(weft_write_all(fds[1], "xyz", 3), -EPIPE);
	WT_CHECK_EQ(weft_close(fds[1]), 0);
	return 0;
}

static void test_epipe_pipe(void **state)
{
	struct sigaction sa, old;

	(void)state;
	/* Back to the default, so that weft_rt_new is the one to ignore
	 * it. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	assert_int_equal(sigaction(SIGPIPE, &sa, &old), 0);
	assert_int_equal(wt_run_io(2, epipe_root, NULL), 0);
}

/* Bad input. */
static int bad_root(void *arg)
{
	int fds[2];
	char c;

	(void)arg;
	WT_CHECK_EQ(weft_read(-1, &c, 1), -EBADF);
	WT_CHECK_EQ(weft_write(-1, &c, 1), -EBADF);
	WT_CHECK_EQ(weft_recv(-1, &c, 1, 0), -EBADF);
	WT_CHECK_EQ(weft_send(-1, &c, 1, 0), -EBADF);
	WT_CHECK_EQ(weft_poll(-1, POLLIN), -EBADF);
	WT_CHECK_EQ(weft_close(-1), -EBADF);
	WT_CHECK_EQ(weft_recvmsg(0, NULL, 0), -EINVAL);
	WT_CHECK_EQ(pipe(fds), 0);
	WT_CHECK_EQ(weft_recv(fds[0], &c, 1, 0), -ENOTSOCK);
	WT_CHECK_EQ(weft_send(fds[1], &c, 1, 0), -ENOTSOCK);
	weft_close(fds[0]);
	weft_close(fds[1]);
	return 0;
}

static void test_bad_input(void **state)
{
	char c;

	(void)state;
	assert_int_equal(wt_run_io(2, bad_root, NULL), 0);
	/* The same from a plain thread. */
	assert_int_equal(weft_read(-1, &c, 1), -EBADF);
	assert_int_equal(weft_write(-1, &c, 1), -EBADF);
	assert_int_equal(weft_poll(-1, POLLIN), -EBADF);
}

/* io_backend and WEFT_IO. */
static void test_backend_config(void **state)
{
	weft_config c = wt_cfg(1);
	weft_rt *rt = NULL;

	(void)state;
	c.io_backend = 7;
	assert_int_equal(weft_rt_new(&rt, &c), -EINVAL);
	c.io_backend = WEFT_IO_AUTO;
	assert_int_equal(setenv("WEFT_IO", "bogus", 1), 0);
	assert_int_equal(weft_rt_new(&rt, &c), -EINVAL);
	/* An explicit backend does not read the environment. */
	c.io_backend = wt_backend;
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	assert_int_equal(weft_rt_io_backend(rt), (int)wt_backend);
	weft_rt_free(rt);
	/* AUTO follows WEFT_IO. */
	c.io_backend = WEFT_IO_AUTO;
	assert_int_equal(setenv("WEFT_IO", wt_backend == WEFT_IO_URING ?
						   "uring" : "epoll", 1), 0);
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	assert_int_equal(weft_rt_io_backend(rt), (int)wt_backend);
	weft_rt_free(rt);
	assert_int_equal(unsetenv("WEFT_IO"), 0);
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	assert_true(weft_rt_io_backend(rt) == WEFT_IO_URING ||
		    weft_rt_io_backend(rt) == WEFT_IO_EPOLL);
	weft_rt_free(rt);
}

/*
 * Plain threads: weft's calls are the system calls. A thread blocks in
 * weft_read on a blocking socketpair until the main thread writes, then
 * echoes; on a non-blocking socketpair the calls wait (poll) instead of
 * returning -EAGAIN. A runtime of the suite's backend is alive meanwhile
 * (the calls must not try to use it).
 */
struct plain {
	int fd;
	_Atomic int failures;
	_Atomic int reading;
};

static void *plain_echo(void *arg)
{
	struct plain *p = arg;
	unsigned char buf[1000];
	ssize_t total = 0;

	atomic_store(&p->reading, 1);
	while (total < 100000) {
		ssize_t r = weft_read(p->fd, buf, sizeof(buf));

		if (r <= 0) {
			fprintf(stderr, "plain_echo: read %zd\n", r);
			atomic_fetch_add(&p->failures, 1);
			break;
		}
		if (weft_write_all(p->fd, buf, (size_t)r) != r) {
			atomic_fetch_add(&p->failures, 1);
			break;
		}
		total += r;
	}
	return NULL;
}

static void plain_pair(bool nonblock)
{
	struct plain p = { 0 };
	unsigned char *out = malloc(100000), *in = malloc(100000);
	pthread_t th;
	int sv[2], ev;

	assert_non_null(out);
	assert_non_null(in);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM |
				    (nonblock ? SOCK_NONBLOCK : 0), 0, sv), 0);
	p.fd = sv[1];
	assert_int_equal(pthread_create(&th, NULL, plain_echo, &p), 0);
	WT_WAIT(atomic_load(&p.reading));
	wt_nap(2 * WT_MS); /* the thread is (most likely) in read() */
	ev = weft_poll(sv[0], POLLOUT);
	assert_true(ev > 0 && (ev & POLLOUT));
	wt_fill(out, 100000, 3, 0);
	/* In 10 pieces so that neither side's buffer fills up. */
	for (size_t off = 0; off < 100000; off += 10000) {
		assert_int_equal(weft_write_all(sv[0], out + off, 10000), 10000);
		assert_int_equal(weft_read_exact(sv[0], in + off, 10000), 10000);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&p.failures), 0);
	assert_int_equal(wt_mismatch(in, 100000, 3, 0), 100000);
	/* End of stream from the thread's side. */
	assert_int_equal(weft_close(sv[1]), 0);
	assert_int_equal(weft_read(sv[0], in, 10), 0);
	assert_int_equal(weft_close(sv[0]), 0);
	free(out);
	free(in);
}

static void test_plain_threads(void **state)
{
	weft_config c = wt_cfg(2);
	weft_rt *rt = NULL;

	(void)state;
	plain_pair(false);
	plain_pair(true);
	c.io_backend = wt_backend;
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	plain_pair(false);
	plain_pair(true);
	weft_rt_free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipes),
		cmocka_unit_test(test_poll_pipe),
		cmocka_unit_test(test_blocking_socketpair),
		cmocka_unit_test(test_misc),
		cmocka_unit_test(test_shared_socket),
		cmocka_unit_test(test_recv_waitall),
		cmocka_unit_test(test_read_deadline),
		cmocka_unit_test(test_cancel_canary_tcp),
		cmocka_unit_test(test_cancel_canary_socketpair),
		cmocka_unit_test(test_errno_migration),
		cmocka_unit_test(test_epipe_pipe),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_backend_config),
		cmocka_unit_test(test_plain_threads),
	};

	return WT_RUN_BOTH_BACKENDS("io", tests, NULL, NULL);
}
