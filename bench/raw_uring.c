/* SPDX-License-Identifier: MIT */
/*
 * weft-raw-uring: the hand-written liburing server that the TCP echo and
 * HTTP plaintext benchmarks measure weft against. No runtime, no tasks:
 * one thread and one ring per core, everything driven by completions.
 *
 *   weft-raw-uring echo|http PORT [THREADS]
 *
 * echo: sends back every byte it receives.
 * http: answers every request of a pipelined HTTP/1.1 stream with a fixed
 *       "Hello, World!" (keep-alive). A request is whatever ends in an
 *       empty line: bodies are not parsed (wrk sends GETs).
 *
 * Listens on 127.0.0.1:PORT, runs until SIGINT or SIGTERM, then exits 0.
 * Bad arguments or a failed setup print one line on stderr and exit 1.
 * One line on stderr at start says which ring flags the kernel accepted.
 *
 * Per thread:
 *
 *   listener (SO_REUSEPORT) --multishot accept--> conn
 *   conn --multishot recv, provided buffer ring--> copy into conn output
 *        (the buffer goes back to the ring at once)
 *   conn output --one IORING_OP_SEND at a time--> socket
 *
 * Connection life (every op that names a conn holds it):
 *
 *   1. A conn is live while its recv is armed, a send is in flight or a
 *      cancel of its recv is in flight (recv_armed, send_busy,
 *      cancel_busy).
 *   2. EOF (recv res 0) stops receiving; the queued output is still sent.
 *   3. An error (recv or send) marks the conn closing and shuts the socket
 *      down, which ends the multishot recv and fails a pending send.
 *   4. When no op is in flight and there is nothing left to send (or the
 *      conn is closing), conn_maybe_free() closes the fd and recycles it.
 *      No CQE can then name the conn any more.
 *
 * Output queues are two buffers: "out" is immutable while the kernel sends
 * from it; received data go into "pend", which becomes "out" when the send
 * completes. One send at a time keeps the byte order: two sends on one
 * socket may complete out of order when the first waits for space.
 *
 * Backpressure: a peer that sends without reading makes the queue grow.
 * Past OUT_HIGH_WATER the recv is cancelled and re-armed only when the
 * queue is back under OUT_LOW_WATER.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* liburing 2.3's headers have these; older ones may not. */
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

#define RING_SQ_ENTRIES 512
/* Multishot ops post many CQEs per SQE; a CQ overflow would end every
 * multishot op, so give the CQ room for bursts of all connections. */
#define RING_CQ_ENTRIES 8192
/* Provided buffers: a buffer is held only while its CQE is processed
 * (the data are copied out), so a few hundred cover any burst. */
#define BUF_ENTRIES 512 /* power of two, as the kernel requires */
#define BUF_SIZE 4096
#define BUF_GROUP 0
#define OUT_INIT_CAP 4096
#define OUT_HIGH_WATER (4u << 20)
#define OUT_LOW_WATER (1u << 20)
#define LISTEN_BACKLOG 4096
#define MAX_THREADS 1024

static const char http_response[] = "HTTP/1.1 200 OK\r\n"
				    "Content-Length: 13\r\n"
				    "Content-Type: text/plain\r\n"
				    "\r\n"
				    "Hello, World!";
#define HTTP_RESPONSE_LEN (sizeof(http_response) - 1)

enum mode { MODE_ECHO, MODE_HTTP };

/* user_data = conn pointer | tag; malloc's alignment leaves 3 low bits. */
enum op {
	OP_ACCEPT = 1,	     /* multishot accept on the listener */
	OP_ACCEPT_RETRY = 2, /* timeout before re-arming after EMFILE */
	OP_RECV = 3,	     /* multishot recv of a conn */
	OP_SEND = 4,	     /* send of a conn's "out" buffer */
	OP_CANCEL = 5,	     /* cancel of a conn's recv (backpressure) */
	OP_WAKE = 6,	     /* poll on the worker's eventfd: stop */
};
#define OP_MASK 7u
_Static_assert(alignof(max_align_t) > OP_MASK, "malloc leaves no tag bits");

struct outbuf {
	char *data;
	size_t len; /* bytes queued */
	size_t cap; /* bytes allocated */
};

