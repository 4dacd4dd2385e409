/* SPDX-License-Identifier: MIT */
/*
 * Byte I/O on any fd (include/weft/io.h). ops.h says how a call reaches the
 * kernel from a task of each backend and from a plain thread.
 */
#include <errno.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>
#include "ops.h"

/* An epoll task waits for fd. epoll refuses regular files (EPERM), which
 * are always ready: 0 then too. */
static int epoll_await(struct weft_task *t, int fd, short events)
{
	int rc = epoll_ready(t, fd, (uint32_t)events);

	return rc == -EPERM ? 0 : rc;
}

int weft__io_ready(struct weft_task *t, int fd, short events)
{
	if (io_uring_task(t))
		return (int)URING_OP(t, io_uring_prep_poll_add(sqe, fd,
							       (unsigned)events));
	if (io_epoll_task(t)) {
		for (;;) {
			struct pollfd p = { .fd = fd, .events = events };
			int rc = epoll_await(t, fd, events);

			if (rc < 0)
				return rc;
			/* Which events, and whether the wake was real
			 * (waiters of a shared fd all wake). */
			if (poll(&p, 1, 0) > 0)
				return p.revents & POLLNVAL ? -EBADF : p.revents;
		}
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int n = poll(&p, 1, -1);

		if (n > 0)
			return p.revents & POLLNVAL ? -EBADF : p.revents;
		if (n < 0 && weft__errno() != EINTR)
			return -weft__errno();
	}
}

/* Under epoll a wake can be spurious (every waiter of a shared fd wakes),
 * so weft__io_ready() asks poll() whether it was real: one more system
 * call per wait. The caller's next try answers that question too, at no
 * cost when the wake was real. */
int weft__io_await(struct weft_task *t, int fd, short events)
{
	int rc;

	if (io_epoll_task(t))
		return epoll_await(t, fd, events);
	rc = weft__io_ready(t, fd, events);
	return rc < 0 ? rc : 0;
}

int weft_poll(int fd, short events)
{
	struct weft_task *t;
	int rc = io_enter(&t);

	if (rc)
		return rc;
	if (fd < 0)
		return -EBADF;
	return weft__io_ready(t, fd, events);
}

/*
 * read/write family for epoll tasks. The fd may be blocking (a pipe or a
 * socketpair the program made), so the call asks the kernel not to wait
 * (RWF_NOWAIT, 4.14+; sockets, pipes and cached file data take it).
 * A regular file that would wait for the disk is read in place: epoll
 * cannot wait for it. Files and devices without RWF_NOWAIT get the plain
 * call, which may block the worker (documented in io.h).
 */
static ssize_t epoll_rw(struct weft_task *t, int fd, const struct iovec *iov,
			int cnt, bool wr)
{
	int flags = RWF_NOWAIT;

	for (;;) {
		ssize_t r = wr ? pwritev2(fd, iov, cnt, -1, flags)
			       : preadv2(fd, iov, cnt, -1, flags);
		int rc, e;

		if (r >= 0) {
			weft__coop_ready();
			return r;
		}
		e = weft__errno(); /* this loop suspends: see util.c */
		if (e == EINTR)
			continue;
		if (flags && (e == EOPNOTSUPP || e == EINVAL)) {
			flags = 0;
			continue;
		}
		if (e != EAGAIN)
			return -e;
		rc = epoll_ready(t, fd, wr ? EPOLLOUT : EPOLLIN);
		if (rc == -EPERM)
			flags = 0;
		else if (rc < 0)
			return rc;
	}
}

ssize_t weft_read(int fd, void *buf, size_t n)
{
	struct weft_task *t;
	int rc = io_enter(&t);

	if (rc)
		return rc;
	n = io_clamp(n);
	if (io_epoll_task(t)) {
		struct iovec iov = { .iov_base = buf, .iov_len = n };

		return epoll_rw(t, fd, &iov, 1, false);
	}
	return IO_CALL(t, fd, POLLIN,
		       io_uring_prep_read(sqe, fd, buf, (unsigned)n, -1),
		       read(fd, buf, n));
}

ssize_t weft_write(int fd, const void *buf, size_t n)
{
	struct weft_task *t;
	int rc = io_enter(&t);

	if (rc)
		return rc;
	n = io_clamp(n);
	if (io_epoll_task(t)) {
		struct iovec iov = { .iov_base = (void *)buf, .iov_len = n };

		return epoll_rw(t, fd, &iov, 1, true);
	}
	return IO_CALL(t, fd, POLLOUT,
		       io_uring_prep_write(sqe, fd, buf, (unsigned)n, -1),
		       write(fd, buf, n));
}

