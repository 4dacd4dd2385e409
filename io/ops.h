/* SPDX-License-Identifier: MIT */
/*
 * How every I/O call reaches the kernel (io.c, net.c, fs.c):
 *  - a task of an io_uring runtime submits an SQE on its worker's ring and
 *    suspends (URING_OP); an fd that answers -EAGAIN (a non-blocking fd
 *    whose file cannot wait in io_uring) is polled, then tried again;
 *  - a task of an epoll runtime tries the non-blocking system call and
 *    waits for readiness on EAGAIN (TRY_READY);
 *  - a plain thread makes the system call, polling on EAGAIN.
 * errno is read through weft__errno() (runtime/util.c): these loops suspend,
 * and a compiler may keep errno's address from before the task moved.
 */
#ifndef WEFT_IO_OPS_H
#define WEFT_IO_OPS_H

#include <errno.h>
#include <poll.h>
#include "driver.h"

/* Linux moves at most this much in one read or write. */
#define IO_MAX_RW 0x7ffff000u

static inline size_t io_clamp(size_t n)
{
	return n > IO_MAX_RW ? IO_MAX_RW : n;
}

/* The calling task, or NULL; and 0 or -ECANCELED / -ETIMEDOUT. */
static inline int io_enter(struct weft_task **tp)
{
	*tp = weft__current();
	return weft__check_interrupt(*tp);
}

static inline bool io_uring_task(const struct weft_task *t)
{
	return t && t->rt->io_kind == WEFT_IO_URING;
}

static inline bool io_epoll_task(const struct weft_task *t)
{
	return t && t->rt->io_kind == WEFT_IO_EPOLL;
}

/* Waits until fd is ready for `events` (POLLIN / POLLOUT / both); returns
 * the ready events (> 0) or a negative errno. io.c. */
int weft__io_ready(struct weft_task *t, int fd, short events);

/* The same for a call that answered EAGAIN and will be tried again:
 * returns 0 or a negative errno, without asking which events are ready.
 * io.c. */
int weft__io_await(struct weft_task *t, int fd, short events);

/* A task of a uring runtime: runs one operation; `prep` uses `sqe`. */
#define URING_OP(t, prep)                                                   \
	({                                                                  \
		struct worker *uw_;                                         \
		struct io_uring_sqe *sqe = uring_sqe((t), &uw_);            \
		prep;                                                       \
		(ssize_t)uring_run((t), uw_, sqe);                          \
	})

/* The same, polling and retrying while the fd answers -EAGAIN. */
#define URING_RETRY(t, fd, ev, prep)                                        \
	({                                                                  \
		ssize_t ur_;                                                \
		while ((ur_ = URING_OP(t, prep)) == -EAGAIN ||              \
		       ur_ == -EINTR) {                                     \
			int pr_ = ur_ == -EINTR ? 0                         \
						: weft__io_ready(t, fd, ev); \
			if (pr_ < 0) {                                      \
				ur_ = pr_;                                  \
				break;                                      \
			}                                                   \
		}                                                           \
		ur_;                                                        \
	})

/* epoll runtime or plain thread: `call` is a system call expression. A
 * task that did not have to wait spends cooperative budget. */
#define TRY_READY(t, fd, ev, call)                                          \
	({                                                                  \
		ssize_t tr_;                                                \
		bool waited_ = false;                                       \
		for (;;) {                                                  \
			int pr_;                                            \
			tr_ = (call);                                       \
			if (tr_ >= 0)                                       \
				break;                                      \
			tr_ = -weft__errno();                               \
			if (tr_ == -EINTR)                                  \
				continue;                                   \
			if (tr_ != -EAGAIN && tr_ != -EWOULDBLOCK)          \
				break;                                      \
			pr_ = weft__io_await(t, fd, ev);                    \
			if (pr_ < 0) {                                      \
				tr_ = pr_;                                  \
				break;                                      \
			}                                                   \
			waited_ = true;                                     \
		}                                                           \
		if (!waited_ && (t))                                        \
			weft__coop_ready();                                 \
		tr_;                                                        \
	})

/* Both: a uring operation for tasks of a uring runtime, else the call. */
#define IO_CALL(t, fd, ev, prep, call)                                      \
	(io_uring_task(t) ? URING_RETRY(t, fd, ev, prep)                    \
			  : TRY_READY(t, fd, ev, call))

/* net.c: connect with the calling context's method. */
int weft__connect(struct weft_task *t, int fd, const struct sockaddr *sa,
		  socklen_t len);

#endif
