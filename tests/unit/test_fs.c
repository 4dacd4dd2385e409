/* SPDX-License-Identifier: MIT */
/*
 * Files (weft/fs.h), in a mkdtemp directory under /tmp, run once per
 * backend (io_uring, then epoll, where file calls go to the blocking pool;
 * the io_uring half is skipped with a note where io_uring cannot be set
 * up):
 *  - a 64 MiB file (8 MiB in sanitizer builds) written with weft_pwrite in
 *    chunks by several tasks, weft_fsync'd, its size checked with
 *    weft_fstat and weft_stat, then read back with weft_pread at random
 *    offsets and lengths by several tasks, checksums compared with the
 *    pattern's, and once sequentially; reads at and past the end give 0;
 *    weft_pread / weft_pwrite on a pipe give -ESPIPE and take no data;
 *  - the namespace: weft_mkdir, weft_open (O_CREAT | O_EXCL), weft_rename,
 *    weft_unlink, weft_rmdir, weft_stat of a symlink with and without
 *    AT_SYMLINK_NOFOLLOW, and their errors (-ENOENT, -EEXIST, -ENOTEMPTY,
 *    -EISDIR, -EBADF, -EINVAL, -EFAULT);
 *  - weft_read / weft_write / readv / writev on a file use and advance its
 *    offset, O_APPEND appends;
 *  - a call made inside an expired deadline scope returns -ETIMEDOUT and
 *    has no effect;
 *  - the same calls from a plain thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <cmocka.h>

#include "weft_test_io.h"

/* The test's temporary directory. */
static char tmpdir[64];

static void tmp_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/weft_fs_XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return rmdir(tmpdir);
}

/* The 64-bit word at word index w of the file's pattern. */
static uint64_t word(uint64_t w)
{
	return wt_seed(0xf11e, w);
}

static unsigned char pat(size_t i)
{
	return (unsigned char)(word(i / 8) >> (8 * (i % 8)));
}

static void fill(unsigned char *p, size_t n, size_t off)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(off + i);
}

/* FNV-1a over bytes. */
static uint64_t fnv(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* The same over the pattern's bytes [off, off + n). */
static uint64_t fnv_pat(size_t off, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ pat(off + i)) * 0x100000001b3ull;
	return h;
}

/*
 * The big file: BIG_WRITERS tasks write interleaved CHUNK-sized chunks;
 * BIG_READERS tasks read BIG_READS random ranges each.
 */
#define BIG_SIZE ((size_t)WT_SCALE(64, 8) * 1024 * 1024)
#define CHUNK (256u * 1024u)
#define BIG_WRITERS 4
#define BIG_READERS 8
#define BIG_READS WT_SCALE(64, 16)

struct big {
	int fd;
	unsigned id;
};

static int big_writer(void *arg)
{
	struct big *b = arg;
	unsigned char *buf = malloc(CHUNK);

	if (!buf)
		return -ENOMEM;
	for (size_t off = (size_t)b->id * CHUNK; off < BIG_SIZE;
	     off += (size_t)BIG_WRITERS * CHUNK) {
		size_t done = 0;

		fill(buf, CHUNK, off);
		while (done < CHUNK) {
			ssize_t r = weft_pwrite(b->fd, buf + done,
						CHUNK - done,
						(off_t)(off + done));

			WT_CHECK(r > 0);
			if (r <= 0) {
				free(buf);
				return -1;
			}
			done += (size_t)r;
		}
	}
	free(buf);
	return 0;
}

/* Reads [off, off + n) whole (pread may be short); returns the bytes
 * read. */
static size_t pread_full(int fd, unsigned char *buf, size_t n, size_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = weft_pread(fd, buf + done, n - done,
				       (off_t)(off + done));

		if (r <= 0) {
			WT_CHECK(r == 0);
			break;
		}
		done += (size_t)r;
	}
	return done;
}

static int big_reader(void *arg)
{
	struct big *b = arg;
	uint64_t rng = wt_seed(0xbead, b->id);
	unsigned char *buf = malloc(4 * CHUNK);

	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < BIG_READS; i++) {
		size_t off = (size_t)(wt_rand(&rng) % BIG_SIZE);
		size_t n = 1 + (size_t)(wt_rand(&rng) % (4 * CHUNK));
		size_t want = n < BIG_SIZE - off ? n : BIG_SIZE - off;
		size_t got = pread_full(b->fd, buf, n, off);

		WT_CHECK_EQ(got, want);
		if (fnv(buf, got) != fnv_pat(off, want)) {
			fprintf(stderr, "fs: reader %u: [%zu, +%zu) differs\n",
				b->id, off, want);
			WT_CHECK(!"checksum of a random read differs");
		}
		if (i % 8 == 0)
			WT_CHECK_EQ(weft_yield(), 0);
	}
	free(buf);
	return 0;
}

