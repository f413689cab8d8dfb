/*
 * Unit tests for metadata/md-block.c, with the vectors of
 * reference/ovirt-storage-format.md sections 3, 4, 6 and 9.1.
 */
#include "metadata/md-block.h"

#include <string.h>
#include <glib.h>

#include "common/names.h"
#include "tests/unit/tests.h"

#include "common/banned.h"

#define MIB (1024ull * 1024)

static void test_slot_layout(void)
{
	MdBlockSlots s;
	uint64_t off = 0;

	/* Reference 6.4 examples. */
	ASSERT_OK(md_block_slot_offset(4, 100, &off));
	ASSERT_EQ(off, 51200);
	ASSERT_OK(md_block_slot_offset(5, 0, &off));
	ASSERT_EQ(off, 1048576);
	ASSERT_OK(md_block_slot_offset(5, 100, &off));
	ASSERT_EQ(off, 1867776);

	ASSERT_OK(md_block_slots(5, &s));
	ASSERT_EQ(s.base, 1 * MIB);
	ASSERT_EQ(s.slot_size, 8192);
	ASSERT_EQ(s.first_slot, 1);
	for (int v = 2; v <= 4; v++) {
		ASSERT_OK(md_block_slots(v, &s));
		ASSERT_EQ(s.base, 0);
		ASSERT_EQ(s.slot_size, 512);
		ASSERT_EQ(s.first_slot, 4);
	}
	ASSERT_ERROR(md_block_slots(0, &s), EPROTONOSUPPORT);
	ASSERT_ERROR(md_block_slots(1, &s), EPROTONOSUPPORT);
	ASSERT_ERROR(md_block_slots(6, &s), EPROTONOSUPPORT);
	ASSERT_ERROR(md_block_slot_offset(0, 4, &off), EPROTONOSUPPORT);

	/* The last slot ends inside the v5 area (1 MiB .. 17 MiB) and the v4 one. */
	ASSERT_EQ(MD_BLOCK_MAX_SLOT, 1947);
	ASSERT_OK(md_block_slot_offset(5, 1947, &off));
	ASSERT_EQ(off, 1 * MIB + 1947 * 8192);
	ASSERT_TRUE(off + 8192 <= 17 * MIB);
	ASSERT_OK(md_block_slot_offset(4, 1947, &off));
	ASSERT_TRUE(off + 512 <= 1 * MIB);
	ASSERT_ERROR(md_block_slot_offset(5, 1948, &off), ERANGE);
	ASSERT_ERROR(md_block_slot_offset(4, UINT32_MAX, &off), ERANGE);
}

static void test_lease_offset(void)
{
	uint64_t off = 0, leases = 0;

	/* Reference 9.1: (100 + slot) * align, inside the 2048 * align leases LV. */
	ASSERT_OK(md_block_lease_offset(0, 1 * MIB, &off));
	ASSERT_EQ(off, 100 * MIB);
	ASSERT_OK(md_block_lease_offset(5, 1 * MIB, &off));
	ASSERT_EQ(off, 105 * MIB);
	ASSERT_OK(md_block_lease_offset(1, 8 * MIB, &off));
	ASSERT_EQ(off, 101 * 8 * MIB);
	ASSERT_OK(md_block_special_lv_size(MD_BLOCK_LV_LEASES, 1 * MIB, &leases));
	ASSERT_OK(md_block_lease_offset(MD_BLOCK_MAX_SLOT, 1 * MIB, &off));
	ASSERT_EQ(off + 1 * MIB, leases);
	ASSERT_ERROR(md_block_lease_offset(MD_BLOCK_MAX_SLOT + 1, 1 * MIB, &off), ERANGE);
	ASSERT_ERROR(md_block_lease_offset(1, 512, &off), EINVAL);
	ASSERT_ERROR(md_block_lease_offset(1, 3 * MIB, &off), EINVAL);
}