static ssize_t rwv(int fd, const struct iovec *iov, int iovcnt, bool wr)
{
	struct weft_task *t;
	int rc = io_enter(&t);

	if (rc)
		return rc;
	if (io_epoll_task(t))
		return epoll_rw(t, fd, iov, iovcnt, wr);
	if (wr)
		return IO_CALL(t, fd, POLLOUT,
			       io_uring_prep_writev(sqe, fd, iov,
						    (unsigned)iovcnt, -1),
			       writev(fd, iov, iovcnt));
	return IO_CALL(t, fd, POLLIN,
		       io_uring_prep_readv(sqe, fd, iov, (unsigned)iovcnt, -1),
		       readv(fd, iov, iovcnt));
}

ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt)
{
	return rwv(fd, iov, iovcnt, false);
}

ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt)
{
	return rwv(fd, iov, iovcnt, true);
}

/* Socket calls of an epoll task must not block its worker, even on a
 * blocking socket. */
static inline int dontwait(const struct weft_task *t)
{
	return io_epoll_task(t) ? MSG_DONTWAIT : 0;
}

/* MSG_WAITALL under epoll: MSG_DONTWAIT makes each recv return what is
 * there, so loop until n bytes, the end of the stream, or an error; bytes
 * already received are returned rather than lost (as io_uring does). */
static ssize_t epoll_recv_all(struct weft_task *t, int fd, char *buf,
			      size_t n, int flags)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = TRY_READY(t, fd, POLLIN,
				      recv(fd, buf + done, n - done,
					   flags | MSG_DONTWAIT));

		if (r <= 0)
			return done ? (ssize_t)done : r;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

ssize_t weft_recv(int fd, void *buf, size_t n, int flags)
{
	struct weft_task *t;
	int rc = io_enter(&t);

	if (rc)
		return rc;
	n = io_clamp(n);
	if ((flags & MSG_WAITALL) && io_epoll_task(t))
		return epoll_recv_all(t, fd, buf, n, flags & ~MSG_WAITALL);
	return IO_CALL(t, fd, POLLIN,
		       io_uring_prep_recv(sqe, fd, buf, n, flags),
		       recv(fd, buf, n, flags | dontwait(t)));
}

ssize_t weft_send(int fd, const void *buf, size_t n, int flags)
{
	struct weft_task *t;
	int rc = io_enter(&t);

	if (rc)
		return rc;
	n = io_clamp(n);
	flags |= MSG_NOSIGNAL;
	return IO_CALL(t, fd, POLLOUT,
		       io_uring_prep_send(sqe, fd, buf, n, flags),
		       send(fd, buf, n, flags | dontwait(t)));
}

ssize_t weft_recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct weft_task *t;
	int rc = io_enter(&t);

	if (rc)
		return rc;
	if (!msg)
		return -EINVAL;
	return IO_CALL(t, fd, POLLIN,
		       io_uring_prep_recvmsg(sqe, fd, msg, (unsigned)flags),
		       recvmsg(fd, msg, flags | dontwait(t)));
}

ssize_t weft_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct weft_task *t;
	int rc = io_enter(&t);

	if (rc)
		return rc;
	if (!msg)
		return -EINVAL;
	flags |= MSG_NOSIGNAL;
	return IO_CALL(t, fd, POLLOUT,
		       io_uring_prep_sendmsg(sqe, fd, msg, (unsigned)flags),
		       sendmsg(fd, msg, flags | dontwait(t)));
}

ssize_t weft_read_exact(int fd, void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = weft_read(fd, (char *)buf + done, n - done);

		if (r < 0)
			return r;
		if (r == 0)
			return done == 0 ? 0 : -EPIPE;
		done += (size_t)r;
	}
	return (ssize_t)n;
}

ssize_t weft_write_all(int fd, const void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = weft_write(fd, (const char *)buf + done, n - done);

		if (r < 0)
			return r;
		if (r == 0)
			return -EIO; /* a write that moves nothing never will */
		done += (size_t)r;
	}
	return (ssize_t)n;
}

int weft_shutdown(int fd, int how)
{
	return shutdown(fd, how) < 0 ? -weft__errno() : 0;
}

int weft_close(int fd)
{
	struct weft_task *t = weft__current();
	int rc;

	if (fd < 0)
		return -EBADF;
	if (io_epoll_task(t))
		epoll_forget(t->rt, fd);
	/* close(2) frees the fd even when it reports EINTR or EIO: never
	 * retry it (the number may already belong to someone else). */
	if (close(fd) == 0)
		return 0;
	rc = weft__errno();
	return rc == EINTR ? 0 : -rc;
}