struct conn {
	struct conn *prev, *next; /* worker's live list (for shutdown) */
	int fd;
	unsigned hstate;    /* http: bytes of "\r\n\r\n" matched so far */
	bool recv_armed;    /* a multishot recv names this conn */
	bool send_busy;	    /* a send from out names this conn */
	bool cancel_busy;   /* a cancel of the recv names this conn */
	bool paused;	    /* recv cancelled for backpressure */
	bool eof;	    /* peer shut its side: receive no more */
	bool closing;	    /* error: send no more, close when idle */
	size_t out_off;	    /* bytes of out already sent */
	struct outbuf out;  /* being sent; immutable while send_busy */
	struct outbuf pend; /* queued behind out */
};

struct worker {
	int idx;
	enum mode mode;
	int port;
	pthread_t tid;
	struct io_uring ring;
	bool ring_ok;
	unsigned ring_flags; /* setup flags the kernel accepted */
	int lfd;	     /* SO_REUSEPORT listener */
	int wake_fd;	     /* eventfd: main writes it to stop us */
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	char *bufs; /* BUF_ENTRIES x BUF_SIZE */
	int br_mask;
	struct __kernel_timespec accept_backoff;
	struct conn live; /* sentinel of the live list */
	struct conn *free_conns;
	bool emfile_warned;
	bool stopping; /* draining: refuse new connections */
	char err[256]; /* setup failure, read by main after the barrier */
};

static pthread_barrier_t setup_barrier;

static void die(struct worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* A failure once running: one line, and the whole process goes. */
static void die(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "weft-raw-uring: thread %d: ", w->idx);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int setup_fail(struct worker *w, const char *what, int err)
{
	snprintf(w->err, sizeof(w->err), "thread %d: %s: %s", w->idx, what,
		 strerror(err));
	return -err;
}

/* Returns a vacant sqe; submits what is queued when the SQ is full. */
static struct io_uring_sqe *sqe_get(struct worker *w)
{
	struct io_uring_sqe *sqe;
	int ret;

	while (!(sqe = io_uring_get_sqe(&w->ring))) {
		ret = io_uring_submit(&w->ring);
		if (ret < 0 && ret != -EINTR)
			die(w, "io_uring_submit: %s", strerror(-ret));
	}
	return sqe;
}

static void sqe_set(struct io_uring_sqe *sqe, struct conn *c, enum op op)
{
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | op);
}

static void arm_accept(struct worker *w)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	/* Multishot: one SQE posts a CQE per accepted connection. */
	io_uring_prep_multishot_accept(sqe, w->lfd, NULL, NULL, SOCK_CLOEXEC);
	sqe_set(sqe, NULL, OP_ACCEPT);
}

static void arm_recv(struct worker *w, struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	/* Multishot recv with no buffer of its own: the kernel picks one
	 * from group BUF_GROUP for each chunk (IOSQE_BUFFER_SELECT), so an
	 * idle connection pins no memory. */
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BUF_GROUP;
	sqe_set(sqe, c, OP_RECV);
	c->recv_armed = true;
}

static void send_start(struct worker *w, struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(w);

	/* MSG_WAITALL: the kernel itself retries the rest of a short send
	 * on a stream socket, so a short result means an error stopped it.
	 * MSG_NOSIGNAL: a reset peer gives -EPIPE, not SIGPIPE. */
	io_uring_prep_send(sqe, c->fd, c->out.data + c->out_off,
			   c->out.len - c->out_off, MSG_WAITALL | MSG_NOSIGNAL);
	sqe_set(sqe, c, OP_SEND);
	c->send_busy = true;
}

/* Hands buffer bid back to the kernel. Publishing each one at once (a
 * store-release of the tail, a plain store on x86) means a recv re-armed
 * after -ENOBUFS always sees every buffer returned before it. */
static void buf_return(struct worker *w, unsigned bid)
{
	io_uring_buf_ring_add(w->br, w->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE,
			      (unsigned short)bid, w->br_mask, 0);
	io_uring_buf_ring_advance(w->br, 1);
}

