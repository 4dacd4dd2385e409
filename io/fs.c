/* SPDX-License-Identifier: MIT */
/*
 * Files (include/weft/fs.h). io_uring runtimes complete them on the worker's
 * ring; epoll runtimes run the system call on the blocking pool, since a
 * regular file is always "ready" to epoll and its reads still wait for the
 * disk; plain threads make the call.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "ops.h"

enum fs_op {
	FS_OPEN, FS_PREAD, FS_PWRITE, FS_FSYNC, FS_FDATASYNC, FS_STAT,
	FS_FSTAT, FS_UNLINK, FS_RMDIR, FS_RENAME, FS_MKDIR,
};

struct fs_call {
	enum fs_op op;
	int fd;
	int flags;
	mode_t mode;
	const char *path, *path2;
	void *buf;
	size_t n;
	off_t off;
	struct stat *st;
	ssize_t res;		/* -ECANCELED until the call ran */
};

/* The system call, on whichever thread runs it. */
static int fs_sys(void *arg)
{
	struct fs_call *c = arg;
	ssize_t r;

	switch (c->op) {
	case FS_OPEN: r = open(c->path, c->flags | O_CLOEXEC, c->mode); break;
	case FS_PREAD: r = pread(c->fd, c->buf, c->n, c->off); break;
	case FS_PWRITE: r = pwrite(c->fd, c->buf, c->n, c->off); break;
	case FS_FSYNC: r = fsync(c->fd); break;
	case FS_FDATASYNC: r = fdatasync(c->fd); break;
	case FS_STAT: r = fstatat(AT_FDCWD, c->path, c->st, c->flags); break;
	case FS_FSTAT: r = fstat(c->fd, c->st); break;
	case FS_UNLINK: r = unlink(c->path); break;
	case FS_RMDIR: r = rmdir(c->path); break;
	case FS_RENAME: r = rename(c->path, c->path2); break;
	case FS_MKDIR: r = mkdir(c->path, c->mode); break;
	default: r = -1; errno = EINVAL; break;
	}
	c->res = r < 0 ? -errno : r;
	return 0;
}

static void stat_from_statx(struct stat *st, const struct statx *x)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(x->stx_dev_major, x->stx_dev_minor);
	st->st_ino = x->stx_ino;
	st->st_mode = x->stx_mode;
	st->st_nlink = x->stx_nlink;
	st->st_uid = x->stx_uid;
	st->st_gid = x->stx_gid;
	st->st_rdev = makedev(x->stx_rdev_major, x->stx_rdev_minor);
	st->st_size = (off_t)x->stx_size;
	st->st_blksize = (blksize_t)x->stx_blksize;
	st->st_blocks = (blkcnt_t)x->stx_blocks;
	st->st_atim.tv_sec = x->stx_atime.tv_sec;
	st->st_atim.tv_nsec = x->stx_atime.tv_nsec;
	st->st_mtim.tv_sec = x->stx_mtime.tv_sec;
	st->st_mtim.tv_nsec = x->stx_mtime.tv_nsec;
	st->st_ctim.tv_sec = x->stx_ctime.tv_sec;
	st->st_ctim.tv_nsec = x->stx_ctime.tv_nsec;
}

/* pread(2) refuses an fd without a position (a pipe, a socket, some
 * devices) with ESPIPE; io_uring would ignore the offset and read the
 * stream instead, taking its data. The file type answers for all but
 * character devices; for those lseek does (the kernel grants or refuses
 * positioned I/O and seeking together). fstat first, because lseek takes
 * the file's position lock, which concurrent readers would contend for. */
static int fs_seekable(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -weft__errno();
	if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
		return -ESPIPE;
	if (S_ISCHR(st.st_mode) && lseek(fd, 0, SEEK_CUR) < 0)
		return -weft__errno();
	return 0;
}

