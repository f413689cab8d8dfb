/*
 * Fuzz md_mbox_request_decode().  The input is padded with zeros to a record.  When
 * the first byte is odd the CRC (whole record, field at 32 as zero) is
 * recomputed before decoding, so the fuzzer gets past the checksum.  A
 * record that decodes re-encodes to exactly the same bytes.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "metadata/md-journal.h"
#include "metadata/md-mailbox.h"
#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

static void reseal(uint8_t *rec)
{
	uint32_t crc;

	memset(rec + 32, 0, 4);
	crc = md_crc32c(0, rec, MD_MBOX_RECORD_SIZE);
	rec[32] = (uint8_t)crc;
	rec[32 + 1] = (uint8_t)(crc >> 8);
	rec[32 + 2] = (uint8_t)(crc >> 16);
	rec[32 + 3] = (uint8_t)(crc >> 24);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t rec[MD_MBOX_RECORD_SIZE] = { 0 };
	uint8_t again[MD_MBOX_RECORD_SIZE];
	g_autofree MdMboxRequest *r = g_new0(MdMboxRequest, 1);
	bool fix;

	if (size < 1)
		return 0;
	fix = data[0] & 1;
	data++;
	size--;
	memcpy(rec, data, MIN(size, sizeof(rec)));
	if (fix)
		reseal(rec);
	/* A short buffer is refused before anything is read. */
	FUZZ_CHECK(md_mbox_request_decode(rec, sizeof(rec) - 1, r) == -EINVAL);
	if (md_mbox_request_decode(rec, sizeof(rec), r) < 0)
		return 0;
	FUZZ_CHECK(md_mbox_request_encode(r, again, sizeof(again)) == 0);
	FUZZ_CHECK(memcmp(rec, again, sizeof(rec)) == 0);
	return 0;
}
