/*
 * md-mailbox: the records of the storage mailbox, as pure functions over
 * buffers (byte layout: docs/mailbox.md; oVirt's part: reference section 13).
 * The transport that reads and writes them is lease/mailbox.[ch].
 *
 * The mailbox is two 16 MiB areas on the master domain: the inbox (hosts ->
 * SPM) and the outbox (SPM -> hosts), i.e. dom_md/inbox and dom_md/outbox
 * on a file domain, the inbox and outbox LVs on a block domain.  Each area
 * holds two independent halves:
 *
 *   [0, 8 MiB)       oVirt's mailboxes: 4096 bytes per host at
 *                    host_id * 4096 (host ids 1..2000 end below 8 MiB);
 *                    inbox mailbox 0 is the event block.  64-byte
 *                    messages, only `xtnd` (extend a volume LV) exists.
 *   [8 MiB, 16 MiB)  ovstore's records, one 4096-byte record per host at
 *                    8 MiB + host_id * 4096: the host's request in the
 *                    inbox, the SPM's reply to it in the outbox.  Record 0
 *                    of the outbox (8 MiB) is the SPM's change log; record
 *                    0 of the inbox is unused.
 *
 * Every ovstore record is little-endian, 4096 bytes, carries a magic, a
 * version and a CRC-32C over the whole record, and is all zero when free.
 * Decoders never trust a length read from the buffer: they return
 *   -ENODATA          free (all-zero record, empty message or mailbox)
 *   -EUCLEAN          corrupt: bad magic, checksum, field, length, padding
 *   -EPROTONOSUPPORT  a newer version, op code or field tag
 *   -EINVAL           the buffer is shorter than a record
 * and write their output only on success.  Encoders return -EINVAL for a
 * value that the decoder would refuse, so whatever encodes also decodes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/names.h"

/* ---- layout of the inbox and outbox areas ---- */

#define MD_MBOX_AREA_SIZE (16u << 20)	     /* inbox and outbox, each */
#define MD_MBOX_HOST_MAILBOX_SIZE 4096u	     /* oVirt: one per host */
#define MD_MBOX_OVIRT_MAX_HOST_ID 2000u	     /* sanlock's limit; 2001 * 4096 < 8 MiB */
#define MD_MBOX_OVS_AREA_OFFSET (8u << 20)   /* ovstore's half */
#define MD_MBOX_RECORD_SIZE 4096u	     /* one ovstore record */
#define MD_MBOX_MAX_HOST_ID 2000u	     /* host ids are 1..2000 */
#define MD_MBOX_CHANGES_OFFSET MD_MBOX_OVS_AREA_OFFSET /* in the outbox */

/* oVirt's mailbox of host_id (0: the event block, inbox only). */
uint64_t md_mbox_ovirt_offset(unsigned host_id);
/* ovstore's record of host_id (0: the change log, outbox only). */
uint64_t md_mbox_record_offset(unsigned host_id);

/* ---- oVirt: 4096-byte host mailboxes of 64-byte messages ---- */

#define MD_MBOX_MSG_SIZE 64u
#define MD_MBOX_MSG_SLOTS 63u		 /* slots 0..62; 63 holds the checksum */
#define MD_MBOX_CHECKSUM_OFFSET 4092u
#define MD_MBOX_EVENT_MAGIC "\0evt"	 /* 4 bytes */
#define MD_MBOX_XTND_SIZE_MAX 0xffffffffull /* MiB */

/* Sum of bytes 0..4091 of a host mailbox, modulo 2^32. */
uint32_t md_mbox_checksum(const void *mailbox);
/* Stores md_mbox_checksum() little-endian at offset 4092. */
void md_mbox_seal(void *mailbox);
/*
 * 0 when the stored checksum matches; -ENODATA when it is 0 (oVirt: an
 * empty mailbox, whatever the rest says); -EUCLEAN on a mismatch (the
 * whole mailbox is ignored for that round).
 */
int md_mbox_verify(const void *mailbox);

/* The clean/ack message: 64 bytes of 0x01. */
void md_mbox_msg_clean(uint8_t ret[MD_MBOX_MSG_SIZE]);
bool md_mbox_msg_is_clean(const uint8_t *msg);
/* An empty slot: first byte 0x00. */
bool md_mbox_msg_is_empty(const uint8_t *msg);

/* The extend request: "1xtnd", two UUIDs, the size in MiB. */
typedef struct MdMboxExtend {
	char domain[UUID_STR_LEN + 1]; /* lowercase textual UUID */
	char volume[UUID_STR_LEN + 1];
	uint64_t size_mib;	       /* <= MD_MBOX_XTND_SIZE_MAX; 0 in a failure reply */
} MdMboxExtend;