static void test_slot_pick(void)
{
	uint32_t used[MD_BLOCK_MAX_SLOT + 8];
	uint32_t slot = 0;
	size_t n = 0;

	ASSERT_OK(md_block_slot_pick(5, NULL, 0, &slot));
	ASSERT_EQ(slot, 1);
	ASSERT_OK(md_block_slot_pick(4, NULL, 0, &slot));
	ASSERT_EQ(slot, 4);

	/* Unsorted, with duplicates and values out of range: the lowest hole. */
	{
		const uint32_t u[] = { 4, 1, 2, 2, 99999, 0, 1 };

		ASSERT_OK(md_block_slot_pick(5, u, G_N_ELEMENTS(u), &slot));
		ASSERT_EQ(slot, 3);
		/* v4 (and domains converted to v5) start at 4. */
		ASSERT_OK(md_block_slot_pick(4, u, G_N_ELEMENTS(u), &slot));
		ASSERT_EQ(slot, 5);
	}

	for (uint32_t i = MD_BLOCK_MAX_SLOT; i >= 1; i--)
		used[n++] = i;
	ASSERT_ERROR(md_block_slot_pick(5, used, n, &slot), ENOSPC);
	used[0] = 0; /* frees slot 1947 */
	ASSERT_OK(md_block_slot_pick(5, used, n, &slot));
	ASSERT_EQ(slot, MD_BLOCK_MAX_SLOT);
	ASSERT_OK(md_block_slot_pick(3, used, n, &slot));
	ASSERT_EQ(slot, MD_BLOCK_MAX_SLOT);
	ASSERT_ERROR(md_block_slot_pick(1, used, n, &slot), EPROTONOSUPPORT);
}

static const char *const volume_tags[] = {
	"IU_11111111-aaaa-4aaa-8aaa-000000000001",
	"PU_00000000-0000-0000-0000-000000000000",
	"MD_4",
	"some_other_tag",
};

static void test_lv_tags_parse(void)
{
	MdLvTags t;

	ASSERT_OK(md_lv_tags_parse(volume_tags, G_N_ELEMENTS(volume_tags), &t));
	ASSERT_TRUE(t.has_image);
	ASSERT_STREQ(t.image, "11111111-aaaa-4aaa-8aaa-000000000001");
	ASSERT_EQ(t.removal, MD_LV_REMOVAL_NONE);
	ASSERT_TRUE(t.has_parent);
	ASSERT_STREQ(t.parent, ""); /* blank UUID: a base volume */
	ASSERT_TRUE(t.has_slot);
	ASSERT_EQ(t.slot, 4);
	ASSERT_FALSE(t.initializing);
	ASSERT_TRUE(md_lv_tags_is_volume(&t));

	{
		const char *const tags[] = { "PU_11111111-bbbb-4bbb-8bbb-000000000001",
					     "IU__remove_me_img1", "MD_1947" };

		ASSERT_OK(md_lv_tags_parse(tags, 3, &t));
		ASSERT_STREQ(t.parent, "11111111-bbbb-4bbb-8bbb-000000000001");
		ASSERT_STREQ(t.image, "img1");
		ASSERT_EQ(t.removal, MD_LV_REMOVAL_PENDING);
		ASSERT_EQ(t.slot, 1947);
		ASSERT_FALSE(md_lv_tags_is_volume(&t));
	}
	{
		const char *const tags[] = { "IU__remove_me_ZERO_img1", "MD_5", "PU_base" };

		ASSERT_OK(md_lv_tags_parse(tags, 3, &t));
		ASSERT_STREQ(t.image, "img1");
		ASSERT_EQ(t.removal, MD_LV_REMOVAL_ZERO);
		ASSERT_STREQ(t.parent, "base");
	}
	{
		/* Creation not finished: only the temporary tag. */
		const char *const tags[] = { "OVIRT_VOL_INITIALIZING" };

		ASSERT_OK(md_lv_tags_parse(tags, 1, &t));
		ASSERT_TRUE(t.initializing);
		ASSERT_FALSE(t.has_image || t.has_parent || t.has_slot);
		ASSERT_FALSE(md_lv_tags_is_volume(&t));
	}
	{
		/* A missing tag is no error, but no volume either. */
		const char *const tags[] = { "IU_img", "MD_7" };

		ASSERT_OK(md_lv_tags_parse(tags, 2, &t));
		ASSERT_FALSE(md_lv_tags_is_volume(&t));
		ASSERT_OK(md_lv_tags_parse(NULL, 0, &t));
		ASSERT_FALSE(md_lv_tags_is_volume(&t));
	}
	{
		/* MDT_ (domain metadata) is not MD_. */
		const char *const tags[] = { "MDT_CLASS=Data", "IU_i", "PU_p", "MD_9" };

		ASSERT_OK(md_lv_tags_parse(tags, 4, &t));
		ASSERT_EQ(t.slot, 9);
	}
}

