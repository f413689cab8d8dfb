/*
 * volume.c: volume metadata operations.
 *
 * Locking.  Every change to a domain's metadata (records on disk, the
 * in-memory tables, a volume's fields) happens with d->op_lock held, and the
 * in-memory part additionally under d->lock taken for writing, briefly.
 * Readers that do not hold op_lock (lookups, getattr, readdir) take d->lock
 * for reading; a holder of op_lock may read without it, since nobody else
 * can change anything.  So op_lock is held across the disk I/O of an
 * operation (a few fsyncs on file domains) while lookups go on.  The data
 * path takes no lock at all except for writes into a qcow2 header (io.c).
 * Open-for-write counts (n_writers) change under op_lock, so "EBUSY when
 * open for write" checks are exact.
 *
 * Crash safety.  An operation of more than one step writes a journal record
 * first (journal.c), names each step with a fault point, and clears the
 * record when done.  The *_finish() functions do the steps idempotently
 * (tolerating what was already done), so normal operation and journal
 * replay after a crash run the same code.  On an error the operation undoes
 * what it did; where that is impossible it leaves the record in place for
 * the next start to finish.
 */
#include "domain/model-int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fault.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/names.h"
#include "metadata/md-qcow2.h"
#include "common/banned.h"

/* An image holding vol (its home when it is a template). */
static const char *vol_any_image_locked(Volume *vol)
{
	Image *img = model_home_image_locked(vol);

	return img ? img->name : vol->md.image;
}

void vol_get_info(Volume *vol, VolumeInfo *ret)
{
	Domain *d = vol->dom;
	struct stat st;
	g_autofree char *img = NULL;

	memset(ret, 0, sizeof(*ret));
	g_rw_lock_reader_lock(&d->lock);
	g_strlcpy(ret->name, vol->name, sizeof(ret->name));
	g_strlcpy(ret->parent, vol->md.parent, sizeof(ret->parent));
	ret->format = vol->md.format;
	ret->type = vol->md.type;
	ret->role = vol->md.role;
	ret->legality = vol->corrupt ? MD_LEGALITY_ILLEGAL : vol->md.legality;
	ret->capacity = vol->md.capacity;
	ret->generation = vol->md.generation;
	g_strlcpy(ret->description, vol->md.description, sizeof(ret->description));
	ret->plain = vol->plain;
	ret->corrupt = vol->corrupt;
	ret->writable = !vol->corrupt && !vol->dead &&
			(vol->plain || vol->md.role == MD_VOL_ROLE_LEAF);
	ret->n_images = vol->images->len;
	img = g_strdup(vol_any_image_locked(vol));
	g_rw_lock_reader_unlock(&d->lock);

	/* A raw volume's capacity is its size, also while a writer grows it. */
	if ((ret->format == MD_VOL_FORMAT_RAW || ret->plain) &&
	    d->ops->vol_stat(d, img, ret->name, &st) == 0)
		ret->capacity = (uint64_t)st.st_size;
}

bool vol_is_dead(Volume *vol)
{
	bool dead;

	g_rw_lock_reader_lock(&vol->dom->lock);
	dead = vol->dead;
	g_rw_lock_reader_unlock(&vol->dom->lock);
	return dead;
}

/* Copies the names needed to reach the backing file; -ENOENT when gone. */
static int vol_names(Volume *vol, char **ret_img, char **ret_name, bool *ret_writable)
{
	Domain *d = vol->dom;
	int r = 0;

	g_rw_lock_reader_lock(&d->lock);
	if (vol->dead) {
		r = -ENOENT;
	} else {
		*ret_img = g_strdup(vol_any_image_locked(vol));
		*ret_name = g_strdup(vol->name);
		if (ret_writable)
			*ret_writable = !vol->corrupt &&
					(vol->plain || vol->md.role == MD_VOL_ROLE_LEAF);
	}
	g_rw_lock_reader_unlock(&d->lock);
	return r;
}

