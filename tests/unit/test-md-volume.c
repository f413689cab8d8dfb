/* Unit tests for metadata/md-volume.c (reference section 7). */
#include "metadata/md-volume.h"

#include <string.h>
#include <glib.h>

#include "tests/unit/tests.h"

#include "common/banned.h"

static const char example_v4[] = "CTIME=1795500815\n"
				 "DESCRIPTION=v4 qcow2\n"
				 "DISKTYPE=DATA\n"
				 "DOMAIN=b4b4e1f0-4b1e-4c4e-9d7c-0f0e1d2c3b4b\n"
				 "FORMAT=COW\n"
				 "GEN=0\n"
				 "IMAGE=11111111-aaaa-4aaa-8aaa-000000000001\n"
				 "LEGALITY=LEGAL\n"
				 "MTIME=0\n"
				 "PUUID=00000000-0000-0000-0000-000000000000\n"
				 "SIZE=2097152\n"
				 "TYPE=SPARSE\n"
				 "VOLTYPE=LEAF\n"
				 "EOF\n";

static const char example_v5[] = "CAP=8388608\n"
				 "CTIME=1795500814\n"
				 "DESCRIPTION=snapshot\n"
				 "DISKTYPE=DATA\n"
				 "DOMAIN=a5a6e1f0-5b1e-4c4e-9d7c-0f0e1d2c3b4a\n"
				 "FORMAT=COW\n"
				 "GEN=0\n"
				 "IMAGE=11111111-aaaa-4aaa-8aaa-000000000001\n"
				 "LEGALITY=LEGAL\n"
				 "PUUID=11111111-bbbb-4bbb-8bbb-000000000001\n"
				 "SEQ=0\n"
				 "TYPE=SPARSE\n"
				 "VOLTYPE=LEAF\n"
				 "EOF\n";

static void assert_vol_eq(const MdVolume *a, const MdVolume *b)
{
	ASSERT_EQ(a->capacity, b->capacity);
	ASSERT_EQ(a->ctime, b->ctime);
	ASSERT_STREQ(a->description, b->description);
	ASSERT_STREQ(a->disktype, b->disktype);
	ASSERT_STREQ(a->domain, b->domain);
	ASSERT_STREQ(a->image, b->image);
	ASSERT_STREQ(a->parent, b->parent);
	ASSERT_EQ(a->format, b->format);
	ASSERT_EQ(a->type, b->type);
	ASSERT_EQ(a->role, b->role);
	ASSERT_EQ(a->legality, b->legality);
	ASSERT_EQ(a->generation, b->generation);
	ASSERT_EQ(a->seq, b->seq);
}

static void assert_roundtrip(const char *text, int version)
{
	MdVolume vol;
	char buf[MD_VOLUME_RECORD_SIZE];
	size_t len = 0;

	ASSERT_OK(md_volume_decode(text, strlen(text), &vol));
	ASSERT_OK(md_volume_encode(&vol, version, buf, sizeof(buf), &len));
	ASSERT_EQ(len, strlen(text));
	ASSERT_MEMEQ(buf, text, len);
}

static void test_examples(void)
{
	MdVolume vol;

	assert_roundtrip(example_v4, 4);
	assert_roundtrip(example_v5, 5);

	ASSERT_OK(md_volume_decode(example_v4, strlen(example_v4), &vol));
	ASSERT_EQ(vol.capacity, 1024ull * 1024 * 1024);
	ASSERT_EQ(vol.ctime, 1795500815);
	ASSERT_STREQ(vol.description, "v4 qcow2");
	ASSERT_STREQ(vol.disktype, "DATA");
	ASSERT_STREQ(vol.domain, "b4b4e1f0-4b1e-4c4e-9d7c-0f0e1d2c3b4b");
	ASSERT_STREQ(vol.image, "11111111-aaaa-4aaa-8aaa-000000000001");
	ASSERT_STREQ(vol.parent, "");
	ASSERT_EQ(vol.format, MD_VOL_FORMAT_COW);
	ASSERT_EQ(vol.type, MD_VOL_TYPE_SPARSE);
	ASSERT_EQ(vol.role, MD_VOL_ROLE_LEAF);
	ASSERT_EQ(vol.legality, MD_LEGALITY_LEGAL);
	ASSERT_EQ(vol.generation, 0);
	ASSERT_EQ(vol.seq, 0);

	ASSERT_OK(md_volume_decode(example_v5, strlen(example_v5), &vol));
	ASSERT_EQ(vol.capacity, 8388608);
	ASSERT_STREQ(vol.parent, "11111111-bbbb-4bbb-8bbb-000000000001");
}

