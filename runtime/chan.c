/* SPDX-License-Identifier: MIT */
/*
 * Channels and select.
 *
 * A channel is a ring buffer of elements (none for capacity 0), a FIFO of
 * waiting receivers and one of waiting senders, and `closed`, all under one
 * spinlock `lock`. Every operation takes the lock once (twice if it waits),
 * does its work and drops it; it never holds two channel locks at once, so
 * there is no lock order to get wrong.
 *
 * Invariants (under the lock, ignoring stale select waiters, see below):
 *  I1. receivers wait only while the buffer is empty and no sender waits;
 *  I2. senders wait only while the buffer is full (capacity 0: always full)
 *      and no receiver waits;
 *  I3. once closed, nobody waits and nobody new enqueues: close grants every
 *      waiter with ST_CLOSED, send sees `closed` and returns -EPIPE, recv
 *      drains the buffer and then returns -EPIPE.
 *
 * Waiting follows waitq.h's four steps. A waiting sender keeps a pointer to
 * its element in waiter->data, a waiting receiver a pointer to its buffer.
 * Whoever completes a waiter's operation copies the element itself, under
 * the lock, before it grants (step 3): a send that finds a receiver waiting
 * copies straight into the receiver's buffer; a recv that frees a slot of
 * a full channel moves the first waiting sender's element into the buffer;
 * on capacity 0 a recv copies straight from the sender's element. The grant
 * status says what happened: ST_OK or ST_CLOSED. Because the copy and the
 * grant happen together under the lock, and a woken waiter looks at its
 * status under the same lock (step 4: granted wins over a cancellation or a
 * timeout that raced with it), an element is never lost nor delivered twice:
 * a cancelled receiver either was granted (it has the element: returns 0)
 * or was not (nothing was copied: it removes itself and the element stays
 * in the channel or with its sender).
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
 *      among the ready ones), each under its channel's lock alone. The
 *      select is in no queue yet, so nobody else can claim it.
 *  S2. Enqueue pass: the task begins its park (waiter_prepare on ws[0],
 *      its seq copied to the others), then for each case, under that
 *      channel's lock, checks the case again and, if still not ready,
 *      pushes the case's waiter. If the case became ready it claims itself
 *      (CAS OPEN -> i) and performs the case; if that CAS fails, another
 *      party already claimed it: it stops enqueueing and goes to S4.
 *  S3. A granter (any operation that would complete a waiter, including
 *      close) that finds a select waiter, under the channel's lock, first
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
 *      (each channel locked in turn; granters that met W_GONE may have
 *      removed some already, hence the membership test) and returns the
 *      sleep's error. Otherwise case k = winner fired; the task locks each
 *      channel it enqueued on in turn, which includes c_k (so it waits for
 *      the claimant to finish its copy and grant), reads ws[k].status and
 *      removes its other waiters.
 *
 * Memory orders. Everything in a channel, and a waiter's status, data and
 * links, is under the channel's lock (acquire on lock, release on unlock).
 * A claimant writes `winner` holding the lock of the claimed case's channel;
 * its CAS or store is a release and every read of `winner` an acquire, so a
 * task that reads winner == k and then locks c_k finds the claimant's whole
 * critical section (copy, status, wake) behind it. The wake itself is
 * ordered by sched.c (acq_rel CAS on the task's wstate) or by the futex
 * word (release store / acquire load in waitq.c).
 *
 * Errors outside the public contract: weft_select returns -ENOMEM when a
 * send case on an unbounded channel cannot grow it (no case took effect),
 * or when n > 16 and its waiter array cannot be allocated.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
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

struct weft_chan {
	spinlock lock;
	bool closed;			/* under lock */
	size_t esz;			/* constant: element size */
	size_t cap;			/* constant: capacity (SIZE_MAX: none) */
	size_t size;			/* under lock: slots allocated */
	size_t head;			/* under lock: oldest element's slot */
	size_t count;			/* under lock: elements buffered */
	unsigned char *buf;		/* under lock: size * esz bytes */
	struct waitq recvq, sendq;	/* under lock */
};

/* A select's shared state; on the selecting task's stack. */
struct sel {
	_Atomic int winner;		/* see the top of the file */
	struct weft__waiter *ws;	/* one waiter per case */
};

static inline struct sel *wsel(const struct weft__waiter *w)
{
	return (struct sel *)(uintptr_t)w->arg;
}

static inline void elem_copy(void *d, const void *s, size_t n)
{
	if (n == 8)
		memcpy(d, s, 8); /* one load and one store */
	else
		memcpy(d, s, n);
}

static inline unsigned char *slot(struct weft_chan *c, size_t i)
{
	size_t k = c->head + i;

	if (k >= c->size)
		k -= c->size;
	return c->buf + k * c->esz;
}

