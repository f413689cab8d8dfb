/*
 * Fuzz md_journal_decode().  The input is padded with zeros to a record.
 * When the first byte is odd the CRC is recomputed before decoding, so the
 * fuzzer reaches the payload parser instead of stopping at the checksum.
 * A record that decodes re-encodes to exactly the same bytes.
 */
#include <string.h>
#include <glib.h>

#include "metadata/md-journal.h"
#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

static void reseal(uint8_t *rec)
{
	uint32_t plen = rec[36] | rec[37] << 8 | rec[38] << 16 | (uint32_t)rec[39] << 24;
	uint32_t crc;

	if (plen > MD_JOURNAL_PAYLOAD_MAX)
		return;
	memset(rec + 40, 0, 4);
	crc = md_crc32c(md_crc32c(0, rec, MD_JOURNAL_HEADER_SIZE), rec + MD_JOURNAL_HEADER_SIZE,
			plen);
	rec[40] = (uint8_t)crc;
	rec[41] = (uint8_t)(crc >> 8);
	rec[42] = (uint8_t)(crc >> 16);
	rec[43] = (uint8_t)(crc >> 24);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t rec[MD_JOURNAL_RECORD_SIZE] = { 0 };
	uint8_t again[MD_JOURNAL_RECORD_SIZE];
	MdJournalRecord r = { 0 };
	bool fix;

	if (size < 1)
		return 0;
	fix = data[0] & 1;
	data++;
	size--;
	memcpy(rec, data, MIN(size, sizeof(rec)));
	if (fix)
		reseal(rec);
	if (md_journal_decode(rec, sizeof(rec), &r) < 0) {
		FUZZ_CHECK(r.args == NULL);
		return 0;
	}
	(void)md_journal_op_to_string(r.op);
	FUZZ_CHECK(md_journal_encode(&r, again, sizeof(again)) == 0);
	FUZZ_CHECK(memcmp(rec, again, sizeof(rec)) == 0);
	md_journal_record_release(&r);
	return 0;
}
