/* SPDX-License-Identifier: MIT */
/*
 * Byte I/O on any file descriptor, from tasks.
 *
 * Every worker owns an I/O driver: an io_uring (the default) or, where
 * io_uring cannot be set up or WEFT_IO=epoll / weft_config.io_backend asks
 * for it, an epoll instance. A call from a task submits the operation to the
 * driver of the worker it runs on and suspends only the task; many tasks'
 * operations reach the kernel in one system call. A call from a plain thread
 * performs the blocking system call.
 *
 * Results follow POSIX: short reads and writes happen, 0 from a read is end
 * of file. Errors are negative errnos; -EPIPE is returned instead of raising
 * SIGPIPE. Every call that suspends also returns -ECANCELED when the task is
 * cancelled and -ETIMEDOUT when its deadline scope expires; the kernel
 * operation is then cancelled and its completion awaited before the call
 * returns, so the kernel never touches the caller's buffer afterwards. (A
 * write that completed in the meantime still returns its byte count: nothing
 * that reached the kernel is reported as lost.)
 *
 * Under the epoll backend, a task's calls never ask the kernel to wait:
 * sockets get MSG_DONTWAIT, reads and writes RWF_NOWAIT (so blocking pipes
 * and sockets made elsewhere work too), weft_accept switches a listener to
 * non-blocking mode, and sockets weft creates are non-blocking. A file or
 * device that takes no RWF_NOWAIT (a tty on old kernels) may block the
 * worker. File calls (fs.h) run on the blocking pool there.
 *
 * weft_rt_new sets SIGPIPE to be ignored if its action is the default:
 * io_uring's write cannot pass MSG_NOSIGNAL.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <weft/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* weft_config.io_backend values, and what weft_rt_io_backend() reports. */
#define WEFT_IO_AUTO 0	/* io_uring if it can be set up, else epoll; the
			   environment variable WEFT_IO=uring|epoll decides
			   when the config says AUTO */
#define WEFT_IO_URING 1	/* io_uring or fail with its error */
#define WEFT_IO_EPOLL 2	/* epoll */

WEFT_EXPORT ssize_t weft_read(int fd, void *buf, size_t n);
WEFT_EXPORT ssize_t weft_write(int fd, const void *buf, size_t n);
WEFT_EXPORT ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt);
WEFT_EXPORT ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt);
/* Socket I/O; MSG_NOSIGNAL is always added to sends. */
WEFT_EXPORT ssize_t weft_recv(int fd, void *buf, size_t n, int flags);
WEFT_EXPORT ssize_t weft_send(int fd, const void *buf, size_t n, int flags);
WEFT_EXPORT ssize_t weft_recvmsg(int fd, struct msghdr *msg, int flags);
WEFT_EXPORT ssize_t weft_sendmsg(int fd, const struct msghdr *msg, int flags);

/*
 * Loop until all n bytes are read or written. Return n; weft_read_exact
 * returns 0 if the stream ended before its first byte and -EPIPE if it ended
 * after some bytes but before n. Any error ends the loop: the bytes moved so
 * far are then lost to the caller (as with asyncio's readexactly).
 */
WEFT_EXPORT ssize_t weft_read_exact(int fd, void *buf, size_t n);
WEFT_EXPORT ssize_t weft_write_all(int fd, const void *buf, size_t n);

/* shutdown(2) and close(2). weft_close also forgets the fd in the epoll
 * backend; close fds that a task waits on only after that task is done. */
WEFT_EXPORT int weft_shutdown(int fd, int how);
WEFT_EXPORT int weft_close(int fd);

/*
 * Waits until fd is ready for `events` (POLLIN, POLLOUT, ...) and returns
 * the ready events (> 0; POLLERR / POLLHUP may be among them). For fds that
 * other libraries drive themselves (libpq, libcurl, OpenSSL).
 */
WEFT_EXPORT int weft_poll(int fd, short events);

/*
 * Waits for one of the signals in `set` and returns its number; a signal
 * delivered while nobody waits stays pending for the next call (like
 * sigwait). The first call installs a handler for each signal in the set
 * for the rest of the process, replacing its default action: call it before
 * the signal can arrive (a signal handled by default terminates the process
 * as usual). Returns -EINVAL for an empty set or SIGKILL/SIGSTOP.
 * Under ThreadSanitizer a handler runs only once the thread the signal hit
 * enters an intercepted function; a worker asleep in io_uring_enter does
 * not, so tests under TSan should direct signals to a plain thread.
 */
WEFT_EXPORT int weft_signal_wait(const sigset_t *set);

/*
 * Installs weft's handler for each signal in `set` without waiting, from a
 * task or any thread: from then on each occurrence is kept for a later
 * weft_signal_wait. Call it at start-up, before the signals can arrive.
 * Returns 0, or -EINVAL as weft_signal_wait does.
 */
WEFT_EXPORT int weft_signal_listen(const sigset_t *set);

#ifdef __cplusplus
}
#endif
#endif
