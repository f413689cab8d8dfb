/* Unit tests for metadata/md-mailbox.c (docs/mailbox.md, reference section 13). */
#include "metadata/md-mailbox.h"

#include <string.h>
#include <glib.h>

#include "metadata/md-journal.h"
#include "tests/unit/tests.h"

#include "common/banned.h"

#define DOM "00010203-0405-4607-8001-020304050607"
#define VOL "11111111-bbbb-4bbb-8bbb-000000000002"
#define IMG "11111111-aaaa-4aaa-8aaa-000000000001"

/*
 * The extend message of DOM/VOL for 5120 MiB, as VDSM builds it (Python:
 * b"1xtnd" + UUID(d).int.to_bytes(16, "little") + ... + b"%016x" % 5120 +
 * b"0" * 11).  The domain bytes are the reference's example.
 */
static const uint8_t xtnd_vector[64] = {
	/* "1xtnd" */
	0x31, 0x78, 0x74, 0x6e, 0x64,
	/* domain, reversed */
	0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x80,
	0x07, 0x46, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00,
	/* volume, reversed */
	0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xbb, 0x8b,
	0xbb, 0x4b, 0xbb, 0xbb, 0x11, 0x11, 0x11, 0x11,
	/* "0000000000001400" */
	0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30,
	0x30, 0x30, 0x30, 0x30, 0x31, 0x34, 0x30, 0x30,
	/* 11 x '0' */
	0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30,
};

static void test_offsets(void)
{
	ASSERT_EQ(md_mbox_ovirt_offset(0), 0);
	ASSERT_EQ(md_mbox_ovirt_offset(1), 4096);
	ASSERT_EQ(md_mbox_ovirt_offset(250), 1024000);
	ASSERT_TRUE(md_mbox_ovirt_offset(MD_MBOX_OVIRT_MAX_HOST_ID) + 4096 <= 8u << 20);
	ASSERT_EQ(md_mbox_record_offset(0), 8u << 20);
	ASSERT_EQ(md_mbox_record_offset(0), MD_MBOX_CHANGES_OFFSET);
	ASSERT_EQ(md_mbox_record_offset(3), (8u << 20) + 3 * 4096);
	ASSERT_TRUE(md_mbox_record_offset(MD_MBOX_MAX_HOST_ID) + 4096 <= 16u << 20);
}

static void test_xtnd_vector(void)
{
	MdMboxExtend x = { .domain = DOM, .volume = VOL, .size_mib = 5120 };
	MdMboxExtend back = { .size_mib = 0 };
	uint8_t msg[64];

	ASSERT_OK(md_mbox_xtnd_encode(&x, msg));
	ASSERT_MEMEQ(msg, xtnd_vector, 64);
	/* Section 13's example, on its own. */
	ASSERT_MEMEQ(msg + 5,
		     "\x07\x06\x05\x04\x03\x02\x01\x80\x07\x46\x05\x04\x03\x02\x01\x00", 16);
	ASSERT_OK(md_mbox_xtnd_decode(msg, &back));
	ASSERT_STREQ(back.domain, DOM);
	ASSERT_STREQ(back.volume, VOL);
	ASSERT_EQ(back.size_mib, 5120);

	/* Uppercase UUIDs encode the same; decoding gives lowercase. */
	g_strlcpy(x.volume, "11111111-BBBB-4BBB-8BBB-000000000002", sizeof(x.volume));
	ASSERT_OK(md_mbox_xtnd_encode(&x, msg));
	ASSERT_MEMEQ(msg, xtnd_vector, 64);

	/* Limits. */
	x.size_mib = MD_MBOX_XTND_SIZE_MAX;
	ASSERT_OK(md_mbox_xtnd_encode(&x, msg));
	ASSERT_MEMEQ(msg + 37, "00000000ffffffff", 16);
	ASSERT_OK(md_mbox_xtnd_decode(msg, &back));
	ASSERT_EQ(back.size_mib, 0xffffffffu);
	x.size_mib = MD_MBOX_XTND_SIZE_MAX + 1;
	ASSERT_ERROR(md_mbox_xtnd_encode(&x, msg), ERANGE);
	x.size_mib = 0; /* a failure reply */
	ASSERT_OK(md_mbox_xtnd_encode(&x, msg));
	ASSERT_OK(md_mbox_xtnd_decode(msg, &back));
	ASSERT_EQ(back.size_mib, 0);
	g_strlcpy(x.domain, "not-a-uuid", sizeof(x.domain));
	ASSERT_ERROR(md_mbox_xtnd_encode(&x, msg), EINVAL);

	/* A reply matches on bytes 0..36 whatever its size. */
	memcpy(msg, xtnd_vector, 64);
	memcpy(msg + 37, "0000000000000000", 16);
	ASSERT_TRUE(md_mbox_xtnd_reply_matches(xtnd_vector, msg));
	msg[36] ^= 1;
	ASSERT_FALSE(md_mbox_xtnd_reply_matches(xtnd_vector, msg));
}

static void test_xtnd_corrupt(void)
{
	static const struct {
		size_t off;
		const char *bytes;
		int err;
	} cases[] = {
		{ 0, "2", EPROTONOSUPPORT },	   /* message version */
		{ 1, "xtnD", EPROTONOSUPPORT },	   /* message type */
		{ 37, "g", EUCLEAN },		   /* not hex */
		{ 52, "A", EUCLEAN },		   /* uppercase hex: VDSM writes %016x */
		{ 37, "0000000100000000", EUCLEAN }, /* size > 0xffffffff */
		{ 63, "1", EUCLEAN },		   /* padding */
		{ 53, " ", EUCLEAN },
		{ 0, "\0", ENODATA },		   /* empty slot */
	};
	uint8_t clean[64];
	MdMboxExtend back;

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		uint8_t msg[64];

		memcpy(msg, xtnd_vector, 64);
		memcpy(msg + cases[i].off, cases[i].bytes, MAX(strlen(cases[i].bytes), 1));
		fprintf(stderr, "case %zu\n", i);
		ASSERT_ERROR(md_mbox_xtnd_decode(msg, &back), cases[i].err);
	}
	md_mbox_msg_clean(clean);
	ASSERT_ERROR(md_mbox_xtnd_decode(clean, &back), EPROTONOSUPPORT);
}