static size_t conn_queued(const struct conn *c)
{
	return c->out.len - c->out_off + c->pend.len;
}

static void conn_fail(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	/* Ends the multishot recv (it completes with 0) and fails a send
	 * that waits for space; close() alone would not: the ops hold their
	 * own reference to the file. */
	shutdown(c->fd, SHUT_RDWR);
}

static void outbuf_free(struct outbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static void conn_maybe_free(struct worker *w, struct conn *c)
{
	if (c->recv_armed || c->send_busy || c->cancel_busy)
		return;
	if (!c->closing && !(c->eof && conn_queued(c) == 0))
		return;
	close(c->fd);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	/* Keep buffers of the usual size for the next conn; drop big ones. */
	if (c->out.cap > OUT_INIT_CAP)
		outbuf_free(&c->out);
	if (c->pend.cap > OUT_INIT_CAP)
		outbuf_free(&c->pend);
	c->next = w->free_conns;
	w->free_conns = c;
}

static void conn_new(struct worker *w, int fd)
{
	struct conn *c = w->free_conns;
	struct outbuf out, pend;
	int one = 1;

	if (c) {
		w->free_conns = c->next;
		out = c->out;
		pend = c->pend;
	} else {
		c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		memset(&out, 0, sizeof(out));
		memset(&pend, 0, sizeof(pend));
	}
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->out = out;
	c->pend = pend;
	c->out.len = c->pend.len = 0;
	/* Responses are small and written once: Nagle would hold back the
	 * tail of a response split by a full send buffer. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->next = w->live.next;
	c->prev = &w->live;
	w->live.next->prev = c;
	w->live.next = c;
	arm_recv(w, c);
}

static int outbuf_reserve(struct outbuf *b, size_t add)
{
	size_t cap = b->cap ? b->cap : OUT_INIT_CAP;
	char *p;

	if (b->len + add <= b->cap)
		return 0;
	while (cap < b->len + add)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

/* The buffer the next output goes into: out when idle, else pend. */
static struct outbuf *conn_tail(struct conn *c)
{
	return c->send_busy ? &c->pend : &c->out;
}

/* Counts request ends ("\r\n\r\n") in p[0..n), carrying the partial match
 * in c->hstate across receives: 0 nothing, 1 "\r", 2 "\r\n", 3 "\r\n\r". */
static unsigned http_count(struct conn *c, const char *p, size_t n)
{
	unsigned st = c->hstate, cnt = 0;
	size_t i = 0;
	const char *r;
	char ch;

	while (i < n) {
		if (st == 0) {
			r = memchr(p + i, '\r', n - i);
			if (!r)
				break;
			i = (size_t)(r - p) + 1;
			st = 1;
			continue;
		}
		ch = p[i++];
		if (ch == '\r')
			st = st == 2 ? 3 : 1;
		else if (ch == '\n' && st == 1)
			st = 2;
		else if (ch == '\n' && st == 3) {
			cnt++;
			st = 0;
		} else
			st = 0;
	}
	c->hstate = st;
	return cnt;
}

/* Queues the reply to n received bytes and starts a send if none runs. */
static void conn_consume(struct worker *w, struct conn *c, const char *p,
			 size_t n)
{
	struct outbuf *b = conn_tail(c);
	unsigned reqs, i;

	if (w->mode == MODE_ECHO) {
		if (outbuf_reserve(b, n) < 0) {
			conn_fail(c);
			return;
		}
		memcpy(b->data + b->len, p, n);
		b->len += n;
	} else {
		reqs = http_count(c, p, n);
		if (!reqs)
			return;
		if (outbuf_reserve(b, (size_t)reqs * HTTP_RESPONSE_LEN) < 0) {
			conn_fail(c);
			return;
		}
		for (i = 0; i < reqs; i++) {
			memcpy(b->data + b->len, http_response,
			       HTTP_RESPONSE_LEN);
			b->len += HTTP_RESPONSE_LEN;
		}
	}
	if (!c->send_busy)
		send_start(w, c);
	if (conn_queued(c) > OUT_HIGH_WATER && c->recv_armed && !c->paused &&
	    !c->cancel_busy) {
		struct io_uring_sqe *sqe = sqe_get(w);

		c->paused = true;
		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)c | OP_RECV,
				       0);
		sqe_set(sqe, c, OP_CANCEL);
		c->cancel_busy = true;
	}
}

