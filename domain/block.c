/*
 * block.c: the block-domain backend (reference section 6).
 *
 *   the VG <sdUUID>               the domain; MDT_ tags its metadata
 *   LV <vol>, tags IU_ PU_ MD_    a volume: its bytes, its image, parent
 *                                 and metadata slot
 *   metadata LV, slot MD_         its record (512 bytes, O_DIRECT)
 *   leases LV, (100 + slot) * align  its sanlock resource
 *
 * No LV is activated (no device-mapper here): every byte goes through the
 * LV's extent map through the domain's LvIo.  What oVirt keeps nowhere on
 * block storage (an image with no volume, a template's link into an image
 * none of whose volumes is based on it yet, owners, modes and times) lives
 * in memory for the life of the mount.  The generic code
 * holds the domain's op lock around every call that changes something;
 * bd->lock guards the tables below against the data path's lookups.
 */
#include "domain/block-int.h"
#include "domain/model-int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <linux/falloc.h>

#include "common/cleanup.h"
#include "common/fault.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/names.h"
#include "lease/lease.h"
#include "metadata/md-block.h"
#include "common/banned.h"

#define BLANK_UUID "00000000-0000-0000-0000-000000000000"

typedef struct Attrs {
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec mtime;
	struct timespec atime;
} Attrs;

/* One volume LV. */
struct BlockLv {
	char *name;
	char image[MD_VOLUME_NAME_MAX + 1];
	char parent[MD_VOLUME_NAME_MAX + 1]; /* as the PU_ tag says */
	bool has_slot;
	uint32_t slot;
	bool cow;	  /* qcow2: its size is the LV's; raw: its capacity */
	uint64_t size;	  /* raw: bytes shown (the capacity) */
	uint64_t capacity; /* qcow2: the virtual size, the bound of its growth */
	ExtMapHolder *map;
	Attrs attrs;
	gint extending; /* an extension is queued on the extender (atomic) */
	int ext_slot;	/* journal slot of an unfinished extension, -1: none (extend_lock) */
};

static void block_lv_free(gpointer p)
{
	BlockLv *lv = p;

	g_free(lv->name);
	blk_extmap_holder_free(lv->map);
	g_free(lv);
}

static void attrs_init(Domain *d, Attrs *a, mode_t mode)
{
	a->mode = mode;
	a->uid = d->st->opt.uid;
	a->gid = d->st->opt.gid;
	clock_gettime(CLOCK_REALTIME, &a->mtime);
	a->atime = a->mtime;
}

static BlockLv *find_lv(Domain *d, const char *name)
{
	BlockLv *lv;

	g_mutex_lock(&d->bd->lock);
	lv = g_hash_table_lookup(d->bd->lvs, name);
	g_mutex_unlock(&d->bd->lock);
	return lv;
}

/* A VG's size and free space change only by our lvm commands; cached for 1 s
 * against other hosts' (each vgs costs some 50 ms). */
#define VG_CACHE_US G_USEC_PER_SEC

static void vg_stale(Domain *d)
{
	g_mutex_lock(&d->bd->lock);
	d->bd->vg_read_at = 0;
	g_mutex_unlock(&d->bd->lock);
}

static uint64_t lv_shown_size(BlockLv *lv)
{
	g_autoptr(ExtMap) m = NULL;

	if (!lv->cow)
		return __atomic_load_n(&lv->size, __ATOMIC_RELAXED);
	m = blk_extmap_holder_get(lv->map);
	return blk_extmap_size(m);
}

static int read_slot(Domain *d, uint32_t slot, MdVolume *ret)
{
	uint64_t off = 0;
	void *buf;
	ssize_t n;
	int r;

	r = md_block_slot_offset(d->version, slot, &off);
	if (r < 0)
		return r;
	buf = ov_aligned_alloc(MD_BLOCK_RECORD_SIZE);
	n = blk_lvio_pread(d->bd->io, d->bd->md_map, true, buf, MD_BLOCK_RECORD_SIZE, off);
	r = n < 0 ? (int)n : md_block_slot_decode(buf, MD_BLOCK_RECORD_SIZE, ret);
	ov_aligned_free(buf);
	return r;
}

static int write_slot(Domain *d, uint32_t slot, const MdVolume *md)
{
	uint64_t off = 0;
	void *buf;
	ssize_t n;
	int r;

	r = md_block_slot_offset(d->version, slot, &off);
	if (r < 0)
		return r;
	buf = ov_aligned_alloc(MD_BLOCK_RECORD_SIZE);
	r = md_block_slot_encode(md, d->version, buf);
	if (r == 0) {
		n = blk_lvio_pwrite(d->bd->io, d->bd->md_map, true, buf, MD_BLOCK_RECORD_SIZE, off);
		r = n < 0 ? (int)n : 0;
	}
	ov_aligned_free(buf);
	if (r == 0)
		r = blk_lvio_sync(d->bd->io, true);
	return r;
}

/*
 * The LV table a scan fills: the domain's own, or for a reload's shadow
 * (reload.c) one of its own, reconciled into the domain's afterwards.
 */
static GHashTable *scan_lvs(Domain *d)
{
	return d->shadow ? d->shadow_lvs : d->bd->lvs;
}

/*
 * The map a host may use
 * ----------------------
 * The SPM extends an LV in steps (grow()): journal record, lvextend, zero
 * the new extents, clear the record.  Between lvextend and the clearing,
 * the LV's segments (what lvs shows every host) already include extents
 * that still hold a deleted LV's bytes and that the SPM is about to zero.
 * A host that mapped and wrote them in that window would lose its writes to
 * the zeroing.  So whoever reads an LV's segments from lvm reads the
 * journal after them, and while a live lv-extend record names the LV, uses
 * only the record's old_size bytes: an extension whose record was gone by
 * then was zeroed before it went.  The SPM's own extensions set the map
 * only after zeroing, and its journal replay zeroes the rest
 * (block_lv_extend_replay()).
 */
static int usable_map(const char *name, GHashTable *pending, ExtMap *map, ExtMap **ret)
{
	const guint64 *old_size = pending ? g_hash_table_lookup(pending, name) : NULL;

	if (!old_size || *old_size >= blk_extmap_size(map)) {
		*ret = blk_extmap_ref(map);
		return 0;
	}
	return blk_extmap_prefix(map, *old_size, ret);
}

