/* SPDX-License-Identifier: MIT */
/*
 * weft_signal_wait, under both I/O backends (the whole suite runs once
 * with io_uring, skipped with a note where it cannot be set up, and once
 * with epoll): a task waiting for SIGUSR1 gets it when another task or a
 * plain thread raises it with kill(getpid(), ...); signals delivered while
 * nobody waits stay pending for the next call (each occurrence once); a
 * waiting task that is cancelled returns -ECANCELED, one whose deadline
 * expires -ETIMEDOUT, and the signal that comes later is not lost; a plain
 * thread can wait too; several waiters get one signal each; signals that
 * hit the workers do not disturb a task blocked in weft_read; argument
 * checks. weft_signal_listen, from a plain thread and from a task,
 * installs the handler without waiting: an occurrence raised before
 * anyone waits is returned by a later weft_signal_wait, exactly once; it
 * rejects what weft_signal_wait rejects, installing nothing.
 *
 * The handler is installed by the first weft_signal_wait (or
 * weft_signal_listen) for a signal; a test raises a signal only once
 * sigaction() shows the handler in place, since the default action of
 * SIGUSR1 would end the test program.
 *
 * Where the signals land: main() blocks SIGUSR1 and SIGUSR2 before it
 * creates any thread, so the workers, the blocking pool and the helper
 * threads (which inherit the mask) never take them, and starts a "sink"
 * thread with them unblocked that naps in a loop; the kernel delivers every
 * SIGUSR1/SIGUSR2 there. Only the storm test lets the workers take them
 * (its runtime is created with the signals unblocked). The sink is for
 * ThreadSanitizer: TSan runs a handler only when the thread it hit next
 * enters an intercepted call, so a signal that lands on a thread waiting
 * in a raw system call (a futex, io_uring_enter) waits as long as that
 * thread sleeps, and a test waiting for it would hang. A napping thread
 * runs it at once. (Plain builds deliver to any thread alike.)
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "weft_test_io.h"

/* --- a runtime whose workers take SIGUSR1/SIGUSR2 ----------------------- */

static sigset_t usr_signals; /* SIGUSR1, SIGUSR2 */

/* wt_run_io (weft_test_io.h) with a runtime whose workers have SIGUSR1 and
 * SIGUSR2 unblocked, so that they take them too. */
static int run_io_unblocked(unsigned workers, int (*fn)(void *), void *arg)
{
	weft_config c = wt_cfg(workers);
	weft_rt *rt = NULL;
	int rc;

	c.io_backend = wt_backend;
	pthread_sigmask(SIG_UNBLOCK, &usr_signals, NULL);
	rc = weft_rt_new(&rt, &c);
	pthread_sigmask(SIG_BLOCK, &usr_signals, NULL);
	assert_int_equal(rc, 0);
	return wt_run_io_rt(rt, fn, arg);
}

/* --- helpers ---------------------------------------------------------------- */

static sigset_t set_of(int a, int b)
{
	sigset_t s;

	sigemptyset(&s);
	if (a)
		sigaddset(&s, a);
	if (b)
		sigaddset(&s, b);
	return s;
}

