/* SPDX-License-Identifier: MIT */
/*
 * Channels (Go's chan, asyncio.Queue): typed by element size, copied in and
 * out, any number of senders and receivers, tasks or plain threads.
 *
 * capacity 0 is an unbuffered rendezvous: a send completes when a receiver
 * takes the element. WEFT_CHAN_UNBOUNDED grows without limit (sends never
 * wait). Anything else is a bounded buffer: send waits while it is full,
 * recv while it is empty. Waiters are served first-in first-out.
 *
 * Nothing sent is lost or delivered twice: a send that returns 0 was
 * received or is buffered; a receiver that is cancelled or times out has
 * either received the element (and returns 0) or left it in the channel.
 *
 * After weft_chan_close, send returns -EPIPE and recv drains what is
 * buffered, then returns -EPIPE; waiting senders and receivers wake with
 * -EPIPE.
 */
#ifndef WEFT_CHAN_H
#define WEFT_CHAN_H

#include <stddef.h>
#include <sys/types.h>
#include <weft/version.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_chan weft_chan;

#define WEFT_CHAN_UNBOUNDED ((size_t)-1)

/* elem_size 1 .. 65536. Returns 0 and *out, -EINVAL or -ENOMEM. */
WEFT_EXPORT int weft_chan_new(weft_chan **out, size_t elem_size,
			      size_t capacity);
/* Frees c; no task or thread may use or wait on it any more. */
WEFT_EXPORT void weft_chan_free(weft_chan *c);

/* 0, -EPIPE (closed), -ECANCELED, -ETIMEDOUT, -ENOMEM (unbounded growth). */
WEFT_EXPORT int weft_chan_send(weft_chan *c, const void *elem);
/* 0, -EPIPE (closed and drained), -ECANCELED, -ETIMEDOUT. */
WEFT_EXPORT int weft_chan_recv(weft_chan *c, void *elem);
/* As above, but -EAGAIN instead of waiting. */
WEFT_EXPORT int weft_chan_try_send(weft_chan *c, const void *elem);
WEFT_EXPORT int weft_chan_try_recv(weft_chan *c, void *elem);
/* 0, or -EPIPE if it was already closed. */
WEFT_EXPORT int weft_chan_close(weft_chan *c);
/* Elements buffered now (a snapshot), or -EINVAL. */
WEFT_EXPORT ssize_t weft_chan_len(weft_chan *c);

/*
 * Select (Go's select, tokio::select!): waits until one of the cases can
 * proceed, performs exactly that one, and returns its index. When several
 * are ready, one is chosen at random, so no case starves.
 * A send case on a closed channel, or a receive case on a closed and
 * drained one, is ready too: it fires with err = -EPIPE.
 * Returns the index, or -ECANCELED / -ETIMEDOUT (no case took effect),
 * -EINVAL (n == 0, a NULL channel or elem), -ENOMEM (n > 16 and no memory
 * for the waiters, or an unbounded channel could not grow; no case took
 * effect). weft_select_try returns -EAGAIN instead of waiting.
 */
enum { WEFT_SELECT_SEND = 1, WEFT_SELECT_RECV = 2 };

typedef struct weft_select_case {
	weft_chan *chan;
	int op;			/* WEFT_SELECT_SEND or WEFT_SELECT_RECV */
	int err;		/* out: 0, or -EPIPE for a closed channel */
	void *elem;		/* element to send from, or to receive into */
} weft_select_case;

WEFT_EXPORT int weft_select(weft_select_case *cases, size_t n);
WEFT_EXPORT int weft_select_try(weft_select_case *cases, size_t n);

#ifdef __cplusplus
}
#endif
#endif