static void scan_lv(Domain *d, BlkLv *blv, GHashTable *pending)
{
	MdLvTags t;
	BlockLv *lv;
	Image *img;
	Volume *vol;
	ExtMap *map = NULL;
	int r;

	if (md_block_lv_is_special(blv->name))
		return;
	r = md_lv_tags_parse((const char *const *)blv->tags, g_strv_length(blv->tags), &t);
	if (r < 0 || !name_is_valid(blv->name)) {
		log_warning("domain '%s': LV '%s' has bad tags, ignoring", d->uuid, blv->name);
		return;
	}
	if (t.initializing || t.removal != MD_LV_REMOVAL_NONE) {
		/* A create or a delete cut off midway: the SPM finishes the delete. */
		if (dom_may_write(d) && blk_lv_remove(d->bd->ctx, d->bd->vg, blv->name) == 0)
			log_info("domain '%s': removed unfinished LV '%s'", d->uuid, blv->name);
		return;
	}
	if (!md_lv_tags_is_volume(&t) || !name_is_valid(t.image))
		return;
	{
		g_autoptr(ExtMap) full = NULL;

		r = blockdom_map_lv(d->bd, blv, &full);
		if (r == 0)
			r = usable_map(blv->name, pending, full, &map);
	}
	if (r < 0) {
		log_warning_errno(r, "domain '%s': LV '%s': no extent map, ignoring", d->uuid,
				  blv->name);
		return;
	}
	lv = g_new0(BlockLv, 1);
	lv->name = g_strdup(blv->name);
	g_strlcpy(lv->image, t.image, sizeof(lv->image));
	g_strlcpy(lv->parent, t.parent, sizeof(lv->parent));
	lv->has_slot = true;
	lv->slot = t.slot;
	lv->map = blk_extmap_holder_new(map);
	lv->ext_slot = -1;
	blk_extmap_unref(map);
	attrs_init(d, &lv->attrs, S_IFREG | 0660);

	img = model_find_image_locked(d, t.image);
	if (!img) {
		img = model_image_new(d, t.image);
		model_add_image_locked(d, img);
	}
	vol = model_volume_new(d, blv->name);
	r = read_slot(d, t.slot, &vol->md);
	if (r < 0) {
		log_warning("domain '%s' volume '%s/%s': bad metadata record in slot %u (%s), "
			    "serving it read-only and illegal",
			    d->uuid, t.image, blv->name, t.slot, g_strerror(-r));
		model_corrupt_record(d, MD_VOL_TYPE_PREALLOCATED, t.image, &vol->md);
		vol->corrupt = true;
		vol->md.capacity = blv->size;
	}
	lv->cow = vol->md.format == MD_VOL_FORMAT_COW;
	lv->size = MIN(vol->md.capacity, blv->size);
	lv->capacity = vol->md.capacity;
	g_hash_table_replace(scan_lvs(d), lv->name, lv);
	model_add_volume_locked(d, vol);
	model_link_locked(vol, img);
}

/*
 * Reference 6.3: a template LV carries only its home image's IU_ tag; the
 * images based on it are found through their volumes' parents.  A volume
 * whose parent lives in another image links that parent into its own.  The
 * parent is the record's (the record wins over the PU_ tag, as in VDSM),
 * the PU_ tag's where the record is unreadable.
 */
static void link_templates(Domain *d)
{
	GHashTableIter it;
	gpointer value;

	g_hash_table_iter_init(&it, d->volumes);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		Volume *vol = value;
		BlockLv *lv = g_hash_table_lookup(scan_lvs(d), vol->name);
		const char *parent = vol->corrupt ? (lv ? lv->parent : "") : vol->md.parent;
		Volume *p;

		if (!*parent || strcmp(parent, BLANK_UUID) == 0)
			continue;
		p = model_find_volume_locked(d, parent);
		if (!p || p == vol)
			continue;
		for (guint i = 0; i < vol->images->len; i++) {
			Image *img = vol->images->pdata[i];

			if (!model_volume_in_image_locked(p, img))
				model_link_locked(p, img);
		}
	}
}

static int block_scan(Domain *d)
{
	g_autoptr(GPtrArray) lvs = NULL;
	g_autoptr(GHashTable) pending = NULL;
	int r;

	if (d->shadow && !d->shadow_lvs)
		d->shadow_lvs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, block_lv_free);
	r = blk_lv_list(d->bd->ctx, d->bd->vg, &lvs);
	if (r < 0)
		return r;
	/* after the segments, never before: "the map a host may use" */
	r = jrnl_pending_extends(d, &pending);
	if (r < 0)
		return r;
	for (guint i = 0; i < lvs->len; i++)
		scan_lv(d, lvs->pdata[i], pending);
	link_templates(d);
	return 0;
}

void block_reconcile(Domain *d, Domain *s)
{
	BlockDom *bd = d->bd;
	g_autoptr(GPtrArray) gone = g_ptr_array_new();
	GHashTableIter it;
	gpointer key, value;

	g_mutex_lock(&bd->lock);
	g_hash_table_iter_init(&it, bd->lvs);
	while (g_hash_table_iter_next(&it, &key, &value))
		if (!s->shadow_lvs || !g_hash_table_contains(s->shadow_lvs, key))
			g_ptr_array_add(gone, value);
	for (guint i = 0; i < gone->len; i++) {
		BlockLv *lv = gone->pdata[i];

		/* open handles keep using it until the domain goes */
		g_hash_table_steal(bd->lvs, lv->name);
		g_ptr_array_add(bd->gone, lv);
	}
	if (s->shadow_lvs) {
		g_hash_table_iter_init(&it, s->shadow_lvs);
		while (g_hash_table_iter_next(&it, &key, &value)) {
			BlockLv *n = value;
			BlockLv *lv = g_hash_table_lookup(bd->lvs, key);

			if (!lv) {
				g_hash_table_iter_steal(&it);
				g_hash_table_insert(bd->lvs, n->name, n);
				continue;
			}
			memcpy(lv->image, n->image, sizeof(lv->image));
			memcpy(lv->parent, n->parent, sizeof(lv->parent));
			lv->has_slot = n->has_slot;
			lv->slot = n->slot;
			lv->cow = n->cow;
			__atomic_store_n(&lv->size, n->size, __ATOMIC_RELAXED);
			__atomic_store_n(&lv->capacity, n->capacity, __ATOMIC_RELAXED);
			{
				/* LVs only grow while in use: the larger map wins (both
				 * are maps this host may use: scan_lv()) */
				g_autoptr(ExtMap) cur = blk_extmap_holder_get(lv->map);
				g_autoptr(ExtMap) now = blk_extmap_holder_get(n->map);

				if (blk_extmap_size(now) > blk_extmap_size(cur))
					blk_extmap_holder_set(lv->map, now);
			}
		}
		g_hash_table_unref(s->shadow_lvs);
		s->shadow_lvs = NULL;
	}
	g_mutex_unlock(&bd->lock);
}

/* Images: only in memory until a volume names them (CONTRACT). */
static Attrs *image_attrs(Domain *d, const char *img, bool make)
{
	Attrs *a;

	g_mutex_lock(&d->bd->lock);
	a = g_hash_table_lookup(d->bd->images, img);
	if (!a && make) {
		a = g_new0(Attrs, 1);
		attrs_init(d, a, S_IFDIR | 0770);
		g_hash_table_insert(d->bd->images, g_strdup(img), a);
	}
	g_mutex_unlock(&d->bd->lock);
	return a;
}

static int block_image_create(Domain *d, const char *img, uid_t uid, gid_t gid)
{
	Attrs *a = image_attrs(d, img, true);

	a->uid = uid;
	a->gid = gid;
	return 0;
}

bool block_image_in_memory(Domain *d, const char *img)
{
	bool r;

	g_mutex_lock(&d->bd->lock);
	r = g_hash_table_contains(d->bd->images, img);
	g_mutex_unlock(&d->bd->lock);
	return r;
}

static int block_image_remove(Domain *d, const char *img)
{
	g_mutex_lock(&d->bd->lock);
	g_hash_table_remove(d->bd->images, img);
	g_mutex_unlock(&d->bd->lock);
	return 0;
}

