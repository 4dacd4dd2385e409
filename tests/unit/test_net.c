/* SPDX-License-Identifier: MIT */
/*
 * Sockets (weft/net.h), loopback only, run once per backend (io_uring,
 * then epoll; the io_uring half is skipped with a note where io_uring
 * cannot be set up):
 *  - 32 connections each echo 1 MiB at once (a writer and a reader task
 *    per client, a handler per accepted connection), every byte verified;
 *    again on rings of 1 and 2 SQ entries (a full SQ, an overflowing CQ);
 *  - a peer that resets (SO_LINGER 0 close) while we read (-ECONNRESET)
 *    or write (-ECONNRESET or -EPIPE);
 *  - writes to a peer that closed: -EPIPE, no SIGPIPE (weft_write, whose
 *    io_uring operation cannot pass MSG_NOSIGNAL, weft_send, weft_writev);
 *    in a child process, a program's own SIGPIPE handler is kept and
 *    weft_send never raises the signal;
 *  - a task blocked in weft_accept is cancelled: its address buffer stays
 *    untouched and the connection that arrives afterwards goes to the next
 *    accept; an accept whose deadline expires returns -ETIMEDOUT;
 *  - fd exhaustion in a child process with a low RLIMIT_NOFILE: accept
 *    returns -EMFILE, and works again once fds are closed;
 *  - 10,000 connections (1,000 in sanitizer builds) opened, used and
 *    closed, both sides through weft, leave /proc/self/fd as it was;
 *  - UDP on 127.0.0.1; Unix-domain listen/connect/echo, -ENAMETOOLONG,
 *    -ENOENT, a stale socket file replaced but the path of a live
 *    listener refused (-EADDRINUSE), an fd passed with SCM_RIGHTS
 *    through weft_sendmsg / weft_recvmsg;
 *  - bad input: -ECONNREFUSED, -EADDRINUSE, an unknown host (a negative
 *    result from the resolver, while the worker keeps running tasks),
 *    SO_REUSEPORT twice on one port, option and argument errors;
 *  - plain threads: listen, connect and accept are the system calls.
 */
#include <dirent.h>
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
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "weft_test_io.h"

/*
 * wt_run_io (weft_test_io.h) on rings of `entries` SQ entries (0 = the
 * default size).
 */
static int run_io_entries(unsigned workers, unsigned entries,
			  int (*fn)(void *), void *arg)
{
	weft_config c = wt_cfg(workers);
	weft_rt *rt = NULL;

	c.io_backend = wt_backend;
	c.io_entries = entries;
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	return wt_run_io_rt(rt, fn, arg);
}

static int listen_any(int *port)
{
	int lfd = weft_tcp_listen("127.0.0.1", 0, 0);

	WT_CHECK(lfd >= 0);
	*port = weft_local_port(lfd);
	WT_CHECK(*port > 0);
	return lfd;
}

/* Entries of /proc/self/fd (the directory's own fd included, every time). */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void set_linger0(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	WT_CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
}

/*
 * Echo: ECHO_CONNS clients each send ECHO_BYTES in random pieces from a
 * writer task while reading the echo back in the client task; a handler
 * task per accepted connection echoes until end of stream.
 */
#define ECHO_CONNS 32
#define ECHO_BYTES (1024u * 1024u)

static _Atomic long echoed, verified;

static int echo_handler(void *arg)
{
	int fd = (int)(intptr_t)arg;
	unsigned char *buf = malloc(16384);
	ssize_t r;

	if (!buf)
		return -ENOMEM;
	while ((r = weft_read(fd, buf, 16384)) > 0) {
		WT_CHECK_EQ(weft_write_all(fd, buf, (size_t)r), r);
		atomic_fetch_add(&echoed, r);
	}
	WT_CHECK_EQ(r, 0);
	WT_CHECK_EQ(weft_close(fd), 0);
	free(buf);
	return 0;
}

struct acceptor {
	int lfd;
	int n;
	int (*handler)(void *);
	weft_waitgroup wg;	/* the handlers */
};

struct handler_arg {
	struct acceptor *acc;
	int fd;
};

static int handler_wrap(void *arg)
{
	struct handler_arg *h = arg;
	struct acceptor *acc = h->acc;
	int fd = h->fd, r;

	free(h);
	r = acc->handler((void *)(intptr_t)fd);
	WT_CHECK_EQ(r, 0);
	weft_waitgroup_done(&acc->wg);
	return r;
}

/* Accepts acc->n connections, a detached handler for each; then waits for
 * the handlers. */
static int acceptor_main(void *arg)
{
	struct acceptor *acc = arg;

	for (int i = 0; i < acc->n; i++) {
		struct handler_arg *h = malloc(sizeof(*h));
		int fd = weft_accept(acc->lfd, NULL, NULL);

		WT_CHECK(fd >= 0);
		if (fd < 0 || !h) {
			free(h);
			return -1;
		}
		h->acc = acc;
		h->fd = fd;
		WT_CHECK_EQ(weft_waitgroup_add(&acc->wg, 1), 0);
		WT_CHECK_EQ(weft_spawn(NULL, handler_wrap, h), 0);
	}
	WT_CHECK_EQ(weft_waitgroup_wait(&acc->wg), 0);
	return 0;
}

struct echo_client {
	int port;
	unsigned id;
	int fd;
};

