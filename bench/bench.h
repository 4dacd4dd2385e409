/* SPDX-License-Identifier: MIT */
/*
 * weft-bench: shared declarations.
 *
 * One process runs one workload once and prints one JSON object on stdout;
 * scripts/bench.sh repeats the processes, interleaving workloads, and takes
 * the medians. A workload runs inside the first task of weft_run(), marks
 * the interval it measures with bench_start() / bench_stop(), says how many
 * operations that interval holds, and reports a failed self-check with
 * bench_fail(). Adding a workload: write its function (a new bench_*.c for
 * a new area, e.g. sync or io), declare it below and add a row to the table
 * in bench.c, then a row to WORKLOADS in scripts/bench.sh.
 */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <weft.h>

#define BENCH_MAX_EXTRA 8
#define BENCH_LONG_SLEEP (3600ULL * 1000000000ULL) /* "until cancelled" */

struct bench_run;

struct bench_workload {
	const char *name;
	const char *unit;   /* of value: "ns/task", "B/task", ... */
	uint64_t n, m;      /* default sizes (meaning is per workload) */
	int no_warmup;      /* a warm-up pass would spoil the figure */
	int (*fn)(struct bench_run *r);
	unsigned io_backend; /* weft_config.io_backend for this workload */
};

struct bench_run {
	/* Set by main before the workload runs. */
	const struct bench_workload *wl;
	unsigned workers;
	uint64_t n, m;

	/* Set by the workload. */
	uint64_t ops;         /* operations in [t0, t1]; value = ns / ops */
	uint64_t t0, t1;      /* weft_now() at bench_start / bench_stop */
	struct rusage ru0, ru1;
	int has_value;        /* value set directly (not ns per op) */
	double value;
	int nextra;
	struct {
		const char *key;
		double val;
	} extra[BENCH_MAX_EXTRA];
	char err[200];        /* first failure, empty when all is well */
};

void bench_start(struct bench_run *r);
void bench_stop(struct bench_run *r);
void bench_extra(struct bench_run *r, const char *key, double val);
/* Records the first failure; returns -1 so that callers can return it. */
int bench_fail(struct bench_run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Reads a "Vm...:  N kB" line of /proc/self/status; -1 on failure. */
long bench_proc_kb(const char *field);

/* bench_core.c: issue 2, the core runtime. */
/* A zeroed array of cnt task handles, touched now so that its page
 * faults fall outside the measured interval; NULL (recorded) without
 * memory. */
weft_task **bench_handles(struct bench_run *r, uint64_t cnt);
/* Joins h[0..cnt). Returns -1 (recorded) if a join itself fails: tasks may
 * then still run and use the workload's state. Otherwise returns how many
 * tasks returned nonzero; with `record`, each of those is recorded too. */
int64_t bench_join_all(struct bench_run *r, weft_task **h, uint64_t cnt,
		       const char *what, bool record);

int bench_spawn(struct bench_run *r);
int bench_yield(struct bench_run *r);
int bench_chain(struct bench_run *r);
int bench_memory(struct bench_run *r);

/* bench_sync.c: synchronisation and channels. */
int bench_mutex(struct bench_run *r);
int bench_channel(struct bench_run *r);
int bench_pingpong(struct bench_run *r);
int bench_rwlock(struct bench_run *r);
int bench_rwlock_pthread(struct bench_run *r);

/* bench_io.c: file I/O. */
int bench_file(struct bench_run *r);
int bench_file_ring(struct bench_run *r);

#endif
