/* SPDX-License-Identifier: MIT */
/*
 * Channels and select.
 *
 * A channel is a buffer of elements, a FIFO of waiting receivers (recvq)
 * and one of waiting senders (sendq), and `closed`. Capacity 0 (no buffer)
 * and unbounded channels (a growable array) keep all of it under one
 * spinlock, `slock`: every operation takes it once (twice if it waits),
 * does its work and drops it. Bounded buffered channels split that lock in
 * two (see "Buffered channels" below): sends take `slock`, receives
 * `rlock`, each on a cache line of its own, so that a producer and a
 * consumer on two cores do not pass one line back and forth for every
 * message. No operation ever holds the locks of two channels, so there is
 * no lock order between channels to get wrong; within a buffered channel
 * the order is rlock, then slock.
 *
 * Invariants (under the locks, ignoring stale select waiters, see below):
 *  I1. receivers wait only while the buffer is empty and no sender waits;
 *  I2. senders wait only while the buffer is full (capacity 0: always full)
 *      and no receiver waits;
 *  I3. once closed, nobody waits and nobody new enqueues: close grants every
 *      waiter with ST_CLOSED, send sees `closed` and returns -EPIPE, recv
 *      drains the buffer and then returns -EPIPE.
 *
 * Waiting follows waitq.h's four steps, under the lock of the queue the
 * waiter is on, "its queue's lock": slock for both queues of a locked
 * channel; for a buffered channel slock for recvq and rlock for sendq (the
 * lock of the side that serves the waiter). A waiting sender keeps a
 * pointer to its element in waiter->data, a waiting receiver a pointer to
 * its buffer. Whoever completes a waiter's operation copies the element
 * itself, under that lock, before it grants (step 3): a send that finds a
 * receiver waiting copies straight into the receiver's buffer; a recv that
 * frees a slot of a full channel moves the first waiting sender's element
 * into the buffer; on capacity 0 a recv copies straight from the sender's
 * element. The grant status says what happened: ST_OK or ST_CLOSED.
 * Because the copy and the grant happen together under the lock, and a
 * woken waiter looks at its status under the same lock (step 4: granted
 * wins over a cancellation or a timeout that raced with it), an element is
 * never lost nor delivered twice: a cancelled receiver either was granted
 * (it has the element: returns 0) or was not (nothing was copied: it
 * removes itself and the element stays in the channel or with its sender).
 *
 * Buffered channels (1 <= capacity < WEFT_CHAN_UNBOUNDED). The elements are
 * in `ring` (chan_ring.h): slots with Vyukov-style stamps, so that each end
 * needs only its own position and the slot (the slots follow the channel
 * in its allocation). The send side owns slock, tail and recvq, on one
 * cache line; the receive side rlock, rhead (the head position) and sendq,
 * on another. `closed` is written holding both locks and read under
 * either.
 *
 *  B1. send, under slock: closed: -EPIPE. A receiver waits (so the ring is
 *      empty, I1): copy into its buffer and grant it (the direct hand-off).
 *      Else, if the slot at tail is free, push there and advance tail.
 *      Else the ring looks full: B3.
 *  B2. recv: a look at the slot at head without a lock; if it seems to hold
 *      an element, under rlock: pop it and advance head, and if a sender
 *      waits (so the ring was full, I2), take slock too and move that
 *      sender's element into the slot just freed (at tail) and grant it,
 *      before either lock is released, so that no send can slip into that
 *      slot ahead of the waiting sender. Else: B4.
 *  B3. A send that found its slot taken takes rlock, which fixes head, and
 *      reads tail (relaxed, written under slock): if tail == head + one
 *      lap, the ring is full. That is exact: a stale tail can only be
 *      behind, and tail is never more than a lap ahead of head. Then the
 *      sender queues on sendq and sleeps, still under rlock, and every pop
 *      after it takes rlock too, sees it and serves it (B2). If the ring
 *      is not full (a pop got there first), it tries again from B1.
 *  B4. A recv that found no element takes slock, which fixes tail (and no
 *      push is halfway through), and reads head: equal means empty (a
 *      stale head can only be behind, and head never passes tail). Then
 *      it returns -EPIPE if closed, else queues on recvq and sleeps, still
 *      under slock; every push after it takes slock, sees it and hands
 *      over (B1). If not empty it tries again from B2.
 *  B5. So no wake-up is lost, and the locks are the whole argument: a
 *      waiter decides to wait and queues itself within one critical
 *      section of the lock that every operation able to serve it takes.
 *      Nothing needs a fence or a seq_cst order.
 *  B6. FIFO, exactly as for the locked channels: elements enter the ring
 *      only while no receiver waits (B1), and a slot frees up only while no
 *      sender waits or is refilled at once (B2), so a newcomer never
 *      overtakes a waiter.
 *  B7. close takes rlock then slock, sets `closed` and grants every waiter
 *      ST_CLOSED (receivers wait only on an empty ring, I1: they are
 *      drained). After it no push succeeds, so "empty and closed" (B4)
 *      stays true.
 *  B8. When nobody waits, a send touches the slock line and a slot, a recv
 *      the rlock line and a slot; neither touches the other's line, except
 *      that a sender reads rhead once every THROTTLE_EVERY sends (B9). Each
 *      costs one atomic exchange (its lock) on a line that stays in its
 *      own core's cache, as the single lock did, so one core runs nearly
 *      as fast as before while two no longer pass a line back and forth
 *      per message. (Vyukov's own ring, a CAS on tail and on head, moves
 *      the same lines, but measured 20-35% slower on one core: a
 *      dependent load-load-CAS chain per operation; and its wake-up
 *      handshake needs a seq_cst Dekker pair on each side, one more
 *      exchange per wait. Prefetching slots ahead measured slower too.)
 *  B9. Backpressure: a task whose send leaves a large ring at least half
 *      full yields a few times if anything else is runnable on its worker
 *      (see send_throttle: the receivers are behind, and the sender would
 *      only take their CPU). A yield is no wait: it changes no state and
 *      queues the sender nowhere, so B1-B8 hold as they are.
 *
 * Select. A select has one waiter per case, all with the task's one wait
 * sequence number (sched.c: only the first wake of a wait takes effect), and
 * one `struct sel` on its stack: waiter->arg points to it (0 for a plain
 * send or recv), and the case index is the waiter's position in sel->ws.
 * sel->winner decides which case takes effect:
 *
 *     W_OPEN (-1)  nothing decided yet
 *     W_BUSY (-2)  a double claim holds it for a moment (below)
 *     W_GONE (-3)  the select gave up (cancelled or timed out)
 *     k >= 0       case k won; final
 *
 *  S1. First pass (weft_select_try, and weft_select before it waits): the
 *      cases are tried in a uniformly random order (a lazy Fisher-Yates
 *      shuffle: the first ready case of a random permutation is uniform
 *      among the ready ones), each as a try_send / try_recv would. The
 *      select is in no queue yet, so nobody else can claim it.
 *  S2. Enqueue pass: the task begins its park (waiter_prepare on ws[0],
 *      its seq copied to the others), then for each case checks the case
 *      again, as its send or recv would (B1-B4 on a buffered channel), and
 *      if it must wait, pushes the case's waiter within the same critical
 *      section that found it not ready. If the case became ready it claims
 *      itself (CAS OPEN -> i) and performs the case, still under the lock
 *      that showed it ready, so it cannot fail; if that CAS fails, another
 *      party already claimed it: it stops enqueueing and goes to S4.
 *  S3. A granter (any operation that would complete a waiter, including
 *      close) that finds a select waiter, under its queue's lock, first
 *      claims the select: CAS(winner, OPEN, k). If it fails the waiter is
 *      stale: the granter removes it and serves the next waiter. Only the
 *      claimant copies and grants; it sets ws[k].status and wakes through
 *      ws[0] (one futex word for a plain thread; for a task any waiter with
 *      the seq would do).
 *      A select in S2 that meets another select's waiter as its partner
 *      must claim both. It takes them in address order, OPEN -> BUSY each,
 *      then stores both final values; if the second is final already it
 *      restores the first to OPEN. A BUSY holder spins only on a higher
 *      address and never waits for a lock, and everybody else who meets
 *      BUSY spins until it is OPEN or final, so there is no deadlock; BUSY
 *      is never seen as stale, so no waiter is dropped while it is held.
 *  S4. After its sleep the task tries CAS(winner, OPEN, W_GONE). If that
 *      succeeds no case fired and none can any more: it removes its waiters
 *      (each queue's lock taken in turn; granters that met W_GONE may have
 *      removed some already, hence the membership test) and returns the
 *      sleep's error. Otherwise case k = winner fired; the task takes each
 *      of its waiters' queue locks in turn, which includes case k's (so it
 *      waits for the claimant to finish its copy and grant), reads
 *      ws[k].status and removes its other waiters.
 *
 * Memory orders. Everything in a channel, and a waiter's status, data and
 * links, is under the locks named above (acquire on lock, release on
 * unlock), except: the buffered ring's slots, which chan_ring.h's stamps
 * order between the two sides; the positions tail and rhead, written under
 * their lock and read without it only as the bounds of B3 and B4 (relaxed),
 * as hints (relaxed), and by weft_chan_len (release stores, made before
 * the stamp store that lets the other side go on, and acquire loads); and
 * fill_seen (send_throttle), a hint under slock.
 * A claimant writes `winner` holding the lock of the claimed waiter's
 * queue; its CAS or store is a release and every read of `winner` an
 * acquire, so a task that reads winner == k and then takes case k's queue
 * lock finds the claimant's whole critical section (copy, status, wake)
 * behind it. The wake itself is ordered by sched.c (acq_rel CAS on the
 * task's wstate) or by the futex word (release store / acquire load in
 * waitq.c).
 *
 * Errors outside the public contract: weft_select returns -ENOMEM when a
 * send case on an unbounded channel cannot grow it (no case took effect),
 * or when n > 16 and its waiter array cannot be allocated.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "chan_ring.h"
#include "waitq.h"

#define ELEM_MAX 65536

/* Grant statuses (nonzero: waitq.h step 3). */
enum { ST_OK = 1, ST_CLOSED = 2 };

