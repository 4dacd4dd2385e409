/* SPDX-License-Identifier: MIT */
/*
 * Buffered streams (include/weft/stream.h): a read buffer and a write
 * buffer of buf_size bytes each, over an fd the stream does not own.
 *
 * The read buffer, rbuf[0, size):
 *
 *     0        rstart            rend             size
 *     [ consumed |  buffered data  |  free space   ]
 *
 * Data is consumed from rstart and read in at rend. The buffer never grows:
 * when the free tail gets short, the buffered bytes move down to 0
 * (compaction); a record that does not fit in `size` bytes is refused with
 * -EMSGSIZE and stays buffered. Positions inside the buffered data are kept
 * relative to rstart, so compaction never invalidates them.
 *
 * The write buffer, wbuf[0, size):
 *
 *     0        woff              wlen             size
 *     [  sent  |   not yet sent    |  free space   ]
 *
 * A flush that fails or is cancelled half-way keeps woff, so the next flush
 * sends exactly the bytes that did not go out.
 *
 * Sockets are read and written with weft_recv / weft_send (weft_send adds
 * MSG_NOSIGNAL: a closed peer is -EPIPE, never SIGPIPE); anything else with
 * weft_read / weft_write. Which one is decided once, by fstat in
 * weft_stream_new.
 *
 * Every error is a negative errno passed through from the call that failed;
 * errno is never used to report (a task may resume on another thread).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "internal.h"

#define STREAM_BUF_DEFAULT (64 * 1024)

struct weft_stream {
	int fd;			/* constant; not owned */
	bool sock;		/* constant: fd is a socket */
	size_t size;		/* constant: bytes in each buffer */
	unsigned char *rbuf;	/* constant: read buffer */
	size_t rstart, rend;	/* buffered data is rbuf[rstart, rend) */
	unsigned char *wbuf;	/* constant: write buffer */
	size_t woff, wlen;	/* unsent data is wbuf[woff, wlen) */
	/* rbuf and wbuf follow the struct in the same allocation. */
};

/* One read or write of the right kind for the fd. */
static ssize_t xread(weft_stream *s, void *buf, size_t n)
{
	return s->sock ? weft_recv(s->fd, buf, n, 0) : weft_read(s->fd, buf, n);
}

static ssize_t xwrite(weft_stream *s, const void *buf, size_t n)
{
	return s->sock ? weft_send(s->fd, buf, n, 0)
		       : weft_write(s->fd, buf, n);
}

/* Writes all n bytes (weft_write_all, but with send for sockets). Returns
 * n or a negative errno; bytes written before an error are gone. */
static ssize_t xwrite_all(weft_stream *s, const void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = xwrite(s, (const unsigned char *)buf + done,
				   n - done);

		if (r < 0)
			return r;
		if (r == 0)
			return -EIO; /* a write that moves nothing never will */
		done += (size_t)r;
	}
	return (ssize_t)n;
}

int weft_stream_new(weft_stream **out, int fd, size_t buf_size)
{
	struct stat st;
	weft_stream *s;

	if (!out || fd < 0)
		return -EINVAL;
	if (buf_size == 0)
		buf_size = STREAM_BUF_DEFAULT;
	/* Two buffers plus the header, and every length fits in ssize_t. */
	if (buf_size > ((size_t)SSIZE_MAX - sizeof(*s)) / 2)
		return -EINVAL;
	/* A plain fstat: it does not suspend, so errno is read on the thread
	 * that made the call. */
	if (fstat(fd, &st) < 0)
		return -errno;
	s = malloc(sizeof(*s) + 2 * buf_size);
	if (!s)
		return -ENOMEM;
	s->fd = fd;
	s->sock = S_ISSOCK(st.st_mode);
	s->size = buf_size;
	s->rbuf = (unsigned char *)(s + 1);
	s->wbuf = s->rbuf + buf_size;
	s->rstart = s->rend = 0;
	s->woff = s->wlen = 0;
	*out = s;
	return 0;
}

void weft_stream_free(weft_stream *s)
{
	free(s);
}

static inline size_t rbuffered(const weft_stream *s)
{
	return s->rend - s->rstart;
}

/* Hands n buffered bytes to the caller. */
static void rtake(weft_stream *s, void *buf, size_t n)
{
	memcpy(buf, s->rbuf + s->rstart, n);
	s->rstart += n;
	if (s->rstart == s->rend)
		s->rstart = s->rend = 0;
}

/*
 * One read into the free space of the read buffer, which must not be full.
 * Compacts first when the free tail is shorter than half the buffer (the
 * move copies only the bytes still buffered), so reads do not shrink to
 * slivers as data is consumed. Returns the bytes read, 0 at end of stream,
 * or a negative errno (nothing buffered is lost).
 */
static ssize_t rfill(weft_stream *s)
{
	ssize_t r;

	if (s->rstart > 0 && s->size - s->rend < s->size / 2) {
		memmove(s->rbuf, s->rbuf + s->rstart, rbuffered(s));
		s->rend -= s->rstart;
		s->rstart = 0;
	}
	r = xread(s, s->rbuf + s->rend, s->size - s->rend);
	if (r > 0)
		s->rend += (size_t)r;
	return r;
}

