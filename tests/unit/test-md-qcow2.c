/*
 * Unit tests for metadata/md-qcow2.c against real qemu-img headers:
 * tests/unit/data/<name>.qcow2-head are the first 4 KiB of images made by
 * qemu-img 7.2 (see data/README.md).
 */
#include "metadata/md-qcow2.h"

#include <string.h>
#include <glib.h>

#include "tests/unit/tests.h"

#include "common/banned.h"

#define HEAD_SIZE 4096
#define GIB (1024ull * 1024 * 1024)
#define BACKING_UUID "11111111-bbbb-4bbb-8bbb-000000000001"

static uint8_t *load(const char *name, size_t *ret_len)
{
	g_autofree char *path = g_build_filename(OVSTORE_TEST_DATA_DIR, name, NULL);
	g_autoptr(GError) error = NULL;
	char *data = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &data, &len, &error))
		TEST_FAIL("cannot read %s: %s", path, error->message);
	ASSERT_EQ(len, HEAD_SIZE);
	*ret_len = len;
	return (uint8_t *)data;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static const struct fixture {
	const char *file;
	uint32_t version, header_length, cluster_bits;
	uint64_t incompat;
	const char *backing, *backing_format;
	bool data_file;
} fixtures[] = {
	{ "v2-plain.qcow2-head", 2, 72, 16, 0, NULL, "", false },
	{ "v2-backing-qcow2.qcow2-head", 2, 72, 16, 0, BACKING_UUID, "qcow2", false },
	{ "v2-backing-oldpath.qcow2-head", 2, 72, 16, 0, "../img/vol", "raw", false },
	{ "v3-plain.qcow2-head", 3, 112, 16, 0, NULL, "", false },
	{ "v3-lazy.qcow2-head", 3, 112, 16, 0, NULL, "", false },
	{ "v3-backing-raw.qcow2-head", 3, 112, 16, 0, "base.raw", "raw", false },
	{ "v3-backing-qcow2.qcow2-head", 3, 112, 16, 0, BACKING_UUID, "qcow2", false },
	{ "v3-backing-1023.qcow2-head", 3, 112, 16, 0, "n*1023", "raw", false },
	{ "v3-cluster512.qcow2-head", 3, 112, 9, 0, "base", "raw", false },
	{ "v3-cluster2m.qcow2-head", 3, 112, 21, 0, NULL, "", false },
	{ "v3-datafile.qcow2-head", 3, 112, 16, MD_QCOW2_INCOMPAT_DATA_FILE, NULL, "", true },
	{ "v3-zstd.qcow2-head", 3, 112, 16, MD_QCOW2_INCOMPAT_COMPRESSION, NULL, "", false },
	{ "v3-extl2.qcow2-head", 3, 112, 16, MD_QCOW2_INCOMPAT_EXTL2, NULL, "", false },
};

static void test_fixtures(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(fixtures); i++) {
		const struct fixture *f = &fixtures[i];
		size_t len = 0;
		g_autofree uint8_t *buf = load(f->file, &len);
		MdQcow2Header h;

		fprintf(stderr, "   %s\n", f->file);
		ASSERT_TRUE(md_qcow2_has_magic(buf, len));
		ASSERT_OK(md_qcow2_parse(buf, len, &h));
		ASSERT_EQ(h.version, f->version);
		ASSERT_EQ(h.header_length, f->header_length);
		ASSERT_EQ(h.cluster_bits, f->cluster_bits);
		ASSERT_EQ(h.size, GIB);
		ASSERT_EQ(h.crypt_method, 0);
		ASSERT_EQ(h.incompatible_features, f->incompat);
		ASSERT_EQ(h.has_data_file, f->data_file);
		ASSERT_STREQ(h.backing_format, f->backing_format);
		ASSERT_EQ(h.has_backing, f->backing != NULL);
		if (!f->backing) {
			ASSERT_EQ(h.backing_file_offset, 0);
			ASSERT_STREQ(h.backing_name, "");
		} else if (strcmp(f->backing, "n*1023") == 0) {
			ASSERT_EQ(strlen(h.backing_name), MD_QCOW2_BACKING_MAX);
			ASSERT_EQ(strspn(h.backing_name, "n"), MD_QCOW2_BACKING_MAX);
		} else {
			ASSERT_STREQ(h.backing_name, f->backing);
			ASSERT_EQ(h.backing_file_size, strlen(f->backing));
		}
	}
}

/* Every prefix is either too short (-ENODATA) or enough, and enough stays enough. */
static void test_truncated(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(fixtures); i++) {
		size_t len = 0;
		g_autofree uint8_t *buf = load(fixtures[i].file, &len);
		bool ok = false;

		for (size_t l = 0; l <= len; l++) {
			MdQcow2Header h;
			int r = md_qcow2_parse(buf, l, &h);

			if (ok)
				ASSERT_OK(r);
			else if (r != -ENODATA)
				ASSERT_OK(r);
			ok = r == 0;
			/* Nothing the header references lies beyond 2 KiB. */
			if (l >= 2048)
				ASSERT_TRUE(ok);
		}
	}
	ASSERT_FALSE(md_qcow2_has_magic("QFI", 3));
	ASSERT_FALSE(md_qcow2_has_magic(NULL, 0));
}

