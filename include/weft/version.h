/* SPDX-License-Identifier: MIT */
#ifndef WEFT_VERSION_H
#define WEFT_VERSION_H

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION_STRING "0.1.0"

#if defined(WEFT_BUILDING) && defined(__GNUC__)
#define WEFT_EXPORT __attribute__((visibility("default")))
#else
#define WEFT_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version as "MAJOR.MINOR.PATCH"; compare with WEFT_VERSION_STRING
 * to catch a header/library mismatch. Never fails. */
WEFT_EXPORT const char *weft_version(void);

/* A short description of a negative errno returned by weft, including the
 * runtime's own meanings (-ECANCELED: the calling task was cancelled,
 * -ETIMEDOUT: a deadline scope expired, or a kernel timeout). Never
 * returns NULL. */
WEFT_EXPORT const char *weft_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
