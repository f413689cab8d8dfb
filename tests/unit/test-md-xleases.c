/* Unit tests for metadata/md-xleases.c (reference section 10). */
#include "metadata/md-xleases.h"

#include <string.h>
#include <glib.h>

#include "tests/unit/tests.h"

#include "common/banned.h"

#define SD_UUID "a5a6e1f0-5b1e-4c4e-9d7c-0f0e1d2c3b4a"
#define LEASE_ID "11111111-cccc-4ccc-8ccc-000000000001"

static uint8_t *formatted(void)
{
	uint8_t *buf = g_malloc(MD_XLEASES_INDEX_SIZE);

	memset(buf, 0xaa, MD_XLEASES_INDEX_SIZE);
	ASSERT_OK(md_xleases_format(SD_UUID, 1795500815, buf, MD_XLEASES_INDEX_SIZE));
	return buf;
}

static void test_format_layout(void)
{
	g_autofree uint8_t *buf = formatted();
	uint8_t md[512] = { 0 };
	static const uint8_t free_record[64] = {
		[49] = '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0',
		[61] = '-', '-', '\n',
	};

	/* Metadata block, field by field. */
	memcpy(md, "\x12\x15\x20\x16", 4);
	memcpy(md + 5, "0001", 4);
	memcpy(md + 10, SD_UUID, strlen(SD_UUID));
	memcpy(md + 59, "1795500815", 10);
	md[70] = '-';
	md[511] = '\n';
	ASSERT_MEMEQ(buf, md, sizeof(md));

	ASSERT_EQ(MD_XLEASES_INDEX_SIZE, 512 + MD_XLEASES_RECORDS * 64);
	for (size_t r = 0; r < MD_XLEASES_RECORDS; r++)
		ASSERT_MEMEQ(buf + 512 + r * 64, free_record, 64);

	ASSERT_OK(md_xleases_validate(SD_UUID, buf, MD_XLEASES_INDEX_SIZE));
	ASSERT_OK(md_xleases_validate(NULL, buf, MD_XLEASES_INDEX_SIZE));
}

static void test_format_args(void)
{
	g_autofree uint8_t *buf = g_malloc0(MD_XLEASES_INDEX_SIZE);
	char longname[50];

	ASSERT_OK(md_xleases_format(SD_UUID, 0, buf, MD_XLEASES_INDEX_SIZE));
	ASSERT_MEMEQ(buf + 59, "0000000000", 10);
	ASSERT_OK(md_xleases_format(SD_UUID, 9999999999LL, buf, MD_XLEASES_INDEX_SIZE));
	ASSERT_ERROR(md_xleases_format(SD_UUID, 10000000000LL, buf, MD_XLEASES_INDEX_SIZE),
		     ERANGE);
	ASSERT_ERROR(md_xleases_format(SD_UUID, -1, buf, MD_XLEASES_INDEX_SIZE), ERANGE);
	ASSERT_ERROR(md_xleases_format(SD_UUID, 0, buf, MD_XLEASES_INDEX_SIZE - 1), EINVAL);
	ASSERT_ERROR(md_xleases_format("", 0, buf, MD_XLEASES_INDEX_SIZE), EINVAL);
	memset(longname, 'l', 49);
	longname[49] = '\0';
	ASSERT_ERROR(md_xleases_format(longname, 0, buf, MD_XLEASES_INDEX_SIZE), EINVAL);
	longname[48] = '\0';
	ASSERT_OK(md_xleases_format(longname, 0, buf, MD_XLEASES_INDEX_SIZE));
	ASSERT_OK(md_xleases_validate(longname, buf, MD_XLEASES_INDEX_SIZE));
}

static void test_used_records(void)
{
	g_autofree uint8_t *buf = formatted();
	uint8_t *rec = buf + 512 + 7 * 64;

	/* A lease record as VDSM writes it: id, offset of slot 3 + 7. */
	memcpy(rec, LEASE_ID, strlen(LEASE_ID));
	memcpy(rec + 49, "00010485760", 11);
	ASSERT_OK(md_xleases_validate(SD_UUID, buf, MD_XLEASES_INDEX_SIZE));
	/* "updating" record: still a valid index (the lease counts as missing). */
	rec[61] = 'u';
	ASSERT_OK(md_xleases_validate(SD_UUID, buf, MD_XLEASES_INDEX_SIZE));

	memcpy(rec + 49, "0001048576x", 11);
	ASSERT_ERROR(md_xleases_validate(SD_UUID, buf, MD_XLEASES_INDEX_SIZE), EUCLEAN);
	memcpy(rec + 49, "00010485760", 11);
	rec[3] = 0xc3;
	ASSERT_ERROR(md_xleases_validate(SD_UUID, buf, MD_XLEASES_INDEX_SIZE), EUCLEAN);

	/* The last record counts too. */
	rec[3] = '1';
	buf[MD_XLEASES_INDEX_SIZE - 64 + 50] = 'x';
	ASSERT_ERROR(md_xleases_validate(SD_UUID, buf, MD_XLEASES_INDEX_SIZE), EUCLEAN);
}

static int validate_modified(size_t off, const char *bytes, size_t n)
{
	g_autofree uint8_t *buf = formatted();

	memcpy(buf + off, bytes, n);
	return md_xleases_validate(SD_UUID, buf, MD_XLEASES_INDEX_SIZE);
}

static void test_invalid(void)
{
	g_autofree uint8_t *buf = formatted();

	ASSERT_ERROR(validate_modified(0, "\x16\x20\x15\x12", 4), EUCLEAN); /* little-endian */
	ASSERT_ERROR(validate_modified(5, "0002", 4), EPROTONOSUPPORT);
	ASSERT_ERROR(validate_modified(5, "v001", 4), EUCLEAN);
	ASSERT_ERROR(validate_modified(10, "b", 1), EUCLEAN);	      /* other domain */
	ASSERT_ERROR(validate_modified(10 + 36, "x", 1), EUCLEAN); /* longer name */
	ASSERT_ERROR(validate_modified(59, "17955008x5", 10), EUCLEAN);
	ASSERT_ERROR(validate_modified(70, "u", 1), EUCLEAN); /* being updated */
	ASSERT_ERROR(md_xleases_validate(SD_UUID, buf, MD_XLEASES_INDEX_SIZE - 1), EINVAL);
	ASSERT_ERROR(md_xleases_validate(SD_UUID, NULL, 0), EINVAL);
	/* Padding VDSM does not read is not checked either. */
	ASSERT_OK(validate_modified(100, "x", 1));
}

int main(void)
{
	TEST_RUN(test_format_layout);
	TEST_RUN(test_format_args);
	TEST_RUN(test_used_records);
	TEST_RUN(test_invalid);
	return 0;
}
