/* SPDX-License-Identifier: MIT */
/*
 * Buffered streams over a file descriptor, like asyncio's StreamReader and
 * StreamWriter in one object. A stream is used by one task at a time.
 */
#ifndef WEFT_STREAM_H
#define WEFT_STREAM_H

#include <stddef.h>
#include <sys/types.h>
#include <weft/version.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_stream weft_stream;

/*
 * A stream over fd with read and write buffers of buf_size bytes each
 * (0 = 64 KiB). buf_size is also the longest line or delimited record that
 * read_line / read_until accept. The stream does not own fd.
 * Returns 0, -EINVAL, -ENOMEM.
 */
WEFT_EXPORT int weft_stream_new(weft_stream **out, int fd, size_t buf_size);

/*
 * Reads up to and including the delimiter `delim` (dlen bytes) into buf
 * (capacity cap) and returns the number of bytes stored, delimiter included.
 * At end of stream returns what is left without a delimiter (0 when nothing
 * is). -EMSGSIZE when no delimiter appears within the limit (the smaller of
 * cap and the buffer size); the stream then stays usable and the bytes
 * searched are still buffered. Other errors as weft_read.
 */
WEFT_EXPORT ssize_t weft_stream_read_until(weft_stream *s, const void *delim,
					   size_t dlen, void *buf, size_t cap);
/* read_until with "\n". */
WEFT_EXPORT ssize_t weft_stream_read_line(weft_stream *s, char *buf,
					  size_t cap);
/* Exactly n bytes: n, or 0 at end of stream before any byte, -EPIPE when it
 * ended in the middle. Partial bytes stay buffered when n fits in the
 * buffer; a longer n reads straight into buf, and then an early end or an
 * error loses them, as weft_read_exact does. */
WEFT_EXPORT ssize_t weft_stream_read_exact(weft_stream *s, void *buf,
					   size_t n);
/* Up to n bytes: what is buffered, or one read when nothing is; 0 at end. */
WEFT_EXPORT ssize_t weft_stream_read(weft_stream *s, void *buf, size_t n);
/* Buffers n bytes, writing the buffer out whenever it fills; returns n. */
WEFT_EXPORT ssize_t weft_stream_write(weft_stream *s, const void *buf,
				      size_t n);
/* Writes out everything buffered. Returns 0 or a negative errno. */
WEFT_EXPORT int weft_stream_flush(weft_stream *s);
/* Frees the stream (without flushing; without closing fd). NULL ignored. */
WEFT_EXPORT void weft_stream_free(weft_stream *s);

#ifdef __cplusplus
}
#endif
#endif