/*
 * Byte for byte what VDSM writes: '1', "xtnd", each UUID as its 16 RFC 4122
 * bytes reversed, the size as 16 lowercase hex digits, 11 ASCII '0'.
 * -EINVAL for a UUID that does not parse (either case accepted), -ERANGE
 * for a size above MD_MBOX_XTND_SIZE_MAX.
 */
int md_mbox_xtnd_encode(const MdMboxExtend *x, uint8_t ret[MD_MBOX_MSG_SIZE]);
/*
 * -ENODATA for an empty slot; -EPROTONOSUPPORT for another message version
 * or type (the clean message included: check md_mbox_msg_is_clean() first);
 * -EUCLEAN for bad hex digits, padding or a size above the maximum.
 * Replies decode the same way (size 0 = the SPM failed).
 */
int md_mbox_xtnd_decode(const uint8_t *msg, MdMboxExtend *ret);
/* A reply answers a request when bytes 0..36 (header and both UUIDs) match. */
bool md_mbox_xtnd_reply_matches(const uint8_t *request, const uint8_t *reply);

/*
 * The event block (inbox mailbox 0): "\0evt", 16 random bytes (a UUID in
 * RFC 4122 order), zero up to MD_MBOX_HOST_MAILBOX_SIZE.  Writing a new one
 * tells the SPM to scan now.  len >= MD_MBOX_HOST_MAILBOX_SIZE, else -EINVAL.
 */
int md_mbox_event_encode(const uint8_t uuid[16], void *buf, size_t len);
int md_mbox_event_decode(const void *buf, size_t len, uint8_t ret_uuid[16]);

/* ---- ovstore: request and reply records ---- */

#define MD_MBOX_REQUEST_MAGIC "OVSMBRQ1"
#define MD_MBOX_REPLY_MAGIC "OVSMBRP1"
#define MD_MBOX_CHANGES_MAGIC "OVSMBCL1"
#define MD_MBOX_HEADER_SIZE 56u
#define MD_MBOX_PAYLOAD_MAX (MD_MBOX_RECORD_SIZE - MD_MBOX_HEADER_SIZE)

/*
 * What a host asks the SPM to do.  The object is named by DOMAIN, IMAGE and
 * VOLUME; the other fields are arguments.  NB: numbers are on disk; append
 * only, and add the op to op_fields[] in md-mailbox.c and docs/mailbox.md.
 */
typedef enum MdMboxOp {
	MD_MBOX_OP_NONE = 0,		/* never valid */
	MD_MBOX_OP_PING = 1,		/* no fields; the SPM answers 0 */
	MD_MBOX_OP_IMG_MKDIR = 2,	/* DOMAIN IMAGE [MODE UID GID] */
	MD_MBOX_OP_IMG_RMDIR = 3,	/* DOMAIN IMAGE */
	MD_MBOX_OP_IMG_RENAME = 4,	/* DOMAIN IMAGE NAME */
	MD_MBOX_OP_VOL_CREATE = 5,	/* DOMAIN IMAGE VOLUME [SIZE PARENT FORMAT MODE UID GID
					   FLAGS DESCRIPTION] */
	MD_MBOX_OP_VOL_UNLINK = 6,	/* DOMAIN IMAGE VOLUME */
	MD_MBOX_OP_VOL_RENAME = 7,	/* DOMAIN IMAGE VOLUME NAME [NEW_IMAGE] */
	MD_MBOX_OP_VOL_LINK = 8,	/* DOMAIN IMAGE VOLUME NEW_IMAGE [NAME] */
	MD_MBOX_OP_VOL_TRUNCATE = 9,	/* DOMAIN IMAGE VOLUME SIZE */
	MD_MBOX_OP_VOL_SET_LEGALITY = 10, /* DOMAIN IMAGE VOLUME LEGALITY */
	MD_MBOX_OP_VOL_SET_DESCRIPTION = 11, /* DOMAIN IMAGE VOLUME DESCRIPTION */
	MD_MBOX_OP_IMG_CHMOD = 12,	/* DOMAIN IMAGE MODE */
	MD_MBOX_OP_IMG_CHOWN = 13,	/* DOMAIN IMAGE [UID GID] */
	MD_MBOX_OP_VOL_CHMOD = 14,	/* DOMAIN IMAGE VOLUME MODE */
	MD_MBOX_OP_VOL_CHOWN = 15,	/* DOMAIN IMAGE VOLUME [UID GID] */
	MD_MBOX_OP_UTIMENS = 16,	/* DOMAIN IMAGE [VOLUME ATIME_* MTIME_*] */
	MD_MBOX_OP_VOL_FALLOCATE = 17,	/* DOMAIN IMAGE VOLUME OFFSET LENGTH [FLAGS] */
	MD_MBOX_OP_VOL_QCOW2_HEADER = 18, /* DOMAIN IMAGE VOLUME BYTES [OFFSET] */
	MD_MBOX_OP_VOL_EXTEND = 19,	/* DOMAIN VOLUME SIZE [IMAGE]: size in bytes */
	MD_MBOX_OP_SETXATTR = 20,	/* DOMAIN IMAGE XATTR_KEY XATTR_VALUE [VOLUME FLAGS] */
	MD_MBOX_OP_REMOVEXATTR = 21,	/* DOMAIN IMAGE XATTR_KEY [VOLUME] */
	MD_MBOX_OP_MAX,
} MdMboxOp;

