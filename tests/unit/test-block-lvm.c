/*
 * The lvm runner (block/lvm.c) against real lvm on loop devices.
 *
 * Needs root, /dev/loop-control, lvm, blkid and mkfs.ext4; exits 77
 * (skipped) without them.  Storage: four sparse files in /var/tmp, each
 * attached to a loop device with LO_FLAGS_AUTOCLEAR and unlinked at once,
 * so whatever happens to this process (a failed assertion, SIGKILL) the
 * kernel detaches the loops when its fds close and no file is left.
 *
 *   pv1, pv2  the domain's PVs (1 GiB each)
 *   fs        an ext4 file system that pvcreate must refuse untouched
 *   foreign   another VG, standing for the host's own VGs: the domain's
 *             ctx must never see it, nor its ctx ours
 *
 * The loop fds are opened without O_CLOEXEC on purpose: if the runner let
 * them leak into lvm, lvm would say "File descriptor N leaked", which every
 * step checks for.
 */
#include "block/lvm.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>

#include "common/fileio.h"
#include "metadata/md-block.h"
#include "tests/unit/tests.h"

#include "common/banned.h"

#define MIB (1024ull * 1024)
#define GIB (1024 * MIB)
#define EXT (4 * MIB)

typedef struct Loop {
	char *dev;
	int fd;	       /* O_RDWR, no O_CLOEXEC: keeps the loop attached */
	int direct_fd; /* O_DIRECT, for the data checks */
} Loop;

static Loop loops[4];
enum { PV1, PV2, FS, FOREIGN };
static char vg_name[64];
static char foreign_vg[64];

static char *find_tool(const char *name)
{
	static const char *const dirs[] = { "/usr/sbin", "/sbin" };
	char *p = g_find_program_in_path(name);

	for (size_t i = 0; !p && i < G_N_ELEMENTS(dirs); i++) {
		p = g_build_filename(dirs[i], name, NULL);
		if (access(p, X_OK) < 0)
			g_clear_pointer(&p, g_free);
	}
	return p;
}

static int skip(const char *why)
{
	fprintf(stderr, "skipped: %s\n", why);
	return 77;
}

/* A sparse file of size bytes on a new autoclear loop device; the file is unlinked. */
static void loop_attach(const char *dir, const char *name, uint64_t size, Loop *ret)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	int file = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	ASSERT_TRUE(ctl >= 0);
	ASSERT_TRUE(file >= 0);
	ASSERT_OK(ftruncate(file, (off_t)size));
	ASSERT_OK(unlink(path));
	for (int tries = 0;; tries++) {
		struct loop_info64 info;
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		g_autofree char *dev = NULL;
		int fd;

		ASSERT_TRUE(n >= 0);
		ASSERT_TRUE(tries < 20);
		dev = g_strdup_printf("/dev/loop%d", n);
		fd = open(dev, O_RDWR); /* no O_CLOEXEC: see the top */
		ASSERT_TRUE(fd >= 0);
		if (ioctl(fd, LOOP_SET_FD, file) < 0) {
			ASSERT_EQ(errno, EBUSY); /* raced with another user: next one */
			close(fd);
			continue;
		}
		memset(&info, 0, sizeof(info));
		info.lo_flags = LO_FLAGS_AUTOCLEAR;
		g_strlcpy((char *)info.lo_file_name, name, sizeof(info.lo_file_name));
		ASSERT_OK(ioctl(fd, LOOP_SET_STATUS64, &info));
		ret->dev = g_steal_pointer(&dev);
		ret->fd = fd;
		ret->direct_fd = open(ret->dev, O_RDWR | O_DIRECT | O_CLOEXEC);
		ASSERT_TRUE(ret->direct_fd >= 0);
		break;
	}
	close(file);
	close(ctl);
}

static void loop_detach(Loop *l)
{
	if (!l->dev)
		return;
	close(l->direct_fd);
	(void)ioctl(l->fd, LOOP_CLR_FD);
	close(l->fd);
	g_clear_pointer(&l->dev, g_free);
}

/* Every lvm run of this thread: no fd leaked into lvm. */
static void assert_no_leak(void)
{
	const char *err = blk_lvm_last_stderr();

	if (strstr(err, "leaked"))
		TEST_FAIL("lvm reports a leaked fd: %s", err);
}

