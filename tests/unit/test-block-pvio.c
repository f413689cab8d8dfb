/*
 * Unit tests for block/pvio.c (and lvio.c's dispatch): LV bytes land on the
 * PV where the extent map says, across segments and PVs, buffered and
 * O_DIRECT; zeroing clears exactly its range; ranges past the LV end are
 * refused before any byte moves.  The "PVs" are two sparse files in
 * /var/tmp (O_DIRECT may fail on tmpfs), so BLKZEROOUT falls back to
 * writing zeros here; test-block-lvm and the pytest suite cover real devices.
 */
#include "block/pvio.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "common/fileio.h"
#include "tests/unit/tests.h"

#include "common/banned.h"

#define KIB 1024ull
#define EXT (64 * KIB)     /* extent size */
#define PE_START (16 * KIB) /* where extent 0 starts on each "PV" */

static char *dir;
static char *paths[2];

static void make_pvs(void)
{
	dir = g_strdup("/var/tmp/ovstore-pvio-XXXXXX");
	ASSERT_NOT_NULL(g_mkdtemp(dir));
	for (int i = 0; i < 2; i++) {
		int fd;

		paths[i] = g_strdup_printf("%s/pv%d", dir, i);
		fd = open(paths[i], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		ASSERT_TRUE(fd >= 0);
		ASSERT_OK(ftruncate(fd, (off_t)(PE_START + 8 * EXT)));
		close(fd);
	}
}

static void remove_pvs(void)
{
	for (int i = 0; i < 2; i++) {
		(void)unlink(paths[i]);
		g_free(paths[i]);
	}
	(void)rmdir(dir);
	g_free(dir);
}

/* An LV of 4 extents: LE 0-1 on pv1 PE 5-6, LE 2-3 on pv0 PE 1-2. */
static ExtMap *lv_map(void)
{
	const ExtMapPv pvs[] = { { PE_START, 8 }, { PE_START, 8 } };
	const ExtMapStripe a[] = { { .pv = 1, .pe = 5 } };
	const ExtMapStripe b[] = { { .pv = 0, .pe = 1 } };
	const ExtMapSegment segs[] = {
		{ .le = 0, .extents = 2, .n_stripes = 1, .stripes = a },
		{ .le = 2, .extents = 2, .n_stripes = 1, .stripes = b },
	};
	ExtMap *map = NULL;

	ASSERT_OK(blk_extmap_new(EXT, pvs, 2, segs, 2, &map));
	return map;
}

static void read_file(int pv, uint64_t off, void *buf, size_t len)
{
	int fd = open(paths[pv], O_RDONLY | O_CLOEXEC);

	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void fill_file(int pv, unsigned char c)
{
	size_t len = PE_START + 8 * EXT;
	g_autofree unsigned char *buf = g_malloc(len);
	int fd = open(paths[pv], O_WRONLY | O_CLOEXEC);

	memset(buf, c, len);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(pwrite(fd, buf, len, 0), (ssize_t)len);
	close(fd);
}

static void test_write_lands_by_map(void)
{
	const char *const p[] = { paths[0], paths[1] };
	g_autoptr(LvIo) io = NULL;
	g_autoptr(ExtMap) map = lv_map();
	size_t len = 2 * EXT; /* LV [EXT, 3 * EXT): pv1 PE 6, then pv0 PE 1 */
	g_autofree unsigned char *buf = g_malloc(len);
	g_autofree unsigned char *back = g_malloc(len);
	unsigned char guard[16];

	fill_file(0, 0xee);
	fill_file(1, 0xee);
	ASSERT_OK(blk_pvio_open(p, 2, &io));
	ASSERT_STREQ(blk_lvio_name(io), "pv");
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	ASSERT_EQ(blk_lvio_pwrite(io, map, false, buf, len, EXT), (ssize_t)len);
	ASSERT_OK(blk_lvio_sync(io, false));
	read_file(1, PE_START + 6 * EXT, back, EXT);
	ASSERT_MEMEQ(back, buf, EXT);
	read_file(0, PE_START + 1 * EXT, back, EXT);
	ASSERT_MEMEQ(back, buf + EXT, EXT);
	/* the bytes around the pieces are untouched */
	read_file(1, PE_START + 6 * EXT - sizeof(guard), guard, sizeof(guard));
	for (size_t i = 0; i < sizeof(guard); i++)
		ASSERT_EQ(guard[i], 0xee);
	read_file(0, PE_START + 2 * EXT, guard, sizeof(guard));
	for (size_t i = 0; i < sizeof(guard); i++)
		ASSERT_EQ(guard[i], 0xee);
	/* read back through the map, unaligned */
	memset(back, 0, len);
	ASSERT_EQ(blk_lvio_pread(io, map, false, back, len - 3, EXT + 3), (ssize_t)(len - 3));
	ASSERT_MEMEQ(back, buf + 3, len - 3);
}

static void test_direct(void)
{
	const char *const p[] = { paths[0], paths[1] };
	g_autoptr(LvIo) io = NULL;
	g_autoptr(ExtMap) map = lv_map();
	size_t len = 8 * KIB;
	unsigned char *buf = ov_aligned_alloc(len);
	unsigned char *back = ov_aligned_alloc(len);
	int r = blk_pvio_open(p, 2, &io);

	if (r == -EINVAL) { /* a file system without O_DIRECT */
		fprintf(stderr, "O_DIRECT not supported in /var/tmp, skipped\n");
		goto out;
	}
	ASSERT_OK(r);
	memset(buf, 0x42, len);
	/* across the segment boundary: 4 KiB on pv1, 4 KiB on pv0 */
	ASSERT_EQ(blk_lvio_pwrite(io, map, true, buf, len, 2 * EXT - 4 * KIB), (ssize_t)len);
	memset(back, 0, len);
	ASSERT_EQ(blk_lvio_pread(io, map, true, back, len, 2 * EXT - 4 * KIB), (ssize_t)len);
	ASSERT_MEMEQ(back, buf, len);
	read_file(0, PE_START + 1 * EXT, back, 4 * KIB);
	ASSERT_MEMEQ(back, buf, 4 * KIB);
	/* an offset off the block size: the storage's answer, passed through */
	ASSERT_ERROR(blk_lvio_pread(io, map, true, back, 512, 1), EINVAL);
out:
	ov_aligned_free(buf);
	ov_aligned_free(back);
}

static void test_zero_exact_range(void)
{
	const char *const p[] = { paths[0], paths[1] };
	g_autoptr(LvIo) io = NULL;
	g_autoptr(ExtMap) map = lv_map();
	uint64_t size = blk_extmap_size(map);
	g_autofree unsigned char *all = g_malloc(size);
	/* not sector aligned at either end, across both segments */
	uint64_t off = EXT + 100, len = 2 * EXT - 300;

	fill_file(0, 0xa5);
	fill_file(1, 0xa5);
	ASSERT_OK(blk_pvio_open(p, 2, &io));
	ASSERT_OK(blk_lvio_zero(io, map, off, len));
	ASSERT_OK(blk_lvio_sync(io, true));
	ASSERT_EQ(blk_lvio_pread(io, map, false, all, size, 0), (ssize_t)size);
	for (uint64_t i = 0; i < size; i++)
		ASSERT_EQ(all[i], i >= off && i < off + len ? 0 : 0xa5);
}

static void test_range_checked(void)
{
	const char *const p[] = { paths[0], paths[1] };
	g_autoptr(LvIo) io = NULL;
	g_autoptr(ExtMap) map = lv_map();
	uint64_t size = blk_extmap_size(map);
	unsigned char b[16] = { 0 };

	fill_file(0, 0x11);
	fill_file(1, 0x11);
	ASSERT_OK(blk_pvio_open(p, 2, &io));
	ASSERT_ERROR(blk_lvio_pwrite(io, map, false, b, sizeof(b), size - 8), ERANGE);
	ASSERT_ERROR(blk_lvio_pread(io, map, false, b, 1, size), ERANGE);
	ASSERT_ERROR(blk_lvio_zero(io, map, size - 8, 16), ERANGE);
	ASSERT_EQ(blk_lvio_pread(io, map, false, b, 0, size), 0);
	ASSERT_OK(blk_lvio_zero(io, map, size, 0));
	/* nothing was written by the refused write */
	read_file(0, PE_START + 3 * EXT - 8, b, 8);
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(b[i], 0x11);
}

/* The place of a range on one PV, for an asynchronous engine: only a range
 * inside one piece has one; the bytes written there are the LV's. */
static void test_target(void)
{
	const char *const p[] = { paths[0], paths[1] };
	g_autoptr(LvIo) io = NULL;
	g_autoptr(ExtMap) map = lv_map();
	uint64_t size = blk_extmap_size(map);
	uint64_t dev_off = 0;
	int fd = -1;
	unsigned char b[8];

	fill_file(0, 0x22);
	fill_file(1, 0x22);
	ASSERT_OK(blk_pvio_open(p, 2, &io));
	/* LE 1 is pv1 PE 6; both extents of the first segment are one piece */
	ASSERT_OK(blk_lvio_target(io, map, false, 2 * EXT, 0, &fd, &dev_off));
	ASSERT_EQ(dev_off, PE_START + 5 * EXT);
	ASSERT_OK(blk_lvio_target(io, map, false, 4096, EXT + 100, &fd, &dev_off));
	ASSERT_EQ(dev_off, PE_START + 6 * EXT + 100);
	ASSERT_EQ(pwrite(fd, "\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a", 8, (off_t)dev_off), 8);
	ASSERT_EQ(blk_lvio_pread(io, map, false, b, 8, EXT + 100), 8);
	ASSERT_MEMEQ(b, "\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a", 8);
	/* LE 2 starts pv0 PE 1 */
	ASSERT_OK(blk_lvio_target(io, map, true, EXT, 2 * EXT, &fd, &dev_off));
	ASSERT_EQ(dev_off, PE_START + 1 * EXT);
	/* across the segment boundary: no one place */
	ASSERT_ERROR(blk_lvio_target(io, map, false, 4096, 2 * EXT - 512, &fd, &dev_off),
		     EAGAIN);
	ASSERT_ERROR(blk_lvio_target(io, map, false, 4096, size - 512, &fd, &dev_off), ERANGE);
	ASSERT_ERROR(blk_lvio_target(io, map, false, 0, 0, &fd, &dev_off), EINVAL);
}

static void test_open_fails_cleanly(void)
{
	const char *const p[] = { paths[0], "/nonexistent/ovstore-pv" };
	LvIo *io = NULL;

	ASSERT_ERROR(blk_pvio_open(p, 2, &io), ENOENT);
	ASSERT_NULL(io);
	blk_lvio_free(NULL);
}

int main(void)
{
	make_pvs();
	TEST_RUN(test_write_lands_by_map);
	TEST_RUN(test_direct);
	TEST_RUN(test_zero_exact_range);
	TEST_RUN(test_range_checked);
	TEST_RUN(test_target);
	TEST_RUN(test_open_fails_cleanly);
	remove_pvs();
	return 0;
}
