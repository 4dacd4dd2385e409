/* SPDX-License-Identifier: MIT */
/*
 * File I/O workloads.
 *
 * file:      m tasks read an n MiB page-cache-warm file in 128 KiB chunks,
 *            one read in flight each (m = 4: four in flight), through
 *            weft_pread. The tasks spread over the workers, and a cached
 *            read is copied by the worker that submits it, so more workers
 *            copy on more cores.
 * file-ring: the reference: one thread, one io_uring, m reads in flight,
 *            no runtime (what a single-ring program reaches).
 * Both report GB/s (10^9 bytes per second) and check a stamp that the file
 * carries every 4 KiB, so a short or misplaced read fails the run.
 *
 * The file is $WEFT_BENCH_FILE, or /tmp/weft-bench-<n>MiB; it is created
 * once and kept (creating 1 GiB takes longer than reading it).
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define CHUNK (128u * 1024u)
#define STAMP 4096u

static void file_path(const struct bench_run *r, char *buf, size_t len)
{
	const char *e = getenv("WEFT_BENCH_FILE");

	if (e && *e)
		snprintf(buf, len, "%s", e);
	else
		snprintf(buf, len, "/tmp/weft-bench-%lluMiB",
			 (unsigned long long)r->n);
}

/* Opens the file, creating it (stamped) if missing or of the wrong size,
 * and reads it once so that it is in the page cache. */
static int open_warm(struct bench_run *r, uint64_t size)
{
	char path[512];
	struct stat st;
	char *buf = malloc(CHUNK);
	int fd;

	if (!buf)
		return bench_fail(r, "no memory");
	file_path(r, path, sizeof(path));
	if (stat(path, &st) != 0 || (uint64_t)st.st_size != size) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0) {
			free(buf);
			return bench_fail(r, "cannot create %s: %s", path,
					  strerror(errno));
		}
		for (uint64_t off = 0; off < size; off += CHUNK) {
			for (uint32_t i = 0; i < CHUNK; i += STAMP)
				*(uint64_t *)(buf + i) = off + i;
			if (pwrite(fd, buf, CHUNK, (off_t)off) != CHUNK) {
				close(fd);
				free(buf);
				return bench_fail(r, "cannot write %s", path);
			}
		}
		close(fd);
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return bench_fail(r, "cannot open %s: %s", path,
				  strerror(errno));
	}
	for (uint64_t off = 0; off < size; off += CHUNK)
		if (pread(fd, buf, CHUNK, (off_t)off) != CHUNK)
			break;
	free(buf);
	return fd;
}

static bool stamps_ok(const char *buf, uint64_t off)
{
	for (uint32_t i = 0; i < CHUNK; i += STAMP)
		if (*(const uint64_t *)(buf + i) != off + i)
			return false;
	return true;
}

struct file_reader {
	int fd;
	unsigned idx, stride;
	uint64_t size;
	uint64_t bytes;
	int err;		/* negative errno, or -EILSEQ: bad stamp */
};

static int file_task(void *arg)
{
	struct file_reader *fr = arg;
	char *buf = aligned_alloc(4096, CHUNK);

	if (!buf)
		return fr->err = -ENOMEM;
	for (uint64_t off = (uint64_t)fr->idx * CHUNK; off < fr->size;
	     off += (uint64_t)fr->stride * CHUNK) {
		ssize_t n = weft_pread(fr->fd, buf, CHUNK, (off_t)off);

		if (n != CHUNK) {
			fr->err = n < 0 ? (int)n : -EIO;
			break;
		}
		if (!stamps_ok(buf, off)) {
			fr->err = -EILSEQ;
			break;
		}
		fr->bytes += CHUNK;
	}
	free(buf);
	return fr->err;
}

static void set_gbps(struct bench_run *r, uint64_t bytes)
{
	r->has_value = 1;
	r->value = (double)bytes / (double)(r->t1 - r->t0);
	r->ops = bytes / CHUNK;
}

