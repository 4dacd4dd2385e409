/* SPDX-License-Identifier: MIT */
/*
 * weft_serve (include/weft/net.h): accept loop, one handler task per
 * connection, and a structured shutdown.
 *
 * Who owns what:
 *  - The serving task owns `struct serve` (on its stack) and the list of
 *    connections `conns`: it alone links, unlinks, cancels, joins and frees
 *    them. Every handler task is joined before weft_serve returns, so no
 *    handler touches `struct serve` after it is gone.
 *  - A handler task owns its fd (the handler closes it). If the task never
 *    runs (spawn failed, or it was cancelled before it started), the
 *    serving task closes the fd at the join (conn.started tells).
 *  - A handler that ends pushes its conn on `done`, a lock-free stack
 *    (release CAS; the serving task takes it whole with an acquire
 *    exchange), so the serving task joins and frees finished handlers as it
 *    goes instead of keeping them all until the end.
 *
 * Back-pressure: with max_connections, a semaphore holds that many permits;
 * the serving task takes one before each accept and a handler gives it back
 * when it ends, so at most max_connections handlers run at once and the
 * connections beyond wait in the kernel's backlog.
 *
 * Shutdown (the serving task is cancelled or its deadline expires, which
 * weft_accept, the permit wait or a back-off sleep reports):
 *  1. Stop accepting.
 *  2. Hold (internal.h): cancellation and the expired deadline are lifted,
 *     or the very cause of the shutdown would cut every wait below short.
 *     Inside the hold a deadline scope of grace_ns bounds the joins: the
 *     handlers that end within it are joined as they end.
 *  3. Cancel the handlers still running, and join every one of them (still
 *     held: this wait has no bound, a handler must honour cancellation).
 *  4. End the hold and return -ECANCELED or -ETIMEDOUT.
 * The scope of step 2 opens and closes strictly inside the hold, so the
 * hold restores the task's own deadline.
 * A permanent accept error (-EBADF, -ENOTSOCK, -EINVAL: lfd was closed or
 * is not listening) takes the same path and returns that error.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include "internal.h"

#define SERVE_GRACE_DEFAULT (5ull * 1000000000ull)
#define BACKOFF_MIN (10ull * 1000000ull)	/* 10 ms */
#define BACKOFF_MAX (200ull * 1000000ull)	/* 200 ms */

struct serve;

/* One connection and its handler task. */
struct conn {
	struct conn *prev, *next;	/* in serve.conns: serving task only */
	struct conn *done_next;		/* in serve.done, once pushed */
	weft_task *task;		/* serving task only */
	struct serve *sv;		/* constant */
	int fd;				/* constant: the handler's */
	/* Set by the handler task when it starts; read by the serving task
	 * after the join (which orders it). */
	_Atomic bool started;
};

struct serve {
	int (*handler)(int fd, void *arg);	/* constant */
	void *arg;				/* constant */
	bool limited;				/* constant: sem is used */
	weft_sem sem;				/* permits: free slots */
	struct conn *conns;			/* serving task only */
	/* Handlers that ended: pushed by them (release CAS), taken whole
	 * by the serving task (acquire exchange). */
	_Atomic(struct conn *) done;
};

static int handler_main(void *arg)
{
	struct conn *c = arg;
	struct serve *sv = c->sv;
	struct conn *head;

	STORE(&c->started, true, relaxed); /* the join orders it */
	sv->handler(c->fd, sv->arg);
	if (sv->limited)
		weft_sem_release(&sv->sem); /* never suspends */
	/* Release: pairs with the acquire exchange in reap(); the serving
	 * task then joins us, so nothing after this may touch sv or c. */
	head = LOAD(&sv->done, relaxed);
	do
		c->done_next = head;
	while (!CAS(&sv->done, &head, c, release, relaxed));
	return 0;
}

static void conn_unlink(struct serve *sv, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		sv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
}

/* After the join: a handler that never ran leaves its fd and its permit
 * to us. */
static void conn_finish(struct serve *sv, struct conn *c)
{
	if (!LOAD(&c->started, relaxed)) {
		weft_close(c->fd);
		if (sv->limited)
			weft_sem_release(&sv->sem);
	}
	conn_unlink(sv, c);
	free(c);
}

/* Joins and frees the handlers that have ended. Their joins wait at most
 * for the return from handler_main; if this one is interrupted, the conn
 * stays on the list and the shutdown joins it. */
static void reap(struct serve *sv)
{
	/* Acquire: pairs with the release CAS in handler_main. */
	struct conn *c = XCHG(&sv->done, NULL, acquire);

	while (c) {
		struct conn *next = c->done_next;

		if (weft_join(c->task, NULL) == 0)
			conn_finish(sv, c);
		c = next;
	}
}

