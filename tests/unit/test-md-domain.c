/* Unit tests for metadata/md-domain.c (reference sections 4 and 11). */
#include "metadata/md-domain.h"

#include <string.h>
#include <glib.h>

#include "tests/unit/tests.h"

#include "common/banned.h"

#define SD_UUID "a5a6e1f0-5b1e-4c4e-9d7c-0f0e1d2c3b4a"
#define SP_UUID "c0c0e1f0-0b1e-4c4e-9d7c-0f0e1d2c3b4c"
#define SD2_UUID "b4b4e1f0-4b1e-4c4e-9d7c-0f0e1d2c3b4b"

/* Reference section 4. */
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
				 "POOL_DOMAINS=" SD_UUID ":Active\n"
				 "POOL_SPM_ID=-1\n"
				 "POOL_SPM_LVER=-1\n"
				 "POOL_UUID=" SP_UUID "\n"
				 "REMOTE_PATH=server.example.com:/export/data\n"
				 "ROLE=Master\n"
				 "SDUUID=" SD_UUID "\n"
				 "TYPE=NFS\n"
				 "VERSION=5\n"
				 "_SHA_CKSUM=893d60a73eff0605cbbf45853462ad12875d6281\n";

static MdKv *kv_from(const char *text)
{
	MdKv *kv = NULL;

	ASSERT_OK(md_kv_decode(text, strlen(text), &kv));
	return kv;
}

/* VDSM tests/storage/filesd_metadata_test.py EXAMPLE_DATA. */
static void test_new_kv_vdsm_vectors(void)
{
	static const struct {
		uint32_t block_size, alignment;
		const char *seal;
	} cases[] = {
		{ 512, 1048576, "9336f77705ff9e3d5faf65c4d0dc818a29de458d" },
		{ 4096, 1048576, "7910a564cc0a340f93aea5680e0e9c2d6ff4903a" },
		{ 4096, 2097152, "769baef6c65aeef08cf6d177c2c44046b2aac877" },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		MdDomainNew p = {
			.uuid = "275766cb-c7d8-43d6-a663-4e52160de620",
			.type = MD_SD_TYPE_LOCALFS,
			.cls = MD_SD_CLASS_DATA,
			.description = "storage domain",
			.block_size = cases[i].block_size,
			.alignment = cases[i].alignment,
			.remote_path = "server:/path",
		};
		g_autoptr(MdKv) kv = md_domain_new_kv(&p);
		g_autoptr(MdDomainInfo) info = NULL;
		g_autofree char *text = md_kv_encode(kv, NULL);
		g_autofree char *expect = g_strdup_printf(
			"ALIGNMENT=%u\nBLOCK_SIZE=%u\nCLASS=Data\nDESCRIPTION=storage domain\n"
			"IOOPTIMEOUTSEC=10\nLEASERETRIES=3\nLEASETIMESEC=60\nLOCKPOLICY=\n"
			"LOCKRENEWALINTERVALSEC=5\nPOOL_UUID=\nREMOTE_PATH=server:/path\n"
			"ROLE=Regular\nSDUUID=275766cb-c7d8-43d6-a663-4e52160de620\n"
			"TYPE=LOCALFS\nVERSION=5\n_SHA_CKSUM=%s\n",
			cases[i].alignment, cases[i].block_size, cases[i].seal);

		ASSERT_STREQ(text, expect);
		ASSERT_OK(md_domain_parse(kv, &info));
		ASSERT_EQ(info->block_size, cases[i].block_size);
		ASSERT_EQ(info->alignment, cases[i].alignment);
		ASSERT_EQ(info->role, MD_SD_ROLE_REGULAR);
		ASSERT_NULL(info->pools[0]);
		ASSERT_FALSE(info->has_pool_keys);
		ASSERT_EQ(info->spm_id, -1);
		ASSERT_NULL(info->vg_uuid);
	}
}