static ssize_t fs_uring(struct weft_task *t, struct fs_call *c)
{
	struct statx x;
	ssize_t r;

	if ((c->op == FS_PREAD || c->op == FS_PWRITE) &&
	    (r = fs_seekable(c->fd)) < 0)
		return r;
	switch (c->op) {
	case FS_OPEN:
		return URING_OP(t, io_uring_prep_openat(sqe, AT_FDCWD, c->path,
							c->flags | O_CLOEXEC,
							c->mode));
	case FS_PREAD:
		return URING_OP(t, io_uring_prep_read(sqe, c->fd, c->buf,
						      (unsigned)c->n,
						      (uint64_t)c->off));
	case FS_PWRITE:
		return URING_OP(t, io_uring_prep_write(sqe, c->fd, c->buf,
						       (unsigned)c->n,
						       (uint64_t)c->off));
	case FS_FSYNC:
	case FS_FDATASYNC:
		return URING_OP(t, io_uring_prep_fsync(sqe, c->fd,
			c->op == FS_FDATASYNC ? IORING_FSYNC_DATASYNC : 0));
	case FS_STAT:
	case FS_FSTAT:
		r = URING_OP(t, io_uring_prep_statx(sqe,
			c->op == FS_FSTAT ? c->fd : AT_FDCWD,
			c->op == FS_FSTAT ? "" : c->path,
			c->op == FS_FSTAT ? AT_EMPTY_PATH : c->flags,
			STATX_BASIC_STATS, &x));
		if (r == 0)
			stat_from_statx(c->st, &x);
		return r;
	case FS_UNLINK:
	case FS_RMDIR:
		return URING_OP(t, io_uring_prep_unlinkat(sqe, AT_FDCWD, c->path,
			c->op == FS_RMDIR ? AT_REMOVEDIR : 0));
	case FS_RENAME:
		return URING_OP(t, io_uring_prep_renameat(sqe, AT_FDCWD, c->path,
							  AT_FDCWD, c->path2,
							  0));
	case FS_MKDIR:
		return URING_OP(t, io_uring_prep_mkdirat(sqe, AT_FDCWD, c->path,
							 c->mode));
	}
	return -EINVAL;
}

static ssize_t fs_run(struct fs_call *c)
{
	struct weft_task *t;
	int rc = io_enter(&t), ignored;

	if (rc)
		return rc;
	c->res = -ECANCELED;
	if (io_uring_task(t))
		return fs_uring(t, c);
	if (!t) {
		fs_sys(c);
		return c->res;
	}
	rc = weft_blocking(fs_sys, c, &ignored);
	/* A call that ran has taken effect (an fd opened, bytes written):
	 * report it even if the task was cancelled meanwhile. */
	return rc < 0 && c->res < 0 ? rc : c->res;
}

int weft_open(const char *path, int flags, mode_t mode)
{
	struct fs_call c = { .op = FS_OPEN, .path = path, .flags = flags,
			     .mode = mode };

	return path ? (int)fs_run(&c) : -EFAULT;
}

ssize_t weft_pread(int fd, void *buf, size_t n, off_t off)
{
	struct fs_call c = { .op = FS_PREAD, .fd = fd, .buf = buf,
			     .n = io_clamp(n), .off = off };

	return off < 0 ? -EINVAL : fs_run(&c);
}

ssize_t weft_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	struct fs_call c = { .op = FS_PWRITE, .fd = fd, .buf = (void *)buf,
			     .n = io_clamp(n), .off = off };

	return off < 0 ? -EINVAL : fs_run(&c);
}

int weft_fsync(int fd)
{
	struct fs_call c = { .op = FS_FSYNC, .fd = fd };

	return (int)fs_run(&c);
}

int weft_fdatasync(int fd)
{
	struct fs_call c = { .op = FS_FDATASYNC, .fd = fd };

	return (int)fs_run(&c);
}

int weft_stat(const char *path, struct stat *st, int flags)
{
	struct fs_call c = { .op = FS_STAT, .path = path, .st = st,
			     .flags = flags };

	if (!path || !st)
		return -EFAULT;
	if (flags & ~AT_SYMLINK_NOFOLLOW)
		return -EINVAL;
	return (int)fs_run(&c);
}

int weft_fstat(int fd, struct stat *st)
{
	struct fs_call c = { .op = FS_FSTAT, .fd = fd, .st = st };

	return st ? (int)fs_run(&c) : -EFAULT;
}

int weft_unlink(const char *path)
{
	struct fs_call c = { .op = FS_UNLINK, .path = path };

	return path ? (int)fs_run(&c) : -EFAULT;
}

int weft_rmdir(const char *path)
{
	struct fs_call c = { .op = FS_RMDIR, .path = path };

	return path ? (int)fs_run(&c) : -EFAULT;
}

int weft_rename(const char *from, const char *to)
{
	struct fs_call c = { .op = FS_RENAME, .path = from, .path2 = to };

	return from && to ? (int)fs_run(&c) : -EFAULT;
}

int weft_mkdir(const char *path, mode_t mode)
{
	struct fs_call c = { .op = FS_MKDIR, .path = path, .mode = mode };

	return path ? (int)fs_run(&c) : -EFAULT;
}
