/* SPDX-License-Identifier: MIT */
/*
 * Local run queue: single producer, multiple consumers, batch stealing.
 *
 * Why not ck_ring_*_spmc: its consumers take one slot per CAS, while a thief
 * here must take half of the queue in one step, so that a worker that went
 * idle gets enough work to stay busy and the queue's owner is disturbed once,
 * not once per task. ck_ring is also invisible to TSan (see atomic.h).
 *
 * Indices are free-running uint32_t counters; slot = index & RQ_MASK.
 * Differences are computed in uint32_t, so wrap-around is harmless as long
 * as no more than 2^32 - 1 pushes happen between two looks of one thread,
 * which the capacity bound makes impossible.
 *
 * Invariants:
 *  I1. steal <= real <= tail (modulo 2^32), and tail - steal <= RQ_CAP.
 *  I2. Slots [real, tail) hold tasks owned by the queue. Slots [steal, real)
 *      are being copied out by exactly one thief; the owner must not
 *      overwrite them, hence pushes are bounded by steal, not by real.
 *  I3. Only the owner writes tail and slot contents; only the owner pops.
 *  I4. At most one thief at a time: a thief starts only when steal == real
 *      and announces itself by CASing real forward while leaving steal.
 *
 * Protocol:
 *  1. push: read head (acquire), write the slot (relaxed), then store
 *     tail + 1 (release). The release publishes the slot to thieves, which
 *     load tail with acquire. The acquire on head pairs with a thief's
 *     final release CAS of step 4: once the owner sees steal advanced, the
 *     thief's reads of those slots are complete and they may be reused.
 *     The owner keeps the last steal it read (steal_seen): steal only
 *     grows, so tail - steal_seen < RQ_CAP proves there is room, and the
 *     slot it then fills last held index tail - RQ_CAP < steal_seen, whose
 *     reads that earlier acquire already ordered. Only a push that may not
 *     fit reads the shared head line.
 *  2. pop: CAS real (and steal, if no thief) forward by one. Only the owner
 *     writes slots, so it can read the slot after winning the CAS.
 *  3. steal: CAS head from (s, r) with s == r to (s, r + n): the slots
 *     [r, r + n) now belong to the thief. acq_rel: acquire so that the
 *     slots the owner published before the tail we read are visible.
 *  4. The thief copies the n tasks into its own ring (it is that ring's
 *     owner), then CASes steal up to real (release: its slot reads happen
 *     before the owner may overwrite them), retrying while the owner pops.
 *  5. overflow (push into a full ring with no thief): the owner claims half
 *     the ring by CASing real forward (like a steal, onto itself) and hands
 *     those tasks and the new one to the global queue in one batch.
 */
#include "rq.h"
#include "internal.h"

static inline uint32_t unpack_real(uint64_t h)
{
	return (uint32_t)h;
}

static inline uint32_t unpack_steal(uint64_t h)
{
	return (uint32_t)(h >> 32);
}

static inline uint64_t pack(uint32_t steal, uint32_t real)
{
	return ((uint64_t)steal << 32) | real;
}

void rq_init(struct rq *q)
{
	STORE(&q->head, 0, relaxed);
	STORE(&q->tail, 0, relaxed);
	q->steal_seen = 0;
	for (uint32_t i = 0; i < RQ_CAP; i++)
		STORE(&q->buf[i], NULL, relaxed);
}

/* Step 5: returns false if a thief got in the way (the caller retries). */
static bool push_overflow(struct rq *q, struct weft_task *t, uint32_t real,
			  uint32_t tail, rq_overflow_fn spill, void *ctx)
{
	const uint32_t n = RQ_CAP / 2;
	uint64_t expect = pack(real, real);

	if (tail - real != RQ_CAP)
		return false; /* someone popped/stole meanwhile: retry push */
	/* acquire pairs with nothing new (we are the only slot writer) but
	 * release keeps our earlier slot reads ordered before a thief's
	 * future claim of those slots. */
	if (!CAS(&q->head, &expect, pack(real + n, real + n), release,
		 relaxed))
		return false;
	/* The claimed slots are ours alone now; hand them over in chunks
	 * (a bounded stack buffer: this may run on a small task stack). */
	struct weft_task *chunk[64];
	uint32_t k = 0;

	for (uint32_t i = 0; i < n; i++) {
		chunk[k++] = LOAD(&q->buf[(real + i) & RQ_MASK], relaxed);
		if (k == 64 || i == n - 1) {
			if (i == n - 1 && k < 64) {
				chunk[k++] = t;
				t = NULL;
			}
			spill(ctx, chunk, k);
			k = 0;
		}
	}
	if (t)
		spill(ctx, &t, 1);
	return true;
}

