/*
 * md-xleases: the external leases index (reference section 10, VDSM
 * lib/vdsm/storage/xlease.py).  See md-xleases.h.
 *
 * md_xleases_format() writes exactly what VDSM's format writes.
 * md_xleases_validate() accepts what VDSM's IndexMetadata.frombytes() and
 * Record.frombytes() accept (padding bytes are not checked), so ovstore
 * never refuses an index oVirt keeps using.
 *
 * Metadata block, bytes 0..511 of the index:
 *   0 magic (u32 big-endian)  4 NUL  5 "0001"  9 NUL  10 lockspace (48, NUL
 *   padded)  58 NUL  59 mtime (10 digits)  69 NUL  70 state  71 NUL x 440
 *   511 '\n'
 * Record r at 512 + 64 * r:
 *   0 lease id (48, NUL padded)  48 NUL  49 offset (11 digits)  60 NUL
 *   61 updating flag '-' or 'u'  62 '-'  63 '\n'
 */
#include "metadata/md-xleases.h"

#include <errno.h>
#include <string.h>
#include <glib.h>

#include "common/log.h"

#include "common/banned.h"

#define MD_BLOCK_SIZE 512
#define RECORD_SIZE 64
#define LOCKSPACE_SIZE 48
#define LEASE_ID_SIZE 48
#define INDEX_VERSION "0001"

_Static_assert(MD_BLOCK_SIZE + MD_XLEASES_RECORDS * RECORD_SIZE == MD_XLEASES_INDEX_SIZE,
	       "xleases index layout");

/* Metadata block offsets. */
#define M_MAGIC 0
#define M_VERSION 5
#define M_LOCKSPACE 10
#define M_MTIME 59
#define M_STATE 70
#define M_PADDING 71
#define M_PADDING_LEN 440
#define M_END 511

/* Record offsets. */
#define R_ID 0
#define R_OFFSET 49
#define R_OFFSET_LEN 11
#define R_UPDATING 61
#define R_RESERVED 62
#define R_END 63

static const uint8_t free_record[RECORD_SIZE] = {
	[R_OFFSET] = '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0',
	[R_UPDATING] = '-', [R_RESERVED] = '-', [R_END] = '\n',
};

int md_xleases_format(const char *sd_uuid, int64_t mtime, void *buf, size_t len)
{
	uint8_t *b = buf;
	size_t slen = sd_uuid ? strlen(sd_uuid) : 0;
	char digits[16];

	if (!b || len < MD_XLEASES_INDEX_SIZE)
		return -EINVAL;
	if (slen == 0 || slen > LOCKSPACE_SIZE)
		return -EINVAL;
	if (mtime < 0 || mtime > 9999999999LL)
		return -ERANGE;

	memset(b, 0, MD_BLOCK_SIZE);
	b[M_MAGIC] = (uint8_t)(MD_XLEASES_MAGIC >> 24);
	b[M_MAGIC + 1] = (uint8_t)(MD_XLEASES_MAGIC >> 16);
	b[M_MAGIC + 2] = (uint8_t)(MD_XLEASES_MAGIC >> 8);
	b[M_MAGIC + 3] = (uint8_t)MD_XLEASES_MAGIC;
	memcpy(b + M_VERSION, INDEX_VERSION, 4);
	memcpy(b + M_LOCKSPACE, sd_uuid, slen);
	g_snprintf(digits, sizeof(digits), "%010lld", (long long)mtime);
	memcpy(b + M_MTIME, digits, 10);
	b[M_STATE] = '-';
	b[M_END] = '\n';
	for (size_t r = 0; r < MD_XLEASES_RECORDS; r++)
		memcpy(b + MD_BLOCK_SIZE + r * RECORD_SIZE, free_record, RECORD_SIZE);
	return 0;
}

static int invalid(const char *what, size_t record)
{
	log_debug(LOG_CLASS_METADATA, "xleases index: %s (record %zu)", what, record);
	return -EUCLEAN;
}

static bool all_digits(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!g_ascii_isdigit(p[i]))
			return false;
	return true;
}

/*
 * What VDSM's Record.frombytes() accepts: an ASCII id (NUL padded) and a
 * decimal offset.  The pad, flag and newline bytes are not checked, as VDSM
 * does not check them either.
 */
static int validate_record(const uint8_t *rec, size_t r)
{
	if (memcmp(rec, free_record, RECORD_SIZE) == 0)
		return 0;
	for (size_t i = 0; i < LEASE_ID_SIZE; i++)
		if (rec[i] >= 0x80)
			return invalid("lease id is not ASCII", r);
	if (!all_digits(rec + R_OFFSET, R_OFFSET_LEN))
		return invalid("bad lease offset", r);
	return 0;
}

int md_xleases_validate(const char *sd_uuid, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	uint8_t lockspace[LOCKSPACE_SIZE] = { 0 };
	size_t slen = sd_uuid ? strlen(sd_uuid) : 0;
	uint32_t magic;
	int r;

	if (!b || len < MD_XLEASES_INDEX_SIZE)
		return -EINVAL;
	if (slen > LOCKSPACE_SIZE)
		return -EINVAL;

	magic = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	if (magic != MD_XLEASES_MAGIC)
		return invalid("bad magic", 0);
	if (!all_digits(b + M_VERSION, 4))
		return invalid("bad version", 0);
	if (memcmp(b + M_VERSION, INDEX_VERSION, 4) != 0) {
		log_debug(LOG_CLASS_METADATA, "xleases index: unknown version '%.4s'",
			  (const char *)b + M_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (sd_uuid) {
		memcpy(lockspace, sd_uuid, slen);
		if (memcmp(b + M_LOCKSPACE, lockspace, LOCKSPACE_SIZE) != 0)
			return invalid("lockspace is not the domain", 0);
	}
	if (!all_digits(b + M_MTIME, 10))
		return invalid("bad mtime", 0);
	/* VDSM: only 'u' means "being updated, rebuild me"; '-' is what it writes. */
	if (b[M_STATE] == 'u')
		return invalid("index is being updated", 0);

	for (size_t i = 0; i < MD_XLEASES_RECORDS; i++) {
		r = validate_record(b + MD_BLOCK_SIZE + i * RECORD_SIZE, i);
		if (r < 0)
			return r;
	}
	return 0;
}
