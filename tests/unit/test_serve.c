/* SPDX-License-Identifier: MIT */
/*
 * weft_serve, under both I/O backends (the whole suite runs once with
 * io_uring, skipped with a note where it cannot be set up, and once with
 * epoll), over loopback TCP: echo handlers for several concurrent clients,
 * with handler stacks of the size asked for and TCP_NODELAY set; max_connections = 2 with 5
 * clients (never more than 2 handlers at once, all 5 served); cancelling
 * (or a deadline expiring on) the serving task while handlers are busy:
 * a handler that finishes within the grace period ends normally, handlers
 * blocked in weft_read are cancelled after it, and weft_serve returns only
 * after every handler ended; in a forked child with RLIMIT_NOFILE
 * exhausted, accept fails with EMFILE and the server waits and serves
 * again once fds are free; argument checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "weft_test_io.h"

/* --- a server task ------------------------------------------------------- */

struct server {
	int lfd;
	uint16_t port;
	int (*handler)(int fd, void *arg);
	void *arg;
	weft_serve_opts opts;
	uint64_t deadline_ns;		/* 0: none */
	_Atomic int returned;		/* weft_serve has returned */
	weft_task *task;
};

static int server_main(void *arg)
{
	struct server *s = arg;
	int rc;

	if (s->deadline_ns)
		WT_CHECK_EQ(weft_timeout_begin(s->deadline_ns), 0);
	rc = weft_serve(s->lfd, s->handler, s->arg, &s->opts);
	if (s->deadline_ns)
		WT_CHECK_EQ(weft_timeout_end(), 1);
	atomic_store(&s->returned, 1);
	return rc;
}

static void server_start(struct server *s)
{
	int port;

	atomic_store(&s->returned, 0);
	s->lfd = weft_tcp_listen("127.0.0.1", 0, 0);
	WT_CHECK(s->lfd >= 0);
	port = weft_local_port(s->lfd);
	WT_CHECK(port > 0);
	s->port = (uint16_t)port;
	WT_CHECK_EQ(weft_spawn(&s->task, server_main, s), 0);
}

/* --- echo ------------------------------------------------------------------ */

static _Atomic int live, max_live, served;

static void live_enter(void)
{
	int n = atomic_fetch_add(&live, 1) + 1;
	int m = atomic_load(&max_live);

	while (n > m && !atomic_compare_exchange_weak(&max_live, &m, n))
		;
}

static int echo_handler(int fd, void *arg)
{
	char buf[512];
	ssize_t r;
	int nodelay = 0;
	socklen_t len = sizeof(nodelay);

	(void)arg;
	live_enter();
	WT_CHECK_EQ(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len),
		    0);
	WT_CHECK(nodelay != 0); /* weft_serve sets it on TCP connections */
	/* Uses 32 KiB of stack: the handler stacks are 64 KiB (opts). */
	WT_CHECK_EQ(wt_stack_use(32), wt_stack_expect(32));
	while ((r = weft_read(fd, buf, sizeof(buf))) > 0)
		WT_CHECK_EQ(weft_write_all(fd, buf, (size_t)r), r);
	WT_CHECK_EQ(r, 0);
	atomic_fetch_sub(&live, 1);
	atomic_fetch_add(&served, 1);
	WT_CHECK_EQ(weft_close(fd), 0);
	return 0;
}

struct client {
	uint16_t port;
	int id;
	int rounds;
	uint64_t hold_ns;	/* stay connected this long after the first
				   echo */
};

/* Connects, sends `rounds` messages and checks their echoes. */
static int echo_client(void *arg)
{
	struct client *c = arg;
	char msg[64], back[64];
	int fd = weft_tcp_connect("127.0.0.1", c->port);

	WT_CHECK(fd >= 0);
	if (fd < 0)
		return -1;
	for (int i = 0; i < c->rounds; i++) {
		int n = snprintf(msg, sizeof(msg), "client %d message %d", c->id,
				 i);

		WT_CHECK_EQ(weft_write_all(fd, msg, (size_t)n), n);
		WT_CHECK_EQ(weft_read_exact(fd, back, (size_t)n), n);
		WT_CHECK(memcmp(msg, back, (size_t)n) == 0);
		if (i == 0 && c->hold_ns)
			WT_CHECK_EQ(weft_sleep(c->hold_ns), 0);
	}
	WT_CHECK_EQ(weft_shutdown(fd, SHUT_WR), 0);
	WT_CHECK_EQ(weft_read(fd, back, sizeof(back)), 0); /* handler closed */
	WT_CHECK_EQ(weft_close(fd), 0);
	return 0;
}

