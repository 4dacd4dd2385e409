/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend: one ring per worker.
 *
 * Setup. The ring is created by weft_rt_new (so an error reaches the
 * caller) with the fastest flags the kernel takes: SINGLE_ISSUER and
 * DEFER_TASKRUN (completions are processed only when the owner asks, in
 * its own system calls: no interrupts of a busy worker, no cross-core
 * task_work), COOP_TASKRUN and TASKRUN_FLAG (the kernel marks pending
 * work in the SQ flags instead of signalling), SUBMIT_ALL. It is created
 * disabled (R_DISABLED) and enabled by the worker's thread, which the
 * kernel then records as the single issuer. Kernels that reject a flag
 * get the next smaller set. NODROP (5.5+) keeps completions that do not
 * fit in the CQ on a kernel list; io_uring_get_events() flushes them.
 *
 * Submission is batched: a task prepares its SQE and suspends; the worker
 * submits everything queued in one io_uring_enter when it polls (its local
 * queue ran dry, or every INJECT_INTERVAL ticks) or parks.
 *
 * Completion and cancellation protocol for an operation `op` (on the task
 * t's stack) submitted to worker A's ring:
 *  1. t (on A) prepares the SQE with user_data = op, begins a park with
 *     sequence s1, sets op->seq = s1 and suspends.
 *  2. A reaps the CQE: op->res, op->done = true, then weft__wake(t, op->seq).
 *     If the wake wins, t resumes with the result; A does not touch op
 *     again (t may have returned by then).
 *  3. If t was woken first by a cancellation or its deadline (the wait s1
 *     ended), the kernel may still write into t's buffer. t holds (no
 *     cancellation, no deadline) and begins a second park s2, then:
 *     - on A's thread itself: sets op->seq = s2; if op->done it wakes
 *       itself, else it submits IORING_OP_ASYNC_CANCEL for op;
 *     - on another worker: it cannot use A's ring (single issuer), so it
 *       stores s2 in op->req_seq and pushes op onto A's request stack
 *       (release CAS), then wakes A. A takes the stack (acquire exchange)
 *       and does the same on t's behalf: op->seq = req_seq; wake t if
 *       op->done, else submit the cancel. A task woken there is on A's
 *       queue, like one that A's reap woke, and counts as woken too: A
 *       must not go on to wait in its ring with it queued.
 *     Either way, the completion of step 2 (which always comes, with
 *     -ECANCELED or the operation's own result) wakes t's wait s2.
 *  4. t returns the operation's result if it took effect (>= 0: bytes that
 *     were moved are never reported lost), else -ECANCELED / -ETIMEDOUT.
 *  Why t stays alive for A: until step 3's wake, t waits; A's wake of step
 *  2 with a stale seq (s1) is harmless because t cannot end before A has
 *  processed its request, which A does after that reap (one thread).
 *  op->seq, op->res and op->done are written only on A's thread once the
 *  SQE is queued (t writes op->seq in step 3 only while running on A).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include "driver.h"

#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif

/* Flag sets to try, best first. */
static const unsigned setup_flags[] = {
	IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
		IORING_SETUP_SUBMIT_ALL | IORING_SETUP_R_DISABLED,
	IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
		IORING_SETUP_SUBMIT_ALL,
	0,
};

#ifdef WEFT_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#endif

/*
 * liburing maps the rings with its own system calls, which TSan does not
 * see: when a runtime's rings are unmapped and the next runtime's land at
 * the same addresses, TSan pairs the old owner's accesses with the new
 * one's. Teardown releases the mappings before it unmaps them and setup
 * acquires them, which orders the two owners.
 */
static void tsan_ring_handoff(struct io_uring *r, bool setup)
{
#ifdef WEFT_TSAN
	void *p[] = { r->sq.ring_ptr, r->cq.ring_ptr, r->sq.sqes };

	for (size_t i = 0; i < sizeof(p) / sizeof(*p); i++) {
		if (setup)
			__tsan_acquire(p[i]);
		else
			__tsan_release(p[i]);
	}
#else
	(void)r;
	(void)setup;
#endif
}