#define RUN_OK(expr)                                                                               \
	do {                                                                                       \
		int _r = (expr);                                                                   \
		if (_r < 0)                                                                        \
			TEST_FAIL("%s = %d (%s): %s", #expr, _r, strerror(-_r),                    \
				  blk_lvm_last_error());                                           \
		assert_no_leak();                                                                  \
	} while (0)

#define RUN_ERR(expr, err)                                                                         \
	do {                                                                                       \
		ASSERT_ERROR(expr, err);                                                           \
		ASSERT_TRUE(*blk_lvm_last_error());                                                \
		fprintf(stderr, "  expected -%s: %s\n", #err, blk_lvm_last_error());               \
		assert_no_leak();                                                                  \
	} while (0)

static void run_tool(const char *const *argv)
{
	g_autoptr(GError) error = NULL;
	int status = 0;

	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
			  NULL, &status, &error))
		TEST_FAIL("cannot run %s: %s", argv[0], error->message);
	if (!g_spawn_check_wait_status(status, &error))
		TEST_FAIL("%s failed: %s", argv[0], error->message);
}

static char *device_checksum(const Loop *l)
{
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autofree uint8_t *buf = g_malloc(MIB);
	off_t off = 0;
	ssize_t n;

	while ((n = pread(l->fd, buf, MIB, off)) > 0) {
		g_checksum_update(sum, buf, (gsize)n);
		off += n;
	}
	ASSERT_EQ(n, 0);
	return g_strdup(g_checksum_get_string(sum));
}

static const BlkPv *find_pv(GPtrArray *pvs, const char *name)
{
	for (guint i = 0; i < pvs->len; i++) {
		const BlkPv *pv = pvs->pdata[i];

		if (strcmp(pv->name, name) == 0)
			return pv;
	}
	TEST_FAIL("PV '%s' not in the report", name);
}

static LvmCtx *ctx_new(const char *const *devs, size_t n)
{
	LvmCtx *ctx = NULL;

	RUN_OK(blk_lvm_new(devs, n, &ctx));
	return ctx;
}

static void test_ctx_checks(void)
{
	const char *const dup[] = { loops[PV1].dev, loops[PV1].dev };
	const char *const rel[] = { "loop0" };
	const char *const quote[] = { "/dev/loop0\"x" };
	const char *const missing[] = { "/dev/ovstore-no-such-device" };
	const char *const notblk[] = { "/dev/null" };
	LvmCtx *ctx = NULL;

	ASSERT_ERROR(blk_lvm_new(dup, 2, &ctx), EINVAL);
	ASSERT_ERROR(blk_lvm_new(rel, 1, &ctx), EINVAL);
	ASSERT_ERROR(blk_lvm_new(quote, 1, &ctx), EINVAL);
	ASSERT_ERROR(blk_lvm_new(missing, 1, &ctx), ENOENT);
	ASSERT_ERROR(blk_lvm_new(notblk, 1, &ctx), ENOTBLK);
	ASSERT_ERROR(blk_lvm_new(dup, 0, &ctx), EINVAL);
	ASSERT_NULL(ctx);
}

/* pvcreate refuses a device with a file system and leaves it as it was. */
static void test_refuse_signature(LvmCtx *ctx, const char *mkfs)
{
	const char *const argv[] = { mkfs, "-q", "-F", loops[FS].dev, NULL };
	g_autofree char *before = NULL;
	g_autofree char *after = NULL;
	g_autoptr(GPtrArray) pvs = NULL;

	run_tool(argv);
	before = device_checksum(&loops[FS]);
	RUN_ERR(blk_pv_create(ctx, loops[FS].dev, 128 * MIB, 1, false), EBUSY);
	ASSERT_NOT_NULL(strstr(blk_lvm_last_error(), "ext4"));
	after = device_checksum(&loops[FS]);
	ASSERT_STREQ(before, after);
	RUN_OK(blk_pv_list(ctx, &pvs));
	ASSERT_EQ(pvs->len, 0);
}