static void test_block_slot(void)
{
	char slot[8192] = { 0 };
	MdVolume vol;

	memcpy(slot, example_v5, strlen(example_v5));
	ASSERT_OK(md_volume_decode(slot, MD_VOLUME_RECORD_SIZE, &vol));
	ASSERT_OK(md_volume_decode(slot, sizeof(slot), &vol));
	ASSERT_EQ(vol.capacity, 8388608);
}

static void test_empty(void)
{
	char zero[512] = { 0 };
	char none[512];
	MdVolume vol;

	ASSERT_ERROR(md_volume_decode(zero, sizeof(zero), &vol), ENODATA);
	ASSERT_ERROR(md_volume_decode(zero, 0, &vol), ENODATA);
	/* Cleared by VDSM < 4.2.5: "NONE=" + 502 '#' + "\nEOF\n". */
	memcpy(none, "NONE=", 5);
	memset(none + 5, '#', 502);
	memcpy(none + 507, "\nEOF\n", 5);
	ASSERT_ERROR(md_volume_decode(none, sizeof(none), &vol), ENODATA);
}

/* The v5 example with one line replaced (or dropped when line is NULL). */
static int decode_with(const char *prefix, const char *line)
{
	g_autoptr(GString) s = g_string_new(NULL);
	g_auto(GStrv) lines = g_strsplit(example_v5, "\n", -1);
	MdVolume vol;

	for (char **l = lines; *l && **l; l++) {
		if (g_str_has_prefix(*l, prefix)) {
			if (line)
				g_string_append_printf(s, "%s\n", line);
		} else {
			g_string_append_printf(s, "%s\n", *l);
		}
	}
	return md_volume_decode(s->str, s->len, &vol);
}

static void test_required_keys(void)
{
	static const char *const required[] = { "DOMAIN=", "IMAGE=",	"PUUID=",
						"CAP=",	   "FORMAT=",	"TYPE=",
						"VOLTYPE=", "DISKTYPE=", "DESCRIPTION=",
						"LEGALITY=", "CTIME=" };

	for (size_t i = 0; i < G_N_ELEMENTS(required); i++)
		ASSERT_ERROR(decode_with(required[i], NULL), EUCLEAN);
	/* GEN and SEQ default to 0. */
	ASSERT_OK(decode_with("GEN=", NULL));
	ASSERT_OK(decode_with("SEQ=", NULL));
}

/* The longest name a record may carry (MD_VOLUME_NAME_MAX). */
#define NAME_64 "1234567890123456789012345678901234567890123456789012345678901234"

static void test_bad_values(void)
{
	ASSERT_ERROR(decode_with("FORMAT=", "FORMAT=QCOW2"), EUCLEAN);
	ASSERT_ERROR(decode_with("TYPE=", "TYPE=sparse"), EUCLEAN);
	ASSERT_ERROR(decode_with("VOLTYPE=", "VOLTYPE=ROOT"), EUCLEAN);
	ASSERT_ERROR(decode_with("LEGALITY=", "LEGALITY=OK"), EUCLEAN);
	ASSERT_ERROR(decode_with("DISKTYPE=", "DISKTYPE="), EUCLEAN);
	ASSERT_ERROR(decode_with("DISKTYPE=", "DISKTYPE=TOOLONGTYPE"), EUCLEAN);
	ASSERT_ERROR(decode_with("CAP=", "CAP=12k"), EUCLEAN);
	ASSERT_ERROR(decode_with("CAP=", "CAP=-1"), EUCLEAN);
	ASSERT_ERROR(decode_with("CAP=", "CAP=99999999999999999999"), EUCLEAN);
	ASSERT_ERROR(decode_with("CTIME=", "CTIME=now"), EUCLEAN);
	ASSERT_ERROR(decode_with("GEN=", "GEN=1000"), EUCLEAN);
	ASSERT_ERROR(decode_with("GEN=", "GEN=x"), EUCLEAN);
	ASSERT_ERROR(decode_with("SEQ=", "SEQ=4294967296"), EUCLEAN);
	ASSERT_ERROR(decode_with("DOMAIN=", "DOMAIN=not-a-uuid"), EUCLEAN);
	ASSERT_ERROR(decode_with("IMAGE=", "IMAGE="), EUCLEAN);
	ASSERT_ERROR(decode_with("IMAGE=", "IMAGE=../etc"), EUCLEAN);
	ASSERT_ERROR(decode_with("IMAGE=", "IMAGE=" NAME_64 "5"), EUCLEAN);
	ASSERT_ERROR(decode_with("PUUID=", "PUUID=" NAME_64 "5"), EUCLEAN);
	ASSERT_OK(decode_with("IMAGE=", "IMAGE=" NAME_64));
	ASSERT_OK(decode_with("PUUID=", "PUUID=" NAME_64));
	ASSERT_ERROR(decode_with("DESCRIPTION=", "DESCRIPTION=\xff\xfe"), EUCLEAN);
	ASSERT_OK(decode_with("GEN=", "GEN=999"));
	ASSERT_OK(decode_with("SEQ=", "SEQ=4294967295"));
	ASSERT_OK(decode_with("DISKTYPE=", "DISKTYPE=2"));
}

