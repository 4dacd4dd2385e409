/* SPDX-License-Identifier: MIT */
/*
 * Files, like aiofiles: completed by io_uring on the worker, or run on the
 * blocking pool under the epoll backend. Paths are relative to the current
 * directory. From a plain thread these are the system calls.
 */
#ifndef WEFT_FS_H
#define WEFT_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <weft/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* open(2): returns the fd (O_CLOEXEC is added). */
WEFT_EXPORT int weft_open(const char *path, int flags, mode_t mode);
WEFT_EXPORT ssize_t weft_pread(int fd, void *buf, size_t n, off_t off);
WEFT_EXPORT ssize_t weft_pwrite(int fd, const void *buf, size_t n, off_t off);
WEFT_EXPORT int weft_fsync(int fd);
WEFT_EXPORT int weft_fdatasync(int fd);
/* stat(2) (flags 0) or lstat(2) (flags AT_SYMLINK_NOFOLLOW) of path. */
WEFT_EXPORT int weft_stat(const char *path, struct stat *st, int flags);
WEFT_EXPORT int weft_fstat(int fd, struct stat *st);
WEFT_EXPORT int weft_unlink(const char *path);
WEFT_EXPORT int weft_rmdir(const char *path);
WEFT_EXPORT int weft_rename(const char *from, const char *to);
WEFT_EXPORT int weft_mkdir(const char *path, mode_t mode);

#ifdef __cplusplus
}
#endif
#endif