/*
 * Typed fields (TLVs on disk).  Kinds and bounds:
 *   DOMAIN                 lowercase textual UUID (uuid_is_valid())
 *   IMAGE VOLUME NAME NEW_IMAGE PARENT
 *                          names (name_is_valid(): 1..64 bytes)
 *   DESCRIPTION            UTF-8 text, 0..1024 bytes, no NUL
 *   LEGALITY FORMAT        1..32 bytes, no NUL
 *   XATTR_KEY              1..255 bytes, no NUL
 *   XATTR_VALUE            0..1024 bytes, any
 *   BYTES                  0..3072 bytes, any
 *   SIZE ... MTIME_NSEC    64-bit integers (times: int64 as two's complement)
 * NB: tags are on disk; append only, update field_info[] in md-mailbox.c.
 */
typedef enum MdMboxField {
	MD_MBOX_F_NONE = 0,
	MD_MBOX_F_DOMAIN = 1,
	MD_MBOX_F_IMAGE = 2,
	MD_MBOX_F_VOLUME = 3,
	MD_MBOX_F_NAME = 4,
	MD_MBOX_F_NEW_IMAGE = 5,
	MD_MBOX_F_PARENT = 6,
	MD_MBOX_F_DESCRIPTION = 7,
	MD_MBOX_F_LEGALITY = 8,
	MD_MBOX_F_FORMAT = 9,
	MD_MBOX_F_XATTR_KEY = 10,
	MD_MBOX_F_XATTR_VALUE = 11,
	MD_MBOX_F_BYTES = 12,
	MD_MBOX_F_SIZE = 13,
	MD_MBOX_F_OFFSET = 14,
	MD_MBOX_F_LENGTH = 15,
	MD_MBOX_F_MODE = 16,
	MD_MBOX_F_UID = 17,
	MD_MBOX_F_GID = 18,
	MD_MBOX_F_FLAGS = 19,
	MD_MBOX_F_ATIME_SEC = 20,
	MD_MBOX_F_ATIME_NSEC = 21,
	MD_MBOX_F_MTIME_SEC = 22,
	MD_MBOX_F_MTIME_NSEC = 23,
	MD_MBOX_F_MAX,
} MdMboxField;

#define MD_MBOX_DESCRIPTION_MAX 1024u
#define MD_MBOX_XATTR_KEY_MAX 255u
#define MD_MBOX_XATTR_VALUE_MAX 1024u
#define MD_MBOX_BYTES_MAX 3072u

/*
 * A set of fields, each present at most once, kept in the struct itself (no
 * allocation; about 4.3 KiB).  Clear it with md_mbox_fields_clear() (or
 * zero it) before use.  Strings are stored NUL-terminated.
 */
typedef struct MdMboxFields {
	uint32_t present;			 /* 1u << field for each field set */
	uint64_t num[MD_MBOX_F_MAX];		 /* integer fields */
	uint16_t off[MD_MBOX_F_MAX];		 /* string/bytes fields: start in data */
	uint16_t len[MD_MBOX_F_MAX];		 /* their length, without the NUL */
	uint16_t used;				 /* bytes of data in use */
	uint16_t encoded;			 /* their TLV size on disk */
	char data[MD_MBOX_PAYLOAD_MAX + MD_MBOX_F_MAX];
} MdMboxFields;

void md_mbox_fields_clear(MdMboxFields *f);
/*
 * Setters validate like the decoder: -EINVAL for the wrong kind of field or
 * a value out of bounds, -EEXIST when the field is already set, -E2BIG when
 * the record has no room left.
 */
