/* SPDX-License-Identifier: MIT */
/*
 * weft_signal_wait (include/weft/io.h): sigwait for tasks.
 *
 * Why not signalfd: a signalfd only sees signals that are blocked in every
 * thread, or the kernel delivers them to some thread that has them
 * unblocked, running its handler or default action. A thread can change
 * only its own signal mask, and weft's workers, its blocking pool and the
 * program's other threads already run: weft cannot block a signal in all of
 * them from the one thread that calls weft_signal_wait. So weft takes the
 * signal the way that works whatever thread receives it: with a handler.
 *
 *  1. The handler (any thread, async-signal context) increments the
 *     signal's pending counter, then writes 1 to an eventfd. Lock-free C11
 *     atomics and write(2) are async-signal-safe; errno is saved and
 *     restored around the write. SA_RESTART keeps the interrupted thread's
 *     system calls going.
 *  2. A dispatcher, a plain thread started on first use (pthread_once) with
 *     every signal blocked, waits in poll() + read() on the eventfd and,
 *     for every wake, locks sig_lock and broadcasts sig_cond. It does the
 *     waking because a signal handler may not touch weft's sync objects.
 *  3. A waiter locks sig_lock and loops: take one pending occurrence of a
 *     signal in its set (a CAS that decrements a counter above 0) and
 *     return that signal; else weft_cond_wait(sig_cond, sig_lock).
 *
 * No wake-up is lost: the handler increments (1) before the write that
 * makes the dispatcher broadcast (2), and the dispatcher broadcasts holding
 * sig_lock. A waiter that found the counter at 0 under sig_lock is queued
 * on sig_cond before it releases sig_lock (sync.h), so the broadcast that
 * follows the increment finds it; or it checks after the increment, and
 * the counter is above 0. Occurrences are counted, not merged, so each one
 * is returned once, to one waiter; one delivered while nobody waits stays
 * pending for the next call. Spurious broadcasts (several signals, one
 * eventfd read) only make waiters look again.
 *
 * Handlers are installed per signal, the first time a set containing it is
 * listened or waited for, under a pthread mutex that is never held across a
 * suspension. The dispatcher and the handlers stay for the life of the
 * process. A child created by fork() has no dispatcher thread: waiting for
 * signals there is not supported.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include "internal.h"

#ifndef NSIG
#define NSIG _NSIG
#endif

/* Occurrences delivered and not yet returned. Incremented by the handler
 * (relaxed: the eventfd write/read and sig_lock order it before a waiter
 * that was woken for it; a waiter that merely polls may see it late, and
 * then sees it after the broadcast that follows). Decremented by waiters. */
static _Atomic unsigned sig_pending[NSIG];
_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
	       "the signal handler needs lock-free counters");

/* Installed handlers: under install_lock. */
static bool sig_installed[NSIG];
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

/* Set once by dispatcher_start. pthread_once orders start_err before
 * every waiter; sig_efd is atomic because the handler reads it on whatever
 * thread the signal hits (release in dispatcher_start, acquire in the
 * handler; the handler is installed only after the store anyway). */
static pthread_once_t start_once = PTHREAD_ONCE_INIT;
static _Atomic int sig_efd = -1;
static int start_err;

static weft_mutex sig_lock = WEFT_MUTEX_INIT;
static weft_cond sig_cond = WEFT_COND_INIT;

static void on_signal(int signo)
{
	int saved = errno;
	uint64_t one = 1;

	if (signo > 0 && signo < NSIG)
		FADD(&sig_pending[signo], 1, relaxed);
	/* The eventfd is non-blocking: it cannot hang the handler (its
	 * counter would have to reach 2^64 - 2 first). */
	if (write(LOAD(&sig_efd, acquire), &one, sizeof(one)) < 0) {
		/* Nothing to do: a failed write leaves a wake pending. */
	}
	errno = saved;
}

static void *dispatcher_main(void *arg)
{
	int efd = (int)(intptr_t)arg;

	for (;;) {
		struct pollfd p = { .fd = efd, .events = POLLIN };
		uint64_t v;

		if (poll(&p, 1, -1) < 0)
			continue; /* EINTR */
		if (read(efd, &v, sizeof(v)) != (ssize_t)sizeof(v))
			continue; /* EAGAIN: nothing after all */
		/* A plain thread: lock blocks the thread and cannot be
		 * cancelled. */
		weft_mutex_lock(&sig_lock);
		weft_cond_broadcast(&sig_cond);
		weft_mutex_unlock(&sig_lock);
	}
	return NULL;
}

static void dispatcher_start(void)
{
	pthread_t th;
	int efd, rc;

	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0) {
		start_err = -errno;
		return;
	}
	/* Every signal blocked on it, so the handlers run on the program's
	 * threads, never in the middle of a broadcast. */
	rc = weft__thread_start(&th, dispatcher_main, (void *)(intptr_t)efd,
				true);
	if (rc) {
		close(efd);
		start_err = rc;
		return;
	}
	STORE(&sig_efd, efd, release); /* pairs with the handler's load */
}

/* Installs the handler for every signal of set not handled yet. */
static int install(const sigset_t *set)
{
	struct sigaction sa;
	int rc = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	pthread_mutex_lock(&install_lock);
	for (int s = 1; s < NSIG && rc == 0; s++) {
		if (sig_installed[s] || sigismember(set, s) != 1)
			continue;
		if (sigaction(s, &sa, NULL) < 0)
			rc = -errno; /* EINVAL: a signal libc reserves */
		else
			sig_installed[s] = true;
	}
	pthread_mutex_unlock(&install_lock);
	return rc;
}

/* Takes one pending occurrence of a signal in set: its number, or 0. */
static int take_one(const sigset_t *set)
{
	for (int s = 1; s < NSIG; s++) {
		unsigned v;

		if (sigismember(set, s) != 1)
			continue;
		v = LOAD(&sig_pending[s], relaxed);
		while (v > 0)
			if (CAS(&sig_pending[s], &v, v - 1, relaxed, relaxed))
				return s;
	}
	return 0;
}

int weft_signal_listen(const sigset_t *set)
{
	bool any = false;

	if (!set)
		return -EINVAL;
	for (int s = 1; s < NSIG; s++) {
		if (sigismember(set, s) != 1)
			continue;
		if (s == SIGKILL || s == SIGSTOP)
			return -EINVAL;
		any = true;
	}
	if (!any)
		return -EINVAL;
	pthread_once(&start_once, dispatcher_start);
	if (start_err)
		return start_err;
	return install(set);
}

int weft_signal_wait(const sigset_t *set)
{
	int rc = weft_signal_listen(set), s;

	if (rc)
		return rc;
	rc = weft_mutex_lock(&sig_lock);
	if (rc)
		return rc; /* -ECANCELED / -ETIMEDOUT: not held */
	for (;;) {
		s = take_one(set);
		if (s) {
			rc = s;
			break;
		}
		/* Holds sig_lock again when it returns, also with an
		 * error (sync.h), so the unlock below is always ours. */
		rc = weft_cond_wait(&sig_cond, &sig_lock);
		if (rc < 0)
			break;
	}
	weft_mutex_unlock(&sig_lock);
	return rc;
}
