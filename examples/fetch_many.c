/* SPDX-License-Identifier: MIT */
/*
 * fetch_many: the crawler pattern. Fetches N URLs from an HTTP server with
 * at most K requests in flight, every attempt under a deadline, retrying
 * failed attempts with exponential backoff, and prints a summary.
 *
 *   fetch_many [-n N] [-k K] [-t TIMEOUT_MS] [-r RETRIES]
 *              [-w WORKERS] [-b uring|epoll] HOST PORT [PATH]
 *
 * -n N           URLs to fetch (default 100): PATH, or "/?i=<n>" for
 *                n = 0 .. N-1 without PATH
 * -k K           requests in flight at most (default 10)
 * -t TIMEOUT_MS  deadline of one attempt: connect, request and the whole
 *                response (default 2000)
 * -r RETRIES     further attempts after a connection error, a timeout, a
 *                cut-off response or a 5xx status (default 3), after
 *                50 ms, 100 ms, 200 ms, ...
 * -w, -b         worker threads and I/O backend, as for the servers
 * HOST           a name or address, optionally with "http://" before it
 *
 * Each URL gets a task; a semaphore holds K permits, and the loop that
 * spawns the tasks takes a permit before each one, so at most K tasks
 * (and sockets) exist at once. Every attempt opens a connection, sends
 * "Connection: close" and reads the response through a weft_stream: status
 * line, headers, then Content-Length bytes of body (or up to the end of the
 * stream without it). Chunked responses are refused with an error.
 * A 2xx status counts as ok; any other final answer as failed.
 *
 * The summary: ok / failed / retries, the time the whole crawl took, URLs
 * per second (ok and failed), and the latency of the successful URLs from
 * their first attempt to their answer, retries and backoff included
 * (p50, p99, max). SIGINT or SIGTERM cancels the crawl; the summary then
 * covers what finished.
 *
 * Exit status: 0 when every URL was fetched, 1 when some failed (one line
 * on stderr says how many), the crawl was interrupted or the program could
 * not start; 2 for bad arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <weft.h>
#include "common.h"

#define PROG "fetch_many"
#define RESP_LINE_MAX (8 * 1024)	/* longest status or header line */
#define HEADERS_MAX (64 * 1024) /* all header lines of a response */
#define REQ_MAX 2048		/* a request we send */
#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS 5000
#define MAX_URLS 10000000ul
#define MAX_KINDS 8		/* distinct failure reasons listed */

/* Failures that are not errnos. Functions return them negated, like
 * errnos; struct fetch stores them as they are, errnos negative. */
enum {
	E_STATUS = 10000, /* the final status was not 2xx: see status */
	E_MALFORMED,	/* not an HTTP/1.x response */
	E_TRUNCATED,	/* the stream ended inside the response */
	E_CODING,	/* a Transfer-Encoding (chunked) we do not decode */
	E_TOOLONG,	/* the request line would be too long */
};

struct crawl;

/* One URL: written by its task, read by the summary after the join. */
struct fetch {
	struct crawl *cr;
	size_t idx;
	bool done;		/* it has a result (else: never started or
				   cancelled) */
	int err;		/* 0, a negative errno or an E_* */
	int status;		/* the last HTTP status received, or 0 */
	unsigned attempts;
	uint64_t latency_ns;	/* first attempt to final answer */
	uint64_t body_bytes;
};

struct crawl {
	/* Arguments. */
	const char *host;
	uint16_t port;
	const char *path;	/* NULL: "/?i=<n>" */
	size_t n;
	unsigned k;
	uint64_t timeout_ns;
	unsigned retries;
	/* State. */
	struct fetch *fetches;
	weft_sem sem;		/* K permits: requests in flight */
	uint64_t elapsed_ns;	/* the crawl's duration */
	bool interrupted;
	char err[160];		/* why the crawl could not run */
};

/* ---- One attempt --------------------------------------------------------- */

