/* SPDX-License-Identifier: MIT */
/*
 * weft-echo-load: the load client of the TCP echo benchmark.
 *
 *   weft-echo-load [-c CONNS=64] [-s SIZE=64] [-d SECONDS=10]
 *                  [-p SERVER_PID] HOST PORT
 *
 * One thread, epoll, CONNS connections (TCP_NODELAY). Each keeps exactly
 * one SIZE-byte message in flight: send it, wait until SIZE bytes have come
 * back, check them, record the round trip, send the next. Every message
 * carries its sequence number, so a stale or duplicated echo fails the
 * check. After SECONDS it prints one JSON line on stdout:
 *
 *   {"conns":64,"size":64,"seconds":10.000,"roundtrips":N,"rt_per_s":X,
 *    "p50_us":..,"p99_us":..,"server_cpu_us_per_rt":Y}
 *
 * server_cpu_us_per_rt is the server's utime+stime from /proc/PID/stat over
 * the run (all its threads, clock ticks, so +-1 tick per reading), divided
 * by the round trips; null without -p. Percentiles come from a log-linear
 * histogram: 32 buckets per power of two, so within 3 %.
 *
 * Any error (refused for more than 2 s, reset, short or wrong echo, no
 * round trip at all): one line on stderr and exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 100000
#define MAX_SIZE (16 << 20)
#define CONNECT_RETRY_NS (2 * NS_PER_S) /* the server may be starting */
#define CONNECT_TIMEOUT_MS 2000		/* one attempt */
#define NS_PER_S 1000000000LL

/* Histogram of nanoseconds: values below 2^SUB_BITS+1 exactly, then
 * 2^SUB_BITS linear buckets per power of two. */
#define SUB_BITS 5
#define SUB_COUNT (1u << SUB_BITS)
#define LINEAR_MAX (2u * SUB_COUNT) /* 64 */
#define NBUCKETS (LINEAR_MAX + (64 - SUB_BITS - 1) * SUB_COUNT)

struct conn {
	int fd;
	bool want_out;	     /* EPOLLOUT registered: the send was short */
	bool done;	     /* the message in flight has come back */
	size_t sent;	     /* bytes of this message written */
	size_t got;	     /* bytes of its echo read */
	uint64_t seq;	     /* sequence number of the message in flight */
	int64_t t0;	     /* when its send started */
	unsigned char *sbuf; /* the message */
	unsigned char *rbuf; /* its echo */
};

static uint64_t hist[NBUCKETS];

static void fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("weft-echo-load: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static unsigned bucket_of(uint64_t v)
{
	unsigned e;

	if (v < LINEAR_MAX)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* >= SUB_BITS + 1 */
	return LINEAR_MAX + (e - SUB_BITS - 1) * SUB_COUNT +
	       (unsigned)((v >> (e - SUB_BITS)) & (SUB_COUNT - 1));
}

/* The middle of bucket b, in nanoseconds. */
static double bucket_mid(unsigned b)
{
	unsigned e, sub;

	if (b < LINEAR_MAX)
		return b;
	e = (b - LINEAR_MAX) / SUB_COUNT + SUB_BITS + 1;
	sub = (b - LINEAR_MAX) % SUB_COUNT;
	return (double)((uint64_t)(SUB_COUNT + sub) << (e - SUB_BITS)) +
	       (double)((uint64_t)1 << (e - SUB_BITS)) / 2.0;
}

/* The value below which a fraction q of the n samples fall, in µs. */
static double percentile_us(uint64_t n, double q)
{
	uint64_t rank = (uint64_t)(q * (double)n), seen = 0;
	unsigned b;

	if (rank >= n)
		rank = n - 1;
	for (b = 0; b < NBUCKETS; b++) {
		seen += hist[b];
		if (seen > rank)
			return bucket_mid(b) / 1000.0;
	}
	return bucket_mid(NBUCKETS - 1) / 1000.0;
}

/* utime + stime of pid, in clock ticks, or -1 if it cannot be read. */
static long long proc_cpu_ticks(long pid)
{
	char path[64], buf[4096], *p;
	unsigned long long ut, st;
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* Field 2 (comm) is in parentheses and may hold blanks and ')':
	 * the fields after it start at the last ')'. utime and stime are
	 * fields 14 and 15, so the 12th and 13th after comm. */
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	for (i = 0; i < 11; i++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -1;
	}
	if (sscanf(p, " %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

static long parse_long(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		fail("%s must be an integer in %ld..%ld, not '%s'", opt, lo, hi,
		     s);
	return v;
}

/* Connects one socket, retrying refusals until retry_until (monotonic ns).
 * Returns a non-blocking fd with TCP_NODELAY. */
static int connect_one(const struct addrinfo *ai, int64_t retry_until)
{
	struct pollfd pfd;
	socklen_t len;
	int fd, err, one = 1;

	for (;;) {
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0)
			fail("socket: %s", strerror(errno));
		err = 0;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			err = errno;
			if (err == EINPROGRESS) {
				/* Bounded: a silent host must not hang us. */
				pfd.fd = fd;
				pfd.events = POLLOUT;
				do
					err = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
				while (err < 0 && errno == EINTR);
				if (err == 0)
					fail("connect: timed out after %d ms",
					     CONNECT_TIMEOUT_MS);
				if (err < 0)
					fail("poll: %s", strerror(errno));
				len = sizeof(err);
				if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
					       &len) < 0)
					err = errno;
			}
		}
		if (err == 0)
			break;
		close(fd);
		if (err != ECONNREFUSED || now_ns() >= retry_until)
			fail("connect: %s", strerror(err));
		usleep(20 * 1000);
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		fail("TCP_NODELAY: %s", strerror(errno));
	return fd;
}

static void set_events(int ep, struct conn *c, unsigned idx, bool out)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = idx};

	if (out)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		fail("epoll_ctl: %s", strerror(errno));
	c->want_out = out;
}