/* Whether weft's handler is installed for signo (no default action). */
static bool handled(int signo)
{
	struct sigaction sa;

	return sigaction(signo, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL &&
	       sa.sa_handler != SIG_IGN;
}

/* Waits (in a task) until the handler for signo is in place. */
static void task_wait_handled(int signo)
{
	for (int i = 0; i < 100000 && !handled(signo); i++)
		WT_CHECK_EQ(weft_sleep(50 * WT_US), 0);
	WT_CHECK(handled(signo));
}

/* Takes every pending occurrence of a and b, so a test starts clean: a
 * wait under a short deadline returns -ETIMEDOUT once none is left. */
static void drain(int a, int b)
{
	sigset_t s = set_of(a, b);

	for (int i = 0; i < 100; i++) {
		int rc;

		WT_CHECK_EQ(weft_timeout_begin(2 * WT_MS), 0);
		rc = weft_signal_wait(&s);
		weft_timeout_end();
		if (rc == -ETIMEDOUT)
			return;
		WT_CHECK(rc == a || rc == b);
	}
	WT_CHECK(0);
}

struct waiter {
	int a, b;
	_Atomic int started;
	_Atomic int returned;	/* set after result */
	int result;
};

static int waiter_task(void *arg)
{
	struct waiter *w = arg;
	sigset_t s = set_of(w->a, w->b);

	atomic_store(&w->started, 1);
	w->result = weft_signal_wait(&s);
	atomic_store(&w->returned, 1);
	return w->result;
}

/* --- raised while a task waits --------------------------------------------- */

static int kill_task(void *arg)
{
	WT_CHECK_EQ(kill(getpid(), (int)(intptr_t)arg), 0);
	return 0;
}

struct killer {
	int signo;
	_Atomic int go;
};

static void *kill_thread(void *arg)
{
	struct killer *k = arg;

	/* Bounded: 20 s in 20 us naps. */
	for (int i = 0; i < 1000000 && !atomic_load(&k->go); i++)
		wt_nap(20 * WT_US);
	if (kill(getpid(), k->signo) != 0)
		WT_CHECK(0);
	return NULL;
}

static int raise_root(void *arg)
{
	struct waiter w = { .a = SIGUSR1 };
	struct killer k = { .signo = SIGUSR1 };
	weft_task *t, *kt;
	pthread_t th;
	int r = 0;

	(void)arg;
	/* From another task. */
	WT_CHECK_EQ(weft_spawn(&t, waiter_task, &w), 0);
	WT_TASK_WAIT(atomic_load(&w.started));
	task_wait_handled(SIGUSR1);
	WT_CHECK_EQ(weft_sleep(WT_MS), 0); /* it waits by now, most likely */
	WT_CHECK_EQ(weft_spawn(&kt, kill_task, (void *)(intptr_t)SIGUSR1), 0);
	WT_CHECK_EQ(weft_join(kt, NULL), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, SIGUSR1);

	/* From a plain thread. */
	atomic_store(&w.started, 0);
	WT_CHECK_EQ(weft_spawn(&t, waiter_task, &w), 0);
	WT_TASK_WAIT(atomic_load(&w.started));
	WT_CHECK_EQ(weft_sleep(WT_MS), 0);
	WT_CHECK_EQ(pthread_create(&th, NULL, kill_thread, &k), 0);
	atomic_store(&k.go, 1);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, SIGUSR1);
	WT_CHECK_EQ(pthread_join(th, NULL), 0);
	return 0;
}

static void test_raise_while_waiting(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, raise_root, NULL), 0);
}

/* --- delivered before the wait ---------------------------------------------- */

static int pending_root(void *arg)
{
	sigset_t both = set_of(SIGUSR1, SIGUSR2), two = set_of(SIGUSR2, 0);
	struct waiter w = { .a = SIGUSR2 };
	weft_task *t;
	int r = 0;

	(void)arg;
	/* Installs SIGUSR2's handler (a waiter that we then satisfy). */
	WT_CHECK_EQ(weft_spawn(&t, waiter_task, &w), 0);
	task_wait_handled(SIGUSR2);
	WT_CHECK_EQ(kill(getpid(), SIGUSR2), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, SIGUSR2);
	WT_CHECK(handled(SIGUSR1));
	drain(SIGUSR1, SIGUSR2);

	/* Nobody waits: both stay pending, and each is returned once. */
	WT_CHECK_EQ(kill(getpid(), SIGUSR2), 0);
	WT_CHECK_EQ(kill(getpid(), SIGUSR1), 0);
	WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	WT_CHECK_EQ(weft_signal_wait(&two), SIGUSR2);
	WT_CHECK_EQ(weft_signal_wait(&both), SIGUSR1);
	WT_CHECK_EQ(weft_timeout_begin(5 * WT_MS), 0);
	WT_CHECK_EQ(weft_signal_wait(&both), -ETIMEDOUT);
	WT_CHECK_EQ(weft_timeout_end(), 1);
	return 0;
}

static void test_pending_before_wait(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, pending_root, NULL), 0);
}

/* --- cancellation and deadlines ---------------------------------------------- */