int vol_stat(Volume *vol, struct stat *ret)
{
	g_autofree char *img = NULL;
	g_autofree char *name = NULL;
	bool writable = false;
	guint n_images;
	int r;

	r = vol_names(vol, &img, &name, &writable);
	if (r < 0)
		return r;
	r = vol->dom->ops->vol_stat(vol->dom, img, name, ret);
	if (r < 0)
		return r;
	if (!writable)
		ret->st_mode &= ~(mode_t)0222;
	g_rw_lock_reader_lock(&vol->dom->lock);
	n_images = vol->images->len;
	g_rw_lock_reader_unlock(&vol->dom->lock);
	ret->st_nlink = n_images ? n_images : 1;
	return 0;
}

int vol_chmod(Volume *vol, mode_t mode)
{
	g_autofree char *img = NULL;
	g_autofree char *name = NULL;
	int r = vol_names(vol, &img, &name, NULL);

	/* behaviour.md: set-id and sticky bits mean nothing on a disk image and are
	 * dropped, so writes never have privileges to kill (fs: KILLPRIV_V2). */
	return r < 0 ? r : vol->dom->ops->vol_chmod(vol->dom, img, name, mode & 0777);
}

int vol_chown(Volume *vol, uid_t uid, gid_t gid)
{
	g_autofree char *img = NULL;
	g_autofree char *name = NULL;
	int r = vol_names(vol, &img, &name, NULL);

	return r < 0 ? r : vol->dom->ops->vol_chown(vol->dom, img, name, uid, gid);
}

int vol_utimens(Volume *vol, const struct timespec times[2])
{
	g_autofree char *img = NULL;
	g_autofree char *name = NULL;
	int r = vol_names(vol, &img, &name, NULL);

	return r < 0 ? r : vol->dom->ops->vol_utimens(vol->dom, img, name, times);
}

int vol_write_md_locked(Volume *vol, MdVolume *md)
{
	Domain *d = vol->dom;
	int r = 0;

	g_assert(!vol->plain);
	md->generation = md_next_generation(vol->md.generation);
	if (vol->images->len == 0) {
		r = d->ops->md_write(d, md->image, vol->name, md);
	} else {
		for (guint i = 0; i < vol->images->len && r == 0; i++) {
			Image *img = vol->images->pdata[i];

			r = d->ops->md_write(d, img->name, vol->name, md);
		}
	}
	if (r < 0)
		return r;
	g_rw_lock_writer_lock(&d->lock);
	vol->md = *md;
	g_rw_lock_writer_unlock(&d->lock);
	dom_changed(d);
	return 0;
}

int vol_fix_role_locked(Domain *d, Volume *vol)
{
	MdVolRole want;
	MdVolume md;

	if (!vol || vol->plain || vol->corrupt || vol->dead || vol->md.role == MD_VOL_ROLE_SHARED)
		return 0;
	want = model_children_locked(d, vol->name, NULL) ? MD_VOL_ROLE_INTERNAL
							  : MD_VOL_ROLE_LEAF;
	if (vol->md.role == want)
		return 0;
	md = vol->md;
	md.role = want;
	return vol_write_md_locked(vol, &md);
}

static void vol_forget_locked(Domain *d, Volume *vol)
{
	g_rw_lock_writer_lock(&d->lock);
	while (vol->images->len)
		model_unlink_locked(vol, vol->images->pdata[0]);
	vol->dead = true;
	/* Drops the table's reference: vol may be freed now unless the caller holds one. */
	g_hash_table_remove(d->volumes, vol->name);
	g_rw_lock_writer_unlock(&d->lock);
}

/*
 * Removes vol from image img, on disk and in the model; the whole volume when
 * no other image holds it.  Idempotent.
 */
