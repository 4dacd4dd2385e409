/* SPDX-License-Identifier: MIT */
/*
 * echo_server: a TCP echo server on weft_serve. Every connection gets a
 * task that sends back whatever it receives, until the client closes.
 *
 *   echo_server [-l ADDR] [-w WORKERS] [-b uring|epoll] [-r] PORT [WORKERS]
 *
 * -l ADDR   listen on ADDR (default: every address, IPv6 and IPv4)
 * -w N      worker threads (default: one per CPU); so does WORKERS
 * -b NAME   I/O backend: uring or epoll (default: uring if available)
 * -r        one SO_REUSEPORT listener and accept loop per worker
 *
 * SIGINT or SIGTERM stops accepting, lets connections finish what they are
 * doing for a moment (GRACE_MS), closes the rest and exits 0. Bad
 * arguments exit 2; a failure prints one line on stderr and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <weft.h>

#define PROG "echo_server"
#define BUF_SIZE (16 * 1024)	/* one receive, on the task's stack */
#define GRACE_MS 250		/* connections' time to finish at shutdown */
#define STACK_SIZE (64 * 1024)	/* a connection task's stack */

/* ---- A connection -------------------------------------------------------- */

static ssize_t send_all(int fd, const char *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = weft_send(fd, p + done, n - done, 0);

		if (w < 0)
			return w;
		done += (size_t)w;
	}
	return (ssize_t)done;
}

/* Receives and sends back until end of stream, an error, or cancellation
 * at shutdown; then closes. What came in is sent back in full before the
 * next receive, so a client that stops reading stops us reading too. */
static int handle(int fd, void *arg)
{
	char buf[BUF_SIZE];
	int one = 1;

	(void)arg;
	/* Echoes go out at once, not when the previous one is acked. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (;;) {
		ssize_t n = weft_recv(fd, buf, sizeof(buf), 0);

		if (n <= 0 || send_all(fd, buf, (size_t)n) < 0)
			break;
	}
	weft_close(fd);
	return 0;
}

/* ---- Serving and shutting down ------------------------------------------- */

/*
 * main_task runs the server:
 *
 *   main_task --group--> serve_task (one, or one per worker with -r)
 *             --spawn--> signal_task: weft_signal_wait, then cancels the
 *                                     group; weft_serve stops accepting,
 *                                     gives connections GRACE_MS, cancels
 *                                     the rest and returns -ECANCELED
 *
 * main_task waits for the group, then cancels and joins signal_task (it
 * has ended already if a signal was the cause), and only then frees the
 * group that signal_task cancels.
 */
struct server {
	const char *host;	/* NULL: every address */
	uint16_t port;
	bool reuseport;
	int workers;		/* of the runtime */
	const char *backend;	/* its I/O driver */
	int nlfd;		/* listeners: 1, or workers with -r */
	int *lfds;
	weft_group *group;
	char err[160];		/* what failed, for main() */
};

static int serve_task(void *arg)
{
	weft_serve_opts opts;
	int rc;

	memset(&opts, 0, sizeof(opts));
	opts.grace_ns = (uint64_t)GRACE_MS * 1000000;
	opts.stack_size = STACK_SIZE;
	rc = weft_serve(*(int *)arg, handle, NULL, &opts);
	/* Cancellation is how the server is asked to stop. */
	return rc == -ECANCELED ? 0 : rc;
}

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
}

static int signal_task(void *arg)
{
	struct server *sv = arg;
	sigset_t set;
	int sig;

	stop_signals(&set);
	sig = weft_signal_wait(&set);
	if (sig < 0)
		return sig; /* cancelled: the server stopped by itself */
	fprintf(stderr, "%s: %s, shutting down\n", PROG,
		sig == SIGINT ? "SIGINT" : "SIGTERM");
	weft_group_cancel(sv->group);
	return 0;
}

/* Installs the SIGINT and SIGTERM handlers before the server starts:
 * weft_signal_wait installs them on its first call, and in an expired
 * deadline scope that call returns at once. Returns 0, the number of a
 * signal that came already, or an error. */
static int signals_install(void)
{
	sigset_t set;
	int rc;

	stop_signals(&set);
	rc = weft_timeout_begin(0);
	if (rc < 0)
		return rc;
	rc = weft_signal_wait(&set);
	weft_timeout_end();
	return rc == -ETIMEDOUT ? 0 : rc;
}

static int fail(struct server *sv, int err, const char *what)
{
	snprintf(sv->err, sizeof(sv->err), "%s: %s", what,
		 weft_strerror(err));
	return err;
}