static int cancel_root(void *arg)
{
	sigset_t one = set_of(SIGUSR1, 0);
	struct waiter w = { .a = SIGUSR1 };
	weft_task *t;
	int r = 0;

	(void)arg;
	drain(SIGUSR1, 0);
	WT_CHECK_EQ(weft_spawn(&t, waiter_task, &w), 0);
	WT_TASK_WAIT(atomic_load(&w.started));
	WT_CHECK_EQ(weft_sleep(2 * WT_MS), 0);
	WT_CHECK_EQ(weft_cancel(t), 0);
	WT_CHECK_EQ(weft_join(t, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);

	/* A deadline. */
	WT_CHECK_EQ(weft_timeout_begin(3 * WT_MS), 0);
	WT_CHECK_EQ(weft_signal_wait(&one), -ETIMEDOUT);
	WT_CHECK_EQ(weft_timeout_end(), 1);

	/* The next signal reaches the next waiter. */
	WT_CHECK_EQ(kill(getpid(), SIGUSR1), 0);
	WT_CHECK_EQ(weft_signal_wait(&one), SIGUSR1);
	return 0;
}

static void test_cancel_waiter(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(2, cancel_root, NULL), 0);
}

/* --- several waiters, one signal each ------------------------------------------ */

#define NW 6

static int many_root(void *arg)
{
	struct waiter w[NW];
	weft_task *t[NW];
	int got = 0;

	(void)arg;
	drain(SIGUSR1, 0);
	for (int i = 0; i < NW; i++) {
		w[i] = (struct waiter){ .a = SIGUSR1 };
		WT_CHECK_EQ(weft_spawn(&t[i], waiter_task, &w[i]), 0);
	}
	/* One signal at a time: two kills before the handler ran could
	 * merge into one delivery (standard signals do not queue). Each one
	 * ends exactly one waiter (bounded waits: 100000 x 20 us). */
	for (int n = 1; n <= NW; n++) {
		int returned = 0;

		WT_CHECK_EQ(kill(getpid(), SIGUSR1), 0);
		for (int i = 0; i < 100000 && returned < n; i++) {
			WT_CHECK_EQ(weft_sleep(20 * WT_US), 0);
			returned = 0;
			for (int j = 0; j < NW; j++)
				returned += atomic_load(&w[j].returned);
		}
		WT_CHECK_EQ(returned, n);
	}
	for (int i = 0; i < NW; i++) {
		int r = 0;

		WT_CHECK_EQ(weft_join(t[i], &r), 0);
		if (r == SIGUSR1)
			got++;
	}
	WT_CHECK_EQ(got, NW);
	return 0;
}

static void test_many_waiters(void **state)
{
	(void)state;
	assert_int_equal(wt_run_io(3, many_root, NULL), 0);
}

/* --- a plain thread waits --------------------------------------------------- */

static void *plain_waiter(void *arg)
{
	struct waiter *w = arg;

	waiter_task(w);
	return NULL;
}

static void test_plain_thread(void **state)
{
	struct waiter w = { .a = SIGUSR2 };
	pthread_t th;

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, plain_waiter, &w), 0);
	WT_WAIT(atomic_load(&w.started) && handled(SIGUSR2));
	/* A little later it waits, most likely; pending otherwise. */
	wt_nap(WT_MS);
	assert_int_equal(kill(getpid(), SIGUSR2), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.result, SIGUSR2);
	assert_int_equal(wt_take_failures(), 0);
}

/* --- signals do not disturb I/O ---------------------------------------------- */

/*
 * A plain thread with SIGUSR1 blocked raises it again and again, and the
 * kernel delivers it to a thread that has it unblocked: here the workers
 * (often parked in their driver: io_uring_enter / epoll_wait) and the
 * sink. A task takes each occurrence; meanwhile tasks wait in
 * weft_read, which must neither fail with -EINTR nor miss its data.
 */
static _Atomic int stop_signals, taken;

static void *storm_thread(void *arg)
{
	sigset_t one = set_of(SIGUSR1, 0);
	int n = 0;

	(void)arg;
	pthread_sigmask(SIG_BLOCK, &one, NULL);
	for (int i = 0; i < 2000 && !atomic_load(&stop_signals); i++) {
		if (kill(getpid(), SIGUSR1) != 0)
			WT_CHECK(0);
		n++;
		/* Until it was taken (bounded: 10000 x 20 us; under TSan
		 * one that hit a parked worker waits until it wakes). */
		for (int j = 0; j < 10000 && atomic_load(&taken) < n; j++)
			wt_nap(20 * WT_US);
		wt_nap(50 * WT_US);
	}
	return NULL;
}

static int storm_taker(void *arg)
{
	sigset_t one = set_of(SIGUSR1, 0);
	int rc;

	(void)arg;
	while ((rc = weft_signal_wait(&one)) == SIGUSR1)
		atomic_fetch_add(&taken, 1);
	return rc;
}

