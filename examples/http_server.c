/* SPDX-License-Identifier: MIT */
/*
 * http_server: an HTTP/1.1 server with keep-alive and pipelining, on
 * weft_serve. One task per connection reads requests with weft_recv into a
 * buffer on its own stack, parses them in place and answers all the
 * requests that one read brought in with one weft_send. Nothing is
 * allocated per request, and nothing is copied but the answers (a
 * ready-made one for the common case; weft_stream would add a copy of
 * every request and of every answer).
 *
 *   http_server [-l ADDR] [-w WORKERS] [-b uring|epoll] [-r] [-i SECONDS]
 *               PORT
 *
 *   GET or HEAD /       200 "Hello, World!" (text/plain); a query is ignored
 *   other methods on /  405
 *   any other path      404
 *   malformed request   400, then close
 *   header section
 *   over 8 KiB          431, then close
 *   request body        read and discarded (Content-Length); chunked
 *                       request bodies get 501, then close
 *   HTTP/2 and later    505, then close
 *
 * Keep-alive follows RFC 9112: HTTP/1.1 connections stay open unless a
 * request says "Connection: close"; HTTP/1.0 ones close after the response
 * unless the request says "Connection: keep-alive".
 *
 * -l ADDR   listen on ADDR (default: every address)
 * -w N      worker threads (default: one per CPU)
 * -b NAME   I/O backend: uring or epoll (default: uring if available)
 * -r        one SO_REUSEPORT listener and accept loop per worker
 * -i S      close a connection after S seconds without progress: a
 *           round of receiving and answering that takes longer (an idle
 *           keep-alive connection, a request that never ends, a client
 *           that does not read) ends it. Default 0: never; with it, every
 *           wait runs under a deadline scope, which arms a timer.
 *
 * SIGINT or SIGTERM stops accepting, lets connections finish what they are
 * doing for a moment (GRACE_MS), closes the rest and exits 0. Bad
 * arguments exit 2; a failure prints one line on stderr and exits 1.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <weft.h>
#include "common.h"

#define PROG "http_server"
#define HDR_MAX (8 * 1024)	/* request line + headers + blank line */
#define IN_SIZE (16 * 1024)	/* > HDR_MAX: a whole header section fits */
#define OUT_SIZE (16 * 1024)	/* responses of one batch of requests */
#define RESP_MAX 320		/* the longest response emit() builds */
#define LINGER_MS 500		/* reading what follows a closing answer */
#define GRACE_MS 250		/* connections' time to finish at shutdown */
#define STACK_SIZE (128 * 1024) /* a connection task's stack */

_Static_assert(IN_SIZE > HDR_MAX, "a full header section must fit");

/* ---- Date header --------------------------------------------------------- */

/* "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 IMF-fixdate), without libc's
 * locale or time zone machinery: days to a civil date after H. Hinnant. */
#define DATE_LEN 29

static void put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
}

static void format_date(char out[DATE_LEN], int64_t t)
{
	static const char wdays[] = "SunMonTueWedThuFriSat";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int64_t days = t / 86400, secs = t % 86400, z, era, doe, yoe, y, doy;
	int64_t mp, d, m;

	if (secs < 0) {
		secs += 86400;
		days--;
	}
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;

	/* 1970-01-01 was a Thursday. */
	memcpy(out, wdays + 3 * (((days % 7) + 11) % 7), 3);
	memcpy(out + 3, ", ", 2);
	put2(out + 5, (unsigned)d);
	out[7] = ' ';
	memcpy(out + 8, months + 3 * (m - 1), 3);
	out[11] = ' ';
	put2(out + 12, (unsigned)(y / 100 % 100));
	put2(out + 14, (unsigned)(y % 100));
	out[16] = ' ';
	put2(out + 17, (unsigned)(secs / 3600));
	out[19] = ':';
	put2(out + 20, (unsigned)(secs / 60 % 60));
	out[22] = ':';
	put2(out + 23, (unsigned)(secs % 60));
	memcpy(out + 25, " GMT", 4);
}

/* ---- Responses ----------------------------------------------------------- */

#define CRLF "\r\n"
#define HELLO "Hello, World!"

