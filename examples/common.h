/* SPDX-License-Identifier: MIT */
/*
 * common.h: the scaffolding that echo_server, http_server and fetch_many
 * share and that none of them is about: the flags they have in common,
 * their usage line, SIGINT and SIGTERM, sending a whole buffer, and for the
 * two servers the runtime, the listeners, the serving tasks and the
 * shutdown. What an example is there to show (weft_serve and its handler,
 * weft_stream, ...) stays in the example's own file.
 *
 * Bad arguments exit 2 after the usage line; a failure prints one line,
 * "PROG: what: why", on stderr and exits 1.
 */
#ifndef WEFT_EXAMPLES_COMMON_H
#define WEFT_EXAMPLES_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <weft.h>

/* ---- Command line -------------------------------------------------------- */

/* Call first in main(): prog names the program in its messages, args is
 * its usage line after "usage: PROG ". Both must outlive the program. */
void ex_init(const char *prog, const char *args);

/* Prints the usage line on stderr and exits 2. */
_Noreturn void ex_usage(void);

/* The decimal number s, which must lie in [min, max], or ex_usage(). */
unsigned long ex_number(const char *s, unsigned long min, unsigned long max);

/* Takes the runtime's flags from getopt into cfg: -w WORKERS (1 to 1024)
 * and -b uring|epoll. Returns true if opt was one of them (a bad value
 * calls ex_usage()), false for any other option. */
bool ex_runtime_opt(weft_config *cfg, int opt, const char *arg);

/* ---- Signals and sockets ------------------------------------------------- */

/* Installs weft's SIGINT and SIGTERM handlers (weft_signal_listen): from
 * then on either signal is kept for ex_signal_wait instead of ending the
 * program. Call it before the program can be told to stop. Returns 0 or a
 * negative errno. */
int ex_signals_listen(void);

/* weft_signal_wait for SIGINT or SIGTERM: the signal that came, or a
 * negative errno (-ECANCELED when the task is cancelled). */
int ex_signal_wait(void);

/* weft_send until all n bytes are sent. Returns n, or the first error (the
 * bytes sent before it are then lost to the caller). */
ssize_t ex_send_all(int fd, const void *buf, size_t n);

/* ---- Servers ------------------------------------------------------------- */

/* What ex_server_run needs; all-zero but port and serve is a server on
 * every address, with the runtime's defaults. */
struct ex_server {
	const char *host;	/* -l: NULL for every address */
	uint16_t port;
	bool reuseport;		/* -r: one listener per worker */
	weft_config cfg;	/* the runtime's: -w, -b */
	/* Serves the listener lfd: weft_serve(lfd, handler, arg, ...) until
	 * it is cancelled, and returns what weft_serve returns. */
	int (*serve)(int lfd, void *arg);
	void *arg;		/* for serve(), which runs on many tasks */
};

/* Takes -l ADDR and -r from getopt into sv, then the runtime's flags as
 * ex_runtime_opt does. Returns false for any other option. */
bool ex_server_opt(struct ex_server *sv, int opt, const char *arg);

/*
 * Runs the server: starts a runtime with sv->cfg, listens on
 * sv->host:sv->port (one SO_REUSEPORT listener per worker with
 * sv->reuseport), prints "PROG: listening on ..." on stdout and runs
 * sv->serve on every listener, each in its task, until SIGINT or SIGTERM
 * cancels them. Returns the exit status for main(): 0 after a signal,
 * 1 after one line on stderr if the server could not start or failed.
 */
int ex_server_run(const struct ex_server *sv);

#endif
