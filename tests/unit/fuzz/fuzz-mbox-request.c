/*
 * Fuzz md_mbox_request_decode() (input: fuzz-mbox.h, CRC field at 32).  A
 * record that decodes re-encodes to exactly the same bytes.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "metadata/md-mailbox.h"
#include "tests/unit/fuzz/fuzz-mbox.h"
#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t rec[MD_MBOX_RECORD_SIZE];
	uint8_t again[MD_MBOX_RECORD_SIZE];
	g_autofree MdMboxRequest *r = g_new0(MdMboxRequest, 1);

	if (!fuzz_mbox_record(data, size, rec, 32))
		return 0;
	/* A short buffer is refused before anything is read. */
	FUZZ_CHECK(md_mbox_request_decode(rec, sizeof(rec) - 1, r) == -EINVAL);
	if (md_mbox_request_decode(rec, sizeof(rec), r) < 0)
		return 0;
	FUZZ_CHECK(md_mbox_request_encode(r, again, sizeof(again)) == 0);
	FUZZ_CHECK(memcmp(rec, again, sizeof(rec)) == 0);
	return 0;
}