/* The common answer, GET / on a kept-alive connection, is this template
 * copied in one piece; each connection refreshes its Date once a second. */
#define OK_HEAD                                                             \
	"HTTP/1.1 200 OK" CRLF                                              \
	"Content-Length: 13" CRLF                                           \
	"Content-Type: text/plain" CRLF                                     \
	"Date: "
#define OK_HEAD_LEN (sizeof(OK_HEAD) - 1)
#define OK_TAIL CRLF CRLF HELLO
#define OK_LEN (OK_HEAD_LEN + DATE_LEN + sizeof(OK_TAIL) - 1)
#define OK_BODY_LEN (sizeof(HELLO) - 1)

struct status {
	int code;
	const char *line;	/* status line with CRLF */
	const char *body;	/* text/plain body */
};

/* Whether the connection goes on after one of them is parse()'s call. */
static const struct status statuses[] = {
	{ 200, "HTTP/1.1 200 OK" CRLF, HELLO },
	{ 400, "HTTP/1.1 400 Bad Request" CRLF, "Bad Request\n" },
	{ 404, "HTTP/1.1 404 Not Found" CRLF, "Not Found\n" },
	{ 405, "HTTP/1.1 405 Method Not Allowed" CRLF "Allow: GET, HEAD" CRLF,
	  "Method Not Allowed\n" },
	{ 431, "HTTP/1.1 431 Request Header Fields Too Large" CRLF,
	  "Request Header Fields Too Large\n" },
	{ 501, "HTTP/1.1 501 Not Implemented" CRLF, "Not Implemented\n" },
	{ 505, "HTTP/1.1 505 HTTP Version Not Supported" CRLF,
	  "HTTP Version Not Supported\n" },
};

static const struct status *status_of(int code)
{
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (statuses[i].code == code)
			return &statuses[i];
	return &statuses[1];
}

/* ---- A connection -------------------------------------------------------- */

/*
 * All of a connection's state, on its task's stack:
 *
 *   in:   0        start              end           IN_SIZE
 *         [ answered | not yet parsed   |  free space  ]
 *   out:  [ responses not yet sent  | free ]   (olen bytes)
 */
struct conn {
	int fd;
	uint64_t idle_ns;	/* -i: the longest round, or 0 */
	size_t start, end;	/* in[start, end): received, not parsed */
	uint64_t body_left;	/* bytes of a request body still to skip */
	size_t olen;		/* out[0, olen): responses to send */
	int64_t date_sec;	/* the second ok[]'s Date shows */
	char ok[OK_LEN];	/* the 200 keep-alive response */
	char in[IN_SIZE];
	char out[OUT_SIZE];
};

/* The parse of one request. */
struct req {
	size_t len;		/* bytes of the header section */
	int status;		/* the answer: 200, 404, ... */
	bool head;		/* HEAD: no body in the answer */
	bool keep_alive;	/* the connection goes on after it */
	bool v10;		/* HTTP/1.0 */
	uint64_t body_len;	/* Content-Length of the request */
};

/* Sends out[0, olen) in full: one weft_send, unless the socket takes
 * less at once. */
static int flush(struct conn *c)
{
	ssize_t rc = ex_send_all(c->fd, c->out, c->olen);

	c->olen = 0;
	return rc < 0 ? (int)rc : 0;
}

static void refresh_date(struct conn *c)
{
	struct timespec ts;

	/* The coarse clock is a read of the vDSO page: no system call. */
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	if (ts.tv_sec != c->date_sec) {
		c->date_sec = ts.tv_sec;
		format_date(c->ok + OK_HEAD_LEN, ts.tv_sec);
	}
}

static void conn_init(struct conn *c, int fd, uint64_t idle_ns)
{
	c->fd = fd;
	c->idle_ns = idle_ns;
	c->start = c->end = 0;
	c->body_left = 0;
	c->olen = 0;
	c->date_sec = -1;
	memcpy(c->ok, OK_HEAD, OK_HEAD_LEN);
	memcpy(c->ok + OK_HEAD_LEN + DATE_LEN, OK_TAIL, sizeof(OK_TAIL) - 1);
}