static void test_parsing_rules(void)
{
	/* White space, unknown keys, lines without '=', SIZE and CAP, stop at EOF. */
	static const char text[] = "  FORMAT = RAW \n"
				   "CAP=4096\n"
				   "SIZE=16\n"
				   "CTIME=1\n"
				   "DESCRIPTION=\n"
				   "DISKTYPE=ISOF\n"
				   "DOMAIN=b4b4e1f0-4b1e-4c4e-9d7c-0f0e1d2c3b4b\n"
				   "IMAGE=img\n"
				   "LEGALITY=ILLEGAL\n"
				   "PUUID=vol-1\n"
				   "POOL_UUID=\n"
				   "MTIME=0\n"
				   "junk without equals\n"
				   "TYPE=PREALLOCATED\n"
				   "VOLTYPE=SHARED\n"
				   "GEN=7\n"
				   "EOF\n"
				   "VOLTYPE=LEAF\n"
				   "\xff\xff not even UTF-8\n";
	MdVolume vol;

	ASSERT_OK(md_volume_decode(text, sizeof(text) - 1, &vol));
	ASSERT_EQ(vol.format, MD_VOL_FORMAT_RAW);
	ASSERT_EQ(vol.capacity, 4096); /* CAP wins */
	ASSERT_STREQ(vol.description, "");
	ASSERT_STREQ(vol.disktype, "ISOF");
	ASSERT_STREQ(vol.image, "img");
	ASSERT_STREQ(vol.parent, "vol-1");
	ASSERT_EQ(vol.legality, MD_LEGALITY_ILLEGAL);
	ASSERT_EQ(vol.type, MD_VOL_TYPE_PREALLOCATED);
	ASSERT_EQ(vol.role, MD_VOL_ROLE_SHARED);
	ASSERT_EQ(vol.generation, 7);

	/* Without CAP, SIZE is in sectors. */
	ASSERT_OK(decode_with("CAP=", "SIZE=16"));
}

static void test_invalid_records(void)
{
	char big[MD_VOLUME_RECORD_SIZE + 1];
	g_autofree char *nul = g_strdup(example_v5);
	MdVolume vol;

	memset(big, 'A', sizeof(big));
	ASSERT_ERROR(md_volume_decode(big, sizeof(big), &vol), EUCLEAN);
	nul[3] = '\0';
	ASSERT_ERROR(md_volume_decode(nul, strlen(example_v5), &vol), EUCLEAN);
	ASSERT_ERROR(md_volume_decode("EOF\n", 4, &vol), EUCLEAN);
	ASSERT_ERROR(md_volume_decode("\n\n\n", 3, &vol), EUCLEAN);
}