/* sel->winner values besides a case index. */
#define W_OPEN (-1)
#define W_BUSY (-2)
#define W_GONE (-3)

/* Outcome of one attempt at an operation under the lock. */
enum { R_DONE = 0, R_CLOSED = 1, R_NOTREADY = 2, R_LOST = 3 };

/*
 * Laid out by who touches what: the first lines are constant; a buffered
 * channel's senders write the slock line and its receivers the rlock line
 * (see the top of the file), and its slots follow the struct; a locked
 * channel uses the slock line for everything.
 */
struct weft_chan {
	/* --- constant: one cache line, read by every operation --- */
	/* Buffered: the slots. Every channel: ring.esz, the element size,
	 * and ring.cap, the capacity (SIZE_MAX: none). */
	struct ring ring;
	bool buffered;			/* 1 <= cap < SIZE_MAX: uses ring */

	/* --- send side (locked channels: all of the channel) --- */
	spinlock slock cacheline_aligned;
	/* Written holding every lock the channel has, read under any. */
	atomic_bool closed;
	/* Buffered: the next push's position. Written under slock; read
	 * without it by B3, weft_chan_len and as a hint (Memory orders). */
	_Atomic size_t tail;
	struct waitq recvq;		/* under slock */
	/* Buffered: the ring's fill when a sender last read rhead, at a
	 * position that is a multiple of THROTTLE_EVERY (rg_fillish). */
	size_t fill_seen;		/* under slock */
	/* Locked channels only, under slock. */
	size_t size;			/* slots allocated */
	size_t head;			/* oldest element's slot */
	size_t count;			/* elements buffered */
	unsigned char *buf;		/* size * esz bytes */

	/* --- receive side (buffered channels) --- */
	spinlock rlock cacheline_aligned;
	/* Buffered: the next pop's position. Written under rlock; read
	 * without it by B4, weft_chan_len and as a hint (Memory orders). */
	_Atomic size_t rhead;
	/* Under rlock (buffered) or slock (locked channels). */
	struct waitq sendq;
};

_Static_assert(offsetof(struct weft_chan, buffered) < CACHELINE,
	       "a channel's constant fields span two cache lines");