static int echo_writer(void *arg)
{
	struct echo_client *c = arg;
	unsigned char *buf = malloc(65536);
	uint64_t rng = wt_seed(c->id, 99);
	size_t off = 0;

	if (!buf)
		return -ENOMEM;
	while (off < ECHO_BYTES) {
		size_t n = 1 + wt_below(&rng, 65536);

		if (n > ECHO_BYTES - off)
			n = ECHO_BYTES - off;
		wt_fill(buf, n, c->id, off);
		WT_CHECK_EQ(weft_write_all(c->fd, buf, n), n);
		off += n;
		if (wt_below(&rng, 8) == 0)
			WT_CHECK_EQ(weft_yield(), 0);
	}
	WT_CHECK_EQ(weft_shutdown(c->fd, SHUT_WR), 0);
	free(buf);
	return 0;
}

static int echo_client_main(void *arg)
{
	struct echo_client *c = arg;
	unsigned char *buf = malloc(65536);
	weft_task *w;
	size_t off = 0;
	ssize_t r;
	int wr = -1;

	if (!buf)
		return -ENOMEM;
	c->fd = weft_tcp_connect("127.0.0.1", (uint16_t)c->port);
	WT_CHECK(c->fd >= 0);
	if (c->fd < 0) {
		free(buf);
		return -1;
	}
	WT_CHECK_EQ(weft_spawn(&w, echo_writer, c), 0);
	while ((r = weft_read(c->fd, buf, 1 + (c->id * 997 + off) % 65536)) >
	       0) {
		size_t bad = wt_mismatch(buf, (size_t)r, c->id, off);

		if (bad != (size_t)r) {
			fprintf(stderr, "echo: connection %u: byte %zu "
					"differs\n", c->id, off + bad);
			WT_CHECK(!"echoed data differs");
			break;
		}
		off += (size_t)r;
		atomic_fetch_add(&verified, r);
	}
	WT_CHECK_EQ(r, 0);
	WT_CHECK_EQ(off, ECHO_BYTES);
	WT_CHECK_EQ(weft_join(w, &wr), 0);
	WT_CHECK_EQ(wr, 0);
	WT_CHECK_EQ(weft_close(c->fd), 0);
	free(buf);
	return 0;
}

static int echo_root(void *arg)
{
	struct acceptor acc = { .n = ECHO_CONNS, .handler = echo_handler,
				.wg = WEFT_WAITGROUP_INIT };
	struct echo_client cl[ECHO_CONNS];
	weft_task *at, *ct[ECHO_CONNS];
	int port, r;

	(void)arg;
	acc.lfd = listen_any(&port);
	WT_CHECK_EQ(weft_spawn(&at, acceptor_main, &acc), 0);
	for (unsigned i = 0; i < ECHO_CONNS; i++) {
		cl[i] = (struct echo_client){ .port = port, .id = i };
		WT_CHECK_EQ(weft_spawn(&ct[i], echo_client_main, &cl[i]), 0);
	}
	for (unsigned i = 0; i < ECHO_CONNS; i++) {
		WT_CHECK_EQ(weft_join(ct[i], &r), 0);
		WT_CHECK_EQ(r, 0);
	}
	WT_CHECK_EQ(weft_join(at, &r), 0);
	WT_CHECK_EQ(r, 0);
	WT_CHECK_EQ(weft_close(acc.lfd), 0);
	return 0;
}

static void test_echo_many(void **state)
{
	(void)state;
	atomic_store(&echoed, 0);
	atomic_store(&verified, 0);
	assert_int_equal(wt_run_io(4, echo_root, NULL), 0);
	assert_int_equal(atomic_load(&echoed),
			 (long)ECHO_CONNS * ECHO_BYTES);
	assert_int_equal(atomic_load(&verified),
			 (long)ECHO_CONNS * ECHO_BYTES);
}

/*
 * The same with tiny rings (1 and 2 SQ entries, CQs of 4 and 8): about a
 * hundred operations in flight on one or two rings fill the SQ (tasks wait
 * for room) and overflow the CQ (the kernel keeps the completions).
 */
static void test_echo_small_ring(void **state)
{
	(void)state;
	for (unsigned entries = 1; entries <= 2; entries++) {
		for (unsigned workers = 1; workers <= 2; workers++) {
			atomic_store(&echoed, 0);
			atomic_store(&verified, 0);
			assert_int_equal(run_io_entries(workers, entries,
							echo_root, NULL), 0);
			assert_int_equal(atomic_load(&verified),
					 (long)ECHO_CONNS * ECHO_BYTES);
		}
	}
}

/*
 * Peer reset. Reading: the peer sends 1000 bytes, and once we wait for
 * more it closes with SO_LINGER 0 (RST): the bytes may or may not be
 * delivered, then -ECONNRESET. Writing: we write 64 KiB pieces while the
 * peer reads one byte and resets: -ECONNRESET (or -EPIPE once the error
 * was reported).
 */
struct reset_args {
	int fd;
	int how;		/* 0 read, 1 weft_write, 2 weft_send */
	_Atomic int waiting;
};

static int resetter(void *arg)
{
	struct reset_args *a = arg;
	unsigned char buf[1000];
	char c;

	if (a->how == 0) {
		wt_fill(buf, sizeof(buf), 1, 0);
		WT_CHECK_EQ(weft_write_all(a->fd, buf, sizeof(buf)),
			    sizeof(buf));
		WT_TASK_WAIT(atomic_load(&a->waiting));
		WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	} else {
		WT_CHECK_EQ(weft_read(a->fd, &c, 1), 1);
	}
	set_linger0(a->fd);
	WT_CHECK_EQ(weft_close(a->fd), 0);
	return 0;
}