static inline bool queued(const struct waitq *q, const struct weft__waiter *w)
{
	return w->prev != NULL || q->head == w;
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
static int claim_partner(struct weft__waiter *w, struct sel *me, int mi)
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

/* Step 3 for waiter w (lock held): status, then wake. A select is woken
 * through its first waiter, the one it sleeps on. */
static inline void grant(struct weft__waiter *w, int st)
{
	struct sel *s = wsel(w);

	w->status = st;
	waiter_grant(s ? &s->ws[0] : w, st);
}

/* --- the operations under the lock ------------------------------------- */

/* Makes room for one more element of an unbounded channel. */
static int grow(struct weft_chan *c)
{
	size_t n = c->size ? c->size * 2 : 16;
	unsigned char *nb;

	if (n < c->size || n > SIZE_MAX / c->esz)
		return -ENOMEM;
	nb = weft__fail_point(WEFT_FAIL_MALLOC) ? NULL : malloc(n * c->esz);
	if (!nb)
		return -ENOMEM;
	if (c->count) {
		size_t first = c->size - c->head;

		if (first > c->count)
			first = c->count;
		memcpy(nb, c->buf + c->head * c->esz, first * c->esz);
		memcpy(nb + first * c->esz, c->buf,
		       (c->count - first) * c->esz);
	}
	free(c->buf);
	c->buf = nb;
	c->size = n;
	c->head = 0;
	return 0;
}

/*
 * Tries to send *elem (lock held). me/mi: the select and case doing it once
 * its waiters may be queued (S2), else NULL. Returns R_DONE, R_CLOSED,
 * R_NOTREADY, R_LOST (me was claimed by someone else) or -ENOMEM.
 */
static inline int send_locked(struct weft_chan *c, const void *elem,
			      struct sel *me, int mi)
{
	struct weft__waiter *w, *next;
	int r;

	if (weft_unlikely(c->closed))
		return self_claim(me, mi) ? R_CLOSED : R_LOST;
	/* Direct hand-off to a waiting receiver (I1: the buffer is empty). */
	for (w = c->recvq.head; weft_unlikely(w != NULL); w = next) {
		next = w->next;
		r = claim_partner(w, me, mi);
		if (r == R_LOST)
			return R_LOST;
		if (r == R_NOTREADY) {
			if (wsel(w) != me)
				waitq_remove(&c->recvq, w); /* stale */
			continue;
		}
		waitq_remove(&c->recvq, w);
		elem_copy(w->data, elem, c->esz);
		grant(w, ST_OK);
		return R_DONE;
	}
	if (c->count >= c->cap)
		return R_NOTREADY;
	if (weft_unlikely(c->count == c->size) && (r = grow(c)) < 0)
		return r;
	if (!self_claim(me, mi))
		return R_LOST;
	elem_copy(slot(c, c->count), elem, c->esz);
	c->count++;
	return R_DONE;
}

/* After a recv took the oldest element of a full buffer: moves the first
 * waiting sender's element in and grants that sender. The caller already
 * won whatever it had to claim, so partners are claimed alone. */
static inline void refill(struct weft_chan *c)
{
	struct weft__waiter *w;

	while ((w = waitq_pop(&c->sendq)) != NULL) {
		if (wsel(w) && !claim1(wsel(w), (int)(w - wsel(w)->ws)))
			continue; /* stale: dropped */
		elem_copy(slot(c, c->count), w->data, c->esz);
		c->count++;
		grant(w, ST_OK);
		return;
	}
}

/* Tries to receive into *elem (lock held); as send_locked. */
static inline int recv_locked(struct weft_chan *c, void *elem, struct sel *me,
			      int mi)
{
	struct weft__waiter *w, *next;
	int r;

	if (weft_likely(c->count > 0)) {
		if (!self_claim(me, mi))
			return R_LOST;
		elem_copy(elem, c->buf + c->head * c->esz, c->esz);
		if (++c->head == c->size)
			c->head = 0;
		c->count--;
		if (weft_unlikely(!waitq_empty(&c->sendq)))
			refill(c);
		return R_DONE;
	}
	/* Empty: take straight from a waiting sender (capacity 0; on a
	 * buffered channel only stale waiters can be here, I2). */
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
		elem_copy(elem, w->data, c->esz);
		grant(w, ST_OK);
		return R_DONE;
	}
	if (c->closed)
		return self_claim(me, mi) ? R_CLOSED : R_LOST;
	return R_NOTREADY;
}

/* --- send, recv --------------------------------------------------------- */

static inline bool elem_size_ok(size_t n)
{
	return n >= 1 && n <= ELEM_MAX;
}

