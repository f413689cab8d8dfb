/*
 * tests: assertion macros for the C unit tests (systemd src/shared/tests.h).
 *
 * Every macro prints the failed expression, both values and where it
 * happened, then aborts, so ctest shows the whole story and a core dump or
 * sanitizer trace points at the line.  Arguments are evaluated once.
 *
 *   ASSERT_OK(r)             r >= 0 (prints strerror(-r) otherwise)
 *   ASSERT_ERROR(r, E)       r == -E
 *   ASSERT_EQ(a, b)          integers (any mix of signedness)
 *   ASSERT_STREQ(a, b)       NUL-terminated strings (NULL allowed)
 *   ASSERT_MEMEQ(a, b, n)    n bytes
 *   ASSERT_TRUE(x), ASSERT_FALSE(x), ASSERT_NULL(p), ASSERT_NOT_NULL(p)
 *
 * A test program is a list of `static void test_x(void)` functions that
 * main() runs with TEST_RUN(test_x), which prints the name first.
 */
#pragma once

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_FAIL(...)                                                                             \
	do {                                                                                       \
		fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, __func__);                      \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		abort();                                                                           \
	} while (0)

#define ASSERT_OK(expr)                                                                            \
	do {                                                                                       \
		long long _r = (long long)(expr);                                                  \
		if (_r < 0)                                                                        \
			TEST_FAIL("expected success: %s = %lld (%s)", #expr, _r,                   \
				  strerror((int)-_r));                                             \
	} while (0)

#define ASSERT_ERROR(expr, err)                                                                    \
	do {                                                                                       \
		long long _r = (long long)(expr);                                                  \
		if (_r != -(long long)(err))                                                       \
			TEST_FAIL("expected -%s: %s = %lld (%s)", #err, #expr, _r,                 \
				  _r < 0 ? strerror((int)-_r) : "success");                        \
	} while (0)

#define ASSERT_EQ(a, b)                                                                            \
	do {                                                                                       \
		__typeof__(a) _a = (a);                                                            \
		__typeof__(b) _b = (b);                                                            \
		if ((intmax_t)_a != (intmax_t)_b || (uintmax_t)_a != (uintmax_t)_b)                \
			TEST_FAIL("expected %s == %s: %jd (0x%jx) != %jd (0x%jx)", #a, #b,         \
				  (intmax_t)_a, (uintmax_t)_a, (intmax_t)_b, (uintmax_t)_b);       \
	} while (0)

#define ASSERT_STREQ(a, b)                                                                         \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		if ((_a == NULL) != (_b == NULL) || (_a && strcmp(_a, _b) != 0))                   \
			TEST_FAIL("expected %s == %s: \"%s\" != \"%s\"", #a, #b,                   \
				  _a ? _a : "(null)", _b ? _b : "(null)");                         \
	} while (0)

#define ASSERT_MEMEQ(a, b, n)                                                                      \
	do {                                                                                       \
		const unsigned char *_a = (const void *)(a), *_b = (const void *)(b);              \
		size_t _n = (n);                                                                   \
		for (size_t _i = 0; _i < _n; _i++)                                                 \
			if (_a[_i] != _b[_i])                                                      \
				TEST_FAIL("expected %s == %s for %zu bytes: differ at %zu: "       \
					  "0x%02x != 0x%02x",                                      \
					  #a, #b, _n, _i, _a[_i], _b[_i]);                         \
	} while (0)

#define ASSERT_TRUE(x)                                                                             \
	do {                                                                                       \
		if (!(x))                                                                          \
			TEST_FAIL("expected true: %s", #x);                                        \
	} while (0)

#define ASSERT_FALSE(x)                                                                            \
	do {                                                                                       \
		if (x)                                                                             \
			TEST_FAIL("expected false: %s", #x);                                       \
	} while (0)

#define ASSERT_NULL(p)                                                                             \
	do {                                                                                       \
		const void *_p = (p);                                                              \
		if (_p)                                                                            \
			TEST_FAIL("expected NULL: %s = %p", #p, _p);                               \
	} while (0)

#define ASSERT_NOT_NULL(p)                                                                         \
	do {                                                                                       \
		if (!(p))                                                                          \
			TEST_FAIL("expected non-NULL: %s", #p);                                    \
	} while (0)

#define TEST_RUN(fn)                                                                               \
	do {                                                                                       \
		fprintf(stderr, "/* %s */\n", #fn);                                                \
		fn();                                                                              \
	} while (0)