#define MAXC 16

static int clients_root(void *arg)
{
	unsigned max = (unsigned)(uintptr_t)arg;
	unsigned nclients = max ? 5 : 12;
	struct server s = { .handler = echo_handler };
	struct client c[MAXC];
	weft_task *t[MAXC];
	int rc = 0;

	atomic_store(&live, 0);
	atomic_store(&max_live, 0);
	atomic_store(&served, 0);
	s.opts.max_connections = max;
	s.opts.stack_size = 64 * 1024;
	server_start(&s);
	for (unsigned i = 0; i < nclients; i++) {
		c[i] = (struct client){ s.port, (int)i, 20,
					max ? 3 * WT_MS : 0 };
		WT_CHECK_EQ(weft_spawn(&t[i], echo_client, &c[i]), 0);
	}
	for (unsigned i = 0; i < nclients; i++)
		WT_CHECK_EQ(weft_join(t[i], NULL), 0);
	WT_CHECK_EQ(atomic_load(&served), (int)nclients);
	WT_CHECK_EQ(atomic_load(&s.returned), 0); /* still serving */
	WT_CHECK_EQ(weft_cancel(s.task), 0);
	WT_CHECK_EQ(weft_join(s.task, &rc), 0);
	WT_CHECK_EQ(rc, -ECANCELED);
	WT_CHECK_EQ(atomic_load(&live), 0);
	if (max)
		WT_CHECK(atomic_load(&max_live) <= (int)max);
	WT_CHECK(atomic_load(&max_live) >= 1);
	WT_CHECK_EQ(weft_close(s.lfd), 0);
	return 0;
}

static void test_echo_clients(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(3, clients_root, (void *)(uintptr_t)0), 0);
}

static void test_max_connections(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(3, clients_root, (void *)(uintptr_t)2), 0);
	printf("max_connections 2: at most %d handlers at once\n",
	       atomic_load(&max_live));
}

/* --- shutdown: grace, then cancellation ----------------------------------- */

/*
 * A client sends one byte. 'A': the handler sleeps a little, replies
 * "done" and ends (within the grace period). 'B': the handler reads again
 * and so waits until it is cancelled. end_seq numbers the handlers in the
 * order they end.
 */
static _Atomic int got_first, ended, end_seq;
static _Atomic int a_sleep_rc, a_end, b_cancelled, b_other;

static int grace_handler(int fd, void *arg)
{
	char c = 0, more;
	ssize_t r;

	(void)arg;
	r = weft_read(fd, &c, 1);
	WT_CHECK_EQ(r, 1);
	atomic_fetch_add(&got_first, 1);
	if (c == 'A') {
		atomic_store(&a_sleep_rc, weft_sleep(20 * WT_MS));
		WT_CHECK_EQ(weft_write_all(fd, "done", 4), 4);
		atomic_store(&a_end, atomic_fetch_add(&end_seq, 1));
	} else if (c == 'B') {
		r = weft_read(fd, &more, 1);
		if (r == -ECANCELED)
			atomic_fetch_add(&b_cancelled, 1);
		else
			atomic_fetch_add(&b_other, 1);
		atomic_fetch_add(&end_seq, 1);
	}
	WT_CHECK_EQ(weft_close(fd), 0);
	atomic_fetch_add(&ended, 1);
	return 0;
}

static _Atomic int ended_at_return;

static int grace_server_main(void *arg)
{
	struct server *s = arg;
	int rc;

	if (s->deadline_ns)
		WT_CHECK_EQ(weft_timeout_begin(s->deadline_ns), 0);
	rc = weft_serve(s->lfd, s->handler, s->arg, &s->opts);
	atomic_store(&ended_at_return, atomic_load(&ended));
	if (s->deadline_ns)
		WT_CHECK_EQ(weft_timeout_end(), 1);
	return rc;
}

#define NB 2 /* clients whose handlers wait in weft_read */

/* Connects and sends one byte; the connection may wait in the backlog. */
static int grace_connect(uint16_t port, char c)
{
	int fd = weft_tcp_connect("127.0.0.1", port);

	WT_CHECK(fd >= 0);
	if (fd >= 0)
		WT_CHECK_EQ(weft_write_all(fd, &c, 1), 1);
	return fd;
}

