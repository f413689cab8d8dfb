/*
 * Fuzz md_xleases_validate().  The input is written over a freshly
 * formatted index (whose size libFuzzer's default max_len would not
 * reach): bytes 0..n of the input replace bytes 0..n of the index, and an
 * input longer than 512 bytes also lands in the last records.
 */
#include <string.h>
#include <glib.h>

#include "metadata/md-xleases.h"
#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

#define SD_UUID "a5a6e1f0-5b1e-4c4e-9d7c-0f0e1d2c3b4a"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *index;
	size_t n = MIN(size, (size_t)MD_XLEASES_INDEX_SIZE);

	if (!index)
		index = g_malloc(MD_XLEASES_INDEX_SIZE);
	FUZZ_CHECK(md_xleases_format(SD_UUID, 1795500815, index, MD_XLEASES_INDEX_SIZE) == 0);
	FUZZ_CHECK(md_xleases_validate(SD_UUID, index, MD_XLEASES_INDEX_SIZE) == 0);
	memcpy(index, data, n);
	if (size > 512) {
		size_t tail = MIN(size - 512, (size_t)MD_XLEASES_INDEX_SIZE - 512);

		memcpy(index + MD_XLEASES_INDEX_SIZE - tail, data + 512, tail);
	}
	(void)md_xleases_validate(SD_UUID, index, MD_XLEASES_INDEX_SIZE);
	(void)md_xleases_validate(NULL, index, MD_XLEASES_INDEX_SIZE);
	return 0;
}
