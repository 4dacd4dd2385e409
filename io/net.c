/* SPDX-License-Identifier: MIT */
/*
 * Sockets (include/weft/net.h): TCP, Unix-domain and UDP. Names that are
 * not numeric addresses are resolved with getaddrinfo on the blocking pool.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "ops.h"

/* Sockets weft creates: non-blocking for epoll runtimes (readiness I/O). */
static int sock_flags(const struct weft_task *t)
{
	return SOCK_CLOEXEC | (io_epoll_task(t) ? SOCK_NONBLOCK : 0);
}

static int gai_errno(int e)
{
	switch (e) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
	case EAI_ADDRFAMILY:
#endif
		return -ENOENT;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_FAIL:
		return -EIO;
	default:
		return -EINVAL;
	}
}

struct resolve {
	const char *host;
	char port[8];
	struct addrinfo hints;
	struct addrinfo *res;
	int sys_errno;
};

static int resolve_call(void *arg)
{
	struct resolve *r = arg;
	int e = getaddrinfo(r->host, r->port, &r->hints, &r->res);

	if (e == EAI_SYSTEM)
		r->sys_errno = weft__errno();
	return e;
}

/*
 * Addresses for host:port. Numeric hosts never leave the calling thread;
 * names go to the blocking pool from a task (a resolver can take seconds).
 */
static int resolve(struct weft_task *t, const char *host, uint16_t port,
		   int socktype, bool passive, struct addrinfo **out)
{
	struct resolve r = { .host = host && *host ? host : NULL };
	int e;

	snprintf(r.port, sizeof(r.port), "%u", (unsigned)port);
	r.hints.ai_socktype = socktype;
	r.hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	r.hints.ai_flags |= AI_NUMERICHOST;
	e = resolve_call(&r);
	if (e == EAI_NONAME && r.host) {
		r.hints.ai_flags &= ~AI_NUMERICHOST;
		if (t) {
			int rc = weft_blocking(resolve_call, &r, &e);

			if (rc < 0) {
				/* Cancelled while the resolver ran: it has
				 * finished (weft_blocking waits for it). */
				if (r.res)
					freeaddrinfo(r.res);
				return rc;
			}
		} else {
			e = resolve_call(&r);
		}
	}
	if (e == EAI_SYSTEM)
		return r.sys_errno ? -r.sys_errno : -EIO;
	if (e)
		return gai_errno(e);
	*out = r.res;
	return 0;
}

static int set_int(int fd, int level, int opt, int v)
{
	if (setsockopt(fd, level, opt, &v, sizeof(v)) < 0)
		return -weft__errno();
	return 0;
}

static int bound_socket(const struct weft_task *t, const struct addrinfo *ai,
			unsigned flags, int backlog)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | sock_flags(t),
			ai->ai_protocol);
	int rc = 0;

	if (fd < 0)
		return -weft__errno();
	if (ai->ai_socktype == SOCK_STREAM)
		rc = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (!rc && (flags & WEFT_LISTEN_REUSEPORT))
		rc = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (!rc && ai->ai_family == AF_INET6)
		rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY,
			     (flags & WEFT_LISTEN_V6ONLY) ? 1 : 0);
	if (!rc && bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		rc = -weft__errno();
	if (!rc && ai->ai_socktype == SOCK_STREAM && listen(fd, backlog) < 0)
		rc = -weft__errno();
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

/* Binds to host:port: every address in turn, and for no host the IPv6
 * wildcard (dual stack), falling back to IPv4's where IPv6 is missing. */
static int bind_host(const char *host, uint16_t port, int socktype,
		     unsigned flags, int backlog)
{
	struct weft_task *t;
	struct addrinfo *res, *ai;
	int rc = io_enter(&t), fd = -EADDRNOTAVAIL;

	if (rc)
		return rc;
	if (!host || !*host) {
		struct sockaddr_in6 a6 = { .sin6_family = AF_INET6,
					   .sin6_port = htons(port),
					   .sin6_addr = IN6ADDR_ANY_INIT };
		struct sockaddr_in a4 = { .sin_family = AF_INET,
					  .sin_port = htons(port) };
		struct addrinfo any6 = { .ai_family = AF_INET6,
					 .ai_socktype = socktype,
					 .ai_addr = (struct sockaddr *)&a6,
					 .ai_addrlen = sizeof(a6) };
		struct addrinfo any4 = { .ai_family = AF_INET,
					 .ai_socktype = socktype,
					 .ai_addr = (struct sockaddr *)&a4,
					 .ai_addrlen = sizeof(a4) };

		fd = bound_socket(t, &any6, flags, backlog);
		if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL)
			fd = bound_socket(t, &any4, flags, backlog);
		return fd;
	}
	rc = resolve(t, host, port, socktype, true, &res);
	if (rc)
		return rc;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = bound_socket(t, ai, flags, backlog);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	return fd;
}

int weft_tcp_listen_opts(const char *host, uint16_t port,
			 const weft_listen_opts *o)
{
	weft_listen_opts d = { 0 };

	if (o)
		d = *o;
	for (size_t i = 0; i < sizeof(d.reserved) / sizeof(d.reserved[0]); i++)
		if (d.reserved[i])
			return -EINVAL;
	if (d.backlog < 0 ||
	    (d.flags & ~(WEFT_LISTEN_REUSEPORT | WEFT_LISTEN_V6ONLY)))
		return -EINVAL;
	return bind_host(host, port, SOCK_STREAM, d.flags,
			 d.backlog ? d.backlog : SOMAXCONN);
}

int weft_tcp_listen(const char *host, uint16_t port, int backlog)
{
	weft_listen_opts o = { .backlog = backlog };

	return weft_tcp_listen_opts(host, port, &o);
}