static int reset_root(void *arg)
{
	unsigned char *buf = malloc(65536);

	(void)arg;
	if (!buf)
		return -ENOMEM;
	memset(buf, 'w', 65536);
	for (int how = 0; how < 3; how++) {
		struct reset_args a = { .how = how };
		weft_task *t;
		int me, r = -1;
		ssize_t n = 0, got = 0;
		long i;

		wt_tcp_pair(&me, &a.fd);
		WT_CHECK_EQ(weft_spawn(&t, resetter, &a), 0);
		if (how == 0) {
			/* The first 1000 bytes arrive; then we wait. */
			while (got < 1000 &&
			       (n = weft_read(me, buf, 1000 - got)) > 0)
				got += n;
			WT_CHECK_EQ(got, 1000);
			atomic_store(&a.waiting, 1);
			n = weft_read(me, buf, 65536);
			WT_CHECK_EQ(n, -ECONNRESET);
		} else {
			for (i = 0; i < 100000; i++) {
				n = how == 1 ? weft_write(me, buf, 65536)
					     : weft_send(me, buf, 65536, 0);
				if (n < 0)
					break;
			}
			WT_CHECK(n == -ECONNRESET || n == -EPIPE);
			if (n != -ECONNRESET && n != -EPIPE)
				fprintf(stderr, "reset: write %d: %zd after "
						"%ld writes\n", how, n, i);
		}
		WT_CHECK_EQ(weft_join(t, &r), 0);
		WT_CHECK_EQ(r, 0);
		/* Afterwards: end of stream or -EPIPE, never a crash. */
		n = weft_read(me, buf, 10);
		WT_CHECK(n == 0 || n == -ECONNRESET);
		n = weft_write(me, buf, 10);
		WT_CHECK(n == -EPIPE || n == -ECONNRESET);
		WT_CHECK_EQ(weft_close(me), 0);
	}
	free(buf);
	return 0;
}

static void test_peer_reset(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, reset_root, NULL), 0);
}

/*
 * Writes to a peer that closed (FIN): the first writes may succeed (the
 * peer answers them with a reset), then -ECONNRESET once, then -EPIPE.
 * SIGPIPE must not end the process.
 */
static int closed_peer_root(void *arg)
{
	struct iovec iov = { .iov_base = "abc", .iov_len = 3 };

	(void)arg;
	for (int how = 0; how < 3; how++) {
		int me, peer;
		ssize_t n = 0;
		int i;

		wt_tcp_pair(&me, &peer);
		WT_CHECK_EQ(weft_close(peer), 0);
		for (i = 0; i < 2000; i++) {
			n = how == 0 ? weft_write(me, "abc", 3)
			  : how == 1 ? weft_send(me, "abc", 3, 0)
				     : weft_writev(me, &iov, 1);
			if (n < 0)
				break;
			WT_CHECK_EQ(weft_sleep(200 * WT_US), 0);
		}
		WT_CHECK(n == -EPIPE || n == -ECONNRESET);
		n = how == 0 ? weft_write(me, "abc", 3)
		  : how == 1 ? weft_send(me, "abc", 3, 0)
			     : weft_writev(me, &iov, 1);
		WT_CHECK_EQ(n, -EPIPE);
		WT_CHECK_EQ(weft_close(me), 0);
	}
	return 0;
}

static void test_write_closed_peer(void **state)
{
	struct sigaction sa;

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	assert_int_equal(sigaction(SIGPIPE, &sa, NULL), 0);
	assert_int_equal(wt_run_io(2, closed_peer_root, NULL), 0);
	assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
	assert_true(sa.sa_handler == SIG_IGN);
}

/*
 * In a child: a SIGPIPE handler installed before weft_rt_new stays, and
 * weft_send (MSG_NOSIGNAL) to a closed peer never raises the signal.
 */
static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
	(void)sig;
	sigpipes++;
}

static int handler_kept_root(void *arg)
{
	int me, peer, i;
	ssize_t n = 0;

	(void)arg;
	wt_tcp_pair(&me, &peer);
	WT_CHECK_EQ(weft_close(peer), 0);
	for (i = 0; i < 2000; i++) {
		n = weft_send(me, "abc", 3, 0);
		if (n < 0)
			break;
		WT_CHECK_EQ(weft_sleep(200 * WT_US), 0);
	}
	WT_CHECK(n == -EPIPE || n == -ECONNRESET);
	WT_CHECK_EQ(weft_send(me, "abc", 3, 0), -EPIPE);
	WT_CHECK_EQ(weft_close(me), 0);
	return 0;
}

static int handler_kept_child(void)
{
	struct sigaction sa;
	weft_config c = wt_cfg(2);
	weft_rt *rt = NULL;
	int r = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigpipe;
	if (sigaction(SIGPIPE, &sa, NULL))
		return 10;
	c.io_backend = wt_backend;
	if (weft_rt_new(&rt, &c))
		return 11;
	if (sigaction(SIGPIPE, NULL, &sa) || sa.sa_handler != on_sigpipe)
		return 12;
	if (weft_rt_block_on(rt, handler_kept_root, NULL, &r) || r)
		return 13;
	weft_rt_free(rt);
	if (sigpipes) {
		fprintf(stderr, "child: %d SIGPIPE\n", (int)sigpipes);
		return 14;
	}
	return wt_take_failures() ? 15 : 0;
}

static void run_child(int (*fn)(void))
{
	pid_t pid;
	int st = 0;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = fn();

		fflush(stdout);
		fflush(stderr);
		_exit(rc);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st))
		fprintf(stderr, "child killed by signal %d\n",
			WIFSIGNALED(st) ? WTERMSIG(st) : -1);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_sigpipe_handler_kept(void **state)
{
	(void)state;
	run_child(handler_kept_child);
}