int weft_chan_new(weft_chan **out, size_t elem_size, size_t capacity)
{
	struct weft_chan *c;

	if (!out || !elem_size_ok(elem_size))
		return -EINVAL;
	if (capacity != WEFT_CHAN_UNBOUNDED && capacity > SIZE_MAX / elem_size)
		return -ENOMEM;
	c = weft__fail_point(WEFT_FAIL_MALLOC) ? NULL : calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	atomic_init(&c->lock.held, false);
	c->esz = elem_size;
	c->cap = capacity == WEFT_CHAN_UNBOUNDED ? SIZE_MAX : capacity;
	if (capacity > 0 && capacity != WEFT_CHAN_UNBOUNDED) {
		c->buf = weft__fail_point(WEFT_FAIL_MALLOC)
				 ? NULL
				 : malloc(capacity * elem_size);
		if (!c->buf) {
			free(c);
			return -ENOMEM;
		}
		c->size = capacity;
	}
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

/* Steps 2 and 4 for a plain send or recv whose waiter w is queued on q
 * (lock held on entry, dropped on return). */
static int wait_granted(struct weft_chan *c, struct waitq *q,
			struct weft__waiter *w)
{
	int rc;

	spin_unlock(&c->lock);
	rc = waiter_sleep(w);
	spin_lock(&c->lock);
	if (w->status)
		rc = w->status == ST_OK ? 0 : -EPIPE; /* granted wins */
	else
		waitq_remove(q, w);
	spin_unlock(&c->lock);
	return rc;
}

static int chan_send(struct weft_chan *c, const void *elem, bool wait)
{
	struct weft_task *t = NULL;
	struct weft__waiter wt;
	int r;

	if (weft_unlikely(!c || !elem))
		return -EINVAL;
	if (wait && (r = weft__check_interrupt(t = weft__current())))
		return r;
	spin_lock(&c->lock);
	r = send_locked(c, elem, NULL, 0);
	if (weft_likely(r != R_NOTREADY)) {
		spin_unlock(&c->lock);
		if (r < 0)
			return r;
		if (r == R_CLOSED)
			return -EPIPE;
		weft__coop_ready();
		return 0;
	}
	if (!wait) {
		spin_unlock(&c->lock);
		return -EAGAIN;
	}
	waiter_prepare(&wt);
	wt.data = (void *)(uintptr_t)elem;
	wt.arg = 0;
	waitq_push(&c->sendq, &wt);
	return wait_granted(c, &c->sendq, &wt);
}

static int chan_recv(struct weft_chan *c, void *elem, bool wait)
{
	struct weft_task *t = NULL;
	struct weft__waiter wt;
	int r;

	if (weft_unlikely(!c || !elem))
		return -EINVAL;
	if (wait && (r = weft__check_interrupt(t = weft__current())))
		return r;
	spin_lock(&c->lock);
	r = recv_locked(c, elem, NULL, 0);
	if (weft_likely(r != R_NOTREADY)) {
		spin_unlock(&c->lock);
		if (r == R_CLOSED)
			return -EPIPE;
		weft__coop_ready();
		return 0;
	}
	if (!wait) {
		spin_unlock(&c->lock);
		return -EAGAIN;
	}
	waiter_prepare(&wt);
	wt.data = elem;
	wt.arg = 0;
	waitq_push(&c->recvq, &wt);
	return wait_granted(c, &c->recvq, &wt);
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

/* Grants every waiter of q with ST_CLOSED (lock held). */
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
	if (!c)
		return -EINVAL;
	spin_lock(&c->lock);
	if (c->closed) {
		spin_unlock(&c->lock);
		return -EPIPE;
	}
	c->closed = true;
	/* I1: waiting receivers mean an empty buffer, so they are drained. */
	close_queue(&c->recvq);
	close_queue(&c->sendq);
	spin_unlock(&c->lock);
	return 0;
}

ssize_t weft_chan_len(weft_chan *c)
{
	size_t n;

	if (!c)
		return -EINVAL;
	spin_lock(&c->lock);
	n = c->count;
	spin_unlock(&c->lock);
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

/* One attempt at case i under its channel's lock (taken and dropped here).
 * Sets err when it fired. */
static int try_case(weft_select_case *cs, int i, struct sel *me)
{
	struct weft_chan *c = cs->chan;
	int r;

	spin_lock(&c->lock);
	if (cs->op == WEFT_SELECT_SEND)
		r = send_locked(c, cs->elem, me, i);
	else
		r = recv_locked(c, cs->elem, me, i);
	spin_unlock(&c->lock);
	if (r == R_DONE)
		cs->err = 0;
	else if (r == R_CLOSED)
		cs->err = -EPIPE;
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
		r = try_case(&cases[k], k, NULL);
		if (r < 0)
			return r;
		if (r == R_DONE || r == R_CLOSED)
			return k;
	}
	return -EAGAIN;
}

static struct waitq *case_queue(const weft_select_case *cs)
{
	return cs->op == WEFT_SELECT_SEND ? &cs->chan->sendq
					  : &cs->chan->recvq;
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
		weft_select_case *cs = &cases[i];
		struct weft_chan *c = cs->chan;

		spin_lock(&c->lock);
		if (cs->op == WEFT_SELECT_SEND)
			r = send_locked(c, cs->elem, &s, i);
		else
			r = recv_locked(c, cs->elem, &s, i);
		if (r == R_NOTREADY)
			waitq_push(case_queue(cs), &ws[i]);
		spin_unlock(&c->lock);
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
		struct waitq *q = case_queue(&cases[i]);

		spin_lock(&c->lock);
		if (i == k && !queued(q, &ws[i]))
			cases[i].err = ws[i].status == ST_OK ? 0 : -EPIPE;
		else if (queued(q, &ws[i]))
			waitq_remove(q, &ws[i]);
		spin_unlock(&c->lock);
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