int weft_udp_bind(const char *host, uint16_t port)
{
	return bind_host(host, port, SOCK_DGRAM, 0, 0);
}

int weft_accept(int lfd, struct sockaddr *addr, socklen_t *len)
{
	struct weft_task *t;
	int rc = io_enter(&t);

	if (rc)
		return rc;
	if (!addr != !len)
		return -EINVAL;
	if (io_epoll_task(t)) {
		/* accept(2) has no per-call non-blocking flag: a listener
		 * made elsewhere is switched to non-blocking mode. */
		int fl = fcntl(lfd, F_GETFL);

		if (fl < 0)
			return -weft__errno();
		if (!(fl & O_NONBLOCK) && fcntl(lfd, F_SETFL, fl | O_NONBLOCK) < 0)
			return -weft__errno();
	}
	return (int)IO_CALL(t, lfd, POLLIN,
			    io_uring_prep_accept(sqe, lfd, addr, len,
						 SOCK_CLOEXEC),
			    accept4(lfd, addr, len, sock_flags(t)));
}

int weft__connect(struct weft_task *t, int fd, const struct sockaddr *sa,
		  socklen_t len)
{
	int err = 0, rc;
	socklen_t elen = sizeof(err);

	if (io_uring_task(t)) {
		rc = (int)URING_OP(t, io_uring_prep_connect(sqe, fd, sa, len));
		if (rc != -EAGAIN && rc != -EINPROGRESS)
			return rc;
	} else if (connect(fd, sa, len) == 0) {
		return 0;
	} else {
		rc = weft__errno();
		if (rc != EINPROGRESS && rc != EAGAIN && rc != EINTR)
			return -rc;
	}
	/* In progress (a non-blocking socket): wait, then ask how it went. */
	rc = weft__io_ready(t, fd, POLLOUT);
	if (rc < 0)
		return rc;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return -weft__errno();
	return -err;
}

int weft_tcp_connect(const char *host, uint16_t port)
{
	struct weft_task *t;
	struct addrinfo *res, *ai;
	int rc = io_enter(&t), fd = -ECONNREFUSED;

	if (rc)
		return rc;
	if (!host || !*host)
		return -EINVAL;
	rc = resolve(t, host, port, SOCK_STREAM, false, &res);
	if (rc)
		return rc;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | sock_flags(t),
			    ai->ai_protocol);
		if (fd < 0) {
			fd = -weft__errno();
			continue;
		}
		rc = weft__connect(t, fd, ai->ai_addr, ai->ai_addrlen);
		if (rc == 0) {
			set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
			break;
		}
		close(fd);
		fd = rc;
		if (rc == -ECANCELED || rc == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	return fd;
}

int weft_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -weft__errno();
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

static int unix_addr(const char *path, struct sockaddr_un *sun)
{
	size_t n;

	if (!path || !*path)
		return -EINVAL;
	n = strlen(path);
	if (n >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n);
	return 0;
}

/* Whether the socket file at sun was left by a server that is gone: a
 * connect to it is refused. A live listener (even one whose backlog is
 * full) and any other answer keep the file. */
static bool unix_path_stale(const struct sockaddr_un *sun)
{
	struct stat st;
	bool stale;
	int fd;

	if (lstat(sun->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false; /* not ours to remove */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	stale = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) < 0 &&
		weft__errno() == ECONNREFUSED;
	close(fd);
	return stale;
}

static int unix_bind(int fd, const struct sockaddr_un *sun)
{
	return bind(fd, (const struct sockaddr *)sun, sizeof(*sun)) < 0
		       ? -weft__errno()
		       : 0;
}

int weft_unix_listen(const char *path, int backlog)
{
	struct weft_task *t;
	struct sockaddr_un sun;
	int rc = io_enter(&t), fd;

	if (rc)
		return rc;
	if (backlog < 0)
		return -EINVAL;
	rc = unix_addr(path, &sun);
	if (rc)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | sock_flags(t), 0);
	if (fd < 0)
		return -weft__errno();
	rc = unix_bind(fd, &sun);
	/* A socket file left by an earlier server makes bind fail: replace
	 * it, but never the path of a server that still listens. */
	if (rc == -EADDRINUSE && unix_path_stale(&sun) &&
	    (unlink(path) == 0 || weft__errno() == ENOENT))
		rc = unix_bind(fd, &sun);
	if (rc == 0 && listen(fd, backlog ? backlog : SOMAXCONN) < 0)
		rc = -weft__errno();
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

int weft_unix_connect(const char *path)
{
	struct weft_task *t;
	struct sockaddr_un sun;
	int rc = io_enter(&t), fd;

	if (rc)
		return rc;
	rc = unix_addr(path, &sun);
	if (rc)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | sock_flags(t), 0);
	if (fd < 0)
		return -weft__errno();
	rc = weft__connect(t, fd, (struct sockaddr *)&sun, sizeof(sun));
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

ssize_t weft_sendto(int fd, const void *buf, size_t n, int flags,
		    const struct sockaddr *addr, socklen_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = n };
	struct msghdr msg = {
		.msg_name = (void *)addr,
		.msg_namelen = addr ? len : 0,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};

	return weft_sendmsg(fd, &msg, flags);
}

ssize_t weft_recvfrom(int fd, void *buf, size_t n, int flags,
		      struct sockaddr *addr, socklen_t *len)
{
	struct iovec iov = { .iov_base = buf, .iov_len = n };
	struct msghdr msg = {
		.msg_name = addr,
		.msg_namelen = addr && len ? *len : 0,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	ssize_t r;

	if (!addr != !len)
		return -EINVAL;
	r = weft_recvmsg(fd, &msg, flags);
	if (r >= 0 && len)
		*len = msg.msg_namelen;
	return r;
}