/* A select's shared state; on the selecting task's stack. */
struct sel {
	_Atomic int winner;		/* see the top of the file */
	struct weft__waiter *ws;	/* one waiter per case */
};

static inline struct sel *wsel(const struct weft__waiter *w)
{
	return (struct sel *)(uintptr_t)w->arg;
}

static inline unsigned char *slot(struct weft_chan *c, size_t i)
{
	size_t k = c->head + i;

	if (k >= c->size)
		k -= c->size;
	return c->buf + k * c->ring.esz;
}

static inline bool queued(const struct waitq *q, const struct weft__waiter *w)
{
	return w->prev != NULL || q->head == w;
}

static inline bool is_closed(struct weft_chan *c)
{
	/* relaxed: called under a lock that every writer holds. */
	return LOAD(&c->closed, relaxed);
}

/* The lock of the queue that op's waiters use (see the top of the file). */
static inline spinlock *queue_lock(struct weft_chan *c, int op)
{
	return op == WEFT_SELECT_SEND && c->buffered ? &c->rlock : &c->slock;
}

static inline struct waitq *op_queue(struct weft_chan *c, int op)
{
	return op == WEFT_SELECT_SEND ? &c->sendq : &c->recvq;
}

/* --- claims (S3) -------------------------------------------------------- */

/* winner: OPEN -> v, spinning while another claim holds it BUSY. False if
 * it was already decided. acq_rel: the release side is described at the top
 * of the file (Memory orders); acquire, also on failure, reads a final
 * value with everything its claimant wrote. */
static bool sel_take(struct sel *s, int v)
{
	unsigned i = 0;

	for (;;) {
		int e = W_OPEN;

		if (CAS(&s->winner, &e, v, acq_rel, acquire))
			return true;
		if (e != W_BUSY)
			return false;
		spin_wait_step(&i);
	}
}

/* Claims s for case k. */
static inline bool claim1(struct sel *s, int k)
{
	return sel_take(s, k);
}

/* OPEN -> BUSY, for a double claim. */
static inline bool sel_hold(struct sel *s)
{
	return sel_take(s, W_BUSY);
}

/* Claims both the caller's select `me` (for case mi) and a partner `x`
 * (for case xi), x != me: R_DONE, R_LOST (me was decided: the caller was
 * claimed by someone else) or R_NOTREADY (x was decided: stale). */
static int claim2(struct sel *me, int mi, struct sel *x, int xi)
{
	bool me_first = (uintptr_t)me < (uintptr_t)x;
	struct sel *a = me_first ? me : x, *b = me_first ? x : me;

	if (!sel_hold(a))
		return a == me ? R_LOST : R_NOTREADY;
	if (!sel_hold(b)) {
		/* release: undoes our BUSY; nothing else was written. */
		STORE(&a->winner, W_OPEN, release);
		return b == me ? R_LOST : R_NOTREADY;
	}
	/* release: see the top of the file (Memory orders). */
	STORE(&x->winner, xi, release);
	STORE(&me->winner, mi, release);
	return R_DONE;
}

/* Before the caller (a select in S2, or NULL) performs case mi on its own,
 * without a partner: claims itself. */
static inline bool self_claim(struct sel *me, int mi)
{
	return !me || claim1(me, mi);
}

/* Claims waiter w (queued on a channel whose lock is held) as a partner of
 * the caller: R_DONE, R_NOTREADY (w is stale, or the caller's own) or
 * R_LOST (the caller's select was decided by someone else). */
static inline int claim_partner(struct weft__waiter *w, struct sel *me,
				int mi)
{
	struct sel *x = wsel(w);

	if (!x)
		return self_claim(me, mi) ? R_DONE : R_LOST;
	if (x == me)
		return R_NOTREADY; /* never match a select with itself */
	if (!me)
		return claim1(x, (int)(w - x->ws)) ? R_DONE : R_NOTREADY;
	return claim2(me, mi, x, (int)(w - x->ws));
}

/* Step 3 for waiter w (its queue's lock held): status, then wake. A select
 * is woken through its first waiter, the one it sleeps on. */
static inline void grant(struct weft__waiter *w, int st)
{
	struct sel *s = wsel(w);

	w->status = st;
	waiter_grant(s ? &s->ws[0] : w, st);
}

/* Direct hand-off from a sender to the first receiver of recvq that can be
 * claimed (the send-side lock held): R_DONE, R_NOTREADY (nobody left but
 * stale waiters and the caller's own) or R_LOST. */
static inline int hand_to_receiver(struct weft_chan *c, const void *elem,
				   struct sel *me, int mi)
{
	struct weft__waiter *w, *next;

	for (w = c->recvq.head; w; w = next) {
		int r = claim_partner(w, me, mi);

		next = w->next;
		if (r == R_LOST)
			return R_LOST;
		if (r == R_NOTREADY) {
			if (wsel(w) != me)
				waitq_remove(&c->recvq, w); /* stale */
			continue;
		}
		waitq_remove(&c->recvq, w);
		ring_elem_copy(w->data, elem, c->ring.esz);
		grant(w, ST_OK);
		return R_DONE;
	}
	return R_NOTREADY;
}

/* --- locked channels: capacity 0 and unbounded (slock held) ------------ */

/* Makes room for one more element of an unbounded channel. */
static int grow(struct weft_chan *c)
{
	size_t n = c->size ? c->size * 2 : 16;
	unsigned char *nb;

	if (n < c->size || n > SIZE_MAX / c->ring.esz)
		return -ENOMEM;
	nb = weft__fail_point(WEFT_FAIL_MALLOC) ? NULL
						 : malloc(n * c->ring.esz);
	if (!nb)
		return -ENOMEM;
	if (c->count) {
		size_t first = c->size - c->head;

		if (first > c->count)
			first = c->count;
		memcpy(nb, c->buf + c->head * c->ring.esz,
		       first * c->ring.esz);
		memcpy(nb + first * c->ring.esz, c->buf,
		       (c->count - first) * c->ring.esz);
	}
	free(c->buf);
	c->buf = nb;
	c->size = n;
	c->head = 0;
	return 0;
}

