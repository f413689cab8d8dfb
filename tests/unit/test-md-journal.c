/* Unit tests for metadata/md-journal.c (docs/journal.md). */
#include "metadata/md-journal.h"

#include <string.h>
#include <glib.h>

#include "tests/unit/tests.h"

#include "common/banned.h"

/* Bit-at-a-time CRC-32C without inversions: the textbook definition. */
static uint32_t crc32c_bitwise(uint32_t reg, const uint8_t *p, size_t len)
{
	while (len--) {
		reg ^= *p++;
		for (int i = 0; i < 8; i++)
			reg = (reg >> 1) ^ (0x82f63b78u & (0u - (reg & 1)));
	}
	return reg;
}

static void test_crc32c(void)
{
	static const char check[] = "123456789";
	uint8_t zeros[32] = { 0 };
	uint8_t ones[32];
	uint8_t buf[1000];

	ASSERT_EQ(md_crc32c(0, check, 9), 0xe3069283u);
	ASSERT_EQ(md_crc32c(0, NULL, 0), 0);
	/* RFC 3720 B.4 iSCSI test vectors. */
	memset(ones, 0xff, sizeof(ones));
	ASSERT_EQ(md_crc32c(0, zeros, sizeof(zeros)), 0x8a9136aau);
	ASSERT_EQ(md_crc32c(0, ones, sizeof(ones)), 0x62a8ab43u);

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	/* Chaining equals one pass. */
	ASSERT_EQ(md_crc32c(md_crc32c(0, buf, 333), buf + 333, sizeof(buf) - 333),
		  md_crc32c(0, buf, sizeof(buf)));
	ASSERT_EQ(md_crc32c(0, buf, sizeof(buf)), ~crc32c_bitwise(~0u, buf, sizeof(buf)));
	/* Sanlock's convention (seed 0xfffffffe, no final xor), as documented. */
	ASSERT_EQ(~md_crc32c(1, buf, 168), crc32c_bitwise(0xfffffffeu, buf, 168));
}

static const char sample_payload[] = "desc= spaced = \xd7\x99 \n"
				    "img=11111111-aaaa-4aaa-8aaa-000000000001\n"
				    "vol=11111111-bbbb-4bbb-8bbb-000000000001\n";
#define SAMPLE_PAYLOAD_LEN (sizeof(sample_payload) - 1)

static MdJournalRecord sample(void)
{
	MdJournalRecord rec = {
		.op = MD_JOURNAL_OP_VOL_CREATE,
		.seq = 0x0102030405060708ull,
		.time = 1795500815,
		.step = 3,
		.args = md_kv_new(),
	};

	md_kv_set(rec.args, "vol", "11111111-bbbb-4bbb-8bbb-000000000001");
	md_kv_set(rec.args, "img", "11111111-aaaa-4aaa-8aaa-000000000001");
	md_kv_set(rec.args, "desc", " spaced = \xd7\x99 ");
	return rec;
}

