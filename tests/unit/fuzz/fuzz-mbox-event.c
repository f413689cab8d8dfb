/*
 * Fuzz md_mbox_event_decode() on the input padded to a 4096-byte block.  A
 * block that decodes re-encodes to exactly the same bytes.
 */
#include <string.h>
#include <glib.h>

#include "metadata/md-mailbox.h"
#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t blk[MD_MBOX_HOST_MAILBOX_SIZE] = { 0 };
	uint8_t again[MD_MBOX_HOST_MAILBOX_SIZE];
	uint8_t uuid[16];

	memcpy(blk, data, MIN(size, sizeof(blk)));
	if (md_mbox_event_decode(blk, sizeof(blk), uuid) < 0)
		return 0;
	FUZZ_CHECK(md_mbox_event_encode(uuid, again, sizeof(again)) == 0);
	FUZZ_CHECK(memcmp(blk, again, sizeof(again)) == 0);
	return 0;
}
