/* Unit tests for metadata/md-kv.c (reference section 3). */
#include "metadata/md-kv.h"

#include <string.h>
#include <glib.h>

#include "tests/unit/tests.h"

#include "common/banned.h"

/* Reference section 4: a v5 file domain, master of a pool, as VDSM wrote it. */
static const char example_v5[] = "ALIGNMENT=1048576\n"
				 "BLOCK_SIZE=512\n"
				 "CLASS=Data\n"
				 "DESCRIPTION=sample-v5\n"
				 "IOOPTIMEOUTSEC=10\n"
				 "LEASERETRIES=3\n"
				 "LEASETIMESEC=60\n"
				 "LOCKPOLICY=ON\n"
				 "LOCKRENEWALINTERVALSEC=5\n"
				 "MASTER_VERSION=1\n"
				 "POOL_DESCRIPTION=sample-pool\n"
				 "POOL_DOMAINS=a5a6e1f0-5b1e-4c4e-9d7c-0f0e1d2c3b4a:Active\n"
				 "POOL_SPM_ID=-1\n"
				 "POOL_SPM_LVER=-1\n"
				 "POOL_UUID=c0c0e1f0-0b1e-4c4e-9d7c-0f0e1d2c3b4c\n"
				 "REMOTE_PATH=server.example.com:/export/data\n"
				 "ROLE=Master\n"
				 "SDUUID=a5a6e1f0-5b1e-4c4e-9d7c-0f0e1d2c3b4a\n"
				 "TYPE=NFS\n"
				 "VERSION=5\n"
				 "_SHA_CKSUM=893d60a73eff0605cbbf45853462ad12875d6281\n";

/* VDSM tests/storage/filesd_metadata_test.py, 512/1 MiB LOCALFS. */
static const char example_localfs[] = "ALIGNMENT=1048576\n"
				      "BLOCK_SIZE=512\n"
				      "CLASS=Data\n"
				      "DESCRIPTION=storage domain\n"
				      "IOOPTIMEOUTSEC=10\n"
				      "LEASERETRIES=3\n"
				      "LEASETIMESEC=60\n"
				      "LOCKPOLICY=\n"
				      "LOCKRENEWALINTERVALSEC=5\n"
				      "POOL_UUID=\n"
				      "REMOTE_PATH=server:/path\n"
				      "ROLE=Regular\n"
				      "SDUUID=275766cb-c7d8-43d6-a663-4e52160de620\n"
				      "TYPE=LOCALFS\n"
				      "VERSION=5\n"
				      "_SHA_CKSUM=9336f77705ff9e3d5faf65c4d0dc818a29de458d\n";

static void test_checksum_vectors(void)
{
	g_autoptr(MdKv) kv = md_kv_new();
	char sum[41];

	md_kv_checksum(kv, sum);
	ASSERT_STREQ(sum, "da39a3ee5e6b4b0d3255bfef95601890afd80709");

	md_kv_set(kv, "key 2", "value 2");
	md_kv_set(kv, "key 1", "value 1");
	md_kv_checksum(kv, sum);
	ASSERT_STREQ(sum, "ad4e8ffdd89dde809bf1ed700838b590b08a3826");
}

static void test_checksum_non_ascii(void)
{
	g_autoptr(MdKv) kv = md_kv_new();
	char sum[41];

	/* U+05D9 hashes as "&#1497;" (Python xmlcharrefreplace). */
	md_kv_set(kv, "DESCRIPTION", "abc\xd7\x99");
	md_kv_checksum(kv, sum);
	ASSERT_STREQ(sum, "ba467399d41eedcc89019aac7467ae9225ee4502");

	/* Outside the BMP: the full code point, lines with no separator. */
	g_autoptr(MdKv) kv2 = md_kv_new();
	md_kv_set(kv2, "B", "x y");
	md_kv_set(kv2, "A", "\xf0\x9f\x98\x80");
	md_kv_checksum(kv2, sum);
	ASSERT_STREQ(sum, "11f11ef68e872da268044782f2d985ff9df8427a");
}

