/* SPDX-License-Identifier: MIT */
/*
 * Sockets and servers. Every fd returned here is close-on-exec, and
 * non-blocking under the epoll backend. Host names are resolved on the
 * blocking pool, so no worker waits for DNS.
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <weft/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* weft_listen_opts.flags */
#define WEFT_LISTEN_REUSEPORT 1u /* SO_REUSEPORT: one listener per worker */
#define WEFT_LISTEN_V6ONLY 2u	 /* IPv6 only (no v4-mapped addresses) */

typedef struct weft_listen_opts {
	int backlog;		/* 0 = SOMAXCONN */
	unsigned flags;		/* WEFT_LISTEN_* */
	uint64_t reserved[4];	/* must be 0 */
} weft_listen_opts;

/*
 * TCP listener on host:port with SO_REUSEADDR. host NULL or "" listens on
 * every address (IPv6 and IPv4 through one dual-stack socket where the
 * system has IPv6, else IPv4); "0.0.0.0", "::", "127.0.0.1", "::1" or a name
 * pick one. Port 0 picks a free port: read it with weft_local_port().
 * Returns the fd, or -EINVAL, -EADDRINUSE, -EACCES, -ENOENT (name unknown).
 */
WEFT_EXPORT int weft_tcp_listen(const char *host, uint16_t port, int backlog);
WEFT_EXPORT int weft_tcp_listen_opts(const char *host, uint16_t port,
				     const weft_listen_opts *opts);
/* Connects to host:port, trying each resolved address in turn; TCP_NODELAY
 * is set. Returns the fd, or -ECONNREFUSED, -ENETUNREACH, -ENOENT, ... */
WEFT_EXPORT int weft_tcp_connect(const char *host, uint16_t port);
/* Accepts one connection (close-on-exec); addr/len may be NULL. */
WEFT_EXPORT int weft_accept(int lfd, struct sockaddr *addr, socklen_t *len);
/* The port a socket is bound to, or a negative errno. */
WEFT_EXPORT int weft_local_port(int fd);

/* Unix-domain stream sockets. listen replaces a stale socket file (one
 * whose server is gone: a connect to it is refused); a path where a
 * server still listens, or that is not a socket, gives -EADDRINUSE. That
 * server sees the check as one connection that ends at once. */
WEFT_EXPORT int weft_unix_listen(const char *path, int backlog);
WEFT_EXPORT int weft_unix_connect(const char *path);

/* UDP: a socket bound to host:port (NULL host: any address). */
WEFT_EXPORT int weft_udp_bind(const char *host, uint16_t port);
WEFT_EXPORT ssize_t weft_sendto(int fd, const void *buf, size_t n, int flags,
				const struct sockaddr *addr, socklen_t len);
WEFT_EXPORT ssize_t weft_recvfrom(int fd, void *buf, size_t n, int flags,
				  struct sockaddr *addr, socklen_t *len);

/* Server options. All-zero means: no connection limit, 5 s grace. */
typedef struct weft_serve_opts {
	unsigned max_connections; /* stop accepting at this many live
				     handlers; 0 = no limit */
	uint64_t grace_ns;	  /* after cancellation, how long handlers
				     may run on before they are cancelled;
				     0 = 5 s */
	size_t stack_size;	  /* handler task stacks; 0 = default */
	uint64_t reserved[4];	  /* must be 0 */
} weft_serve_opts;

/*
 * asyncio.start_server: accepts connections on lfd and runs
 * handler(fd, arg) in a task per connection; the handler owns fd and must
 * close it. Accepted TCP connections have TCP_NODELAY set. Runs until the calling task is cancelled or its deadline scope
 * expires; then it stops accepting, lets handlers run for the grace period,
 * cancels those still running, waits for every one of them and returns
 * -ECANCELED or -ETIMEDOUT. At max_connections it stops accepting until a
 * handler ends; EMFILE/ENFILE/ENOMEM at accept make it pause and retry.
 * lfd is not closed. Must be called from a task. Other errors: -EINVAL,
 * -EPERM (not a task), or an accept error that will not go away (-EBADF,
 * -ENOTSOCK, -EINVAL: not listening).
 */
WEFT_EXPORT int weft_serve(int lfd, int (*handler)(int fd, void *arg),
			   void *arg, const weft_serve_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