static int retag(Domain *d, const char *lv, const char *del_tag, const char *add_tag)
{
	const char *add[] = { add_tag, NULL };
	const char *del[] = { del_tag, NULL };

	return blk_lv_change_tags(d->bd->ctx, d->bd->vg, lv, add_tag ? add : NULL,
				  del_tag ? del : NULL);
}

static int block_image_rename(Domain *d, const char *from, const char *to)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *old_tag = g_strconcat(MD_BLOCK_TAG_IMAGE, from, NULL);
	g_autofree char *new_tag = g_strconcat(MD_BLOCK_TAG_IMAGE, to, NULL);
	GHashTableIter it;
	gpointer value;
	int r;

	g_mutex_lock(&d->bd->lock);
	g_hash_table_iter_init(&it, d->bd->lvs);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		BlockLv *lv = value;

		if (strcmp(lv->image, from) == 0)
			g_ptr_array_add(names, g_strdup(lv->name));
	}
	g_mutex_unlock(&d->bd->lock);
	for (guint i = 0; i < names->len; i++) {
		BlockLv *lv = find_lv(d, names->pdata[i]);

		r = retag(d, lv->name, old_tag, new_tag);
		if (r < 0)
			return r;
		g_strlcpy(lv->image, to, sizeof(lv->image));
	}
	g_mutex_lock(&d->bd->lock);
	{
		gpointer key = NULL, a = NULL;

		if (g_hash_table_steal_extended(d->bd->images, from, &key, &a)) {
			g_free(key);
			g_hash_table_insert(d->bd->images, g_strdup(to), a);
		}
	}
	g_mutex_unlock(&d->bd->lock);
	return 0;
}

static int block_image_stat(Domain *d, const char *img, struct stat *ret)
{
	Attrs *a = image_attrs(d, img, true);

	memset(ret, 0, sizeof(*ret));
	ret->st_mode = a->mode;
	ret->st_nlink = 2;
	ret->st_uid = a->uid;
	ret->st_gid = a->gid;
	ret->st_mtim = ret->st_ctim = a->mtime;
	ret->st_atim = a->atime;
	ret->st_blksize = 4096;
	return 0;
}

static int block_image_chmod(Domain *d, const char *img, mode_t mode)
{
	Attrs *a = image_attrs(d, img, true);

	a->mode = S_IFDIR | (mode & 07777);
	return 0;
}

static int block_image_chown(Domain *d, const char *img, uid_t uid, gid_t gid)
{
	Attrs *a = image_attrs(d, img, true);

	if (uid != (uid_t)-1)
		a->uid = uid;
	if (gid != (gid_t)-1)
		a->gid = gid;
	return 0;
}

/* Zeroes [from, to) of a fresh or grown LV: a new volume never shows old bytes. */
static int zero_new(Domain *d, ExtMap *map, uint64_t from)
{
	uint64_t size = blk_extmap_size(map);

	return from < size ? blk_lvio_zero(d->bd->io, map, from, size - from) : 0;
}

static int block_vol_create(Domain *d, const char *img, const char *vol, mode_t mode, uid_t uid,
			    gid_t gid)
{
	const char *tags[] = { MD_BLOCK_TAG_INITIALIZING, NULL };
	g_autoptr(BlkLv) blv = NULL;
	g_autoptr(ExtMap) map = NULL;
	BlockLv *lv;
	int r;

	if (find_lv(d, vol))
		return -EEXIST;
	/* lvm needs one extent; the volume shows 0 bytes until it is truncated */
	r = blk_lv_create(d->bd->ctx, d->bd->vg, vol, d->bd->extent_size, tags, NULL);
	vg_stale(d);
	if (r < 0)
		return r;
	if ((r = blk_lv_get(d->bd->ctx, d->bd->vg, vol, &blv)) < 0 ||
	    (r = blockdom_map_lv(d->bd, blv, &map)) < 0 || (r = zero_new(d, map, 0)) < 0) {
		(void)blk_lv_remove(d->bd->ctx, d->bd->vg, vol);
		return r;
	}
	lv = g_new0(BlockLv, 1);
	lv->name = g_strdup(vol);
	g_strlcpy(lv->image, img, sizeof(lv->image));
	lv->map = blk_extmap_holder_new(map);
	lv->ext_slot = -1;
	attrs_init(d, &lv->attrs, S_IFREG | (mode & 07777));
	lv->attrs.uid = uid;
	lv->attrs.gid = gid;
	g_mutex_lock(&d->bd->lock);
	g_hash_table_replace(d->bd->lvs, lv->name, lv);
	g_mutex_unlock(&d->bd->lock);
	return 0;
}

static int block_vol_remove(Domain *d, const char *img, const char *vol)
{
	g_autofree char *old_tag = g_strconcat(MD_BLOCK_TAG_IMAGE, img, NULL);
	g_autofree char *new_tag =
		g_strconcat(MD_BLOCK_TAG_IMAGE, MD_BLOCK_REMOVE_PREFIX, img, NULL);
	BlockLv *lv = find_lv(d, vol);
	int r;

	if (!lv)
		return 0;
	if (strcmp(lv->image, img) != 0)
		return 0; /* a template leaves an image that used it: nothing on disk */
	/* reference 6.3: the image tag renamed, then lvremove */
	r = retag(d, vol, old_tag, new_tag);
	if (r < 0 && r != -ENOENT)
		return r;
	r = blk_lv_remove(d->bd->ctx, d->bd->vg, vol);
	vg_stale(d);
	if (r < 0 && r != -ENOENT)
		return r;
	g_mutex_lock(&d->bd->extend_lock);
	/* an unfinished extension's extents went with the LV: whoever gets them zeroes them */
	if (lv->ext_slot >= 0 && jrnl_clear(d, lv->ext_slot) == 0)
		lv->ext_slot = -1;
	g_mutex_unlock(&d->bd->extend_lock);
	g_mutex_lock(&d->bd->lock);
	/* open handles keep using the old map until they close */
	g_hash_table_steal(d->bd->lvs, vol);
	g_ptr_array_add(d->bd->gone, lv);
	g_mutex_unlock(&d->bd->lock);
	return 0;
}

static int finish_kept_extension_locked(Domain *d, BlockLv *lv);

static int block_vol_rename(Domain *d, const char *img, const char *from, const char *to)
{
	BlockLv *lv = find_lv(d, from);
	int r;

	(void)img;
	if (!lv)
		return find_lv(d, to) ? 0 : -ENOENT;
	/* not while it grows: an extension's journal record names the LV */
	g_mutex_lock(&d->bd->extend_lock);
	r = finish_kept_extension_locked(d, lv);
	if (r == 0)
		r = blk_lv_rename(d->bd->ctx, d->bd->vg, from, to);
	if (r == 0) {
		g_mutex_lock(&d->bd->lock);
		g_hash_table_steal(d->bd->lvs, from);
		g_free(lv->name);
		lv->name = g_strdup(to);
		g_hash_table_replace(d->bd->lvs, lv->name, lv);
		g_mutex_unlock(&d->bd->lock);
	}
	g_mutex_unlock(&d->bd->extend_lock);
	return r;
}

/*
 * Templates (reference 6.3): the LV keeps the IU_ tag of its home image and
 * its one record (VOLTYPE=SHARED, written by the caller); an image uses it
 * through the PU_ tag of its own volume based on it, which the scan follows
 * (link_templates()).  So a link writes nothing here: it is the model's
 * until a volume of the image names the template as its parent
 * (behaviour.md), as an image with no volume is.
 */