static void test_decode_example(const char *text, const char *seal)
{
	g_autoptr(MdKv) kv = NULL;
	g_autofree char *out = NULL;
	size_t len = 0;
	char sum[41];

	ASSERT_OK(md_kv_decode(text, strlen(text), &kv));
	ASSERT_NULL(md_kv_get(kv, MD_KV_CHECKSUM_KEY));
	md_kv_checksum(kv, sum);
	ASSERT_STREQ(sum, seal);
	out = md_kv_encode(kv, &len);
	ASSERT_EQ(len, strlen(text));
	ASSERT_STREQ(out, text);
}

static void test_examples(void)
{
	test_decode_example(example_v5, "893d60a73eff0605cbbf45853462ad12875d6281");
	test_decode_example(example_localfs, "9336f77705ff9e3d5faf65c4d0dc818a29de458d");
}

static void test_broken_seal(void)
{
	g_autofree char *text = g_strdup(example_v5);
	g_autoptr(MdKv) kv = NULL;

	/* One changed value breaks the seal. */
	memcpy(strstr(text, "sample-v5"), "sample-v6", 9);
	ASSERT_ERROR(md_kv_decode(text, strlen(text), &kv), EUCLEAN);
	ASSERT_NULL(kv);

	/* Without the seal line the data is accepted as is. */
	*strstr(text, "_SHA_CKSUM") = '\0';
	ASSERT_OK(md_kv_decode(text, strlen(text), &kv));
	ASSERT_STREQ(md_kv_get(kv, "DESCRIPTION"), "sample-v6");
	ASSERT_EQ(md_kv_size(kv), 20);
}

static void test_decode_empty(void)
{
	static const char only_seal[] = "_SHA_CKSUM=0000000000000000000000000000000000000000\n";
	static const char nuls[4096] = { 0 };
	g_autoptr(MdKv) a = NULL;
	g_autoptr(MdKv) b = NULL;
	g_autoptr(MdKv) c = NULL;

	ASSERT_OK(md_kv_decode("", 0, &a));
	ASSERT_EQ(md_kv_size(a), 0);
	/* VDSM: no key but the seal is "empty metadata", accepted. */
	ASSERT_OK(md_kv_decode(only_seal, strlen(only_seal), &b));
	ASSERT_EQ(md_kv_size(b), 0);
	ASSERT_OK(md_kv_decode(nuls, sizeof(nuls), &c));
	ASSERT_EQ(md_kv_size(c), 0);
}

static void test_decode_rules(void)
{
	/* Trailing NULs (O_DIRECT read), a line without '=', white space, '=' in value. */
	static const char text[] = " KEY = value \r\n"
				   "garbage line\n"
				   "EQ=a=b\n"
				   "EMPTY=\n"
				   "DUP=1\n"
				   "DUP=2\n"
				   "NBSP=\xc2\xa0x\xc2\xa0\n"
				   "\0\0\0\0";
	g_autoptr(MdKv) kv = NULL;

	ASSERT_OK(md_kv_decode(text, sizeof(text) - 1, &kv));
	ASSERT_EQ(md_kv_size(kv), 5);
	ASSERT_STREQ(md_kv_get(kv, "KEY"), "value");
	ASSERT_STREQ(md_kv_get(kv, "EQ"), "a=b");
	ASSERT_STREQ(md_kv_get(kv, "EMPTY"), "");
	ASSERT_STREQ(md_kv_get(kv, "DUP"), "2");
	ASSERT_STREQ(md_kv_get(kv, "NBSP"), "x");
	ASSERT_NULL(md_kv_get(kv, "garbage line"));
}

static void test_decode_invalid(void)
{
	g_autoptr(MdKv) kv = NULL;
	g_autofree char *big = NULL;

	ASSERT_ERROR(md_kv_decode("A=\xff\n", 4, &kv), EUCLEAN);
	ASSERT_ERROR(md_kv_decode("A=\xc3\n", 4, &kv), EUCLEAN);
	ASSERT_ERROR(md_kv_decode("A=1\0B=2\n", 8, &kv), EUCLEAN);
	big = g_malloc(MD_KV_MAX_TEXT + 1);
	memset(big, 'a', MD_KV_MAX_TEXT + 1);
	ASSERT_ERROR(md_kv_decode(big, MD_KV_MAX_TEXT + 1, &kv), EUCLEAN);
	ASSERT_NULL(kv);
}