/* make_master(new_kv(...)) is exactly the reference's example. */
static void test_make_master_example(void)
{
	MdDomainNew p = {
		.uuid = SD_UUID,
		.type = MD_SD_TYPE_NFS,
		.cls = MD_SD_CLASS_DATA,
		.description = "sample-v5",
		.block_size = 512,
		.alignment = 1048576,
		.remote_path = "server.example.com:/export/data",
	};
	g_autoptr(MdKv) kv = md_domain_new_kv(&p);
	g_autoptr(MdKv) example = kv_from(example_v5);
	g_autofree char *text = NULL;
	char sum[41];

	md_domain_make_master(kv, SP_UUID, "sample-pool", 1);
	ASSERT_TRUE(md_kv_equal(kv, example));
	md_kv_checksum(kv, sum);
	ASSERT_STREQ(sum, "893d60a73eff0605cbbf45853462ad12875d6281");
	text = md_kv_encode(kv, NULL);
	ASSERT_STREQ(text, example_v5);
}

static void test_parse_example(void)
{
	g_autoptr(MdKv) kv = kv_from(example_v5);
	g_autoptr(MdDomainInfo) info = NULL;

	ASSERT_OK(md_domain_parse(kv, &info));
	ASSERT_EQ(info->version, 5);
	ASSERT_STREQ(info->uuid, SD_UUID);
	ASSERT_EQ(info->type, MD_SD_TYPE_NFS);
	ASSERT_EQ(info->cls, MD_SD_CLASS_DATA);
	ASSERT_EQ(info->role, MD_SD_ROLE_MASTER);
	ASSERT_STREQ(info->description, "sample-v5");
	ASSERT_STREQ(info->pools[0], SP_UUID);
	ASSERT_NULL(info->pools[1]);
	ASSERT_EQ(info->block_size, 512);
	ASSERT_EQ(info->alignment, 1048576);
	ASSERT_NULL(info->vg_uuid);
	ASSERT_TRUE(info->has_pool_keys);
	ASSERT_EQ(info->master_version, 1);
	ASSERT_STREQ(info->pool_description, "sample-pool");
	ASSERT_EQ(info->n_pool_domains, 1);
	ASSERT_STREQ(info->pool_domains[0].uuid, SD_UUID);
	ASSERT_STREQ(info->pool_domains[0].status, "Active");
	ASSERT_EQ(info->spm_id, -1);
	ASSERT_EQ(info->spm_lver, -1);
	ASSERT_EQ(info->io_op_timeout_sec, 10);
}

static void test_block_domain(void)
{
	MdDomainNew p = {
		.uuid = SD2_UUID,
		.type = MD_SD_TYPE_ISCSI,
		.cls = MD_SD_CLASS_DATA,
		.description = "block",
		.block_size = 512,
		.alignment = 1048576,
		.remote_path = "ignored:/for/block",
		.vg_uuid = "Qb3n2T-aAaA-1234-abcd-EFgh-IJkl-MNopQR",
	};
	g_autoptr(MdKv) kv = md_domain_new_kv(&p);
	g_autoptr(MdDomainInfo) info = NULL;

	ASSERT_NULL(md_kv_get(kv, "REMOTE_PATH"));
	ASSERT_STREQ(md_kv_get(kv, "VGUUID"), p.vg_uuid);
	ASSERT_STREQ(md_kv_get(kv, "TYPE"), "ISCSI");
	ASSERT_OK(md_domain_parse(kv, &info));
	ASSERT_STREQ(info->vg_uuid, p.vg_uuid);
	ASSERT_EQ(info->type, MD_SD_TYPE_ISCSI);

	/* A file domain never gets VGUUID. */
	p.type = MD_SD_TYPE_POSIXFS;
	g_autoptr(MdKv) kv2 = md_domain_new_kv(&p);
	ASSERT_NULL(md_kv_get(kv2, "VGUUID"));
	ASSERT_STREQ(md_kv_get(kv2, "REMOTE_PATH"), "ignored:/for/block");
}

/* Sets key (or removes it with NULL) on the example and parses. */
static int parse_with(const char *key, const char *value)
{
	g_autoptr(MdKv) kv = kv_from(example_v5);
	g_autoptr(MdDomainInfo) info = NULL;

	if (value)
		md_kv_set(kv, key, value);
	else
		md_kv_remove(kv, key);
	return md_domain_parse(kv, &info);
}