static const char *errstr(int err, int status, char *buf, size_t cap)
{
	switch (err) {
	case E_STATUS:
		snprintf(buf, cap, "HTTP status %d", status);
		return buf;
	case E_MALFORMED:
		return "malformed HTTP response";
	case E_TRUNCATED:
		return "response cut off";
	case E_CODING:
		return "Transfer-Encoding (chunked) is not supported";
	case E_TOOLONG:
		return "request too long";
	case -ETIMEDOUT:
		return "timed out";
	default:
		return weft_strerror(err);
	}
}

/* A line from the stream without its CRLF (or LF); its length, or an
 * error: E_TRUNCATED at the end of the stream, E_MALFORMED if too long. */
static ssize_t get_line(weft_stream *s, char *buf, size_t cap)
{
	ssize_t n = weft_stream_read_line(s, buf, cap - 1);

	if (n == -EMSGSIZE)
		return -E_MALFORMED;
	if (n < 0)
		return n;
	if (n == 0 || buf[n - 1] != '\n')
		return -E_TRUNCATED;
	n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return n;
}

/* "HTTP/1.x SSS reason": the status, or -E_MALFORMED. */
static int parse_status(const char *line)
{
	int st;

	if (strncmp(line, "HTTP/1.", 7) != 0 || line[7] < '0' ||
	    line[7] > '9' || line[8] != ' ' || line[9] < '1' ||
	    line[9] > '5' || line[10] < '0' || line[10] > '9' ||
	    line[11] < '0' || line[11] > '9' ||
	    (line[12] != ' ' && line[12] != '\0'))
		return -E_MALFORMED;
	st = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	return st;
}

/* Headers up to the empty line: Content-Length (-1 if absent) and
 * whether a Transfer-Encoding other than identity was announced. */
static int read_headers(weft_stream *s, char *line, int64_t *clen)
{
	size_t total = 0;

	*clen = -1;
	for (;;) {
		ssize_t n = get_line(s, line, RESP_LINE_MAX);
		char *colon, *v;

		if (n < 0)
			return (int)n;
		if (n == 0)
			return 0;
		total += (size_t)n;
		if (total > HEADERS_MAX)
			return -E_MALFORMED;
		colon = strchr(line, ':');
		if (!colon)
			return -E_MALFORMED;
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (char *e = line + n; e > v && (e[-1] == ' ' ||
						   e[-1] == '\t');)
			*--e = '\0';
		if (strcasecmp(line, "content-length") == 0) {
			char *end;
			long long x;

			errno = 0;
			x = strtoll(v, &end, 10);
			if (errno || end == v || *end || x < 0 ||
			    (*clen >= 0 && *clen != x))
				return -E_MALFORMED;
			*clen = x;
		} else if (strcasecmp(line, "transfer-encoding") == 0 &&
			   strcasecmp(v, "identity") != 0) {
			return -E_CODING;
		}
	}
}

/* Reads and counts the body: clen bytes, or to the end without it. */
static int read_body(weft_stream *s, int64_t clen, char *buf, size_t cap,
		     uint64_t *bytes)
{
	*bytes = 0;
	while (clen < 0 || *bytes < (uint64_t)clen) {
		size_t want = cap;
		ssize_t n;

		if (clen >= 0 && (uint64_t)clen - *bytes < want)
			want = (size_t)((uint64_t)clen - *bytes);
		n = weft_stream_read(s, buf, want);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return clen < 0 ? 0 : -E_TRUNCATED;
		*bytes += (uint64_t)n;
	}
	return 0;
}

/* One GET over a new connection. Returns the status (>= 200) and stores
 * the body's size, or a negative errno / -E_*. */
