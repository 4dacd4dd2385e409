/* SPDX-License-Identifier: MIT */
/*
 * The io_uring driver's edge cases, with tiny rings: io_entries = 2 gives
 * an SQ of 2 and a CQ of 8, so hundreds of tasks waiting at once fill the
 * SQ (submission in many batches) and overflow the CQ (completions the
 * kernel keeps on its overflow list, NODROP). Every task must see its own
 * data exactly once. And a worker kept busy by tasks that only yield still
 * reaps its completions. Runs under both backends (epoll ignores
 * io_entries) and skips io_uring where the kernel lacks it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <weft.h>
#include "weft_test.h"

#define NTASKS 300

struct pair {
	int fd[2];
	int got;		/* the value the reader read, or -errno */
};

static struct pair pairs[NTASKS];
static atomic_int parked;

static int reader(void *arg)
{
	struct pair *p = arg;
	int v = -1;
	ssize_t n;

	atomic_fetch_add(&parked, 1);
	n = weft_read_exact(p->fd[0], &v, sizeof(v));
	p->got = n == sizeof(v) ? v : (n < 0 ? (int)n : -EIO);
	return 0;
}

static int writer_all(void *arg)
{
	(void)arg;
	/* Every reader has submitted its read by now (they ran first and
	 * parked); the writes complete them all in one burst. */
	for (int i = 0; i < NTASKS; i++) {
		int v = i * 7 + 1;

		if (weft_write_all(pairs[i].fd[1], &v, sizeof(v)) != sizeof(v))
			return -EIO;
	}
	return 0;
}

static int burst(void *arg)
{
	weft_task *t[NTASKS], *w;
	int r;

	(void)arg;
	for (int i = 0; i < NTASKS; i++)
		if (weft_spawn(&t[i], reader, &pairs[i]) != 0)
			return 1;
	while (atomic_load(&parked) < NTASKS)
		weft_yield();
	/* Let the last reads reach the kernel. */
	weft_sleep(5 * 1000 * 1000);
	if (weft_spawn(&w, writer_all, NULL) != 0 || weft_join(w, &r) != 0 ||
	    r != 0)
		return 2;
	for (int i = 0; i < NTASKS; i++)
		if (weft_join(t[i], &r) != 0 || r != 0)
			return 3;
	return 0;
}

/* A runtime on c's backend, or NULL (skipped, with a note) where io_uring
 * cannot be set up. */
static weft_rt *new_rt(const weft_config *c)
{
	weft_rt *rt;
	int rc = weft_rt_new(&rt, c);

	if (rc != 0 && c->io_backend == WEFT_IO_URING) {
		printf("io_uring unavailable here (%s): skipped\n",
		       weft_strerror(rc));
		return NULL;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(weft_rt_io_backend(rt), (int)c->io_backend);
	return rt;
}

static void run_burst(unsigned backend, unsigned workers)
{
	weft_config c = { .workers = workers, .io_entries = 2,
			  .io_backend = backend };
	weft_rt *rt = new_rt(&c);
	int r = -1;

	if (!rt)
		return;
	for (int i = 0; i < NTASKS; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					    0, pairs[i].fd), 0);
		pairs[i].got = -1;
	}
	atomic_store(&parked, 0);
	assert_int_equal(weft_rt_block_on(rt, burst, NULL, &r), 0);
	assert_int_equal(r, 0);
	for (int i = 0; i < NTASKS; i++) {
		assert_int_equal(pairs[i].got, i * 7 + 1);
		close(pairs[i].fd[0]);
		close(pairs[i].fd[1]);
	}
	weft_rt_free(rt);
}

static void test_tiny_ring_uring(void **state)
{
	(void)state;
	run_burst(WEFT_IO_URING, 1);
	run_burst(WEFT_IO_URING, 2);
}

static void test_tiny_ring_epoll(void **state)
{
	(void)state;
	run_burst(WEFT_IO_EPOLL, 1);
	run_burst(WEFT_IO_EPOLL, 2);
}

/*
 * A worker that never runs dry still completes I/O: spinner tasks yield
 * until the reader has its data, so the worker only reaps completions in
 * its periodic poll, which skips the system call when the ring shows no
 * work (TASKRUN_FLAG). A poll that wrongly skipped would hang this test.
 */
#define SPINNERS 4

static atomic_int busy_done;

static int spinner(void *arg)
{
	(void)arg;
	while (!atomic_load(&busy_done))
		weft_yield();
	return 0;
}

static int busy_reader(void *arg)
{
	int *fd = arg, v = 0;
	ssize_t n;

	atomic_fetch_add(&parked, 1);
	n = weft_read_exact(*fd, &v, sizeof(v));
	atomic_store(&busy_done, 1);
	return n == sizeof(v) ? v : -1;
}

static int busy_root(void *arg)
{
	int *fd = arg, v = 4242, r = -1;
	weft_task *rd, *sp[SPINNERS];

	if (weft_spawn(&rd, busy_reader, &fd[0]) != 0)
		return 1;
	for (int i = 0; i < SPINNERS; i++)
		if (weft_spawn(&sp[i], spinner, NULL) != 0)
			return 2;
	while (atomic_load(&parked) < 1)
		weft_yield();
	/* Let the periodic poll submit the read, so that the data arrives
	 * while the kernel holds it. */
	for (int i = 0; i < 1000; i++)
		weft_yield();
	if (write(fd[1], &v, sizeof(v)) != sizeof(v))
		return 3;
	if (weft_join(rd, &r) != 0 || r != v)
		return 4;
	for (int i = 0; i < SPINNERS; i++)
		if (weft_join(sp[i], NULL) != 0)
			return 5;
	return 0;
}