/*
 * Tries to send *elem (slock held). me/mi: the select and case doing it once
 * its waiters may be queued (S2), else NULL. Returns R_DONE, R_CLOSED,
 * R_NOTREADY, R_LOST (me was claimed by someone else) or -ENOMEM.
 */
static int lk_send(struct weft_chan *c, const void *elem, struct sel *me,
		   int mi)
{
	int r;

	if (weft_unlikely(is_closed(c)))
		return self_claim(me, mi) ? R_CLOSED : R_LOST;
	/* Direct hand-off to a waiting receiver (I1: the buffer is empty). */
	if (weft_unlikely(c->recvq.head != NULL) &&
	    (r = hand_to_receiver(c, elem, me, mi)) != R_NOTREADY)
		return r;
	if (c->count >= c->ring.cap)
		return R_NOTREADY;
	if (weft_unlikely(c->count == c->size) && (r = grow(c)) < 0)
		return r;
	if (!self_claim(me, mi))
		return R_LOST;
	ring_elem_copy(slot(c, c->count), elem, c->ring.esz);
	c->count++;
	return R_DONE;
}

/* Tries to receive into *elem (slock held); as lk_send. */
static int lk_recv(struct weft_chan *c, void *elem, struct sel *me, int mi)
{
	struct weft__waiter *w, *next;
	int r;

	if (c->count > 0) {
		if (!self_claim(me, mi))
			return R_LOST;
		ring_elem_copy(elem, c->buf + c->head * c->ring.esz,
			       c->ring.esz);
		if (++c->head == c->size)
			c->head = 0;
		c->count--;
		return R_DONE; /* unbounded: nobody waits to send (I2) */
	}
	/* Empty: take straight from a waiting sender (capacity 0; on an
	 * unbounded channel only stale waiters can be here, I2). */
	for (w = c->sendq.head; w; w = next) {
		next = w->next;
		r = claim_partner(w, me, mi);
		if (r == R_LOST)
			return R_LOST;
		if (r == R_NOTREADY) {
			if (wsel(w) != me)
				waitq_remove(&c->sendq, w); /* stale */
			continue;
		}
		waitq_remove(&c->sendq, w);
		ring_elem_copy(elem, w->data, c->ring.esz);
		grant(w, ST_OK);
		return R_DONE;
	}
	if (is_closed(c))
		return self_claim(me, mi) ? R_CLOSED : R_LOST;
	return R_NOTREADY;
}

/* --- buffered channels (B-steps at the top of the file) ---------------- */

/* The push at t, whose slot is free (slock held). The release store of
 * tail comes before the element's publication: see weft_chan_len. (B3
 * explains the readers that do not hold slock.) */
static inline void rg_push(struct weft_chan *c, size_t t, const void *elem)
{
	STORE(&c->tail, ring_next(&c->ring, t), release);
	ring_put(&c->ring, t, elem);
}

/* The pop at h, whose element is ready (rlock held). The release store of
 * rhead comes before the slot is freed: see weft_chan_len. (B4 explains
 * the readers that do not hold rlock.) */
static inline void rg_pop(struct weft_chan *c, size_t h, void *elem)
{
	STORE(&c->rhead, ring_next(&c->ring, h), release);
	ring_take(&c->ring, h, elem);
}

/*
 * B1, slock held: R_DONE (*pos: the position taken, or SIZE_MAX for a
 * hand-off), R_CLOSED, R_NOTREADY (the slot at tail is not free: B3) or
 * R_LOST.
 */
static inline int rg_send(struct weft_chan *c, const void *elem,
			  struct sel *me, int mi, size_t *pos)
{
	size_t t;
	int r;

	if (weft_unlikely(is_closed(c)))
		return self_claim(me, mi) ? R_CLOSED : R_LOST;
	*pos = SIZE_MAX;
	if (weft_unlikely(c->recvq.head != NULL) &&
	    (r = hand_to_receiver(c, elem, me, mi)) != R_NOTREADY)
		return r;
	t = LOAD(&c->tail, relaxed); /* ours: written under slock */
	if (!ring_free(&c->ring, t))
		return R_NOTREADY;
	if (!self_claim(me, mi))
		return R_LOST;
	rg_push(c, t, elem);
	*pos = t;
	return R_DONE;
}

/* B2's refill (rlock and slock held, the pop at h not yet done): pops into
 * *elem, then moves the first waiting sender that can be claimed into the
 * slot just freed. The caller already won whatever it had to claim, so
 * partners are claimed alone. */
static void rg_take_refill(struct weft_chan *c, size_t h, void *elem)
{
	struct weft__waiter *w;
	size_t t = LOAD(&c->tail, relaxed);

	rg_pop(c, h, elem);
	while ((w = waitq_pop(&c->sendq)) != NULL) {
		if (wsel(w) && !claim1(wsel(w), (int)(w - wsel(w)->ws)))
			continue; /* stale: dropped */
		/* The ring was full (I2), so tail is the slot just freed. */
		rg_push(c, t, w->data);
		grant(w, ST_OK);
		return;
	}
}

/* B2, rlock held: R_DONE, R_NOTREADY (no element at head: B4) or R_LOST. */
static inline int rg_recv(struct weft_chan *c, void *elem, struct sel *me,
			  int mi)
{
	size_t h = LOAD(&c->rhead, relaxed); /* ours: written under rlock */

	if (!ring_ready(&c->ring, h))
		return R_NOTREADY;
	if (!self_claim(me, mi))
		return R_LOST;
	if (weft_unlikely(c->sendq.head != NULL)) {
		spin_lock(&c->slock); /* order: rlock, then slock */
		rg_take_refill(c, h, elem);
		spin_unlock(&c->slock);
		return R_DONE;
	}
	rg_pop(c, h, elem);
	return R_DONE;
}

/*
 * B3 (rlock held, after B1 found the slot at tail taken): true if the ring
 * is full now. head is fixed by rlock; tail, written under slock, may be
 * read stale, but only behind, and it is never more than a lap ahead of
 * head, so "a lap ahead" is exact.
 */
static inline bool rg_full(struct weft_chan *c)
{
	return ring_full(&c->ring, LOAD(&c->tail, relaxed),
			 LOAD(&c->rhead, relaxed));
}