/* Re-arms a recv stopped for backpressure once the queue has drained. */
static void conn_maybe_resume(struct worker *w, struct conn *c)
{
	if (c->paused && !c->recv_armed && !c->closing && !c->eof &&
	    conn_queued(c) <= OUT_LOW_WATER) {
		c->paused = false;
		arm_recv(w, c);
	}
}

static void on_accept(struct worker *w, const struct io_uring_cqe *cqe)
{
	struct io_uring_sqe *sqe;

	if (cqe->res >= 0 && w->stopping) {
		close(cqe->res);
	} else if (cqe->res >= 0) {
		conn_new(w, cqe->res);
	} else if (cqe->res == -EINVAL || cqe->res == -EOPNOTSUPP) {
		die(w, "multishot accept: %s", strerror(-cqe->res));
	} else if (cqe->res == -EMFILE || cqe->res == -ENFILE ||
		   cqe->res == -ENOMEM || cqe->res == -ENOBUFS) {
		/* Out of descriptors: re-arming at once would spin. Wait
		 * 10 ms; the backlog holds the connection meanwhile. */
		if (!w->emfile_warned) {
			fprintf(stderr,
				"weft-raw-uring: thread %d: accept: %s\n",
				w->idx, strerror(-cqe->res));
			w->emfile_warned = true;
		}
		if (!(cqe->flags & IORING_CQE_F_MORE)) {
			sqe = sqe_get(w);
			w->accept_backoff.tv_sec = 0;
			w->accept_backoff.tv_nsec = 10 * 1000 * 1000;
			io_uring_prep_timeout(sqe, &w->accept_backoff, 0, 0);
			sqe_set(sqe, NULL, OP_ACCEPT_RETRY);
			return;
		}
	}
	/* Other errors (ECONNABORTED, ...) concern one connection. Without
	 * F_MORE the multishot accept has ended: start another. */
	if (!(cqe->flags & IORING_CQE_F_MORE))
		arm_accept(w);
}

static void on_recv(struct worker *w, struct conn *c,
		    const struct io_uring_cqe *cqe)
{
	int res = cqe->res;
	unsigned bid;

	/* Without F_MORE this is the multishot recv's last CQE. */
	if (!(cqe->flags & IORING_CQE_F_MORE))
		c->recv_armed = false;
	if (res > 0) {
		if (!(cqe->flags & IORING_CQE_F_BUFFER))
			die(w, "recv completed without a provided buffer");
		bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		if (!c->closing)
			conn_consume(w, c, w->bufs + (size_t)bid * BUF_SIZE,
				     (size_t)res);
		buf_return(w, bid);
	} else if (res == 0) {
		c->eof = true;
	} else if (res == -ENOBUFS) {
		/* Every buffer sat in unprocessed CQEs; they are back in the
		 * ring by the time the re-armed recv is submitted. */
	} else if (res == -ECANCELED) {
		/* Our backpressure cancel. */
	} else {
		conn_fail(c); /* ECONNRESET and friends */
	}
	if (!c->recv_armed) {
		if (c->paused)
			conn_maybe_resume(w, c);
		else if (!c->eof && !c->closing)
			arm_recv(w, c);
	}
	conn_maybe_free(w, c);
}

static void on_send(struct worker *w, struct conn *c,
		    const struct io_uring_cqe *cqe)
{
	struct outbuf tmp;

	c->send_busy = false;
	if (cqe->res <= 0) {
		/* -EPIPE, -ECONNRESET, or 0 for a non-empty send. */
		conn_fail(c);
	} else if (!c->closing) {
		c->out_off += (size_t)cqe->res;
		if (c->out_off < c->out.len) {
			send_start(w, c);
		} else {
			c->out.len = c->out_off = 0;
			if (c->pend.len) {
				tmp = c->out;
				c->out = c->pend;
				c->pend = tmp;
				send_start(w, c);
			}
		}
		conn_maybe_resume(w, c);
	}
	conn_maybe_free(w, c);
}