static void test_clean_empty(void)
{
	uint8_t msg[64];

	md_mbox_msg_clean(msg);
	for (size_t i = 0; i < 64; i++)
		ASSERT_EQ(msg[i], 0x01);
	ASSERT_TRUE(md_mbox_msg_is_clean(msg));
	ASSERT_FALSE(md_mbox_msg_is_empty(msg));
	msg[63] = 0;
	ASSERT_FALSE(md_mbox_msg_is_clean(msg));
	memset(msg, 0, sizeof(msg));
	ASSERT_TRUE(md_mbox_msg_is_empty(msg));
	ASSERT_FALSE(md_mbox_msg_is_empty(xtnd_vector));
	ASSERT_FALSE(md_mbox_msg_is_clean(xtnd_vector));
}

static void test_checksum(void)
{
	uint8_t mb[4096] = { 0 };

	/* All zero: checksum 0 = empty. */
	ASSERT_EQ(md_mbox_checksum(mb), 0);
	ASSERT_ERROR(md_mbox_verify(mb), ENODATA);
	/* Slot 5 a request, slot 6 clean; the sum computed in Python is 0xc44. */
	memcpy(mb + 5 * 64, xtnd_vector, 64);
	md_mbox_msg_clean(mb + 6 * 64);
	ASSERT_EQ(md_mbox_checksum(mb), 0xc44);
	md_mbox_seal(mb);
	ASSERT_MEMEQ(mb + 4092, "\x44\x0c\0\0", 4);
	ASSERT_OK(md_mbox_verify(mb));
	/* The checksum does not cover itself. */
	ASSERT_EQ(md_mbox_checksum(mb), 0xc44);
	mb[100] ^= 0x10;
	ASSERT_ERROR(md_mbox_verify(mb), EUCLEAN);
	mb[100] ^= 0x10;
	mb[4093] ^= 1;
	ASSERT_ERROR(md_mbox_verify(mb), EUCLEAN);
	/* A stored 0 means empty even over content (oVirt). */
	memset(mb + 4092, 0, 4);
	ASSERT_ERROR(md_mbox_verify(mb), ENODATA);
	/* Modulo 2^32: 4092 bytes of 0xff cannot overflow, but the sum is exact. */
	memset(mb, 0xff, 4092);
	ASSERT_EQ(md_mbox_checksum(mb), 4092u * 255u);
}

static void test_event(void)
{
	static const uint8_t uuid[16] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4,
					  5, 6, 7, 8, 9, 10, 11, 12 };
	uint8_t buf[4096];
	uint8_t back[16];

	ASSERT_ERROR(md_mbox_event_encode(uuid, buf, 4095), EINVAL);
	ASSERT_OK(md_mbox_event_encode(uuid, buf, sizeof(buf)));
	ASSERT_MEMEQ(buf, "\0evt", 4);
	ASSERT_MEMEQ(buf + 4, uuid, 16);
	for (size_t i = 20; i < sizeof(buf); i++)
		ASSERT_EQ(buf[i], 0);
	ASSERT_OK(md_mbox_event_decode(buf, sizeof(buf), back));
	ASSERT_MEMEQ(back, uuid, 16);
	buf[4095] = 1;
	ASSERT_ERROR(md_mbox_event_decode(buf, sizeof(buf), back), EUCLEAN);
	buf[4095] = 0;
	buf[1] = 'E';
	ASSERT_ERROR(md_mbox_event_decode(buf, sizeof(buf), back), EUCLEAN);
	memset(buf, 0, sizeof(buf));
	ASSERT_ERROR(md_mbox_event_decode(buf, sizeof(buf), back), ENODATA);
}

/* ---- records ---- */

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Recomputes a record's CRC-32C (whole record, field at crc_off as zero). */
static void reseal(uint8_t *rec, size_t crc_off)
{
	memset(rec + crc_off, 0, 4);
	put32(rec + crc_off, md_crc32c(0, rec, 4096));
}

static void sample_request(MdMboxRequest *req)
{
	memset(req, 0, sizeof(*req));
	req->host_id = 7;
	req->seq = 0x0102030405060708ull;
	req->op = MD_MBOX_OP_VOL_CREATE;
	ASSERT_OK(md_mbox_set_str(&req->fields, MD_MBOX_F_VOLUME, "vol-1"));
	ASSERT_OK(md_mbox_set_str(&req->fields, MD_MBOX_F_DOMAIN, DOM));
	ASSERT_OK(md_mbox_set_str(&req->fields, MD_MBOX_F_IMAGE, IMG));
	ASSERT_OK(md_mbox_set_u64(&req->fields, MD_MBOX_F_SIZE, 1ull << 30));
	ASSERT_OK(md_mbox_set_str(&req->fields, MD_MBOX_F_DESCRIPTION, "d \xd7\x99"));
}