static int fetch_once(struct fetch *f, uint64_t *bytes)
{
	struct crawl *cr = f->cr;
	char line[RESP_LINE_MAX];
	char path[32];
	weft_stream *s = NULL;
	int64_t clen;
	bool v6 = strchr(cr->host, ':') != NULL;
	int fd, rc, len;

	if (!cr->path)
		snprintf(path, sizeof(path), "/?i=%zu", f->idx);
	len = snprintf(line, REQ_MAX,
		       "GET %s HTTP/1.1\r\n"
		       "Host: %s%s%s:%u\r\n"
		       "User-Agent: weft-fetch_many/" WEFT_VERSION_STRING "\r\n"
		       "Accept: */*\r\n"
		       "Connection: close\r\n\r\n",
		       cr->path ? cr->path : path, v6 ? "[" : "", cr->host,
		       v6 ? "]" : "", (unsigned)cr->port);
	if (len < 0 || len >= REQ_MAX)
		return -E_TOOLONG;

	fd = weft_tcp_connect(cr->host, cr->port);
	if (fd < 0)
		return fd;
	rc = weft_stream_new(&s, fd, RESP_LINE_MAX);
	if (rc < 0)
		goto out;
	if ((rc = (int)weft_stream_write(s, line, (size_t)len)) < 0 ||
	    (rc = weft_stream_flush(s)) < 0)
		goto out;
	/* Interim 1xx answers come before the final one. */
	do {
		ssize_t n = get_line(s, line, sizeof(line));

		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		rc = parse_status(line);
		if (rc < 0)
			goto out;
		f->status = rc;
		rc = read_headers(s, line, &clen);
		if (rc < 0)
			goto out;
	} while (f->status < 200);
	/* RFC 9112 6.3: these have no body whatever the headers say. */
	if (f->status == 204 || f->status == 304)
		clen = 0;
	rc = read_body(s, clen, line, sizeof(line), bytes);
	if (rc == 0)
		rc = f->status;
out:
	weft_stream_free(s);
	weft_close(fd);
	return rc;
}

/* ---- One URL, with retries ----------------------------------------------- */

/* Worth another attempt: the server or the network may do better. */
static bool retryable(int rc)
{
	switch (rc) {
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -ECONNABORTED:
	case -EPIPE:
	case -ETIMEDOUT:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -EADDRNOTAVAIL:
	case -EAGAIN:
	case -E_TRUNCATED:
		return true;
	default:
		return rc >= 500 && rc <= 599;
	}
}

static int fetch_task(void *arg)
{
	struct fetch *f = arg;
	struct crawl *cr = f->cr;
	uint64_t t0 = weft_now(), backoff_ms = BACKOFF_FIRST_MS;
	int rc;

	for (;;) {
		uint64_t bytes = 0;

		f->attempts++;
		rc = weft_timeout_begin(cr->timeout_ns);
		if (rc == 0) {
			rc = fetch_once(f, &bytes);
			/* An expired scope means the attempt timed out,
			 * whatever call noticed it. */
			if (weft_timeout_end() == 1 && rc < 0)
				rc = -ETIMEDOUT;
		}
		if (rc >= 0)
			f->body_bytes = bytes;
		if (!retryable(rc) || f->attempts > cr->retries)
			break;
		rc = weft_sleep(backoff_ms * 1000000);
		if (rc < 0)
			break; /* cancelled */
		backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
							     : backoff_ms * 2;
	}
	if (rc >= 200 && rc <= 299)
		f->err = 0;
	else if (rc >= 0)
		f->err = E_STATUS;
	else
		f->err = rc <= -E_STATUS ? -rc : rc;
	f->latency_ns = weft_now() - t0;
	f->done = rc != -ECANCELED; /* else the crawl was stopped */
	weft_sem_release(&cr->sem); /* never suspends */
	return 0; /* a failed URL must not cancel its siblings */
}

/* Spawns a task per URL, at most K at a time, and waits for all. */
static int crawl_task(void *arg)
{
	struct crawl *cr = arg;
	weft_group *g;
	uint64_t t0 = weft_now();
	int rc;

	rc = weft_group_new(&g);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < cr->n; i++) {
		rc = weft_sem_acquire(&cr->sem);
		if (rc < 0)
			break; /* cancelled */
		rc = weft_group_spawn(g, fetch_task, &cr->fetches[i]);
		if (rc < 0) {
			weft_sem_release(&cr->sem);
			break;
		}
	}
	/* Cancelled here or before: the group cancels the tasks. */
	weft_group_wait(g);
	weft_group_free(g);
	cr->elapsed_ns = weft_now() - t0;
	return rc < 0 ? rc : 0;
}