static void test_dict(void)
{
	g_autoptr(MdKv) kv = md_kv_new();
	g_autoptr(MdKv) copy = NULL;
	static const char *const order[] = { "B", "Z", "_X", "a", "\xc3\xa9" };

	md_kv_set(kv, "\xc3\xa9", "e acute");
	md_kv_set(kv, "a", "1");
	md_kv_set(kv, "_X", "2");
	md_kv_set(kv, "Z", "3");
	md_kv_set(kv, "B", "4");
	ASSERT_EQ(md_kv_size(kv), 5);
	for (size_t i = 0; i < G_N_ELEMENTS(order); i++)
		ASSERT_STREQ(md_kv_key_at(kv, i), order[i]);

	md_kv_set(kv, "a", "replaced");
	ASSERT_STREQ(md_kv_get(kv, "a"), "replaced");
	ASSERT_EQ(md_kv_size(kv), 5);
	md_kv_set_int(kv, "N", -42);
	ASSERT_STREQ(md_kv_get(kv, "N"), "-42");

	copy = md_kv_copy(kv);
	ASSERT_TRUE(md_kv_equal(kv, copy));
	md_kv_set(copy, "N", "-43");
	ASSERT_FALSE(md_kv_equal(kv, copy));
	ASSERT_TRUE(md_kv_remove(copy, "N"));
	ASSERT_FALSE(md_kv_remove(copy, "N"));
	ASSERT_NULL(md_kv_get(copy, "N"));
	ASSERT_FALSE(md_kv_equal(kv, copy));
	ASSERT_TRUE(md_kv_remove(kv, "N"));
	ASSERT_TRUE(md_kv_equal(kv, copy));

	/* Bytes that are not UTF-8 never reach the seal. */
	md_kv_set(kv, "BAD", "a\xffz");
	ASSERT_STREQ(md_kv_get(kv, "BAD"), "a\xef\xbf\xbdz");
}

static void test_encode_strips_values(void)
{
	g_autoptr(MdKv) kv = md_kv_new();
	g_autoptr(MdKv) back = NULL;
	g_autofree char *text = NULL;
	size_t len = 0;

	md_kv_set(kv, "DESCRIPTION", "  padded\t");
	text = md_kv_encode(kv, &len);
	ASSERT_TRUE(g_str_has_prefix(text, "DESCRIPTION=padded\n_SHA_CKSUM="));
	ASSERT_OK(md_kv_decode(text, len, &back));
	ASSERT_STREQ(md_kv_get(back, "DESCRIPTION"), "padded");
}

static void test_roundtrip_non_ascii(void)
{
	g_autoptr(MdKv) kv = md_kv_new();
	g_autoptr(MdKv) back = NULL;
	g_autofree char *text = NULL;
	size_t len = 0;

	md_kv_set(kv, "DESCRIPTION", "\xd7\x99\xd7\xa9 caf\xc3\xa9");
	md_kv_set(kv, "VERSION", "5");
	text = md_kv_encode(kv, &len);
	ASSERT_EQ(len, strlen(text));
	ASSERT_OK(md_kv_decode(text, len, &back));
	ASSERT_TRUE(md_kv_equal(kv, back));
}

static void test_tag_encode(void)
{
	static const struct {
		const char *key, *value, *tag;
	} cases[] = {
		{ "DESCRIPTION", "a b", "MDT_DESCRIPTION=a&32&b" },
		{ "POOL_UUID", "x,y", "MDT_POOL_UUID=x&44&y" },
		{ "DESCRIPTION", "a&b", "MDT_DESCRIPTION=a&38&b" },
		{ "DESCRIPTION", "\xd7\x99", "MDT_DESCRIPTION=&1497&" },
		{ "PV0", "pv:x,uuid:y", "MDT_PV0=pv:x&44&uuid:y" },
		{ "K", "_+.-/=!:#", "MDT_K=_+.-/=!:#" },
		{ "K", "", "MDT_K=" },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *tag = md_kv_tag_encode(cases[i].key, cases[i].value);
		g_autoptr(MdKv) kv = NULL;
		const char *tags[] = { tag };

		ASSERT_STREQ(tag, cases[i].tag);
		ASSERT_OK(md_kv_decode_tags(tags, 1, &kv));
		ASSERT_EQ(md_kv_size(kv), 1);
		ASSERT_STREQ(md_kv_get(kv, cases[i].key), cases[i].value);
	}
}