static void test_request_layout(void)
{
	g_autofree MdMboxRequest *req = g_new0(MdMboxRequest, 1);
	g_autofree MdMboxRequest *back = g_new0(MdMboxRequest, 1);
	uint8_t buf[4096];
	uint8_t again[4096];
	size_t off;

	sample_request(req);
	ASSERT_OK(md_mbox_request_encode(req, buf, sizeof(buf)));
	ASSERT_MEMEQ(buf, "OVSMBRQ1", 8);
	ASSERT_MEMEQ(buf + 8, "\x01\0\0\0", 4);
	ASSERT_MEMEQ(buf + 12, "\x07\0\0\0", 4);
	ASSERT_MEMEQ(buf + 16, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
	ASSERT_MEMEQ(buf + 24, "\x05\0\0\0", 4);
	/* Fields in tag order: domain(1) image(2) volume(3) description(7) size(13). */
	ASSERT_EQ(le32(buf + 28), (4 + 36) + (4 + 36) + (4 + 5) + (4 + 4) + (4 + 8));
	for (size_t i = 36; i < 56; i++)
		ASSERT_EQ(buf[i], 0);
	off = 56;
	ASSERT_MEMEQ(buf + off, "\x01\0\x24\0" DOM, 40);
	off += 40;
	ASSERT_MEMEQ(buf + off, "\x02\0\x24\0" IMG, 40);
	off += 40;
	ASSERT_MEMEQ(buf + off, "\x03\0\x05\0vol-1", 9);
	off += 9;
	ASSERT_MEMEQ(buf + off, "\x07\0\x04\0d \xd7\x99", 8);
	off += 8;
	ASSERT_MEMEQ(buf + off, "\x0d\0\x08\0\0\0\0\x40\0\0\0\0", 12);
	off += 12;
	for (size_t i = off; i < sizeof(buf); i++)
		ASSERT_EQ(buf[i], 0);
	/* The CRC covers the whole record with its field as zero. */
	memcpy(again, buf, sizeof(buf));
	memset(again + 32, 0, 4);
	ASSERT_EQ(le32(buf + 32), md_crc32c(0, again, sizeof(again)));

	ASSERT_OK(md_mbox_request_decode(buf, sizeof(buf), back));
	ASSERT_EQ(back->host_id, 7);
	ASSERT_EQ(back->seq, 0x0102030405060708ull);
	ASSERT_EQ(back->op, MD_MBOX_OP_VOL_CREATE);
	ASSERT_STREQ(md_mbox_get_str(&back->fields, MD_MBOX_F_DOMAIN), DOM);
	ASSERT_STREQ(md_mbox_get_str(&back->fields, MD_MBOX_F_IMAGE), IMG);
	ASSERT_STREQ(md_mbox_get_str(&back->fields, MD_MBOX_F_VOLUME), "vol-1");
	ASSERT_STREQ(md_mbox_get_str(&back->fields, MD_MBOX_F_DESCRIPTION), "d \xd7\x99");
	ASSERT_NULL(md_mbox_get_str(&back->fields, MD_MBOX_F_PARENT));
	ASSERT_FALSE(md_mbox_has(&back->fields, MD_MBOX_F_PARENT));
	{
		uint64_t v = 0;

		ASSERT_OK(md_mbox_get_u64(&back->fields, MD_MBOX_F_SIZE, &v));
		ASSERT_EQ(v, 1ull << 30);
		ASSERT_ERROR(md_mbox_get_u64(&back->fields, MD_MBOX_F_MODE, &v), ENOENT);
		ASSERT_ERROR(md_mbox_get_u64(&back->fields, MD_MBOX_F_IMAGE, &v), EINVAL);
	}
	ASSERT_OK(md_mbox_request_encode(back, again, sizeof(again)));
	ASSERT_MEMEQ(buf, again, sizeof(buf));
}

/* A sample value for any field. */
static void set_field(MdMboxFields *f, MdMboxField field)
{
	switch (field) {
	case MD_MBOX_F_DOMAIN:
		ASSERT_OK(md_mbox_set_str(f, field, DOM));
		break;
	case MD_MBOX_F_DESCRIPTION:
		ASSERT_OK(md_mbox_set_str(f, field, ""));
		break;
	case MD_MBOX_F_LEGALITY:
	case MD_MBOX_F_FORMAT:
	case MD_MBOX_F_XATTR_KEY:
		ASSERT_OK(md_mbox_set_str(f, field, "user.x/y z"));
		break;
	case MD_MBOX_F_XATTR_VALUE:
	case MD_MBOX_F_BYTES:
		ASSERT_OK(md_mbox_set_bytes(f, field, "a\0b", 3));
		break;
	case MD_MBOX_F_IMAGE:
	case MD_MBOX_F_VOLUME:
	case MD_MBOX_F_NAME:
	case MD_MBOX_F_NEW_IMAGE:
	case MD_MBOX_F_PARENT:
		ASSERT_OK(md_mbox_set_str(f, field, "n.a_m+e-0"));
		break;
	default:
		ASSERT_OK(md_mbox_set_u64(f, field, (uint64_t)-(int64_t)field));
		break;
	}
}

#define B(x) (1u << MD_MBOX_F_##x)
#define OBJ (B(DOMAIN) | B(IMAGE))
#define VOBJ (OBJ | B(VOLUME))

/* The fields of each op as md-mailbox.h documents them: required, optional. */
static const struct {
	MdMboxOp op;
	uint32_t required, optional;
} op_table[] = {
	{ MD_MBOX_OP_PING, 0, 0 },
	{ MD_MBOX_OP_IMG_MKDIR, OBJ, B(MODE) | B(UID) | B(GID) },
	{ MD_MBOX_OP_IMG_RMDIR, OBJ, 0 },
	{ MD_MBOX_OP_IMG_RENAME, OBJ | B(NAME), 0 },
	{ MD_MBOX_OP_VOL_CREATE, VOBJ,
	  B(SIZE) | B(PARENT) | B(FORMAT) | B(MODE) | B(UID) | B(GID) | B(FLAGS) |
		  B(DESCRIPTION) },
	{ MD_MBOX_OP_VOL_UNLINK, VOBJ, 0 },
	{ MD_MBOX_OP_VOL_RENAME, VOBJ | B(NAME), B(NEW_IMAGE) },
	{ MD_MBOX_OP_VOL_LINK, VOBJ | B(NEW_IMAGE), B(NAME) },
	{ MD_MBOX_OP_VOL_TRUNCATE, VOBJ | B(SIZE), 0 },
	{ MD_MBOX_OP_VOL_SET_LEGALITY, VOBJ | B(LEGALITY), 0 },
	{ MD_MBOX_OP_VOL_SET_DESCRIPTION, VOBJ | B(DESCRIPTION), 0 },
	{ MD_MBOX_OP_IMG_CHMOD, OBJ | B(MODE), 0 },
	{ MD_MBOX_OP_IMG_CHOWN, OBJ, B(UID) | B(GID) },
	{ MD_MBOX_OP_VOL_CHMOD, VOBJ | B(MODE), 0 },
	{ MD_MBOX_OP_VOL_CHOWN, VOBJ, B(UID) | B(GID) },
	{ MD_MBOX_OP_UTIMENS, OBJ,
	  B(VOLUME) | B(ATIME_SEC) | B(ATIME_NSEC) | B(MTIME_SEC) | B(MTIME_NSEC) },
	{ MD_MBOX_OP_VOL_FALLOCATE, VOBJ | B(OFFSET) | B(LENGTH), B(FLAGS) },
	{ MD_MBOX_OP_VOL_QCOW2_HEADER, VOBJ | B(BYTES), B(OFFSET) },
	{ MD_MBOX_OP_VOL_EXTEND, B(DOMAIN) | B(VOLUME) | B(SIZE), B(IMAGE) },
	{ MD_MBOX_OP_SETXATTR, OBJ | B(XATTR_KEY) | B(XATTR_VALUE), B(VOLUME) | B(FLAGS) },
	{ MD_MBOX_OP_REMOVEXATTR, OBJ | B(XATTR_KEY), B(VOLUME) },
};

static void build(MdMboxRequest *req, MdMboxOp op, uint32_t fields)
{
	memset(req, 0, sizeof(*req));
	req->host_id = MD_MBOX_MAX_HOST_ID;
	req->seq = UINT64_MAX;
	req->op = op;
	for (unsigned f = 1; f < MD_MBOX_F_MAX; f++)
		if (fields & (1u << f))
			set_field(&req->fields, f);
}

static void test_request_every_op(void)
{
	g_autofree MdMboxRequest *req = g_new0(MdMboxRequest, 1);
	g_autofree MdMboxRequest *back = g_new0(MdMboxRequest, 1);
	uint8_t buf[4096], again[4096];

	ASSERT_EQ(G_N_ELEMENTS(op_table), MD_MBOX_OP_MAX - 1);
	for (size_t i = 0; i < G_N_ELEMENTS(op_table); i++) {
		uint32_t req_f = op_table[i].required, opt_f = op_table[i].optional;
		MdMboxOp op = op_table[i].op;

		fprintf(stderr, "op %s\n", md_mbox_op_to_string(op));
		ASSERT_EQ(op, i + 1);
		/* Required only, and with every optional field: both round-trip. */
		for (int all = 0; all < 2; all++) {
			build(req, op, req_f | (all ? opt_f : 0));
			ASSERT_OK(md_mbox_request_encode(req, buf, sizeof(buf)));
			ASSERT_OK(md_mbox_request_decode(buf, sizeof(buf), back));
			ASSERT_EQ(back->op, op);
			ASSERT_EQ(back->fields.present, req->fields.present);
			ASSERT_OK(md_mbox_request_encode(back, again, sizeof(again)));
			ASSERT_MEMEQ(buf, again, sizeof(buf));
		}
		for (unsigned f = 1; f < MD_MBOX_F_MAX; f++) {
			uint32_t bit = 1u << f;

			if (req_f & bit) {
				/* A missing required field. */
				build(req, op, (req_f | opt_f) & ~bit);
				ASSERT_ERROR(md_mbox_request_encode(req, buf, sizeof(buf)), EINVAL);
			} else if (!(opt_f & bit)) {
				/* A field the op does not take. */
				build(req, op, req_f | bit);
				ASSERT_ERROR(md_mbox_request_encode(req, buf, sizeof(buf)), EINVAL);
			}
		}
	}
}

#undef OBJ
#undef VOBJ
#undef B

static void test_setters(void)
{
	g_autofree MdMboxFields *f = g_new0(MdMboxFields, 1);
	g_autofree char *big = g_malloc0(MD_MBOX_BYTES_MAX + 2);
	char name[NAME_MAX_LEN + 2];
	size_t len = 0;

	ASSERT_OK(md_mbox_set_str(f, MD_MBOX_F_IMAGE, "img"));
	ASSERT_ERROR(md_mbox_set_str(f, MD_MBOX_F_IMAGE, "img2"), EEXIST);
	ASSERT_ERROR(md_mbox_set_u64(f, MD_MBOX_F_IMAGE, 1), EINVAL);
	ASSERT_ERROR(md_mbox_set_str(f, MD_MBOX_F_SIZE, "1"), EINVAL);
	ASSERT_ERROR(md_mbox_set_str(f, MD_MBOX_F_BYTES, "1"), EINVAL);
	ASSERT_ERROR(md_mbox_set_bytes(f, MD_MBOX_F_NAME, "1", 1), EINVAL);
	ASSERT_ERROR(md_mbox_set_str(f, MD_MBOX_F_NONE, "x"), EINVAL);
	ASSERT_ERROR(md_mbox_set_str(f, MD_MBOX_F_MAX, "x"), EINVAL);
	ASSERT_ERROR(md_mbox_set_u64(f, MD_MBOX_F_MAX, 1), EINVAL);
	/* Names: name_is_valid(), so no '/', no leading '.', at most 64 bytes. */
	ASSERT_ERROR(md_mbox_set_str(f, MD_MBOX_F_VOLUME, "a/b"), EINVAL);
	ASSERT_ERROR(md_mbox_set_str(f, MD_MBOX_F_VOLUME, ".."), EINVAL);
	ASSERT_ERROR(md_mbox_set_str(f, MD_MBOX_F_VOLUME, ""), EINVAL);
	memset(name, 'v', sizeof(name));
	name[NAME_MAX_LEN + 1] = '\0';
	ASSERT_ERROR(md_mbox_set_str(f, MD_MBOX_F_VOLUME, name), EINVAL);
	name[NAME_MAX_LEN] = '\0';
	ASSERT_OK(md_mbox_set_str(f, MD_MBOX_F_VOLUME, name));
	/* Domains: lowercase UUIDs only. */
	ASSERT_ERROR(md_mbox_set_str(f, MD_MBOX_F_DOMAIN, "00010203-0405-4607-8001-02030405060A"),
		     EINVAL);
	ASSERT_ERROR(md_mbox_set_str(f, MD_MBOX_F_DESCRIPTION, "bad \xff utf-8"), EINVAL);
	/* Bounds of bytes fields. */
	ASSERT_ERROR(md_mbox_set_bytes(f, MD_MBOX_F_XATTR_VALUE, big, MD_MBOX_XATTR_VALUE_MAX + 1),
		     EINVAL);
	ASSERT_ERROR(md_mbox_set_bytes(f, MD_MBOX_F_BYTES, big, MD_MBOX_BYTES_MAX + 1), EINVAL);
	ASSERT_OK(md_mbox_set_bytes(f, MD_MBOX_F_BYTES, big, MD_MBOX_BYTES_MAX));
	ASSERT_NOT_NULL(md_mbox_get_bytes(f, MD_MBOX_F_BYTES, &len));
	ASSERT_EQ(len, MD_MBOX_BYTES_MAX);
	/* 3072 + 1024 does not fit in one record with the rest. */
	ASSERT_ERROR(md_mbox_set_bytes(f, MD_MBOX_F_XATTR_VALUE, big, MD_MBOX_XATTR_VALUE_MAX),
		     E2BIG);
	ASSERT_FALSE(md_mbox_has(f, MD_MBOX_F_XATTR_VALUE));
	ASSERT_OK(md_mbox_set_bytes(f, MD_MBOX_F_XATTR_VALUE, big, 500));
	ASSERT_NULL(md_mbox_get_bytes(f, MD_MBOX_F_IMAGE, &len));
	ASSERT_NULL(md_mbox_get_str(f, MD_MBOX_F_BYTES));
	md_mbox_fields_clear(f);
	ASSERT_FALSE(md_mbox_has(f, MD_MBOX_F_IMAGE));
	ASSERT_STREQ(md_mbox_op_to_string(MD_MBOX_OP_VOL_EXTEND), "vol-extend");
	ASSERT_STREQ(md_mbox_op_to_string(MD_MBOX_OP_MAX), "unknown");
	ASSERT_STREQ(md_mbox_field_to_string(MD_MBOX_F_XATTR_KEY), "xattr-key");
}

static void encode_sample(uint8_t *buf)
{
	g_autofree MdMboxRequest *req = g_new0(MdMboxRequest, 1);

	sample_request(req);
	ASSERT_OK(md_mbox_request_encode(req, buf, 4096));
}

/* The payload starts at 56; the sample's TLVs in order (see test_request_layout). */
#define TLV_DOMAIN 56
#define TLV_IMAGE (TLV_DOMAIN + 40)
#define TLV_VOLUME (TLV_IMAGE + 40)
#define TLV_DESC (TLV_VOLUME + 9)
#define TLV_SIZE (TLV_DESC + 8)
#define SAMPLE_PLEN (TLV_SIZE + 12 - 56)

static void test_request_corrupt(void)
{
	g_autofree MdMboxRequest *back = g_new0(MdMboxRequest, 1);
	uint8_t good[4096], buf[4096];

	encode_sample(good);
	ASSERT_EQ(le32(good + 28), SAMPLE_PLEN);
	ASSERT_OK(md_mbox_request_decode(good, sizeof(good), back));

	/* Short buffer, free record. */
	ASSERT_ERROR(md_mbox_request_decode(good, 4095, back), EINVAL);
	memset(buf, 0, sizeof(buf));
	ASSERT_ERROR(md_mbox_request_decode(buf, sizeof(buf), back), ENODATA);

	/* Any flipped byte fails the CRC (or, in the CRC itself, its check). */
	for (size_t i = 0; i < sizeof(buf); i += 97) {
		memcpy(buf, good, sizeof(buf));
		buf[i] ^= 0x20;
		ASSERT_TRUE(md_mbox_request_decode(buf, sizeof(buf), back) < 0);
	}
	memcpy(buf, good, sizeof(buf));
	buf[33] ^= 1;
	ASSERT_ERROR(md_mbox_request_decode(buf, sizeof(buf), back), EUCLEAN);
	memcpy(buf, good, sizeof(buf));
	buf[4095] = 1;
	ASSERT_ERROR(md_mbox_request_decode(buf, sizeof(buf), back), EUCLEAN);

	/* Bad magic, even resealed; a reply is not a request. */
	memcpy(buf, good, sizeof(buf));
	memcpy(buf, "OVSMBRP1", 8);
	reseal(buf, 32);
	ASSERT_ERROR(md_mbox_request_decode(buf, sizeof(buf), back), EUCLEAN);
	/* Newer version. */
	memcpy(buf, good, sizeof(buf));
	buf[8] = 2;
	reseal(buf, 32);
	ASSERT_ERROR(md_mbox_request_decode(buf, sizeof(buf), back), EPROTONOSUPPORT);

	/* Everything below is resealed: the decoder's own checks. */
	static const struct {
		const char *what;
		size_t off;
		uint32_t v;
		int err;
	} hdr[] = {
		{ "host 0", 12, 0, EUCLEAN },
		{ "host 2001", 12, 2001, EUCLEAN },
		{ "seq 0", 16, 0, EUCLEAN },
		{ "op 0", 24, 0, EUCLEAN },
		{ "op unknown", 24, MD_MBOX_OP_MAX, EPROTONOSUPPORT },
		{ "op ping with fields", 24, MD_MBOX_OP_PING, EUCLEAN },
		{ "op missing a field", 24, MD_MBOX_OP_VOL_TRUNCATE, EUCLEAN },
		{ "payload too long", 28, MD_MBOX_PAYLOAD_MAX + 1, EUCLEAN },
		{ "payload longer", 28, SAMPLE_PLEN + 1, EUCLEAN },
		{ "payload shorter (zero after it is not)", 28, SAMPLE_PLEN - 1, EUCLEAN },
		{ "payload cut inside a TLV header", 28, SAMPLE_PLEN - 10, EUCLEAN },
		{ "state in a request", 36, 2, EUCLEAN },
		{ "result in a request", 40, (uint32_t)-5, EUCLEAN },
		{ "reserved", 44, 1, EUCLEAN },
		{ "lver in a request", 48, 1, EUCLEAN },
		{ "tag 0", TLV_DOMAIN, 0x00240000, EUCLEAN },
		{ "tags out of order", TLV_IMAGE, 0x00240001, EUCLEAN },
		{ "unknown tag", TLV_SIZE, 0x00080000 | 99, EPROTONOSUPPORT },
		{ "TLV past the payload", TLV_SIZE, 0x00090000 | MD_MBOX_F_SIZE, EUCLEAN },
		{ "integer of 7 bytes", TLV_SIZE, 0x00070000 | MD_MBOX_F_SIZE, EUCLEAN },
		{ "domain of 35 bytes", TLV_DOMAIN, 0x00230000 | MD_MBOX_F_DOMAIN, EUCLEAN },
		{ "oversized field", TLV_VOLUME, 0x0ff00000 | MD_MBOX_F_VOLUME, EUCLEAN },
		{ "name with '/'", TLV_VOLUME + 4, '/' | 'o' << 8 | 'l' << 16 | '-' << 24,
		  EUCLEAN },
		{ "name with NUL", TLV_VOLUME + 4, 'v' | 'o' << 8 | 0 << 16 | '-' << 24, EUCLEAN },
		{ "description not UTF-8", TLV_DESC + 4, 'd' | ' ' << 8 | 0xd7u << 16 | 0x20u << 24,
		  EUCLEAN },
		{ "uppercase domain", TLV_DOMAIN + 4, 0x30303041, EUCLEAN },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(hdr); i++) {
		fprintf(stderr, "case %s\n", hdr[i].what);
		memcpy(buf, good, sizeof(buf));
		put32(buf + hdr[i].off, hdr[i].v);
		if (hdr[i].off == 16)
			put32(buf + 20, 0); /* all of the 64-bit seq */
		reseal(buf, 32);
		ASSERT_ERROR(md_mbox_request_decode(buf, sizeof(buf), back), hdr[i].err);
	}
	/* Oversized field inside the payload: a 1025-byte description, by hand. */
	for (size_t dlen = 1024; dlen <= 1025; dlen++) {
		size_t off = 56;

		memset(buf, 0, sizeof(buf));
		memcpy(buf, "OVSMBRQ1\x01\0\0\0\x01\0\0\0\x01\0\0\0\0\0\0\0", 24);
		put32(buf + 24, MD_MBOX_OP_VOL_SET_DESCRIPTION);
		memcpy(buf + off, "\x01\0\x24\0" DOM, 40);
		off += 40;
		memcpy(buf + off, "\x02\0\x01\0i", 5);
		off += 5;
		memcpy(buf + off, "\x03\0\x01\0v", 5);
		off += 5;
		put32(buf + off, MD_MBOX_F_DESCRIPTION | (uint32_t)dlen << 16);
		memset(buf + off + 4, 'd', dlen);
		off += 4 + dlen;
		put32(buf + 28, (uint32_t)(off - 56));
		reseal(buf, 32);
		if (dlen == 1024)
			ASSERT_OK(md_mbox_request_decode(buf, sizeof(buf), back));
		else
			ASSERT_ERROR(md_mbox_request_decode(buf, sizeof(buf), back), EUCLEAN);
	}
	/* A truncated TLV: the payload ends two bytes into the last field's header. */
	memcpy(buf, good, sizeof(buf));
	memset(buf + TLV_SIZE + 2, 0, 10);
	put32(buf + 28, TLV_SIZE + 2 - 56);
	reseal(buf, 32);
	ASSERT_ERROR(md_mbox_request_decode(buf, sizeof(buf), back), EUCLEAN);
	/* A repeated field. */
	memcpy(buf, good, sizeof(buf));
	memcpy(buf + TLV_IMAGE, buf + TLV_DOMAIN, 40);
	reseal(buf, 32);
	ASSERT_ERROR(md_mbox_request_decode(buf, sizeof(buf), back), EUCLEAN);
	/* The decoder wrote nothing on failure. */
	memset(back, 0xa5, sizeof(*back));
	ASSERT_ERROR(md_mbox_request_decode(buf, sizeof(buf), back), EUCLEAN);
	ASSERT_EQ(back->host_id, 0xa5a5a5a5u);
	/* Encoder refusals. */
	{
		g_autofree MdMboxRequest *req = g_new0(MdMboxRequest, 1);

		sample_request(req);
		ASSERT_ERROR(md_mbox_request_encode(req, buf, 4095), EINVAL);
		req->seq = 0;
		ASSERT_ERROR(md_mbox_request_encode(req, buf, sizeof(buf)), EINVAL);
		req->seq = 1;
		req->host_id = 0;
		ASSERT_ERROR(md_mbox_request_encode(req, buf, sizeof(buf)), EINVAL);
		req->host_id = 1;
		req->op = MD_MBOX_OP_MAX;
		ASSERT_ERROR(md_mbox_request_encode(req, buf, sizeof(buf)), EINVAL);
	}
}

static void test_reply(void)
{
	g_autofree MdMboxReply *rep = g_new0(MdMboxReply, 1);
	g_autofree MdMboxReply *back = g_new0(MdMboxReply, 1);
	g_autofree MdMboxRequest *req = g_new0(MdMboxRequest, 1);
	uint8_t buf[4096], again[4096];

	rep->host_id = 12;
	rep->seq = 99;
	rep->op = MD_MBOX_OP_VOL_TRUNCATE;
	rep->state = MD_MBOX_REPLY_DONE;
	rep->result = -ENOSPC;
	rep->lver = 0x1122334455667788ull;
	ASSERT_OK(md_mbox_set_u64(&rep->fields, MD_MBOX_F_SIZE, 4096));
	ASSERT_OK(md_mbox_reply_encode(rep, buf, sizeof(buf)));
	ASSERT_MEMEQ(buf, "OVSMBRP1", 8);
	ASSERT_MEMEQ(buf + 36, "\x02\0\0\0\xe4\xff\xff\xff\0\0\0\0", 12);
	ASSERT_MEMEQ(buf + 48, "\x88\x77\x66\x55\x44\x33\x22\x11", 8);
	ASSERT_OK(md_mbox_reply_decode(buf, sizeof(buf), back));
	ASSERT_EQ(back->host_id, 12);
	ASSERT_EQ(back->seq, 99);
	ASSERT_EQ(back->op, MD_MBOX_OP_VOL_TRUNCATE);
	ASSERT_EQ(back->state, MD_MBOX_REPLY_DONE);
	ASSERT_EQ(back->result, -ENOSPC);
	ASSERT_EQ(back->lver, 0x1122334455667788ull);
	ASSERT_OK(md_mbox_reply_encode(back, again, sizeof(again)));
	ASSERT_MEMEQ(buf, again, sizeof(buf));
	/* A reply is not a request. */
	ASSERT_ERROR(md_mbox_request_decode(buf, sizeof(buf), req), EUCLEAN);

	/* Accepted and withdrawn carry neither result nor fields. */
	ASSERT_OK(md_mbox_reply_decode(buf, sizeof(buf), back));
	back->state = MD_MBOX_REPLY_ACCEPTED;
	ASSERT_ERROR(md_mbox_reply_encode(back, again, sizeof(again)), EINVAL);
	back->result = 0;
	ASSERT_ERROR(md_mbox_reply_encode(back, again, sizeof(again)), EINVAL);
	md_mbox_fields_clear(&back->fields);
	ASSERT_OK(md_mbox_reply_encode(back, again, sizeof(again)));
	back->state = MD_MBOX_REPLY_WITHDRAWN;
	ASSERT_OK(md_mbox_reply_encode(back, again, sizeof(again)));
	ASSERT_OK(md_mbox_reply_decode(again, sizeof(again), rep));
	ASSERT_EQ(rep->state, MD_MBOX_REPLY_WITHDRAWN);
	back->state = MD_MBOX_REPLY_NONE;
	ASSERT_ERROR(md_mbox_reply_encode(back, again, sizeof(again)), EINVAL);
	back->state = MD_MBOX_REPLY_DONE;
	back->result = 1;
	ASSERT_ERROR(md_mbox_reply_encode(back, again, sizeof(again)), EINVAL);
	back->result = -4096;
	ASSERT_ERROR(md_mbox_reply_encode(back, again, sizeof(again)), EINVAL);
	back->result = -4095;
	ASSERT_OK(md_mbox_reply_encode(back, again, sizeof(again)));

	/* Decoder side of the same, resealed. */
	static const struct {
		size_t off;
		uint32_t v;
		int err;
	} cases[] = {
		{ 36, 0, EUCLEAN },
		{ 36, MD_MBOX_REPLY_MAX, EPROTONOSUPPORT },
		{ 36, MD_MBOX_REPLY_ACCEPTED, EUCLEAN }, /* with result and fields */
		{ 40, 1, EUCLEAN },
		{ 40, (uint32_t)-4096, EUCLEAN },
		{ 0, 0x4d53564f, EUCLEAN },		/* request magic "OVSM" + "BRQ1" */
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		memcpy(again, buf, sizeof(buf));
		put32(again + cases[i].off, cases[i].v);
		if (i == G_N_ELEMENTS(cases) - 1)
			memcpy(again, "OVSMBRQ1", 8);
		reseal(again, 32);
		fprintf(stderr, "case %zu\n", i);
		ASSERT_ERROR(md_mbox_reply_decode(again, sizeof(again), back), cases[i].err);
	}
	memcpy(again, buf, sizeof(buf));
	again[60] ^= 1;
	ASSERT_ERROR(md_mbox_reply_decode(again, sizeof(again), back), EUCLEAN);
}

static void test_changes(void)
{
	g_autofree MdMboxChangeLog *log = g_new0(MdMboxChangeLog, 1);
	g_autofree MdMboxChangeLog *back = g_new0(MdMboxChangeLog, 1);
	uint8_t buf[4096], again[4096];
	size_t first = 999;

	md_mbox_changes_init(log, 3, 17);
	ASSERT_OK(md_mbox_changes_encode(log, buf, sizeof(buf)));
	ASSERT_MEMEQ(buf, "OVSMBCL1\x01\0\0\0\x03\0\0\0\x11\0\0\0\0\0\0\0", 20);
	ASSERT_OK(md_mbox_changes_decode(buf, sizeof(buf), back));
	ASSERT_EQ(back->n, 0);
	ASSERT_EQ(back->seq, 0);
	ASSERT_EQ(md_mbox_changes_since(back, 17, 0, &first), 0);
	ASSERT_EQ(first, 0);
	ASSERT_EQ(md_mbox_changes_since(back, 16, 0, &first), 1);

	ASSERT_OK(md_mbox_changes_append(log, DOM, IMG));
	ASSERT_OK(md_mbox_changes_append(log, DOM, ""));
	ASSERT_ERROR(md_mbox_changes_append(log, DOM, "a/b"), EINVAL);
	ASSERT_ERROR(md_mbox_changes_append(log, "x", "a"), EINVAL);
	ASSERT_EQ(log->n, 2);
	ASSERT_EQ(log->seq, 2);
	ASSERT_OK(md_mbox_changes_encode(log, buf, sizeof(buf)));
	/* Entry 0 at 48: seq, the domain in RFC 4122 order, the name NUL-padded. */
	ASSERT_MEMEQ(buf + 48, "\x01\0\0\0\0\0\0\0", 8);
	ASSERT_MEMEQ(buf + 56, "\x00\x01\x02\x03\x04\x05\x46\x07\x80\x01\x02\x03\x04\x05\x06\x07",
		     16);
	ASSERT_MEMEQ(buf + 72, IMG, 36);
	ASSERT_EQ(buf[72 + 36], 0);
	ASSERT_MEMEQ(buf + 136, "\x02\0\0\0\0\0\0\0", 8);
	ASSERT_EQ(buf[136 + 24], 0);
	ASSERT_OK(md_mbox_changes_decode(buf, sizeof(buf), back));
	ASSERT_EQ(back->n, 2);
	ASSERT_STREQ(back->entries[0].domain, DOM);
	ASSERT_STREQ(back->entries[0].image, IMG);
	ASSERT_STREQ(back->entries[1].image, "");
	ASSERT_OK(md_mbox_changes_encode(back, again, sizeof(again)));
	ASSERT_MEMEQ(buf, again, sizeof(buf));

	/* Since: up to date, one behind, another term, ahead. */
	ASSERT_EQ(md_mbox_changes_since(back, 17, 2, &first), 0);
	ASSERT_EQ(first, 2);
	ASSERT_EQ(md_mbox_changes_since(back, 17, 1, &first), 0);
	ASSERT_EQ(first, 1);
	ASSERT_EQ(md_mbox_changes_since(back, 17, 0, &first), 0);
	ASSERT_EQ(first, 0);
	ASSERT_EQ(md_mbox_changes_since(back, 18, 2, &first), 1);
	ASSERT_EQ(md_mbox_changes_since(back, 17, 3, &first), 1);

	/* The ring keeps the newest MD_MBOX_CHANGES_MAX. */
	for (int i = 0; i < 60; i++)
		ASSERT_OK(md_mbox_changes_append(log, DOM, i % 2 ? "x" : IMG));
	ASSERT_EQ(log->n, MD_MBOX_CHANGES_MAX);
	ASSERT_EQ(log->seq, 62);
	ASSERT_EQ(log->entries[0].seq, 62 - MD_MBOX_CHANGES_MAX + 1);
	ASSERT_OK(md_mbox_changes_encode(log, buf, sizeof(buf)));
	ASSERT_OK(md_mbox_changes_decode(buf, sizeof(buf), back));
	ASSERT_EQ(back->n, MD_MBOX_CHANGES_MAX);
	ASSERT_EQ(md_mbox_changes_since(back, 17, 62 - MD_MBOX_CHANGES_MAX, &first), 0);
	ASSERT_EQ(first, 0);
	ASSERT_EQ(md_mbox_changes_since(back, 17, 62 - MD_MBOX_CHANGES_MAX - 1, &first), 1);
	ASSERT_EQ(md_mbox_changes_since(back, 17, 60, &first), 0);
	ASSERT_EQ(first, MD_MBOX_CHANGES_MAX - 2);

	/* Corruption. */
	ASSERT_ERROR(md_mbox_changes_decode(buf, 100, back), EINVAL);
	memcpy(again, buf, sizeof(buf));
	again[500] ^= 1;
	ASSERT_ERROR(md_mbox_changes_decode(again, sizeof(again), back), EUCLEAN);
	static const struct {
		size_t off;
		uint32_t v;
		int err;
	} cases[] = {
		{ 8, 2, EPROTONOSUPPORT },
		{ 12, 0, EUCLEAN },		     /* host id */
		{ 24, 61, EUCLEAN },		     /* seq not the last entry's */
		{ 32, MD_MBOX_CHANGES_MAX + 1, EUCLEAN }, /* count */
		{ 32, 3, EUCLEAN },		     /* entries left after the count */
		{ 40, 1, EUCLEAN },		     /* reserved */
		{ 48, 1, EUCLEAN },		     /* first entry's seq */
		{ 48 + 24, '.', EUCLEAN },	     /* bad name */
		{ 48 + 24 + 36, 'x', EUCLEAN },	     /* garbage after the name's NUL */
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		memcpy(again, buf, sizeof(buf));
		put32(again + cases[i].off, cases[i].v);
		if (cases[i].off == 48 + 24 + 36) {
			again[48 + 24 + 36] = 0;
			again[48 + 24 + 40] = 'x';
		}
		reseal(again, 36);
		fprintf(stderr, "case %zu\n", i);
		ASSERT_ERROR(md_mbox_changes_decode(again, sizeof(again), back), cases[i].err);
	}
	memset(again, 0, sizeof(again));
	ASSERT_ERROR(md_mbox_changes_decode(again, sizeof(again), back), ENODATA);
	/* Encoder refusals. */
	log->entries[3].seq++;
	ASSERT_ERROR(md_mbox_changes_encode(log, buf, sizeof(buf)), EINVAL);
	log->entries[3].seq--;
	log->spm_host_id = 0;
	ASSERT_ERROR(md_mbox_changes_encode(log, buf, sizeof(buf)), EINVAL);
}

int main(void)
{
	TEST_RUN(test_offsets);
	TEST_RUN(test_xtnd_vector);
	TEST_RUN(test_xtnd_corrupt);
	TEST_RUN(test_clean_empty);
	TEST_RUN(test_checksum);
	TEST_RUN(test_event);
	TEST_RUN(test_request_layout);
	TEST_RUN(test_request_every_op);
	TEST_RUN(test_setters);
	TEST_RUN(test_request_corrupt);
	TEST_RUN(test_reply);
	TEST_RUN(test_changes);
	return 0;
}
