/*
 * fuzz-mbox: the input of a fuzz target for a 4 KiB mailbox record
 * (request, reply, change log).  The input is padded with zeros to a
 * record; when its first byte is odd, the CRC (the whole record, with the
 * 4-byte field at crc_off as zero) is recomputed, so the fuzzer gets past
 * the checksum.
 */
#pragma once

#include <stdbool.h>
#include <string.h>
#include <glib.h>

#include "metadata/md-journal.h"
#include "metadata/md-mailbox.h"

/* Fills rec from data; false when there is no input at all. */
static inline bool fuzz_mbox_record(const uint8_t *data, size_t size,
				    uint8_t rec[MD_MBOX_RECORD_SIZE], size_t crc_off)
{
	bool fix;
	uint32_t crc;

	if (size < 1)
		return false;
	fix = data[0] & 1;
	memset(rec, 0, MD_MBOX_RECORD_SIZE);
	memcpy(rec, data + 1, MIN(size - 1, (size_t)MD_MBOX_RECORD_SIZE));
	if (fix) {
		memset(rec + crc_off, 0, 4);
		crc = md_crc32c(0, rec, MD_MBOX_RECORD_SIZE);
		for (int i = 0; i < 4; i++)
			rec[crc_off + i] = (uint8_t)(crc >> (8 * i));
	}
	return true;
}
