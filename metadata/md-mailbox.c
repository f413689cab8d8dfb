/*
 * md-mailbox: oVirt's mailbox messages and ovstore's mailbox records.  See
 * md-mailbox.h and docs/mailbox.md for the byte layout.
 *
 * Decoding is strict (as md-journal.c): a record decodes only if it is
 * exactly what the encoder produces for the decoded value (fields sorted by
 * tag, each once, zero after the payload), so a torn or garbled write is
 * never mistaken for a request.  Every read is bounded by the record size
 * first and by the payload length second; TLV lengths are checked against
 * what is left before they are used.
 */
#include "metadata/md-mailbox.h"

#include <errno.h>
#include <string.h>
#include <glib.h>

#include "common/log.h"
#include "metadata/md-bytes.h"
#include "metadata/md-journal.h"

#include "common/banned.h"

#define MBOX_VERSION 1

/* ovstore record header (docs/mailbox.md). */
#define OFF_MAGIC 0
#define OFF_VERSION 8
#define OFF_HOST 12
#define OFF_SEQ 16
#define OFF_OP 24
#define OFF_PAYLOAD_LEN 28
#define OFF_CRC 32
#define OFF_STATE 36
#define OFF_RESULT 40
#define OFF_RESERVED 44
#define OFF_LVER 48

/* Change log header and entries. */
#define CL_OFF_HOST 12
#define CL_OFF_LVER 16
#define CL_OFF_SEQ 24
#define CL_OFF_COUNT 32
#define CL_OFF_CRC 36
#define CL_OFF_RESERVED 40
#define CL_HEADER_SIZE 48
#define CL_ENTRY_SIZE 88
#define CL_ENTRY_DOMAIN 8
#define CL_ENTRY_IMAGE 24

/* oVirt extend message. */
#define XTND_OFF_DOMAIN 5
#define XTND_OFF_VOLUME 21
#define XTND_OFF_SIZE 37
#define XTND_OFF_PAD 53
#define XTND_MATCH_LEN 37

#define TLV_HEADER 4
#define RESULT_MIN (-4095)

_Static_assert(sizeof(MD_MBOX_REQUEST_MAGIC) - 1 == 8, "request magic is 8 bytes");
_Static_assert(sizeof(MD_MBOX_REPLY_MAGIC) - 1 == 8, "reply magic is 8 bytes");
_Static_assert(sizeof(MD_MBOX_CHANGES_MAGIC) - 1 == 8, "change log magic is 8 bytes");
_Static_assert(OFF_LVER + 8 == MD_MBOX_HEADER_SIZE, "record header layout");
_Static_assert(CL_OFF_RESERVED + 8 == CL_HEADER_SIZE, "change log header layout");
_Static_assert(CL_ENTRY_IMAGE + NAME_MAX_LEN == CL_ENTRY_SIZE, "change log entry layout");
_Static_assert(CL_HEADER_SIZE + MD_MBOX_CHANGES_MAX * CL_ENTRY_SIZE == MD_MBOX_RECORD_SIZE,
	       "change log fills one record");
_Static_assert(XTND_OFF_PAD + 11 == MD_MBOX_MSG_SIZE, "extend message layout");
_Static_assert(MD_MBOX_MSG_SLOTS * MD_MBOX_MSG_SIZE <= MD_MBOX_CHECKSUM_OFFSET,
	       "slots end before the checksum");
_Static_assert((uint64_t)(MD_MBOX_OVIRT_MAX_HOST_ID + 1) * MD_MBOX_HOST_MAILBOX_SIZE <=
		       MD_MBOX_OVS_AREA_OFFSET,
	       "oVirt's mailboxes end below ovstore's area");
_Static_assert(MD_MBOX_OVS_AREA_OFFSET +
			       (uint64_t)(MD_MBOX_MAX_HOST_ID + 1) * MD_MBOX_RECORD_SIZE <=
		       MD_MBOX_AREA_SIZE,
	       "ovstore's records end inside the 16 MiB area");
_Static_assert(MD_MBOX_F_MAX <= 32, "field mask is 32 bits");
_Static_assert(MD_MBOX_PAYLOAD_MAX + MD_MBOX_F_MAX <= UINT16_MAX, "field offsets are 16 bits");

uint64_t md_mbox_ovirt_offset(unsigned host_id)
{
	g_assert(host_id <= MD_MBOX_OVIRT_MAX_HOST_ID);
	return (uint64_t)host_id * MD_MBOX_HOST_MAILBOX_SIZE;
}

uint64_t md_mbox_record_offset(unsigned host_id)
{
	g_assert(host_id <= MD_MBOX_MAX_HOST_ID);
	return MD_MBOX_OVS_AREA_OFFSET + (uint64_t)host_id * MD_MBOX_RECORD_SIZE;
}

static int corrupt(const char *what)
{
	log_debug(LOG_CLASS_METADATA, "mailbox record: %s", what);
	return -EUCLEAN;
}

static int unsupported(const char *what, unsigned long long v)
{
	log_debug(LOG_CLASS_METADATA, "mailbox record: unknown %s %llu", what, v);
	return -EPROTONOSUPPORT;
}