static int block_vol_link(Domain *d, const char *vol, const char *from, const char *to)
{
	(void)from;
	(void)to;
	return find_lv(d, vol) ? 0 : -ENOENT;
}

static int block_vol_open(Domain *d, const char *img, const char *vol, int flags)
{
	(void)d;
	(void)img;
	(void)vol;
	(void)flags;
	return -EOPNOTSUPP; /* block volumes have no fd: see block_vol_map */
}

static int block_vol_stat(Domain *d, const char *img, const char *vol, struct stat *ret)
{
	BlockLv *lv = find_lv(d, vol);
	g_autoptr(ExtMap) m = NULL;

	(void)img;
	if (!lv)
		return -ENOENT;
	m = blk_extmap_holder_get(lv->map);
	memset(ret, 0, sizeof(*ret));
	ret->st_mode = lv->attrs.mode;
	ret->st_nlink = 1;
	ret->st_uid = lv->attrs.uid;
	ret->st_gid = lv->attrs.gid;
	ret->st_size = (off_t)lv_shown_size(lv);
	ret->st_blocks = (blkcnt_t)(blk_extmap_size(m) / 512);
	ret->st_blksize = 4096;
	ret->st_mtim = ret->st_ctim = lv->attrs.mtime;
	ret->st_atim = lv->attrs.atime;
	return 0;
}

static int block_vol_chmod(Domain *d, const char *img, const char *vol, mode_t mode)
{
	BlockLv *lv = find_lv(d, vol);

	(void)img;
	if (!lv)
		return -ENOENT;
	lv->attrs.mode = S_IFREG | (mode & 07777);
	return 0;
}

static int block_vol_chown(Domain *d, const char *img, const char *vol, uid_t uid, gid_t gid)
{
	BlockLv *lv = find_lv(d, vol);

	(void)img;
	if (!lv)
		return -ENOENT;
	if (uid != (uid_t)-1)
		lv->attrs.uid = uid;
	if (gid != (gid_t)-1)
		lv->attrs.gid = gid;
	return 0;
}

static int block_vol_utimens(Domain *d, const char *img, const char *vol,
			     const struct timespec times[2])
{
	BlockLv *lv = find_lv(d, vol);
	struct timespec now;

	(void)img;
	if (!lv)
		return -ENOENT;
	clock_gettime(CLOCK_REALTIME, &now);
	if (!times) {
		lv->attrs.atime = lv->attrs.mtime = now;
		return 0;
	}
	if (times[0].tv_nsec != UTIME_OMIT)
		lv->attrs.atime = times[0].tv_nsec == UTIME_NOW ? now : times[0];
	if (times[1].tv_nsec != UTIME_OMIT)
		lv->attrs.mtime = times[1].tv_nsec == UTIME_NOW ? now : times[1];
	return 0;
}

/*
 * Grows lv to at least size bytes (whole extents), zeroing what it adds.
 *
 * No stale bytes, even across a crash (behaviour.md): the extents lvextend
 * hands out may hold a deleted LV's bytes until they are zeroed, so
 *   1. an lv-extend journal record {volume, old_size: the LV size served so
 *      far} (journal.c);
 *   2. lvextend;
 *   3. zero [old_size, the LV's new size), sync the PVs;
 *   4. clear the record;
 *   5. swap the new map in: only now can any I/O reach the new extents.
 * A live record at the next start zeroes [old_size, the LV's size then)
 * (block_lv_extend_replay()): nothing past old_size was served before step
 * 5, so that never zeroes data.  An extension that fails after step 1 keeps
 * its record (lv->ext_slot) unless lvextend surely changed nothing; the
 * next extension of the LV reuses it (old_size is the same: no map was
 * swapped in), and clears it once it has zeroed everything.
 */
/*
 * On a host that is not SPM: the SPM extends the LV (storage mailbox), this
 * host then reads the LV's new segments itself (a read-only lvs).
 */
#define THIN_WAITS_KEPT 65536

static int grow_remote(Domain *d, BlockLv *lv, uint64_t size)
{
	g_autoptr(ExtMap) old = NULL;
	g_autoptr(BlkLv) blv = NULL;
	g_autoptr(ExtMap) map = NULL;
	gint64 t0;
	int r = 0;

	g_mutex_lock(&d->bd->extend_lock);
	old = blk_extmap_holder_get(lv->map);
	if (size <= blk_extmap_size(old))
		goto out;
	size = (size + d->bd->extent_size - 1) / d->bd->extent_size * d->bd->extent_size;
	t0 = g_get_monotonic_time();
	r = fwd_extend(d, lv->name, size);
	vg_stale(d);
	if (r < 0)
		goto out;
	{
		g_autoptr(GHashTable) pending = NULL;
		g_autoptr(ExtMap) full = NULL;

		/* the SPM cleared its record before it answered; another
		 * extension of the LV (asked by another host) may have begun */
		if ((r = blk_lv_get(d->bd->ctx, d->bd->vg, lv->name, &blv)) < 0 ||
		    (r = blockdom_map_lv(d->bd, blv, &full)) < 0 ||
		    (r = jrnl_pending_extends(d, &pending)) < 0 ||
		    (r = usable_map(lv->name, pending, full, &map)) < 0)
			goto out;
	}
	if (blk_extmap_size(map) < size) {
		r = -EIO;
		goto out;
	}
	blk_extmap_holder_set(lv->map, map);
	{
		/* the round trip: asked, extended by the SPM, new segments read */
		gint64 us = g_get_monotonic_time() - t0;

		g_mutex_lock(&d->bd->stats_lock);
		if (d->bd->remote_us->len < THIN_WAITS_KEPT)
			g_array_append_val(d->bd->remote_us, us);
		g_mutex_unlock(&d->bd->stats_lock);
	}
out:
	g_mutex_unlock(&d->bd->extend_lock);
	return r;
}