static void assert_tags_bad(const char *a, const char *b)
{
	const char *const tags[] = { a, b };
	MdLvTags t;

	memset(&t, 0x5a, sizeof(t));
	ASSERT_ERROR(md_lv_tags_parse(tags, b ? 2 : 1, &t), EUCLEAN);
	ASSERT_EQ(t.slot, 0x5a5a5a5a); /* not written on failure */
}

static void test_lv_tags_bad(void)
{
	assert_tags_bad("IU_a", "IU_b");
	assert_tags_bad("PU_a", "PU_a");
	assert_tags_bad("MD_1", "MD_2");
	assert_tags_bad("MD_", NULL);
	assert_tags_bad("MD_x", NULL);
	assert_tags_bad("MD_-1", NULL);
	assert_tags_bad("MD_+1", NULL);
	assert_tags_bad("MD_1948", NULL);
	assert_tags_bad("MD_99999999999999999999", NULL);
	assert_tags_bad("MD_ 1", NULL);
	assert_tags_bad("IU_", NULL);
	assert_tags_bad("IU__remove_me_", NULL);
	assert_tags_bad("IU_.hidden", NULL);
	assert_tags_bad("IU_-x", NULL);
	assert_tags_bad("PU_", NULL);
	assert_tags_bad("PU_a/b", NULL);
	assert_tags_bad("IU_01234567890123456789012345678901234567890123456789012345678901234",
			NULL);
}

static void test_lv_tags_format(void)
{
	MdLvTags t = { 0 };
	g_auto(GStrv) tags = NULL;
	g_auto(GStrv) tags2 = NULL;
	g_auto(GStrv) tags3 = NULL;
	MdLvTags back;

	ASSERT_OK(md_lv_tags_parse(volume_tags, G_N_ELEMENTS(volume_tags), &t));
	ASSERT_OK(md_lv_tags_format(&t, &tags));
	ASSERT_EQ(g_strv_length(tags), 3);
	ASSERT_STREQ(tags[0], volume_tags[0]);
	ASSERT_STREQ(tags[1], volume_tags[1]);
	ASSERT_STREQ(tags[2], volume_tags[2]);

	t.removal = MD_LV_REMOVAL_ZERO;
	t.initializing = true;
	g_strlcpy(t.parent, "vol-1", sizeof(t.parent));
	t.slot = 1947;
	ASSERT_OK(md_lv_tags_format(&t, &tags2));
	ASSERT_EQ(g_strv_length(tags2), 4);
	ASSERT_STREQ(tags2[0], "OVIRT_VOL_INITIALIZING");
	ASSERT_STREQ(tags2[1], "IU__remove_me_ZERO_11111111-aaaa-4aaa-8aaa-000000000001");
	ASSERT_STREQ(tags2[2], "PU_vol-1");
	ASSERT_STREQ(tags2[3], "MD_1947");
	ASSERT_OK(md_lv_tags_parse((const char *const *)tags2, 4, &back));
	ASSERT_TRUE(back.has_image && back.has_parent && back.has_slot && back.initializing);
	ASSERT_STREQ(back.image, t.image);
	ASSERT_EQ(back.removal, t.removal);
	ASSERT_STREQ(back.parent, t.parent);
	ASSERT_EQ(back.slot, t.slot);

	/* Only what is set. */
	memset(&t, 0, sizeof(t));
	t.initializing = true;
	ASSERT_OK(md_lv_tags_format(&t, &tags3));
	ASSERT_EQ(g_strv_length(tags3), 1);

	memset(&t, 0, sizeof(t));
	t.has_slot = true;
	t.slot = 1948;
	ASSERT_ERROR(md_lv_tags_format(&t, &tags3), EINVAL);
	memset(&t, 0, sizeof(t));
	t.has_image = true; /* empty name */
	ASSERT_ERROR(md_lv_tags_format(&t, &tags3), EINVAL);
	memset(&t, 0, sizeof(t));
	t.has_parent = true;
	g_strlcpy(t.parent, ".x", sizeof(t.parent));
	ASSERT_ERROR(md_lv_tags_format(&t, &tags3), EINVAL);
}

