/* SPDX-License-Identifier: MIT */
/*
 * Choosing the I/O backend and the calls the scheduler makes into it
 * (driver.h). io_uring is the default; epoll is used when io_uring cannot be
 * set up (ENOSYS on old kernels, EPERM under seccomp profiles such as
 * Docker's default or with kernel.io_uring_disabled, ENOMEM under a small
 * RLIMIT_MEMLOCK on old kernels), and on request.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include "driver.h"

#define IO_ENTRIES_DEFAULT 256u
#define IO_ENTRIES_MAX 32768u

static int backend_requested(const weft_config *c, int *kind)
{
	const char *e;

	if (c->io_backend > WEFT_IO_EPOLL)
		return -EINVAL;
	*kind = (int)c->io_backend;
	if (*kind != WEFT_IO_AUTO)
		return 0;
	e = getenv("WEFT_IO");
	if (!e || !*e || !strcmp(e, "auto"))
		return 0;
	if (!strcmp(e, "uring"))
		*kind = WEFT_IO_URING;
	else if (!strcmp(e, "epoll"))
		*kind = WEFT_IO_EPOLL;
	else
		return -EINVAL;
	return 0;
}

/* Writes to a socket whose peer has gone raise SIGPIPE, which kills the
 * process by default; weft's calls return -EPIPE instead. io_uring's
 * IORING_OP_WRITE has no MSG_NOSIGNAL, so, like Rust's standard library,
 * weft ignores SIGPIPE, unless the program installed its own handling. */
static void ignore_sigpipe(void)
{
	struct sigaction sa;

	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL &&
	    !(sa.sa_flags & SA_SIGINFO)) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &sa, NULL);
	}
}

static int driver_new(struct worker *w, int kind, unsigned entries)
{
	struct io_driver *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->epfd = -1;
	d->kind = kind;
	w->io = d;
	/* uring: a blocking eventfd, so the read waits in the kernel (a
	 * non-blocking one could complete at once with -EAGAIN, forever). */
	d->efd = eventfd(0, EFD_CLOEXEC |
				    (kind == WEFT_IO_EPOLL ? EFD_NONBLOCK : 0));
	if (d->efd < 0)
		return -errno;
	rc = kind == WEFT_IO_URING ? uring_setup(d, entries) : epoll_setup(d);
	return rc;
}

static void driver_free(struct worker *w)
{
	struct io_driver *d = w->io;

	if (!d)
		return;
	uring_teardown(d);
	epoll_teardown(d);
	if (d->efd >= 0)
		close(d->efd);
	free(d);
	w->io = NULL;
}

void weft__io_fini(struct weft_rt *rt)
{
	for (int i = 0; rt->workers && i < rt->nworkers; i++)
		if (rt->workers[i])
			driver_free(rt->workers[i]);
	epoll_fdtab_free(rt);
}

int weft__io_init(struct weft_rt *rt, const weft_config *c)
{
	unsigned entries = c->io_entries ? c->io_entries : IO_ENTRIES_DEFAULT;
	int kind, rc;

	if (entries > IO_ENTRIES_MAX)
		return -EINVAL;
	rc = backend_requested(c, &kind);
	if (rc)
		return rc;
	ignore_sigpipe();
	if (kind != WEFT_IO_EPOLL) {
		rc = 0;
		for (int i = 0; i < rt->nworkers && rc == 0; i++)
			rc = driver_new(rt->workers[i], WEFT_IO_URING, entries);
		if (rc == 0) {
			rt->io_kind = WEFT_IO_URING;
			return 0;
		}
		weft__io_fini(rt);
		if (kind == WEFT_IO_URING || rc == -EMFILE || rc == -ENFILE)
			return rc;
	}
	rt->io_kind = WEFT_IO_EPOLL;
	rt->fdtab = calloc(1024, sizeof(*rt->fdtab));
	if (!rt->fdtab)
		return -ENOMEM;
	for (int i = 0; i < rt->nworkers; i++) {
		rc = driver_new(rt->workers[i], WEFT_IO_EPOLL, 0);
		if (rc) {
			weft__io_fini(rt);
			return rc;
		}
	}
	return 0;
}

int weft_rt_io_backend(const weft_rt *rt)
{
	return rt ? rt->io_kind : -EINVAL;
}

void weft__io_thread_start(struct worker *w)
{
	if (w->io->kind == WEFT_IO_URING)
		uring_thread_start(w->io);
}

/*
 * Tasks that completions wake go to this worker's queue. Waking another
 * worker costs both a system call; for each task it would mostly move work
 * between workers that each have their own connections. So the wakes of
 * one batch notify once, only when the batch brought more than one task
 * (then another worker could run some of them in parallel), and only a
 * worker that waits for no I/O of its own (idle.c).
 */
static int reap_batch(struct worker *w, uint64_t deadline, bool block)
{
	int woken;

	w->reaping = true;
	woken = w->io->kind == WEFT_IO_URING ? uring_poll(w, deadline, block)
					     : epoll_poll(w, deadline, block);
	w->reaping = false;
	if (woken > 0)
		w->io_quiet = false; /* its I/O moves again (idle.c) */
	/* Not from a park: the parked worker is on a sleepers list itself
	 * and could pop itself, then pass the wake on (rule 3) to a worker
	 * that waits for its own I/O. It runs these tasks in a moment. */
	if (woken > 1 && !block && w->rt->nworkers > 1)
		idle_notify_free(w->rt);
	return woken;
}

int weft__io_poll(struct worker *w)
{
	return reap_batch(w, 0, false);
}

int weft__io_wait(struct worker *w, uint64_t deadline)
{
	return reap_batch(w, deadline, true);
}

void weft__io_unpark(struct worker *w)
{
	uint64_t one = 1;

	/* Fails only if the counter would overflow, which needs 2^64 wakes
	 * nobody read: there is one pending then anyway. */
	if (write(w->io->efd, &one, sizeof(one)) < 0)
		return;
}
