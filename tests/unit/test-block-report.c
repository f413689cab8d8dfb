/*
 * Unit tests for block/lvm-report.c (lvm's JSON reports) and the error
 * mapping of block/lvm.c, on output recorded from lvm 2.03.16 (Debian 12)
 * run with activation disabled.  No lvm is run here.
 */
#include "block/lvm-int.h"

#include <string.h>
#include <glib.h>

#include "tests/unit/tests.h"

#include "common/banned.h"

/*
 * Recorded reports (data/README.md): lvm-pvs.json has an orphan PV, lvm-vgs.json
 * escaped MDT_ tags, lvm-lvs.json an LV of three segments on two PVs listed out
 * of order and a striped LV.
 */
static char *data(const char *name)
{
	g_autofree char *path = g_build_filename(OVSTORE_TEST_DATA_DIR, name, NULL);
	g_autoptr(GError) error = NULL;
	char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, &error))
		TEST_FAIL("cannot read %s: %s", path, error->message);
	return text;
}

static GPtrArray *parse_ok(int (*parse)(const char *, size_t, GPtrArray **), const char *json)
{
	GPtrArray *a = NULL;

	ASSERT_OK(parse(json, strlen(json), &a));
	ASSERT_NOT_NULL(a);
	return a;
}

static void test_pvs(void)
{
	g_autofree char *json = data("lvm-pvs.json");
	g_autoptr(GPtrArray) pvs = parse_ok(blk_report_parse_pvs, json);
	const BlkPv *a, *b;

	ASSERT_EQ(pvs->len, 2);
	a = pvs->pdata[0];
	b = pvs->pdata[1];
	ASSERT_STREQ(a->name, "/dev/loop0");
	ASSERT_STREQ(a->uuid, "yW2FpO-mnUq-dGTO-d0nI-Q08Y-nLDQ-I5mFYB");
	ASSERT_STREQ(a->vg_name, "vgtest");
	ASSERT_EQ(a->size, 2009071616);
	ASSERT_EQ(a->dev_size, 2147483648);
	ASSERT_EQ(a->pe_start, 135266304);
	ASSERT_EQ(a->pe_count, 479);
	ASSERT_EQ(a->pe_alloc_count, 5);
	ASSERT_EQ(a->mda_size, 135262208);
	ASSERT_EQ(a->mda_free, 67627008);
	ASSERT_STREQ(b->vg_name, "");
	ASSERT_EQ(b->mda_size, 0);
}

static void test_vgs(void)
{
	g_autofree char *json = data("lvm-vgs.json");
	g_autoptr(GPtrArray) vgs = parse_ok(blk_report_parse_vgs, json);
	const BlkVg *vg;

	ASSERT_EQ(vgs->len, 1);
	vg = vgs->pdata[0];
	ASSERT_STREQ(vg->name, "vgtest");
	ASSERT_STREQ(vg->uuid, "aAXURt-EPn7-4E55-ZUoR-B4N8-4J4P-esMUwP");
	ASSERT_EQ(vg->size, 4018143232);
	ASSERT_EQ(vg->free, 3951034368);
	ASSERT_EQ(vg->extent_size, 4194304);
	ASSERT_EQ(vg->extent_count, 958);
	ASSERT_EQ(vg->free_count, 942);
	ASSERT_EQ(vg->mda_size, 135262208);
	ASSERT_EQ(vg->mda_free, 67627008);
	ASSERT_EQ(vg->seqno, 9);
	ASSERT_EQ(vg->pv_count, 2);
	ASSERT_EQ(vg->lv_count, 6);
	ASSERT_EQ(g_strv_length(vg->tags), 3);
	ASSERT_STREQ(vg->tags[0], "RHAT_storage_domain");
	ASSERT_STREQ(vg->tags[1], "MDT_CLASS=Data");
	ASSERT_STREQ(vg->tags[2], "MDT_x&32&y");
}