/*
 * The search resumes where the previous one stopped: `scanned` counts the
 * positions (relative to rstart) at which a delimiter has been ruled out to
 * start. After reading more, only the last dlen - 1 of the old bytes can be
 * the start of a delimiter that the new bytes complete, so every byte is
 * looked at O(dlen) times however the input is split, not once per read.
 */
ssize_t weft_stream_read_until(weft_stream *s, const void *delim, size_t dlen,
			       void *buf, size_t cap)
{
	size_t limit, scanned = 0;

	if (!s || !delim || dlen == 0 || (!buf && cap))
		return -EINVAL;
	limit = cap < s->size ? cap : s->size;
	if (limit > (size_t)SSIZE_MAX)
		limit = (size_t)SSIZE_MAX;
	for (;;) {
		size_t avail = rbuffered(s);
		ssize_t r;

		if (avail >= dlen && avail - dlen >= scanned) {
			const unsigned char *base = s->rbuf + s->rstart;
			const unsigned char *p =
				memmem(base + scanned, avail - scanned, delim,
				       dlen);

			if (p) {
				size_t n = (size_t)(p - base) + dlen;

				if (n > limit)
					return -EMSGSIZE;
				rtake(s, buf, n);
				return (ssize_t)n;
			}
			scanned = avail - dlen + 1;
		}
		/* No delimiter in what is buffered: one that ends later
		 * would end past the limit. */
		if (avail >= limit)
			return -EMSGSIZE;
		r = rfill(s);
		if (r < 0)
			return r;
		if (r == 0) {
			/* End of stream: the rest, without a delimiter
			 * (avail < limit <= cap, so it fits). */
			rtake(s, buf, avail);
			return (ssize_t)avail;
		}
	}
}

ssize_t weft_stream_read_line(weft_stream *s, char *buf, size_t cap)
{
	return weft_stream_read_until(s, "\n", 1, buf, cap);
}

/*
 * Up to the buffer size, the bytes gather in the buffer and are handed out
 * only once all n are there: an error or an early end leaves them buffered.
 * A larger n cannot be held back: the buffered bytes and then reads straight
 * into buf fill it, and an early end (-EPIPE) or an error loses the bytes
 * read so far, as with weft_read_exact.
 */
ssize_t weft_stream_read_exact(weft_stream *s, void *buf, size_t n)
{
	size_t done;

	if (!s || (!buf && n) || n > (size_t)SSIZE_MAX)
		return -EINVAL;
	if (n <= s->size) {
		while (rbuffered(s) < n) {
			ssize_t r;

			/* Room for all n: rfill compacts a tail shorter
			 * than half the buffer; if the tail is still too
			 * short for the rest, make room now. */
			if (s->size - s->rstart < n) {
				memmove(s->rbuf, s->rbuf + s->rstart,
					rbuffered(s));
				s->rend -= s->rstart;
				s->rstart = 0;
			}
			r = rfill(s);
			if (r < 0)
				return r;
			if (r == 0)
				return rbuffered(s) == 0 ? 0 : -EPIPE;
		}
		rtake(s, buf, n);
		return (ssize_t)n;
	}
	done = rbuffered(s);
	rtake(s, buf, done);
	while (done < n) {
		ssize_t r = xread(s, (unsigned char *)buf + done, n - done);

		if (r < 0)
			return r;
		if (r == 0)
			return done == 0 ? 0 : -EPIPE;
		done += (size_t)r;
	}
	return (ssize_t)n;
}

ssize_t weft_stream_read(weft_stream *s, void *buf, size_t n)
{
	size_t avail;
	ssize_t r;

	if (!s || (!buf && n))
		return -EINVAL;
	if (n == 0)
		return 0;
	if (n > (size_t)SSIZE_MAX)
		n = (size_t)SSIZE_MAX;
	avail = rbuffered(s);
	if (avail == 0) {
		/* Nothing buffered: a large read goes straight to buf. */
		if (n >= s->size)
			return xread(s, buf, n);
		r = rfill(s);
		if (r <= 0)
			return r;
		avail = rbuffered(s);
	}
	if (n > avail)
		n = avail;
	rtake(s, buf, n);
	return (ssize_t)n;
}

int weft_stream_flush(weft_stream *s)
{
	if (!s)
		return -EINVAL;
	while (s->woff < s->wlen) {
		ssize_t r = xwrite(s, s->wbuf + s->woff, s->wlen - s->woff);

		if (r < 0)
			return (int)r; /* woff keeps what went out */
		if (r == 0)
			return -EIO;
		s->woff += (size_t)r;
	}
	s->woff = s->wlen = 0;
	return 0;
}

/*
 * Data that fits after what is buffered is copied in. Otherwise the buffer
 * is flushed first, so that an error leaves none of this call's bytes
 * half-buffered; then data shorter than the buffer is copied in, and larger
 * data is written straight from the caller's memory (one copy fewer, and
 * no pointless buffer-sized chunks).
 */
ssize_t weft_stream_write(weft_stream *s, const void *buf, size_t n)
{
	ssize_t r;

	if (!s || (!buf && n) || n > (size_t)SSIZE_MAX)
		return -EINVAL;
	if (n > s->size - s->wlen) {
		r = weft_stream_flush(s);
		if (r < 0)
			return r;
		if (n >= s->size)
			return xwrite_all(s, buf, n);
	}
	memcpy(s->wbuf + s->wlen, buf, n);
	s->wlen += n;
	return (ssize_t)n;
}
