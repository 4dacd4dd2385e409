/* SPDX-License-Identifier: MIT */
/*
 * Private to group.c and blocking.c: waits that nothing may interrupt.
 *
 * A group whose waiter was cancelled, gather, and a blocking call whose
 * task gave up must still wait for what they started (children, or fn
 * running on the caller's stack). A shield holds cancellation back, but a
 * deadline scope still applies inside it (weft/task.h), and an expired
 * deadline would make every wait return -ETIMEDOUT at once: the wait would
 * spin. A hold is a shield that also lifts the deadline until it ends.
 * Only runtime code that makes no deadline-scope calls in between may use
 * it. Both functions accept NULL (a plain thread: nothing to hold).
 */
#ifndef WEFT_GROUP_H
#define WEFT_GROUP_H

#include <stdint.h>
#include "internal.h"

/* Task-only fields: no other thread reads shield or deadline. */
static inline void weft__hold_begin(struct weft_task *t, uint64_t *saved)
{
	if (!t)
		return;
	t->run->shield++;
	*saved = t->run->deadline;
	t->run->deadline = UINT64_MAX;
}

static inline void weft__hold_end(struct weft_task *t, uint64_t saved)
{
	if (!t)
		return;
	t->run->deadline = saved;
	t->run->shield--;
}

#endif
