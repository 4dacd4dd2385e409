/* SPDX-License-Identifier: MIT */
#ifndef WEFT_TIME_H
#define WEFT_TIME_H

#include <stdint.h>
#include <weft/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC). Callable anywhere. */
WEFT_EXPORT uint64_t weft_now(void);

/*
 * Suspends the calling task for at least ns nanoseconds without using CPU.
 * From a plain thread it blocks the thread. Returns 0, -ECANCELED, or
 * -ETIMEDOUT when an enclosing deadline scope expires first.
 */
WEFT_EXPORT int weft_sleep(uint64_t ns);

/*
 * Deadline scopes, like asyncio.timeout(): weft_timeout_begin(ns) opens a
 * scope that expires ns nanoseconds from now; weft_timeout_end() closes the
 * innermost scope. Scopes nest: an inner scope can shorten, never extend, the
 * deadline of the outer one. Every suspending call made inside an expired
 * scope, or suspended when it expires, returns -ETIMEDOUT.
 * After the inner scope ends, the outer deadline applies again.
 * Both return 0, -EPERM outside a task; begin returns -ENOSPC past
 * WEFT_TIMEOUT_DEPTH nested scopes, end returns -EINVAL without a begin.
 * end also reports whether the scope expired: 1 if it did, 0 if not.
 */
#define WEFT_TIMEOUT_DEPTH 16
WEFT_EXPORT int weft_timeout_begin(uint64_t ns);
WEFT_EXPORT int weft_timeout_end(void);

#ifdef __cplusplus
}
#endif
#endif