/* Data written through the extent map lands where the report says. */
static void check_io(const ExtMap *map, uint64_t lv_off, uint64_t len, uint8_t fill,
		     const uint64_t *expect_off, const uint32_t *expect_pv, size_t n_expect)
{
	uint8_t *buf = ov_aligned_alloc(len);
	uint8_t *back = ov_aligned_alloc(len);
	ExtMapPiece p[8];
	size_t n = 0, done = 0;
	const int fds[] = { loops[PV1].direct_fd, loops[PV2].direct_fd, loops[FS].direct_fd };

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(fill + i / 512);
	ASSERT_OK(blk_extmap_map(map, lv_off, len, p, G_N_ELEMENTS(p), &n));
	ASSERT_EQ(n, n_expect);
	for (size_t i = 0; i < n; i++) {
		ASSERT_EQ(p[i].pv, expect_pv[i]);
		ASSERT_EQ(p[i].offset, expect_off[i]);
		ASSERT_EQ(pwrite(fds[p[i].pv], buf + done, p[i].len, (off_t)p[i].offset),
			  (ssize_t)p[i].len);
		done += p[i].len;
	}
	ASSERT_EQ(done, len);
	/* Read back at the expected PV offsets, independently of the map. */
	done = 0;
	for (size_t i = 0; i < n; i++) {
		ASSERT_EQ(pread(fds[expect_pv[i]], back + done, p[i].len, (off_t)expect_off[i]),
			  (ssize_t)p[i].len);
		done += p[i].len;
	}
	ASSERT_MEMEQ(back, buf, len);
	ov_aligned_free(buf);
	ov_aligned_free(back);
}