static int big_root(void *arg)
{
	char path[128];
	struct big w[BIG_WRITERS], rd[BIG_READERS];
	weft_task *t[BIG_READERS];
	struct stat st;
	unsigned char *buf = malloc(CHUNK);
	uint64_t h = 0xcbf29ce484222325ull;
	size_t off;
	int fd, r;

	(void)arg;
	if (!buf)
		return -ENOMEM;
	tmp_path(path, sizeof(path), "big");
	fd = weft_open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
	WT_CHECK(fd >= 0);
	if (fd < 0) {
		free(buf);
		return -1;
	}
	for (unsigned i = 0; i < BIG_WRITERS; i++) {
		w[i] = (struct big){ .fd = fd, .id = i };
		WT_CHECK_EQ(weft_spawn(&t[i], big_writer, &w[i]), 0);
	}
	for (unsigned i = 0; i < BIG_WRITERS; i++) {
		WT_CHECK_EQ(weft_join(t[i], &r), 0);
		WT_CHECK_EQ(r, 0);
	}
	WT_CHECK_EQ(weft_fsync(fd), 0);
	WT_CHECK_EQ(weft_fdatasync(fd), 0);
	WT_CHECK_EQ(weft_fstat(fd, &st), 0);
	WT_CHECK_EQ(st.st_size, BIG_SIZE);
	WT_CHECK(S_ISREG(st.st_mode));
	WT_CHECK_EQ(st.st_mode & 0777, 0600);
	memset(&st, 0, sizeof(st));
	WT_CHECK_EQ(weft_stat(path, &st, 0), 0);
	WT_CHECK_EQ(st.st_size, BIG_SIZE);

	for (unsigned i = 0; i < BIG_READERS; i++) {
		rd[i] = (struct big){ .fd = fd, .id = i };
		WT_CHECK_EQ(weft_spawn(&t[i], big_reader, &rd[i]), 0);
	}
	/* Meanwhile, the whole file in order. */
	for (off = 0; off < BIG_SIZE; off += CHUNK) {
		size_t got = pread_full(fd, buf, CHUNK, off);

		WT_CHECK_EQ(got, CHUNK);
		for (size_t i = 0; i < got; i++)
			h = (h ^ buf[i]) * 0x100000001b3ull;
	}
	WT_CHECK(h == fnv_pat(0, BIG_SIZE));
	for (unsigned i = 0; i < BIG_READERS; i++) {
		WT_CHECK_EQ(weft_join(t[i], &r), 0);
		WT_CHECK_EQ(r, 0);
	}
	/* At and past the end. */
	WT_CHECK_EQ(weft_pread(fd, buf, 10, (off_t)BIG_SIZE), 0);
	WT_CHECK_EQ(weft_pread(fd, buf, 10, (off_t)BIG_SIZE + 12345), 0);
	WT_CHECK_EQ(weft_pread(fd, buf, 10, -1), -EINVAL);
	WT_CHECK_EQ(weft_pwrite(fd, buf, 10, -1), -EINVAL);
	WT_CHECK_EQ(weft_close(fd), 0);
	/* Read-only: writes fail. */
	fd = weft_open(path, O_RDONLY, 0);
	WT_CHECK(fd >= 0);
	WT_CHECK_EQ(weft_pwrite(fd, buf, 10, 0), -EBADF);
	WT_CHECK_EQ(weft_pread(fd, buf, 10, 5), 10);
	WT_CHECK_EQ(fnv(buf, 10), fnv_pat(5, 10));
	WT_CHECK_EQ(weft_close(fd), 0);
	WT_CHECK_EQ(weft_unlink(path), 0);
	/* Streams have no offset: -ESPIPE, as pread(2) gives, and the data
	 * stays for a read (io_uring alone would read the pipe instead). */
	{
		int p[2];

		WT_CHECK_EQ(pipe(p), 0);
		WT_CHECK_EQ(weft_write(p[1], "DATA", 4), 4);
		WT_CHECK_EQ(weft_pread(p[0], buf, 4, 0), -ESPIPE);
		WT_CHECK_EQ(weft_pwrite(p[1], "x", 1, 0), -ESPIPE);
		WT_CHECK_EQ(weft_read(p[0], buf, 8), 4);
		WT_CHECK(memcmp(buf, "DATA", 4) == 0);
		weft_close(p[0]);
		weft_close(p[1]);
	}
	free(buf);
	return 0;
}