/* B4 (slock held): true if the ring is empty now; as rg_full, the other
 * way round. */
static inline bool rg_empty(struct weft_chan *c)
{
	return LOAD(&c->tail, relaxed) == LOAD(&c->rhead, relaxed);
}

/* A look without the lock (B2): might the slot at head hold an element? */
static inline bool rg_maybe_ready(struct weft_chan *c)
{
	/* relaxed: a hint; rg_recv checks again under rlock. */
	return ring_maybe_ready(&c->ring, LOAD(&c->rhead, relaxed));
}

/*
 * Backpressure (B9; buffered channels of THROTTLE_MIN slots or more). While
 * the ring is at least half full its receivers are behind, and a sender
 * that keeps running gains nothing: it fills the rest, then waits and must
 * be woken one element at a time (B2's refill), and meanwhile it takes the
 * CPU from whatever else could run on its worker, often the receiver; on
 * two workers it also fights the senders of the other worker for slock.
 * So a task whose send leaves the ring at least half full then yields, up
 * to THROTTLE_YIELDS times, while anything else is runnable on its worker.
 * (Measured on the channel benchmark, 4 senders and 1 receiver on 2
 * workers: without it the receiver shares its worker with senders and gets
 * a fraction of it; with one yield per send, about 30 M msg/s; with four,
 * over 40. It only ever delays a sender whose channel is half full.)
 *
 * How full the ring is, a sender reads from rhead only once every
 * THROTTLE_EVERY positions (into fill_seen, under slock), and in between
 * adds the sends since: reading rhead, or a slot half a ring ahead, on
 * every send would pull the receiver's own cache lines across to the
 * senders' core for every message (measured: refreshing every 4 or 8
 * positions halves the benchmark). The estimate ignores the receives
 * since, so it errs on the full side, usually for at most THROTTLE_EVERY
 * sends (longer when a refill takes the position where it would read).
 */
#define THROTTLE_MIN 64
#define THROTTLE_EVERY 32
#define THROTTLE_YIELDS 4

/* After the push at t (slock held): true if the ring now looks at least
 * half full. */
static inline bool rg_fillish(struct weft_chan *c, size_t t)
{
	size_t k;

	if (c->ring.cap < THROTTLE_MIN)
		return false;
	/* t's index mod THROTTLE_EVERY (lap_unit is a multiple of it):
	 * indices count up by one between multiples, and restart at 0, a
	 * multiple, on a new lap. */
	k = t % THROTTLE_EVERY;
	if (k == 0) {
		/* relaxed: a hint; rhead, never past tail, may even have
		 * passed t already. */
		c->fill_seen = ring_dist(&c->ring, LOAD(&c->rhead, relaxed),
					 ring_next(&c->ring, t));
	}
	return c->fill_seen + k >= c->ring.cap / 2;
}

static __attribute__((noinline)) void send_throttle(void)
{
	for (int i = 0; i < THROTTLE_YIELDS; i++) {
		struct worker *w = weft__worker();

		if (!w || !w->current ||
		    !(LOAD(&w->lifo, relaxed) || rq_len(&w->rq)))
			return;
		weft__yield_now(w->current);
	}
}

/* B1 for a plain send in the common cases: room and nobody waiting, or a
 * plain receiver waiting. True if done (*fillish: rg_fillish). Otherwise
 * it returns false with slock STILL HELD, for rg_send_slow. */
static inline bool rg_send_fast(struct weft_chan *c, const void *elem,
				bool *fillish)
{
	struct weft__waiter *w;
	size_t t;

	spin_lock(&c->slock);
	if (weft_unlikely(is_closed(c)))
		return false;
	w = c->recvq.head;
	if (weft_likely(w == NULL)) {
		t = LOAD(&c->tail, relaxed); /* ours: written under slock */
		if (weft_unlikely(!ring_free(&c->ring, t)))
			return false;
		rg_push(c, t, elem);
		*fillish = rg_fillish(c, t);
	} else if (wsel(w) == NULL) {
		/* The direct hand-off of hand_to_receiver, for a plain
		 * receiver (a select must be claimed first). */
		waitq_remove(&c->recvq, w);
		ring_elem_copy(w->data, elem, c->ring.esz);
		grant(w, ST_OK);
		*fillish = false;
	} else {
		return false;
	}
	spin_unlock(&c->slock);
	return true;
}

/* B2 for a plain recv: true if it popped. The common case (an element,
 * no sender waiting) kept small. */
static inline bool rg_recv_fast(struct weft_chan *c, void *elem)
{
	size_t h;
	bool done;

	if (!rg_maybe_ready(c))
		return false;
	spin_lock(&c->rlock);
	h = LOAD(&c->rhead, relaxed); /* ours: written under rlock */
	if (weft_likely(c->sendq.head == NULL && ring_ready(&c->ring, h))) {
		rg_pop(c, h, elem);
		spin_unlock(&c->rlock);
		return true;
	}
	/* A sender waits, or the slot is not ready yet. */
	done = rg_recv(c, elem, NULL, 0) == R_DONE;
	spin_unlock(&c->rlock);
	return done;
}

/*
 * S2 for a send case on a buffered channel: B1, and B3 with the select's
 * waiter w for this case. R_DONE, R_CLOSED, R_LOST, or R_NOTREADY with w
 * queued on sendq and rlock still HELD; otherwise no lock is held.
 */
static int rg_send_case(struct weft_chan *c, const void *elem, struct sel *me,
			int mi, struct weft__waiter *w)
{
	size_t pos;
	int r;

	for (;;) {
		spin_lock(&c->slock);
		r = rg_send(c, elem, me, mi, &pos);
		spin_unlock(&c->slock);
		if (r != R_NOTREADY)
			return r;
		spin_lock(&c->rlock);
		if (is_closed(c)) {
			spin_unlock(&c->rlock);
			return self_claim(me, mi) ? R_CLOSED : R_LOST;
		}
		if (rg_full(c)) {
			waitq_push(&c->sendq, w);
			return R_NOTREADY; /* rlock held */
		}
		spin_unlock(&c->rlock);
	}
}

/* S2 for a recv case on a buffered channel: B2 and B4; as rg_send_case,
 * with recvq and slock. */