/* ---- Signals and the main task ------------------------------------------- */

/* Ends with the first SIGINT or SIGTERM (weft_signal_wait). */
static int signal_task(void *arg)
{
	(void)arg;
	return ex_signal_wait();
}

/* Runs the crawl until it ends or a signal comes, whichever is first. */
static int main_task(void *arg)
{
	struct crawl *cr = arg;
	weft_task *t[2] = { NULL, NULL }; /* crawl, signal */
	int rc, crawl_rc = 0;

	/* Installs the handlers before the crawl starts: a signal that
	 * comes before signal_task waits is kept for it. */
	rc = ex_signals_listen();
	if (rc < 0) {
		snprintf(cr->err, sizeof(cr->err),
			 "cannot wait for signals: %s", weft_strerror(rc));
		return rc;
	}
	rc = weft_spawn(&t[0], crawl_task, cr);
	if (rc == 0)
		rc = weft_spawn(&t[1], signal_task, NULL);
	if (rc < 0) {
		snprintf(cr->err, sizeof(cr->err), "cannot start: %s",
			 weft_strerror(rc));
		if (t[0]) {
			weft_cancel(t[0]);
			weft_join(t[0], NULL);
		}
		return rc;
	}
	rc = weft_wait_any(2, t);
	if (rc == 1) {
		cr->interrupted = true;
		weft_cancel(t[0]);
	} else {
		weft_cancel(t[1]);
	}
	weft_join(t[0], &crawl_rc);
	weft_join(t[1], NULL);
	if (crawl_rc < 0 && crawl_rc != -ECANCELED) {
		snprintf(cr->err, sizeof(cr->err), "cannot start a fetch: %s",
			 weft_strerror(crawl_rc));
		return crawl_rc;
	}
	return 0;
}

/* ---- Summary ------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0, n), n > 0. */
static double pct_ms(const uint64_t *v, size_t n, double p)
{
	size_t r = (size_t)(p / 100.0 * (double)n + 0.999999);

	if (r < 1)
		r = 1;
	if (r > n)
		r = n;
	return (double)v[r - 1] / 1e6;
}

/* Prints the summary; returns the number of failed URLs. */
static size_t summary(const struct crawl *cr)
{
	struct kind {
		int err, status;
		size_t count;
	} kinds[MAX_KINDS];
	size_t nkinds = 0, ok = 0, failed = 0, retries = 0, other = 0;
	uint64_t *lat, bytes = 0;
	double secs = (double)cr->elapsed_ns / 1e9;
	char buf[64];

	lat = malloc((cr->n ? cr->n : 1) * sizeof(*lat));
	for (size_t i = 0; i < cr->n; i++) {
		const struct fetch *f = &cr->fetches[i];
		size_t j;

		if (!f->done)
			continue;
		retries += f->attempts - 1;
		if (f->err == 0) {
			if (lat)
				lat[ok] = f->latency_ns;
			ok++;
			bytes += f->body_bytes;
			continue;
		}
		failed++;
		for (j = 0; j < nkinds; j++)
			if (kinds[j].err == f->err &&
			    (f->err != E_STATUS ||
			     kinds[j].status == f->status))
				break;
		if (j == nkinds && nkinds < MAX_KINDS)
			kinds[nkinds++] = (struct kind){ f->err, f->status, 0 };
		if (j < nkinds)
			kinds[j].count++;
		else
			other++;
	}

	printf("ok %zu, failed %zu, retries %zu", ok, failed, retries);
	if (ok + failed < cr->n)
		printf(", not done %zu", cr->n - ok - failed);
	printf("\ntotal %.3f s, %.1f req/s, %.1f KiB of bodies\n", secs,
	       secs > 0 ? (double)(ok + failed) / secs : 0.0,
	       (double)bytes / 1024);
	if (ok && lat) {
		qsort(lat, ok, sizeof(*lat), cmp_u64);
		printf("latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		       pct_ms(lat, ok, 50), pct_ms(lat, ok, 99),
		       (double)lat[ok - 1] / 1e6);
	}
	for (size_t j = 0; j < nkinds; j++)
		printf("failed: %zu x %s\n", kinds[j].count,
		       errstr(kinds[j].err, kinds[j].status, buf,
			      sizeof(buf)));
	if (other)
		printf("failed: %zu x other errors\n", other);
	free(lat);
	return failed;
}

