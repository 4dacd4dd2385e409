/* SPDX-License-Identifier: MIT */
/*
 * echo_server: a TCP echo server on weft_serve. Every connection gets a
 * task that sends back whatever it receives, until the client closes.
 *
 *   echo_server [-l ADDR] [-w WORKERS] [-b uring|epoll] [-r] PORT [WORKERS]
 *
 * -l ADDR   listen on ADDR (default: every address, IPv6 and IPv4)
 * -w N      worker threads (default: one per CPU); so does WORKERS
 * -b NAME   I/O backend: uring or epoll (default: uring if available)
 * -r        one SO_REUSEPORT listener and accept loop per worker
 *
 * SIGINT or SIGTERM stops accepting, lets connections finish what they are
 * doing for a moment (GRACE_MS), closes the rest and exits 0. Bad
 * arguments exit 2; a failure prints one line on stderr and exits 1.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <unistd.h>
#include <sys/socket.h>
#include <weft.h>
#include "common.h"

#define PROG "echo_server"
#define BUF_SIZE (16 * 1024)	/* one receive, on the task's stack */
#define GRACE_MS 250		/* connections' time to finish at shutdown */
#define STACK_SIZE (64 * 1024)	/* a connection task's stack */

/* ---- A connection -------------------------------------------------------- */

/* Receives and sends back until end of stream, an error, or cancellation
 * at shutdown; then closes. What came in is sent back in full (weft_send
 * until all is sent) before the next receive, so a client that stops
 * reading stops us reading too. */
static int handle(int fd, void *arg)
{
	char buf[BUF_SIZE];

	(void)arg; /* weft_serve set TCP_NODELAY: echoes go out at once */
	for (;;) {
		ssize_t n = weft_recv(fd, buf, sizeof(buf), 0);

		if (n <= 0 || ex_send_all(fd, buf, (size_t)n) < 0)
			break;
	}
	weft_close(fd);
	return 0;
}

/* ---- Serving ------------------------------------------------------------- */

/* Accepts on lfd and runs handle() in a task per connection. The server
 * around it (common.c) runs one of these per listener and cancels them at
 * SIGINT or SIGTERM: weft_serve then stops accepting, gives connections
 * GRACE_MS, cancels the rest and returns -ECANCELED. */
static int serve(int lfd, void *arg)
{
	weft_serve_opts opts = {
		.grace_ns = (uint64_t)GRACE_MS * 1000000,
		.stack_size = STACK_SIZE,
	};

	(void)arg;
	return weft_serve(lfd, handle, NULL, &opts);
}

int main(int argc, char **argv)
{
	struct ex_server sv = { .serve = serve };
	int opt;

	ex_init(PROG, "[-l ADDR] [-w WORKERS] [-b uring|epoll] [-r] "
		      "PORT [WORKERS]");
	while ((opt = getopt(argc, argv, "l:w:b:r")) != -1)
		if (!ex_server_opt(&sv, opt, optarg))
			ex_usage();
	if (argc - optind < 1 || argc - optind > 2)
		ex_usage();
	sv.port = (uint16_t)ex_number(argv[optind], 1, 65535);
	if (argc - optind == 2)
		sv.cfg.workers = (unsigned)ex_number(argv[optind + 1], 1, 1024);
	return ex_server_run(&sv);
}
