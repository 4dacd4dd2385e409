/* SPDX-License-Identifier: MIT */
/*
 * The epoll backend: one epoll instance per worker, for kernels or sandboxes
 * without io_uring. Operations are readiness based: io.c tries the
 * non-blocking system call and, on EAGAIN, waits here for the fd to become
 * ready, then tries again.
 *
 * Waiters are kept per fd, in a table indexed by fd (fd_desc, shared by the
 * workers; pages of FD_PAGE descriptors allocated on first use and freed
 * with the runtime). A waiting task
 *  1. under the fd's lock, registers a waiter in the queue of its direction
 *     (read or write) and arms the fd in ITS worker's epoll, one-shot, for
 *     every direction that has waiters (EPOLL_CTL_MOD, or ADD when this
 *     epoll does not know the fd yet);
 *  2. suspends (waitq protocol, waitq.h).
 * The worker whose epoll reports the fd takes the same lock, grants every
 * waiter of each direction that is ready (they retry their system call;
 * spurious wakes are harmless), re-arms for directions still waited on, and
 * drops the lock. A waiter that gives up removes itself under the lock, so
 * the waker never touches a waiter that has returned. An fd may be armed in
 * several epolls (its tasks moved between workers); whichever reports it
 * wakes the waiters, and the others' one-shot events find nobody or wake
 * someone early. epoll keys registrations by (file, fd): after a close and
 * reuse of the number, MOD fails with ENOENT and the fd is added afresh;
 * events of the old file can only cause spurious wakes. weft_close bumps
 * the generation carried in the event data, so old events are ignored.
 *
 * Each waiter is counted in the `nwait` of exactly one driver: the one
 * whose epoll armed the fd last for it (waiter->data). Arming moves every
 * waiter of the fd to the arming driver; a grant or a removal uncounts it,
 * all under the fd's lock. A worker polls its epoll between tasks while
 * its count is not 0 (driver.h io_busy); counting armings instead would
 * drift upward with every wait that was cancelled before its event.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include "driver.h"

#define FD_PAGE 1024u
#define FD_PAGES 1024u	/* fds below 1M */

/* rt->fdtab: FD_PAGES pointers to pages, installed with a release CAS and
 * read with acquire (the page's zeroed descriptors are initialised). */
static struct fd_desc *desc_of(struct weft_rt *rt, int fd, bool create)
{
	_Atomic(struct fd_desc *) *slot;
	struct fd_desc *page, *mine;
	unsigned u = (unsigned)fd;

	if (fd < 0 || u / FD_PAGE >= FD_PAGES)
		return NULL;
	slot = &rt->fdtab[u / FD_PAGE];
	page = LOAD(slot, acquire);
	if (!page && create) {
		mine = calloc(FD_PAGE, sizeof(*mine));
		if (!mine)
			return NULL;
		/* release: the zeroed page (unlocked spinlocks, empty
		 * queues) is visible to the acquire loads above. */
		if (CAS(slot, &page, mine, acq_rel, acquire))
			page = mine;
		else
			free(mine);
	}
	return page ? &page[u % FD_PAGE] : NULL;
}

void epoll_fdtab_free(struct weft_rt *rt)
{
	if (!rt->fdtab)
		return;
	for (unsigned i = 0; i < FD_PAGES; i++)
		free(LOAD(&rt->fdtab[i], relaxed));
	free(rt->fdtab);
	rt->fdtab = NULL;
}

int epoll_setup(struct io_driver *d)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UD_WAKE };

	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd < 0)
		return -weft__errno();
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->efd, &ev) < 0) {
		int e = -weft__errno();

		close(d->epfd);
		d->epfd = -1;
		return e;
	}
	return 0;
}

void epoll_teardown(struct io_driver *d)
{
	if (d->epfd >= 0)
		close(d->epfd);
	d->epfd = -1;
}