/* ---- Arguments ----------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct crawl cr;
	weft_config cfg;
	char *host;
	size_t failed;
	int opt, rc, result = 0;

	ex_init(PROG, "[-n N] [-k K] [-t TIMEOUT_MS] [-r RETRIES] "
		      "[-w WORKERS] [-b uring|epoll] HOST PORT [PATH]");
	memset(&cr, 0, sizeof(cr));
	memset(&cfg, 0, sizeof(cfg));
	cr.n = 100;
	cr.k = 10;
	cr.timeout_ns = 2000 * 1000000ull;
	cr.retries = 3;
	while ((opt = getopt(argc, argv, "n:k:t:r:w:b:")) != -1) {
		switch (opt) {
		case 'n':
			cr.n = ex_number(optarg, 1, MAX_URLS);
			break;
		case 'k':
			cr.k = (unsigned)ex_number(optarg, 1, 100000);
			break;
		case 't':
			cr.timeout_ns = ex_number(optarg, 1, 3600 * 1000) *
					1000000ull;
			break;
		case 'r':
			cr.retries = (unsigned)ex_number(optarg, 0, 100);
			break;
		default: /* -w, -b */
			if (!ex_runtime_opt(&cfg, opt, optarg))
				ex_usage();
		}
	}
	if (argc - optind < 2 || argc - optind > 3)
		ex_usage();
	host = argv[optind];
	if (strncasecmp(host, "https://", 8) == 0) {
		fprintf(stderr, "%s: https is not supported\n", PROG);
		return 2;
	}
	if (strncasecmp(host, "http://", 7) == 0)
		host += 7;
	host[strcspn(host, "/")] = '\0';
	/* "[::1]" as in a URL: the address inside the brackets. */
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		host++;
	}
	if (!*host)
		ex_usage();
	cr.host = host;
	cr.port = (uint16_t)ex_number(argv[optind + 1], 1, 65535);
	if (argc - optind == 3) {
		cr.path = argv[optind + 2];
		if (cr.path[0] != '/' || strpbrk(cr.path, " \r\n"))
			ex_usage();
	}

	cr.fetches = calloc(cr.n, sizeof(*cr.fetches));
	if (!cr.fetches) {
		fprintf(stderr, "%s: %s\n", PROG, weft_strerror(-ENOMEM));
		return 1;
	}
	for (size_t i = 0; i < cr.n; i++) {
		cr.fetches[i].cr = &cr;
		cr.fetches[i].idx = i;
	}
	weft_sem_init(&cr.sem, cr.k);
	printf("%s: %zu URLs from http://%s:%u%s, at most %u in flight, "
	       "%llu ms timeout, %u retries\n", PROG, cr.n, cr.host,
	       (unsigned)cr.port, cr.path ? cr.path : "/?i=<n>", cr.k,
	       (unsigned long long)(cr.timeout_ns / 1000000), cr.retries);
	fflush(stdout);

	rc = weft_run(&cfg, main_task, &cr, &result);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot start the runtime: %s\n", PROG,
			weft_strerror(rc));
		free(cr.fetches);
		return 1;
	}
	if (result < 0) {
		fprintf(stderr, "%s: %s\n", PROG, cr.err);
		free(cr.fetches);
		return 1;
	}
	failed = summary(&cr);
	free(cr.fetches);
	fflush(stdout);
	if (cr.interrupted) {
		fprintf(stderr, "%s: interrupted\n", PROG);
		return 1;
	}
	if (failed) {
		fprintf(stderr, "%s: %zu of %zu URLs failed\n", PROG, failed,
			cr.n);
		return 1;
	}
	return 0;
}