static void test_big_file(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(4, big_root, NULL), 0);
}

/*
 * Directories, names and their errors. Run from a task and from a plain
 * thread (the calls are then the system calls).
 */
static int names(void)
{
	char d[128], f[160], g[160], l[160], missing[160];
	struct stat st, st2;
	int fd;

	tmp_path(d, sizeof(d), "sub");
	snprintf(f, sizeof(f), "%s/f", d);
	snprintf(g, sizeof(g), "%s/g", d);
	snprintf(l, sizeof(l), "%s/l", d);
	snprintf(missing, sizeof(missing), "%s/nope/x", d);

	WT_CHECK_EQ(weft_mkdir(d, 0700), 0);
	WT_CHECK_EQ(weft_mkdir(d, 0700), -EEXIST);
	WT_CHECK_EQ(weft_stat(d, &st, 0), 0);
	WT_CHECK(S_ISDIR(st.st_mode));

	fd = weft_open(f, O_CREAT | O_EXCL | O_WRONLY, 0640);
	WT_CHECK(fd >= 0);
	WT_CHECK_EQ(weft_open(f, O_CREAT | O_EXCL | O_WRONLY, 0640), -EEXIST);
	WT_CHECK_EQ(weft_pwrite(fd, "12345", 5, 0), 5);
	WT_CHECK_EQ(weft_fstat(fd, &st), 0);
	WT_CHECK_EQ(st.st_size, 5);
	WT_CHECK_EQ(weft_close(fd), 0);
	WT_CHECK_EQ(weft_open(missing, O_RDONLY, 0), -ENOENT);
	WT_CHECK_EQ(weft_open(missing, O_CREAT | O_WRONLY, 0600), -ENOENT);

	/* Rename: the old name is gone, the new one is the same file. */
	WT_CHECK_EQ(weft_stat(f, &st, 0), 0);
	WT_CHECK_EQ(weft_rename(f, g), 0);
	WT_CHECK_EQ(weft_stat(f, &st2, 0), -ENOENT);
	WT_CHECK_EQ(weft_stat(g, &st2, 0), 0);
	WT_CHECK_EQ(st2.st_ino, st.st_ino);
	WT_CHECK_EQ(st2.st_size, 5);
	WT_CHECK_EQ(weft_rename(f, g), -ENOENT);

	/* A symlink: stat follows it, AT_SYMLINK_NOFOLLOW does not. */
	WT_CHECK_EQ(symlink(g, l), 0);
	WT_CHECK_EQ(weft_stat(l, &st2, 0), 0);
	WT_CHECK(S_ISREG(st2.st_mode));
	WT_CHECK_EQ(st2.st_ino, st.st_ino);
	WT_CHECK_EQ(weft_stat(l, &st2, AT_SYMLINK_NOFOLLOW), 0);
	WT_CHECK(S_ISLNK(st2.st_mode));
	WT_CHECK_EQ(weft_unlink(l), 0);

	/* Removal and its errors. */
	WT_CHECK_EQ(weft_rmdir(d), -ENOTEMPTY);
	WT_CHECK_EQ(weft_unlink(d), -EISDIR);
	WT_CHECK_EQ(weft_rmdir(g), -ENOTDIR);
	WT_CHECK_EQ(weft_unlink(g), 0);
	WT_CHECK_EQ(weft_unlink(g), -ENOENT);
	WT_CHECK_EQ(weft_rmdir(d), 0);
	WT_CHECK_EQ(weft_rmdir(d), -ENOENT);
	WT_CHECK_EQ(weft_stat(d, &st, 0), -ENOENT);

	/* Argument errors. */
	WT_CHECK_EQ(weft_stat(tmpdir, &st, 0x4000000), -EINVAL);
	WT_CHECK_EQ(weft_stat(NULL, &st, 0), -EFAULT);
	WT_CHECK_EQ(weft_stat(tmpdir, NULL, 0), -EFAULT);
	WT_CHECK_EQ(weft_fstat(-1, &st), -EBADF);
	WT_CHECK_EQ(weft_fsync(-1), -EBADF);
	WT_CHECK_EQ(weft_pread(-1, &st, 1, 0), -EBADF);
	WT_CHECK_EQ(weft_open(NULL, O_RDONLY, 0), -EFAULT);
	WT_CHECK_EQ(weft_unlink(NULL), -EFAULT);
	WT_CHECK_EQ(weft_rename(NULL, g), -EFAULT);
	return 0;
}

