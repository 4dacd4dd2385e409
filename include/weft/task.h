/* SPDX-License-Identifier: MIT */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <weft/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Tasks are stackful coroutines that run on the runtime's worker threads and
 * may move to another worker at every suspension point.
 *
 * THE MIGRATION RULE: after any call that can suspend (anything that returns
 * -ECANCELED or -ETIMEDOUT below, and every blocking weft call), the task may
 * run on a different OS thread. Do not keep pointers to thread-local
 * variables, errno's address, or the result of pthread_self() across such a
 * call: compilers cache TLS addresses, so re-read them through a function
 * that the compiler cannot see into. weft never reports through errno.
 * A pthread mutex held across a suspension may be unlocked by another
 * thread, which POSIX forbids: use weft's own mutex.
 */

/* Options for weft_spawn_ex. Zeroed fields mean defaults. */
typedef struct weft_spawn_opts {
	size_t stack_size; /* bytes, rounded up to a page; 0 = the runtime's
			      default; minimum 16 KiB */
	const char *name;  /* shown in stack-overflow reports; the string
			      must outlive the task (a literal is ideal) */
	uint64_t reserved[4]; /* must be 0 */
} weft_spawn_opts;

/*
 * Spawns fn(arg) as a new task of the calling task's runtime. On success
 * stores a handle in *out, which must be joined or detached exactly once;
 * out == NULL spawns it detached. Must be called from a task.
 * Returns 0, -EINVAL (fn is NULL, bad opts), -ENOMEM (no memory or stack
 * address space), -EPERM (not called from a task).
 * A task spawned while the runtime is shutting down starts cancelled.
 */
WEFT_EXPORT int weft_spawn(weft_task **out, int (*fn)(void *), void *arg);
WEFT_EXPORT int weft_spawn_ex(weft_task **out, const weft_spawn_opts *opts,
			      int (*fn)(void *), void *arg);

/*
 * Waits for t to end and stores its return value in *result (if not NULL);
 * a task cancelled before it ever ran stores -ECANCELED. Then frees the
 * handle and returns 0. From a task it suspends only the task; from a plain
 * thread it blocks the thread.
 * Returns -ECANCELED / -ETIMEDOUT if the calling task is cancelled or its
 * deadline expires first: the handle then stays valid (join it again, cancel
 * it or detach it). -EINVAL if t is NULL; -EDEADLK if t is the caller.
 */
WEFT_EXPORT int weft_join(weft_task *t, int *result);

/* Gives up the handle: the task's record is freed when it ends. NULL is
 * ignored. */
WEFT_EXPORT void weft_detach(weft_task *t);

/*
 * Requests cancellation of t (cooperative, like asyncio's Task.cancel): if t
 * is suspended it wakes, and its current and every later suspending call
 * return -ECANCELED (outside shields) until it returns. A task cancelled
 * before it first runs never runs. Callable from any thread with a valid
 * handle. Returns 0, -ESRCH if t has already finished, -EINVAL if t is NULL.
 */
WEFT_EXPORT int weft_cancel(weft_task *t);

/* The calling task, or NULL outside a task. */
WEFT_EXPORT weft_task *weft_current(void);

/* t's identifier, unique within the process and never 0. 0 for NULL. */
WEFT_EXPORT uint64_t weft_task_id(const weft_task *t);

/* The index (0..workers-1) of the worker running the caller, or -1 outside
 * a worker thread. May change after any suspension. */
WEFT_EXPORT int weft_worker_id(void);

/*
 * Lets the other runnable tasks of this worker run, then continues (maybe on
 * another worker). Returns 0, -ECANCELED, -ETIMEDOUT (see weft/time.h),
 * or -EPERM outside a task.
 */
WEFT_EXPORT int weft_yield(void);

/*
 * Shields, like asyncio.shield: inside a shield, cancellation is held back,
 * so cleanup code can still wait (join cancelled children, flush a stream).
 * Shields nest. A cancellation that arrived inside the shield is delivered at
 * the first suspending call after the outermost shield ends. Deadline scopes
 * (weft/time.h) still apply inside a shield.
 * Return 0, -EPERM outside a task, -EINVAL for an end without a begin.
 */
WEFT_EXPORT int weft_shield_begin(void);
WEFT_EXPORT int weft_shield_end(void);

#ifdef __cplusplus
}
#endif
#endif