int uring_setup(struct io_driver *d, unsigned entries)
{
	int rc = -EINVAL;

	if (weft__fail_point(WEFT_FAIL_URING))
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(setup_flags) / sizeof(*setup_flags); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = setup_flags[i] | IORING_SETUP_CQSIZE;
		/* Room for every task's operation in the common case; NODROP
		 * covers the rest. */
		p.cq_entries = entries * 4;
		rc = io_uring_queue_init_params(entries, &d->ring, &p);
		if (rc == 0) {
			if (!(p.features & IORING_FEAT_NODROP)) {
				/* Pre-5.5: a full CQ would drop completions,
				 * and with them tasks. */
				io_uring_queue_exit(&d->ring);
				return -ENOSYS;
			}
			d->ring_ok = true;
			tsan_ring_handoff(&d->ring, true);
			return 0;
		}
		if (rc != -EINVAL)
			return rc; /* ENOSYS, EPERM, ENOMEM: no io_uring */
	}
	return rc;
}

void uring_teardown(struct io_driver *d)
{
	if (d->ring_ok) {
		tsan_ring_handoff(&d->ring, false);
		io_uring_queue_exit(&d->ring);
	}
	d->ring_ok = false;
}

/* Keeps a read of the wake eventfd in flight (see driver.h). Returns false
 * if the SQ has no room right now (the caller must not block then). */
static bool arm_wake(struct io_driver *d)
{
	struct io_uring_sqe *sqe;

	if (d->wake_armed)
		return true;
	sqe = io_uring_get_sqe(&d->ring);
	if (!sqe)
		return false;
	io_uring_prep_read(sqe, d->efd, &d->efd_buf, sizeof(d->efd_buf), 0);
	io_uring_sqe_set_data64(sqe, UD_WAKE);
	d->wake_armed = true;
	return true;
}

void uring_thread_start(struct io_driver *d)
{
	/* liburing 2.3 declares io_uring_enable_rings() but does not export
	 * it: the register call itself. */
	if (d->ring.flags & IORING_SETUP_R_DISABLED)
		syscall(__NR_io_uring_register, d->ring.ring_fd,
			IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	/* Saves an fd lookup in every io_uring_enter; optional. */
	io_uring_register_ring_fd(&d->ring);
}

static void submit_cancel(struct io_driver *d, struct io_op *op)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&d->ring)))
		io_uring_submit(&d->ring);
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
	io_uring_sqe_set_data64(sqe, UD_IGNORE);
}

/* Step 3, on the owner's thread: op->seq is the task's second wait.
 * Returns whether it woke the task. */
static bool cancel_on_owner(struct io_driver *d, struct io_op *op)
{
	if (op->done)
		return weft__wake(op->task, op->seq, WAKE_OK, false);
	submit_cancel(d, op);
	return false;
}

/* Returns the tasks woken, like reap: they are on this worker's queue, and
 * (reaping) nobody was notified, so the worker must not wait in its ring
 * now. Missing this once left a task queued on a worker that went back to
 * sleep with nothing else in flight, for good: the stress_io stall. */
static int take_requests(struct io_driver *d)
{
	/* acquire: pairs with the release CAS of the pushing task; its
	 * req_seq is visible. */
	struct io_op *op = XCHG(&d->reqs, NULL, acquire);
	int woken = 0;

	while (op) {
		struct io_op *next = op->req_next;

		op->seq = op->req_seq;
		woken += cancel_on_owner(d, op);
		op = next;
	}
	return woken;
}

/* Step 2 for every CQE ready; returns the tasks woken. */
static int reap(struct io_driver *d)
{
	int woken = 0;

	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		io_uring_for_each_cqe(&d->ring, head, cqe) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);
			struct io_op *op;

			n++;
			if (ud == UD_IGNORE)
				continue;
			if (ud == UD_WAKE) {
				d->wake_armed = false;
				continue;
			}
			op = (struct io_op *)(uintptr_t)ud;
			op->res = cqe->res;
			op->done = true;
			d->inflight--;
			if (weft__wake(op->task, op->seq, WAKE_OK, false))
				woken++;
		}
		io_uring_cq_advance(&d->ring, n);
		if (!io_uring_cq_has_overflow(&d->ring))
			return woken;
		/* NODROP kept what did not fit: flush it into the CQ. */
		io_uring_get_events(&d->ring);
	}
}