static int io_reader(void *arg)
{
	int fd = *(int *)arg;
	char buf[8];

	WT_CHECK_EQ(weft_read_exact(fd, buf, 5), 5);
	WT_CHECK(memcmp(buf, "hello", 5) == 0);
	WT_CHECK_EQ(weft_sleep(5 * WT_MS), 0);
	return 0;
}

static int storm_root(void *arg)
{
	weft_task *taker, *rd[4];
	int sv[4][2], r = 0;
	pthread_t th;

	(void)arg;
	drain(SIGUSR1, 0);
	atomic_store(&stop_signals, 0);
	atomic_store(&taken, 0);
	for (int i = 0; i < 4; i++) {
		wt_socketpair(sv[i]);
		WT_CHECK_EQ(weft_spawn(&rd[i], io_reader, &sv[i][1]), 0);
	}
	WT_CHECK_EQ(weft_spawn(&taker, storm_taker, NULL), 0);
	WT_CHECK_EQ(pthread_create(&th, NULL, storm_thread, NULL), 0);
	WT_CHECK_EQ(weft_sleep(30 * WT_MS), 0);
	for (int i = 0; i < 4; i++) {
		WT_CHECK_EQ(weft_write_all(sv[i][0], "hello", 5), 5);
		WT_CHECK_EQ(weft_join(rd[i], NULL), 0);
	}
	atomic_store(&stop_signals, 1);
	WT_CHECK_EQ(pthread_join(th, NULL), 0);
	WT_CHECK(atomic_load(&taken) > 0);
	WT_CHECK_EQ(weft_cancel(taker), 0);
	WT_CHECK_EQ(weft_join(taker, &r), 0);
	WT_CHECK_EQ(r, -ECANCELED);
	for (int i = 0; i < 4; i++) {
		WT_CHECK_EQ(weft_close(sv[i][0]), 0);
		WT_CHECK_EQ(weft_close(sv[i][1]), 0);
	}
	return 0;
}

static void test_storm_io(void **state)
{
	(void)state;
	assert_int_equal(run_io_unblocked(3, storm_root, NULL), 0);
}

/* --- arguments ----------------------------------------------------------------- */

static void test_args(void **state)
{
	sigset_t s;

	(void)state;
	assert_int_equal(weft_signal_wait(NULL), -EINVAL);
	sigemptyset(&s);
	assert_int_equal(weft_signal_wait(&s), -EINVAL);
	s = set_of(SIGKILL, 0);
	assert_int_equal(weft_signal_wait(&s), -EINVAL);
	s = set_of(SIGUSR1, SIGSTOP);
	assert_int_equal(weft_signal_wait(&s), -EINVAL);
}

/* --- weft_signal_listen ------------------------------------------------ */

/*
 * Signals that only these tests use, so that the suite's first run sees
 * weft_signal_listen install their handlers (they stay for the process).
 * Real-time signals: nothing else sends them, and their default action
 * ends the program, so a handler that is missing cannot go unnoticed.
 * They are not blocked anywhere; raise_on_plain_thread() makes a thread
 * raise one at itself, which runs the handler before raise() returns
 * (ThreadSanitizer too treats a signal a thread sends itself as
 * synchronous), so the occurrence is kept before anyone waits.
 */
#define SIG_LISTEN_PLAIN (SIGRTMIN + 2) /* listened for on a plain thread */
#define SIG_LISTEN_TASK (SIGRTMIN + 3)	/* listened for in a task */

static void *raise_main(void *arg)
{
	if (raise((int)(intptr_t)arg) != 0)
		WT_CHECK(0);
	return NULL;
}

/* A new plain thread raises signo at itself; returns once it has ended. */
static void raise_on_plain_thread(int signo)
{
	pthread_t th;

	WT_CHECK_EQ(pthread_create(&th, NULL, raise_main,
				   (void *)(intptr_t)signo), 0);
	WT_CHECK_EQ(pthread_join(th, NULL), 0);
}

/* Rejected sets install nothing: not even the valid signal next to
 * SIGKILL or SIGSTOP. */