static int rg_recv_case(struct weft_chan *c, void *elem, struct sel *me,
			int mi, struct weft__waiter *w)
{
	int r;

	for (;;) {
		if (rg_maybe_ready(c)) {
			spin_lock(&c->rlock);
			r = rg_recv(c, elem, me, mi);
			spin_unlock(&c->rlock);
			if (r != R_NOTREADY)
				return r;
		}
		spin_lock(&c->slock);
		if (rg_empty(c)) {
			if (is_closed(c)) {
				spin_unlock(&c->slock);
				return self_claim(me, mi) ? R_CLOSED : R_LOST;
			}
			waitq_push(&c->recvq, w);
			return R_NOTREADY; /* slock held */
		}
		spin_unlock(&c->slock);
	}
}

/* --- new, free ---------------------------------------------------------- */

static inline bool elem_size_ok(size_t n)
{
	return n >= 1 && n <= ELEM_MAX;
}

int weft_chan_new(weft_chan **out, size_t elem_size, size_t capacity)
{
	bool buffered = capacity > 0 && capacity != WEFT_CHAN_UNBOUNDED;
	size_t rbytes = 0, bytes = sizeof(struct weft_chan);
	struct weft_chan *c;

	if (!out || !elem_size_ok(elem_size))
		return -EINVAL;
	if (buffered) {
		/* The slots follow the channel, in the same allocation. */
		rbytes = ring_bytes(elem_size, capacity);
		if (!rbytes || rbytes > SIZE_MAX - bytes - CACHELINE)
			return -ENOMEM;
		bytes = (bytes + rbytes + CACHELINE - 1) &
			~(size_t)(CACHELINE - 1);
	}
	c = weft__fail_point(WEFT_FAIL_MALLOC)
		    ? NULL
		    : aligned_alloc(CACHELINE, bytes);
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	if (buffered)
		ring_init(&c->ring, c + 1, elem_size, capacity);
	atomic_init(&c->slock.held, false);
	atomic_init(&c->rlock.held, false);
	atomic_init(&c->closed, false);
	atomic_init(&c->tail, 0);
	atomic_init(&c->rhead, 0);
	/* Locked channels use only these two of the ring's fields. */
	c->ring.esz = elem_size;
	c->ring.cap = capacity == WEFT_CHAN_UNBOUNDED ? SIZE_MAX : capacity;
	c->buffered = buffered;
	*out = c;
	return 0;
}

void weft_chan_free(weft_chan *c)
{
	if (!c)
		return;
	free(c->buf);
	free(c);
}

/* --- send, recv --------------------------------------------------------- */

/* Steps 1 to 4 for a plain send or recv that must wait: queues a waiter
 * for elem on q, under l (held on entry, dropped on return). Returns 1
 * (granted: done after waiting), -EPIPE, -ECANCELED or -ETIMEDOUT. */
static inline int wait_on(spinlock *l, struct waitq *q, const void *elem)
{
	struct weft__waiter wt;
	int r;

	waiter_prepare(&wt);
	wt.data = (void *)(uintptr_t)elem;
	wt.arg = 0;
	waitq_push(q, &wt);
	spin_unlock(l);
	r = waiter_wait(l, q, &wt);
	spin_unlock(l);
	if (r == 0) /* granted: done, or the channel closed on us */
		r = wt.status == ST_OK ? 1 : -EPIPE;
	return r;
}

/*
 * The rest of a plain send or try_send on a buffered channel, after
 * rg_send_fast found no room or someone waiting; slock held on entry.
 * Returns 0 (done at once), 1 (done after waiting), -EPIPE, -EAGAIN,
 * -ECANCELED or -ETIMEDOUT.
 */
static __attribute__((noinline)) int rg_send_slow(struct weft_chan *c,
						  const void *elem, bool wait)
{
	bool fillish;
	size_t pos;
	int r;

	for (;;) {
		r = rg_send(c, elem, NULL, 0, &pos); /* B1 */
		fillish = r == R_DONE && pos != SIZE_MAX && rg_fillish(c, pos);
		spin_unlock(&c->slock);
		if (r == R_DONE) {
			if (wait && fillish)
				send_throttle();
			return 0;
		}
		if (r == R_CLOSED)
			return -EPIPE;
		if (!wait)
			return -EAGAIN;
		spin_lock(&c->rlock); /* B3 */
		if (is_closed(c)) {
			spin_unlock(&c->rlock);
			return -EPIPE;
		}
		if (rg_full(c))
			return wait_on(&c->rlock, &c->sendq, elem);
		spin_unlock(&c->rlock);
		spin_lock(&c->slock);
	}
}

/*
 * The rest of a plain recv or try_recv on a buffered channel, after
 * rg_recv_fast found no element; no lock held. As rg_send_slow. Inline:
 * a recv that waits for a ping-pong's reply comes here every time.
 */
static inline int rg_recv_slow(struct weft_chan *c, void *elem, bool wait)
{
	int r;

	for (;;) {
		spin_lock(&c->slock); /* B4 */
		if (rg_empty(c)) {
			if (is_closed(c)) {
				spin_unlock(&c->slock);
				return -EPIPE;
			}
			if (!wait) {
				spin_unlock(&c->slock);
				return -EAGAIN;
			}
			return wait_on(&c->slock, &c->recvq, elem);
		}
		spin_unlock(&c->slock);
		if (rg_maybe_ready(c)) { /* B2 */
			spin_lock(&c->rlock);
			r = rg_recv(c, elem, NULL, 0);
			spin_unlock(&c->rlock);
			if (r == R_DONE)
				return 0;
		}
	}
}

/* A send or try_send on a locked channel, without the interruption check
 * and the budget; as rg_send_slow, and -ENOMEM. */
static __attribute__((noinline)) int lk_send_op(struct weft_chan *c,
						const void *elem, bool wait)
{
	int r;

	spin_lock(&c->slock);
	r = lk_send(c, elem, NULL, 0);
	if (weft_likely(r != R_NOTREADY)) {
		spin_unlock(&c->slock);
		if (r < 0)
			return r;
		return r == R_CLOSED ? -EPIPE : 0;
	}
	if (!wait) {
		spin_unlock(&c->slock);
		return -EAGAIN;
	}
	return wait_on(&c->slock, &c->sendq, elem);
}