int vol_delete_finish(Domain *d, const char *img, const char *name, bool link_only)
{
	Volume *vol = model_find_volume_locked(d, name);
	Image *image = model_find_image_locked(d, img);
	g_autofree char *parent = NULL;
	int r;

	if ((r = FAULT_POINT("vol_delete.data")) < 0)
		return r;
	r = d->ops->vol_remove(d, img, name);
	if (r == 0 && !(vol && vol->plain))
		r = d->ops->lease_remove(d, img, name);
	if (r < 0)
		return r;
	if ((r = FAULT_POINT("vol_delete.meta")) < 0)
		return r;
	if (!(vol && vol->plain) && (r = d->ops->md_remove(d, img, name)) < 0)
		return r;
	if (!vol)
		return 0;
	if (image) {
		g_rw_lock_writer_lock(&d->lock);
		model_unlink_locked(vol, image);
		g_rw_lock_writer_unlock(&d->lock);
	}
	if (vol->images->len > 0 && link_only)
		return 0;
	parent = g_strdup(vol->md.parent);
	vol_forget_locked(d, vol);
	if (!*parent)
		return 0;
	if ((r = FAULT_POINT("vol_delete.parent")) < 0)
		return r;
	return vol_fix_role_locked(d, model_find_volume_locked(d, parent));
}

/*
 * close(2) answers after FLUSH; the kernel sends RELEASE, which closes the
 * handle, afterwards and on its own time.  A program that closes a volume
 * and unlinks or renames it next must not see EBUSY for a handle it no
 * longer has: when every write handle left has been flushed (and not
 * written through since), wait a little for their releases.
 */
void vol_settle_writers_locked(Domain *d, Volume *vol)
{
	gint64 deadline = g_get_monotonic_time() + 2 * G_TIME_SPAN_SECOND;

	while (g_atomic_int_get(&vol->n_writers) > 0 &&
	       g_atomic_int_get(&vol->n_writers) == g_atomic_int_get(&vol->n_flushed)) {
		if (!g_cond_wait_until(&d->writers_gone, &d->op_lock, deadline))
			break;
	}
}

/*
 * On a host that is not SPM: the change goes to the SPM, named by vol's
 * name in img (NULL: any image holding it).  A volume open for write here
 * is refused here (its lease keeps other hosts' writers off it).
 */
static int forward(Volume *vol, Image *img, FwdReq *req, bool busy_if_open)
{
	Domain *d = vol->dom;
	g_autofree char *img_name = NULL;
	g_autofree char *name = NULL;
	int r = 0;

	g_mutex_lock(&d->op_lock);
	if (busy_if_open)
		vol_settle_writers_locked(d, vol);
	g_rw_lock_reader_lock(&d->lock);
	if (vol->dead || (img && (img->dead || !model_volume_in_image_locked(vol, img))))
		r = -ENOENT;
	else if (busy_if_open && g_atomic_int_get(&vol->n_writers) > 0)
		r = -EBUSY;
	else {
		img_name = g_strdup(img ? img->name : vol_any_image_locked(vol));
		name = g_strdup(vol->name);
	}
	g_rw_lock_reader_unlock(&d->lock);
	g_mutex_unlock(&d->op_lock);
	if (r < 0)
		return r;
	req->img = img_name;
	req->vol = name;
	r = fwd_call(d, req);
	if (r == 0 && req->op == FWD_TRUNCATE && req->num == 0) {
		/* A header may follow behind the daemon's back (vh_learn). */
		g_mutex_lock(&d->op_lock);
		vol->emptied = true;
		g_mutex_unlock(&d->op_lock);
	}
	return r;
}

