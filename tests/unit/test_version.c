/* SPDX-License-Identifier: MIT */
/*
 * weft_version() and weft_strerror(): the library matches its header, and
 * every negative errno (and anything else) gets a non-NULL description.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "weft_test.h"

static void test_version_matches_header(void **state)
{
	char expect[64];

	(void)state;
	assert_non_null(weft_version());
	assert_string_equal(weft_version(), WEFT_VERSION_STRING);
	snprintf(expect, sizeof(expect), "%d.%d.%d", WEFT_VERSION_MAJOR,
		 WEFT_VERSION_MINOR, WEFT_VERSION_PATCH);
	assert_string_equal(weft_version(), expect);
	/* The same string every time. */
	assert_string_equal(weft_version(), weft_version());
}

static void test_strerror_runtime_meanings(void **state)
{
	const char *canceled = weft_strerror(-ECANCELED);
	const char *timedout = weft_strerror(-ETIMEDOUT);

	(void)state;
	assert_non_null(canceled);
	assert_non_null(timedout);
	assert_true(strlen(canceled) > 0);
	assert_true(strlen(timedout) > 0);
	assert_string_not_equal(canceled, timedout);
}

static void test_strerror_never_null(void **state)
{
	static const int errs[] = {
		0, -EINVAL, -ENOMEM, -EAGAIN, -EPERM, -ESRCH, -EDEADLK,
		-ENOSPC, -ESHUTDOWN, -ECANCELED, -ETIMEDOUT, 1, EINVAL,
		-4095, -4096, -99999, INT_MIN, INT_MAX,
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		const char *s = weft_strerror(errs[i]);

		assert_non_null(s);
		/* Must be a readable string. */
		assert_true(strlen(s) < 4096);
	}
	/* Distinct failures read differently. */
	assert_string_not_equal(weft_strerror(-EINVAL),
				weft_strerror(-ENOMEM));
	assert_string_not_equal(weft_strerror(-EDEADLK),
				weft_strerror(-ECANCELED));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_matches_header),
		cmocka_unit_test(test_strerror_runtime_meanings),
		cmocka_unit_test(test_strerror_never_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