static void assert_strv(char **got, const char *const *want)
{
	ASSERT_EQ(g_strv_length(got), g_strv_length((char **)want));
	for (size_t i = 0; want[i]; i++)
		ASSERT_STREQ(got[i], want[i]);
}

static void test_tags_diff(void)
{
	const char *const old_tags[] = { "RHAT_storage_domain", "MDT_A=1", "MDT_B=2",
					 "MDT__SHA_CKSUM=x", "MDT_B=2", NULL };
	const char *const new_tags[] = { "MDT_A=1", "MDT_B=3", "MDT__SHA_CKSUM=y", "MDT_B=3",
					 NULL };
	const char *const want_add[] = { "MDT_B=3", "MDT__SHA_CKSUM=y", NULL };
	const char *const want_del[] = { "MDT_B=2", "MDT__SHA_CKSUM=x", NULL };
	const char *const want_del_all[] = { "RHAT_storage_domain", "MDT_B=2", "MDT__SHA_CKSUM=x",
					     NULL };
	const char *const none[] = { NULL };
	g_auto(GStrv) add = NULL;
	g_auto(GStrv) del = NULL;

	/* Only MDT_ tags: the marker tag stays. */
	md_block_tags_diff(old_tags, new_tags, MD_BLOCK_MDT_PREFIX, &add, &del);
	assert_strv(add, want_add);
	assert_strv(del, want_del);
	g_clear_pointer(&add, g_strfreev);
	g_clear_pointer(&del, g_strfreev);

	md_block_tags_diff(old_tags, new_tags, NULL, &add, &del);
	assert_strv(add, want_add);
	assert_strv(del, want_del_all);
	g_clear_pointer(&add, g_strfreev);
	g_clear_pointer(&del, g_strfreev);

	md_block_tags_diff(new_tags, new_tags, NULL, &add, &del);
	assert_strv(add, none);
	assert_strv(del, none);
	g_clear_pointer(&add, g_strfreev);
	g_clear_pointer(&del, g_strfreev);

	md_block_tags_diff(NULL, new_tags, "MDT_", &add, &del);
	ASSERT_EQ(g_strv_length(add), 3);
	assert_strv(del, none);
}