static int parse_modified(const char *file, size_t off, uint32_t value)
{
	size_t len = 0;
	g_autofree uint8_t *buf = load(file, &len);
	MdQcow2Header h;

	put_be32(buf + off, value);
	return md_qcow2_parse(buf, len, &h);
}

static void test_corrupt(void)
{
	ASSERT_ERROR(parse_modified("v3-plain.qcow2-head", 0, 0x514649fa), EUCLEAN);
	ASSERT_ERROR(parse_modified("v3-plain.qcow2-head", 4, 4), EPROTONOSUPPORT);
	ASSERT_ERROR(parse_modified("v3-plain.qcow2-head", 4, 1), EPROTONOSUPPORT);
	ASSERT_ERROR(parse_modified("v3-plain.qcow2-head", 20, 8), EUCLEAN);
	ASSERT_ERROR(parse_modified("v3-plain.qcow2-head", 20, 22), EUCLEAN);
	ASSERT_ERROR(parse_modified("v3-plain.qcow2-head", 32, 3), EUCLEAN);
	/* header_length: < 104, not a multiple of 8, beyond the cluster. */
	ASSERT_ERROR(parse_modified("v3-plain.qcow2-head", 100, 96), EUCLEAN);
	ASSERT_ERROR(parse_modified("v3-plain.qcow2-head", 100, 108), EUCLEAN);
	ASSERT_ERROR(parse_modified("v3-cluster512.qcow2-head", 100, 520), EUCLEAN);
	/* Unknown incompatible feature (bit 5, low word at 76). */
	ASSERT_ERROR(parse_modified("v3-plain.qcow2-head", 76, 1u << 5), EPROTONOSUPPORT);
	ASSERT_ERROR(parse_modified("v3-plain.qcow2-head", 72, 1u << 31), EPROTONOSUPPORT);
	/* Known bits (dirty, corrupt) parse; the caller decides. */
	ASSERT_OK(parse_modified("v3-plain.qcow2-head", 76, 3));
	/* Backing name: too long, outside the first cluster, inside the header. */
	ASSERT_ERROR(parse_modified("v3-backing-raw.qcow2-head", 16, 1024), EUCLEAN);
	ASSERT_ERROR(parse_modified("v3-cluster512.qcow2-head", 16, 400), EUCLEAN);
	ASSERT_ERROR(parse_modified("v3-backing-raw.qcow2-head", 12, 64), EUCLEAN);
	ASSERT_ERROR(parse_modified("v3-backing-raw.qcow2-head", 12, 1u << 20), EUCLEAN);
	/* Extension length past the limit; backing format too long. */
	ASSERT_ERROR(parse_modified("v3-plain.qcow2-head", 116, 65536), EUCLEAN);
	ASSERT_ERROR(parse_modified("v3-backing-raw.qcow2-head", 116, 17), EUCLEAN);
	/* A NUL inside the backing name. */
	ASSERT_ERROR(parse_modified("v3-backing-raw.qcow2-head", 528, 0x62000000), EUCLEAN);
	/* Backing offset 0 with a size: no backing file (as QEMU). */
	{
		size_t len = 0;
		g_autofree uint8_t *buf = load("v3-backing-raw.qcow2-head", &len);
		MdQcow2Header h;

		memset(buf + 8, 0, 8);
		ASSERT_OK(md_qcow2_parse(buf, len, &h));
		ASSERT_FALSE(h.has_backing);
	}
}

static void test_set_backing(void)
{
	static const char *const files[] = { "v3-plain.qcow2-head", "v2-plain.qcow2-head",
					     "v3-backing-qcow2.qcow2-head",
					     "v2-backing-oldpath.qcow2-head" };
	char long_name[MD_QCOW2_BACKING_MAX + 2];

	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';

	for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
		size_t len = 0;
		g_autofree uint8_t *buf = load(files[i], &len);
		g_autofree uint8_t *orig = g_memdup2(buf, len);
		MdQcow2Header before, h;
		uint64_t off;

		fprintf(stderr, "   %s\n", files[i]);
		ASSERT_OK(md_qcow2_parse(buf, len, &before));
		ASSERT_OK(md_qcow2_set_backing(buf, len, "parent-vol"));
		ASSERT_OK(md_qcow2_parse(buf, len, &h));
		ASSERT_TRUE(h.has_backing);
		ASSERT_STREQ(h.backing_name, "parent-vol");
		ASSERT_STREQ(h.backing_format, before.backing_format);
		off = h.backing_file_offset;
		if (before.has_backing)
			ASSERT_EQ(off, before.backing_file_offset);
		/* The rest of the header is untouched. */
		ASSERT_MEMEQ(buf + 20, orig + 20, off - 20);

		/* Shorter: no stale bytes behind it. */
		ASSERT_OK(md_qcow2_set_backing(buf, len, "p"));
		ASSERT_OK(md_qcow2_parse(buf, len, &h));
		ASSERT_STREQ(h.backing_name, "p");
		ASSERT_EQ(h.backing_file_offset, off);
		for (size_t j = 1; j < 64; j++)
			ASSERT_EQ(buf[off + j], 0);

		/* The longest name QEMU allows fits in the first cluster. */
		long_name[MD_QCOW2_BACKING_MAX] = '\0';
		ASSERT_OK(md_qcow2_set_backing(buf, len, long_name));
		ASSERT_OK(md_qcow2_parse(buf, len, &h));
		ASSERT_EQ(strlen(h.backing_name), MD_QCOW2_BACKING_MAX);
		long_name[MD_QCOW2_BACKING_MAX] = 'x';
		ASSERT_ERROR(md_qcow2_set_backing(buf, len, long_name), ENAMETOOLONG);

		/* Removing it. */
		ASSERT_OK(md_qcow2_set_backing(buf, len, ""));
		ASSERT_OK(md_qcow2_parse(buf, len, &h));
		ASSERT_FALSE(h.has_backing);
		ASSERT_EQ(h.backing_file_offset, 0);
		ASSERT_EQ(h.backing_file_size, 0);
		ASSERT_OK(md_qcow2_set_backing(buf, len, NULL));
	}
}

