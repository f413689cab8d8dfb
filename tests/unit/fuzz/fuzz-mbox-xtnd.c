/*
 * Fuzz oVirt's host mailbox decoding: md_mbox_verify() on the input as a
 * 4096-byte mailbox (zero padded), then md_mbox_xtnd_decode() on each of
 * its 63 slots.  When the first byte is odd the checksum is recomputed
 * first.  A message that decodes re-encodes to exactly the same 64 bytes.
 */
#include <string.h>
#include <glib.h>

#include "metadata/md-mailbox.h"
#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t mb[MD_MBOX_HOST_MAILBOX_SIZE] = { 0 };
	bool fix;

	if (size < 1)
		return 0;
	fix = data[0] & 1;
	data++;
	size--;
	memcpy(mb, data, MIN(size, sizeof(mb)));
	if (fix)
		md_mbox_seal(mb);
	if (md_mbox_verify(mb) < 0)
		return 0;
	for (size_t i = 0; i < MD_MBOX_MSG_SLOTS; i++) {
		const uint8_t *msg = mb + i * MD_MBOX_MSG_SIZE;
		MdMboxExtend x;
		uint8_t again[MD_MBOX_MSG_SIZE];

		int r = md_mbox_xtnd_decode(msg, &x);

		if (md_mbox_msg_is_clean(msg) || md_mbox_msg_is_empty(msg))
			FUZZ_CHECK(r < 0);
		if (r < 0)
			continue;
		FUZZ_CHECK(x.size_mib <= MD_MBOX_XTND_SIZE_MAX);
		FUZZ_CHECK(md_mbox_xtnd_encode(&x, again) == 0);
		FUZZ_CHECK(memcmp(msg, again, sizeof(again)) == 0);
		FUZZ_CHECK(md_mbox_xtnd_reply_matches(msg, again));
	}
	return 0;
}