/* Writes what is left of c's message; asks for EPOLLOUT if it is short. */
static void conn_write(int ep, struct conn *c, unsigned idx, size_t size)
{
	ssize_t n;

	while (c->sent < size) {
		n = send(c->fd, c->sbuf + c->sent, size - c->sent,
			 MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			fail("connection %u: send: %s", idx, strerror(errno));
		c->sent += (size_t)n;
	}
	if ((c->sent < size) != c->want_out)
		set_events(ep, c, idx, c->sent < size);
}

/* Starts the next message: a new sequence number in its first bytes. */
static void conn_start(int ep, struct conn *c, unsigned idx, size_t size)
{
	uint64_t seq = ++c->seq;
	size_t i;

	for (i = 0; i < sizeof(seq) && i < size; i++)
		c->sbuf[i] = (unsigned char)(seq >> (8 * i));
	c->sent = c->got = 0;
	c->done = false;
	c->t0 = now_ns();
	conn_write(ep, c, idx, size);
}

/* Reads the echo; returns true once all size bytes are in and match. */
static bool conn_read(struct conn *c, unsigned idx, size_t size)
{
	ssize_t n;

	while (c->got < size) {
		/* Never read past this message: a byte too many would be a
		 * server bug, and it shows up as a mismatch next time. */
		n = recv(c->fd, c->rbuf + c->got, size - c->got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return false;
		if (n < 0)
			fail("connection %u: recv: %s", idx, strerror(errno));
		if (n == 0)
			fail("connection %u: closed by the server after %zu "
			     "of %zu bytes",
			     idx, c->got, size);
		c->got += (size_t)n;
	}
	if (c->got > c->sent)
		fail("connection %u: echo ahead of the message", idx);
	if (memcmp(c->rbuf, c->sbuf, size) != 0)
		fail("connection %u: echo differs from message %llu", idx,
		     (unsigned long long)c->seq);
	return true;
}

static void usage(void)
{
	fprintf(stderr, "usage: weft-echo-load [-c CONNS=64] [-s SIZE=64] "
			"[-d SECONDS=10] [-p SERVER_PID] HOST PORT\n");
	exit(1);
}

int main(int argc, char **argv)
{
	struct addrinfo hints, *ai;
	struct epoll_event evs[256];
	struct rlimit rl;
	struct conn *conns;
	long nconns = 64, size = 64, pid = -1;
	double seconds = 10.0, elapsed, tick_us;
	uint64_t roundtrips = 0;
	long long cpu0 = -1, cpu1 = -1;
	int64_t start, deadline, now, lat;
	char *end, cpu[32];
	unsigned idx;
	int opt, ep, n, i, ret, timeout;

	while ((opt = getopt(argc, argv, "c:s:d:p:h")) != -1) {
		switch (opt) {
		case 'c':
			nconns = parse_long("-c", optarg, 1, MAX_CONNS);
			break;
		case 's':
			size = parse_long("-s", optarg, 1, MAX_SIZE);
			break;
		case 'd':
			errno = 0;
			seconds = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(seconds > 0) ||
			    seconds > 86400)
				fail("-d must be a number of seconds in "
				     "(0, 86400], not '%s'",
				     optarg);
			break;
		case 'p':
			pid = parse_long("-p", optarg, 1, 0x7fffffff);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2)
		usage();

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	ret = getaddrinfo(argv[optind], argv[optind + 1], &hints, &ai);
	if (ret)
		fail("%s port %s: %s", argv[optind], argv[optind + 1],
		     gai_strerror(ret));

	/* One fd per connection plus a few. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)nconns + 16) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	conns = calloc((size_t)nconns, sizeof(*conns));
	if (!conns)
		fail("no memory for %ld connections", nconns);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		fail("epoll_create1: %s", strerror(errno));

	start = now_ns();
	for (idx = 0; idx < (unsigned)nconns; idx++) {
		struct conn *c = &conns[idx];
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = idx};
		long j;

		c->sbuf = malloc((size_t)size);
		c->rbuf = malloc((size_t)size);
		if (!c->sbuf || !c->rbuf)
			fail("no memory for %ld-byte buffers", size);
		/* Distinct bytes per connection and position, so an echo
		 * sent to the wrong connection fails the check too. */
		for (j = 0; j < size; j++)
			c->sbuf[j] =
			    (unsigned char)(idx * 131u + (unsigned)j * 7u);
		c->fd = connect_one(ai, start + CONNECT_RETRY_NS);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
			fail("epoll_ctl: %s", strerror(errno));
	}
	freeaddrinfo(ai);

	if (pid > 0) {
		cpu0 = proc_cpu_ticks(pid);
		if (cpu0 < 0)
			fail("cannot read /proc/%ld/stat: is the server "
			     "running?",
			     pid);
	}
	start = now_ns();
	deadline = start + (int64_t)(seconds * (double)NS_PER_S);
	for (idx = 0; idx < (unsigned)nconns; idx++)
		conn_start(ep, &conns[idx], idx, (size_t)size);

	for (;;) {
		now = now_ns();
		if (now >= deadline)
			break;
		/* Wake at least every 100 ms and at the deadline, so a
		 * silent server cannot stretch the run. */
		timeout = (int)((deadline - now + 999999) / 1000000);
		if (timeout > 100)
			timeout = 100;
		n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])),
			       timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("epoll_wait: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			struct conn *c;

			idx = evs[i].data.u32;
			c = &conns[idx];
			if ((evs[i].events & EPOLLOUT) &&
			    c->sent < (size_t)size)
				conn_write(ep, c, idx, (size_t)size);
			/* EPOLLERR/EPOLLHUP: the read reports why. */
			if (!(evs[i].events &
			      (EPOLLIN | EPOLLERR | EPOLLHUP)) ||
			    c->done)
				continue;
			if (!conn_read(c, idx, (size_t)size))
				continue;
			c->done = true;
			now = now_ns();
			lat = now - c->t0;
			hist[bucket_of(lat > 0 ? (uint64_t)lat : 0)]++;
			roundtrips++;
			if (now < deadline)
				conn_start(ep, c, idx, (size_t)size);
		}
	}
	now = now_ns();
	if (pid > 0) {
		cpu1 = proc_cpu_ticks(pid);
		if (cpu1 < 0)
			fail("cannot read /proc/%ld/stat at the end: did the "
			     "server exit?",
			     pid);
	}
	elapsed = (double)(now - start) / (double)NS_PER_S;
	if (roundtrips == 0)
		fail("no round trip completed in %.3f s", elapsed);

	if (pid > 0) {
		tick_us = 1e6 / (double)sysconf(_SC_CLK_TCK);
		snprintf(cpu, sizeof(cpu), "%.3f",
			 (double)(cpu1 - cpu0) * tick_us / (double)roundtrips);
	} else {
		snprintf(cpu, sizeof(cpu), "null");
	}
	printf("{\"conns\":%ld,\"size\":%ld,\"seconds\":%.3f,"
	       "\"roundtrips\":%llu,\"rt_per_s\":%.0f,\"p50_us\":%.2f,"
	       "\"p99_us\":%.2f,\"server_cpu_us_per_rt\":%s}\n",
	       nconns, size, elapsed, (unsigned long long)roundtrips,
	       (double)roundtrips / elapsed, percentile_us(roundtrips, 0.50),
	       percentile_us(roundtrips, 0.99), cpu);
	if (fflush(stdout) != 0)
		fail("stdout: %s", strerror(errno));
	for (idx = 0; idx < (unsigned)nconns; idx++) {
		close(conns[idx].fd);
		free(conns[idx].sbuf);
		free(conns[idx].rbuf);
	}
	free(conns);
	close(ep);
	return 0;
}