int vol_unlink(Volume *vol, Image *img)
{
	Domain *d = vol->dom;
	g_autoptr(MdKv) args = NULL;
	g_autoptr(GPtrArray) children = g_ptr_array_new();
	g_autofree char *img_name = NULL;
	g_autofree char *name = NULL;
	bool link_only;
	MdVolume md;
	int slot = -1;
	int r;

	r = spm_guard(d);
	if (r != 0)
		return r < 0 ? r : forward(vol, img, &(FwdReq){ .op = FWD_UNLINK }, true);
	g_mutex_lock(&d->op_lock);
	vol_settle_writers_locked(d, vol);
	if (vol->dead || img->dead || !model_volume_in_image_locked(vol, img)) {
		r = -ENOENT;
		goto out;
	}
	img_name = g_strdup(img->name);
	name = g_strdup(vol->name);
	if (g_atomic_int_get(&vol->n_writers) > 0 || vol_lease_probe(vol) == -EBUSY) {
		r = -EBUSY; /* CONTRACT: open for write, here or on another host */
		goto out;
	}
	if (vol->plain) {
		r = vol_delete_finish(d, img_name, name, false);
		goto out;
	}
	/* A template leaves an image that does not use it; its home goes last. */
	link_only = vol->images->len > 1;
	if (link_only && model_home_image_locked(vol) == img) {
		r = -EBUSY; /* CONTRACT: a template other images use */
		goto out;
	}
	model_children_locked(d, vol->name, children);
	for (guint i = 0; i < children->len; i++) {
		if (!link_only || model_volume_in_image_locked(children->pdata[i], img)) {
			r = -EBUSY; /* CONTRACT: has a child */
			goto out;
		}
	}

	args = md_kv_new();
	md_kv_set(args, "image", img_name);
	md_kv_set(args, "volume", name);
	md_kv_set(args, "link_only", link_only ? "1" : "0");
	if ((r = FAULT_POINT("vol_delete.journal")) < 0 ||
	    (r = jrnl_begin(d, MD_JOURNAL_OP_VOL_DELETE, args, &slot)) < 0)
		goto out;
	if (!link_only && !vol->corrupt) {
		/* Marked illegal first, as oVirt does: a crash leaves no usable half. */
		md = vol->md;
		md.legality = MD_LEGALITY_ILLEGAL;
		if ((r = FAULT_POINT("vol_delete.illegal")) < 0 ||
		    (r = vol_write_md_locked(vol, &md)) < 0) {
			jrnl_end(d, slot);
			goto out;
		}
	}
	r = vol_delete_finish(d, img_name, name, link_only);
	if (r < 0) {
		struct stat st;
		int r2 = 0;

		if (d->ops->vol_stat(d, img_name, name, &st) == 0) {
			/* Nothing removed yet: undo the mark. */
			if (!link_only && !vol->corrupt) {
				md = vol->md;
				md.legality = MD_LEGALITY_LEGAL;
				fault_quiet_begin();
				r2 = vol_write_md_locked(vol, &md);
				fault_quiet_end();
			}
			if (r2 == 0)
				jrnl_end(d, slot);
			goto out;
		}
		/* Past the point of no return: the next start finishes it. */
		log_warning_errno(r, "domain '%s' volume '%s/%s': delete interrupted, the next "
				  "start finishes it",
				  d->uuid, img_name, name);
		if (!vol->dead)
			vol_forget_locked(d, vol);
		goto out;
	}
	jrnl_end(d, slot);
out:
	g_mutex_unlock(&d->op_lock);
	return r;
}

/* Rewrites a child's qcow2 backing file name. */
static int rewrite_backing(Domain *d, const char *img, const char *child, const char *name)
{
	void *buf = NULL;
	size_t len = 0;
	MdQcow2Header hdr;
	int r;

	r = vol_read_head(d, img, child, &buf, &len);
	if (r < 0)
		return r;
	r = md_qcow2_parse(buf, len, &hdr);
	if (r == 0) {
		len = MIN(len, (size_t)1 << hdr.cluster_bits);
		r = md_qcow2_set_backing(buf, len, name);
	}
	if (r == 0)
		r = vol_write_head(d, img, child, buf, len);
	ov_aligned_free(buf);
	return r;
}