static void put(struct conn *c, const char *s, size_t n)
{
	memcpy(c->out + c->olen, s, n);
	c->olen += n;
}

static void puts_(struct conn *c, const char *s)
{
	put(c, s, strlen(s));
}

/* Appends the answer to r; flushes first if out[] could overflow.
 * Returns 0 or the send's error. */
static int emit(struct conn *c, const struct req *r)
{
	const struct status *st;
	char num[24];
	size_t blen;
	int rc;

	if (c->olen > OUT_SIZE - RESP_MAX && (rc = flush(c)) < 0)
		return rc;
	if (r->status == 200 && r->keep_alive && !r->v10) {
		/* One copy of a constant size (a few vector moves; a
		 * variable size would be a slow-starting rep movs); a HEAD
		 * answer then leaves the body out. */
		memcpy(c->out + c->olen, c->ok, OK_LEN);
		c->olen += r->head ? OK_LEN - OK_BODY_LEN : OK_LEN;
		return 0;
	}
	st = status_of(r->status);
	blen = strlen(st->body);
	puts_(c, st->line);
	puts_(c, "Content-Length: ");
	put(c, num, (size_t)snprintf(num, sizeof(num), "%zu", blen));
	puts_(c, CRLF "Content-Type: text/plain" CRLF "Date: ");
	put(c, c->ok + OK_HEAD_LEN, DATE_LEN);
	if (!r->keep_alive)
		puts_(c, CRLF "Connection: close");
	else if (r->v10)
		puts_(c, CRLF "Connection: keep-alive");
	puts_(c, CRLF CRLF);
	if (!r->head)
		put(c, st->body, blen);
	return 0;
}

/* ---- Parsing ------------------------------------------------------------- */

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char ch)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || (ch && strchr(extra, ch));
}

static unsigned char lower(unsigned char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + 32) : ch;
}

/* s[0, n) equals the lower-case word w, ignoring ASCII case. */
static bool ieq(const char *s, size_t n, const char *w)
{
	size_t i;

	for (i = 0; i < n && w[i]; i++)
		if (lower((unsigned char)s[i]) != (unsigned char)w[i])
			return false;
	return i == n && !w[i];
}

/* The Connection header's options: sets *close / *keep for the tokens
 * "close" and "keep-alive" in a comma-separated list. */
static void connection_tokens(const char *v, size_t n, bool *close,
			      bool *keep)
{
	size_t i = 0;

	while (i < n) {
		size_t b, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		b = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (ieq(v + b, e - b, "close"))
			*close = true;
		else if (ieq(v + b, e - b, "keep-alive"))
			*keep = true;
	}
}

/* Content-Length: 1*DIGIT. Returns false if malformed or too large. */
static bool parse_length(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;

	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x;
	return true;
}

/* The answer to a request for `target` with `method`. */
static int route(const char *method, size_t mlen, const char *target,
		 size_t tlen, bool *head)
{
	size_t plen;

	/* absolute-form: skip "http://authority" (RFC 9112 3.2.2). */
	if (tlen > 7 && ieq(target, 7, "http://")) {
		const char *slash = memchr(target + 7, '/', tlen - 7);

		if (!slash)
			return 400;
		tlen -= (size_t)(slash - target);
		target = slash;
	}
	for (plen = 0; plen < tlen; plen++)
		if (target[plen] == '?' || target[plen] == '#')
			break;
	if (plen != 1 || target[0] != '/')
		return 404;
	*head = mlen == 4 && memcmp(method, "HEAD", 4) == 0;
	if (*head || (mlen == 3 && memcmp(method, "GET", 3) == 0))
		return 200;
	return 405;
}

/*
 * Parses the request at p[0, n). Returns 1 and fills *r when its header
 * section is complete (r->status may be an error to answer), 0 when more
 * bytes are needed. Errors that end the connection set r->keep_alive false.
 */