static void assert_zero(int fd, uint64_t off, size_t len)
{
	uint8_t *buf = ov_aligned_alloc(len);

	ASSERT_EQ(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			TEST_FAIL("byte %zu at %" PRIu64 " is not zero", i, off);
	ov_aligned_free(buf);
}

static BlkLv *get_lv(LvmCtx *ctx, const char *name)
{
	BlkLv *lv = NULL;

	RUN_OK(blk_lv_get(ctx, vg_name, name, &lv));
	return lv;
}

static ExtMap *lv_map(LvmCtx *ctx, const BlkLv *lv)
{
	g_autoptr(GPtrArray) pvs = NULL;
	ExtMap *map = NULL;

	RUN_OK(blk_pv_list(ctx, &pvs));
	ASSERT_OK(blk_lv_extmap(ctx, lv, pvs, &map));
	return map;
}

typedef struct Worker {
	LvmCtx *ctx;
	int id;
} Worker;

static gpointer create_lvs(gpointer data)
{
	Worker *w = data;

	for (int i = 0; i < 3; i++) {
		g_autofree char *name = g_strdup_printf("thread%d-%d", w->id, i);

		RUN_OK(blk_lv_create(w->ctx, vg_name, name, 4 * MIB, NULL, NULL));
		RUN_OK(blk_lv_remove(w->ctx, vg_name, name));
	}
	return NULL;
}

static void test_domain(LvmCtx *ctx, LvmCtx *foreign)
{
	const char *const pv_devs[] = { loops[PV1].dev, loops[PV2].dev };
	const char *const foreign_devs[] = { loops[FOREIGN].dev };
	const char *const unready[] = { MD_BLOCK_VG_TAG_UNREADY, NULL };
	const char *const init_tag[] = { MD_BLOCK_TAG_INITIALIZING, NULL };
	g_autoptr(GPtrArray) pvs = NULL;
	g_autoptr(GPtrArray) vgs = NULL;
	g_autoptr(GPtrArray) lvs = NULL;
	g_autoptr(BlkVg) vg = NULL;
	g_autoptr(BlkLv) a = NULL;
	g_autoptr(BlkLv) b = NULL;
	g_autoptr(ExtMap) map = NULL;
	g_autoptr(ExtMap) map2 = NULL;
	g_autoptr(ExtMapHolder) holder = NULL;
	g_autoptr(MdKv) kv = md_kv_new();
	g_autoptr(MdKv) kv_back = NULL;
	g_auto(GStrv) mdt = NULL;
	g_auto(GStrv) vol_tags = NULL;
	g_autoptr(GPtrArray) add = g_ptr_array_new();
	const BlkPv *pv1, *pv2;
	uint64_t pe1, ps1, ps2;
	MdLvTags t = { 0 };
	int64_t start;
	GThread *threads[2];
	Worker workers[2];

	/* A foreign VG, made by another ctx, standing for the host's VGs. */
	RUN_OK(blk_pv_create(foreign, loops[FOREIGN].dev, 4 * MIB, 1, false));
	RUN_OK(blk_vg_create(foreign, foreign_vg, foreign_devs, 1, 4 * MIB, NULL));
	RUN_OK(blk_lv_create(foreign, foreign_vg, "host-lv", 8 * MIB, NULL, NULL));

	/* PVs the oVirt way (reference 6.1): metadata on the first PV only. */
	RUN_OK(blk_pv_create(ctx, loops[PV1].dev, MD_BLOCK_PV_METADATA_SIZE,
			     MD_BLOCK_PV_METADATA_COPIES, true));
	RUN_OK(blk_pv_create(ctx, loops[PV2].dev, MD_BLOCK_PV_METADATA_SIZE,
			     MD_BLOCK_PV_METADATA_COPIES, true));
	RUN_OK(blk_pv_set_metadata_ignore(ctx, loops[PV1].dev, false));
	RUN_ERR(blk_pv_create(ctx, loops[PV1].dev, MD_BLOCK_PV_METADATA_SIZE, 1, false), EBUSY);
	ASSERT_NOT_NULL(strstr(blk_lvm_last_error(), "physical volume"));
	RUN_ERR(blk_pv_create(ctx, loops[FOREIGN].dev, 4 * MIB, 1, false), ENODEV);

	RUN_OK(blk_pv_list(ctx, &pvs));
	ASSERT_EQ(pvs->len, 2);
	pv1 = find_pv(pvs, loops[PV1].dev);
	ASSERT_STREQ(pv1->vg_name, "");
	ASSERT_TRUE(pv1->mda_size >= MD_BLOCK_PV_METADATA_SIZE);
	ASSERT_EQ(pv1->dev_size, 1 * GIB);
	g_clear_pointer(&pvs, g_ptr_array_unref);

	RUN_OK(blk_vg_create(ctx, vg_name, pv_devs, 2, EXT, unready));
	RUN_ERR(blk_vg_create(ctx, vg_name, pv_devs, 2, EXT, unready), EEXIST);
	RUN_ERR(blk_vg_create(ctx, "bad name", pv_devs, 2, EXT, NULL), EINVAL);
	RUN_ERR(blk_vg_create(ctx, "x", foreign_devs, 1, EXT, NULL), ENODEV);
	RUN_ERR(blk_vg_create(ctx, "x", pv_devs, 2, 3 * MIB, NULL), EINVAL);

	/* Each ctx sees its own VG and nothing else. */
	RUN_OK(blk_vg_list(ctx, &vgs));
	ASSERT_EQ(vgs->len, 1);
	ASSERT_STREQ(((BlkVg *)vgs->pdata[0])->name, vg_name);
	g_clear_pointer(&vgs, g_ptr_array_unref);
	RUN_OK(blk_vg_list(foreign, &vgs));
	ASSERT_EQ(vgs->len, 1);
	ASSERT_STREQ(((BlkVg *)vgs->pdata[0])->name, foreign_vg);
	g_clear_pointer(&vgs, g_ptr_array_unref);
	RUN_ERR(blk_vg_get(ctx, foreign_vg, &vg), ENOENT);
	RUN_ERR(blk_vg_get(foreign, vg_name, &vg), ENOENT);
	RUN_ERR(blk_lv_get(ctx, foreign_vg, "host-lv", &a), ENOENT);

	RUN_OK(blk_vg_get(ctx, vg_name, &vg));
	ASSERT_EQ(vg->extent_size, EXT);
	ASSERT_EQ(vg->pv_count, 2);
	ASSERT_EQ(vg->lv_count, 0);
	ASSERT_EQ(g_strv_length(vg->tags), 1);
	ASSERT_STREQ(vg->tags[0], MD_BLOCK_VG_TAG_UNREADY);
	ASSERT_TRUE(vg->mda_size >= MD_BLOCK_MDA_MIN_SIZE);
	g_clear_pointer(&vg, blk_vg_free);

	/* Domain metadata in VG tags, escapes and all, through real lvm. */
	md_kv_set(kv, "DESCRIPTION", "a domain, with \"spaces\" & \xd7\x99");
	md_kv_set(kv, "VERSION", "5");
	md_kv_set(kv, "PV0", "pv:loop,uuid:U,pestart:0,pecount:1,mapoffset:0");
	mdt = md_block_kv_tags(kv);
	for (size_t i = 0; mdt[i]; i++)
		g_ptr_array_add(add, mdt[i]);
	g_ptr_array_add(add, (gpointer)MD_BLOCK_VG_TAG);
	g_ptr_array_add(add, NULL);
	RUN_OK(blk_vg_change_tags(ctx, vg_name, (const char *const *)add->pdata, unready));
	RUN_OK(blk_vg_change_tags(ctx, vg_name, NULL, NULL)); /* nothing to do */
	RUN_ERR(blk_vg_change_tags(ctx, vg_name, (const char *const[]){ "bad tag", NULL }, NULL),
		EINVAL);
	RUN_OK(blk_vg_get(ctx, vg_name, &vg));
	ASSERT_EQ(g_strv_length(vg->tags), g_strv_length(mdt) + 1);
	ASSERT_TRUE(g_strv_contains((const char *const *)vg->tags, MD_BLOCK_VG_TAG));
	ASSERT_FALSE(g_strv_contains((const char *const *)vg->tags, MD_BLOCK_VG_TAG_UNREADY));
	ASSERT_OK(md_kv_decode_tags((const char *const *)vg->tags, g_strv_length(vg->tags),
				    &kv_back));
	ASSERT_TRUE(md_kv_equal(kv, kv_back));
	g_clear_pointer(&vg, blk_vg_free);

	/*
	 * LVs: a (2 extents), b (1 extent, on PV1), then a extended past the
	 * rest of PV1 into PV2:  a = pv1 0-1, pv1 3..end, pv2 0-4.
	 */
	RUN_OK(blk_pv_list(ctx, &pvs));
	pv1 = find_pv(pvs, loops[PV1].dev);
	pv2 = find_pv(pvs, loops[PV2].dev);
	pe1 = pv1->pe_count;
	ps1 = pv1->pe_start;
	ps2 = pv2->pe_start;
	ASSERT_TRUE(pe1 > 10);
	ASSERT_STREQ(pv1->vg_name, vg_name);

	RUN_OK(blk_lv_create(ctx, vg_name, "lv-a", 2 * EXT - 4096, init_tag, NULL));
	RUN_OK(blk_lv_create(ctx, vg_name, "lv-b", EXT, NULL, loops[PV1].dev));
	RUN_ERR(blk_lv_create(ctx, vg_name, "lv-b", EXT, NULL, NULL), EEXIST);
	RUN_ERR(blk_lv_create(ctx, vg_name, "lv-x", 100 * GIB, NULL, NULL), ENOSPC);
	RUN_ERR(blk_lv_create(ctx, vg_name, "lv-x", 1000, NULL, NULL), EINVAL);
	RUN_ERR(blk_lv_create(ctx, vg_name, "-x", EXT, NULL, NULL), EINVAL);
	RUN_ERR(blk_lv_create(ctx, "no-such-vg", "lv-x", EXT, NULL, NULL), ENOENT);
	RUN_OK(blk_lv_extend(ctx, vg_name, "lv-a", (pe1 - 1 + 5) * EXT));
	RUN_OK(blk_lv_extend(ctx, vg_name, "lv-a", (pe1 - 1 + 5) * EXT)); /* again: no-op */
	RUN_ERR(blk_lv_extend(ctx, vg_name, "lv-a", 100 * GIB), ENOSPC);
	RUN_ERR(blk_lv_extend(ctx, vg_name, "lv-a", EXT), EINVAL);
	RUN_ERR(blk_lv_extend(ctx, vg_name, "no-such-lv", 10 * EXT), ENOENT);

	a = get_lv(ctx, "lv-a");
	ASSERT_EQ(a->size, (pe1 + 4) * EXT);
	ASSERT_EQ(a->extent_size, EXT);
	ASSERT_EQ(a->n_segs, 3);
	ASSERT_STREQ(a->segs[0].stripes[0].pv, loops[PV1].dev);
	ASSERT_EQ(a->segs[0].stripes[0].pe, 0);
	ASSERT_EQ(a->segs[0].extents, 2);
	ASSERT_STREQ(a->segs[1].stripes[0].pv, loops[PV1].dev);
	ASSERT_EQ(a->segs[1].stripes[0].pe, 3);
	ASSERT_EQ(a->segs[1].extents, pe1 - 3);
	ASSERT_STREQ(a->segs[2].stripes[0].pv, loops[PV2].dev);
	ASSERT_EQ(a->segs[2].stripes[0].pe, 0);
	ASSERT_EQ(a->segs[2].extents, 5);
	ASSERT_TRUE(g_strv_contains((const char *const *)a->tags, MD_BLOCK_TAG_INITIALIZING));
	b = get_lv(ctx, "lv-b");
	ASSERT_EQ(b->n_segs, 1);
	ASSERT_EQ(b->segs[0].stripes[0].pe, 2);

	RUN_OK(blk_lv_list(ctx, vg_name, &lvs));
	ASSERT_EQ(lvs->len, 2);
	ASSERT_STREQ(((BlkLv *)lvs->pdata[0])->name, "lv-a");
	ASSERT_STREQ(((BlkLv *)lvs->pdata[1])->name, "lv-b");
	g_clear_pointer(&lvs, g_ptr_array_unref);
	RUN_ERR(blk_lv_list(ctx, "no-such-vg", &lvs), ENOENT);

	/* The data path: pattern across both segment boundaries, read at PV offsets. */
	map = lv_map(ctx, a);
	ASSERT_EQ(blk_extmap_size(map), a->size);
	{
		const uint64_t off1[] = { ps1 + 2 * EXT - 64 * 1024, ps1 + 3 * EXT };
		const uint32_t pv_1[] = { 0, 0 };
		const uint64_t seg2 = (pe1 - 1) * EXT; /* LV offset of the PV2 segment */
		const uint64_t off2[] = { ps1 + pe1 * EXT - 4096, ps2 };
		const uint32_t pv_2[] = { 0, 1 };
		const uint64_t off3[] = { ps2 + 5 * EXT - 8192 };
		const uint32_t pv_3[] = { 1 };
		ExtMapPiece p;

		check_io(map, 2 * EXT - 64 * 1024, 128 * 1024, 0x11, off1, pv_1, 2);
		check_io(map, seg2 - 4096, 8192 + 4096, 0x22, off2, pv_2, 2);
		check_io(map, a->size - 8192, 8192, 0x33, off3, pv_3, 1);
		/* lv-b's extent (pv1 pe 2) was never written. */
		assert_zero(loops[PV1].direct_fd, ps1 + 2 * EXT, EXT);
		ASSERT_ERROR(blk_extmap_lookup(map, a->size, 512, &p), ERANGE);
		ASSERT_ERROR(blk_extmap_lookup(map, a->size - 512, 1024, &p), ERANGE);
	}

	/* An extension swaps the map; I/O on the old map stays valid. */
	holder = blk_extmap_holder_new(map);
	RUN_OK(blk_lv_extend(ctx, vg_name, "lv-a", a->size + 2 * EXT));
	g_clear_pointer(&a, blk_lv_free);
	a = get_lv(ctx, "lv-a");
	map2 = lv_map(ctx, a);
	blk_extmap_holder_set(holder, map2);
	{
		g_autoptr(ExtMap) cur = blk_extmap_holder_get(holder);

		ASSERT_TRUE(cur == map2);
		ASSERT_EQ(blk_extmap_size(cur), blk_extmap_size(map) + 2 * EXT);
		for (uint64_t off = 0; off < blk_extmap_size(map); off += EXT / 2) {
			ExtMapPiece x, y;

			ASSERT_OK(blk_extmap_lookup(map, off, 512, &x));
			ASSERT_OK(blk_extmap_lookup(cur, off, 512, &y));
			ASSERT_EQ(x.pv, y.pv);
			ASSERT_EQ(x.offset, y.offset);
		}
	}
	RUN_OK(blk_lv_reduce(ctx, vg_name, "lv-a", a->size - 2 * EXT));
	g_clear_pointer(&a, blk_lv_free);
	a = get_lv(ctx, "lv-a");
	ASSERT_EQ(a->size, blk_extmap_size(map));

	/* Finishing a volume: one lvchange from the temporary tag to the volume tags. */
	t.has_image = t.has_parent = t.has_slot = true;
	g_strlcpy(t.image, "11111111-aaaa-4aaa-8aaa-000000000001", sizeof(t.image));
	t.slot = 1;
	ASSERT_OK(md_lv_tags_format(&t, &vol_tags));
	RUN_OK(blk_lv_change_tags(ctx, vg_name, "lv-a", (const char *const *)vol_tags, init_tag));
	g_clear_pointer(&a, blk_lv_free);
	a = get_lv(ctx, "lv-a");
	memset(&t, 0, sizeof(t));
	ASSERT_OK(md_lv_tags_parse((const char *const *)a->tags, g_strv_length(a->tags), &t));
	ASSERT_TRUE(md_lv_tags_is_volume(&t));
	ASSERT_EQ(t.slot, 1);
	RUN_ERR(blk_lv_change_tags(ctx, vg_name, "no-such-lv", init_tag, NULL), ENOENT);

	/* Rename, remove. */
	RUN_OK(blk_lv_rename(ctx, vg_name, "lv-b", "lv-c"));
	RUN_ERR(blk_lv_get(ctx, vg_name, "lv-b", &b), ENOENT);
	RUN_ERR(blk_lv_rename(ctx, vg_name, "lv-c", "lv-a"), EEXIST);
	RUN_ERR(blk_lv_rename(ctx, vg_name, "lv-b", "lv-d"), ENOENT);
	RUN_OK(blk_lv_remove(ctx, vg_name, "lv-c"));
	RUN_ERR(blk_lv_remove(ctx, vg_name, "lv-c"), ENOENT);

	/* Two threads at once: lvm's VG lock serialises them. */
	for (int i = 0; i < 2; i++) {
		workers[i] = (Worker){ .ctx = ctx, .id = i };
		threads[i] = g_thread_new("lvm", create_lvs, &workers[i]);
	}
	for (int i = 0; i < 2; i++)
		g_thread_join(threads[i]);

	/* Cost of a typical lvcreate / lvremove through the runner. */
	start = g_get_monotonic_time();
	for (int i = 0; i < 10; i++) {
		g_autofree char *name = g_strdup_printf("perf-%d", i);

		RUN_OK(blk_lv_create(ctx, vg_name, name, EXT, init_tag, NULL));
	}
	fprintf(stderr, "  lvcreate: %.1f ms each (3 LVs in the VG)\n",
		(double)(g_get_monotonic_time() - start) / 10 / 1000);
	start = g_get_monotonic_time();
	for (int i = 0; i < 10; i++) {
		g_autofree char *name = g_strdup_printf("perf-%d", i);

		RUN_OK(blk_lv_remove(ctx, vg_name, name));
	}
	fprintf(stderr, "  lvremove: %.1f ms each\n",
		(double)(g_get_monotonic_time() - start) / 10 / 1000);
	start = g_get_monotonic_time();
	for (int i = 0; i < 10; i++) {
		RUN_OK(blk_lv_list(ctx, vg_name, &lvs));
		g_clear_pointer(&lvs, g_ptr_array_unref);
	}
	fprintf(stderr, "  lvs (report + parse): %.1f ms each\n",
		(double)(g_get_monotonic_time() - start) / 10 / 1000);

	/* The foreign VG is as it was. */
	{
		g_autoptr(BlkLv) host = NULL;

		RUN_OK(blk_lv_get(foreign, foreign_vg, "host-lv", &host));
		ASSERT_EQ(host->size, 8 * MIB);
	}
}

static void test_timeout(LvmCtx *ctx)
{
	g_autoptr(GPtrArray) vgs = NULL;
	int status;

	blk_lvm_set_timeout(ctx, 1);
	ASSERT_ERROR(blk_vg_list(ctx, &vgs), ETIMEDOUT);
	fprintf(stderr, "  expected -ETIMEDOUT: %s\n", blk_lvm_last_error());
	ASSERT_NOT_NULL(strstr(blk_lvm_last_error(), "did not finish"));
	/* The killed lvm was reaped. */
	ASSERT_EQ(waitpid(-1, &status, WNOHANG), -1);
	ASSERT_EQ(errno, ECHILD);
	blk_lvm_set_timeout(ctx, 0);
	RUN_OK(blk_vg_list(ctx, &vgs));
}

static void teardown(LvmCtx *ctx, LvmCtx *foreign)
{
	RUN_OK(blk_vg_remove(ctx, vg_name));
	RUN_OK(blk_pv_remove(ctx, loops[PV1].dev));
	RUN_OK(blk_pv_remove(ctx, loops[PV2].dev));
	RUN_OK(blk_vg_remove(foreign, foreign_vg));
	RUN_OK(blk_pv_remove(foreign, loops[FOREIGN].dev));
}

int main(void)
{
	g_autofree char *lvm = find_tool("lvm");
	g_autofree char *blkid = find_tool("blkid");
	g_autofree char *mkfs = find_tool("mkfs.ext4");
	g_autofree char *dir = NULL;
	g_autoptr(LvmCtx) ctx = NULL;
	g_autoptr(LvmCtx) foreign = NULL;
	g_autofree char *rnd = g_uuid_string_random();
	int ctl;

	if (geteuid() != 0)
		return skip("needs root");
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return skip("no /dev/loop-control");
	close(ctl);
	if (!lvm || !blkid || !mkfs)
		return skip("needs lvm, blkid and mkfs.ext4");

	dir = g_strdup("/var/tmp/ovstore-lvm-XXXXXX");
	ASSERT_NOT_NULL(g_mkdtemp(dir));
	loop_attach(dir, "pv1", 1 * GIB, &loops[PV1]);
	loop_attach(dir, "pv2", 1 * GIB, &loops[PV2]);
	loop_attach(dir, "fs", 64 * MIB, &loops[FS]);
	loop_attach(dir, "foreign", 256 * MIB, &loops[FOREIGN]);
	ASSERT_OK(rmdir(dir));
	g_snprintf(vg_name, sizeof(vg_name), "ovstore-test-%.8s", rnd);
	g_snprintf(foreign_vg, sizeof(foreign_vg), "ovstore-foreign-%.8s", rnd);
	fprintf(stderr, "loops %s %s %s %s, VG %s; device-mapper %s\n", loops[PV1].dev,
		loops[PV2].dev, loops[FS].dev, loops[FOREIGN].dev, vg_name,
		blk_dm_available() ? "available" : "not available (activation disabled)");

	TEST_RUN(test_ctx_checks);
	{
		const char *const devs[] = { loops[PV1].dev, loops[PV2].dev, loops[FS].dev };
		const char *const fdevs[] = { loops[FOREIGN].dev };

		ctx = ctx_new(devs, 3);
		foreign = ctx_new(fdevs, 1);
		ASSERT_EQ(blk_lvm_activation(ctx), blk_dm_available());
		ASSERT_EQ(blk_lvm_n_pvs(ctx), 3);
		ASSERT_STREQ(blk_lvm_pv_path(ctx, 1), loops[PV2].dev);
		ASSERT_NULL(blk_lvm_pv_path(ctx, 3));
		ASSERT_EQ(blk_lvm_pv_index(ctx, loops[FS].dev), 2);
		ASSERT_ERROR(blk_lvm_pv_index(ctx, loops[FOREIGN].dev), ENODEV);
		ASSERT_ERROR(blk_lvm_pv_index(ctx, "[unknown]"), ENODEV);
	}
	fprintf(stderr, "/* test_refuse_signature */\n");
	test_refuse_signature(ctx, mkfs);
	fprintf(stderr, "/* test_domain */\n");
	test_domain(ctx, foreign);
	fprintf(stderr, "/* test_timeout */\n");
	test_timeout(ctx);
	fprintf(stderr, "/* teardown */\n");
	teardown(ctx, foreign);

	for (size_t i = 0; i < G_N_ELEMENTS(loops); i++)
		loop_detach(&loops[i]);
	return 0;
}