int vol_rename_finish(Domain *d, const char *img, const char *from, const char *to)
{
	g_autoptr(GPtrArray) children = g_ptr_array_new();
	Volume *vol;
	MdVolume md;
	int r;

	if ((r = FAULT_POINT("vol_rename.files")) < 0)
		return r;
	r = d->ops->vol_rename(d, img, from, to);
	if (r < 0)
		return r;
	vol = model_find_volume_locked(d, from);
	if (vol) {
		g_rw_lock_writer_lock(&d->lock);
		g_hash_table_steal(d->volumes, vol->name);
		g_free(vol->name);
		vol->name = g_strdup(to);
		model_add_volume_locked(d, vol);
		g_rw_lock_writer_unlock(&d->lock);
	}
	vol = model_find_volume_locked(d, to);
	if (!vol)
		return -ENOENT;
	if ((r = FAULT_POINT("vol_rename.meta")) < 0)
		return r;
	if (!vol->plain) {
		/* The lease resource is named after the volume. */
		r = d->ops->lease_create(d, img, to);
		if (r == 0 && !vol->corrupt) {
			md = vol->md;
			r = vol_write_md_locked(vol, &md);
		}
		if (r < 0)
			return r;
	}
	if ((r = FAULT_POINT("vol_rename.children")) < 0)
		return r;
	model_children_locked(d, from, children);
	for (guint i = 0; i < children->len; i++) {
		Volume *child = children->pdata[i];

		if (child->md.format == MD_VOL_FORMAT_COW) {
			r = rewrite_backing(d, vol_any_image_locked(child), child->name, to);
			if (r < 0)
				return r;
		}
		md = child->md;
		g_strlcpy(md.parent, to, sizeof(md.parent));
		r = vol_write_md_locked(child, &md);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Open for write here, or on another host (its volume lease). */
static bool any_writer_locked(Volume *vol)
{
	if (g_atomic_int_get(&vol->n_writers) > 0)
		return true;
	return vol_lease_probe(vol) == -EBUSY;
}

int vol_rename(Volume *vol, Image *img, const char *new_name)
{
	Domain *d = vol->dom;
	g_autoptr(MdKv) args = NULL;
	g_autoptr(GPtrArray) children = g_ptr_array_new();
	g_autofree char *img_name = NULL;
	g_autofree char *name = NULL;
	int slot = -1;
	int r;

	if (!name_is_valid(new_name))
		return -EINVAL;
	r = spm_guard(d);
	if (r != 0)
		return r < 0 ? r
			     : forward(vol, img, &(FwdReq){ .op = FWD_RENAME_VOL, .to = new_name },
				       true);
	g_mutex_lock(&d->op_lock);
	vol_settle_writers_locked(d, vol);
	if (vol->dead || img->dead || !model_volume_in_image_locked(vol, img)) {
		r = -ENOENT;
		goto out;
	}
	if (strcmp(vol->name, new_name) == 0) {
		r = 0;
		goto out;
	}
	if (model_find_volume_locked(d, new_name)) {
		r = -EEXIST; /* CONTRACT: volume names are unique in a domain */
		goto out;
	}
	if (vol->images->len > 1 || vol->md.role == MD_VOL_ROLE_SHARED) {
		r = -EBUSY; /* behaviour.md: other images use a template by its name */
		goto out;
	}
	model_children_locked(d, vol->name, children);
	if (any_writer_locked(vol)) {
		r = -EBUSY; /* CONTRACT: open for write */
		goto out;
	}
	for (guint i = 0; i < children->len; i++) {
		if (any_writer_locked(children->pdata[i])) {
			r = -EBUSY; /* its header is rewritten */
			goto out;
		}
	}
	img_name = g_strdup(img->name);
	name = g_strdup(vol->name);
	args = md_kv_new();
	md_kv_set(args, "image", img_name);
	md_kv_set(args, "from", name);
	md_kv_set(args, "to", new_name);
	if ((r = FAULT_POINT("vol_rename.journal")) < 0 ||
	    (r = jrnl_begin(d, MD_JOURNAL_OP_VOL_RENAME, args, &slot)) < 0)
		goto out;
	r = vol_rename_finish(d, img_name, name, new_name);
	if (r < 0) {
		/* Put it back; if that fails too the record stays for the next start. */
		int r2;

		fault_quiet_begin();
		r2 = vol_rename_finish(d, img_name, new_name, name);
		fault_quiet_end();

		if (r2 < 0) {
			log_warning_errno(r2, "domain '%s' volume '%s/%s': rename interrupted, the "
					  "next start finishes it",
					  d->uuid, img_name, name);
			goto out;
		}
	}
	jrnl_end(d, slot);
out:
	g_mutex_unlock(&d->op_lock);
	return r;
}

/* Makes vol a template linked into image `to`.  Idempotent. */
static int vol_link_finish(Domain *d, const char *name, const char *from, const char *to)
{
	Volume *vol = model_find_volume_locked(d, name);
	Image *dst = model_find_image_locked(d, to);
	MdVolume md;
	int r;

	if (!vol || !dst)
		return -ENOENT;
	if ((r = FAULT_POINT("vol_link.shared")) < 0)
		return r;
	if (vol->md.role != MD_VOL_ROLE_SHARED) {
		md = vol->md;
		md.role = MD_VOL_ROLE_SHARED;
		if ((r = vol_write_md_locked(vol, &md)) < 0)
			return r;
	}
	if ((r = FAULT_POINT("vol_link.files")) < 0)
		return r;
	if ((r = d->ops->vol_link(d, name, from, to)) < 0)
		return r;
	g_rw_lock_writer_lock(&d->lock);
	model_link_locked(vol, dst);
	g_rw_lock_writer_unlock(&d->lock);
	return 0;
}

int vol_link(Volume *vol, Image *dst)
{
	Domain *d = vol->dom;
	g_autoptr(MdKv) args = NULL;
	g_autofree char *from = NULL;
	g_autofree char *name = NULL;
	MdVolRole old_role;
	int slot = -1;
	int r;

	if (dst->dom != d)
		return -EXDEV;
	r = spm_guard(d);
	if (r > 0) {
		g_autofree char *to = NULL;

		g_rw_lock_reader_lock(&d->lock);
		to = dst->dead ? NULL : g_strdup(dst->name);
		g_rw_lock_reader_unlock(&d->lock);
		return to ? forward(vol, NULL, &(FwdReq){ .op = FWD_LINK, .to = to }, true)
			  : -ENOENT;
	}
	if (r < 0)
		return r;
	g_mutex_lock(&d->op_lock);
	vol_settle_writers_locked(d, vol);
	if (vol->dead || dst->dead) {
		r = -ENOENT;
		goto out;
	}
	if (model_volume_in_image_locked(vol, dst)) {
		r = -EEXIST;
		goto out;
	}
	if (vol->plain || vol->md.parent[0]) {
		r = -EPERM; /* behaviour.md: only a base volume becomes a template */
		goto out;
	}
	if (vol->corrupt) {
		r = -EROFS;
		goto out;
	}
	if (any_writer_locked(vol)) {
		r = -EBUSY;
		goto out;
	}
	from = g_strdup(vol_any_image_locked(vol));
	name = g_strdup(vol->name);
	old_role = vol->md.role;
	args = md_kv_new();
	md_kv_set(args, "volume", name);
	md_kv_set(args, "from", from);
	md_kv_set(args, "to", dst->name);
	if ((r = FAULT_POINT("vol_link.journal")) < 0 ||
	    (r = jrnl_begin(d, MD_JOURNAL_OP_VOL_LINK, args, &slot)) < 0)
		goto out;
	r = vol_link_finish(d, name, from, dst->name);
	if (r < 0) {
		/* Undo: drop the links made, give the old role back. */
		int r2;

		fault_quiet_begin();
		r2 = d->ops->vol_remove(d, dst->name, name);
		if (r2 == 0)
			r2 = d->ops->lease_remove(d, dst->name, name);
		if (r2 == 0)
			r2 = d->ops->md_remove(d, dst->name, name);
		if (r2 == 0 && vol->md.role != old_role) {
			MdVolume md = vol->md;

			md.role = old_role;
			r2 = vol_write_md_locked(vol, &md);
		}
		fault_quiet_end();
		if (r2 < 0) {
			log_warning_errno(r2, "domain '%s' volume '%s': link interrupted, the "
					  "next start finishes it",
					  d->uuid, name);
			goto out;
		}
	}
	jrnl_end(d, slot);
out:
	g_mutex_unlock(&d->op_lock);
	return r;
}

int vol_truncate(Volume *vol, off_t size)
{
	Domain *d = vol->dom;
	g_autofree char *img = NULL;
	g_autofree char *old_parent = NULL;
	MdVolume md;
	int r;

	if (size < 0)
		return -EINVAL;
	r = spm_guard(d);
	if (r != 0)
		return r < 0 ? r
			     : forward(vol, NULL,
				       &(FwdReq){ .op = FWD_TRUNCATE, .num = (uint64_t)size }, false);
	g_mutex_lock(&d->op_lock);
	if (vol->dead) {
		r = -ENOENT;
		goto out;
	}
	img = g_strdup(vol_any_image_locked(vol));
	if (vol->plain) {
		r = d->ops->vol_truncate(d, img, vol->name, size);
		goto out;
	}
	if (vol->corrupt) {
		r = -EROFS;
		goto out;
	}
	if (vol->md.role != MD_VOL_ROLE_LEAF) {
		r = -EPERM; /* CONTRACT: internal and shared volumes are read-only */
		goto out;
	}
	r = d->ops->vol_truncate(d, img, vol->name, size);
	if (r < 0)
		goto out;
	md = vol->md;
	if (size == 0)
		vol->emptied = true; /* a header may follow behind the daemon's back */
	if (md.format == MD_VOL_FORMAT_COW) {
		if (size != 0)
			goto out; /* the capacity of qcow2 comes from its header */
		/* behaviour.md: an emptied qcow2 leaf is a new raw volume again. */
		old_parent = g_strdup(md.parent);
		md.format = MD_VOL_FORMAT_RAW;
		if (d->bd)
			md.type = MD_VOL_TYPE_PREALLOCATED;
		md.parent[0] = '\0';
		g_atomic_int_set(&vol->cluster_size, 0);
	}
	md.capacity = (uint64_t)size;
	r = vol_write_md_locked(vol, &md);
	if (r == 0 && old_parent && *old_parent)
		r = vol_fix_role_locked(d, model_find_volume_locked(d, old_parent));
out:
	g_mutex_unlock(&d->op_lock);
	return r;
}

static int vol_update_record(Volume *vol, void (*change)(MdVolume *md, const void *arg),
			     const void *arg)
{
	Domain *d = vol->dom;
	MdVolume md;
	int r;

	g_mutex_lock(&d->op_lock);
	if (vol->dead)
		r = -ENOENT;
	else if (vol->plain)
		r = -ENOTSUP;
	else if (vol->corrupt)
		r = -EROFS;
	else {
		md = vol->md;
		change(&md, arg);
		r = vol_write_md_locked(vol, &md);
	}
	g_mutex_unlock(&d->op_lock);
	return r;
}

static void set_legality(MdVolume *md, const void *arg)
{
	md->legality = *(const MdLegality *)arg;
}

int vol_set_legality(Volume *vol, MdLegality legality)
{
	int r;

	if (legality != MD_LEGALITY_LEGAL && legality != MD_LEGALITY_ILLEGAL)
		return -EINVAL;
	r = spm_guard(vol->dom);
	if (r != 0)
		return r < 0 ? r
			     : forward(vol, NULL, &(FwdReq){ .op = FWD_LEGALITY, .num = legality },
				       false);
	return vol_update_record(vol, set_legality, &legality);
}

static void set_description(MdVolume *md, const void *arg)
{
	g_strlcpy(md->description, arg, sizeof(md->description));
}

int vol_set_description(Volume *vol, const char *text)
{
	int r;

	if (strlen(text) > MD_VOLUME_DESCRIPTION_MAX)
		return -ERANGE;
	/* The record is line-based text. */
	if (!g_utf8_validate(text, -1, NULL) || strpbrk(text, "\n\r"))
		return -EINVAL;
	r = spm_guard(vol->dom);
	if (r != 0)
		return r < 0 ? r
			     : forward(vol, NULL, &(FwdReq){ .op = FWD_DESCRIPTION, .text = text },
				       false);
	return vol_update_record(vol, set_description, text);
}
