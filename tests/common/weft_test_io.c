/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "weft_test_io.h"

unsigned wt_backend;

/* 0 if a runtime starts on io_uring here, else its error (-EPROTO if it
 * started on another backend). */
static int uring_probe(void)
{
	weft_config c = wt_cfg(1);
	weft_rt *rt = NULL;
	int rc;

	c.io_backend = WEFT_IO_URING;
	rc = weft_rt_new(&rt, &c);
	if (rc == 0) {
		if (weft_rt_io_backend(rt) != WEFT_IO_URING)
			rc = -EPROTO;
		weft_rt_free(rt);
	}
	return rc;
}

int wt_run_both_backends(const char *name, const struct CMUnitTest *tests,
			 size_t n, int (*setup)(void **),
			 int (*teardown)(void **))
{
	static const struct {
		unsigned backend;
		const char *label;
	} halves[] = {
		{ WEFT_IO_URING, "io_uring" },
		{ WEFT_IO_EPOLL, "epoll" },
	};
	char group[64];
	int failed = 0, rc;

	unsetenv("WEFT_IO");
	for (size_t k = 0; k < sizeof(halves) / sizeof(halves[0]); k++) {
		snprintf(group, sizeof(group), "%s/%s", name, halves[k].label);
		if (halves[k].backend == WEFT_IO_URING &&
		    (rc = uring_probe()) != 0) {
			printf("note: io_uring unavailable (%s): skipping %s\n",
			       weft_strerror(rc), group);
			continue;
		}
		wt_backend = halves[k].backend;
		printf("%s: backend %s\n", name, halves[k].label);
		failed += _cmocka_run_group_tests(group, tests, n, setup,
						  teardown);
	}
	return failed ? 1 : 0;
}

int wt_run_io_rt(weft_rt *rt, int (*fn)(void *), void *arg)
{
	int r = -12345;

	assert_int_equal(weft_rt_io_backend(rt), (int)wt_backend);
	assert_int_equal(weft_rt_block_on(rt, fn, arg, &r), 0);
	weft_rt_free(rt);
	assert_int_equal(wt_take_failures(), 0);
	return r;
}

int wt_run_io(unsigned workers, int (*fn)(void *), void *arg)
{
	weft_config c = wt_cfg(workers);
	weft_rt *rt = NULL;

	c.io_backend = wt_backend;
	assert_int_equal(weft_rt_new(&rt, &c), 0);
	return wt_run_io_rt(rt, fn, arg);
}

void wt_socketpair(int sv[2])
{
	int rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    0, sv);

	WT_CHECK_EQ(rc, 0);
}

void wt_tcp_pair(int *c, int *a)
{
	int lfd = weft_tcp_listen("127.0.0.1", 0, 0);
	int port;

	*c = *a = -1;
	WT_CHECK(lfd >= 0);
	port = weft_local_port(lfd);
	WT_CHECK(port > 0);
	*c = weft_tcp_connect("127.0.0.1", (uint16_t)port);
	WT_CHECK(*c >= 0);
	*a = weft_accept(lfd, NULL, NULL);
	WT_CHECK(*a >= 0);
	WT_CHECK_EQ(weft_close(lfd), 0);
}
