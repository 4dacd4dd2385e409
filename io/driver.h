/* SPDX-License-Identifier: MIT */
/*
 * The per-worker I/O driver: an io_uring (uring.c) or an epoll instance
 * (epoll.c), chosen once per runtime (driver.c). Private to weft.
 *
 * How a worker uses it (sched.c, idle.c):
 *  - When its local queue runs dry, and every INJECT_INTERVAL ticks, it
 *    polls the driver without blocking (io_poll): queued submissions go to
 *    the kernel in one system call and completions wake their tasks onto the
 *    local run queue. Polling is skipped while nothing is in flight.
 *  - A worker with nothing to do parks IN the driver (io_wait) until a
 *    completion, a wake or its next timer. Another thread wakes it with
 *    io_unpark(), a write to the worker's eventfd, which the driver always
 *    watches; the eventfd's counter keeps a wake that comes before the wait.
 */
#ifndef WEFT_IO_DRIVER_H
#define WEFT_IO_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <liburing.h>
#include "internal.h"
#include "waitq.h"

/* user_data of completions that are not a task's operation. */
#define UD_IGNORE 0u	/* an ASYNC_CANCEL's own completion */
#define UD_WAKE 1u	/* the eventfd read (uring) / the eventfd (epoll) */

/*
 * One io_uring operation of a task, on the task's stack. See uring.c for
 * the protocol: after submission only the owner worker's thread touches
 * `seq`, `res` and `done`.
 */
struct io_op {
	struct weft_task *task;	/* constant */
	struct worker *owner;	/* constant: whose ring holds the op */
	uint64_t seq;		/* the wait the completion wakes */
	uint64_t req_seq;	/* cancel request: written by the task before
				   it publishes the request */
	struct io_op *req_next;	/* in owner's request stack */
	int32_t res;		/* the completion's result */
	bool done;		/* the completion has arrived */
};

/* Epoll backend: readiness waiters of one fd (epoll.c). */
struct fd_desc {
	spinlock lock;
	uint32_t gen;		/* under lock: bumped by weft_close */
	struct waitq wq[3];	/* under lock: readers, writers, both */
};

struct io_driver {
	int kind;		/* WEFT_IO_URING / WEFT_IO_EPOLL; constant */
	int efd;		/* wake eventfd; constant */
	/* uring, owner only: operations submitted or queued and not
	 * completed. */
	unsigned inflight;
	/* epoll: tasks waiting for readiness that this epoll's arming of
	 * their fd serves. Any thread changes it, under the fd's lock
	 * (epoll.c); the owner reads it as a hint of when to poll. */
	_Atomic unsigned nwait;
	/* Cancel requests from tasks on other workers (uring.c): a stack
	 * pushed with release CAS by any thread, taken whole by the owner. */
	_Atomic(struct io_op *) reqs;
	bool ring_ok;		/* uring: queue_init succeeded */
	struct io_uring ring;	/* uring only */
	uint64_t efd_buf;	/* uring: the eventfd read's buffer */
	bool wake_armed;	/* uring: that read is queued or in flight */
	int epfd;		/* epoll only */
};

/* driver.c */
int weft__io_init(struct weft_rt *rt, const weft_config *c);
void weft__io_fini(struct weft_rt *rt);
/* The worker's own thread, before it runs any task. */
void weft__io_thread_start(struct worker *w);
/* Non-blocking: submits and reaps; returns the number of tasks woken. */
int weft__io_poll(struct worker *w);
/* Blocks until a completion, a wake or `deadline` (weft_now() ns,
 * UINT64_MAX: none); returns the number of tasks woken. */
int weft__io_wait(struct worker *w, uint64_t deadline);
/* Any thread: wakes w out of io_wait (now or at its next wait). */
void weft__io_unpark(struct worker *w);

/* Whether the owner should poll: something is in flight or requested. */
static inline bool weft__io_busy(const struct worker *w)
{
	struct io_driver *d = w->io;

	return d->inflight || LOAD(&d->nwait, relaxed) ||
	       LOAD(&d->reqs, relaxed);
}

/* Cheap: completions may be waiting to be reaped (a searching worker
 * stops spinning for them). */
static inline bool weft__io_ready_hint(struct worker *w)
{
	struct io_driver *d = w->io;

	if (d->kind != WEFT_IO_URING)
		return false;
	return io_uring_cq_ready(&d->ring) ||
	       (IO_URING_READ_ONCE(*d->ring.sq.kflags) & IORING_SQ_TASKRUN);
}

/* uring.c */
int uring_setup(struct io_driver *d, unsigned entries);
void uring_teardown(struct io_driver *d);
void uring_thread_start(struct io_driver *d);
int uring_poll(struct worker *w, uint64_t deadline, bool block);
/* A task: returns an sqe on its current worker's ring, flushing or
 * yielding when the SQ is full; *wp is that worker. */
struct io_uring_sqe *uring_sqe(struct weft_task *t, struct worker **wp);
/* A task, right after preparing sqe on w: submits it as op, suspends
 * until it completes, and returns its result, or -ECANCELED/-ETIMEDOUT
 * after the kernel operation was cancelled and has completed. */
int uring_run(struct weft_task *t, struct worker *w,
	      struct io_uring_sqe *sqe);

/* epoll.c */
int epoll_setup(struct io_driver *d);
void epoll_teardown(struct io_driver *d);
int epoll_poll(struct worker *w, uint64_t deadline, bool block);
/* A task: waits until fd is ready for `events` (EPOLLIN/EPOLLOUT).
 * -EPERM: epoll cannot watch fd (a regular file: always ready). */
int epoll_ready(struct weft_task *t, int fd, uint32_t events);
/* weft_close: wakes and forgets fd's waiters. */
void epoll_forget(struct weft_rt *rt, int fd);
void epoll_fdtab_free(struct weft_rt *rt);

#endif