static int main_task(void *arg)
{
	struct server *sv = arg;
	weft_task *sig_task = NULL;
	char what[96];
	int rc;

	rc = signals_install();
	if (rc > 0)
		return 0; /* told to stop before we started */
	if (rc < 0)
		return fail(sv, rc, "cannot wait for signals");
	for (int i = 0; i < sv->nlfd; i++) {
		weft_listen_opts lo;

		memset(&lo, 0, sizeof(lo));
		lo.backlog = 4096;
		lo.flags = sv->reuseport ? WEFT_LISTEN_REUSEPORT : 0;
		rc = weft_tcp_listen_opts(sv->host, sv->port, &lo);
		if (rc < 0) {
			snprintf(what, sizeof(what), "cannot listen on %s:%u",
				 sv->host ? sv->host : "*",
				 (unsigned)sv->port);
			fail(sv, rc, what);
			goto out;
		}
		sv->lfds[i] = rc;
	}
	rc = weft_group_new(&sv->group);
	for (int i = 0; rc == 0 && i < sv->nlfd; i++)
		rc = weft_group_spawn(sv->group, serve_task, &sv->lfds[i]);
	if (rc == 0)
		rc = weft_spawn(&sig_task, signal_task, sv);
	if (rc < 0) {
		fail(sv, rc, "cannot start the server");
		if (sv->group)
			weft_group_cancel(sv->group);
	} else {
		printf("%s: listening on %s:%u (%d workers, %s%s)\n", PROG,
		       sv->host ? sv->host : "*", (unsigned)sv->port,
		       sv->workers, sv->backend,
		       sv->reuseport ? ", a listener per worker" : "");
		fflush(stdout);
	}
	if (sv->group) {
		/* 0 once every serving task was cancelled; or the first
		 * error of one, which cancels the others. */
		int wrc = weft_group_wait(sv->group);

		if (wrc < 0 && rc == 0)
			rc = fail(sv, wrc, "serving failed");
	}
	if (sig_task) {
		weft_cancel(sig_task); /* -ESRCH if it has ended */
		weft_join(sig_task, NULL);
	}
	weft_group_free(sv->group);
out:
	for (int i = 0; i < sv->nlfd; i++)
		if (sv->lfds[i] >= 0)
			weft_close(sv->lfds[i]);
	return rc < 0 ? rc : 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: %s [-l ADDR] [-w WORKERS] [-b uring|epoll] [-r] "
		"PORT [WORKERS]\n", PROG);
	exit(2);
}

/* A decimal number in [min, max], or usage(). */
static unsigned long number(const char *s, unsigned long min,
			    unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	struct server sv;
	weft_config cfg;
	weft_rt *rt;
	int opt, rc, result = 0;

	memset(&sv, 0, sizeof(sv));
	memset(&cfg, 0, sizeof(cfg));
	while ((opt = getopt(argc, argv, "l:w:b:r")) != -1) {
		switch (opt) {
		case 'l':
			sv.host = optarg;
			break;
		case 'w':
			cfg.workers = (unsigned)number(optarg, 1, 1024);
			break;
		case 'b':
			if (strcmp(optarg, "uring") == 0)
				cfg.io_backend = WEFT_IO_URING;
			else if (strcmp(optarg, "epoll") == 0)
				cfg.io_backend = WEFT_IO_EPOLL;
			else
				usage();
			break;
		case 'r':
			sv.reuseport = true;
			break;
		default:
			usage();
		}
	}
	if (argc - optind < 1 || argc - optind > 2)
		usage();
	sv.port = (uint16_t)number(argv[optind], 1, 65535);
	if (argc - optind == 2)
		cfg.workers = (unsigned)number(argv[optind + 1], 1, 1024);

	rc = weft_rt_new(&rt, &cfg);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot start the runtime: %s\n", PROG,
			weft_strerror(rc));
		return 1;
	}
	sv.workers = weft_rt_workers(rt);
	sv.backend = weft_rt_io_backend(rt) == WEFT_IO_URING ? "io_uring"
							     : "epoll";
	sv.nlfd = sv.reuseport ? sv.workers : 1;
	sv.lfds = malloc((size_t)sv.nlfd * sizeof(int));
	if (!sv.lfds) {
		weft_rt_free(rt);
		fprintf(stderr, "%s: %s\n", PROG, weft_strerror(-ENOMEM));
		return 1;
	}
	for (int i = 0; i < sv.nlfd; i++)
		sv.lfds[i] = -1;
	rc = weft_rt_block_on(rt, main_task, &sv, &result);
	weft_rt_free(rt);
	free(sv.lfds);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot run: %s\n", PROG,
			weft_strerror(rc));
		return 1;
	}
	if (result < 0) {
		fprintf(stderr, "%s: %s\n", PROG, sv.err);
		return 1;
	}
	return 0;
}