static void test_lvs(void)
{
	g_autofree char *json = data("lvm-lvs.json");
	g_autoptr(GPtrArray) lvs = parse_ok(blk_report_parse_lvs, json);
	const BlkLv *a, *lv1, *st;

	/* Sorted by name; rows of one LV grouped, segments sorted. */
	ASSERT_EQ(lvs->len, 3);
	a = lvs->pdata[0];
	lv1 = lvs->pdata[1];
	st = lvs->pdata[2];
	ASSERT_STREQ(a->name, "a-lv");
	ASSERT_EQ(g_strv_length(a->tags), 0);
	ASSERT_EQ(a->n_segs, 1);

	ASSERT_STREQ(lv1->name, "lv1");
	ASSERT_STREQ(lv1->vg_name, "vgtest");
	ASSERT_STREQ(lv1->uuid, "B4lcCL-72e3-23sP-rLHD-kJFv-drg4-fiFRho");
	ASSERT_EQ(lv1->size, 2160066560);
	ASSERT_EQ(lv1->extent_size, 4194304);
	ASSERT_EQ(g_strv_length(lv1->tags), 3);
	ASSERT_STREQ(lv1->tags[2], "MD_4");
	ASSERT_EQ(lv1->n_segs, 3);
	ASSERT_EQ(lv1->segs[0].le, 0);
	ASSERT_EQ(lv1->segs[0].extents, 3);
	ASSERT_STREQ(lv1->segs[0].type, "linear");
	ASSERT_EQ(lv1->segs[0].n_stripes, 1);
	ASSERT_STREQ(lv1->segs[0].stripes[0].pv, "/dev/loop0");
	ASSERT_EQ(lv1->segs[0].stripes[0].pe, 0);
	ASSERT_EQ(lv1->segs[1].le, 3);
	ASSERT_EQ(lv1->segs[1].stripes[0].pe, 5);
	ASSERT_EQ(lv1->segs[2].le, 477);
	ASSERT_EQ(lv1->segs[2].extents, 38);
	ASSERT_STREQ(lv1->segs[2].stripes[0].pv, "/dev/loop1");
	ASSERT_EQ((3 + 474 + 38) * lv1->extent_size, lv1->size);

	ASSERT_STREQ(st->tags[1], "x&y=z");
	ASSERT_EQ(st->n_segs, 1);
	ASSERT_STREQ(st->segs[0].type, "striped");
	ASSERT_EQ(st->segs[0].stripe_size, 65536);
	ASSERT_EQ(st->segs[0].n_stripes, 2);
	ASSERT_STREQ(st->segs[0].stripes[0].pv, "/dev/loop0");
	ASSERT_EQ(st->segs[0].stripes[0].pe, 1);
	ASSERT_STREQ(st->segs[0].stripes[1].pv, "/dev/loop1");
	ASSERT_EQ(st->segs[0].stripes[1].pe, 0);
}

/* lvm >= 2.03.17 "json_std": numbers as numbers, lists as arrays. */
static void test_json_std(void)
{
	const char *vgs = "{\"report\":[{\"vg\":[{\"vg_name\":\"v\",\"vg_uuid\":\"u\","
			  "\"vg_size\":8388608,\"vg_free\":0,\"vg_extent_size\":4194304,"
			  "\"vg_extent_count\":2,\"vg_free_count\":0,\"vg_tags\":[\"a\",\"b\"],"
			  "\"vg_mda_size\":1044480,\"vg_mda_free\":1000,"
			  "\"vg_seqno\":3,\"pv_count\":1,\"lv_count\":0}]}]}";
	g_autoptr(GPtrArray) a = parse_ok(blk_report_parse_vgs, vgs);
	const BlkVg *vg = a->pdata[0];

	ASSERT_EQ(vg->size, 8388608);
	ASSERT_EQ(g_strv_length(vg->tags), 2);
	ASSERT_STREQ(vg->tags[1], "b");
}

static void test_empty_reports(void)
{
	/* What lvm prints for nothing. */
	static const char empty_vgs[] = "  {\n      \"report\": [\n          {\n"
					"              \"vg\": [\n              ]\n"
					"          }\n      ]\n  }\n";
	g_autoptr(GPtrArray) lvs = parse_ok(blk_report_parse_lvs, "{\"report\":[{\"seg\":[]}]}");
	g_autoptr(GPtrArray) vgs = parse_ok(blk_report_parse_vgs, empty_vgs);

	ASSERT_EQ(lvs->len, 0);
	ASSERT_EQ(vgs->len, 0);
}

static void assert_bad(int (*parse)(const char *, size_t, GPtrArray **), const char *json)
{
	GPtrArray *a = NULL;

	ASSERT_ERROR(parse(json, strlen(json), &a), EPROTO);
	ASSERT_NULL(a);
}