static int grace_root(void *arg)
{
	bool by_deadline = arg != NULL;
	struct server s = { .handler = grace_handler };
	int a, b[NB], rc = 0, port;
	char reply[8];

	atomic_store(&got_first, 0);
	atomic_store(&ended, 0);
	atomic_store(&end_seq, 0);
	atomic_store(&a_sleep_rc, 1);
	atomic_store(&a_end, -1);
	atomic_store(&b_cancelled, 0);
	atomic_store(&b_other, 0);
	atomic_store(&ended_at_return, -1);
	s.opts.grace_ns = 200 * WT_MS;
	s.lfd = weft_tcp_listen("127.0.0.1", 0, 0);
	WT_CHECK(s.lfd >= 0);
	port = weft_local_port(s.lfd);
	WT_CHECK(port > 0);
	if (by_deadline) {
		/* The connections wait in the backlog, their bytes sent,
		 * before the server starts: it takes them at once, well
		 * before its deadline. */
		a = grace_connect((uint16_t)port, 'A');
		for (int i = 0; i < NB; i++)
			b[i] = grace_connect((uint16_t)port, 'B');
		s.deadline_ns = WT_SCALE(100, 500) * WT_MS;
		WT_CHECK_EQ(weft_spawn(&s.task, grace_server_main, &s), 0);
	} else {
		WT_CHECK_EQ(weft_spawn(&s.task, grace_server_main, &s), 0);
		a = grace_connect((uint16_t)port, 'A');
		for (int i = 0; i < NB; i++)
			b[i] = grace_connect((uint16_t)port, 'B');
		WT_TASK_WAIT(atomic_load(&got_first) == NB + 1);
		WT_CHECK_EQ(weft_cancel(s.task), 0);
	}
	WT_CHECK_EQ(weft_join(s.task, &rc), 0);
	WT_CHECK_EQ(rc, by_deadline ? -ETIMEDOUT : -ECANCELED);
	/* Every handler had ended when weft_serve returned. */
	WT_CHECK_EQ(atomic_load(&ended_at_return), NB + 1);
	WT_CHECK_EQ(atomic_load(&got_first), NB + 1);
	/* A was left to finish: its sleep was not interrupted, it replied,
	 * and it ended before the handlers that were cancelled. */
	WT_CHECK_EQ(atomic_load(&a_sleep_rc), 0);
	WT_CHECK_EQ(atomic_load(&a_end), 0);
	WT_CHECK_EQ(weft_read_exact(a, reply, 4), 4);
	WT_CHECK(memcmp(reply, "done", 4) == 0);
	/* The handlers blocked in weft_read were cancelled. */
	WT_CHECK_EQ(atomic_load(&b_cancelled), NB);
	WT_CHECK_EQ(atomic_load(&b_other), 0);
	for (int i = 0; i < NB; i++) {
		/* Their connections were closed by the handlers. */
		WT_CHECK_EQ(weft_read(b[i], reply, sizeof(reply)), 0);
		WT_CHECK_EQ(weft_close(b[i]), 0);
	}
	WT_CHECK_EQ(weft_close(a), 0);
	WT_CHECK_EQ(weft_close(s.lfd), 0);
	return 0;
}

static void test_cancel_grace(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, grace_root, NULL), 0);
}

static void test_deadline_grace(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, grace_root, (void *)1), 0);
}

/* --- EMFILE at accept, in a forked child ------------------------------------ */

#define FILL_MAX 256