/*
 * Cancelling a task blocked in weft_accept: its address buffer and length
 * (heap, canary-filled) are untouched, and a connection made afterwards is
 * accepted by the next call. Then an accept whose deadline expires.
 */
#define CANARY 0x5a
#define CAN_ITERS WT_SCALE(24, 8)

struct acc_canary {
	int lfd;
	struct sockaddr_storage *addr;
	socklen_t *len;
	_Atomic int started;
};

static int blocked_acceptor(void *arg)
{
	struct acc_canary *c = arg;

	atomic_store(&c->started, 1);
	return weft_accept(c->lfd, (struct sockaddr *)c->addr, c->len);
}

static int accept_cancel_root(void *arg)
{
	struct acc_canary c = { 0 };
	int port;

	(void)arg;
	c.addr = malloc(sizeof(*c.addr));
	c.len = malloc(sizeof(*c.len));
	if (!c.addr || !c.len)
		return -ENOMEM;
	c.lfd = listen_any(&port);
	for (unsigned i = 0; i < CAN_ITERS; i++) {
		struct sockaddr_in sin;
		socklen_t slen = sizeof(sin);
		weft_task *t;
		int r = 12345, cfd, afd;
		char ch = 0;

		atomic_store(&c.started, 0);
		memset(c.addr, CANARY, sizeof(*c.addr));
		*c.len = sizeof(*c.addr);
		WT_CHECK_EQ(weft_spawn(&t, blocked_acceptor, &c), 0);
		WT_TASK_WAIT(atomic_load(&c.started));
		if (i % 3)
			WT_CHECK_EQ(weft_sleep((i % 5) * 200 * WT_US), 0);
		else
			WT_CHECK_EQ(weft_yield(), 0);
		WT_CHECK_EQ(weft_cancel(t), 0);
		WT_CHECK_EQ(weft_join(t, &r), 0);
		WT_CHECK_EQ(r, -ECANCELED);
		cfd = weft_tcp_connect("127.0.0.1", (uint16_t)port);
		WT_CHECK(cfd >= 0);
		WT_CHECK_EQ(weft_sleep(WT_MS), 0);
		for (size_t k = 0; k < sizeof(*c.addr); k++)
			if (((unsigned char *)c.addr)[k] != CANARY) {
				WT_CHECK(!"cancelled accept wrote its address");
				break;
			}
		WT_CHECK_EQ(*c.len, sizeof(*c.addr));
		/* The connection waits for the next accept. */
		WT_CHECK_EQ(weft_timeout_begin(WT_BUG_BOUND), 0);
		afd = weft_accept(c.lfd, (struct sockaddr *)&sin, &slen);
		WT_CHECK_EQ(weft_timeout_end(), 0);
		WT_CHECK(afd >= 0);
		WT_CHECK_EQ(slen, sizeof(sin));
		WT_CHECK_EQ(sin.sin_family, AF_INET);
		WT_CHECK_EQ(weft_write(cfd, "!", 1), 1);
		WT_CHECK_EQ(weft_read(afd, &ch, 1), 1);
		WT_CHECK_EQ(ch, '!');
		weft_close(afd);
		weft_close(cfd);
	}
	/* A deadline that expires. */
	WT_CHECK_EQ(weft_timeout_begin(3 * WT_MS), 0);
	WT_CHECK_EQ(weft_accept(c.lfd, NULL, NULL), -ETIMEDOUT);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	weft_close(c.lfd);
	free(c.addr);
	free(c.len);
	return 0;
}

static void test_accept_cancel(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, accept_cancel_root, NULL), 0);
	assert_int_equal(wt_run_io(1, accept_cancel_root, NULL), 0);
}

/*
 * fd exhaustion, in a child (its own runtime, made after the fork) with
 * RLIMIT_NOFILE a little above the fds already open. One connection is
 * made ahead, so a connection always waits when we accept; connect and
 * accept alternate until accept says -EMFILE. Closing four accepted fds
 * lets accept work again, and the connection it gets carries data.
 */
#define EMFILE_HEADROOM 40

static int emfile_limit;	/* the child's RLIMIT_NOFILE */

static int emfile_root(void *arg)
{
	int *cl = calloc((size_t)emfile_limit, sizeof(int));
	int *ac = calloc((size_t)emfile_limit, sizeof(int));
	int ncl = 0, nac = 0, port, lfd, afd, i;
	bool hit = false;
	char ch = 0;

	(void)arg;
	if (!cl || !ac)
		return -ENOMEM;
	lfd = listen_any(&port);
	cl[ncl++] = weft_tcp_connect("127.0.0.1", (uint16_t)port);
	WT_CHECK(cl[0] >= 0);
	/* Each round takes up to two fds: the loop ends well within its
	 * bound. */
	for (i = 0; i < emfile_limit && !hit; i++) {
		int c = weft_tcp_connect("127.0.0.1", (uint16_t)port);
		int a;

		if (c >= 0)
			cl[ncl++] = c;
		else
			WT_CHECK_EQ(c, -EMFILE);
		a = weft_accept(lfd, NULL, NULL);
		if (a == -EMFILE)
			hit = true;
		else if (a >= 0)
			ac[nac++] = a;
		else
			WT_CHECK_EQ(a, -EMFILE);
		if (c < 0 && !hit)
			break;
	}
	WT_CHECK(hit);
	WT_CHECK(nac >= 4);
	if (!hit || nac < 4)
		return -1;
	/* The server recovers once fds are free. */
	for (i = 0; i < 4; i++)
		WT_CHECK_EQ(weft_close(ac[i]), 0);
	WT_CHECK_EQ(weft_timeout_begin(WT_BUG_BOUND), 0);
	afd = weft_accept(lfd, NULL, NULL);
	WT_CHECK_EQ(weft_timeout_end(), 0);
	WT_CHECK(afd >= 0);
	/* Connections are accepted in order: afd is cl[nac]'s. */
	WT_CHECK(nac < ncl);
	if (afd >= 0 && nac < ncl) {
		WT_CHECK_EQ(weft_write(cl[nac], "e", 1), 1);
		WT_CHECK_EQ(weft_read(afd, &ch, 1), 1);
		WT_CHECK_EQ(ch, 'e');
		WT_CHECK_EQ(weft_write(afd, "f", 1), 1);
		WT_CHECK_EQ(weft_read(cl[nac], &ch, 1), 1);
		WT_CHECK_EQ(ch, 'f');
	}
	printf("emfile: -EMFILE after %d accepted connections\n", nac);
	weft_close(afd);
	for (i = 4; i < nac; i++)
		weft_close(ac[i]);
	for (i = 0; i < ncl; i++)
		weft_close(cl[i]);
	weft_close(lfd);
	free(cl);
	free(ac);
	return 0;
}