static bool handle_cqe(struct worker *w, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct conn *c = (struct conn *)(uintptr_t)(ud & ~(uint64_t)OP_MASK);

	switch ((enum op)(ud & OP_MASK)) {
	case OP_ACCEPT:
		on_accept(w, cqe);
		break;
	case OP_ACCEPT_RETRY:
		arm_accept(w);
		break;
	case OP_RECV:
		on_recv(w, c, cqe);
		break;
	case OP_SEND:
		on_send(w, c, cqe);
		break;
	case OP_CANCEL:
		c->cancel_busy = false;
		conn_maybe_resume(w, c);
		conn_maybe_free(w, c);
		break;
	case OP_WAKE:
		return true;
	default:
		die(w, "completion with unknown user_data %#llx",
		    (unsigned long long)ud);
	}
	return false;
}

static int listener_open(struct worker *w)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return setup_fail(w, "socket", errno);
	w->lfd = fd;
	/* SO_REUSEPORT: one listener per thread on the same port, and the
	 * kernel spreads incoming connections over them by hash, so no
	 * thread hands connections to another. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return setup_fail(w, "SO_REUSEADDR", errno);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		return setup_fail(w, "SO_REUSEPORT", errno);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)w->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return setup_fail(w, "bind 127.0.0.1", errno);
	if (listen(fd, LISTEN_BACKLOG) < 0)
		return setup_fail(w, "listen", errno);
	return 0;
}

/*
 * Flags, best first; each later set drops what an older kernel refuses
 * with -EINVAL:
 *   SINGLE_ISSUER  only this thread submits: the kernel skips the
 *                  submission lock and can tie task work to us.
 *   DEFER_TASKRUN  completion work (the socket copy for a recv, posting
 *                  the CQE) runs when we wait for events, not at an
 *                  interrupt of whatever we are doing: batched, and never
 *                  in the middle of our CQE loop. Needs SINGLE_ISSUER.
 *   COOP_TASKRUN   no IPI to run task work: we enter the kernel often
 *                  enough. Redundant with DEFER_TASKRUN, harmless.
 *   CQSIZE         a CQ bigger than the SQ (see RING_CQ_ENTRIES).
 */
static const unsigned ring_flag_sets[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
	IORING_SETUP_COOP_TASKRUN,
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
    IORING_SETUP_COOP_TASKRUN,
    0,
};

static int ring_open(struct worker *w)
{
	struct io_uring_params p;
	size_t i;
	int ret = -EINVAL;

	for (i = 0; i < sizeof(ring_flag_sets) / sizeof(ring_flag_sets[0]);
	     i++) {
		memset(&p, 0, sizeof(p));
		p.flags = ring_flag_sets[i] | IORING_SETUP_CQSIZE;
		p.cq_entries = RING_CQ_ENTRIES;
		ret = io_uring_queue_init_params(RING_SQ_ENTRIES, &w->ring, &p);
		if (ret != -EINVAL)
			break;
	}
	if (ret < 0)
		return setup_fail(w, "io_uring_queue_init_params", -ret);
	w->ring_ok = true;
	w->ring_flags = ring_flag_sets[i];
	/* Registered ring fd: io_uring_enter skips the fd table lookup and
	 * its reference count on every call. Optional. */
	(void)io_uring_register_ring_fd(&w->ring);
	return 0;
}