static int names_root(void *arg)
{
	char p[128];
	struct stat st;

	(void)arg;
	WT_CHECK_EQ(names(), 0);
	/* An expired deadline: the call has no effect. */
	tmp_path(p, sizeof(p), "late");
	WT_CHECK_EQ(weft_timeout_begin(0), 0);
	WT_CHECK_EQ(weft_open(p, O_CREAT | O_WRONLY, 0600), -ETIMEDOUT);
	WT_CHECK_EQ(weft_mkdir(p, 0700), -ETIMEDOUT);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	WT_CHECK_EQ(weft_stat(p, &st, 0), -ENOENT);
	return 0;
}

static void test_names(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, names_root, NULL), 0);
}

/*
 * weft_read / weft_write / readv / writev on a regular file use and
 * advance its offset (O_APPEND appends), like read(2) and write(2).
 */
static int offset_root(void *arg)
{
	char path[128];
	unsigned char buf[3000], back[3000];
	struct iovec iov[2];
	int fd;

	(void)arg;
	tmp_path(path, sizeof(path), "offset");
	fd = weft_open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
	WT_CHECK(fd >= 0);
	fill(buf, sizeof(buf), 0);
	WT_CHECK_EQ(weft_write(fd, buf, 1000), 1000);
	WT_CHECK_EQ(weft_write(fd, buf + 1000, 1000), 1000);
	iov[0] = (struct iovec){ .iov_base = buf + 2000, .iov_len = 400 };
	iov[1] = (struct iovec){ .iov_base = buf + 2400, .iov_len = 600 };
	WT_CHECK_EQ(weft_writev(fd, iov, 2), 1000);
	WT_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 3000);
	WT_CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	memset(back, 0, sizeof(back));
	WT_CHECK_EQ(weft_read(fd, back, 1500), 1500);
	iov[0] = (struct iovec){ .iov_base = back + 1500, .iov_len = 700 };
	iov[1] = (struct iovec){ .iov_base = back + 2200, .iov_len = 800 };
	WT_CHECK_EQ(weft_readv(fd, iov, 2), 1500);
	WT_CHECK(memcmp(buf, back, sizeof(buf)) == 0);
	WT_CHECK_EQ(weft_read(fd, back, 10), 0);
	WT_CHECK_EQ(weft_close(fd), 0);
	fd = weft_open(path, O_WRONLY | O_APPEND, 0);
	WT_CHECK(fd >= 0);
	WT_CHECK_EQ(weft_write(fd, "tail", 4), 4);
	WT_CHECK_EQ(weft_close(fd), 0);
	fd = weft_open(path, O_RDONLY, 0);
	WT_CHECK(fd >= 0);
	WT_CHECK_EQ(weft_pread(fd, back, 10, 3000), 4);
	WT_CHECK(memcmp(back, "tail", 4) == 0);
	WT_CHECK_EQ(weft_close(fd), 0);
	WT_CHECK_EQ(weft_unlink(path), 0);
	return 0;
}

static void test_file_offset(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, offset_root, NULL), 0);
}

static void test_plain_thread(void **state)
{
	char path[128];
	unsigned char buf[4096];
	struct stat st;
	int fd;

	(void)state;
	assert_int_equal(names(), 0);
	assert_int_equal(wt_take_failures(), 0);
	tmp_path(path, sizeof(path), "plain");
	fd = weft_open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fill(buf, sizeof(buf), 0);
	assert_int_equal(weft_pwrite(fd, buf, sizeof(buf), 0), sizeof(buf));
	assert_int_equal(weft_fsync(fd), 0);
	assert_int_equal(weft_fstat(fd, &st), 0);
	assert_int_equal(st.st_size, sizeof(buf));
	memset(buf, 0, sizeof(buf));
	assert_int_equal(weft_pread(fd, buf, 100, 1000), 100);
	assert_true(fnv(buf, 100) == fnv_pat(1000, 100));
	assert_int_equal(weft_close(fd), 0);
	assert_int_equal(weft_unlink(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_big_file),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_file_offset),
		cmocka_unit_test(test_plain_thread),
	};

	return WT_RUN_BOTH_BACKENDS("fs", tests, setup, teardown);
}