static int emfile_child(void)
{
	weft_config c = wt_cfg(2);
	weft_rt *rt = NULL;
	struct rlimit rl;
	DIR *d;
	struct dirent *e;
	int maxfd = 0, r = -1, rc;

	/* The lowest free numbers are used first: the limit is counted from
	 * the highest fd open. */
	d = opendir("/proc/self/fd");
	if (!d)
		return 20;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) > maxfd)
			maxfd = atoi(e->d_name);
	closedir(d);
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 21;
	rl.rlim_cur = (rlim_t)maxfd + 1 + EMFILE_HEADROOM;
	emfile_limit = (int)rl.rlim_cur;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return 22;
	c.io_backend = wt_backend;
	rc = weft_rt_new(&rt, &c);
	if (rc) {
		fprintf(stderr, "emfile child: weft_rt_new: %d\n", rc);
		return 23;
	}
	if (weft_rt_io_backend(rt) != (int)wt_backend)
		return 24;
	if (weft_rt_block_on(rt, emfile_root, NULL, &r))
		return 25;
	weft_rt_free(rt);
	if (r)
		return 26;
	return wt_take_failures() ? 27 : 0;
}

static void test_accept_emfile(void **state)
{
	(void)state;
	run_child(emfile_child);
}

/*
 * Connection churn: CHURN connections, each: connect, one byte each way,
 * close; both sides through weft (CHURN_CLIENTS client tasks, a handler
 * task per accepted connection). /proc/self/fd has as many entries after
 * as before.
 */
#define CHURN WT_SCALE(10000, 1000)
#define CHURN_CLIENTS 8

static _Atomic long churned;

static int churn_handler(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char c = 0;

	WT_CHECK_EQ(weft_read(fd, &c, 1), 1);
	WT_CHECK_EQ(weft_write(fd, &c, 1), 1);
	WT_CHECK_EQ(weft_read(fd, &c, 1), 0);
	WT_CHECK_EQ(weft_close(fd), 0);
	return 0;
}

static int churn_client(void *arg)
{
	int port = (int)(intptr_t)arg;

	for (int i = 0; i < CHURN / CHURN_CLIENTS; i++) {
		int fd = weft_tcp_connect("127.0.0.1", (uint16_t)port);
		char c = (char)i;

		WT_CHECK(fd >= 0);
		if (fd < 0)
			return -1;
		WT_CHECK_EQ(weft_write(fd, &c, 1), 1);
		c = ~c;
		WT_CHECK_EQ(weft_read(fd, &c, 1), 1);
		WT_CHECK_EQ(c, (char)i);
		WT_CHECK_EQ(weft_close(fd), 0);
		atomic_fetch_add(&churned, 1);
	}
	return 0;
}

static int churn_root(void *arg)
{
	struct acceptor acc = { .n = CHURN / CHURN_CLIENTS * CHURN_CLIENTS,
				.handler = churn_handler,
				.wg = WEFT_WAITGROUP_INIT };
	weft_task *at, *ct[CHURN_CLIENTS];
	int port, before, after, r;

	(void)arg;
	acc.lfd = listen_any(&port);
	before = count_fds();
	WT_CHECK_EQ(weft_spawn(&at, acceptor_main, &acc), 0);
	for (int i = 0; i < CHURN_CLIENTS; i++)
		WT_CHECK_EQ(weft_spawn(&ct[i], churn_client,
				       (void *)(intptr_t)port), 0);
	for (int i = 0; i < CHURN_CLIENTS; i++) {
		WT_CHECK_EQ(weft_join(ct[i], &r), 0);
		WT_CHECK_EQ(r, 0);
	}
	WT_CHECK_EQ(weft_join(at, &r), 0);
	WT_CHECK_EQ(r, 0);
	after = count_fds();
	WT_CHECK(before > 0);
	WT_CHECK_EQ(after, before);
	WT_CHECK_EQ(weft_close(acc.lfd), 0);
	return 0;
}

static void test_conn_churn(void **state)
{
	(void)state;
	atomic_store(&churned, 0);
	assert_int_equal(wt_run_io(4, churn_root, NULL), 0);
	assert_int_equal(atomic_load(&churned),
			 CHURN / CHURN_CLIENTS * CHURN_CLIENTS);
}

/*
 * UDP: a receiver task waits in weft_recvfrom; datagrams keep their
 * boundaries and carry the sender's address.
 */
#define DGRAMS 16

