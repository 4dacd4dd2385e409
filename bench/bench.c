/* SPDX-License-Identifier: MIT */
/*
 * weft-bench: runs one workload once in a fresh runtime and prints one JSON
 * object (one line) on stdout, or one line on stderr and exit status 1 if
 * the run or its self-check fails.
 *
 *   weft-bench [-w WORKERS] [-n N] [-m M] [-s STACK] [-W] WORKLOAD
 *   weft-bench -l          list the workloads with their units and sizes
 *
 * Times come from weft_now() inside the first task, so they leave out the
 * runtime's start and teardown (total_ns includes both).
 */
#include "bench.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct bench_workload workloads[] = {
	/* name     unit        n        m     no_warmup fn, io backend */
	{ "spawn",  "ns/task",  1000000, 0,    0, bench_spawn, 0 },
	{ "yield",  "ns/yield", 1000,    1000, 0, bench_yield, 0 },
	{ "chain",  "ns/hop",   1000000, 0,    0, bench_chain, 0 },
	{ "memory", "B/task",   1000000, 0,    1, bench_memory, 0 },
	/* Units hold no blank: -l prints "name unit n m". M = 10^6 / s.
	 * mutex: n tasks x m locks; channel: m producers x n messages;
	 * pingpong: n round trips; rwlock(-pthread): n tasks x m ops, the
	 * pthread baseline on -w threads. */
	{ "mutex",    "ns/lock", 1000,    1000,  0, bench_mutex, 0 },
	{ "channel",  "Mmsg/s",  1000000, 4,     0, bench_channel, 0 },
	{ "pingpong", "ns/rt",   1000000, 0,     0, bench_pingpong, 0 },
	{ "rwlock",   "Mops/s",  1000,    10000, 0, bench_rwlock, 0 },
	{ "rwlock-pthread", "Mops/s", 1000, 10000, 0, bench_rwlock_pthread, 0 },
	/* file(-ring): n MiB read by m tasks / with m in flight. */
	{ "file",      "GB/s",  1024,    4,     0, bench_file, 0 },
	{ "file-epoll", "GB/s", 1024,    4,     0, bench_file, WEFT_IO_EPOLL },
	{ "file-ring", "GB/s",  1024,    4,     0, bench_file_ring, 0 },
};

#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

weft_task **bench_handles(struct bench_run *r, uint64_t cnt)
{
	weft_task **h = malloc((cnt ? cnt : 1) * sizeof(*h));

	if (!h)
		bench_fail(r, "no memory for %llu handles",
			   (unsigned long long)cnt);
	else
		memset(h, 0, (cnt ? cnt : 1) * sizeof(*h));
	return h;
}

int64_t bench_join_all(struct bench_run *r, weft_task **h, uint64_t cnt,
		       const char *what, bool record)
{
	uint64_t i, bad = 0;
	int rc, res;

	for (i = 0; i < cnt; i++) {
		res = 0;
		rc = weft_join(h[i], &res);
		if (rc < 0) {
			/* The handle stays ours; weft_run's teardown ends it. */
			bench_fail(r, "weft_join %s #%llu: %s", what,
				   (unsigned long long)i, weft_strerror(rc));
			return -1;
		}
		if (res != 0 && record)
			bench_fail(r, "%s #%llu returned %d (%s)", what,
				   (unsigned long long)i, res,
				   weft_strerror(res));
		bad += res != 0;
	}
	return (int64_t)bad;
}

void bench_start(struct bench_run *r)
{
	getrusage(RUSAGE_SELF, &r->ru0);
	r->t0 = weft_now();
}

void bench_stop(struct bench_run *r)
{
	r->t1 = weft_now();
	getrusage(RUSAGE_SELF, &r->ru1);
}

void bench_extra(struct bench_run *r, const char *key, double val)
{
	if (r->nextra < BENCH_MAX_EXTRA) {
		r->extra[r->nextra].key = key;
		r->extra[r->nextra].val = val;
		r->nextra++;
	}
}

int bench_fail(struct bench_run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->err[0])
		return -1;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return -1;
}