int md_mbox_set_str(MdMboxFields *f, MdMboxField field, const char *s);
int md_mbox_set_u64(MdMboxFields *f, MdMboxField field, uint64_t v);
int md_mbox_set_bytes(MdMboxFields *f, MdMboxField field, const void *p, size_t len);
bool md_mbox_has(const MdMboxFields *f, MdMboxField field);
/* NULL when absent or not a string field. */
const char *md_mbox_get_str(const MdMboxFields *f, MdMboxField field);
/* -ENOENT when absent, -EINVAL when not an integer field. */
int md_mbox_get_u64(const MdMboxFields *f, MdMboxField field, uint64_t *ret);
/* NULL when absent or not a bytes field; *ret_len its length. */
const void *md_mbox_get_bytes(const MdMboxFields *f, MdMboxField field, size_t *ret_len);

typedef struct MdMboxRequest {
	uint32_t host_id;     /* the asking host, 1..MD_MBOX_MAX_HOST_ID */
	uint64_t seq;	      /* per host, != 0, new for every request */
	MdMboxOp op;
	MdMboxFields fields;  /* exactly the op's required, plus optional ones */
} MdMboxRequest;

/*
 * A reply goes through ACCEPTED (the SPM took the request and is about to
 * run it) to DONE (result is final), or to WITHDRAWN (the host had cleared
 * its request before the SPM ran it: nothing was done).  lease/mailbox.c
 * explains why the ACCEPTED step exists.
 */
typedef enum MdMboxReplyState {
	MD_MBOX_REPLY_NONE = 0,
	MD_MBOX_REPLY_ACCEPTED = 1,
	MD_MBOX_REPLY_DONE = 2,
	MD_MBOX_REPLY_WITHDRAWN = 3,
	MD_MBOX_REPLY_MAX,
} MdMboxReplyState;

typedef struct MdMboxReply {
	uint32_t host_id;	/* the host that asked (the record's slot) */
	uint64_t seq;		/* the request's seq */
	MdMboxOp op;		/* the request's op */
	MdMboxReplyState state;
	int32_t result;		/* DONE: 0 or -errno (-4095..0); else 0 */
	uint64_t lver;		/* lease version of the answering SPM */
	MdMboxFields fields;	/* DONE: any fields; else none */
} MdMboxReply;

/* buf is MD_MBOX_RECORD_SIZE bytes; see the top of this file for errors. */
int md_mbox_request_encode(const MdMboxRequest *req, void *buf, size_t len);
int md_mbox_request_decode(const void *buf, size_t len, MdMboxRequest *ret);
int md_mbox_reply_encode(const MdMboxReply *rep, void *buf, size_t len);
int md_mbox_reply_decode(const void *buf, size_t len, MdMboxReply *ret);

const char *md_mbox_op_to_string(MdMboxOp op);
const char *md_mbox_field_to_string(MdMboxField field);

/* ---- ovstore: the SPM's change log (outbox record 0) ---- */

#define MD_MBOX_CHANGES_MAX 46u /* 48-byte header + 46 * 88-byte entries = 4096 */

typedef struct MdMboxChange {
	uint64_t seq;			/* consecutive; the last one is the log's seq */
	char domain[UUID_STR_LEN + 1];	/* lowercase textual UUID */
	char image[NAME_MAX_LEN + 1];	/* "" = anything in the domain may have changed */
} MdMboxChange;

typedef struct MdMboxChangeLog {
	uint32_t spm_host_id;	/* the SPM that writes the log */
	uint64_t lver;		/* its SPM lease version: a new SPM starts a new log */
	uint64_t seq;		/* the newest change (0: none yet) */
	uint32_t n;		/* entries, oldest first, seqs seq-n+1 .. seq */
	MdMboxChange entries[MD_MBOX_CHANGES_MAX];
} MdMboxChangeLog;

/* An empty log of this SPM. */
void md_mbox_changes_init(MdMboxChangeLog *log, uint32_t spm_host_id, uint64_t lver);
/* Adds change seq+1, dropping the oldest entry when full; -EINVAL for bad names. */
int md_mbox_changes_append(MdMboxChangeLog *log, const char *domain, const char *image);
int md_mbox_changes_encode(const MdMboxChangeLog *log, void *buf, size_t len);
int md_mbox_changes_decode(const void *buf, size_t len, MdMboxChangeLog *ret);
/*
 * A host that has seen every change up to since_seq of the log of lver:
 * 0 and *ret_first = the index of the first newer entry (log->n when there
 * is none); 1 when it must reload everything, because the log belongs to
 * another SPM term (lver) or the entries after since_seq were dropped.
 */
int md_mbox_changes_since(const MdMboxChangeLog *log, uint64_t lver, uint64_t since_seq,
			  size_t *ret_first);