int uring_poll(struct worker *w, uint64_t deadline, bool block)
{
	struct io_driver *d = w->io;
	int woken = take_requests(d), rc;

	if (woken)
		block = false;
	if (!arm_wake(d)) {
		io_uring_submit(&d->ring);
		if (!arm_wake(d))
			block = false; /* no wake queued: a wait could miss one */
	}
	if (!block) {
		/* Nothing to submit, nothing posted, and (TASKRUN_FLAG) no
		 * completion work pending: a system call would find nothing.
		 * Workers poll whenever their queue runs dry, and a server
		 * always has receives in flight, so this saves most of them. */
		if ((d->ring.flags & IORING_SETUP_TASKRUN_FLAG) &&
		    !io_uring_sq_ready(&d->ring) &&
		    !io_uring_cq_ready(&d->ring) &&
		    !(IO_URING_READ_ONCE(*d->ring.sq.kflags) &
		      (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
			return woken;
		/* Submits, and (DEFER_TASKRUN) runs the deferred completion
		 * work so that CQEs are posted. */
		rc = io_uring_submit_and_get_events(&d->ring);
	} else if (deadline == UINT64_MAX) {
		rc = io_uring_submit_and_wait(&d->ring, 1);
	} else {
		struct io_uring_cqe *cqe;
		uint64_t now = weft_now(), ns = deadline > now ? deadline - now : 0;
		struct __kernel_timespec ts = {
			.tv_sec = (long long)(ns / 1000000000u),
			.tv_nsec = (long long)(ns % 1000000000u),
		};

		rc = io_uring_submit_and_wait_timeout(&d->ring, &cqe, 1, &ts,
						      NULL);
	}
	/* -EBUSY / -EAGAIN: the kernel wants the CQ drained first; -ETIME,
	 * -EINTR: woken without a completion. The reap below handles all. */
	(void)rc;
	return woken + reap(d);
}

struct io_uring_sqe *uring_sqe(struct weft_task *t, struct worker **wp)
{
	for (;;) {
		struct worker *w = weft__worker();
		struct io_driver *d = w->io;
		struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);

		if (sqe) {
			*wp = w;
			return sqe;
		}
		/* SQ full: hand the batch to the kernel. If it refuses
		 * (CQ backlog), reap, and let other tasks run meanwhile. */
		if (io_uring_submit(&d->ring) <= 0) {
			reap(d);
			weft__yield_now(t);
		}
	}
}

int uring_run(struct weft_task *t, struct worker *w, struct io_uring_sqe *sqe)
{
	struct io_driver *d = w->io;
	struct io_op op = { .task = t, .owner = w };
	uint64_t saved;
	int rc;

	io_uring_sqe_set_data(sqe, &op);
	d->inflight++;
	/* Step 1. */
	op.seq = weft__park_begin(t);
	rc = weft__park_commit(t, UINT64_MAX);
	if (rc == 0)
		return op.res;

	/* Step 3: cancelled or timed out while the kernel holds op. */
	weft__hold_begin(t, &saved);
	uint64_t s2 = weft__park_begin(t);

	w = weft__worker();
	if (w == op.owner) {
		op.seq = s2;
		cancel_on_owner(d, &op);
	} else {
		struct io_op *head = LOAD(&d->reqs, relaxed);

		op.req_seq = s2;
		do {
			op.req_next = head;
			/* release: publishes req_seq (and the request) to the
			 * owner's acquire exchange. */
		} while (!CAS(&d->reqs, &head, &op, release, relaxed));
		weft__io_unpark(op.owner);
	}
	weft__park_commit(t, UINT64_MAX);
	weft__hold_end(t, saved);
	/* Step 4. */
	return op.res >= 0 ? op.res : rc;
}