long bench_proc_kb(const char *field)
{
	size_t len = strlen(field);
	char line[256];
	long kb = -1;
	FILE *f;

	f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, len) && line[len] == ':') {
			kb = strtol(line + len + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

static uint64_t tv_ns(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000000000ULL +
	       (uint64_t)tv->tv_usec * 1000ULL;
}

static uint64_t cpu_ns(const struct rusage *ru)
{
	return tv_ns(&ru->ru_utime) + tv_ns(&ru->ru_stime);
}

static int warmup;

/* The first task: an optional untimed pass, then the measured one. */
static int main_task(void *arg)
{
	struct bench_run *r = arg;

	if (warmup) {
		struct bench_run w = *r;

		if (r->wl->fn(&w) < 0) {
			snprintf(r->err, sizeof(r->err), "warm-up: %.180s",
				 w.err[0] ? w.err : "failed");
			return -1;
		}
	}
	return r->wl->fn(r);
}

static void json_str(const char *key, const char *s)
{
	printf("\"%s\":\"", key);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		if ((unsigned char)*s >= 0x20)
			putchar(*s);
	}
	printf("\",");
}

static void print_json(const struct bench_run *r, const weft_config *cfg,
		       uint64_t total_ns)
{
	uint64_t wall = r->t1 - r->t0;
	uint64_t cpu = cpu_ns(&r->ru1) - cpu_ns(&r->ru0);
	struct rusage ru;
	double value;
	int i;

	value = r->has_value ? r->value :
			       (double)wall / (double)(r->ops ? r->ops : 1);
	getrusage(RUSAGE_SELF, &ru);
	printf("{");
	json_str("workload", r->wl->name);
	printf("\"workers\":%u,\"n\":%llu,\"m\":%llu,", r->workers,
	       (unsigned long long)r->n, (unsigned long long)r->m);
	printf("\"value\":%.3f,", value);
	json_str("unit", r->wl->unit);
	printf("\"ops\":%llu,\"wall_ns\":%llu,\"mops\":%.4f,",
	       (unsigned long long)r->ops, (unsigned long long)wall,
	       wall ? (double)r->ops * 1e3 / (double)wall : 0.0);
	printf("\"cpu_ns\":%llu,\"cpu_util\":%.3f,",
	       (unsigned long long)cpu, wall ? (double)cpu / (double)wall : 0.0);
	printf("\"total_ns\":%llu,\"maxrss_kb\":%ld,",
	       (unsigned long long)total_ns, ru.ru_maxrss);
	printf("\"stack_size\":%zu,\"warmup\":%d,", cfg->stack_size, warmup);
	json_str("backend", cfg->io_backend == WEFT_IO_EPOLL ? "epoll"
			    : cfg->io_backend == WEFT_IO_URING ? "uring"
			    : getenv("WEFT_IO") && *getenv("WEFT_IO")
				    ? getenv("WEFT_IO") : "auto");
	for (i = 0; i < r->nextra; i++)
		printf("\"%s\":%.3f,", r->extra[i].key, r->extra[i].val);
	json_str("version", weft_version());
	printf("\"ok\":true}\n");
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: weft-bench [-w WORKERS] [-n N] [-m M] [-s STACK] [-W] WORKLOAD\n"
		"       weft-bench -l\n"
		"  -w  worker threads (default: online CPUs)\n"
		"  -n  size (tasks, hops, messages per producer, round trips)\n"
		"  -m  per-task count (yield: yields, mutex: locks, rwlock: ops);\n"
		"      channel: producers\n"
		"  -s  default task stack in bytes        -W  untimed warm-up pass first\n"
		"  -b  I/O backend: uring or epoll (default: $WEFT_IO, else uring)\n"
		"  -l  list workloads: name unit n m\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	double d;

	/* Accepts 1000000, 0x100 and 1e6. */
	*out = strtoull(s, &end, 0);
	if (end != s && !*end)
		return 0;
	d = strtod(s, &end);
	if (end == s || *end || d < 0 || d > 1e18 || d != (double)(uint64_t)d)
		return -1;
	*out = (uint64_t)d;
	return 0;
}

int main(int argc, char **argv)
{
	const struct bench_workload *wl = NULL;
	struct bench_run r;
	weft_config cfg;
	uint64_t n = 0, m = 0, v, t;
	int c, rc, res = 0;
	size_t i;

	memset(&cfg, 0, sizeof(cfg));
	while ((c = getopt(argc, argv, "w:n:m:s:b:Wlh")) != -1) {
		switch (c) {
		case 'b':
			if (!strcmp(optarg, "uring")) {
				cfg.io_backend = WEFT_IO_URING;
			} else if (!strcmp(optarg, "epoll")) {
				cfg.io_backend = WEFT_IO_EPOLL;
			} else {
				fprintf(stderr, "weft-bench: bad -b %s "
					"(uring or epoll)\n", optarg);
				return 2;
			}
			break;
		case 'w':
		case 'n':
		case 'm':
		case 's':
			if (parse_u64(optarg, &v) < 0 || v == 0) {
				fprintf(stderr, "weft-bench: bad -%c %s\n", c,
					optarg);
				return 2;
			}
			if (c == 'w')
				cfg.workers = (unsigned)v;
			else if (c == 'n')
				n = v;
			else if (c == 'm')
				m = v;
			else
				cfg.stack_size = (size_t)v;
			break;
		case 'W':
			warmup = 1;
			break;
		case 'l':
			for (i = 0; i < NWORKLOADS; i++)
				printf("%s %s %llu %llu\n", workloads[i].name,
				       workloads[i].unit,
				       (unsigned long long)workloads[i].n,
				       (unsigned long long)workloads[i].m);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	for (i = 0; i < NWORKLOADS; i++)
		if (!strcmp(argv[optind], workloads[i].name))
			wl = &workloads[i];
	if (!wl) {
		fprintf(stderr, "weft-bench: unknown workload '%s' (-l lists them)\n",
			argv[optind]);
		return 2;
	}
	if (warmup && wl->no_warmup) {
		fprintf(stderr, "weft-bench: %s: -W would spoil the figure\n",
			wl->name);
		return 2;
	}

	if (wl->io_backend)
		cfg.io_backend = wl->io_backend;
	memset(&r, 0, sizeof(r));
	r.wl = wl;
	r.n = n ? n : wl->n;
	r.m = m ? m : wl->m;
	/* weft_run() gives no handle to ask; this is its documented default. */
	r.workers = cfg.workers;
	if (!r.workers) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		r.workers = cpus < 1 ? 1 : cpus > 1024 ? 1024 : (unsigned)cpus;
	}

	t = weft_now();
	rc = weft_run(&cfg, main_task, &r, &res);
	t = weft_now() - t;
	if (rc < 0) {
		fprintf(stderr, "weft-bench: %s: weft_run: %s\n", wl->name,
			weft_strerror(rc));
		return 1;
	}
	if (res != 0 || r.err[0]) {
		fprintf(stderr, "weft-bench: %s: %s\n", wl->name,
			r.err[0] ? r.err : "workload failed");
		return 1;
	}
	if (!r.t1 || !r.ops) {
		fprintf(stderr, "weft-bench: %s: no interval measured\n",
			wl->name);
		return 1;
	}
	print_json(&r, &cfg, t);
	return 0;
}