static void test_parse_errors(void)
{
	ASSERT_ERROR(parse_with("VERSION", NULL), EUCLEAN);
	ASSERT_ERROR(parse_with("VERSION", "five"), EUCLEAN);
	ASSERT_ERROR(parse_with("VERSION", "6"), EPROTONOSUPPORT);
	ASSERT_ERROR(parse_with("VERSION", "1"), EPROTONOSUPPORT);
	ASSERT_ERROR(parse_with("VERSION", "-1"), EPROTONOSUPPORT);
	ASSERT_ERROR(parse_with("SDUUID", NULL), EUCLEAN);
	ASSERT_ERROR(parse_with("SDUUID", "not-a-uuid"), EUCLEAN);
	ASSERT_ERROR(parse_with("TYPE", "NFS4"), EUCLEAN);
	ASSERT_ERROR(parse_with("TYPE", NULL), EUCLEAN);
	ASSERT_ERROR(parse_with("CLASS", "data"), EUCLEAN);
	ASSERT_ERROR(parse_with("ROLE", NULL), EUCLEAN);
	ASSERT_ERROR(parse_with("ROLE", "Slave"), EUCLEAN);
	ASSERT_ERROR(parse_with("BLOCK_SIZE", "1024"), EUCLEAN);
	ASSERT_ERROR(parse_with("BLOCK_SIZE", "x"), EUCLEAN);
	ASSERT_ERROR(parse_with("ALIGNMENT", "2097152"), EUCLEAN); /* 512 needs 1 MiB */
	ASSERT_ERROR(parse_with("ALIGNMENT", "3145728"), EUCLEAN);
	ASSERT_ERROR(parse_with("POOL_UUID", "nope"), EUCLEAN);
	ASSERT_ERROR(parse_with("POOL_DOMAINS", SD_UUID), EUCLEAN);
	ASSERT_ERROR(parse_with("POOL_DOMAINS", "x:Active"), EUCLEAN);
	ASSERT_ERROR(parse_with("POOL_DOMAINS", SD_UUID ":"), EUCLEAN);
	ASSERT_ERROR(parse_with("POOL_DOMAINS", SD_UUID ":VeryVeryLongStatus"), EUCLEAN);
	ASSERT_ERROR(parse_with("MASTER_VERSION", "one"), EUCLEAN);
	ASSERT_ERROR(parse_with("POOL_SPM_ID", "x"), EUCLEAN);

	ASSERT_OK(parse_with("ALIGNMENT", NULL));
	ASSERT_OK(parse_with("DESCRIPTION", NULL));
	ASSERT_OK(parse_with("IOOPTIMEOUTSEC", "garbage")); /* VDSM intOrDefault() */
	ASSERT_OK(parse_with("POOL_DOMAINS", ""));
	ASSERT_OK(parse_with("SDUUID", "A5A6E1F0-5B1E-4C4E-9D7C-0F0E1D2C3B4A"));
}

static void test_parse_old_versions(void)
{
	g_autoptr(MdKv) kv = kv_from(example_v5);
	g_autoptr(MdDomainInfo) info = NULL;

	md_kv_set(kv, "VERSION", "4");
	md_kv_remove(kv, "BLOCK_SIZE");
	md_kv_remove(kv, "ALIGNMENT");
	ASSERT_OK(md_domain_parse(kv, &info));
	ASSERT_EQ(info->version, 4);
	ASSERT_EQ(info->block_size, 512);
	ASSERT_EQ(info->alignment, 1048576);
	g_clear_pointer(&info, md_domain_info_free);

	/* Below v5 only 512 / 1 MiB exist. */
	md_kv_set(kv, "BLOCK_SIZE", "4096");
	ASSERT_ERROR(md_domain_parse(kv, &info), EUCLEAN);
	md_kv_set(kv, "VERSION", "5");
	ASSERT_OK(md_domain_parse(kv, &info));
	ASSERT_EQ(info->block_size, 4096);
	g_clear_pointer(&info, md_domain_info_free);

	md_kv_set(kv, "VERSION", "0");
	md_kv_remove(kv, "BLOCK_SIZE");
	ASSERT_OK(md_domain_parse(kv, &info));
	ASSERT_EQ(info->version, 0);
}

static void test_pools(void)
{
	g_autoptr(MdKv) kv = kv_from(example_v5);
	g_autoptr(MdDomainInfo) info = NULL;

	/* Old data may list the blank UUID; empty items are dropped too. */
	md_kv_set(kv, "POOL_UUID", "00000000-0000-0000-0000-000000000000,," SP_UUID ",");
	ASSERT_OK(md_domain_parse(kv, &info));
	ASSERT_STREQ(info->pools[0], SP_UUID);
	ASSERT_NULL(info->pools[1]);
}