static void test_set_backing_nospace(void)
{
	size_t len = 0;
	g_autofree uint8_t *buf = load("v3-cluster512.qcow2-head", &len);
	g_autofree uint8_t *orig = g_memdup2(buf, len);
	char name[400];
	MdQcow2Header h;

	/* 512-byte clusters: the name must end by byte 512. */
	memset(name, 'y', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	ASSERT_ERROR(md_qcow2_set_backing(buf, len, name), ENOSPC);
	ASSERT_MEMEQ(buf, orig, len);
	name[512 - 136] = '\0';
	ASSERT_OK(md_qcow2_set_backing(buf, len, name));
	ASSERT_OK(md_qcow2_parse(buf, len, &h));
	ASSERT_EQ(h.backing_file_size, 512 - 136);

	/* Also bounded by the buffer the caller has. */
	g_autofree uint8_t *plain = load("v3-plain.qcow2-head", &len);
	ASSERT_ERROR(md_qcow2_set_backing(plain, 520, "123456789"), ENOSPC);
	ASSERT_OK(md_qcow2_set_backing(plain, 520, "12345678"));
	ASSERT_ERROR(md_qcow2_set_backing(plain, 100, "x"), ENODATA);
	plain[0] = 'X';
	ASSERT_ERROR(md_qcow2_set_backing(plain, len, "x"), EUCLEAN);
}

/* Found by fuzz-qcow2: an end marker with a length (QEMU accepts it). */
static void test_end_marker_length(void)
{
	size_t len = 0;
	g_autofree uint8_t *buf = load("v3-plain.qcow2-head", &len);
	MdQcow2Header h;

	put_be32(buf + 508, 8); /* end marker at 504 */
	ASSERT_OK(md_qcow2_parse(buf, len, &h));
	ASSERT_OK(md_qcow2_set_backing(buf, len, "parent"));
	ASSERT_OK(md_qcow2_parse(buf, len, &h));
	ASSERT_STREQ(h.backing_name, "parent");
	ASSERT_EQ(h.backing_file_offset, 512);
}

/* Old v2 layout: the name right after the 72-byte header, no extensions. */
static void test_v2_name_after_header(void)
{
	size_t len = 0;
	g_autofree uint8_t *buf = load("v2-plain.qcow2-head", &len);
	MdQcow2Header h;

	memcpy(buf + 72, "abcdefghijk", 11);
	put_be32(buf + 12, 72);
	put_be32(buf + 16, 3);
	ASSERT_OK(md_qcow2_parse(buf, len, &h));
	ASSERT_STREQ(h.backing_name, "abc");
	ASSERT_OK(md_qcow2_set_backing(buf, len, "longer-name"));
	ASSERT_OK(md_qcow2_parse(buf, len, &h));
	ASSERT_STREQ(h.backing_name, "longer-name");
	ASSERT_EQ(h.backing_file_offset, 72);
	ASSERT_OK(md_qcow2_set_backing(buf, len, "x"));
	/* Found by fuzz-qcow2: removing it must leave an end marker behind. */
	ASSERT_ERROR(md_qcow2_set_backing(buf, 72, ""), ENODATA);
	ASSERT_OK(md_qcow2_set_backing(buf, len, ""));
	ASSERT_OK(md_qcow2_parse(buf, len, &h));
	ASSERT_FALSE(h.has_backing);
	ASSERT_OK(md_qcow2_parse(buf, 80, &h));
}

int main(void)
{
	TEST_RUN(test_fixtures);
	TEST_RUN(test_truncated);
	TEST_RUN(test_corrupt);
	TEST_RUN(test_set_backing);
	TEST_RUN(test_set_backing_nospace);
	TEST_RUN(test_end_marker_length);
	TEST_RUN(test_v2_name_after_header);
	return 0;
}