static int grow(Domain *d, BlockLv *lv, uint64_t size)
{
	g_autoptr(ExtMap) old = NULL;
	g_autoptr(BlkLv) blv = NULL;
	g_autoptr(ExtMap) map = NULL;
	uint64_t old_size;
	bool fresh = false;
	int r;

	r = spm_guard(d);
	if (r > 0)
		return grow_remote(d, lv, size);
	if (r < 0)
		return r;
	g_mutex_lock(&d->bd->extend_lock);
	old = blk_extmap_holder_get(lv->map);
	old_size = blk_extmap_size(old);
	r = 0;
	if (size <= old_size)
		goto out;
	/* whole extents (lvm wants whole sectors; it would round up anyway) */
	size = (size + d->bd->extent_size - 1) / d->bd->extent_size * d->bd->extent_size;
	if (lv->ext_slot < 0) {
		g_autoptr(MdKv) args = md_kv_new();
		g_autofree char *from = g_strdup_printf("%" G_GUINT64_FORMAT, old_size);
		g_autofree char *to = g_strdup_printf("%" G_GUINT64_FORMAT, size);

		md_kv_set(args, "volume", lv->name);
		md_kv_set(args, "old_size", from);
		md_kv_set(args, "new_size", to);
		if ((r = FAULT_POINT("extend.journal")) < 0 ||
		    (r = jrnl_begin(d, MD_JOURNAL_OP_LV_EXTEND, args, &lv->ext_slot)) < 0)
			goto out;
		fresh = true;
	}
	if ((r = FAULT_POINT("extend.lvextend")) < 0)
		goto failed;
	r = blk_lv_extend(d->bd->ctx, d->bd->vg, lv->name, size);
	vg_stale(d);
	if (r == -ENOSPC)
		goto failed; /* lvm found no room before changing anything */
	/* -EINVAL: maybe larger already, by an extension cut off after its lvextend */
	if (r < 0 && r != -EINVAL)
		goto kept;
	{
		int r2;

		if ((r2 = blk_lv_get(d->bd->ctx, d->bd->vg, lv->name, &blv)) < 0 ||
		    (r2 = blockdom_map_lv(d->bd, blv, &map)) < 0) {
			r = r2;
			goto kept;
		}
	}
	if (blk_extmap_size(map) < size) {
		r = r < 0 ? r : -EIO;
		goto kept;
	}
	if ((r = FAULT_POINT("extend.zero")) < 0 || (r = zero_new(d, map, old_size)) < 0 ||
	    (r = blk_lvio_sync(d->bd->io, false)) < 0 || (r = jrnl_clear(d, lv->ext_slot)) < 0)
		goto kept;
	lv->ext_slot = -1;
	/* lvextend only appends: I/O in flight on the old map stays right */
	blk_extmap_holder_set(lv->map, map);
	goto out;
failed:
	/* nothing changed: a record of this call goes (one kept from before stays) */
	if (fresh && jrnl_clear(d, lv->ext_slot) == 0)
		lv->ext_slot = -1;
	goto out;
kept:
	log_debug(LOG_CLASS_DOMAIN, "domain '%s' volume '%s': extension to %" G_GUINT64_FORMAT
		  " failed (%s), its journal slot %d stays for the next try or start", d->uuid,
		  lv->name, size, g_strerror(-r), lv->ext_slot);
out:
	g_mutex_unlock(&d->bd->extend_lock);
	return r;
}

/*
 * An extension that failed after its lvextend left a record naming the LV
 * (grow()); before the name changes, its zeroing is done and the record
 * cleared.  The map stays: the next grow() finds the LV large enough.
 */
static int finish_kept_extension_locked(Domain *d, BlockLv *lv)
{
	g_autoptr(ExtMap) old = NULL;
	g_autoptr(BlkLv) blv = NULL;
	g_autoptr(ExtMap) map = NULL;
	int r;

	if (lv->ext_slot < 0)
		return 0;
	old = blk_extmap_holder_get(lv->map);
	if ((r = blk_lv_get(d->bd->ctx, d->bd->vg, lv->name, &blv)) < 0 ||
	    (r = blockdom_map_lv(d->bd, blv, &map)) < 0 ||
	    (r = zero_new(d, map, blk_extmap_size(old))) < 0 ||
	    (r = blk_lvio_sync(d->bd->io, false)) < 0 || (r = jrnl_clear(d, lv->ext_slot)) < 0)
		return r;
	lv->ext_slot = -1;
	return 0;
}

int block_lv_extend_replay(Domain *d, const char *vol, uint64_t old_size)
{
	BlockLv *lv = find_lv(d, vol);
	g_autoptr(ExtMap) m = NULL;
	uint64_t size;
	int r;

	if (!lv)
		return 0; /* removed since: whoever gets its extents zeroes them */
	/* the LV's whole map: the scan left this host only old_size bytes of it */
	r = blockdom_map(d->bd, vol, &m);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	size = blk_extmap_size(m);
	if (old_size >= size)
		return 0; /* lvextend did not happen */
	log_info("domain '%s' volume '%s': zeroing the extents of an interrupted extension "
		 "(%" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT ")", d->uuid, vol, old_size, size);
	r = blk_lvio_zero(d->bd->io, m, old_size, size - old_size);
	if (r == 0)
		r = blk_lvio_sync(d->bd->io, false);
	if (r == 0)
		blk_extmap_holder_set(lv->map, m); /* zeroed: all of it may be used */
	return r;
}

static uint64_t round_up(uint64_t v, uint64_t unit)
{
	return (v + unit - 1) / unit * unit;
}

int block_lv_grow(Domain *d, const char *vol, uint64_t size)
{
	BlockLv *lv = find_lv(d, vol);
	uint64_t cap, limit;

	if (!lv)
		return -ENOENT;
	if (lv->cow) {
		cap = __atomic_load_n(&lv->capacity, __ATOMIC_RELAXED);
		limit = round_up(cap + cap / 10, d->bd->extent_size);
		if (size > limit)
			return -ENOSPC; /* CONTRACT: never past capacity + 10% */
	}
	/* raw: fallocate on another host preallocates (truncate comes as itself) */
	return grow(d, lv, size);
}

/*
 * CONTRACT "Thin provisioning": a qcow2 LV grows by a chunk when a write
 * reaches within half a chunk of its end, never past capacity * 1.1
 * (rounded up to extents).  The extension runs ahead of the writes on the
 * domain's extender thread: the write that reaches the threshold queues it
 * and goes on, since it still fits; only a write that reaches past the end
 * of the LV waits, for what it needs.  ENOSPC only when the write still does
 * not fit: the VG is full (or the volume at its bound).
 */
typedef struct ExtendTask {
	Domain *d;
	BlockLv *lv; /* valid until the domain goes: removed LVs are kept (bd->gone) */
	uint64_t target;
} ExtendTask;

static void thin_note_wait(BlockDom *bd, gint64 us, bool waited);

static void extend_main(gpointer data, gpointer user_data)
{
	ExtendTask *t = data;
	int r;

	(void)user_data;
	r = grow(t->d, t->lv, t->target);
	if (r < 0)
		log_debug(LOG_CLASS_DOMAIN, "domain '%s' volume '%s': extending ahead to %" G_GUINT64_FORMAT
			  ": %s (a write past the end will try again)", t->d->uuid, t->lv->name,
			  t->target, g_strerror(-r));
	else
		log_debug(LOG_CLASS_DOMAIN, "domain '%s' volume '%s': LV extended to %" G_GUINT64_FORMAT,
			  t->d->uuid, t->lv->name, t->target);
	g_atomic_int_set(&t->lv->extending, 0);
	g_free(t);
}

typedef enum Ahead {
	AHEAD_QUEUED,
	AHEAD_PENDING, /* one is queued already */
	AHEAD_FAILED,
} Ahead;

static Ahead extend_ahead(Domain *d, BlockLv *lv, uint64_t target)
{
	BlockDom *bd = d->bd;
	ExtendTask *t;

	if (!g_atomic_int_compare_and_exchange(&lv->extending, 0, 1))
		return AHEAD_PENDING;
	g_mutex_lock(&bd->stats_lock);
	if (!bd->extender)
		bd->extender = g_thread_pool_new(extend_main, NULL, 1, FALSE, NULL);
	g_mutex_unlock(&bd->stats_lock);
	t = g_new0(ExtendTask, 1);
	t->d = d;
	t->lv = lv;
	t->target = target;
	if (!bd->extender || !g_thread_pool_push(bd->extender, t, NULL)) {
		g_free(t);
		g_atomic_int_set(&lv->extending, 0);
		return AHEAD_FAILED;
	}
	return AHEAD_QUEUED;
}