struct udp_args {
	int fd;
	int peer_port;
	_Atomic int waiting;
};

static int udp_receiver(void *arg)
{
	struct udp_args *u = arg;
	unsigned char buf[2048];

	for (int i = 0; i < DGRAMS; i++) {
		struct sockaddr_in from;
		socklen_t len = sizeof(from);
		ssize_t n;

		atomic_store(&u->waiting, 1);
		n = weft_recvfrom(u->fd, buf, sizeof(buf), 0,
				  (struct sockaddr *)&from, &len);
		WT_CHECK_EQ(n, 100 + i * 50);
		WT_CHECK_EQ(wt_mismatch(buf, (size_t)(n > 0 ? n : 0), 40 + i,
					0), n);
		WT_CHECK_EQ(len, sizeof(from));
		WT_CHECK_EQ(from.sin_family, AF_INET);
		WT_CHECK_EQ(ntohs(from.sin_port), u->peer_port);
		WT_CHECK_EQ(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	}
	return 0;
}

static int udp_root(void *arg)
{
	struct udp_args u = { 0 };
	struct sockaddr_in to = { .sin_family = AF_INET };
	unsigned char buf[2048];
	int s, rport, r = -1;
	weft_task *t;

	(void)arg;
	u.fd = weft_udp_bind("127.0.0.1", 0);
	s = weft_udp_bind("127.0.0.1", 0);
	WT_CHECK(u.fd >= 0 && s >= 0);
	rport = weft_local_port(u.fd);
	u.peer_port = weft_local_port(s);
	WT_CHECK(rport > 0 && u.peer_port > 0);
	to.sin_port = htons((uint16_t)rport);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	WT_CHECK_EQ(weft_spawn(&t, udp_receiver, &u), 0);
	WT_TASK_WAIT(atomic_load(&u.waiting));
	WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	for (int i = 0; i < DGRAMS; i++) {
		size_t n = 100 + (size_t)i * 50;

		wt_fill(buf, n, 40 + (unsigned)i, 0);
		WT_CHECK_EQ(weft_sendto(s, buf, n, 0, (struct sockaddr *)&to,
					sizeof(to)), n);
		if (i % 4 == 0)
			WT_CHECK_EQ(weft_yield(), 0);
	}
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, 0);
	/* Errors: no address on an unconnected socket; addr without len. */
	WT_CHECK_EQ(weft_sendto(s, buf, 1, 0, NULL, 0), -EDESTADDRREQ);
	WT_CHECK_EQ(weft_recvfrom(s, buf, 1, 0, (struct sockaddr *)&to, NULL),
		    -EINVAL);
	/* A datagram to ourselves, received without an address. */
	to.sin_port = htons((uint16_t)u.peer_port);
	WT_CHECK_EQ(weft_sendto(s, "dg", 2, 0, (struct sockaddr *)&to,
				sizeof(to)), 2);
	WT_CHECK_EQ(weft_recvfrom(s, buf, sizeof(buf), 0, NULL, NULL), 2);
	weft_close(s);
	weft_close(u.fd);
	return 0;
}

static void test_udp(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, udp_root, NULL), 0);
}

/* Unix-domain sockets in a temporary directory. */
#define UNIX_BYTES (256u * 1024u)

static char tmpdir[64];

static int unix_echo(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd;
	unsigned char buf[4096];
	ssize_t r;

	fd = weft_accept(lfd, NULL, NULL);
	WT_CHECK(fd >= 0);
	if (fd < 0)
		return -1;
	while ((r = weft_read(fd, buf, sizeof(buf))) > 0)
		WT_CHECK_EQ(weft_write_all(fd, buf, (size_t)r), r);
	WT_CHECK_EQ(r, 0);
	weft_close(fd);
	return 0;
}

static int unix_writer(void *arg)
{
	int fd = (int)(intptr_t)arg;
	unsigned char *buf = malloc(UNIX_BYTES);

	if (!buf)
		return -ENOMEM;
	wt_fill(buf, UNIX_BYTES, 8, 0);
	WT_CHECK_EQ(weft_write_all(fd, buf, UNIX_BYTES), UNIX_BYTES);
	WT_CHECK_EQ(weft_shutdown(fd, SHUT_WR), 0);
	free(buf);
	return 0;
}