static int bufring_open(struct worker *w)
{
	struct io_uring_buf_reg reg;
	long page = sysconf(_SC_PAGESIZE);
	unsigned i;
	int ret;

	/* The kernel reads the ring straight from our memory; it must be
	 * page aligned, which an anonymous mmap is. liburing 2.3 lacks
	 * io_uring_setup_buf_ring(), so this is what it would do. */
	w->br_bytes = BUF_ENTRIES * sizeof(struct io_uring_buf);
	w->br_bytes = (w->br_bytes + (size_t)page - 1) & ~((size_t)page - 1);
	w->br = mmap(NULL, w->br_bytes, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w->br == MAP_FAILED) {
		w->br = NULL;
		return setup_fail(w, "mmap buffer ring", errno);
	}
	w->bufs = malloc((size_t)BUF_ENTRIES * BUF_SIZE);
	if (!w->bufs)
		return setup_fail(w, "buffers", ENOMEM);
	io_uring_buf_ring_init(w->br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)w->br;
	reg.ring_entries = BUF_ENTRIES;
	reg.bgid = BUF_GROUP;
	ret = io_uring_register_buf_ring(&w->ring, &reg, 0);
	if (ret < 0)
		return setup_fail(w, "io_uring_register_buf_ring", -ret);
	w->br_mask = io_uring_buf_ring_mask(BUF_ENTRIES);
	for (i = 0; i < BUF_ENTRIES; i++)
		io_uring_buf_ring_add(w->br, w->bufs + (size_t)i * BUF_SIZE,
				      BUF_SIZE, (unsigned short)i, w->br_mask,
				      (int)i);
	io_uring_buf_ring_advance(w->br, BUF_ENTRIES);
	return 0;
}

static int worker_setup(struct worker *w)
{
	struct io_uring_sqe *sqe;
	int ret;

	w->live.next = w->live.prev = &w->live;
	/* The ring is created here, not in main: with SINGLE_ISSUER the
	 * creating thread is the only one allowed to submit. */
	ret = listener_open(w);
	if (ret == 0)
		ret = ring_open(w);
	if (ret == 0)
		ret = bufring_open(w);
	if (ret < 0)
		return ret;
	w->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (w->wake_fd < 0)
		return setup_fail(w, "eventfd", errno);
	sqe = sqe_get(w);
	io_uring_prep_poll_add(sqe, w->wake_fd, POLLIN);
	sqe_set(sqe, NULL, OP_WAKE);
	arm_accept(w);
	return 0;
}

