/* SPDX-License-Identifier: MIT */
/*
 * weft: a task runtime for Linux. N worker threads run stackful coroutine
 * tasks and steal them from each other.
 *
 * Every call that can fail returns int (or ssize_t): zero or a non-negative
 * result on success, a negative errno on failure. weft never sets errno.
 */
#ifndef WEFT_H
#define WEFT_H

#include <weft/version.h>
#include <weft/runtime.h>
#include <weft/task.h>
#include <weft/time.h>
#include <weft/sync.h>
#include <weft/chan.h>
#include <weft/io.h>
#include <weft/net.h>
#include <weft/fs.h>
#include <weft/stream.h>

#endif