static void test_tags_roundtrip(void)
{
	g_autoptr(MdKv) kv = NULL;
	g_autoptr(MdKv) back = NULL;
	g_autoptr(GPtrArray) tags = g_ptr_array_new_with_free_func(g_free);
	char sum[41];

	ASSERT_OK(md_kv_decode(example_v5, strlen(example_v5), &kv));
	md_kv_set(kv, "DESCRIPTION", "a b,c&d \xd7\x99");
	md_kv_checksum(kv, sum);
	/* Unrelated tags are skipped; tag order is irrelevant. */
	g_ptr_array_add(tags, g_strdup("RHAT_storage_domain"));
	g_ptr_array_add(tags, md_kv_tag_encode(MD_KV_CHECKSUM_KEY, sum));
	for (size_t i = md_kv_size(kv); i-- > 0;) {
		const char *key = md_kv_key_at(kv, i);

		g_ptr_array_add(tags, md_kv_tag_encode(key, md_kv_get(kv, key)));
	}
	ASSERT_OK(md_kv_decode_tags((const char *const *)tags->pdata, tags->len, &back));
	ASSERT_TRUE(md_kv_equal(kv, back));

	/* A broken seal in tags is caught too. */
	g_free(tags->pdata[1]);
	tags->pdata[1] = g_strdup("MDT__SHA_CKSUM=0000000000000000000000000000000000000000");
	g_clear_pointer(&back, md_kv_free);
	ASSERT_ERROR(md_kv_decode_tags((const char *const *)tags->pdata, tags->len, &back),
		     EUCLEAN);
}

static void test_tag_decode_edges(void)
{
	g_autoptr(MdKv) kv = NULL;
	const char *lenient[] = { "MDT_A=x&y", "MDT_B=&&32&", "MDT_C=&32", "MDT_D=&0065&" };
	const char *bad_cp[] = { "MDT_A=&1114112&" };
	const char *surrogate[] = { "MDT_A=&55296&" };
	const char *nul[] = { "MDT_A=&0&" };
	const char *newline[] = { "MDT_A=&10&" };

	/* VDSM's regex: only "&<digits>&" is an escape. */
	ASSERT_OK(md_kv_decode_tags(lenient, G_N_ELEMENTS(lenient), &kv));
	ASSERT_STREQ(md_kv_get(kv, "A"), "x&y");
	ASSERT_STREQ(md_kv_get(kv, "B"), "&");
	ASSERT_STREQ(md_kv_get(kv, "C"), "&32");
	ASSERT_STREQ(md_kv_get(kv, "D"), "A");
	g_clear_pointer(&kv, md_kv_free);

	ASSERT_ERROR(md_kv_decode_tags(bad_cp, 1, &kv), EUCLEAN);
	ASSERT_ERROR(md_kv_decode_tags(surrogate, 1, &kv), EUCLEAN);
	ASSERT_ERROR(md_kv_decode_tags(nul, 1, &kv), EUCLEAN);
	ASSERT_ERROR(md_kv_decode_tags(newline, 1, &kv), EUCLEAN);
	ASSERT_OK(md_kv_decode_tags(NULL, 0, &kv));
	ASSERT_EQ(md_kv_size(kv), 0);
}

int main(void)
{
	TEST_RUN(test_checksum_vectors);
	TEST_RUN(test_checksum_non_ascii);
	TEST_RUN(test_examples);
	TEST_RUN(test_broken_seal);
	TEST_RUN(test_decode_empty);
	TEST_RUN(test_decode_rules);
	TEST_RUN(test_decode_invalid);
	TEST_RUN(test_dict);
	TEST_RUN(test_encode_strips_values);
	TEST_RUN(test_roundtrip_non_ascii);
	TEST_RUN(test_tag_encode);
	TEST_RUN(test_tags_roundtrip);
	TEST_RUN(test_tag_decode_edges);
	return 0;
}
