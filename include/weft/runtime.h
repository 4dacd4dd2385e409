/* SPDX-License-Identifier: MIT */
#ifndef WEFT_RUNTIME_H
#define WEFT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include <weft/version.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_rt weft_rt;
typedef struct weft_task weft_task;

/*
 * Runtime configuration. A NULL pointer or an all-zero struct means defaults;
 * every field's zero value is its default, so callers that zero the struct
 * (`weft_config c = {0};`) keep working when fields are added.
 */
typedef struct weft_config {
	unsigned workers;          /* worker threads; 0 = online CPUs (max 1024) */
	size_t stack_size;         /* default task stack in bytes, rounded up to
				      a page; 0 = 256 KiB; minimum 16 KiB,
				      at most 1 TiB (-EINVAL above) */
	unsigned io_entries;       /* per-worker io_uring SQ entries; 0 = 256,
				      rounded up to a power of two, at most
				      32768 */
	unsigned blocking_threads; /* weft_blocking pool limit; 0 = 64,
				      at most 4096 */
	unsigned flags;            /* reserved, must be 0 */
	unsigned io_backend;       /* WEFT_IO_AUTO (0), WEFT_IO_URING or
				      WEFT_IO_EPOLL (weft/io.h) */
	unsigned reserved_u[2];    /* must be 0 */
	uint64_t reserved[6];      /* must be 0 */
} weft_config;

/*
 * asyncio.run() / #[tokio::main]: starts a runtime, runs fn(arg) as its first
 * task, stores fn's return value in *result (if result is not NULL), then
 * cancels every task still alive, waits for all of them to end and tears the
 * runtime down. Returns 0, or a negative errno if the runtime cannot start
 * (-EINVAL: bad config, -ENOMEM, -EAGAIN: thread limit).
 */
WEFT_EXPORT int weft_run(const weft_config *cfg, int (*fn)(void *), void *arg,
			 int *result);

/*
 * Embedding API, for programs that own their threads.
 *
 * weft_rt_new: starts the worker threads, and with two or more workers a
 * monitor thread (it fires the timers of a worker stuck in a long
 * computation; README, "Rules for task code"), which blocks every
 * signal. Returns 0 and *out, or -EINVAL, -ENOMEM, -EAGAIN.
 */
WEFT_EXPORT int weft_rt_new(weft_rt **out, const weft_config *cfg);

/*
 * Runs fn(arg) as a task of rt and blocks the calling plain thread until it
 * returns; stores its return value in *result. Returns 0, -EINVAL, -ENOMEM,
 * -ESHUTDOWN (rt is shutting down; *result is then -ECANCELED if the task
 * was created but never ran), or -EDEADLK when called from a task of rt.
 */
WEFT_EXPORT int weft_rt_block_on(weft_rt *rt, int (*fn)(void *), void *arg,
				 int *result);

/*
 * Spawns fn(arg) on rt from any thread (a plain thread, or a task of any
 * runtime). out == NULL spawns it detached. Returns 0, -EINVAL, -ENOMEM or
 * -ESHUTDOWN once rt_shutdown has begun.
 */
WEFT_EXPORT int weft_rt_spawn(weft_rt *rt, weft_task **out,
			      int (*fn)(void *), void *arg);

/*
 * Cancels every task of rt and waits up to timeout_ns (UINT64_MAX: forever)
 * for all of them to end, then stops the workers. Returns 0, or -ETIMEDOUT if
 * tasks remain (they keep their cancellation; call again to wait longer),
 * or -EDEADLK when called from a task of rt. New spawns fail with -ESHUTDOWN
 * from the moment it is called, except spawns by tasks of rt, which create
 * tasks already cancelled (they never run; join stores -ECANCELED).
 * Several threads may call it at once: the workers are stopped once, and
 * each call that returns 0 does so after they ended.
 */
WEFT_EXPORT int weft_rt_shutdown(weft_rt *rt, uint64_t timeout_ns);

/*
 * Frees rt. If it was not shut down, shuts it down first, waiting for
 * every task. After a shutdown that returned -ETIMEDOUT, waits again. NULL
 * is ignored. Must not be called from a task of rt.
 */
WEFT_EXPORT void weft_rt_free(weft_rt *rt);

/* The I/O backend rt's workers use: WEFT_IO_URING or WEFT_IO_EPOLL. */
WEFT_EXPORT int weft_rt_io_backend(const weft_rt *rt);

/* The number of worker threads of rt. */
WEFT_EXPORT int weft_rt_workers(const weft_rt *rt);

#ifdef __cplusplus
}
#endif
#endif