/* CRC-32C of a whole record with its 4-byte CRC field at crc_off taken as zero. */
static uint32_t record_crc(const uint8_t *rec, size_t crc_off)
{
	static const uint8_t zero[4];
	uint32_t crc = md_crc32c(0, rec, crc_off);

	crc = md_crc32c(crc, zero, sizeof(zero));
	return md_crc32c(crc, rec + crc_off + 4, MD_MBOX_RECORD_SIZE - crc_off - 4);
}

/* ---- UUIDs ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Textual UUID (either case) to its 16 RFC 4122 bytes. */
static int uuid_pack(const char *s, uint8_t ret[16])
{
	char norm[UUID_STR_LEN + 1];
	size_t j = 0;

	if (!uuid_normalize(s, norm))
		return -EINVAL;
	for (size_t i = 0; i < UUID_STR_LEN; i += 2) {
		if (norm[i] == '-')
			i++;
		ret[j++] = (uint8_t)(hexval(norm[i]) << 4 | hexval(norm[i + 1]));
	}
	g_assert(j == 16);
	return 0;
}

static void uuid_unpack(const uint8_t b[16], char ret[UUID_STR_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t j = 0;

	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			ret[j++] = '-';
		ret[j++] = hex[b[i] >> 4];
		ret[j++] = hex[b[i] & 0xf];
	}
	ret[j] = '\0';
}

/* ---- oVirt host mailboxes ---- */

uint32_t md_mbox_checksum(const void *mailbox)
{
	const uint8_t *p = mailbox;
	uint32_t sum = 0;

	for (size_t i = 0; i < MD_MBOX_CHECKSUM_OFFSET; i++)
		sum += p[i];
	return sum;
}

void md_mbox_seal(void *mailbox)
{
	md_put_le32((uint8_t *)mailbox + MD_MBOX_CHECKSUM_OFFSET, md_mbox_checksum(mailbox));
}

int md_mbox_verify(const void *mailbox)
{
	uint32_t stored = md_get_le32((const uint8_t *)mailbox + MD_MBOX_CHECKSUM_OFFSET);

	if (stored == 0)
		return -ENODATA;
	if (stored != md_mbox_checksum(mailbox)) {
		log_debug(LOG_CLASS_METADATA, "host mailbox: checksum %#x, computed %#x", stored,
			  md_mbox_checksum(mailbox));
		return -EUCLEAN;
	}
	return 0;
}

void md_mbox_msg_clean(uint8_t ret[MD_MBOX_MSG_SIZE])
{
	memset(ret, 0x01, MD_MBOX_MSG_SIZE);
}

bool md_mbox_msg_is_clean(const uint8_t *msg)
{
	for (size_t i = 0; i < MD_MBOX_MSG_SIZE; i++)
		if (msg[i] != 0x01)
			return false;
	return true;
}

bool md_mbox_msg_is_empty(const uint8_t *msg)
{
	return msg[0] == 0x00;
}