static uint64_t thin_chunk(Domain *d)
{
	return (uint64_t)(d->st->opt.chunk_mb ? d->st->opt.chunk_mb : 1024) * 1024 * 1024;
}

/* The most a thin LV grows to: capacity + 10 %, in whole extents. */
static uint64_t thin_limit(Domain *d, BlockLv *lv)
{
	uint64_t cap = __atomic_load_n(&lv->capacity, __ATOMIC_RELAXED);

	return round_up(cap + cap / 10, d->bd->extent_size);
}

/* Whether a write ending at end, on an LV of size bytes, reaches no extension threshold. */
static bool thin_below_threshold(Domain *d, BlockLv *lv, uint64_t size, uint64_t end)
{
	return end + thin_chunk(d) / 2 <= size || size >= thin_limit(d, lv);
}

/* Returns 1 when the write waited (the LV's map changed), 0 when it goes on, or -errno. */
static int thin_extend(Domain *d, BlockLv *lv, const ExtMap *m, uint64_t end)
{
	uint64_t chunk = thin_chunk(d);
	uint64_t ext = d->bd->extent_size;
	uint64_t limit = thin_limit(d, lv);
	uint64_t size = blk_extmap_size(m);
	uint64_t target;
	gint64 t0;
	int r;

	if (thin_below_threshold(d, lv, size, end))
		return end <= size ? 0 : -ENOSPC;
	target = MAX(size + chunk, round_up(end + chunk / 2, ext));
	target = MIN(round_up(target, ext), MAX(limit, round_up(end, ext)));
	if (end <= size) {
		Ahead a = extend_ahead(d, lv, target);

		if (a == AHEAD_QUEUED)
			thin_note_wait(d->bd, 0, false); /* asked for it, did not wait */
		if (a != AHEAD_FAILED)
			return 0;
	}
	/* Past the end: wait for the extension (serialised with the extender's). */
	t0 = g_get_monotonic_time();
	r = grow(d, lv, target);
	if (r == -ENOSPC && end > size)
		/* less than a chunk left in the VG: what this write needs, if that fits */
		r = grow(d, lv, round_up(end, ext));
	thin_note_wait(d->bd, g_get_monotonic_time() - t0, true);
	if (r < 0)
		return end <= size ? 1 : r; /* when it fits, the next write tries again */
	return 1;
}

/*
 * A write reached an extension threshold (waited: it was past the LV end and
 * waited us microseconds; otherwise it queued the extension and went on).
 */
static void thin_note_wait(BlockDom *bd, gint64 us, bool waited)
{
	g_mutex_lock(&bd->stats_lock);
	bd->n_extensions++;
	if (waited)
		bd->n_waited++;
	if (bd->waits_us->len < THIN_WAITS_KEPT) {
		g_array_append_val(bd->waits_us, us);
	} else {
		g_array_index(bd->waits_us, gint64, bd->waits_next) = us;
		bd->waits_next = (bd->waits_next + 1) % THIN_WAITS_KEPT;
	}
	g_mutex_unlock(&bd->stats_lock);
}

static gint cmp_i64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;

	return x < y ? -1 : x > y;
}

/* PREFIX_p50_ms, _p99_ms, _max_ms of sorted microseconds (none when empty). */
static void add_quantiles(JsonBuilder *b, GArray *us, const char *prefix)
{
	static const struct {
		const char *name;
		double q;
	} qs[] = { { "p50", 0.50 }, { "p99", 0.99 }, { "max", 1.0 } };

	for (size_t i = 0; us->len > 0 && i < G_N_ELEMENTS(qs); i++) {
		guint k = (guint)(qs[i].q * (us->len - 1) + 0.5);
		g_autofree char *name = g_strdup_printf("%s_%s_ms", prefix, qs[i].name);

		json_builder_set_member_name(b, name);
		json_builder_add_double_value(b, g_array_index(us, gint64, k) / 1000.0);
	}
}

void block_status(Domain *d, JsonBuilder *b)
{
	BlockDom *bd = d->bd;
	g_autoptr(GArray) w = NULL;
	g_autoptr(GArray) rt = NULL;
	guint n_lvs;
	uint64_t n_ext, n_waited;

	g_mutex_lock(&bd->lock);
	n_lvs = g_hash_table_size(bd->lvs);
	g_mutex_unlock(&bd->lock);
	for (const char *const *sp = md_block_special_lvs(); *sp; sp++)
		n_lvs++;
	g_mutex_lock(&bd->stats_lock);
	n_ext = bd->n_extensions;
	n_waited = bd->n_waited;
	w = g_array_copy(bd->waits_us);
	rt = g_array_copy(bd->remote_us);
	g_mutex_unlock(&bd->stats_lock);
	g_array_sort(w, cmp_i64);
	g_array_sort(rt, cmp_i64);

	json_builder_set_member_name(b, "lvs");
	json_builder_add_int_value(b, n_lvs);
	json_builder_set_member_name(b, "thin");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "extensions");
	json_builder_add_int_value(b, (gint64)n_ext);
	json_builder_set_member_name(b, "waited");
	json_builder_add_int_value(b, (gint64)n_waited);
	add_quantiles(b, w, "wait");
	/* extensions this host asked of the SPM (it is not SPM) */
	json_builder_set_member_name(b, "remote");
	json_builder_add_int_value(b, rt->len);
	add_quantiles(b, rt, "remote");
	json_builder_end_object(b);
}

static int block_vol_truncate(Domain *d, const char *img, const char *vol, off_t size)
{
	BlockLv *lv = find_lv(d, vol);
	uint64_t old;
	int r;

	(void)img;
	if (!lv)
		return -ENOENT;
	old = lv_shown_size(lv);
	/* a raw volume is preallocated: its LV covers its capacity (CONTRACT) */
	r = grow(d, lv, (uint64_t)size);
	if (r < 0)
		return r;
	if ((uint64_t)size > old) {
		/* bytes past the old end read as zeros, as a file's would */
		g_autoptr(ExtMap) m = blk_extmap_holder_get(lv->map);

		r = blk_lvio_zero(d->bd->io, m, old, (uint64_t)size - old);
		if (r < 0)
			return r;
	}
	if (size == 0)
		lv->cow = false;
	__atomic_store_n(&lv->size, (uint64_t)size, __ATOMIC_RELAXED);
	clock_gettime(CLOCK_REALTIME, &lv->attrs.mtime);
	return 0;
}