static int parse(const char *p, size_t n, struct req *r)
{
	const char *end = p + (n < HDR_MAX ? n : HDR_MAX);
	const char *s = p, *eol, *method, *target, *sp;
	size_t mlen, tlen, hosts = 0;
	bool close = false, keep = false, have_len = false;

	r->status = 400;
	r->head = false;
	r->keep_alive = false;
	r->v10 = false;
	r->body_len = 0;

	/* RFC 9112 2.2: ignore empty lines before the request line. */
	while (end - s >= 2 && s[0] == '\r' && s[1] == '\n')
		s += 2;
	if (end - s == 1 && s[0] == '\r')
		goto more;

	/* Request line: method SP request-target SP HTTP-version CRLF. */
	eol = memchr(s, '\n', (size_t)(end - s));
	if (!eol)
		goto more;
	if (eol == s || eol[-1] != '\r')
		goto done;
	method = s;
	sp = memchr(s, ' ', (size_t)(eol - s));
	if (!sp || sp == s)
		goto done;
	mlen = (size_t)(sp - s);
	for (size_t i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)method[i]))
			goto done;
	target = sp + 1;
	sp = memchr(target, ' ', (size_t)(eol - target));
	if (!sp || sp == target)
		goto done;
	tlen = (size_t)(sp - target);
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)target[i] <= ' ' || target[i] == 0x7f)
			goto done;
	/* "HTTP/" DIGIT "." DIGIT CR */
	if (eol - sp != 10 || memcmp(sp + 1, "HTTP/", 5) != 0 ||
	    sp[6] < '0' || sp[6] > '9' || sp[7] != '.' || sp[8] < '0' ||
	    sp[8] > '9')
		goto done;
	if (sp[6] != '1') {
		r->status = sp[6] == '0' ? 400 : 505;
		goto done;
	}
	r->v10 = sp[8] == '0';

	/* Header fields up to the empty line. */
	for (s = eol + 1;; s = eol + 1) {
		const char *colon, *v, *ve;
		size_t nlen;

		eol = memchr(s, '\n', (size_t)(end - s));
		if (!eol)
			goto more;
		if (eol == s || eol[-1] != '\r')
			goto done;
		if (eol == s + 1)
			break; /* CRLF: end of the header section */
		colon = memchr(s, ':', (size_t)(eol - s));
		if (!colon || colon == s)
			goto done;
		/* A name that is not a token; also obs-fold (a line that
		 * starts with SP or HTAB), which RFC 9112 5.2 lets a server
		 * reject with 400. */
		nlen = (size_t)(colon - s);
		for (size_t i = 0; i < nlen; i++)
			if (!is_tchar((unsigned char)s[i]))
				goto done;
		v = colon + 1;
		ve = eol - 1;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		switch (nlen) {
		case 4:
			if (ieq(s, nlen, "host"))
				hosts++;
			break;
		case 10:
			if (ieq(s, nlen, "connection"))
				connection_tokens(v, (size_t)(ve - v), &close,
						  &keep);
			break;
		case 14:
			if (ieq(s, nlen, "content-length")) {
				uint64_t len;

				if (!parse_length(v, (size_t)(ve - v), &len) ||
				    (have_len && len != r->body_len))
					goto done;
				have_len = true;
				r->body_len = len;
			}
			break;
		case 17:
			if (ieq(s, nlen, "transfer-encoding")) {
				r->status = 501;
				goto done;
			}
			break;
		}
	}
	r->len = (size_t)(eol + 1 - p);
	/* RFC 9112 3.2: exactly one Host in HTTP/1.1. */
	if (!r->v10 ? hosts != 1 : hosts > 1)
		goto done;
	r->keep_alive = r->v10 ? keep && !close : !close;
	r->status = route(method, mlen, target, tlen, &r->head);
	return 1;

more:
	if (n < HDR_MAX)
		return 0;
	r->status = 431;
done:
	r->len = n;
	r->keep_alive = false;
	r->body_len = 0;
	return 1;
}

/*
 * Answers every complete request in in[start, end). Returns 1 if the
 * connection must close after the responses are sent, 0 to read on, or
 * a send error.
 */