void rq_push_local(struct rq *q, struct weft_task *t, rq_overflow_fn spill,
		   void *ctx)
{
	uint32_t tail = LOAD(&q->tail, relaxed); /* we wrote it */

	for (;;) {
		if (tail - q->steal_seen < RQ_CAP) {
			STORE(&q->buf[tail & RQ_MASK], t, relaxed);
			/* release: publishes the slot to thieves (step 1). */
			STORE(&q->tail, tail + 1, release);
			return;
		}
		/* acquire: pairs with the thief's release in step 4. */
		uint64_t head = LOAD(&q->head, acquire);
		uint32_t steal = unpack_steal(head), real = unpack_real(head);

		if (tail - steal < RQ_CAP) {
			q->steal_seen = steal;
			continue;
		}
		if (steal != real) {
			/* A thief is draining slots; it will make room, but
			 * do not wait for it: hand this one task over. */
			spill(ctx, &t, 1);
			return;
		}
		if (push_overflow(q, t, real, tail, spill, ctx)) {
			q->steal_seen = real + RQ_CAP / 2;
			return;
		}
	}
}

struct weft_task *rq_pop_local(struct rq *q)
{
	uint64_t head = LOAD(&q->head, acquire);

	for (;;) {
		uint32_t steal = unpack_steal(head), real = unpack_real(head);
		uint32_t tail = LOAD(&q->tail, relaxed);

		if (real == tail)
			return NULL;
		uint64_t next = steal == real ? pack(real + 1, real + 1)
					      : pack(steal, real + 1);
		/* acq_rel on success: release orders our earlier reads of
		 * this slot index (in a previous lap) before a future claim;
		 * failure reloads head (acquire) to retry against a thief. */
		if (CAS(&q->head, &head, next, acq_rel, acquire)) {
			if (steal == real)
				q->steal_seen = real + 1;
			return LOAD(&q->buf[real & RQ_MASK], relaxed);
		}
	}
}

struct weft_task *rq_steal_into(struct rq *src, struct rq *dst)
{
	/* dst is ours: check room for half of src's capacity. */
	uint32_t dst_tail = LOAD(&dst->tail, relaxed);
	uint32_t dst_steal = unpack_steal(LOAD(&dst->head, acquire));

	if (dst_tail - dst_steal > RQ_CAP / 2)
		return NULL;

	uint64_t prev = LOAD(&src->head, acquire);
	uint32_t n, first;

	for (;;) {
		uint32_t steal = unpack_steal(prev), real = unpack_real(prev);
		/* acquire: pairs with the owner's release of tail (step 1);
		 * the slots below tail are then visible to us. */
		uint32_t tail = LOAD(&src->tail, acquire);

		if (steal != real)
			return NULL; /* another thief is active (I4) */
		n = tail - real;
		n -= n / 2;
		if (n == 0)
			return NULL;
		if (n > RQ_CAP / 2)
			n = RQ_CAP / 2;
		/* Step 3: claim [real, real + n). */
		if (CAS(&src->head, &prev, pack(steal, real + n), acq_rel,
			acquire)) {
			first = real;
			prev = pack(steal, real + n);
			break;
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		struct weft_task *t = LOAD(&src->buf[(first + i) & RQ_MASK], relaxed);

		STORE(&dst->buf[(dst_tail + i) & RQ_MASK], t, relaxed);
	}
	/* Step 4: end the claim. The owner may have popped meanwhile, so
	 * retry with the head it left; steal catches up with real. */
	for (;;) {
		uint32_t real = unpack_real(prev);

		/* release: our slot reads above happen before the owner
		 * sees steal move and reuses the slots (pairs with the
		 * acquire head load in push). */
		if (CAS(&src->head, &prev, pack(real, real), acq_rel, acquire))
			break;
	}
	/* Run the last one now; publish the others. */
	n--;
	struct weft_task *ret = LOAD(&dst->buf[(dst_tail + n) & RQ_MASK], relaxed);

	if (n > 0)
		/* release: publishes the copied slots (step 1). */
		STORE(&dst->tail, dst_tail + n, release);
	return ret;
}

uint32_t rq_len(struct rq *q)
{
	uint64_t head = LOAD(&q->head, acquire);
	uint32_t tail = LOAD(&q->tail, acquire);

	return tail - unpack_real(head);
}