/* The serving task's shutdown: see steps 2-4 at the top. */
static void shutdown_handlers(struct serve *sv, struct weft_task *self,
			      uint64_t grace_ns)
{
	uint64_t saved = 0;
	struct conn *c;

	weft__hold_begin(self, &saved);
	/* Without a scope (-ENOMEM, or -ENOSPC: the task already has
	 * WEFT_TIMEOUT_DEPTH of them), the grace period is skipped. */
	if (sv->conns && weft_timeout_begin(grace_ns) == 0) {
		while ((c = sv->conns) && weft_join(c->task, NULL) == 0)
			conn_finish(sv, c);
		weft_timeout_end();
	}
	for (c = sv->conns; c; c = c->next)
		weft_cancel(c->task); /* -ESRCH if it ended meanwhile */
	while ((c = sv->conns)) {
		weft_join(c->task, NULL); /* held: returns 0 */
		conn_finish(sv, c);
	}
	weft__hold_end(self, saved);
	/* What ended early sits on `done` too: already joined and freed
	 * through `conns`. */
	STORE(&sv->done, NULL, relaxed);
}

/* Accept errors that a retry can clear at once: a connection that went
 * away before we took it, or a network error Linux reports through accept
 * for the pending connection (accept(2), "Error handling"). */
static bool accept_retry_now(int err)
{
	switch (err) {
	case -ECONNABORTED:
	case -EINTR:
	case -EAGAIN:
	case -EPROTO:
	case -ENETDOWN:
	case -ENOPROTOOPT:
	case -EHOSTDOWN:
	case -ENONET:
	case -EHOSTUNREACH:
	case -EOPNOTSUPP:
	case -ENETUNREACH:
	case -EPERM: /* a firewall rule refused it */
		return true;
	default:
		return false;
	}
}

/* Out of fds or memory: a retry at once would spin. */
static bool accept_retry_later(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOMEM ||
	       err == -ENOBUFS;
}

/* lfd must be a listening stream socket; checked once, so that the errors
 * accept_retry_now() retries can only be per-connection ones. */
static int check_listener(int lfd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	if (lfd < 0)
		return -EBADF;
	if (getsockopt(lfd, SOL_SOCKET, SO_TYPE, &v, &len) < 0)
		return -errno; /* -EBADF, -ENOTSOCK */
	if (v != SOCK_STREAM && v != SOCK_SEQPACKET)
		return -EINVAL;
	len = sizeof(v);
	if (getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0)
		return -errno;
	return v ? 0 : -EINVAL;
}

int weft_serve(int lfd, int (*handler)(int fd, void *arg), void *arg,
	       const weft_serve_opts *opts)
{
	struct weft_task *self = weft__current();
	weft_spawn_opts so;
	struct serve sv;
	uint64_t grace_ns = SERVE_GRACE_DEFAULT, backoff = BACKOFF_MIN;
	int rc;

	if (!self)
		return -EPERM;
	if (!handler)
		return -EINVAL;
	memset(&so, 0, sizeof(so));
	so.name = "weft_serve handler";
	if (opts) {
		for (size_t i = 0; i < 4; i++)
			if (opts->reserved[i])
				return -EINVAL;
		if (opts->grace_ns)
			grace_ns = opts->grace_ns;
		/* The check weft_spawn_ex would make at the first
		 * connection (stack.h, through internal.h). */
		if (opts->stack_size && !stack_round_size(opts->stack_size))
			return -EINVAL;
		so.stack_size = opts->stack_size;
	}
	rc = check_listener(lfd);
	if (rc)
		return rc;

	memset(&sv, 0, sizeof(sv));
	sv.handler = handler;
	sv.arg = arg;
	sv.limited = opts && opts->max_connections;
	if (sv.limited)
		weft_sem_init(&sv.sem, (int64_t)opts->max_connections);
	STORE(&sv.done, NULL, relaxed);

	for (;;) {
		struct conn *c;
		int fd;

		reap(&sv);
		if (sv.limited) {
			rc = weft_sem_acquire(&sv.sem);
			if (rc)
				break; /* -ECANCELED / -ETIMEDOUT */
		}
		fd = weft_accept(lfd, NULL, NULL);
		if (fd < 0) {
			rc = fd;
			if (sv.limited)
				weft_sem_release(&sv.sem);
			if (accept_retry_now(rc))
				continue;
			if (!accept_retry_later(rc))
				break;
			/* Out of fds or memory: a handler that ends or
			 * memory freed elsewhere will cure it; look again
			 * after a pause that grows while it lasts. */
			rc = weft_sleep(backoff);
			if (rc)
				break;
			backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX
							    : backoff * 2;
			continue;
		}
		backoff = BACKOFF_MIN;
		/* Like weft_tcp_connect's sockets (and Go's): replies go
		 * out at once. Fails harmlessly on a Unix socket. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 },
				 sizeof(int));
		c = calloc(1, sizeof(*c));
		if (c) {
			c->sv = &sv;
			c->fd = fd;
			STORE(&c->started, false, relaxed);
			rc = weft_spawn_ex(&c->task, &so, handler_main, c);
			if (rc == 0) {
				/* Linked only now; the task cannot end
				 * before the serving task runs reap(), which
				 * is on this same task. */
				c->next = sv.conns;
				if (sv.conns)
					sv.conns->prev = c;
				sv.conns = c;
				continue;
			}
			free(c);
		} else {
			rc = -ENOMEM;
		}
		/* No task to own the connection: drop it. */
		weft_close(fd);
		if (sv.limited)
			weft_sem_release(&sv.sem);
		if (rc == -EINVAL)
			break; /* cannot happen: opts were checked */
		rc = weft_sleep(backoff);
		if (rc)
			break;
		backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
	}
	shutdown_handlers(&sv, self, grace_ns);
	return rc;
}