static int process(struct conn *c)
{
	bool dated = false;

	while (c->start < c->end) {
		struct req r;
		int rc;

		if (c->body_left) {
			size_t n = c->end - c->start;

			if (n > c->body_left)
				n = (size_t)c->body_left;
			c->start += n;
			c->body_left -= n;
			continue;
		}
		if (!parse(c->in + c->start, c->end - c->start, &r))
			break;
		if (!dated) {
			refresh_date(c);
			dated = true;
		}
		rc = emit(c, &r);
		if (rc < 0)
			return rc;
		if (!r.keep_alive)
			return 1;
		c->start += r.len;
		c->body_left = r.body_len;
	}
	if (c->start == c->end) {
		c->start = c->end = 0;
	} else if (c->start > 0) {
		/* A partial request: move it to the front, so that the
		 * whole header section fits. */
		memmove(c->in, c->in + c->start, c->end - c->start);
		c->end -= c->start;
		c->start = 0;
	}
	return 0;
}

/* After an answer that closes the connection, stop sending and read (and
 * drop) what the client still sends until it closes too, for LINGER_MS at
 * most: closing with unread data would make the kernel reset the
 * connection, and a client still sending (a huge header, a pipeline) could
 * lose the answer with it. */
static void linger_close(struct conn *c)
{
	weft_shutdown(c->fd, SHUT_WR);
	if (weft_timeout_begin((uint64_t)LINGER_MS * 1000000) == 0) {
		while (weft_recv(c->fd, c->in, IN_SIZE, 0) > 0)
			;
		weft_timeout_end();
	}
}

/*
 * One round: answers the complete requests received, sends the answers,
 * then receives more. Returns 0 to go on, 1 when the connection is done
 * (an answer that closes it, end of stream), or a negative errno.
 */
static int step(struct conn *c)
{
	ssize_t n;
	int rc;

	rc = process(c);
	if (rc >= 0 && c->olen) {
		int frc = flush(c);

		if (frc < 0)
			return frc;
	}
	if (rc == 1) {
		linger_close(c);
		return 1;
	}
	if (rc < 0)
		return rc;
	n = weft_recv(c->fd, c->in + c->end, IN_SIZE - c->end, 0);
	if (n <= 0)
		return n == 0 ? 1 : (int)n; /* end, reset or cancelled */
	c->end += (size_t)n;
	return 0;
}

static int handle(int fd, void *arg)
{
	struct conn c;
	int rc;

	/* weft_serve set TCP_NODELAY: without it, Nagle's algorithm would
	 * hold back the answers to a second batch of pipelined requests
	 * until the first is acknowledged, which a client may delay by
	 * 40 ms. */
	conn_init(&c, fd, *(const uint64_t *)arg);
	do {
		/* With -i, a round that waits too long for the client, to
		 * read or to send, ends with -ETIMEDOUT. */
		if (c.idle_ns && weft_timeout_begin(c.idle_ns) < 0)
			break;
		rc = step(&c);
		if (c.idle_ns)
			weft_timeout_end();
	} while (rc == 0);
	weft_close(fd);
	return 0;
}

/* ---- Serving ------------------------------------------------------------- */

/* Accepts on lfd and runs handle(fd, arg) in a task per connection; arg
 * points to the -i limit. The server around it (common.c) runs one of
 * these per listener and cancels them at SIGINT or SIGTERM: weft_serve
 * then stops accepting, gives connections GRACE_MS, cancels the rest and
 * returns -ECANCELED. */
static int serve(int lfd, void *arg)
{
	weft_serve_opts opts = {
		.grace_ns = (uint64_t)GRACE_MS * 1000000,
		.stack_size = STACK_SIZE,
	};

	return weft_serve(lfd, handle, arg, &opts);
}

int main(int argc, char **argv)
{
	uint64_t idle_ns = 0; /* -i, for handle() */
	struct ex_server sv = { .serve = serve, .arg = &idle_ns };
	int opt;

	ex_init(PROG, "[-l ADDR] [-w WORKERS] [-b uring|epoll] [-r] "
		      "[-i SECONDS] PORT");
	while ((opt = getopt(argc, argv, "l:w:b:ri:")) != -1) {
		if (opt == 'i')
			idle_ns = ex_number(optarg, 0, 86400) * 1000000000ull;
		else if (!ex_server_opt(&sv, opt, optarg))
			ex_usage();
	}
	if (argc - optind != 1)
		ex_usage();
	sv.port = (uint16_t)ex_number(argv[optind], 1, 65535);
	return ex_server_run(&sv);
}