static void listen_bad_sets(void)
{
	bool before = handled(SIG_LISTEN_PLAIN);
	sigset_t s;

	WT_CHECK_EQ(weft_signal_listen(NULL), -EINVAL);
	sigemptyset(&s);
	WT_CHECK_EQ(weft_signal_listen(&s), -EINVAL);
	s = set_of(SIGKILL, 0);
	WT_CHECK_EQ(weft_signal_listen(&s), -EINVAL);
	s = set_of(SIGSTOP, 0);
	WT_CHECK_EQ(weft_signal_listen(&s), -EINVAL);
	s = set_of(SIG_LISTEN_PLAIN, SIGKILL);
	WT_CHECK_EQ(weft_signal_listen(&s), -EINVAL);
	s = set_of(SIG_LISTEN_PLAIN, SIGSTOP);
	WT_CHECK_EQ(weft_signal_listen(&s), -EINVAL);
	WT_CHECK_EQ(handled(SIG_LISTEN_PLAIN), before);
}

static int listen_args_root(void *arg)
{
	(void)arg;
	listen_bad_sets();
	return 0;
}

static void test_listen_args(void **state)
{
	(void)state;
	listen_bad_sets(); /* from a plain thread */
	assert_int_equal(wt_take_failures(), 0);
	assert_int_equal(wt_run_io(1, listen_args_root, NULL), 0); /* a task */
}

/* In a task: the one kept occurrence of signo is returned, and only once (a
 * second wait lasts until its deadline). */
static void take_once(int signo)
{
	sigset_t s = set_of(signo, 0);

	WT_CHECK_EQ(weft_signal_wait(&s), signo);
	WT_CHECK_EQ(weft_timeout_begin(5 * WT_MS), 0);
	WT_CHECK_EQ(weft_signal_wait(&s), -ETIMEDOUT);
	WT_CHECK_EQ(weft_timeout_end(), 1);
}

static int take_once_root(void *arg)
{
	take_once((int)(intptr_t)arg);
	return 0;
}

static int listen_task_root(void *arg)
{
	sigset_t s = set_of(SIG_LISTEN_TASK, 0);

	(void)arg;
	WT_CHECK_EQ(weft_signal_listen(&s), 0);
	WT_CHECK(handled(SIG_LISTEN_TASK));
	raise_on_plain_thread(SIG_LISTEN_TASK);
	take_once(SIG_LISTEN_TASK);
	return 0;
}

static void test_listen_before_wait(void **state)
{
	static bool first_run = true;
	sigset_t s = set_of(SIG_LISTEN_PLAIN, 0);

	(void)state;
	/* Nothing installed them before the suite's first run. */
	if (first_run) {
		assert_false(handled(SIG_LISTEN_PLAIN));
		assert_false(handled(SIG_LISTEN_TASK));
		first_run = false;
	}
	/* From a plain thread (this one), no runtime alive: the occurrence
	 * raised before any runtime or waiter exists is kept for the task
	 * that waits later. Listening again changes nothing. */
	assert_int_equal(weft_signal_listen(&s), 0);
	assert_true(handled(SIG_LISTEN_PLAIN));
	assert_int_equal(weft_signal_listen(&s), 0);
	raise_on_plain_thread(SIG_LISTEN_PLAIN);
	assert_int_equal(wt_take_failures(), 0);
	assert_int_equal(wt_run_io(2, take_once_root,
				   (void *)(intptr_t)SIG_LISTEN_PLAIN), 0);
	/* From a task, the signal raised on a plain thread before the wait. */
	assert_int_equal(wt_run_io(2, listen_task_root, NULL), 0);
}

static _Atomic int sink_stop;

static void *sink_main(void *arg)
{
	(void)arg;
	pthread_sigmask(SIG_UNBLOCK, &usr_signals, NULL);
	while (!atomic_load(&sink_stop))
		wt_nap(WT_MS);
	return NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_listen_args),
		cmocka_unit_test(test_listen_before_wait),
		cmocka_unit_test(test_raise_while_waiting),
		cmocka_unit_test(test_pending_before_wait),
		cmocka_unit_test(test_cancel_waiter),
		cmocka_unit_test(test_many_waiters),
		cmocka_unit_test(test_plain_thread),
		cmocka_unit_test(test_storm_io),
	};
	pthread_t sink;
	int rc;

	usr_signals = set_of(SIGUSR1, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr_signals, NULL);
	if (pthread_create(&sink, NULL, sink_main, NULL) != 0)
		return 1;
	rc = WT_RUN_BOTH_BACKENDS("signal", tests, NULL, NULL);
	atomic_store(&sink_stop, 1);
	pthread_join(sink, NULL);
	return rc;
}