static __attribute__((noinline)) int lk_recv_op(struct weft_chan *c,
						void *elem, bool wait)
{
	int r;

	spin_lock(&c->slock);
	r = lk_recv(c, elem, NULL, 0);
	if (weft_likely(r != R_NOTREADY)) {
		spin_unlock(&c->slock);
		return r == R_CLOSED ? -EPIPE : 0;
	}
	if (!wait) {
		spin_unlock(&c->slock);
		return -EAGAIN;
	}
	return wait_on(&c->slock, &c->recvq, elem);
}

/* Any send or try_send, without the interruption check and the budget. */
static inline int send_op(struct weft_chan *c, const void *elem, bool wait)
{
	bool fillish;

	if (!c->buffered)
		return lk_send_op(c, elem, wait);
	if (!rg_send_fast(c, elem, &fillish))
		return rg_send_slow(c, elem, wait); /* slock held */
	if (wait && fillish)
		send_throttle();
	return 0;
}

static inline int recv_op(struct weft_chan *c, void *elem, bool wait)
{
	if (!c->buffered)
		return lk_recv_op(c, elem, wait);
	if (!rg_recv_fast(c, elem))
		return rg_recv_slow(c, elem, wait);
	return 0;
}

/* A send or a receive (constant `send`: each caller gets its own copy of
 * the fast path). */
static inline __attribute__((always_inline)) int
chan_op(struct weft_chan *c, void *elem, bool wait, bool send)
{
	int r;

	if (weft_unlikely(!c || !elem))
		return -EINVAL;
	if (wait && (r = weft__check_interrupt(weft__current())))
		return r;
	r = send ? send_op(c, elem, wait) : recv_op(c, elem, wait);
	if (r == 0)
		weft__coop_ready(); /* completed without suspending */
	return r > 0 ? 0 : r;
}

static inline int chan_send(struct weft_chan *c, const void *elem, bool wait)
{
	return chan_op(c, (void *)(uintptr_t)elem, wait, true);
}

static inline int chan_recv(struct weft_chan *c, void *elem, bool wait)
{
	return chan_op(c, elem, wait, false);
}

int weft_chan_send(weft_chan *c, const void *elem)
{
	return chan_send(c, elem, true);
}

int weft_chan_recv(weft_chan *c, void *elem)
{
	return chan_recv(c, elem, true);
}

int weft_chan_try_send(weft_chan *c, const void *elem)
{
	return chan_send(c, elem, false);
}

int weft_chan_try_recv(weft_chan *c, void *elem)
{
	return chan_recv(c, elem, false);
}

/* Grants every waiter of q with ST_CLOSED (q's lock held). */
static void close_queue(struct waitq *q)
{
	struct weft__waiter *w;

	while ((w = waitq_pop(q)) != NULL) {
		if (wsel(w) && !claim1(wsel(w), (int)(w - wsel(w)->ws)))
			continue; /* stale: dropped */
		grant(w, ST_CLOSED);
	}
}

int weft_chan_close(weft_chan *c)
{
	int r = 0;

	if (!c)
		return -EINVAL;
	if (c->buffered)
		spin_lock(&c->rlock); /* B7; order: rlock, then slock */
	spin_lock(&c->slock);
	if (is_closed(c)) {
		r = -EPIPE;
	} else {
		/* relaxed: every lock is held, and read under one. */
		STORE(&c->closed, true, relaxed);
		/* I1: waiting receivers mean an empty buffer, so they are
		 * drained. */
		close_queue(&c->recvq);
		close_queue(&c->sendq);
	}
	spin_unlock(&c->slock);
	if (c->buffered)
		spin_unlock(&c->rlock);
	return r;
}

ssize_t weft_chan_len(weft_chan *c)
{
	size_t n;

	if (!c)
		return -EINVAL;
	if (c->buffered) {
		/*
		 * Without a lock: head, tail, head again. acquire, paired
		 * with the release stores of head and tail (each made
		 * before the stamp store that lets the other side go on):
		 * the tail we read is at least the head we read first, as
		 * that element's push stored tail before publishing it; and
		 * if head did not move meanwhile, tail is at most a lap
		 * ahead of it, as a push into a slot freed after our first
		 * read would have made us see that pop's head.
		 */
		for (;;) {
			size_t h = LOAD(&c->rhead, acquire);
			size_t t = LOAD(&c->tail, acquire);

			if (LOAD(&c->rhead, acquire) == h)
				return (ssize_t)ring_dist(&c->ring, h, t);
		}
	}
	spin_lock(&c->slock);
	n = c->count;
	spin_unlock(&c->slock);
	return (ssize_t)n;
}

/* --- select ------------------------------------------------------------- */

/* Cases up to this many keep their waiters and order on the stack. */
#define SEL_STACK 16

/* A per-thread xorshift32; used only between suspensions (see sched.c on
 * TLS and migration: this function is never inlined into a caller that
 * suspends, and it re-reads the TLS each call). */
static __thread uint32_t sel_rng;

static __attribute__((noinline)) uint32_t rnd(void)
{
	uint32_t x = sel_rng;

	if (weft_unlikely(x == 0))
		x = (uint32_t)(weft_now() ^ (uintptr_t)&x) | 1u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	sel_rng = x;
	return x;
}

static int check_cases(const weft_select_case *cases, size_t n)
{
	if (!cases || n == 0 || n > INT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!cases[i].chan || !cases[i].elem ||
		    (cases[i].op != WEFT_SELECT_SEND &&
		     cases[i].op != WEFT_SELECT_RECV))
			return -EINVAL;
	}
	return 0;
}

/* One attempt at case cs (S1: the select is in no queue yet, so it claims
 * nothing): R_DONE, R_CLOSED (err set) or R_NOTREADY, or -ENOMEM. */
static int try_case(weft_select_case *cs)
{
	int r;

	if (cs->op == WEFT_SELECT_SEND)
		r = send_op(cs->chan, cs->elem, false);
	else
		r = recv_op(cs->chan, cs->elem, false);
	if (r == -EAGAIN)
		return R_NOTREADY;
	if (r == -ENOMEM)
		return r;
	cs->err = r;
	return r == 0 ? R_DONE : R_CLOSED;
}

