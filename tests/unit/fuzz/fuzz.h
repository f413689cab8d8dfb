/*
 * fuzz: what every fuzz target shares.  A target defines
 * LLVMFuzzerTestOneInput(); it is linked either with libFuzzer
 * (-fsanitize=fuzzer, OVSTORE_FUZZ=ON) or with fuzz-main.c, which replays a
 * corpus under ctest (systemd src/fuzz/fuzz-main.c).
 *
 * Targets check properties (decode(encode(x)) == x ...) with FUZZ_CHECK,
 * which aborts even in NDEBUG builds, so libFuzzer records the input.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(x)                                                                              \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)
