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
			      default; minimum 16 KiB, at most 1 TiB
			      (-EINVAL above) */
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

/* The runtime of the calling task (tokio's Handle::current), or NULL outside
 * a task: lets code started by weft_run reach weft_rt_spawn,
 * weft_rt_io_backend and weft_rt_workers. */
WEFT_EXPORT weft_rt *weft_current_rt(void);

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

/*
 * Task groups, like asyncio.TaskGroup. weft_group_spawn starts fn(arg) as a
 * child of g (from a task). weft_group_wait waits for every child: the
 * first child to return a negative value other than -ECANCELED cancels the
 * others, and wait returns that value; otherwise it returns 0. If the
 * waiter is cancelled or its deadline expires, the group cancels every
 * child, waits for all of them, and returns -ECANCELED / -ETIMEDOUT: a
 * group never outlives its wait. A second wait while one is under way
 * returns -EBUSY. weft_group_cancel cancels every child.
 * weft_group_free frees a group whose wait has returned (or that never had
 * a child); -EBUSY if children may still run.
 */
typedef struct weft_group weft_group;
WEFT_EXPORT int weft_group_new(weft_group **out);
WEFT_EXPORT int weft_group_spawn(weft_group *g, int (*fn)(void *), void *arg);
WEFT_EXPORT int weft_group_wait(weft_group *g);
WEFT_EXPORT int weft_group_cancel(weft_group *g);
WEFT_EXPORT int weft_group_free(weft_group *g);

/*
 * asyncio.gather(..., return_exceptions=True): runs fns[i](args[i]) for
 * i < n concurrently, waits for all of them and stores each return value in
 * results[i]. Returns 0; if the caller is cancelled or its deadline
 * expires, cancels them all, waits for them, and returns -ECANCELED /
 * -ETIMEDOUT (results then hold what each returned). Must be called from a
 * task.
 */
WEFT_EXPORT int weft_gather(size_t n, int (*const fns[])(void *),
			    void *const args[], int results[]);

/*
 * asyncio.wait(FIRST_COMPLETED): waits until one of tasks[0..n) has ended
 * and returns the lowest index of those that have. The handles stay valid
 * (join them). -ECANCELED / -ETIMEDOUT if the caller gives up first;
 * -EINVAL for n == 0 or a NULL handle; -ENOMEM if n > 8 and there is no
 * memory for the waiters. With a deadline scope it is asyncio.wait_for.
 */
WEFT_EXPORT int weft_wait_any(size_t n, weft_task *const tasks[]);

/*
 * Runs fn(arg) on the runtime's pool of plain threads and suspends the task
 * until it returns (run_in_executor / spawn_blocking); stores its value in
 * *result. The pool grows on demand up to weft_config.blocking_threads
 * (0 = 64), reaps threads idle for 10 s, and queues calls when it is full.
 * Returns 0, -ENOMEM, or -ECANCELED / -ETIMEDOUT if the task was cancelled
 * or its deadline expired: if that happened while fn ran, fn is never
 * interrupted, the call returns when it ends (so fn may use the caller's
 * stack) and *result still receives its value; if it happened while the
 * call was still queued, fn never runs and *result is left untouched.
 * From a plain thread it runs fn inline.
 */
WEFT_EXPORT int weft_blocking(int (*fn)(void *), void *arg, int *result);

#ifdef __cplusplus
}
#endif
#endif