/* Arms fd one-shot in epfd for the directions with waiters (lock held). */
static int arm(struct io_driver *d, struct fd_desc *fdd, int fd)
{
	struct epoll_event ev = {
		.events = EPOLLONESHOT | EPOLLRDHUP,
		.data.u64 = (uint64_t)(unsigned)fd | (uint64_t)fdd->gen << 32 |
			    (uint64_t)1 << 63,
	};

	if (!waitq_empty(&fdd->wq[0]) || !waitq_empty(&fdd->wq[2]))
		ev.events |= EPOLLIN;
	if (!waitq_empty(&fdd->wq[1]) || !waitq_empty(&fdd->wq[2]))
		ev.events |= EPOLLOUT;
	if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	if (weft__errno() == ENOENT &&
	    epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	return -weft__errno();
}

/* Moves the count of every waiter of fdd to d, which just armed it (lock
 * held). */
static void count_waiters(struct fd_desc *fdd, struct io_driver *d)
{
	for (int dir = 0; dir < 3; dir++) {
		for (struct weft__waiter *wt = fdd->wq[dir].head; wt;
		     wt = wt->next) {
			struct io_driver *old = wt->data;

			if (old == d)
				continue;
			if (old)
				FSUB(&old->nwait, 1, relaxed);
			FADD(&d->nwait, 1, relaxed);
			wt->data = d;
		}
	}
}

/* A waiter leaves its queue (lock held). */
static void uncount_waiter(struct weft__waiter *wt)
{
	struct io_driver *d = wt->data;

	if (d)
		FSUB(&d->nwait, 1, relaxed);
	wt->data = NULL;
}

int epoll_ready(struct weft_task *t, int fd, uint32_t events)
{
	struct worker *w = weft__worker();
	struct fd_desc *fdd = desc_of(t->rt, fd, true);
	struct weft__waiter wt;
	int dir = !(events & EPOLLOUT) ? 0 : (events & EPOLLIN) ? 2 : 1;
	int rc;

	if (!fdd)
		return fd < 0 ? -EBADF : -ENOMEM;
	spin_lock(&fdd->lock);
	waiter_prepare(&wt);
	wt.data = NULL;
	waitq_push(&fdd->wq[dir], &wt);
	rc = arm(w->io, fdd, fd);
	if (rc < 0) {
		/* EBADF, or EPERM: a regular file, which epoll refuses
		 * (it is always "ready"); the caller decides. */
		waitq_remove(&fdd->wq[dir], &wt);
		spin_unlock(&fdd->lock);
		weft__wake(t, wt.seq, WAKE_OK, false); /* end the park */
		waiter_sleep(&wt);
		return rc;
	}
	count_waiters(fdd, w->io);
	spin_unlock(&fdd->lock);
	/* 0: ready (a grant wins over a cancel, waitq.h). Otherwise wt has
	 * left the queue, and leaves its driver's count too. */
	rc = waiter_wait(&fdd->lock, &fdd->wq[dir], &wt);
	if (rc)
		uncount_waiter(&wt);
	spin_unlock(&fdd->lock);
	return rc;
}

void epoll_forget(struct weft_rt *rt, int fd)
{
	struct fd_desc *fdd = desc_of(rt, fd, false);
	struct weft__waiter *wt;

	if (!fdd)
		return;
	spin_lock(&fdd->lock);
	fdd->gen++;
	for (int dir = 0; dir < 3; dir++) {
		while ((wt = waitq_pop(&fdd->wq[dir]))) {
			uncount_waiter(wt);
			waiter_grant(wt, 1);
		}
	}
	spin_unlock(&fdd->lock);
}

/* One event: wake the ready directions' waiters, re-arm the others. */
static int dispatch(struct worker *w, uint64_t data, uint32_t revents)
{
	int fd = (int)(uint32_t)data, woken = 0;
	uint32_t gen = (uint32_t)(data >> 32) & 0x7fffffffu;
	struct fd_desc *fdd = desc_of(w->rt, fd, false);
	struct weft__waiter *wt;
	bool again = false;

	if (!fdd)
		return 0;
	spin_lock(&fdd->lock);
	if ((fdd->gen & 0x7fffffffu) == gen) {
		for (int dir = 0; dir < 3; dir++) {
			static const uint32_t wants[3] = {
				EPOLLIN | EPOLLRDHUP, EPOLLOUT,
				EPOLLIN | EPOLLRDHUP | EPOLLOUT,
			};
			uint32_t want = wants[dir];

			if (!(revents & (want | EPOLLERR | EPOLLHUP))) {
				again |= !waitq_empty(&fdd->wq[dir]);
				continue;
			}
			while ((wt = waitq_pop(&fdd->wq[dir]))) {
				uncount_waiter(wt);
				waiter_grant(wt, 1);
				woken++;
			}
		}
		if (again && arm(w->io, fdd, fd) == 0)
			count_waiters(fdd, w->io);
	}
	spin_unlock(&fdd->lock);
	return woken;
}

int epoll_poll(struct worker *w, uint64_t deadline, bool block)
{
	struct io_driver *d = w->io;
	struct epoll_event ev[64];
	struct timespec ts = { 0, 0 };
	int n, woken = 0;

	if (block && deadline != UINT64_MAX) {
		uint64_t now = weft_now(), ns = deadline > now ? deadline - now : 0;

		ts.tv_sec = (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
	}
	/* epoll_pwait2: a nanosecond timeout (timers would be rounded up to
	 * milliseconds by epoll_wait). */
	n = (int)syscall(SYS_epoll_pwait2, d->epfd, ev, 64,
			 block && deadline == UINT64_MAX ? NULL : &ts, NULL, 0);
	if (n < 0 && weft__errno() == ENOSYS) {
		int ms = !block ? 0 : deadline == UINT64_MAX ? -1
			 : (int)((ts.tv_sec * 1000) + (ts.tv_nsec + 999999) / 1000000);

		n = epoll_wait(d->epfd, ev, 64, ms);
	}
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u64 == UD_WAKE) {
			uint64_t v;

			/* Drain the counter; EAGAIN if another read won. */
			if (read(d->efd, &v, sizeof(v)) < 0)
				(void)0;
			continue;
		}
		woken += dispatch(w, ev[i].data.u64, ev[i].events);
	}
	return woken;
}