static int unix_root(void *arg)
{
	char path[128], longpath[300];
	unsigned char *buf = malloc(UNIX_BYTES);
	weft_task *e, *w;
	int lfd, fd, r = -1;
	struct stat st;

	(void)arg;
	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/sock", tmpdir);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	memcpy(longpath, tmpdir, strlen(tmpdir));
	longpath[strlen(tmpdir)] = '/';
	WT_CHECK_EQ(weft_unix_listen(longpath, 0), -ENAMETOOLONG);
	WT_CHECK_EQ(weft_unix_connect(longpath), -ENAMETOOLONG);
	WT_CHECK_EQ(weft_unix_connect(path), -ENOENT);
	WT_CHECK_EQ(weft_unix_listen("", 0), -EINVAL);
	WT_CHECK_EQ(weft_unix_listen(NULL, 0), -EINVAL);

	for (int round = 0; round < 2; round++) {
		/* Round 1 finds round 0's socket file and replaces it. */
		lfd = weft_unix_listen(path, 0);
		WT_CHECK(lfd >= 0);
		WT_CHECK_EQ(stat(path, &st), 0);
		WT_CHECK(S_ISSOCK(st.st_mode));
		WT_CHECK_EQ(weft_spawn(&e, unix_echo, (void *)(intptr_t)lfd),
			    0);
		fd = weft_unix_connect(path);
		WT_CHECK(fd >= 0);
		WT_CHECK_EQ(weft_spawn(&w, unix_writer, (void *)(intptr_t)fd),
			    0);
		memset(buf, 0, UNIX_BYTES);
		WT_CHECK_EQ(weft_read_exact(fd, buf, UNIX_BYTES), UNIX_BYTES);
		WT_CHECK_EQ(wt_mismatch(buf, UNIX_BYTES, 8, 0), UNIX_BYTES);
		WT_CHECK_EQ(weft_read(fd, buf, 1), 0);
		WT_CHECK_EQ(weft_join(w, &r), 0);
		WT_CHECK_EQ(r, 0);
		WT_CHECK_EQ(weft_join(e, &r), 0);
		WT_CHECK_EQ(r, 0);
		weft_close(fd);
		weft_close(lfd);
	}
	/* An fd passed with SCM_RIGHTS through weft_sendmsg/recvmsg. */
	lfd = weft_unix_listen(path, 0);
	WT_CHECK(lfd >= 0);
	fd = weft_unix_connect(path);
	WT_CHECK(fd >= 0);
	{
		int afd = weft_accept(lfd, NULL, NULL), pfd[2], got = -1;
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} cm;
		struct iovec iov = { .iov_base = "F", .iov_len = 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = cm.b,
				      .msg_controllen = sizeof(cm.b) };
		struct cmsghdr *c;
		char one = 0, word[4] = { 0 };

		WT_CHECK(afd >= 0);
		WT_CHECK_EQ(pipe(pfd), 0);
		memset(&cm, 0, sizeof(cm));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pfd[1], sizeof(int));
		WT_CHECK_EQ(weft_sendmsg(fd, &msg, 0), 1);
		WT_CHECK_EQ(weft_close(pfd[1]), 0);
		memset(&cm, 0, sizeof(cm));
		iov = (struct iovec){ .iov_base = &one, .iov_len = 1 };
		msg = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1,
				       .msg_control = cm.b,
				       .msg_controllen = sizeof(cm.b) };
		WT_CHECK_EQ(weft_recvmsg(afd, &msg, 0), 1);
		WT_CHECK_EQ(one, 'F');
		c = CMSG_FIRSTHDR(&msg);
		WT_CHECK(c && c->cmsg_type == SCM_RIGHTS);
		if (c)
			memcpy(&got, CMSG_DATA(c), sizeof(int));
		WT_CHECK(got >= 0);
		WT_CHECK_EQ(weft_write(got, "fd!", 3), 3);
		WT_CHECK_EQ(weft_close(got), 0);
		WT_CHECK_EQ(weft_read_exact(pfd[0], word, 3), 3);
		WT_CHECK(memcmp(word, "fd!", 3) == 0);
		WT_CHECK_EQ(weft_read(pfd[0], word, 1), 0);
		weft_close(pfd[0]);
		weft_close(afd);
	}
	weft_close(fd);

	/* The path of a server that still listens is not taken over: the
	 * second listen fails, and the first still gets new connections.
	 * The check's own connection comes first and ends at once. */
	WT_CHECK_EQ(weft_unix_listen(path, 0), -EADDRINUSE);
	fd = weft_unix_connect(path);
	WT_CHECK(fd >= 0);
	WT_CHECK_EQ(weft_write(fd, "L", 1), 1);
	for (int i = 0; i < 2; i++) {
		int afd = weft_accept(lfd, NULL, NULL);

		WT_CHECK(afd >= 0);
		buf[0] = 0;
		WT_CHECK_EQ(weft_read(afd, buf, 1), i);
		WT_CHECK_EQ(buf[0], i ? 'L' : 0);
		weft_close(afd);
	}
	weft_close(fd);
	weft_close(lfd);

	/* A file that is not a socket is not removed. */
	WT_CHECK_EQ(unlink(path), 0);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	WT_CHECK(fd >= 0);
	close(fd);
	WT_CHECK_EQ(weft_unix_listen(path, 0), -EADDRINUSE);
	WT_CHECK_EQ(unlink(path), 0);
	free(buf);
	return 0;
}

static void test_unix(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/weft_net_XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	assert_int_equal(wt_run_io(2, unix_root, NULL), 0);
	assert_int_equal(rmdir(tmpdir), 0);
}

/*
 * Bad input and addresses in use. An unknown host name is resolved on the
 * blocking pool: a ticker task keeps running on the single worker
 * meanwhile.
 */
static _Atomic int ticking, ticks;

static int ticker(void *arg)
{
	(void)arg;
	while (atomic_load(&ticking)) {
		atomic_fetch_add(&ticks, 1);
		if (weft_sleep(WT_MS))
			break;
	}
	return 0;
}

static _Atomic int reuse_accepted;

static int reuse_acceptor(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd;

	while ((fd = weft_accept(lfd, NULL, NULL)) >= 0) {
		atomic_fetch_add(&reuse_accepted, 1);
		weft_close(fd);
	}
	return fd;
}