static void test_attach(void)
{
	MdDomainNew p = {
		.uuid = SD2_UUID,
		.type = MD_SD_TYPE_NFS,
		.cls = MD_SD_CLASS_DATA,
		.description = "d",
		.block_size = 512,
		.alignment = 1048576,
	};
	g_autoptr(MdKv) data = md_domain_new_kv(&p);
	g_autoptr(MdKv) iso = NULL;
	g_autoptr(MdDomainInfo) info = NULL;

	md_domain_attach(data, SP_UUID);
	ASSERT_STREQ(md_kv_get(data, "POOL_UUID"), SP_UUID);
	ASSERT_STREQ(md_kv_get(data, "ROLE"), "Regular");
	/* Attaching a data domain elsewhere replaces the pool. */
	md_domain_attach(data, SD_UUID);
	ASSERT_STREQ(md_kv_get(data, "POOL_UUID"), SD_UUID);
	ASSERT_NULL(md_kv_get(data, "MASTER_VERSION"));

	p.cls = MD_SD_CLASS_ISO;
	iso = md_domain_new_kv(&p);
	md_domain_attach(iso, SP_UUID);
	md_domain_attach(iso, SD_UUID);
	md_domain_attach(iso, SD_UUID);
	ASSERT_STREQ(md_kv_get(iso, "POOL_UUID"), SP_UUID "," SD_UUID);
	ASSERT_OK(md_domain_parse(iso, &info));
	ASSERT_STREQ(info->pools[0], SP_UUID);
	ASSERT_STREQ(info->pools[1], SD_UUID);
	ASSERT_NULL(info->pools[2]);
	ASSERT_EQ(info->cls, MD_SD_CLASS_ISO);
}

static void test_set_pool_domains(void)
{
	g_autoptr(MdKv) kv = kv_from(example_v5);
	g_autoptr(MdDomainInfo) info = NULL;
	MdPoolDomain doms[2] = {
		{ SD_UUID, "Active" },
		{ SD2_UUID, "Attached" },
	};

	md_domain_set_pool_domains(kv, doms, 2);
	ASSERT_STREQ(md_kv_get(kv, "POOL_DOMAINS"), SD_UUID ":Active," SD2_UUID ":Attached");
	ASSERT_OK(md_domain_parse(kv, &info));
	ASSERT_EQ(info->n_pool_domains, 2);
	ASSERT_STREQ(info->pool_domains[1].uuid, SD2_UUID);
	ASSERT_STREQ(info->pool_domains[1].status, "Attached");
	g_clear_pointer(&info, md_domain_info_free);

	md_domain_set_pool_domains(kv, NULL, 0);
	ASSERT_STREQ(md_kv_get(kv, "POOL_DOMAINS"), "");
	ASSERT_OK(md_domain_parse(kv, &info));
	ASSERT_EQ(info->n_pool_domains, 0);
}

static void test_strings(void)
{
	ASSERT_STREQ(md_sd_type_to_string(MD_SD_TYPE_GLUSTERFS), "GLUSTERFS");
	ASSERT_STREQ(md_sd_type_to_string(MD_SD_TYPE_FCP), "FCP");
	ASSERT_STREQ(md_sd_type_to_string(MD_SD_TYPE_MAX), "UNKNOWN");
	ASSERT_STREQ(md_sd_class_to_string(MD_SD_CLASS_BACKUP), "Backup");
	ASSERT_STREQ(md_sd_class_to_string(MD_SD_CLASS_ISO), "Iso");
	ASSERT_STREQ(md_sd_role_to_string(MD_SD_ROLE_MASTER), "Master");
	ASSERT_STREQ(md_sd_role_to_string(MD_SD_ROLE_REGULAR), "Regular");
}

int main(void)
{
	TEST_RUN(test_new_kv_vdsm_vectors);
	TEST_RUN(test_make_master_example);
	TEST_RUN(test_parse_example);
	TEST_RUN(test_block_domain);
	TEST_RUN(test_parse_errors);
	TEST_RUN(test_parse_old_versions);
	TEST_RUN(test_pools);
	TEST_RUN(test_attach);
	TEST_RUN(test_set_pool_domains);
	TEST_RUN(test_strings);
	return 0;
}