/* One lvs --segments row of LV "U" (2 extents of 4 MiB) with these fields. */
static char *seg(const char *name, const char *type, const char *le, const char *size_pe,
		 const char *stripes, const char *devices)
{
	return g_strdup_printf("{\"vg_name\":\"v\", \"lv_name\":\"%s\", \"lv_uuid\":\"U\", "
			       "\"lv_size\":\"8388608\", \"lv_tags\":\"\", "
			       "\"vg_extent_size\":\"4194304\", \"segtype\":\"%s\", "
			       "\"seg_start_pe\":\"%s\", \"seg_size_pe\":\"%s\", "
			       "\"stripes\":\"%s\", "
			       "\"stripe_size\":\"0\", \"devices\":\"%s\"}",
			       name, type, le, size_pe, stripes, devices);
}

static char *segs_json(const char *row1, const char *row2)
{
	return g_strdup_printf("{\"report\":[{\"seg\":[%s%s%s]}]}", row1, row2 ? "," : "",
			       row2 ? row2 : "");
}

static void assert_bad_segs(const char *row1, const char *row2)
{
	g_autofree char *json = segs_json(row1, row2);

	assert_bad(blk_report_parse_lvs, json);
}

#define VG_ROW(size)                                                                               \
	"{\"report\":[{\"vg\":[{\"vg_name\":\"v\",\"vg_uuid\":\"u\",\"vg_size\":" size "}]}]}"

static void test_malformed(void)
{
	g_autofree char *good = seg("l", "linear", "0", "2", "1", "/dev/loop0(0)");
	g_autofree char *gap = seg("l", "linear", "3", "1", "1", "/dev/loop0(9)");
	g_autofree char *overlap = seg("l", "linear", "1", "1", "1", "/dev/loop0(9)");
	g_autofree char *renamed = seg("other", "linear", "2", "1", "1", "/dev/loop0(9)");
	g_autofree char *dev1 = seg("l", "linear", "0", "2", "1", "/dev/loop0");
	g_autofree char *dev2 = seg("l", "linear", "0", "2", "1", "/dev/loop0(x)");
	g_autofree char *dev3 = seg("l", "linear", "0", "2", "1", "(0)");
	g_autofree char *dev4 = seg("l", "striped", "0", "2", "2", "/dev/loop0(0)");
	g_autofree char *dev5 = seg("l", "linear", "0", "2", "1", "");
	g_autofree char *num = seg("l", "linear", "0", "-2", "1", "/dev/loop0(0)");
	g_autofree char *zero = seg("l", "linear", "0", "0", "1", "/dev/loop0(0)");
	g_autofree char *areas = seg("z", "zero", "0", "2", "0", "");
	g_autofree char *json = segs_json(areas, NULL);
	GPtrArray *a = NULL;

	assert_bad(blk_report_parse_pvs, "");
	assert_bad(blk_report_parse_pvs, "not json");
	assert_bad(blk_report_parse_pvs, "[]");
	assert_bad(blk_report_parse_pvs, "{\"report\":{}}");
	assert_bad(blk_report_parse_pvs, "{\"report\":[{\"vg\":[]}]}");
	assert_bad(blk_report_parse_pvs, "{\"report\":[{\"pv\":[1]}]}");
	assert_bad(blk_report_parse_pvs, "{\"report\":[{\"pv\":[{\"pv_name\":\"/dev/x\"}]}]}");
	assert_bad(blk_report_parse_vgs, VG_ROW("-1"));
	assert_bad(blk_report_parse_vgs, VG_ROW("\"1.5\""));
	assert_bad(blk_report_parse_vgs, VG_ROW("\"\""));

	assert_bad_segs(good, gap);
	assert_bad_segs(good, overlap);
	assert_bad_segs(overlap, NULL); /* does not start at extent 0 */
	assert_bad_segs(good, renamed); /* rows of one UUID disagree */
	assert_bad_segs(dev1, NULL);
	assert_bad_segs(dev2, NULL);
	assert_bad_segs(dev3, NULL);
	assert_bad_segs(dev4, NULL); /* 2 stripes, 1 device */
	assert_bad_segs(dev5, NULL);
	assert_bad_segs(num, NULL);
	assert_bad_segs(zero, NULL);

	/* A segment type without areas parses (the extent map refuses it later). */
	ASSERT_OK(blk_report_parse_lvs(json, strlen(json), &a));
	ASSERT_EQ(((BlkLv *)a->pdata[0])->segs[0].n_stripes, 0);
	g_ptr_array_unref(a);
}