/*
 * S2 for case i (its waiter w): tries it again with the select claiming
 * itself, and if it is not ready queues w, in the critical section that
 * found it not ready. Returns R_DONE, R_CLOSED, R_NOTREADY (w queued),
 * R_LOST or -ENOMEM; no lock held on return.
 */
static int enqueue_case(weft_select_case *cs, int i, struct sel *me,
			struct weft__waiter *w)
{
	struct weft_chan *c = cs->chan;
	int r;

	if (c->buffered) {
		if (cs->op == WEFT_SELECT_SEND) {
			r = rg_send_case(c, cs->elem, me, i, w);
			if (r == R_NOTREADY)
				spin_unlock(&c->rlock);
		} else {
			r = rg_recv_case(c, cs->elem, me, i, w);
			if (r == R_NOTREADY)
				spin_unlock(&c->slock);
		}
		return r;
	}
	spin_lock(&c->slock);
	if (cs->op == WEFT_SELECT_SEND)
		r = lk_send(c, cs->elem, me, i);
	else
		r = lk_recv(c, cs->elem, me, i);
	if (r == R_NOTREADY)
		waitq_push(op_queue(c, cs->op), w);
	spin_unlock(&c->slock);
	return r;
}

/* S1: tries the cases in a random order (lazy Fisher-Yates over ord[],
 * which it leaves holding the order it used). Returns the index of the
 * case that fired, -EAGAIN or -ENOMEM. */
static int first_pass(weft_select_case *cases, size_t n, int *ord)
{
	for (size_t i = 0; i < n; i++)
		ord[i] = (int)i;
	for (size_t i = 0; i < n; i++) {
		size_t j = i + rnd() % (n - i);
		int k = ord[j], r;

		ord[j] = ord[i];
		ord[i] = k;
		r = try_case(&cases[k]);
		if (r < 0)
			return r;
		if (r == R_DONE || r == R_CLOSED)
			return k;
	}
	return -EAGAIN;
}

int weft_select_try(weft_select_case *cases, size_t n)
{
	int ord_stack[SEL_STACK], *ord = ord_stack, r;

	if ((r = check_cases(cases, n)) < 0)
		return r;
	if (n > SEL_STACK && !(ord = malloc(n * sizeof(*ord))))
		return -ENOMEM;
	r = first_pass(cases, n, ord);
	if (ord != ord_stack)
		free(ord);
	if (r >= 0)
		weft__coop_ready();
	return r;
}

/* S2 to S4, after a first pass found nothing ready. */
static int select_wait(weft_select_case *cases, size_t n, int *ord,
		       struct weft__waiter *ws)
{
	struct sel s = { .ws = ws };
	size_t pushed = 0;
	int r = 0, k = -1, rc = 0, e;

	STORE(&s.winner, W_OPEN, relaxed); /* not shared yet */
	/* S2. The park begins before the first waiter is visible. */
	waiter_prepare(&ws[0]);
	for (size_t i = 0; i < n; i++) {
		ws[i].next = ws[i].prev = NULL;
		ws[i].task = ws[0].task;
		ws[i].seq = ws[0].seq;
		ws[i].status = 0;
		ws[i].data = cases[i].elem;
		ws[i].arg = (uint64_t)(uintptr_t)&s;
	}
	for (; pushed < n; pushed++) {
		int i = ord[pushed];

		r = enqueue_case(&cases[i], i, &s, &ws[i]);
		if (r != R_NOTREADY)
			break;
	}
	if (r == R_DONE || r == R_CLOSED) {
		/* We fired case ord[pushed] ourselves: end the park we began
		 * (it is still PARKING, so nothing is queued). */
		k = ord[pushed];
		cases[k].err = r == R_DONE ? 0 : -EPIPE;
		if (ws[0].task)
			weft__wake(ws[0].task, ws[0].seq, WAKE_OK, false);
	} else if (r < 0) {
		/* -ENOMEM growing a channel: give up as if cancelled. */
		rc = r;
		if (ws[0].task)
			weft__wake(ws[0].task, ws[0].seq, WAKE_NONE, false);
	} else {
		rc = waiter_sleep(&ws[0]);
	}
	/* S4. */
	if (k < 0) {
		unsigned spins = 0;

		for (;;) {
			e = W_OPEN;
			/* acquire on failure: pairs with the claimant's
			 * release (top of the file). */
			if (CAS(&s.winner, &e, W_GONE, acq_rel, acquire))
				break;
			if (e != W_BUSY)
				break;
			spin_wait_step(&spins);
		}
		if (e >= 0)
			k = e;
	}
	for (size_t p = 0; p < pushed; p++) {
		int i = ord[p];
		struct weft_chan *c = cases[i].chan;
		struct waitq *q = op_queue(c, cases[i].op);
		spinlock *l = queue_lock(c, cases[i].op);

		spin_lock(l);
		if (i == k && !queued(q, &ws[i]))
			cases[i].err = ws[i].status == ST_OK ? 0 : -EPIPE;
		else if (queued(q, &ws[i]))
			waitq_remove(q, &ws[i]);
		spin_unlock(l);
	}
	return k >= 0 ? k : (rc ? rc : -ECANCELED);
}

int weft_select(weft_select_case *cases, size_t n)
{
	struct weft__waiter ws_stack[SEL_STACK], *ws = ws_stack;
	int ord_stack[SEL_STACK], *ord = ord_stack, r;
	struct weft_task *t;

	if ((r = check_cases(cases, n)) < 0)
		return r;
	if ((r = weft__check_interrupt(t = weft__current())))
		return r;
	if (n > SEL_STACK) {
		ws = malloc(n * (sizeof(*ws) + sizeof(*ord)));
		if (!ws)
			return -ENOMEM;
		ord = (int *)(ws + n);
	}
	r = first_pass(cases, n, ord);
	if (r >= 0)
		weft__coop_ready();
	else if (r == -EAGAIN)
		r = select_wait(cases, n, ord, ws);
	if (ws != ws_stack)
		free(ws);
	return r;
}
