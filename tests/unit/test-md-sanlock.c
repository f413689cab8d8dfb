/* Unit tests for metadata/md-sanlock.c: a leader record sanlock wrote. */
#include "metadata/md-sanlock.h"

#include <errno.h>
#include <string.h>
#include <glib.h>

#include "metadata/md-bytes.h"
#include "metadata/md-journal.h"
#include "tests/unit/tests.h"

#include "common/banned.h"

#define SECTOR 512

/* SDM of a file domain after 9 hand-overs, host 2 released version 9. */
static void load(uint8_t *buf)
{
	g_autofree char *path =
		g_build_filename(OVSTORE_TEST_DATA_DIR, "sanlock-sdm-released.leader", NULL);
	g_autoptr(GError) error = NULL;
	g_autofree char *data = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &data, &len, &error))
		TEST_FAIL("cannot read %s: %s", path, error->message);
	ASSERT_EQ(len, SECTOR);
	memcpy(buf, data, SECTOR);
}

/* Sets the checksum as sanlock does after an edit. */
static void reseal(uint8_t *buf)
{
	md_put_le32(buf + 168, ~md_crc32c(1, buf, 168));
}

static void test_released(void)
{
	uint8_t buf[SECTOR];
	MdSanlockLeader l;

	load(buf);
	ASSERT_OK(md_sanlock_leader_parse(buf, sizeof(buf), &l));
	ASSERT_EQ(l.owner_id, 2);
	ASSERT_EQ(l.owner_generation, 1);
	ASSERT_EQ(l.lver, 9);
	ASSERT_EQ(l.timestamp, 0);
	ASSERT_STREQ(l.resource, "SDM");
	ASSERT_TRUE(md_sanlock_leader_free(&l));
}

static void test_held(void)
{
	uint8_t buf[SECTOR];
	MdSanlockLeader l;

	load(buf);
	md_put_le64(buf + 152, 33732); /* what the holder's sanlock writes */
	reseal(buf);
	ASSERT_OK(md_sanlock_leader_parse(buf, sizeof(buf), &l));
	ASSERT_EQ(l.timestamp, 33732);
	ASSERT_FALSE(md_sanlock_leader_free(&l));
}

static void test_invalid(void)
{
	uint8_t buf[SECTOR];
	MdSanlockLeader l;

	load(buf);
	ASSERT_ERROR(md_sanlock_leader_parse(buf, MD_SANLOCK_LEADER_SIZE - 1, &l), EINVAL);
	/* one bit flipped anywhere in the checked range: refused */
	for (size_t i = 0; i < 168; i += 7) {
		buf[i] ^= 0x10;
		ASSERT_ERROR(md_sanlock_leader_parse(buf, sizeof(buf), &l), EUCLEAN);
		buf[i] ^= 0x10;
	}
	/* a delta lease (a lockspace slot) and a cleared resource are not leaders */
	md_put_le32(buf, 0x12212010u);
	reseal(buf);
	ASSERT_ERROR(md_sanlock_leader_parse(buf, sizeof(buf), &l), EUCLEAN);
	md_put_le32(buf, 0x11282016u);
	reseal(buf);
	ASSERT_ERROR(md_sanlock_leader_parse(buf, sizeof(buf), &l), EUCLEAN);
	/* never formatted */
	memset(buf, 0, sizeof(buf));
	ASSERT_ERROR(md_sanlock_leader_parse(buf, sizeof(buf), &l), EUCLEAN);
	/* bytes past the checksum are sanlock's debug fields: not checked */
	load(buf);
	buf[190] ^= 0xff;
	ASSERT_OK(md_sanlock_leader_parse(buf, sizeof(buf), &l));
}

int main(void)
{
	TEST_RUN(test_released);
	TEST_RUN(test_held);
	TEST_RUN(test_invalid);
	return 0;
}