static void test_kv_tags(void)
{
	g_autoptr(MdKv) kv = md_kv_new();
	g_autoptr(MdKv) back = NULL;
	g_auto(GStrv) tags = NULL;

	/* Reference section 3 vector: "key 1=value 1", "key 2=value 2". */
	md_kv_set(kv, "key 1", "value 1");
	md_kv_set(kv, "key 2", "value 2");
	tags = md_block_kv_tags(kv);
	ASSERT_EQ(g_strv_length(tags), 3);
	ASSERT_STREQ(tags[0], "MDT_key&32&1=value&32&1");
	ASSERT_STREQ(tags[1], "MDT_key&32&2=value&32&2");
	ASSERT_STREQ(tags[2], "MDT__SHA_CKSUM=ad4e8ffdd89dde809bf1ed700838b590b08a3826");
	ASSERT_OK(md_kv_decode_tags((const char *const *)tags, 3, &back));
	ASSERT_TRUE(md_kv_equal(kv, back));
	g_clear_pointer(&tags, g_strfreev);

	/* The empty dictionary: just the seal. */
	g_clear_pointer(&kv, md_kv_free);
	kv = md_kv_new();
	tags = md_block_kv_tags(kv);
	ASSERT_EQ(g_strv_length(tags), 1);
	ASSERT_STREQ(tags[0], "MDT__SHA_CKSUM=da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

static void test_pv_mapping(void)
{
	static const char v[] = "pv:360014051f5d6c8b2c6a4c8ab2ea8e3c6,uuid:yW2FpO-mnUq-dGTO-d0nI-"
				"Q08Y-nLDQ-I5mFYB,pestart:0,pecount:77,mapoffset:20";
	g_autofree char *enc = NULL;
	MdBlockPv pv;
	unsigned idx = 0;
	char key[8];

	ASSERT_OK(md_block_pv_decode(v, &pv));
	ASSERT_STREQ(pv.guid, "360014051f5d6c8b2c6a4c8ab2ea8e3c6");
	ASSERT_STREQ(pv.uuid, "yW2FpO-mnUq-dGTO-d0nI-Q08Y-nLDQ-I5mFYB");
	ASSERT_EQ(pv.pestart, 0);
	ASSERT_EQ(pv.pecount, 77);
	ASSERT_EQ(pv.mapoffset, 20);
	ASSERT_OK(md_block_pv_encode(&pv, &enc));
	ASSERT_STREQ(enc, v);

	/* Item order does not matter; unknown items are ignored; ':' may be in a value. */
	ASSERT_OK(md_block_pv_decode("mapoffset:0,pecount:1,pestart:0,uuid:U-1,pv:a:b,x:y", &pv));
	ASSERT_STREQ(pv.guid, "a:b");

	ASSERT_ERROR(md_block_pv_decode("", &pv), EUCLEAN);
	ASSERT_ERROR(md_block_pv_decode("pv:a,uuid:U,pestart:0,pecount:1", &pv), EUCLEAN);
	ASSERT_ERROR(md_block_pv_decode("pv:a,uuid:U,pestart:0,pecount:1,mapoffset:0,junk", &pv),
		     EUCLEAN);
	ASSERT_ERROR(md_block_pv_decode("pv:a,pv:b,uuid:U,pestart:0,pecount:1,mapoffset:0", &pv),
		     EUCLEAN);
	ASSERT_ERROR(md_block_pv_decode("pv:a,uuid:U,pestart:0,pecount:x,mapoffset:0", &pv),
		     EUCLEAN);
	ASSERT_ERROR(md_block_pv_decode("pv:,uuid:U,pestart:0,pecount:1,mapoffset:0", &pv),
		     EUCLEAN);
	ASSERT_ERROR(md_block_pv_decode("pv:a,uuid:U U,pestart:0,pecount:1,mapoffset:0", &pv),
		     EUCLEAN);
	ASSERT_ERROR(md_block_pv_decode(NULL, &pv), EINVAL);

	g_strlcpy(pv.guid, "a,b", sizeof(pv.guid));
	g_clear_pointer(&enc, g_free);
	ASSERT_ERROR(md_block_pv_encode(&pv, &enc), EINVAL);
	ASSERT_NULL(enc);

	ASSERT_OK(md_block_pv_key(0, key));
	ASSERT_STREQ(key, "PV0");
	ASSERT_OK(md_block_pv_key(9, key));
	ASSERT_STREQ(key, "PV9");
	ASSERT_ERROR(md_block_pv_key(10, key), EINVAL);
	ASSERT_TRUE(md_block_pv_key_parse("PV3", &idx));
	ASSERT_EQ(idx, 3);
	ASSERT_TRUE(md_block_pv_key_parse("PV12", &idx));
	ASSERT_FALSE(md_block_pv_key_parse("PV", &idx));
	ASSERT_FALSE(md_block_pv_key_parse("PVx", &idx));
	ASSERT_FALSE(md_block_pv_key_parse("POOL_UUID", &idx));
	ASSERT_FALSE(md_block_pv_key_parse("PV-1", &idx));
}

static void test_special_lvs(void)
{
	const char *const *names = md_block_special_lvs();
	uint64_t size = 0;

	ASSERT_EQ(g_strv_length((char **)names), 7);
	ASSERT_STREQ(names[0], "metadata");
	ASSERT_STREQ(names[6], "master");
	for (size_t i = 0; names[i]; i++) {
		ASSERT_TRUE(md_block_lv_is_special(names[i]));
		ASSERT_OK(md_block_special_lv_size(names[i], 1 * MIB, &size));
	}
	ASSERT_FALSE(md_block_lv_is_special("11111111-aaaa-4aaa-8aaa-000000000001"));
	ASSERT_FALSE(md_block_lv_is_special(NULL));

	/* Reference 6.2 requested sizes. */
	ASSERT_OK(md_block_special_lv_size("metadata", 1 * MIB, &size));
	ASSERT_EQ(size, 128 * MIB);
	ASSERT_OK(md_block_special_lv_size("ids", 1 * MIB, &size));
	ASSERT_EQ(size, 8 * MIB);
	ASSERT_OK(md_block_special_lv_size("leases", 1 * MIB, &size));
	ASSERT_EQ(size, 2048 * MIB);
	ASSERT_OK(md_block_special_lv_size("leases", 2 * MIB, &size));
	ASSERT_EQ(size, 4096 * MIB);
	ASSERT_OK(md_block_special_lv_size("inbox", 1 * MIB, &size));
	ASSERT_EQ(size, 16 * MIB);
	ASSERT_OK(md_block_special_lv_size("xleases", 1 * MIB, &size));
	ASSERT_EQ(size, 1024 * MIB);
	ASSERT_OK(md_block_special_lv_size("master", 8 * MIB, &size));
	ASSERT_EQ(size, 1024 * MIB);
	ASSERT_ERROR(md_block_special_lv_size("other", 1 * MIB, &size), ENOENT);
	ASSERT_ERROR(md_block_special_lv_size("ids", 1000, &size), EINVAL);
}

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

static void test_slot_record(void)
{
	uint8_t slot[MD_BLOCK_SLOT_SIZE_V5] = { 0 };
	uint8_t buf[MD_BLOCK_RECORD_SIZE];
	MdVolume vol, back;
	size_t len = strlen(example_v5);

	/* An 8 KiB v5 slot as read from the metadata LV. */
	memcpy(slot, example_v5, len);
	ASSERT_OK(md_block_slot_decode(slot, sizeof(slot), &vol));
	ASSERT_EQ(vol.capacity, 8388608);
	ASSERT_STREQ(vol.parent, "11111111-bbbb-4bbb-8bbb-000000000001");

	memset(buf, 0xff, sizeof(buf));
	ASSERT_OK(md_block_slot_encode(&vol, 5, buf));
	ASSERT_MEMEQ(buf, example_v5, len);
	for (size_t i = len; i < sizeof(buf); i++)
		ASSERT_EQ(buf[i], 0);
	ASSERT_OK(md_block_slot_decode(buf, sizeof(buf), &back));
	ASSERT_EQ(back.capacity, vol.capacity);
	ASSERT_STREQ(back.image, vol.image);

	/* Cleared (512 NUL bytes, what a rollback writes), short, corrupt. */
	memset(slot, 0, sizeof(slot));
	ASSERT_ERROR(md_block_slot_decode(slot, sizeof(slot), &vol), ENODATA);
	ASSERT_ERROR(md_block_slot_decode(slot, 511, &vol), EINVAL);
	memcpy(slot, "CAP=x\nEOF\n", 10);
	ASSERT_ERROR(md_block_slot_decode(slot, 512, &vol), EUCLEAN);
	/* Bytes past the record in a v5 slot are not read. */
	memset(slot, 0, sizeof(slot));
	memcpy(slot, example_v5, len);
	memset(slot + 512, 'x', 100);
	ASSERT_OK(md_block_slot_decode(slot, sizeof(slot), &vol));
}

int main(void)
{
	TEST_RUN(test_slot_layout);
	TEST_RUN(test_lease_offset);
	TEST_RUN(test_slot_pick);
	TEST_RUN(test_lv_tags_parse);
	TEST_RUN(test_lv_tags_bad);
	TEST_RUN(test_lv_tags_format);
	TEST_RUN(test_tags_diff);
	TEST_RUN(test_kv_tags);
	TEST_RUN(test_pv_mapping);
	TEST_RUN(test_special_lvs);
	TEST_RUN(test_slot_record);
	return 0;
}