static void test_roundtrip(void)
{
	MdJournalRecord rec = sample();
	MdJournalRecord back = { 0 };
	uint8_t buf[MD_JOURNAL_RECORD_SIZE];
	uint8_t again[MD_JOURNAL_RECORD_SIZE];
	const char *payload = sample_payload;

	ASSERT_OK(md_journal_encode(&rec, buf, sizeof(buf)));
	/* Byte layout (docs/journal.md). */
	ASSERT_MEMEQ(buf, "OVSJRNL1", 8);
	ASSERT_MEMEQ(buf + 8, "\x01\0\0\0", 4);
	ASSERT_MEMEQ(buf + 12, "\x01\0\0\0", 4);
	ASSERT_MEMEQ(buf + 16, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
	ASSERT_MEMEQ(buf + 32, "\x03\0\0\0", 4);
	ASSERT_EQ(buf[36] | buf[37] << 8, SAMPLE_PAYLOAD_LEN);
	ASSERT_MEMEQ(buf + 44, "\0\0\0\0", 4);
	ASSERT_MEMEQ(buf + 48, payload, SAMPLE_PAYLOAD_LEN);
	for (size_t i = 48 + SAMPLE_PAYLOAD_LEN; i < sizeof(buf); i++)
		ASSERT_EQ(buf[i], 0);
	{
		uint8_t tmp[MD_JOURNAL_RECORD_SIZE];
		uint32_t crc;

		memcpy(tmp, buf, sizeof(tmp));
		memset(tmp + 40, 0, 4);
		crc = md_crc32c(0, tmp, 48 + SAMPLE_PAYLOAD_LEN);
		ASSERT_EQ(buf[40] | buf[41] << 8 | buf[42] << 16 | (uint32_t)buf[43] << 24, crc);
	}

	ASSERT_OK(md_journal_decode(buf, sizeof(buf), &back));
	ASSERT_EQ(back.op, rec.op);
	ASSERT_EQ(back.seq, rec.seq);
	ASSERT_EQ(back.time, rec.time);
	ASSERT_EQ(back.step, rec.step);
	ASSERT_TRUE(md_kv_equal(back.args, rec.args));
	ASSERT_OK(md_journal_encode(&back, again, sizeof(again)));
	ASSERT_MEMEQ(again, buf, sizeof(buf));

	md_journal_record_release(&back);
	ASSERT_NULL(back.args);
	md_journal_record_release(&rec);
	md_journal_record_release(NULL);
}

/* The example in docs/journal.md. */
static void test_doc_example(void)
{
	static const uint8_t expect[66] = {
		0x4f, 0x56, 0x53, 0x4a, 0x52, 0x4e, 0x4c, 0x31, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00,
		0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x2b, 0x05, 0x6b,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x00, 0x00, 0x00, 0x3a, 0xe7,
		0x8a, 0x03, 0x00, 0x00, 0x00, 0x00, 0x69, 0x6d, 0x67, 0x3d, 0x69, 0x6d, 0x67, 0x31,
		0x0a, 0x76, 0x6f, 0x6c, 0x3d, 0x76, 0x6f, 0x6c, 0x31, 0x0a,
	};
	MdJournalRecord rec = {
		.op = MD_JOURNAL_OP_VOL_CREATE,
		.seq = 1,
		.time = 1795500815,
		.step = 0,
		.args = md_kv_new(),
	};
	uint8_t buf[MD_JOURNAL_RECORD_SIZE];

	md_kv_set(rec.args, "vol", "vol1");
	md_kv_set(rec.args, "img", "img1");
	ASSERT_OK(md_journal_encode(&rec, buf, sizeof(buf)));
	ASSERT_MEMEQ(buf, expect, sizeof(expect));
	for (size_t i = sizeof(expect); i < sizeof(buf); i++)
		ASSERT_EQ(buf[i], 0);
	md_journal_record_release(&rec);
}

static void test_no_args(void)
{
	MdJournalRecord rec = { .op = MD_JOURNAL_OP_IMG_RENAME, .time = -1 };
	MdJournalRecord back = { 0 };
	uint8_t buf[MD_JOURNAL_RECORD_SIZE + 10];

	ASSERT_OK(md_journal_encode(&rec, buf, sizeof(buf)));
	ASSERT_OK(md_journal_decode(buf, sizeof(buf), &back));
	ASSERT_EQ(back.op, MD_JOURNAL_OP_IMG_RENAME);
	ASSERT_EQ(back.time, -1);
	ASSERT_EQ(md_kv_size(back.args), 0);
	md_journal_record_release(&back);
}

static void test_free_and_short(void)
{
	uint8_t buf[MD_JOURNAL_RECORD_SIZE] = { 0 };
	MdJournalRecord back = { 0 };

	ASSERT_ERROR(md_journal_decode(buf, sizeof(buf), &back), ENODATA);
	ASSERT_ERROR(md_journal_decode(buf, sizeof(buf) - 1, &back), EINVAL);
	ASSERT_ERROR(md_journal_encode(&back, buf, sizeof(buf)), EINVAL); /* op NONE */
	back.op = MD_JOURNAL_OP_MAX;
	ASSERT_ERROR(md_journal_encode(&back, buf, sizeof(buf)), EINVAL);
	back.op = MD_JOURNAL_OP_VOL_DELETE;
	ASSERT_ERROR(md_journal_encode(&back, buf, sizeof(buf) - 1), EINVAL);
	ASSERT_NULL(back.args);
}

static void test_payload_too_long(void)
{
	MdJournalRecord rec = sample();
	uint8_t buf[MD_JOURNAL_RECORD_SIZE];
	g_autofree char *big = g_malloc(MD_JOURNAL_PAYLOAD_MAX + 1);

	memset(big, 'v', MD_JOURNAL_PAYLOAD_MAX);
	big[MD_JOURNAL_PAYLOAD_MAX] = '\0';
	md_kv_set(rec.args, "big", big);
	ASSERT_ERROR(md_journal_encode(&rec, buf, sizeof(buf)), ERANGE);
	md_journal_record_release(&rec);
}

/* Encodes the sample, applies a change, re-seals if asked, decodes. */
static int decode_modified(size_t off, const void *bytes, size_t n, bool reseal)
{
	MdJournalRecord rec = sample();
	MdJournalRecord back = { 0 };
	uint8_t buf[MD_JOURNAL_RECORD_SIZE];
	int r;

	ASSERT_OK(md_journal_encode(&rec, buf, sizeof(buf)));
	md_journal_record_release(&rec);
	memcpy(buf + off, bytes, n);
	if (reseal) {
		uint32_t plen = buf[36] | buf[37] << 8 | buf[38] << 16 | (uint32_t)buf[39] << 24;
		uint32_t crc;

		memset(buf + 40, 0, 4);
		crc = md_crc32c(0, buf, 48);
		crc = md_crc32c(crc, buf + 48, MIN(plen, (uint32_t)MD_JOURNAL_PAYLOAD_MAX));
		buf[40] = (uint8_t)crc;
		buf[41] = (uint8_t)(crc >> 8);
		buf[42] = (uint8_t)(crc >> 16);
		buf[43] = (uint8_t)(crc >> 24);
	}
	r = md_journal_decode(buf, sizeof(buf), &back);
	if (r >= 0)
		md_journal_record_release(&back);
	else
		ASSERT_NULL(back.args);
	return r;
}

static void test_corrupt(void)
{
	static const uint8_t v2[4] = { 2, 0, 0, 0 };
	static const uint8_t op0[4] = { 0 };
	static const uint8_t op99[4] = { 99, 0, 0, 0 };
	static const uint8_t op7[4] = { 7, 0, 0, 0 }; /* lv-extend, the highest known */
	static const uint8_t op8[4] = { 8, 0, 0, 0 };
	static const uint8_t huge[4] = { 0xff, 0xff, 0, 0 };
	static const uint8_t one[1] = { 1 };

	ASSERT_ERROR(decode_modified(0, "OVSJRNL2", 8, true), EUCLEAN);
	ASSERT_ERROR(decode_modified(8, v2, 4, true), EPROTONOSUPPORT);
	ASSERT_ERROR(decode_modified(12, op0, 4, true), EUCLEAN);
	ASSERT_ERROR(decode_modified(12, op99, 4, true), EPROTONOSUPPORT);
	ASSERT_OK(decode_modified(12, op7, 4, true));
	ASSERT_ERROR(decode_modified(12, op8, 4, true), EPROTONOSUPPORT);
	ASSERT_ERROR(decode_modified(36, huge, 4, true), EUCLEAN);
	/* Any flipped bit in the covered bytes breaks the CRC. */
	ASSERT_ERROR(decode_modified(16, one, 1, false), EUCLEAN);
	ASSERT_ERROR(decode_modified(44, one, 1, false), EUCLEAN);
	ASSERT_ERROR(decode_modified(50, "X", 1, false), EUCLEAN);
	/* Reserved field, bytes after the payload: checked even with a good CRC. */
	ASSERT_ERROR(decode_modified(44, one, 1, true), EUCLEAN);
	ASSERT_ERROR(decode_modified(4000, one, 1, true), EUCLEAN);
	/* Payload syntax: unsorted keys, line without '=', empty key, no newline. */
	ASSERT_ERROR(decode_modified(48, "img=", 4, true), EUCLEAN);
	ASSERT_ERROR(decode_modified(48, "descXXspacedXXX", 15, true), EUCLEAN);
	ASSERT_ERROR(decode_modified(48, "=", 1, true), EUCLEAN);
	ASSERT_ERROR(decode_modified(48, "\xff", 1, true), EUCLEAN);
	ASSERT_ERROR(decode_modified(48 + SAMPLE_PAYLOAD_LEN - 1, "x", 1, true), EUCLEAN);
	ASSERT_OK(decode_modified(60, "Z", 1, true));
}

static void test_op_names(void)
{
	ASSERT_STREQ(md_journal_op_to_string(MD_JOURNAL_OP_VOL_CREATE), "vol-create");
	ASSERT_STREQ(md_journal_op_to_string(MD_JOURNAL_OP_VOL_HEADER), "vol-header");
	ASSERT_STREQ(md_journal_op_to_string(MD_JOURNAL_OP_LV_EXTEND), "lv-extend");
	ASSERT_STREQ(md_journal_op_to_string(MD_JOURNAL_OP_MAX), "unknown");
	for (int op = 0; op < MD_JOURNAL_OP_MAX; op++)
		ASSERT_FALSE(strcmp(md_journal_op_to_string((MdJournalOp)op), "unknown") == 0);
}

int main(void)
{
	TEST_RUN(test_crc32c);
	TEST_RUN(test_roundtrip);
	TEST_RUN(test_doc_example);
	TEST_RUN(test_no_args);
	TEST_RUN(test_free_and_short);
	TEST_RUN(test_payload_too_long);
	TEST_RUN(test_corrupt);
	TEST_RUN(test_op_names);
	return 0;
}
