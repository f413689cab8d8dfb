/*
 * md-journal: ovstore's intent records for multi-step metadata operations
 * (byte layout: docs/journal.md).  Not part of oVirt's format: oVirt keeps
 * SPM tasks in master/tasks; ovstore needs the same on every domain, file
 * and block, so it uses a small ring of fixed 4 KiB records in its own area
 * (file domains: dom_md/ovstore.journal; block domains: a region of the
 * metadata LV that format V5 leaves unused).
 *
 * A record says "operation OP on these objects, now at step S" and is
 * written (O_DIRECT, one sector-aligned write) before the first step; it is
 * cleared (zeroed) when the operation completes.  On start the SPM rolls
 * every live record forward or back (domain/journal.c).
 *
 * Record, little-endian, MD_JOURNAL_RECORD_SIZE bytes:
 *   0   8  magic "OVSJRNL1"
 *   8   4  format version (1)
 *   12  4  op (MdJournalOp)
 *   16  8  sequence number (grows per domain, tells records apart)
 *   24  8  time (seconds since the epoch, informational)
 *   32  4  step (operation-specific, informational)
 *   36  4  payload length in bytes (<= MD_JOURNAL_PAYLOAD_MAX)
 *   40  4  CRC-32C (Castagnoli, seed ~0, final xor ~0) of bytes 0..47
 *          with this field taken as zero, then the payload
 *   44  4  reserved, zero
 *   48  .  payload: "KEY=VALUE\n" lines, UTF-8; rest of the record zero
 * An all-zero record is free.  An unknown version or op is
 * -EPROTONOSUPPORT; anything else that fails validation is -EUCLEAN
 * (reported, left in place, never replayed).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "metadata/md-kv.h"

#define MD_JOURNAL_RECORD_SIZE 4096
#define MD_JOURNAL_HEADER_SIZE 48
#define MD_JOURNAL_PAYLOAD_MAX (MD_JOURNAL_RECORD_SIZE - MD_JOURNAL_HEADER_SIZE)
#define MD_JOURNAL_SLOTS 64
#define MD_JOURNAL_MAGIC "OVSJRNL1"

typedef enum MdJournalOp {
	MD_JOURNAL_OP_NONE = 0,
	MD_JOURNAL_OP_VOL_CREATE = 1,
	MD_JOURNAL_OP_VOL_DELETE = 2,
	MD_JOURNAL_OP_VOL_LINK = 3,
	MD_JOURNAL_OP_VOL_RENAME = 4,
	MD_JOURNAL_OP_IMG_RENAME = 5,
	MD_JOURNAL_OP_VOL_HEADER = 6, /* a qcow2 header write changing the record */
	MD_JOURNAL_OP_LV_EXTEND = 7,  /* a block volume's LV grows: its new extents not zeroed yet */
	MD_JOURNAL_OP_MAX,
} MdJournalOp;

typedef struct MdJournalRecord {
	MdJournalOp op;
	uint64_t seq;
	int64_t time;
	uint32_t step;
	MdKv *args; /* owned */
} MdJournalRecord;

/*
 * -ENODATA for a free (all-zero) record; -EUCLEAN for a corrupt one;
 * -EINVAL when len < MD_JOURNAL_RECORD_SIZE.  ret->args is owned by the
 * caller (md_journal_record_release()).
 */
int md_journal_decode(const void *buf, size_t len, MdJournalRecord *ret);
/* Fills buf (MD_JOURNAL_RECORD_SIZE bytes); -ERANGE if the payload is too long. */
int md_journal_encode(const MdJournalRecord *rec, void *buf, size_t len);
void md_journal_record_release(MdJournalRecord *rec);
const char *md_journal_op_to_string(MdJournalOp op);

/*
 * CRC-32C (Castagnoli, reflected 0x82f63b78).  crc is a previous result
 * (0 to start): the register is inverted on entry and exit, so
 * md_crc32c(0, "123456789", 9) == 0xe3069283 and
 * md_crc32c(md_crc32c(0, a, n), b, m) is the CRC of a followed by b.
 * Sanlock's record checksum (seed 0xfffffffe, no final xor) is
 * ~md_crc32c(1, buf, len).
 */
uint32_t md_crc32c(uint32_t crc, const void *buf, size_t len);
