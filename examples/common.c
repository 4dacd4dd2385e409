/* SPDX-License-Identifier: MIT */
/*
 * common.c: the examples' shared scaffolding (common.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

/* ---- Command line -------------------------------------------------------- */

static const char *prog = "example"; /* ex_init's */
static const char *usage_args = "";

void ex_init(const char *name, const char *args)
{
	prog = name;
	usage_args = args;
}

_Noreturn void ex_usage(void)
{
	fprintf(stderr, "usage: %s %s\n", prog, usage_args);
	exit(2);
}

unsigned long ex_number(const char *s, unsigned long min, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		ex_usage();
	return v;
}

bool ex_runtime_opt(weft_config *cfg, int opt, const char *arg)
{
	switch (opt) {
	case 'w':
		cfg->workers = (unsigned)ex_number(arg, 1, 1024);
		return true;
	case 'b':
		if (strcmp(arg, "uring") == 0)
			cfg->io_backend = WEFT_IO_URING;
		else if (strcmp(arg, "epoll") == 0)
			cfg->io_backend = WEFT_IO_EPOLL;
		else
			ex_usage();
		return true;
	default:
		return false;
	}
}

/* ---- Signals and sockets ------------------------------------------------- */

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
}

int ex_signals_listen(void)
{
	sigset_t set;

	stop_signals(&set);
	return weft_signal_listen(&set);
}

int ex_signal_wait(void)
{
	sigset_t set;

	stop_signals(&set);
	return weft_signal_wait(&set);
}

ssize_t ex_send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	size_t done = 0;

	while (done < n) {
		ssize_t w = weft_send(fd, p + done, n - done, 0);

		if (w < 0)
			return w;
		done += (size_t)w;
	}
	return (ssize_t)done;
}

/* ---- Servers ------------------------------------------------------------- */

bool ex_server_opt(struct ex_server *sv, int opt, const char *arg)
{
	switch (opt) {
	case 'l':
		sv->host = arg;
		return true;
	case 'r':
		sv->reuseport = true;
		return true;
	default:
		return ex_runtime_opt(&sv->cfg, opt, arg);
	}
}

/*
 * main_task runs the server:
 *
 *   main_task --group--> serve_task (one, or one per worker with -r):
 *                        the example's serve()
 *             --spawn--> signal_task: ex_signal_wait, then cancels the
 *                                     group; weft_serve stops accepting,
 *                                     gives connections their grace
 *                                     period, cancels the rest and
 *                                     returns -ECANCELED
 *
 * main_task waits for the group, then cancels and joins signal_task (it
 * has ended already if a signal was the cause), and only then frees the
 * group that signal_task cancels.
 */
struct run {
	const struct ex_server *sv;
	int workers;		/* of the runtime */
	const char *backend;	/* its I/O driver */
	int nlfd;		/* listeners: 1, or workers with -r */
	struct listener {
		const struct ex_server *sv;
		int fd;
	} *lfds;
	weft_group *group;
	char err[160];		/* what failed, for ex_server_run */
};

static int serve_task(void *arg)
{
	const struct listener *l = arg;
	int rc = l->sv->serve(l->fd, l->sv->arg);

	/* Cancellation is how the server is asked to stop. */
	return rc == -ECANCELED ? 0 : rc;
}

static int signal_task(void *arg)
{
	struct run *r = arg;
	int sig = ex_signal_wait();

	if (sig < 0)
		return sig; /* cancelled: the server stopped by itself */
	fprintf(stderr, "%s: %s, shutting down\n", prog,
		sig == SIGINT ? "SIGINT" : "SIGTERM");
	weft_group_cancel(r->group);
	return 0;
}

static int fail(struct run *r, int err, const char *what)
{
	snprintf(r->err, sizeof(r->err), "%s: %s", what, weft_strerror(err));
	return err;
}

static int listen_all(struct run *r)
{
	const struct ex_server *sv = r->sv;
	char what[96];

	for (int i = 0; i < r->nlfd; i++) {
		weft_listen_opts lo;
		int fd;

		memset(&lo, 0, sizeof(lo));
		lo.backlog = 4096;
		lo.flags = sv->reuseport ? WEFT_LISTEN_REUSEPORT : 0;
		fd = weft_tcp_listen_opts(sv->host, sv->port, &lo);
		if (fd < 0) {
			snprintf(what, sizeof(what), "cannot listen on %s:%u",
				 sv->host ? sv->host : "*",
				 (unsigned)sv->port);
			return fail(r, fd, what);
		}
		r->lfds[i].fd = fd;
	}
	return 0;
}

static int main_task(void *arg)
{
	struct run *r = arg;
	const struct ex_server *sv = r->sv;
	weft_task *sig_task = NULL;
	int rc;

	/* From here on a SIGINT or SIGTERM waits for signal_task. */
	rc = ex_signals_listen();
	if (rc < 0)
		return fail(r, rc, "cannot wait for signals");
	rc = listen_all(r);
	if (rc < 0)
		goto out;
	rc = weft_group_new(&r->group);
	for (int i = 0; rc == 0 && i < r->nlfd; i++)
		rc = weft_group_spawn(r->group, serve_task, &r->lfds[i]);
	if (rc == 0)
		rc = weft_spawn(&sig_task, signal_task, r);
	if (rc < 0) {
		fail(r, rc, "cannot start the server");
		if (r->group)
			weft_group_cancel(r->group);
	} else {
		printf("%s: listening on %s:%u (%d workers, %s%s)\n", prog,
		       sv->host ? sv->host : "*", (unsigned)sv->port,
		       r->workers, r->backend,
		       sv->reuseport ? ", a listener per worker" : "");
		fflush(stdout);
	}
	if (r->group) {
		/* 0 once every serving task was cancelled; or the first
		 * error of one, which cancels the others. */
		int wrc = weft_group_wait(r->group);

		if (wrc < 0 && rc == 0)
			rc = fail(r, wrc, "serving failed");
	}
	if (sig_task) {
		weft_cancel(sig_task); /* -ESRCH if it has ended */
		weft_join(sig_task, NULL);
	}
	weft_group_free(r->group);
out:
	for (int i = 0; i < r->nlfd; i++)
		if (r->lfds[i].fd >= 0)
			weft_close(r->lfds[i].fd);
	return rc < 0 ? rc : 0;
}

int ex_server_run(const struct ex_server *sv)
{
	struct run r;
	weft_rt *rt;
	int rc, result = 0;

	memset(&r, 0, sizeof(r));
	r.sv = sv;
	rc = weft_rt_new(&rt, &sv->cfg);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot start the runtime: %s\n", prog,
			weft_strerror(rc));
		return 1;
	}
	r.workers = weft_rt_workers(rt);
	r.backend = weft_rt_io_backend(rt) == WEFT_IO_URING ? "io_uring"
							    : "epoll";
	r.nlfd = sv->reuseport ? r.workers : 1;
	r.lfds = malloc((size_t)r.nlfd * sizeof(*r.lfds));
	if (!r.lfds) {
		weft_rt_free(rt);
		fprintf(stderr, "%s: %s\n", prog, weft_strerror(-ENOMEM));
		return 1;
	}
	for (int i = 0; i < r.nlfd; i++) {
		r.lfds[i].sv = sv;
		r.lfds[i].fd = -1;
	}
	rc = weft_rt_block_on(rt, main_task, &r, &result);
	weft_rt_free(rt);
	free(r.lfds);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot run: %s\n", prog,
			weft_strerror(rc));
		return 1;
	}
	if (result < 0) {
		fprintf(stderr, "%s: %s\n", prog, r.err);
		return 1;
	}
	return 0;
}