static void test_encode(void)
{
	MdVolume vol;
	char buf[MD_VOLUME_RECORD_SIZE];
	char small[64];
	size_t len = 0;
	MdVolume back;

	ASSERT_OK(md_volume_decode(example_v5, strlen(example_v5), &vol));
	vol.seq = 4294967295u;
	vol.generation = 999;
	vol.role = MD_VOL_ROLE_INTERNAL;
	vol.legality = MD_LEGALITY_ILLEGAL;
	vol.format = MD_VOL_FORMAT_RAW;
	vol.type = MD_VOL_TYPE_PREALLOCATED;
	vol.parent[0] = '\0';
	ASSERT_OK(md_volume_encode(&vol, 5, buf, sizeof(buf), &len));
	ASSERT_OK(md_volume_decode(buf, len, &back));
	assert_vol_eq(&back, &vol);
	ASSERT_TRUE(g_strstr_len(buf, (gssize)len, "PUUID=00000000-0000-0000-0000-000000000000\n"));

	/* v4 layout: SIZE in sectors, MTIME=0, no CAP/SEQ. */
	ASSERT_OK(md_volume_encode(&vol, 4, buf, sizeof(buf), &len));
	ASSERT_TRUE(g_strstr_len(buf, (gssize)len, "SIZE=16384\n"));
	ASSERT_TRUE(g_strstr_len(buf, (gssize)len, "MTIME=0\n"));
	ASSERT_FALSE(g_strstr_len(buf, (gssize)len, "CAP="));
	ASSERT_FALSE(g_strstr_len(buf, (gssize)len, "SEQ="));

	ASSERT_ERROR(md_volume_encode(&vol, 5, small, sizeof(small), &len), ERANGE);

	vol.format = MD_VOL_FORMAT_MAX;
	ASSERT_ERROR(md_volume_encode(&vol, 5, buf, sizeof(buf), &len), EINVAL);
	vol.format = MD_VOL_FORMAT_COW;
	g_strlcpy(vol.description, "two\nlines", sizeof(vol.description));
	ASSERT_ERROR(md_volume_encode(&vol, 5, buf, sizeof(buf), &len), EINVAL);
}

static void test_size_limit(void)
{
	MdVolume vol;
	char buf[MD_VOLUME_RECORD_SIZE + 64];
	size_t len = 0, base;

	ASSERT_OK(md_volume_decode(example_v5, strlen(example_v5), &vol));
	vol.description[0] = '\0';
	ASSERT_OK(md_volume_encode(&vol, 5, buf, sizeof(buf), &len));
	base = len;
	/* Exactly 512 bytes is fine, one more is not. */
	memset(vol.description, 'd', MD_VOLUME_RECORD_SIZE - base);
	vol.description[MD_VOLUME_RECORD_SIZE - base] = '\0';
	ASSERT_OK(md_volume_encode(&vol, 5, buf, sizeof(buf), &len));
	ASSERT_EQ(len, MD_VOLUME_RECORD_SIZE);
	ASSERT_OK(md_volume_decode(buf, len, &vol));
	ASSERT_EQ(strlen(vol.description), MD_VOLUME_RECORD_SIZE - base);
	memset(vol.description, 'd', MD_VOLUME_RECORD_SIZE - base + 1);
	vol.description[MD_VOLUME_RECORD_SIZE - base + 1] = '\0';
	ASSERT_ERROR(md_volume_encode(&vol, 5, buf, sizeof(buf), &len), ERANGE);
}

static void test_strings(void)
{
	ASSERT_STREQ(md_vol_format_to_string(MD_VOL_FORMAT_RAW), "RAW");
	ASSERT_STREQ(md_vol_format_to_string(MD_VOL_FORMAT_COW), "COW");
	ASSERT_STREQ(md_vol_type_to_string(MD_VOL_TYPE_PREALLOCATED), "PREALLOCATED");
	ASSERT_STREQ(md_vol_type_to_string(MD_VOL_TYPE_UNKNOWN), "UNKNOWN");
	ASSERT_STREQ(md_vol_role_to_string(MD_VOL_ROLE_INTERNAL), "INTERNAL");
	ASSERT_STREQ(md_legality_to_string(MD_LEGALITY_FAKE), "FAKE");
	ASSERT_NULL(md_legality_to_string(MD_LEGALITY_MAX));
}

int main(void)
{
	TEST_RUN(test_examples);
	TEST_RUN(test_block_slot);
	TEST_RUN(test_empty);
	TEST_RUN(test_required_keys);
	TEST_RUN(test_bad_values);
	TEST_RUN(test_parsing_rules);
	TEST_RUN(test_invalid_records);
	TEST_RUN(test_encode);
	TEST_RUN(test_size_limit);
	TEST_RUN(test_strings);
	return 0;
}
