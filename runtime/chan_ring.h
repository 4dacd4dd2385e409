/* SPDX-License-Identifier: MIT */
/*
 * The slots of a buffered channel: a ring of fixed-size elements, each with
 * a stamp that tells whether it holds an element, as in Dmitry Vyukov's
 * bounded MPMC queue. Private to chan.c, which keeps the two positions,
 * tail (next push) and head (next pop), each under its own lock, and whose
 * protocol is at its top.
 *
 * The stamps let each end work from its own position and the slot alone: a
 * pusher learns that its slot is free, and a popper that its slot holds an
 * element, without reading the other end's position. So the two ends share
 * only the slots. A slot's cache line moves between them once per lap in
 * each direction when the ends are far apart; small elements share a line
 * with their neighbours, so when the ends are close it moves more often.
 *
 * Positions. A position is `lap + index`: index (0 .. cap - 1) in the low
 * bits, below `lap_unit`, the least power of two above cap; laps count in
 * multiples of lap_unit. ring_next() steps from index cap - 1 to index 0
 * of the next lap, so any capacity works. Positions only grow (modulo 2^N;
 * they are only ever compared for equality). The ring is full when
 * tail == head + lap_unit and empty when tail == head.
 *
 * A slot at index i whose stamp is
 *   p             is free for the push at position p;
 *   p + 1         holds the element pushed at p, for the pop at position p;
 * and the pop at p leaves p + lap_unit, the push position of the next lap.
 *
 * Memory orders. The stamp carries each element between the two ends,
 * which hold different locks: ring_put's release store of p + 1 pairs with
 * ring_ready's acquire load, so the element's bytes are complete before
 * ring_take copies them out; ring_take's release store of p + lap_unit
 * pairs with ring_free's acquire load, so the element was copied out
 * before the next lap's ring_put overwrites it.
 */
#ifndef WEFT_CHAN_RING_H
#define WEFT_CHAN_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "atomic.h"

struct ring_slot {
	_Atomic size_t stamp;	/* see the top of the file */
	unsigned char elem[];	/* esz bytes */
};

/* Constant after ring_init. */
struct ring {
	unsigned char *slots;	/* cap slots of `stride` bytes */
	size_t stride;		/* sizeof stamp + esz, rounded up */
	unsigned shift;		/* log2(stride) if a power of two, else 0 */
	size_t esz;		/* element size */
	size_t cap;		/* capacity, >= 1 (chan.c keeps 0 or SIZE_MAX
				   here for a channel without slots) */
	size_t lap_unit;	/* least power of two > cap */
	unsigned lap_shift;	/* log2(lap_unit) */
};

static inline void ring_elem_copy(void *d, const void *s, size_t n)
{
	if (n == 8)
		memcpy(d, s, 8); /* one load and one store */
	else
		memcpy(d, s, n);
}

/* Bytes for a ring of cap elements of esz bytes, or 0 on overflow. */
static inline size_t ring_bytes(size_t esz, size_t cap)
{
	size_t stride = (sizeof(size_t) + esz + sizeof(size_t) - 1) &
			~(sizeof(size_t) - 1);

	/* cap + 1 must round up to a power of two in a size_t. */
	if (cap == 0 || cap > SIZE_MAX / 4 || cap > SIZE_MAX / stride)
		return 0;
	return cap * stride;
}

/* Sets r up over `mem` (ring_bytes(esz, cap) bytes, size_t-aligned), with
 * tail = head = 0. Nothing is shared yet: relaxed stores. */
static inline void ring_init(struct ring *r, void *mem, size_t esz,
			     size_t cap)
{
	size_t unit = 1;

	while (unit < cap + 1)
		unit <<= 1;
	r->slots = mem;
	r->stride = ring_bytes(esz, 1);
	r->shift = 0;
	if ((r->stride & (r->stride - 1)) == 0)
		while (((size_t)1 << r->shift) < r->stride)
			r->shift++;
	r->esz = esz;
	r->cap = cap;
	r->lap_unit = unit;
	r->lap_shift = 0;
	while (((size_t)1 << r->lap_shift) < unit)
		r->lap_shift++;
	for (size_t i = 0; i < cap; i++)
		STORE(&((struct ring_slot *)(void *)(r->slots +
						     i * r->stride))->stamp,
		      i, relaxed);
}

/* The slot at index i. */
static inline struct ring_slot *ring_slot_i(const struct ring *r, size_t i)
{
	return (struct ring_slot *)(void *)(r->slots +
					    (r->shift ? i << r->shift
						      : i * r->stride));
}

static inline struct ring_slot *ring_slot_at(const struct ring *r, size_t pos)
{
	return ring_slot_i(r, pos & (r->lap_unit - 1));
}

static inline size_t ring_next(const struct ring *r, size_t pos)
{
	if ((pos & (r->lap_unit - 1)) + 1 < r->cap)
		return pos + 1;
	return (pos & ~(r->lap_unit - 1)) + r->lap_unit;
}

static inline bool ring_full(const struct ring *r, size_t tail, size_t head)
{
	return tail == head + r->lap_unit;
}

/* Positions from `from` to `to` (to not behind from, any distance). */
static inline size_t ring_dist(const struct ring *r, size_t from, size_t to)
{
	return ((to >> r->lap_shift) - (from >> r->lap_shift)) * r->cap +
	       (to & (r->lap_unit - 1)) - (from & (r->lap_unit - 1));
}

/* True if the slot at tail t is free for the push at t (the pop of its
 * previous element has copied it out). acquire: pairs with ring_take's
 * release store. */
static inline bool ring_free(const struct ring *r, size_t t)
{
	return LOAD(&ring_slot_at(r, t)->stamp, acquire) == t;
}

/* True if the slot at head h holds the element pushed at h. acquire:
 * pairs with ring_put's release store. */
static inline bool ring_ready(const struct ring *r, size_t h)
{
	return LOAD(&ring_slot_at(r, h)->stamp, acquire) == h + 1;
}

/* Hint (relaxed): ring_ready without the order, for a look before taking
 * the lock. */
static inline bool ring_maybe_ready(const struct ring *r, size_t h)
{
	return LOAD(&ring_slot_at(r, h)->stamp, relaxed) == h + 1;
}

/* The push at t, whose slot is free: copies *src in and publishes it. */
static inline void ring_put(const struct ring *r, size_t t, const void *src)
{
	struct ring_slot *s = ring_slot_at(r, t);

	ring_elem_copy(s->elem, src, r->esz);
	/* release: publishes the element to the pop at t (ring_ready). */
	STORE(&s->stamp, t + 1, release);
}

/* The pop at h, whose slot is ready: copies the element out and frees the
 * slot for the next lap. */
static inline void ring_take(const struct ring *r, size_t h, void *dst)
{
	struct ring_slot *s = ring_slot_at(r, h);

	ring_elem_copy(dst, s->elem, r->esz);
	/* release: the element is copied out before the next lap's push
	 * (ring_free) overwrites it. */
	STORE(&s->stamp, h + r->lap_unit, release);
}

#endif