static int block_md_write(Domain *d, const char *img, const char *vol, const MdVolume *md)
{
	BlockLv *lv = find_lv(d, vol);
	int r;

	(void)img;
	if (!lv)
		return -ENOENT;
	if (!lv->has_slot) {
		/* a new volume: record first, then one lvchange makes it a volume */
		g_autoptr(GArray) used = g_array_new(FALSE, FALSE, sizeof(uint32_t));
		MdLvTags t = { 0 };
		g_auto(GStrv) add = NULL;
		const char *del[] = { MD_BLOCK_TAG_INITIALIZING, NULL };
		GHashTableIter it;
		gpointer value;
		uint32_t slot = 0;

		g_mutex_lock(&d->bd->lock);
		g_hash_table_iter_init(&it, d->bd->lvs);
		while (g_hash_table_iter_next(&it, NULL, &value)) {
			BlockLv *o = value;

			if (o->has_slot)
				g_array_append_val(used, o->slot);
		}
		g_mutex_unlock(&d->bd->lock);
		r = md_block_slot_pick(d->version, (const uint32_t *)(void *)used->data, used->len,
				       &slot);
		if (r < 0)
			return r;
		r = write_slot(d, slot, md);
		if (r < 0)
			return r;
		t.has_image = t.has_parent = t.has_slot = true;
		g_strlcpy(t.image, md->image, sizeof(t.image));
		g_strlcpy(t.parent, md->parent, sizeof(t.parent));
		t.slot = slot;
		r = md_lv_tags_format(&t, &add);
		if (r < 0)
			return r;
		r = blk_lv_change_tags(d->bd->ctx, d->bd->vg, vol, (const char *const *)add, del);
		if (r < 0)
			return r;
		lv->slot = slot;
		lv->has_slot = true;
		g_strlcpy(lv->parent, md->parent, sizeof(lv->parent));
	} else {
		r = write_slot(d, lv->slot, md);
		if (r < 0)
			return r;
		if (strcmp(lv->parent, md->parent) != 0) {
			/* keep the PU_ tag in step with the record (the record wins) */
			g_autofree char *old_tag = g_strconcat(
				MD_BLOCK_TAG_PARENT, *lv->parent ? lv->parent : BLANK_UUID, NULL);
			g_autofree char *new_tag = g_strconcat(
				MD_BLOCK_TAG_PARENT, *md->parent ? md->parent : BLANK_UUID, NULL);

			if (!*md->parent || name_is_valid(md->parent)) {
				r = retag(d, vol, old_tag, new_tag);
				if (r < 0)
					return r;
			}
			g_strlcpy(lv->parent, md->parent, sizeof(lv->parent));
		}
	}
	lv->cow = md->format == MD_VOL_FORMAT_COW;
	__atomic_store_n(&lv->capacity, md->capacity, __ATOMIC_RELAXED);
	return 0;
}

static int block_md_remove(Domain *d, const char *img, const char *vol)
{
	(void)d;
	(void)img;
	(void)vol;
	return 0; /* reference 6.3: the slot is free once no LV names it */
}

/* The map of a special LV that never moves (ids, leases): one lvs, then kept. */
static int special_map(Domain *d, const char *name, ExtMap **cache, ExtMap **ret)
{
	ExtMap *m = NULL;
	int r;

	g_mutex_lock(&d->bd->lock);
	if (*cache)
		m = blk_extmap_ref(*cache);
	g_mutex_unlock(&d->bd->lock);
	if (m) {
		*ret = m;
		return 0;
	}
	r = blockdom_map(d->bd, name, &m); /* an lvm run: no lock held */
	if (r < 0)
		return r;
	g_mutex_lock(&d->bd->lock);
	if (!*cache)
		*cache = blk_extmap_ref(m);
	g_mutex_unlock(&d->bd->lock);
	*ret = m;
	return 0;
}

/*
 * A sanlock area on the PVs: sanlock gets the PV and the byte offset there
 * (no device-mapper here, so no /dev/<vg>/<lv>).  An area is one alignment
 * unit and must not straddle two segments.
 */
static int block_lease_area(Domain *d, DomLeaseArea area, const char *img, const char *vol,
			    char **ret_path, uint64_t *ret_offset)
{
	g_autoptr(ExtMap) map = NULL;
	const char *path;
	BlockLv *lv;
	uint64_t off = 0;
	int r;

	(void)img;
	switch (area) {
	case DOM_LEASE_IDS:
		r = special_map(d, MD_BLOCK_LV_IDS, &d->bd->ids_map, &map);
		break;
	case DOM_LEASE_SPM:
		off = d->alignment; /* slot 1 of leases; 0 is the legacy safelease */
		r = special_map(d, MD_BLOCK_LV_LEASES, &d->bd->leases_map, &map);
		break;
	case DOM_LEASE_VOLUME:
		lv = find_lv(d, vol);
		if (!lv || !lv->has_slot)
			return -ENOENT;
		r = md_block_lease_offset(lv->slot, d->alignment, &off);
		if (r == 0)
			r = special_map(d, MD_BLOCK_LV_LEASES, &d->bd->leases_map, &map);
		break;
	default:
		return -EINVAL;
	}
	if (r < 0 || (r = blockdom_area(d->bd, map, off, d->alignment, &path, ret_offset)) < 0)
		return r;
	*ret_path = g_strdup(path);
	return 0;
}

static int block_lease_create(Domain *d, const char *img, const char *vol)
{
	g_autofree char *path = NULL;
	char res[LEASE_NAME_MAX + 1];
	uint64_t off = 0;
	int r;

	r = block_lease_area(d, DOM_LEASE_VOLUME, img, vol, &path, &off);
	if (r < 0)
		return r;
	lease_volume_resource_name(vol, res);
	return lease_format_resource(path, off, d->uuid, res, d->block_size, d->alignment);
}

int block_special_location(Domain *d, const char *lv, uint64_t off, uint64_t len,
			   char **ret_path, uint64_t *ret_off)
{
	g_autoptr(ExtMap) map = NULL;
	const char *path;
	int r;

	if ((r = blockdom_map(d->bd, lv, &map)) < 0 ||
	    (r = blockdom_area(d->bd, map, off, len, &path, ret_off)) < 0)
		return r;
	*ret_path = g_strdup(path);
	return 0;
}

static int block_lease_remove(Domain *d, const char *img, const char *vol)
{
	(void)d;
	(void)img;
	(void)vol;
	return 0; /* the area belongs to the slot, rewritten by its next volume */
}

/*
 * O_DIRECT both ways, as the volume records: other hosts write and read the
 * journal too (an SPM before this one; every host reads it when it maps an
 * LV), so this host's page cache of the PV must never answer a read.
 * Callers' buffers are aligned (ov_aligned_alloc).
 */
static int block_journal_read(Domain *d, unsigned slot, unsigned count, void *buf)
{
	ssize_t n = blk_lvio_pread(d->bd->io, d->bd->md_map, true, buf,
				   (size_t)count * MD_JOURNAL_RECORD_SIZE,
				   BLOCK_JOURNAL_OFFSET + (uint64_t)slot * MD_JOURNAL_RECORD_SIZE);

	return n < 0 ? (int)n : 0;
}

static int block_journal_write(Domain *d, unsigned slot, const void *buf)
{
	ssize_t n = blk_lvio_pwrite(d->bd->io, d->bd->md_map, true, buf, MD_JOURNAL_RECORD_SIZE,
				    BLOCK_JOURNAL_OFFSET + (uint64_t)slot * MD_JOURNAL_RECORD_SIZE);

	if (n < 0)
		return (int)n;
	return blk_lvio_sync(d->bd->io, true);
}

static int block_statfs(Domain *d, struct statvfs *ret)
{
	gint64 now = g_get_monotonic_time();
	uint64_t size, free;

	g_mutex_lock(&d->bd->lock);
	size = d->bd->vg_size;
	free = d->bd->vg_free;
	if (!d->bd->vg_read_at || now - d->bd->vg_read_at > VG_CACHE_US) {
		g_autoptr(BlkVg) vg = NULL;
		int r;

		g_mutex_unlock(&d->bd->lock);
		r = blk_vg_get(d->bd->ctx, d->bd->vg, &vg);
		if (r < 0)
			return r;
		size = vg->size;
		free = vg->free;
		g_mutex_lock(&d->bd->lock);
		d->bd->vg_size = size;
		d->bd->vg_free = free;
		d->bd->vg_read_at = now;
	}
	g_mutex_unlock(&d->bd->lock);
	memset(ret, 0, sizeof(*ret));
	ret->f_bsize = ret->f_frsize = 4096;
	ret->f_blocks = size / 4096;
	ret->f_bfree = ret->f_bavail = free / 4096;
	ret->f_namemax = 64;
	return 0;
}