int bench_file(struct bench_run *r)
{
	uint64_t size = r->n << 20, total = 0;
	struct file_reader *fr;
	weft_task **h;
	int fd;

	if (r->m < 1 || r->m > 64 || size < CHUNK || size % CHUNK)
		return bench_fail(r, "-n MiB (>= 1) and -m readers (1..64)");
	fd = open_warm(r, size);
	if (fd < 0)
		return -1;
	fr = calloc(r->m, sizeof(*fr));
	h = bench_handles(r, r->m);
	if (!fr || !h) {
		close(fd);
		free(fr);
		free(h);
		return bench_fail(r, "no memory");
	}
	bench_start(r);
	for (unsigned i = 0; i < r->m; i++) {
		fr[i] = (struct file_reader){ .fd = fd, .idx = i,
					      .stride = (unsigned)r->m,
					      .size = size };
		if (weft_spawn(&h[i], file_task, &fr[i]) < 0) {
			bench_fail(r, "spawn failed");
			r->m = i;
			break;
		}
	}
	bench_join_all(r, h, r->m, "reader", true);
	bench_stop(r);
	for (unsigned i = 0; i < r->m; i++)
		total += fr[i].bytes;
	if (!r->err[0] && total != size)
		bench_fail(r, "read %llu of %llu bytes",
			   (unsigned long long)total, (unsigned long long)size);
	set_gbps(r, total);
	close(fd);
	free(fr);
	free(h);
	return r->err[0] ? -1 : 0;
}

int bench_file_ring(struct bench_run *r)
{
	uint64_t size = r->n << 20, next = 0, total = 0;
	unsigned depth = (unsigned)r->m, inflight = 0, nfree = 0;
	unsigned freeslot[64];
	struct io_uring ring;
	char *bufs;
	int fd, rc;

	if (depth < 1 || depth > 64 || size < CHUNK || size % CHUNK)
		return bench_fail(r, "-n MiB (>= 1) and -m depth (1..64)");
	fd = open_warm(r, size);
	if (fd < 0)
		return -1;
	bufs = aligned_alloc(4096, (size_t)depth * CHUNK);
	rc = bufs ? io_uring_queue_init(depth * 2, &ring, 0) : -ENOMEM;
	if (rc < 0) {
		free(bufs);
		close(fd);
		return bench_fail(r, "io_uring_queue_init: %s", strerror(-rc));
	}
	for (unsigned i = 0; i < depth; i++)
		freeslot[nfree++] = i;
	bench_start(r);
	for (;;) {
		struct io_uring_cqe *cqe;

		/* user_data: offset | buffer slot (offsets are CHUNK-aligned,
		 * so the low bits are free). */
		while (inflight < depth && next < size) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			unsigned slot = freeslot[--nfree];

			io_uring_prep_read(sqe, fd, bufs + (size_t)slot * CHUNK,
					   CHUNK, next);
			io_uring_sqe_set_data64(sqe, next | slot);
			next += CHUNK;
			inflight++;
		}
		if (!inflight)
			break;
		rc = io_uring_submit_and_wait(&ring, 1);
		if (rc < 0 && rc != -EINTR) {
			bench_fail(r, "io_uring_submit: %s", strerror(-rc));
			break;
		}
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);
			uint64_t off = ud & ~(uint64_t)(CHUNK - 1);
			unsigned slot = (unsigned)(ud & (CHUNK - 1));

			if (cqe->res != CHUNK ||
			    !stamps_ok(bufs + (size_t)slot * CHUNK, off))
				bench_fail(r, "bad read at %llu: %d",
					   (unsigned long long)off, cqe->res);
			total += CHUNK;
			inflight--;
			freeslot[nfree++] = slot;
			io_uring_cqe_seen(&ring, cqe);
		}
		if (r->err[0])
			break;
	}
	bench_stop(r);
	io_uring_queue_exit(&ring);
	set_gbps(r, total);
	free(bufs);
	close(fd);
	return r->err[0] ? -1 : 0;
}