static int bad_root(void *arg)
{
	weft_listen_opts o = { 0 };
	weft_task *t, *a1, *a2;
	int lfd, lfd2, port, fd, r = -1;
	struct sockaddr_in sin;
	uint64_t waited;

	(void)arg;
	/* Nobody listens. */
	lfd = listen_any(&port);
	WT_CHECK_EQ(weft_close(lfd), 0);
	WT_CHECK_EQ(weft_tcp_connect("127.0.0.1", (uint16_t)port),
		    -ECONNREFUSED);
	/* In use (SO_REUSEADDR does not allow two listeners). */
	lfd = listen_any(&port);
	WT_CHECK_EQ(weft_tcp_listen("127.0.0.1", (uint16_t)port, 0),
		    -EADDRINUSE);
	o.flags = WEFT_LISTEN_REUSEPORT;
	WT_CHECK_EQ(weft_tcp_listen_opts("127.0.0.1", (uint16_t)port, &o),
		    -EADDRINUSE);
	/* Accept argument errors. */
	WT_CHECK_EQ(weft_accept(lfd, (struct sockaddr *)&sin, NULL), -EINVAL);
	WT_CHECK_EQ(weft_accept(-1, NULL, NULL), -EBADF);
	WT_CHECK_EQ(weft_close(lfd), 0);
	fd = weft_udp_bind("127.0.0.1", 0);
	WT_CHECK(fd >= 0);
	WT_CHECK(weft_accept(fd, NULL, NULL) < 0);
	weft_close(fd);
	/* Option errors. */
	o = (weft_listen_opts){ .reserved = { 1 } };
	WT_CHECK_EQ(weft_tcp_listen_opts("127.0.0.1", 0, &o), -EINVAL);
	o = (weft_listen_opts){ .flags = 0x100 };
	WT_CHECK_EQ(weft_tcp_listen_opts("127.0.0.1", 0, &o), -EINVAL);
	o = (weft_listen_opts){ .backlog = -1 };
	WT_CHECK_EQ(weft_tcp_listen_opts("127.0.0.1", 0, &o), -EINVAL);
	WT_CHECK_EQ(weft_tcp_connect(NULL, 80), -EINVAL);
	WT_CHECK_EQ(weft_tcp_connect("", 80), -EINVAL);
	WT_CHECK_EQ(weft_local_port(-1), -EBADF);

	/* SO_REUSEPORT twice on one port: both listen, and between them
	 * they accept every connection. */
	o = (weft_listen_opts){ .flags = WEFT_LISTEN_REUSEPORT };
	lfd = weft_tcp_listen_opts("127.0.0.1", 0, &o);
	WT_CHECK(lfd >= 0);
	port = weft_local_port(lfd);
	lfd2 = weft_tcp_listen_opts("127.0.0.1", (uint16_t)port, &o);
	WT_CHECK(lfd2 >= 0);
	atomic_store(&reuse_accepted, 0);
	WT_CHECK_EQ(weft_spawn(&a1, reuse_acceptor, (void *)(intptr_t)lfd), 0);
	WT_CHECK_EQ(weft_spawn(&a2, reuse_acceptor, (void *)(intptr_t)lfd2),
		    0);
	for (int i = 0; i < 16; i++) {
		fd = weft_tcp_connect("127.0.0.1", (uint16_t)port);
		WT_CHECK(fd >= 0);
		weft_close(fd);
	}
	for (waited = 0;
	     atomic_load(&reuse_accepted) < 16 && waited < WT_BUG_BOUND;
	     waited += WT_MS)
		WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(atomic_load(&reuse_accepted), 16);
	weft_cancel(a1);
	weft_cancel(a2);
	WT_CHECK_EQ(weft_join(a1, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);
	WT_CHECK_EQ(weft_join(a2, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);
	weft_close(lfd);
	weft_close(lfd2);

	/* An unknown name: a negative errno, and the worker runs the
	 * ticker meanwhile. */
	atomic_store(&ticks, 0);
	atomic_store(&ticking, 1);
	WT_CHECK_EQ(weft_spawn(&t, ticker, NULL), 0);
	fd = weft_tcp_connect("no.such.host.invalid", 80);
	atomic_store(&ticking, 0);
	printf("no.such.host.invalid: %d (%s); ticker ran %d times\n", fd,
	       strerror(-fd), atomic_load(&ticks));
	WT_CHECK(fd == -ENOENT || fd == -EAGAIN);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(weft_tcp_listen("no.such.host.invalid", 0, 0) < 0, 1);
	return 0;
}

static void test_bad_input(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(1, bad_root, NULL), 0);
}

/* Plain threads: listen, connect, accept and I/O are the system calls. */
static void test_plain_thread(void **state)
{
	int lfd, port, c, a;
	char ch = 0;

	(void)state;
	lfd = weft_tcp_listen("127.0.0.1", 0, 0);
	assert_true(lfd >= 0);
	port = weft_local_port(lfd);
	c = weft_tcp_connect("127.0.0.1", (uint16_t)port);
	assert_true(c >= 0);
	a = weft_accept(lfd, NULL, NULL);
	assert_true(a >= 0);
	assert_int_equal(weft_send(c, "q", 1, 0), 1);
	assert_int_equal(weft_recv(a, &ch, 1, 0), 1);
	assert_int_equal(ch, 'q');
	assert_int_equal(weft_close(a), 0);
	assert_int_equal(weft_read(c, &ch, 1), 0);
	assert_int_equal(weft_close(c), 0);
	assert_int_equal(weft_close(lfd), 0);
	assert_int_equal(weft_tcp_connect("127.0.0.1", (uint16_t)port),
			 -ECONNREFUSED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_many),
		cmocka_unit_test(test_echo_small_ring),
		cmocka_unit_test(test_peer_reset),
		cmocka_unit_test(test_write_closed_peer),
		cmocka_unit_test(test_sigpipe_handler_kept),
		cmocka_unit_test(test_accept_cancel),
		cmocka_unit_test(test_accept_emfile),
		cmocka_unit_test(test_conn_churn),
		cmocka_unit_test(test_udp),
		cmocka_unit_test(test_unix),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_plain_thread),
	};

	return WT_RUN_BOTH_BACKENDS("net", tests, NULL, NULL);
}