int md_mbox_xtnd_encode(const MdMboxExtend *x, uint8_t ret[MD_MBOX_MSG_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t dom[16], vol[16];
	uint8_t msg[MD_MBOX_MSG_SIZE];

	if (uuid_pack(x->domain, dom) < 0 || uuid_pack(x->volume, vol) < 0)
		return -EINVAL;
	if (x->size_mib > MD_MBOX_XTND_SIZE_MAX)
		return -ERANGE;
	msg[0] = '1';
	memcpy(msg + 1, "xtnd", 4);
	/* The UUID as a 128-bit integer, little-endian: its bytes reversed. */
	for (size_t i = 0; i < 16; i++) {
		msg[XTND_OFF_DOMAIN + i] = dom[15 - i];
		msg[XTND_OFF_VOLUME + i] = vol[15 - i];
	}
	for (size_t i = 0; i < 16; i++)
		msg[XTND_OFF_SIZE + i] = (uint8_t)hex[(x->size_mib >> (4 * (15 - i))) & 0xf];
	memset(msg + XTND_OFF_PAD, '0', MD_MBOX_MSG_SIZE - XTND_OFF_PAD);
	memcpy(ret, msg, sizeof(msg));
	return 0;
}

int md_mbox_xtnd_decode(const uint8_t *msg, MdMboxExtend *ret)
{
	uint8_t dom[16], vol[16];
	uint64_t size = 0;
	MdMboxExtend x;

	if (md_mbox_msg_is_empty(msg))
		return -ENODATA;
	if (msg[0] != '1')
		return unsupported("message version", msg[0]);
	if (memcmp(msg + 1, "xtnd", 4) != 0)
		return -EPROTONOSUPPORT;
	for (size_t i = 0; i < 16; i++) {
		/* VDSM writes "%016x": lowercase only, so a message has one form. */
		char c = (char)msg[XTND_OFF_SIZE + i];
		int v = (c >= 'A' && c <= 'F') ? -1 : hexval(c);

		if (v < 0)
			return corrupt("extend message: size is not hex");
		size = size << 4 | (uint64_t)v;
	}
	if (size > MD_MBOX_XTND_SIZE_MAX)
		return corrupt("extend message: size too large");
	for (size_t i = XTND_OFF_PAD; i < MD_MBOX_MSG_SIZE; i++)
		if (msg[i] != '0')
			return corrupt("extend message: bad padding");
	for (size_t i = 0; i < 16; i++) {
		dom[i] = msg[XTND_OFF_DOMAIN + 15 - i];
		vol[i] = msg[XTND_OFF_VOLUME + 15 - i];
	}
	uuid_unpack(dom, x.domain);
	uuid_unpack(vol, x.volume);
	x.size_mib = size;
	*ret = x;
	return 0;
}

bool md_mbox_xtnd_reply_matches(const uint8_t *request, const uint8_t *reply)
{
	return memcmp(request, reply, XTND_MATCH_LEN) == 0;
}

int md_mbox_event_encode(const uint8_t uuid[16], void *buf, size_t len)
{
	uint8_t *b = buf;

	if (!b || len < MD_MBOX_HOST_MAILBOX_SIZE)
		return -EINVAL;
	memset(b, 0, MD_MBOX_HOST_MAILBOX_SIZE);
	memcpy(b, MD_MBOX_EVENT_MAGIC, 4);
	memcpy(b + 4, uuid, 16);
	return 0;
}

int md_mbox_event_decode(const void *buf, size_t len, uint8_t ret_uuid[16])
{
	const uint8_t *b = buf;

	if (!b || len < MD_MBOX_HOST_MAILBOX_SIZE)
		return -EINVAL;
	if (md_all_zero(b, MD_MBOX_HOST_MAILBOX_SIZE))
		return -ENODATA;
	if (memcmp(b, MD_MBOX_EVENT_MAGIC, 4) != 0)
		return corrupt("event block: bad magic");
	if (!md_all_zero(b + 20, MD_MBOX_HOST_MAILBOX_SIZE - 20))
		return corrupt("event block: bytes after the UUID not zero");
	memcpy(ret_uuid, b + 4, 16);
	return 0;
}

/* ---- typed fields ---- */

typedef enum FieldKind {
	KIND_UUID,
	KIND_NAME,
	KIND_TEXT,   /* UTF-8, no NUL */
	KIND_STRING, /* no NUL */
	KIND_BYTES,
	KIND_U64,
} FieldKind;

typedef struct FieldInfo {
	const char *name;
	FieldKind kind;
	uint16_t min, max; /* length bounds of strings and bytes */
} FieldInfo;

static const FieldInfo field_info[MD_MBOX_F_MAX] = {
	[MD_MBOX_F_DOMAIN] = { "domain", KIND_UUID, UUID_STR_LEN, UUID_STR_LEN },
	[MD_MBOX_F_IMAGE] = { "image", KIND_NAME, 1, NAME_MAX_LEN },
	[MD_MBOX_F_VOLUME] = { "volume", KIND_NAME, 1, NAME_MAX_LEN },
	[MD_MBOX_F_NAME] = { "name", KIND_NAME, 1, NAME_MAX_LEN },
	[MD_MBOX_F_NEW_IMAGE] = { "new-image", KIND_NAME, 1, NAME_MAX_LEN },
	[MD_MBOX_F_PARENT] = { "parent", KIND_NAME, 1, NAME_MAX_LEN },
	[MD_MBOX_F_DESCRIPTION] = { "description", KIND_TEXT, 0, MD_MBOX_DESCRIPTION_MAX },
	[MD_MBOX_F_LEGALITY] = { "legality", KIND_STRING, 1, 32 },
	[MD_MBOX_F_FORMAT] = { "format", KIND_STRING, 1, 32 },
	[MD_MBOX_F_XATTR_KEY] = { "xattr-key", KIND_STRING, 1, MD_MBOX_XATTR_KEY_MAX },
	[MD_MBOX_F_XATTR_VALUE] = { "xattr-value", KIND_BYTES, 0, MD_MBOX_XATTR_VALUE_MAX },
	[MD_MBOX_F_BYTES] = { "bytes", KIND_BYTES, 0, MD_MBOX_BYTES_MAX },
	[MD_MBOX_F_SIZE] = { "size", KIND_U64, 8, 8 },
	[MD_MBOX_F_OFFSET] = { "offset", KIND_U64, 8, 8 },
	[MD_MBOX_F_LENGTH] = { "length", KIND_U64, 8, 8 },
	[MD_MBOX_F_MODE] = { "mode", KIND_U64, 8, 8 },
	[MD_MBOX_F_UID] = { "uid", KIND_U64, 8, 8 },
	[MD_MBOX_F_GID] = { "gid", KIND_U64, 8, 8 },
	[MD_MBOX_F_FLAGS] = { "flags", KIND_U64, 8, 8 },
	[MD_MBOX_F_ATIME_SEC] = { "atime-sec", KIND_U64, 8, 8 },
	[MD_MBOX_F_ATIME_NSEC] = { "atime-nsec", KIND_U64, 8, 8 },
	[MD_MBOX_F_MTIME_SEC] = { "mtime-sec", KIND_U64, 8, 8 },
	[MD_MBOX_F_MTIME_NSEC] = { "mtime-nsec", KIND_U64, 8, 8 },
};

#define F(x) (1u << MD_MBOX_F_##x)

/* Per op: the fields a request must have, and those it may have. */
static const struct {
	const char *name;
	uint32_t required, optional;
} op_fields[MD_MBOX_OP_MAX] = {
	[MD_MBOX_OP_NONE] = { "none", 0, 0 },
	[MD_MBOX_OP_PING] = { "ping", 0, 0 },
	[MD_MBOX_OP_IMG_MKDIR] = { "img-mkdir", F(DOMAIN) | F(IMAGE), F(MODE) | F(UID) | F(GID) },
	[MD_MBOX_OP_IMG_RMDIR] = { "img-rmdir", F(DOMAIN) | F(IMAGE), 0 },
	[MD_MBOX_OP_IMG_RENAME] = { "img-rename", F(DOMAIN) | F(IMAGE) | F(NAME), 0 },
	[MD_MBOX_OP_VOL_CREATE] = { "vol-create", F(DOMAIN) | F(IMAGE) | F(VOLUME),
				    F(SIZE) | F(PARENT) | F(FORMAT) | F(MODE) | F(UID) |
					    F(GID) | F(FLAGS) | F(DESCRIPTION) },
	[MD_MBOX_OP_VOL_UNLINK] = { "vol-unlink", F(DOMAIN) | F(IMAGE) | F(VOLUME), 0 },
	[MD_MBOX_OP_VOL_RENAME] = { "vol-rename", F(DOMAIN) | F(IMAGE) | F(VOLUME) | F(NAME),
				    F(NEW_IMAGE) },
	[MD_MBOX_OP_VOL_LINK] = { "vol-link", F(DOMAIN) | F(IMAGE) | F(VOLUME) | F(NEW_IMAGE),
				  F(NAME) },
	[MD_MBOX_OP_VOL_TRUNCATE] = { "vol-truncate", F(DOMAIN) | F(IMAGE) | F(VOLUME) | F(SIZE),
				      0 },
	[MD_MBOX_OP_VOL_SET_LEGALITY] = { "vol-set-legality",
					  F(DOMAIN) | F(IMAGE) | F(VOLUME) | F(LEGALITY), 0 },
	[MD_MBOX_OP_VOL_SET_DESCRIPTION] = { "vol-set-description",
					     F(DOMAIN) | F(IMAGE) | F(VOLUME) | F(DESCRIPTION),
					     0 },
	[MD_MBOX_OP_IMG_CHMOD] = { "img-chmod", F(DOMAIN) | F(IMAGE) | F(MODE), 0 },
	[MD_MBOX_OP_IMG_CHOWN] = { "img-chown", F(DOMAIN) | F(IMAGE), F(UID) | F(GID) },
	[MD_MBOX_OP_VOL_CHMOD] = { "vol-chmod", F(DOMAIN) | F(IMAGE) | F(VOLUME) | F(MODE), 0 },
	[MD_MBOX_OP_VOL_CHOWN] = { "vol-chown", F(DOMAIN) | F(IMAGE) | F(VOLUME),
				   F(UID) | F(GID) },
	[MD_MBOX_OP_UTIMENS] = { "utimens", F(DOMAIN) | F(IMAGE),
				 F(VOLUME) | F(ATIME_SEC) | F(ATIME_NSEC) | F(MTIME_SEC) |
					 F(MTIME_NSEC) },
	[MD_MBOX_OP_VOL_FALLOCATE] = { "vol-fallocate",
				       F(DOMAIN) | F(IMAGE) | F(VOLUME) | F(OFFSET) | F(LENGTH),
				       F(FLAGS) },
	[MD_MBOX_OP_VOL_QCOW2_HEADER] = { "vol-qcow2-header",
					  F(DOMAIN) | F(IMAGE) | F(VOLUME) | F(BYTES),
					  F(OFFSET) },
	[MD_MBOX_OP_VOL_EXTEND] = { "vol-extend", F(DOMAIN) | F(VOLUME) | F(SIZE), F(IMAGE) },
	[MD_MBOX_OP_SETXATTR] = { "setxattr",
				  F(DOMAIN) | F(IMAGE) | F(XATTR_KEY) | F(XATTR_VALUE),
				  F(VOLUME) | F(FLAGS) },
	[MD_MBOX_OP_REMOVEXATTR] = { "removexattr", F(DOMAIN) | F(IMAGE) | F(XATTR_KEY),
				     F(VOLUME) },
};

#undef F

const char *md_mbox_op_to_string(MdMboxOp op)
{
	return (unsigned)op < MD_MBOX_OP_MAX && op_fields[op].name ? op_fields[op].name
								    : "unknown";
}

const char *md_mbox_field_to_string(MdMboxField field)
{
	return (unsigned)field < MD_MBOX_F_MAX && field_info[field].name
		       ? field_info[field].name
		       : "unknown";
}

static bool field_valid(MdMboxField field)
{
	return field > MD_MBOX_F_NONE && field < MD_MBOX_F_MAX;
}

/* Is p[0..len) an acceptable value of field?  p has no terminating NUL. */
static bool value_valid(const FieldInfo *fi, const char *p, size_t len)
{
	char tmp[NAME_MAX_LEN + 1];

	if (len < fi->min || len > fi->max)
		return false;
	switch (fi->kind) {
	case KIND_UUID:
	case KIND_NAME:
		/* Both are at most NAME_MAX_LEN (>= UUID_STR_LEN) bytes. */
		memcpy(tmp, p, len);
		tmp[len] = '\0';
		if (memchr(p, '\0', len))
			return false;
		return fi->kind == KIND_UUID ? uuid_is_valid(tmp) : name_is_valid(tmp);
	case KIND_TEXT:
		return !memchr(p, '\0', len) && g_utf8_validate(p, (gssize)len, NULL);
	case KIND_STRING:
		return !memchr(p, '\0', len);
	case KIND_BYTES:
	case KIND_U64:
		return true;
	}
	return false;
}

_Static_assert(NAME_MAX_LEN >= UUID_STR_LEN, "value_valid() buffer");

void md_mbox_fields_clear(MdMboxFields *f)
{
	memset(f, 0, sizeof(*f));
}

bool md_mbox_has(const MdMboxFields *f, MdMboxField field)
{
	return field_valid(field) && (f->present & (1u << field));
}

/* Adds a string or bytes value after checks; NUL-terminates it in data. */
static int set_data(MdMboxFields *f, MdMboxField field, const void *p, size_t len)
{
	const FieldInfo *fi;

	if (!field_valid(field))
		return -EINVAL;
	fi = &field_info[field];
	if (fi->kind == KIND_U64 || !value_valid(fi, p, len))
		return -EINVAL;
	if (f->present & (1u << field))
		return -EEXIST;
	if ((size_t)f->encoded + TLV_HEADER + len > MD_MBOX_PAYLOAD_MAX)
		return -E2BIG;
	g_assert((size_t)f->used + len + 1 <= sizeof(f->data));
	if (len)
		memcpy(f->data + f->used, p, len);
	f->data[f->used + len] = '\0';
	f->off[field] = f->used;
	f->len[field] = (uint16_t)len;
	f->used = (uint16_t)(f->used + len + 1);
	f->encoded = (uint16_t)(f->encoded + TLV_HEADER + len);
	f->present |= 1u << field;
	return 0;
}

int md_mbox_set_str(MdMboxFields *f, MdMboxField field, const char *s)
{
	size_t len;

	if (!s)
		return -EINVAL;
	len = strnlen(s, MD_MBOX_PAYLOAD_MAX + 1);
	if (len > MD_MBOX_PAYLOAD_MAX)
		return -E2BIG;
	if (field_valid(field) && field_info[field].kind == KIND_BYTES)
		return -EINVAL;
	return set_data(f, field, s, len);
}

int md_mbox_set_bytes(MdMboxFields *f, MdMboxField field, const void *p, size_t len)
{
	if (!field_valid(field) || field_info[field].kind != KIND_BYTES || (!p && len))
		return -EINVAL;
	return set_data(f, field, p ? p : "", len);
}

int md_mbox_set_u64(MdMboxFields *f, MdMboxField field, uint64_t v)
{
	if (!field_valid(field) || field_info[field].kind != KIND_U64)
		return -EINVAL;
	if (f->present & (1u << field))
		return -EEXIST;
	if ((size_t)f->encoded + TLV_HEADER + 8 > MD_MBOX_PAYLOAD_MAX)
		return -E2BIG;
	f->num[field] = v;
	f->encoded = (uint16_t)(f->encoded + TLV_HEADER + 8);
	f->present |= 1u << field;
	return 0;
}

const char *md_mbox_get_str(const MdMboxFields *f, MdMboxField field)
{
	if (!md_mbox_has(f, field))
		return NULL;
	if (field_info[field].kind == KIND_U64 || field_info[field].kind == KIND_BYTES)
		return NULL;
	return f->data + f->off[field];
}

int md_mbox_get_u64(const MdMboxFields *f, MdMboxField field, uint64_t *ret)
{
	if (!field_valid(field) || field_info[field].kind != KIND_U64)
		return -EINVAL;
	if (!md_mbox_has(f, field))
		return -ENOENT;
	*ret = f->num[field];
	return 0;
}

const void *md_mbox_get_bytes(const MdMboxFields *f, MdMboxField field, size_t *ret_len)
{
	if (!md_mbox_has(f, field) || field_info[field].kind != KIND_BYTES)
		return NULL;
	*ret_len = f->len[field];
	return f->data + f->off[field];
}

/* TLVs in tag order into p (room: MD_MBOX_PAYLOAD_MAX); returns their size. */
static size_t fields_out(const MdMboxFields *f, uint8_t *p)
{
	size_t n = 0;

	for (unsigned t = MD_MBOX_F_NONE + 1; t < MD_MBOX_F_MAX; t++) {
		if (!(f->present & (1u << t)))
			continue;
		md_put_le16(p + n, (uint16_t)t);
		if (field_info[t].kind == KIND_U64) {
			md_put_le16(p + n + 2, 8);
			md_put_le64(p + n + TLV_HEADER, f->num[t]);
			n += TLV_HEADER + 8;
		} else {
			md_put_le16(p + n + 2, f->len[t]);
			memcpy(p + n + TLV_HEADER, f->data + f->off[t], f->len[t]);
			n += TLV_HEADER + f->len[t];
		}
	}
	g_assert(n == f->encoded && n <= MD_MBOX_PAYLOAD_MAX);
	return n;
}

/* Parses p[0..len) into ret; every TLV must lie inside, tags strictly increasing. */
static int fields_in(const uint8_t *p, size_t len, MdMboxFields *ret)
{
	size_t off = 0;
	unsigned prev = MD_MBOX_F_NONE;
	int r;

	md_mbox_fields_clear(ret);
	while (off < len) {
		unsigned tag;
		size_t vlen;

		if (len - off < TLV_HEADER)
			return corrupt("truncated field header");
		tag = md_get_le16(p + off);
		vlen = md_get_le16(p + off + 2);
		if (len - off - TLV_HEADER < vlen)
			return corrupt("field runs past the payload");
		if (tag == MD_MBOX_F_NONE)
			return corrupt("field tag 0");
		if (tag <= prev)
			return corrupt("fields not in tag order or repeated");
		if (tag >= MD_MBOX_F_MAX)
			return unsupported("field tag", tag);
		prev = tag;
		if (field_info[tag].kind == KIND_U64) {
			if (vlen != 8)
				return corrupt("integer field not 8 bytes");
			r = md_mbox_set_u64(ret, (MdMboxField)tag, md_get_le64(p + off + TLV_HEADER));
		} else {
			r = set_data(ret, (MdMboxField)tag, p + off + TLV_HEADER, vlen);
		}
		if (r < 0)
			return corrupt("field value out of bounds");
		off += TLV_HEADER + vlen;
	}
	return 0;
}

/* ---- request and reply records ---- */

typedef struct RecordHeader {
	uint32_t host_id;
	uint64_t seq;
	uint32_t op;
	uint32_t state;
	int32_t result;
	uint64_t lver;
} RecordHeader;

static int record_encode(const char *magic, const RecordHeader *h, const MdMboxFields *f,
			 uint8_t *b)
{
	size_t plen;

	memset(b, 0, MD_MBOX_RECORD_SIZE);
	memcpy(b + OFF_MAGIC, magic, 8);
	md_put_le32(b + OFF_VERSION, MBOX_VERSION);
	md_put_le32(b + OFF_HOST, h->host_id);
	md_put_le64(b + OFF_SEQ, h->seq);
	md_put_le32(b + OFF_OP, h->op);
	md_put_le32(b + OFF_STATE, h->state);
	md_put_le32(b + OFF_RESULT, (uint32_t)h->result);
	md_put_le64(b + OFF_LVER, h->lver);
	plen = fields_out(f, b + MD_MBOX_HEADER_SIZE);
	md_put_le32(b + OFF_PAYLOAD_LEN, (uint32_t)plen);
	md_put_le32(b + OFF_CRC, record_crc(b, OFF_CRC));
	return 0;
}

/* Checks what both record kinds share; the caller checks state, result, lver. */
static int record_decode(const char *magic, const uint8_t *b, size_t len, RecordHeader *ret_h,
			 MdMboxFields *ret_f)
{
	uint32_t version, plen;

	if (!b || len < MD_MBOX_RECORD_SIZE)
		return -EINVAL;
	if (md_all_zero(b, MD_MBOX_RECORD_SIZE))
		return -ENODATA;
	if (memcmp(b + OFF_MAGIC, magic, 8) != 0)
		return corrupt("bad magic");
	version = md_get_le32(b + OFF_VERSION);
	if (version != MBOX_VERSION)
		return unsupported("version", version);
	if (record_crc(b, OFF_CRC) != md_get_le32(b + OFF_CRC))
		return corrupt("bad checksum");
	plen = md_get_le32(b + OFF_PAYLOAD_LEN);
	if (plen > MD_MBOX_PAYLOAD_MAX)
		return corrupt("payload too long");
	if (md_get_le32(b + OFF_RESERVED) != 0)
		return corrupt("reserved field not zero");
	if (!md_all_zero(b + MD_MBOX_HEADER_SIZE + plen, MD_MBOX_PAYLOAD_MAX - plen))
		return corrupt("bytes after the payload not zero");
	ret_h->host_id = md_get_le32(b + OFF_HOST);
	if (ret_h->host_id < 1 || ret_h->host_id > MD_MBOX_MAX_HOST_ID)
		return corrupt("host id out of range");
	ret_h->seq = md_get_le64(b + OFF_SEQ);
	if (ret_h->seq == 0)
		return corrupt("sequence number 0");
	ret_h->op = md_get_le32(b + OFF_OP);
	if (ret_h->op == MD_MBOX_OP_NONE)
		return corrupt("no operation");
	if (ret_h->op >= MD_MBOX_OP_MAX)
		return unsupported("operation", ret_h->op);
	ret_h->state = md_get_le32(b + OFF_STATE);
	ret_h->result = (int32_t)md_get_le32(b + OFF_RESULT);
	ret_h->lver = md_get_le64(b + OFF_LVER);
	return fields_in(b + MD_MBOX_HEADER_SIZE, plen, ret_f);
}

static bool request_fields_ok(MdMboxOp op, uint32_t present)
{
	uint32_t req = op_fields[op].required;

	return (present & req) == req && (present & ~(req | op_fields[op].optional)) == 0;
}

int md_mbox_request_encode(const MdMboxRequest *req, void *buf, size_t len)
{
	RecordHeader h = {
		.host_id = req->host_id,
		.seq = req->seq,
		.op = (uint32_t)req->op,
	};

	if (!buf || len < MD_MBOX_RECORD_SIZE)
		return -EINVAL;
	if (req->host_id < 1 || req->host_id > MD_MBOX_MAX_HOST_ID || req->seq == 0)
		return -EINVAL;
	if (req->op == MD_MBOX_OP_NONE || (unsigned)req->op >= MD_MBOX_OP_MAX)
		return -EINVAL;
	if (!request_fields_ok(req->op, req->fields.present))
		return -EINVAL;
	return record_encode(MD_MBOX_REQUEST_MAGIC, &h, &req->fields, buf);
}

int md_mbox_request_decode(const void *buf, size_t len, MdMboxRequest *ret)
{
	g_autofree MdMboxRequest *req = g_new0(MdMboxRequest, 1);
	RecordHeader h;
	int r;

	r = record_decode(MD_MBOX_REQUEST_MAGIC, buf, len, &h, &req->fields);
	if (r < 0)
		return r;
	if (h.state != 0 || h.result != 0 || h.lver != 0)
		return corrupt("request with reply fields set");
	if (!request_fields_ok((MdMboxOp)h.op, req->fields.present))
		return corrupt("fields do not match the operation");
	req->host_id = h.host_id;
	req->seq = h.seq;
	req->op = (MdMboxOp)h.op;
	memcpy(ret, req, sizeof(*req));
	return 0;
}

int md_mbox_reply_encode(const MdMboxReply *rep, void *buf, size_t len)
{
	RecordHeader h = {
		.host_id = rep->host_id,
		.seq = rep->seq,
		.op = (uint32_t)rep->op,
		.state = (uint32_t)rep->state,
		.result = rep->result,
		.lver = rep->lver,
	};

	if (!buf || len < MD_MBOX_RECORD_SIZE)
		return -EINVAL;
	if (rep->host_id < 1 || rep->host_id > MD_MBOX_MAX_HOST_ID || rep->seq == 0)
		return -EINVAL;
	if (rep->op == MD_MBOX_OP_NONE || (unsigned)rep->op >= MD_MBOX_OP_MAX)
		return -EINVAL;
	if (rep->state == MD_MBOX_REPLY_NONE || (unsigned)rep->state >= MD_MBOX_REPLY_MAX)
		return -EINVAL;
	if (rep->result > 0 || rep->result < RESULT_MIN)
		return -EINVAL;
	if (rep->state != MD_MBOX_REPLY_DONE && (rep->result != 0 || rep->fields.present))
		return -EINVAL;
	return record_encode(MD_MBOX_REPLY_MAGIC, &h, &rep->fields, buf);
}

int md_mbox_reply_decode(const void *buf, size_t len, MdMboxReply *ret)
{
	g_autofree MdMboxReply *rep = g_new0(MdMboxReply, 1);
	RecordHeader h;
	int r;

	r = record_decode(MD_MBOX_REPLY_MAGIC, buf, len, &h, &rep->fields);
	if (r < 0)
		return r;
	if (h.state == MD_MBOX_REPLY_NONE)
		return corrupt("reply without a state");
	if (h.state >= MD_MBOX_REPLY_MAX)
		return unsupported("reply state", h.state);
	if (h.result > 0 || h.result < RESULT_MIN)
		return corrupt("result out of range");
	if (h.state != MD_MBOX_REPLY_DONE && (h.result != 0 || rep->fields.present))
		return corrupt("result or fields in an unfinished reply");
	rep->host_id = h.host_id;
	rep->seq = h.seq;
	rep->op = (MdMboxOp)h.op;
	rep->state = (MdMboxReplyState)h.state;
	rep->result = h.result;
	rep->lver = h.lver;
	memcpy(ret, rep, sizeof(*rep));
	return 0;
}

/* ---- the change log ---- */

void md_mbox_changes_init(MdMboxChangeLog *log, uint32_t spm_host_id, uint64_t lver)
{
	memset(log, 0, sizeof(*log));
	log->spm_host_id = spm_host_id;
	log->lver = lver;
}

int md_mbox_changes_append(MdMboxChangeLog *log, const char *domain, const char *image)
{
	MdMboxChange *e;

	if (!uuid_is_valid(domain) || !image || (*image && !name_is_valid(image)))
		return -EINVAL;
	if (log->seq == UINT64_MAX)
		return -EOVERFLOW;
	if (log->n == MD_MBOX_CHANGES_MAX) {
		memmove(&log->entries[0], &log->entries[1],
			(MD_MBOX_CHANGES_MAX - 1) * sizeof(log->entries[0]));
		log->n--;
	}
	e = &log->entries[log->n++];
	e->seq = ++log->seq;
	memcpy(e->domain, domain, UUID_STR_LEN + 1);
	g_strlcpy(e->image, image, sizeof(e->image));
	return 0;
}

/* Entries consecutive and ending at seq (or none). */
static bool changes_consistent(const MdMboxChangeLog *log)
{
	if (log->n > MD_MBOX_CHANGES_MAX)
		return false;
	if (log->n == 0)
		return true;
	if (log->seq < log->n)
		return false;
	for (uint32_t i = 0; i < log->n; i++)
		if (log->entries[i].seq != log->seq - (log->n - 1 - i))
			return false;
	return true;
}

int md_mbox_changes_encode(const MdMboxChangeLog *log, void *buf, size_t len)
{
	uint8_t *b = buf;

	if (!b || len < MD_MBOX_RECORD_SIZE)
		return -EINVAL;
	if (log->spm_host_id < 1 || log->spm_host_id > MD_MBOX_MAX_HOST_ID)
		return -EINVAL;
	if (!changes_consistent(log))
		return -EINVAL;
	for (uint32_t i = 0; i < log->n; i++) {
		const MdMboxChange *e = &log->entries[i];

		if (!uuid_is_valid(e->domain) || (*e->image && !name_is_valid(e->image)))
			return -EINVAL;
	}
	memset(b, 0, MD_MBOX_RECORD_SIZE);
	memcpy(b + OFF_MAGIC, MD_MBOX_CHANGES_MAGIC, 8);
	md_put_le32(b + OFF_VERSION, MBOX_VERSION);
	md_put_le32(b + CL_OFF_HOST, log->spm_host_id);
	md_put_le64(b + CL_OFF_LVER, log->lver);
	md_put_le64(b + CL_OFF_SEQ, log->seq);
	md_put_le32(b + CL_OFF_COUNT, log->n);
	for (uint32_t i = 0; i < log->n; i++) {
		uint8_t *p = b + CL_HEADER_SIZE + (size_t)i * CL_ENTRY_SIZE;
		const MdMboxChange *e = &log->entries[i];

		md_put_le64(p, e->seq);
		(void)uuid_pack(e->domain, p + CL_ENTRY_DOMAIN);
		memcpy(p + CL_ENTRY_IMAGE, e->image, strlen(e->image));
	}
	md_put_le32(b + CL_OFF_CRC, record_crc(b, CL_OFF_CRC));
	return 0;
}

int md_mbox_changes_decode(const void *buf, size_t len, MdMboxChangeLog *ret)
{
	g_autofree MdMboxChangeLog *log = g_new0(MdMboxChangeLog, 1);
	const uint8_t *b = buf;
	uint32_t version;

	if (!b || len < MD_MBOX_RECORD_SIZE)
		return -EINVAL;
	if (md_all_zero(b, MD_MBOX_RECORD_SIZE))
		return -ENODATA;
	if (memcmp(b + OFF_MAGIC, MD_MBOX_CHANGES_MAGIC, 8) != 0)
		return corrupt("change log: bad magic");
	version = md_get_le32(b + OFF_VERSION);
	if (version != MBOX_VERSION)
		return unsupported("change log version", version);
	if (record_crc(b, CL_OFF_CRC) != md_get_le32(b + CL_OFF_CRC))
		return corrupt("change log: bad checksum");
	if (md_get_le64(b + CL_OFF_RESERVED) != 0)
		return corrupt("change log: reserved field not zero");
	log->spm_host_id = md_get_le32(b + CL_OFF_HOST);
	log->lver = md_get_le64(b + CL_OFF_LVER);
	log->seq = md_get_le64(b + CL_OFF_SEQ);
	log->n = md_get_le32(b + CL_OFF_COUNT);
	if (log->spm_host_id < 1 || log->spm_host_id > MD_MBOX_MAX_HOST_ID)
		return corrupt("change log: host id out of range");
	if (log->n > MD_MBOX_CHANGES_MAX)
		return corrupt("change log: too many entries");
	for (uint32_t i = 0; i < log->n; i++) {
		const uint8_t *p = b + CL_HEADER_SIZE + (size_t)i * CL_ENTRY_SIZE;
		const uint8_t *name = p + CL_ENTRY_IMAGE;
		size_t nlen = strnlen((const char *)name, NAME_MAX_LEN);
		MdMboxChange *e = &log->entries[i];

		e->seq = md_get_le64(p);
		uuid_unpack(p + CL_ENTRY_DOMAIN, e->domain);
		memcpy(e->image, name, nlen);
		e->image[nlen] = '\0';
		if (!md_all_zero(name + nlen, NAME_MAX_LEN - nlen))
			return corrupt("change log: bytes after an image name not zero");
		if (*e->image && !name_is_valid(e->image))
			return corrupt("change log: bad image name");
	}
	if (!changes_consistent(log))
		return corrupt("change log: entries not consecutive up to its seq");
	if (!md_all_zero(b + CL_HEADER_SIZE + (size_t)log->n * CL_ENTRY_SIZE,
		      (size_t)(MD_MBOX_CHANGES_MAX - log->n) * CL_ENTRY_SIZE))
		return corrupt("change log: bytes after the entries not zero");
	memcpy(ret, log, sizeof(*log));
	return 0;
}

int md_mbox_changes_since(const MdMboxChangeLog *log, uint64_t lver, uint64_t since_seq,
			  size_t *ret_first)
{
	uint64_t oldest;

	if (log->lver != lver || since_seq > log->seq)
		return 1;
	if (since_seq == log->seq) {
		*ret_first = log->n;
		return 0;
	}
	/* since_seq < seq: the entries must start at or before since_seq + 1. */
	if (log->n == 0)
		return 1;
	oldest = log->entries[0].seq;
	if (since_seq + 1 < oldest)
		return 1;
	*ret_first = (size_t)(since_seq + 1 - oldest);
	return 0;
}