static int emfile_root(void *arg)
{
	struct server s = { .handler = echo_handler };
	struct sockaddr_in sin;
	struct rlimit rl;
	int fill[FILL_MAX], nfill = 0, cfd, probe, rc = 0;
	char back[8];

	(void)arg;
	atomic_store(&served, 0);
	atomic_store(&live, 0);
	server_start(&s);
	/* The client's socket exists before the table is full; connecting
	 * needs no new fd. */
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	WT_CHECK(cfd >= 0);
	probe = dup(0);
	WT_CHECK(probe >= 0);
	close(probe);
	WT_CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = (rlim_t)probe + 8;
	WT_CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
	while (nfill < FILL_MAX && (fill[nfill] = dup(0)) >= 0)
		nfill++;
	WT_CHECK(nfill < FILL_MAX);
	WT_CHECK(dup(0) < 0); /* EMFILE: accept cannot get an fd either */

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(s.port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(cfd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		WT_CHECK_EQ(errno, EINPROGRESS);
	WT_CHECK(weft_poll(cfd, POLLOUT) > 0);
	WT_CHECK_EQ(weft_write_all(cfd, "ping", 4), 4);
	/* The server keeps failing to accept, pausing in between. */
	WT_CHECK_EQ(weft_sleep(150 * WT_MS), 0);
	WT_CHECK_EQ(atomic_load(&served), 0);
	WT_CHECK_EQ(atomic_load(&live), 0);
	WT_CHECK_EQ(atomic_load(&s.returned), 0);
	/* Free some fds: it serves again. */
	for (int i = 0; i < 4 && nfill > 0; i++)
		close(fill[--nfill]);
	WT_CHECK_EQ(weft_read_exact(cfd, back, 4), 4);
	WT_CHECK(memcmp(back, "ping", 4) == 0);
	WT_CHECK_EQ(weft_shutdown(cfd, SHUT_WR), 0);
	WT_CHECK_EQ(weft_read(cfd, back, sizeof(back)), 0);
	WT_CHECK_EQ(atomic_load(&served), 1);
	WT_CHECK_EQ(weft_cancel(s.task), 0);
	WT_CHECK_EQ(weft_join(s.task, &rc), 0);
	WT_CHECK_EQ(rc, -ECANCELED);
	while (nfill > 0)
		close(fill[--nfill]);
	WT_CHECK_EQ(weft_close(cfd), 0);
	WT_CHECK_EQ(weft_close(s.lfd), 0);
	return 0;
}

static int emfile_child(void)
{
	weft_config c = wt_cfg(2);
	int r = -1, rc;

	c.io_backend = wt_backend;
	rc = weft_run(&c, emfile_root, NULL, &r);
	WT_CHECK_EQ(rc, 0);
	WT_CHECK_EQ(r, 0);
	return wt_take_failures() ? 1 : 0;
}

static void test_emfile(void **state)
{
	int status = 0, i;
	pid_t pid, w = 0;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(emfile_child());
	/* Bounded: 60 s in 10 ms steps, then the child is killed. */
	for (i = 0; i < 6000; i++) {
		w = waitpid(pid, &status, WNOHANG);
		if (w != 0)
			break;
		wt_nap(10 * WT_MS);
	}
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("the EMFILE child did not finish");
	}
	assert_int_equal(w, pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* --- arguments ---------------------------------------------------------------- */

static int never_handler(int fd, void *arg)
{
	(void)arg;
	WT_CHECK(0);
	return weft_close(fd);
}

static int args_root(void *arg)
{
	weft_serve_opts o;
	int lfd = weft_tcp_listen("127.0.0.1", 0, 0);
	int p[2], sfd, ufd;

	(void)arg;
	WT_CHECK(lfd >= 0);
	WT_CHECK_EQ(weft_serve(lfd, NULL, NULL, NULL), -EINVAL);
	memset(&o, 0, sizeof(o));
	o.reserved[3] = 1;
	WT_CHECK_EQ(weft_serve(lfd, never_handler, NULL, &o), -EINVAL);
	memset(&o, 0, sizeof(o));
	o.stack_size = (size_t)1 << 50;
	WT_CHECK_EQ(weft_serve(lfd, never_handler, NULL, &o), -EINVAL);
	WT_CHECK_EQ(weft_serve(-1, never_handler, NULL, NULL), -EBADF);
	WT_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	WT_CHECK_EQ(weft_serve(p[0], never_handler, NULL, NULL), -ENOTSOCK);
	close(p[0]);
	close(p[1]);
	/* Not listening, and not a stream socket. */
	sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	WT_CHECK(sfd >= 0);
	WT_CHECK_EQ(weft_serve(sfd, never_handler, NULL, NULL), -EINVAL);
	close(sfd);
	ufd = weft_udp_bind("127.0.0.1", 0);
	WT_CHECK(ufd >= 0);
	WT_CHECK_EQ(weft_serve(ufd, never_handler, NULL, NULL), -EINVAL);
	WT_CHECK_EQ(weft_close(ufd), 0);
	/* Already cancelled: returns at once. */
	WT_CHECK_EQ(weft_cancel(weft_current()), 0);
	WT_CHECK_EQ(weft_serve(lfd, never_handler, NULL, NULL), -ECANCELED);
	WT_CHECK_EQ(weft_close(lfd), 0);
	return 0;
}

static void test_args(void **state)
{
	int lfd;

	(void)state;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(weft_serve(lfd, never_handler, NULL, NULL), -EPERM);
	close(lfd);
	assert_int_equal(wt_run_io(1, args_root, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_echo_clients),
		cmocka_unit_test(test_max_connections),
		cmocka_unit_test(test_cancel_grace),
		cmocka_unit_test(test_deadline_grace),
		cmocka_unit_test(test_emfile),
	};

	return WT_RUN_BOTH_BACKENDS("serve", tests, NULL, NULL);
}