static void assert_mapped(int exit_code, const char *err, int expect, const char *msg)
{
	char buf[512];

	memset(buf, 'x', sizeof(buf));
	ASSERT_EQ(blk_lvm_map_error(exit_code, err, buf, sizeof(buf)), expect);
	ASSERT_STREQ(buf, msg);
}

#define ACT "  WARNING: Activation disabled. No device-mapper interaction will be attempted.\n"

/* lvm's stderr is ACT, "  " LINE "\n", then more; the message is LINE. */
static const struct {
	int exit_code;
	const char *line;
	const char *more;
	int err;
} cases[] = {
	{ 5, "Logical Volume \"lv1\" already exists in volume group \"vg\"", NULL, EEXIST },
	{ 5, "A volume group called vgtest already exists.", NULL, EEXIST },
	{ 5, "Volume group \"vg\" has insufficient free space (432 extents): 25600 required.",
	  NULL, ENOSPC },
	{ 5, "Insufficient free space: 25598 extents needed, but only 432 available", NULL,
	  ENOSPC },
	{ 5, "Failed to find logical volume \"vg/nosuch\"", NULL, ENOENT },
	{ 5, "Volume group \"vgzz\" not found", "  Cannot process volume group vgzz\n", ENOENT },
	{ 5, "Existing logical volume \"nosuch\" not found in volume group \"vg\"", NULL, ENOENT },
	{ 3, "Logical volume name \"bad name\" is invalid.",
	  "  Run `lvcreate --help' for more information.\n", EINVAL },
	{ 3, "Size is not a multiple of 512. Try using 4194304 or 4194816.",
	  "  Invalid argument for --size: 4194305b\n  Error during parsing of command line.\n",
	  EINVAL },
	{ 5, "Can't initialize physical volume \"/dev/loop0\" of volume group \"vg\" without -ff",
	  "  /dev/loop0: physical volume not initialized.\n", EBUSY },
	{ 5, "Cannot use /dev/loop5: device is rejected by filter config", NULL, ENODEV },
	{ 5, "New size (1 extents) matches existing size (1 extents).", NULL, EALREADY },
	{ 5, "New size given (1 extents) not larger than existing size (2 extents)", NULL,
	  EINVAL },
	{ 5, "Logical volume vg/lv in use.", NULL, EBUSY },
	{ 5, "Internal error: something odd", NULL, EIO },
	{ 2, "No such command 'x'.  Try 'help'.", NULL, EINVAL },
};

static void test_error_mapping(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *err = g_strconcat(ACT "  ", cases[i].line, "\n",
						   cases[i].more ? cases[i].more : "", NULL);

		assert_mapped(cases[i].exit_code, err, -cases[i].err, cases[i].line);
	}

	assert_mapped(0, ACT "  WARNING: This metadata update is NOT backed up.\n", 0, "");
	/* pvcreate's question, answered "no" from /dev/null. */
	assert_mapped(5,
		      "WARNING: ext4 signature detected on /dev/loop2 at offset 1080. "
		      "Wipe it? [y/n]: [n]\n"
		      "  Aborted wiping of ext4.\n"
		      "  1 existing signature left on the device.\n",
		      -EBUSY, "Aborted wiping of ext4.");
	/* Leak warnings and the activation warning are never the message. */
	assert_mapped(5,
		      "File descriptor 10 (/dev/null) leaked on lvm invocation. "
		      "Parent PID 1: x\n" ACT "  Volume group \"v\" not found\n",
		      -ENOENT, "Volume group \"v\" not found");
	/* Only warnings: the first telling one is the message; unknown is -EIO. */
	assert_mapped(5, ACT "  WARNING: Device /dev/x has size of 0 sectors.\n", -EIO,
		      "WARNING: Device /dev/x has size of 0 sectors.");
	assert_mapped(5, ACT, -EIO, "lvm failed with exit status 5");
	assert_mapped(4, "", -EIO, "lvm failed with exit status 4");
	assert_mapped(-1, NULL, -EIO, "lvm was killed");
}

int main(void)
{
	TEST_RUN(test_pvs);
	TEST_RUN(test_vgs);
	TEST_RUN(test_lvs);
	TEST_RUN(test_json_std);
	TEST_RUN(test_empty_reports);
	TEST_RUN(test_malformed);
	TEST_RUN(test_error_mapping);
	return 0;
}