static int block_domain_md_write(Domain *d, const MdKv *kv)
{
	return blockdom_write_kv(d->bd, kv);
}

const DomainBackend block_backend = {
	.type = "block",
	.scan = block_scan,
	.image_create = block_image_create,
	.image_remove = block_image_remove,
	.image_rename = block_image_rename,
	.image_stat = block_image_stat,
	.image_chmod = block_image_chmod,
	.image_chown = block_image_chown,
	.vol_create = block_vol_create,
	.vol_remove = block_vol_remove,
	.vol_rename = block_vol_rename,
	.vol_link = block_vol_link,
	.vol_open = block_vol_open,
	.vol_stat = block_vol_stat,
	.vol_chmod = block_vol_chmod,
	.vol_chown = block_vol_chown,
	.vol_utimens = block_vol_utimens,
	.vol_truncate = block_vol_truncate,
	.md_write = block_md_write,
	.md_remove = block_md_remove,
	.lease_create = block_lease_create,
	.lease_remove = block_lease_remove,
	.lease_area = block_lease_area,
	.journal_read = block_journal_read,
	.journal_write = block_journal_write,
	.statfs = block_statfs,
	.domain_md_write = block_domain_md_write,
};

/* The data path (io.c). */

BlockLv *block_lv_lookup(Domain *d, const char *vol)
{
	return find_lv(d, vol);
}

uint64_t block_lv_size(BlockLv *lv)
{
	return lv_shown_size(lv);
}

ssize_t block_lv_pread(Domain *d, BlockLv *lv, bool direct, void *buf, size_t len, uint64_t off)
{
	g_autoptr(ExtMap) m = blk_extmap_holder_get(lv->map);
	uint64_t size = lv_shown_size(lv);
	size_t want;
	ssize_t n;

	if (off >= size)
		return 0;
	want = (size_t)MIN((uint64_t)len, size - off);
	/* O_DIRECT keeps whole sectors: a size not sector-aligned ends inside the LV */
	if (direct)
		len = MIN(len, (want + BLOCK_SECTOR - 1) / BLOCK_SECTOR * BLOCK_SECTOR);
	else
		len = want;
	n = blk_lvio_pread(d->bd->io, m, direct, buf, len, off);
	if (n < 0)
		return n;
	clock_gettime(CLOCK_REALTIME, &lv->attrs.atime);
	return (ssize_t)want;
}

ssize_t block_lv_read_head(Domain *d, BlockLv *lv, void *buf, size_t len)
{
	g_autoptr(ExtMap) m = blk_extmap_holder_get(lv->map);
	size_t n = (size_t)MIN((uint64_t)len, blk_extmap_size(m));

	return n ? blk_lvio_pread(d->bd->io, m, false, buf, n, 0) : 0;
}

ssize_t block_lv_pwrite(Domain *d, BlockLv *lv, bool direct, const void *buf, size_t len,
			uint64_t off)
{
	g_autoptr(ExtMap) m = blk_extmap_holder_get(lv->map);
	ssize_t n;

	if (lv->cow) {
		int r = thin_extend(d, lv, m, off + len);

		if (r < 0)
			return r;
		if (r > 0) { /* it waited for a new map */
			blk_extmap_unref(m);
			m = blk_extmap_holder_get(lv->map);
		}
	}
	/* a raw block volume does not grow by writing (behaviour.md) */
	if (off + len > blk_extmap_size(m))
		return -ENOSPC;
	n = blk_lvio_pwrite(d->bd->io, m, direct, buf, len, off);
	if (n < 0)
		return n;
	if (!lv->cow && off + len > lv_shown_size(lv))
		__atomic_store_n(&lv->size, off + len, __ATOMIC_RELAXED);
	clock_gettime(CLOCK_REALTIME, &lv->attrs.mtime);
	return n;
}

int block_lv_io_target(Domain *d, BlockLv *lv, bool write, bool direct, size_t len, uint64_t off,
		       int *ret_fd, uint64_t *ret_off)
{
	g_autoptr(ExtMap) m = blk_extmap_holder_get(lv->map);
	uint64_t end = off + len;
	int r;

	/* Whatever is not one I/O at a known place goes the slow way: nothing
	 * to move, reads past what the volume shows (cut short there), writes
	 * that reach a thin LV's extension threshold or a raw LV's shown end. */
	if (len == 0 || end < off || end > lv_shown_size(lv))
		return -EAGAIN;
	if (write && lv->cow && !thin_below_threshold(d, lv, blk_extmap_size(m), end))
		return -EAGAIN;
	r = blk_lvio_target(d->bd->io, m, direct, len, off, ret_fd, ret_off);
	if (r < 0)
		return r == -ERANGE ? -EAGAIN : r;
	clock_gettime(CLOCK_REALTIME, write ? &lv->attrs.mtime : &lv->attrs.atime);
	return 0;
}

int block_lv_zero(Domain *d, BlockLv *lv, uint64_t off, uint64_t len)
{
	g_autoptr(ExtMap) m = blk_extmap_holder_get(lv->map);

	if (off >= blk_extmap_size(m))
		return 0;
	len = MIN(len, blk_extmap_size(m) - off);
	return blk_lvio_zero(d->bd->io, m, off, len);
}

int block_lv_fallocate(Domain *d, BlockLv *lv, int mode, uint64_t off, uint64_t len)
{
	int r;

	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return block_lv_zero(d, lv, off, len);
	if (mode & ~FALLOC_FL_KEEP_SIZE)
		return -EOPNOTSUPP;
	/* preallocation: the LV grows to cover the range (serialised with truncate) */
	g_mutex_lock(&d->op_lock);
	r = grow(d, lv, off + len);
	if (r == 0 && !(mode & FALLOC_FL_KEEP_SIZE) && !lv->cow &&
	    off + len > lv_shown_size(lv))
		__atomic_store_n(&lv->size, off + len, __ATOMIC_RELAXED);
	g_mutex_unlock(&d->op_lock);
	return r;
}

int block_sync(Domain *d, bool datasync)
{
	return blk_lvio_sync(d->bd->io, datasync);
}

/* Opening a block domain (storage.c). */

int block_domain_load(Domain *d, MdKv **ret_kv)
{
	g_auto(GStrv) tags = NULL;
	int r;

	r = blockdom_read_kv(d->bd, &tags, ret_kv);
	if (r < 0)
		return r;
	if (!g_strv_contains((const char *const *)tags, MD_BLOCK_VG_TAG))
		return -ENOMEDIUM; /* not (yet) a domain: creation unfinished */
	r = blockdom_map(d->bd, MD_BLOCK_LV_METADATA, &d->bd->md_map);
	if (r < 0)
		return r;
	d->bd->lvs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, block_lv_free);
	d->bd->images = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	d->bd->gone = g_ptr_array_new_with_free_func(block_lv_free);
	return 0;
}