/* Reaps completions until a CQE for the eventfd says stop. */
static void worker_loop(struct worker *w)
{
	struct io_uring_cqe *cqe;
	unsigned head, n;
	bool stop = false;
	int ret;

	while (!stop) {
		ret = io_uring_submit_and_wait(&w->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			die(w, "io_uring_submit_and_wait: %s", strerror(-ret));
		n = 0;
		io_uring_for_each_cqe(&w->ring, head, cqe)
		{
			n++;
			if (handle_cqe(w, cqe))
				stop = true;
		}
		io_uring_cq_advance(&w->ring, n);
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Shuts every connection down and reaps until no op names a conn (at most
 * a second), so no send still reads an output buffer when they are freed
 * and the ring is torn down by the thread that owns it. */
static void worker_drain(struct worker *w)
{
	struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 100000000};
	struct io_uring_cqe *cqe;
	struct conn *c;
	double deadline = now_s() + 1.0;
	unsigned head, n;
	int ret;

	w->stopping = true;
	for (c = w->live.next; c != &w->live; c = c->next)
		conn_fail(c);
	while (w->live.next != &w->live && now_s() < deadline) {
		ret = io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts,
						       NULL);
		if (ret < 0 && ret != -ETIME && ret != -EINTR)
			break;
		n = 0;
		io_uring_for_each_cqe(&w->ring, head, cqe)
		{
			n++;
			handle_cqe(w, cqe);
		}
		io_uring_cq_advance(&w->ring, n);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct conn *c;
	bool drained;
	int ret;

	ret = worker_setup(w);
	pthread_barrier_wait(&setup_barrier);
	if (ret < 0)
		return NULL; /* main reports w->err and exits */
	worker_loop(w);
	worker_drain(w);
	drained = w->live.next == &w->live;
	/* The owner tears the ring down: it holds the registered ring fd,
	 * and closing the ring cancels whatever is left. */
	io_uring_queue_exit(&w->ring);
	w->ring_ok = false;
	while ((c = w->live.next) != &w->live) {
		close(c->fd);
		c->next->prev = c->prev;
		c->prev->next = c->next;
		/* Not drained: the ring's exit work may still read these. */
		if (drained) {
			outbuf_free(&c->out);
			outbuf_free(&c->pend);
			free(c);
		}
	}
	while ((c = w->free_conns)) {
		w->free_conns = c->next;
		outbuf_free(&c->out);
		outbuf_free(&c->pend);
		free(c);
	}
	return NULL;
}

/* After the thread is joined, or for a thread whose setup failed. */
static void worker_close(struct worker *w)
{
	if (w->ring_ok)
		io_uring_queue_exit(&w->ring);
	if (w->br)
		munmap(w->br, w->br_bytes);
	free(w->bufs);
	if (w->lfd >= 0)
		close(w->lfd);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
}

static void flags_str(unsigned f, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s",
		 f & IORING_SETUP_SINGLE_ISSUER ? "SINGLE_ISSUER " : "",
		 f & IORING_SETUP_DEFER_TASKRUN ? "DEFER_TASKRUN " : "",
		 f & IORING_SETUP_COOP_TASKRUN ? "COOP_TASKRUN " : "",
		 f ? "" : "none ");
	buf[strlen(buf) - 1] = '\0'; /* the last blank */
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static void usage_fail(const char *msg, const char *arg)
{
	fprintf(stderr,
		"weft-raw-uring: %s%s%s (usage: weft-raw-uring echo|http PORT "
		"[THREADS])\n",
		msg, arg ? ": " : "", arg ? arg : "");
	exit(1);
}

int main(int argc, char **argv)
{
	struct worker *workers;
	struct rlimit rl;
	sigset_t sigs;
	enum mode mode = MODE_ECHO;
	long port, nthreads;
	char flags[96];
	uint64_t one = 1;
	int i, ret, sig;

	if (argc < 3 || argc > 4)
		usage_fail("wrong number of arguments", NULL);
	if (strcmp(argv[1], "echo") == 0)
		mode = MODE_ECHO;
	else if (strcmp(argv[1], "http") == 0)
		mode = MODE_HTTP;
	else
		usage_fail("unknown mode", argv[1]);
	if (parse_int(argv[2], 1, 65535, &port) < 0)
		usage_fail("PORT must be 1..65535", argv[2]);
	nthreads = sysconf(_SC_NPROCESSORS_ONLN);
	if (nthreads < 1)
		nthreads = 1;
	if (argc == 4 && parse_int(argv[3], 1, MAX_THREADS, &nthreads) < 0)
		usage_fail("THREADS must be 1..1024", argv[3]);

	/* One fd per connection: take the hard limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* Workers inherit this mask; only sigwait() below takes the signals,
	 * so no io_uring_enter is ever interrupted. A shell starts
	 * background jobs with SIGINT ignored, and an ignored signal is
	 * dropped before sigwait() could see it: restore the default. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	workers = calloc((size_t)nthreads, sizeof(*workers));
	if (!workers) {
		fprintf(stderr, "weft-raw-uring: no memory\n");
		return 1;
	}
	pthread_barrier_init(&setup_barrier, NULL, (unsigned)nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		workers[i].idx = i;
		workers[i].mode = mode;
		workers[i].port = (int)port;
		workers[i].lfd = workers[i].wake_fd = -1;
		ret = pthread_create(&workers[i].tid, NULL, worker_main,
				     &workers[i]);
		if (ret) {
			fprintf(stderr, "weft-raw-uring: pthread_create: %s\n",
				strerror(ret));
			return 1; /* exits the process, threads and all */
		}
	}
	pthread_barrier_wait(&setup_barrier);
	for (i = 0; i < nthreads; i++) {
		if (workers[i].err[0]) {
			fprintf(stderr, "weft-raw-uring: %s\n", workers[i].err);
			return 1;
		}
	}
	flags_str(workers[0].ring_flags, flags, sizeof(flags));
	fprintf(stderr,
		"weft-raw-uring: %s on 127.0.0.1:%ld, %ld threads, ring flags "
		"%s\n",
		mode == MODE_ECHO ? "echo" : "http", port, nthreads, flags);

	do
		ret = sigwait(&sigs, &sig);
	while (ret == EINTR);
	for (i = 0; i < nthreads; i++)
		if (write(workers[i].wake_fd, &one, sizeof(one)) < 0)
			return 1;
	for (i = 0; i < nthreads; i++) {
		pthread_join(workers[i].tid, NULL);
		worker_close(&workers[i]);
	}
	free(workers);
	return 0;
}