static void run_busy(unsigned backend, unsigned workers)
{
	weft_config c = { .workers = workers, .io_backend = backend };
	weft_rt *rt = new_rt(&c);
	int r = -1, fd[2];

	if (!rt)
		return;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    fd), 0);
	atomic_store(&parked, 0);
	atomic_store(&busy_done, 0);
	assert_int_equal(weft_rt_block_on(rt, busy_root, fd, &r), 0);
	assert_int_equal(r, 0);
	close(fd[0]);
	close(fd[1]);
	weft_rt_free(rt);
}

static void test_busy_worker_reaps(void **state)
{
	(void)state;
	run_busy(WEFT_IO_URING, 1);
	run_busy(WEFT_IO_URING, 2);
	run_busy(WEFT_IO_EPOLL, 1);
}

/*
 * A read that is cancelled while its data arrives, and that resumes on
 * another worker than the one whose ring holds it. That owner may reap the
 * completion before the cancel request reaches it (its wake of the first
 * wait then fails), and then wakes the reader from the request, onto its
 * own queue. It must run the reader then, not go back to sleep in its
 * ring: that once left the reader queued, for good, on a worker with
 * nothing else in flight. To get there, the canceller resumes from the
 * blocking pool (wherever a worker takes it), and waits longer than a
 * worker's I/O grace (idle.c) so that the owner parks expecting nothing.
 * With 4 workers this stalled within a few rounds before the fix. A join
 * that has not returned after seconds fails the test, then extra tasks
 * wake every worker so that the run still ends.
 */
#define CANCEL_ROUNDS 40

static int cancel_fd[2];
static atomic_int cancel_ready;
static atomic_long cancel_got;

static int cancel_reader(void *arg)
{
	char buf[16];

	(void)arg;
	atomic_store(&cancel_ready, 1);
	atomic_store(&cancel_got, weft_recv(cancel_fd[0], buf, sizeof(buf), 0));
	return 0;
}

static int nap(void *arg)
{
	(void)arg;
	return weft_sleep(WT_MS);
}

static int nothing(void *arg)
{
	(void)arg;
	return 0;
}

static int cancel_root(void *arg)
{
	(void)arg;
	for (int i = 0; i < CANCEL_ROUNDS; i++) {
		weft_task *rd, *naps[8];
		long got;
		int rc;

		atomic_store(&cancel_ready, 0);
		WT_CHECK_EQ(weft_spawn(&rd, cancel_reader, NULL), 0);
		while (!atomic_load(&cancel_ready))
			WT_CHECK_EQ(weft_yield(), 0);
		WT_CHECK_EQ(weft_blocking(nothing, NULL, NULL), 0);
		WT_CHECK_EQ(weft_sleep(12 * WT_MS), 0);
		WT_CHECK_EQ(write(cancel_fd[1], "x", 1), 1);
		rc = weft_cancel(rd); /* -ESRCH: the read won and ended */
		WT_CHECK(rc == 0 || rc == -ESRCH);
		WT_CHECK_EQ(weft_timeout_begin(WT_LONG_SLEEP / 4), 0);
		rc = weft_join(rd, NULL);
		weft_timeout_end();
		if (rc == -ETIMEDOUT) {
			WT_CHECK(!"the cancelled reader never ran again");
			for (int k = 0; k < 8; k++)
				WT_CHECK_EQ(weft_spawn(&naps[k], nap, NULL), 0);
			for (int k = 0; k < 8; k++)
				WT_CHECK_EQ(weft_join(naps[k], NULL), 0);
			WT_CHECK_EQ(weft_join(rd, NULL), 0);
			return -1;
		}
		WT_CHECK_EQ(rc, 0);
		/* The byte was read (the completion won), or it is still
		 * there (the cancel won). */
		got = atomic_load(&cancel_got);
		WT_CHECK(got == 1 || got == -ECANCELED);
		if (got < 0) {
			char b;

			WT_CHECK_EQ(recv(cancel_fd[0], &b, 1, MSG_DONTWAIT), 1);
		}
	}
	return 0;
}

static void test_cancel_completed_elsewhere(void **state)
{
	weft_config c = { .workers = 4, .io_backend = WEFT_IO_URING };
	weft_rt *rt = new_rt(&c);
	int r = -1;

	(void)state;
	if (!rt)
		return;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    cancel_fd), 0);
	assert_int_equal(weft_rt_block_on(rt, cancel_root, NULL, &r), 0);
	assert_int_equal(r, 0);
	assert_int_equal(wt_take_failures(), 0);
	close(cancel_fd[0]);
	close(cancel_fd[1]);
	weft_rt_free(rt);
}

static void test_bad_io_config(void **state)
{
	weft_config c = { .io_entries = 1u << 20 };
	weft_rt *rt;

	(void)state;
	assert_int_equal(weft_rt_new(&rt, &c), -EINVAL);
	c.io_entries = 0;
	c.io_backend = 3;
	assert_int_equal(weft_rt_new(&rt, &c), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tiny_ring_uring),
		cmocka_unit_test(test_tiny_ring_epoll),
		cmocka_unit_test(test_busy_worker_reaps),
		cmocka_unit_test(test_cancel_completed_elsewhere),
		cmocka_unit_test(test_bad_io_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
