/*
 * image.c: images (the directories of a domain) and volume creation.
 * Locking as described at the top of volume.c.
 */
#include "domain/model-int.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "common/fault.h"
#include "common/log.h"
#include "common/names.h"
#include "common/banned.h"

static gint cmp_image_name(gconstpointer a, gconstpointer b)
{
	const Image *x = *(Image *const *)a, *y = *(Image *const *)b;

	return strcmp(x->name, y->name);
}

GPtrArray *dom_images(Domain *d)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)img_unref);
	GHashTableIter it;
	gpointer value;

	g_rw_lock_reader_lock(&d->lock);
	g_hash_table_iter_init(&it, d->images);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		Image *img = value;

		if (!d->iso)
			g_ptr_array_add(out, img_ref(img));
	}
	g_ptr_array_sort(out, cmp_image_name);
	g_rw_lock_reader_unlock(&d->lock);
	return out;
}

Image *dom_image_lookup(Domain *d, const char *name)
{
	Image *img;

	if (d->iso)
		return NULL;
	g_rw_lock_reader_lock(&d->lock);
	img = model_find_image_locked(d, name);
	if (img)
		img_ref(img);
	g_rw_lock_reader_unlock(&d->lock);
	return img;
}

Image *dom_iso_image(Domain *d)
{
	Image *img;

	if (!d->iso)
		return NULL;
	g_rw_lock_reader_lock(&d->lock);
	img = model_find_image_locked(d, ISO_IMAGE_UUID);
	if (img)
		img_ref(img);
	g_rw_lock_reader_unlock(&d->lock);
	if (img)
		return img;
	/* An ISO domain without its image yet (oVirt makes it on first upload). */
	if (dom_image_create(d, ISO_IMAGE_UUID, &img) < 0)
		return NULL;
	return img;
}

int dom_image_create(Domain *d, const char *name, Image **ret)
{
	Image *img;
	int r;

	if (!name_is_valid(name))
		return -EINVAL;
	if (d->iso && strcmp(name, ISO_IMAGE_UUID) != 0)
		return -EPERM; /* behaviour.md: an ISO domain holds files, not images */
	r = spm_guard(d);
	if (r > 0) {
		r = fwd_call(d, &(FwdReq){ .op = FWD_MKDIR, .img = name });
		if (r == 0 && ret && !(*ret = dom_image_lookup(d, name)))
			r = -ENOENT; /* gone again already */
		return r;
	}
	if (r < 0)
		return r;
	g_mutex_lock(&d->op_lock);
	img = model_find_image_locked(d, name);
	if (img) {
		r = -EEXIST;
		goto out;
	}
	r = d->ops->image_create(d, name, d->st->opt.uid, d->st->opt.gid);
	if (r < 0)
		goto out;
	img = model_image_new(d, name);
	g_rw_lock_writer_lock(&d->lock);
	model_add_image_locked(d, img);
	g_rw_lock_writer_unlock(&d->lock);
	dom_changed(d);
	if (ret)
		*ret = img_ref(img);
out:
	g_mutex_unlock(&d->op_lock);
	return r;
}

Domain *img_domain(Image *img)
{
	return img->dom;
}

char *img_name(Image *img)
{
	char *name;

	g_rw_lock_reader_lock(&img->dom->lock);
	name = g_strdup(img->name);
	g_rw_lock_reader_unlock(&img->dom->lock);
	return name;
}

bool img_is_dead(Image *img)
{
	bool dead;

	g_rw_lock_reader_lock(&img->dom->lock);
	dead = img->dead;
	g_rw_lock_reader_unlock(&img->dom->lock);
	return dead;
}

static int live_name(Image *img, char **ret)
{
	int r = 0;

	g_rw_lock_reader_lock(&img->dom->lock);
	if (img->dead)
		r = -ENOENT;
	else
		*ret = g_strdup(img->name);
	g_rw_lock_reader_unlock(&img->dom->lock);
	return r;
}

int img_stat(Image *img, struct stat *ret)
{
	g_autofree char *name = NULL;
	int r = live_name(img, &name);

	return r < 0 ? r : img->dom->ops->image_stat(img->dom, name, ret);
}

int img_chmod(Image *img, mode_t mode)
{
	g_autofree char *name = NULL;
	int r = live_name(img, &name);

	return r < 0 ? r : img->dom->ops->image_chmod(img->dom, name, mode & 07777);
}

int img_chown(Image *img, uid_t uid, gid_t gid)
{
	g_autofree char *name = NULL;
	int r = live_name(img, &name);

	return r < 0 ? r : img->dom->ops->image_chown(img->dom, name, uid, gid);
}

static void img_forget_locked(Domain *d, Image *img)
{
	g_rw_lock_writer_lock(&d->lock);
	img->dead = true;
	/* Drops the table's reference. */
	g_hash_table_remove(d->images, img->name);
	g_rw_lock_writer_unlock(&d->lock);
}

int img_remove(Image *img)
{
	Domain *d = img->dom;
	int r;

	r = spm_guard(d);
	if (r > 0) {
		g_autofree char *name = NULL;

		r = live_name(img, &name);
		return r < 0 ? r : fwd_call(d, &(FwdReq){ .op = FWD_RMDIR, .img = name });
	}
	if (r < 0)
		return r;
	g_mutex_lock(&d->op_lock);
	if (img->dead)
		r = -ENOENT;
	else if (img->volumes->len > 0)
		r = -ENOTEMPTY; /* CONTRACT */
	else if (d->iso)
		r = -EPERM;
	else
		r = d->ops->image_remove(d, img->name);
	if (r == 0) {
		img_forget_locked(d, img);
		dom_changed(d);
	}
	g_mutex_unlock(&d->op_lock);
	return r;
}

int img_rename_finish(Domain *d, const char *from, const char *to)
{
	Image *img;
	int r;

	if ((r = FAULT_POINT("img_rename.dir")) < 0)
		return r;
	r = d->ops->image_rename(d, from, to);
	if (r == -ENOENT && model_find_image_locked(d, to))
		r = 0; /* done before */
	if (r < 0)
		return r;
	img = model_find_image_locked(d, from);
	if (img) {
		g_rw_lock_writer_lock(&d->lock);
		g_hash_table_steal(d->images, img->name);
		g_free(img->name);
		img->name = g_strdup(to);
		model_add_image_locked(d, img);
		g_rw_lock_writer_unlock(&d->lock);
	}
	img = model_find_image_locked(d, to);
	if (!img)
		return -ENOENT;
	if ((r = FAULT_POINT("img_rename.meta")) < 0)
		return r;
	/* The record names its image (a template keeps its home's name). */
	for (guint i = 0; i < img->volumes->len; i++) {
		Volume *vol = img->volumes->pdata[i];
		MdVolume md;

		if (vol->plain || vol->corrupt || strcmp(vol->md.image, from) != 0)
			continue;
		md = vol->md;
		g_strlcpy(md.image, to, sizeof(md.image));
		if ((r = vol_write_md_locked(vol, &md)) < 0)
			return r;
	}
	return 0;
}

int img_rename(Image *img, const char *new_name)
{
	Domain *d = img->dom;
	g_autoptr(MdKv) args = NULL;
	g_autofree char *from = NULL;
	Image *target;
	int slot = -1;
	int r;

	if (!name_is_valid(new_name))
		return -EINVAL;
	if (d->iso)
		return -EPERM;
	r = spm_guard(d);
	if (r > 0) {
		g_autofree char *name = NULL;

		r = live_name(img, &name);
		return r < 0 ? r
			     : fwd_call(d, &(FwdReq){ .op = FWD_RENAME_IMG, .img = name,
						      .to = new_name });
	}
	if (r < 0)
		return r;
	g_mutex_lock(&d->op_lock);
	if (img->dead) {
		r = -ENOENT;
		goto out;
	}
	if (strcmp(img->name, new_name) == 0) {
		r = 0;
		goto out;
	}
	for (guint i = 0; i < img->volumes->len; i++) {
		Volume *v = vol_ref(img->volumes->pdata[i]);

		vol_settle_writers_locked(d, v);
		vol_unref(v);
	}
	for (guint i = 0; i < img->volumes->len; i++) {
		if (g_atomic_int_get(&((Volume *)img->volumes->pdata[i])->n_writers) > 0) {
			r = -EBUSY; /* CONTRACT: a volume open for write */
			goto out;
		}
	}
	target = model_find_image_locked(d, new_name);
	if (target) {
		/* rename(2) replaces an empty directory. */
		if (target->volumes->len > 0) {
			r = -ENOTEMPTY;
			goto out;
		}
		r = d->ops->image_remove(d, new_name);
		if (r < 0)
			goto out;
		img_forget_locked(d, target);
	}
	from = g_strdup(img->name);
	args = md_kv_new();
	md_kv_set(args, "from", from);
	md_kv_set(args, "to", new_name);
	if ((r = FAULT_POINT("img_rename.journal")) < 0 ||
	    (r = jrnl_begin(d, MD_JOURNAL_OP_IMG_RENAME, args, &slot)) < 0)
		goto out;
	r = img_rename_finish(d, from, new_name);
	if (r < 0) {
		int r2;

		fault_quiet_begin();
		r2 = img_rename_finish(d, new_name, from);
		fault_quiet_end();

		if (r2 < 0) {
			log_warning_errno(r2, "domain '%s' image '%s': rename interrupted, the next "
					  "start finishes it",
					  d->uuid, from);
			goto out;
		}
	}
	jrnl_end(d, slot);
out:
	g_mutex_unlock(&d->op_lock);
	return r;
}

static gint cmp_volume_name(gconstpointer a, gconstpointer b)
{
	const Volume *x = *(Volume *const *)a, *y = *(Volume *const *)b;

	return strcmp(x->name, y->name);
}

/* A volume of img that some other volume of img names as parent. */
static bool has_child_in_image_locked(Image *img, Volume *vol)
{
	for (guint i = 0; i < img->volumes->len; i++) {
		Volume *c = img->volumes->pdata[i];

		if (c != vol && !c->corrupt && strcmp(c->md.parent, vol->name) == 0)
			return true;
	}
	return false;
}

GPtrArray *img_volumes(Image *img)
{
	Domain *d = img->dom;
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)vol_unref);
	g_autoptr(GPtrArray) sorted = NULL;
	g_autoptr(GHashTable) done = g_hash_table_new(NULL, NULL);

	g_rw_lock_reader_lock(&d->lock);
	sorted = g_ptr_array_copy(img->volumes, NULL, NULL);
	g_ptr_array_sort(sorted, cmp_volume_name);
	/* CONTRACT: leaf first, so that rm -r IMAGE works; each chain top down. */
	for (guint i = 0; i < sorted->len; i++) {
		Volume *v = sorted->pdata[i];

		if (has_child_in_image_locked(img, v))
			continue;
		while (v && !g_hash_table_contains(done, v)) {
			g_hash_table_add(done, v);
			g_ptr_array_add(out, vol_ref(v));
			v = *v->md.parent ? model_find_volume_locked(d, v->md.parent) : NULL;
			if (v && !model_volume_in_image_locked(v, img))
				v = NULL;
		}
	}
	/* Anything left is on a loop of parents (corrupt data): list it anyway. */
	for (guint i = 0; i < sorted->len; i++) {
		if (!g_hash_table_contains(done, sorted->pdata[i]))
			g_ptr_array_add(out, vol_ref(sorted->pdata[i]));
	}
	g_rw_lock_reader_unlock(&d->lock);
	return out;
}

Volume *img_volume_lookup(Image *img, const char *name)
{
	Domain *d = img->dom;
	Volume *vol;

	g_rw_lock_reader_lock(&d->lock);
	vol = model_find_volume_locked(d, name);
	if (vol && !model_volume_in_image_locked(vol, img))
		vol = NULL;
	if (vol)
		vol_ref(vol);
	g_rw_lock_reader_unlock(&d->lock);
	return vol;
}

static void new_record(Domain *d, const char *img, MdVolume *md)
{
	memset(md, 0, sizeof(*md));
	md->ctime = (int64_t)time(NULL);
	g_strlcpy(md->disktype, "DATA", sizeof(md->disktype));
	g_strlcpy(md->domain, d->uuid, sizeof(md->domain));
	g_strlcpy(md->image, img, sizeof(md->image));
	md->format = MD_VOL_FORMAT_RAW;
	/* block: raw is preallocated (its LV covers it); qcow2 turns sparse (thin) */
	md->type = d->bd ? MD_VOL_TYPE_PREALLOCATED : MD_VOL_TYPE_SPARSE;
	md->role = MD_VOL_ROLE_LEAF;
	md->legality = MD_LEGALITY_ILLEGAL;
}

int img_volume_create(Image *img, const char *name, mode_t mode, Volume **ret)
{
	Domain *d = img->dom;
	g_autoptr(MdKv) args = NULL;
	g_autofree char *img_name = NULL;
	Volume *vol;
	MdVolume md;
	int slot = -1;
	int r;

	(void)mode; /* CONTRACT: a new volume is a writable leaf, 0660 */
	if (!name_is_valid(name))
		return -EINVAL;
	r = spm_guard(d);
	if (r > 0) {
		r = live_name(img, &img_name);
		if (r == 0)
			r = fwd_call(d, &(FwdReq){ .op = FWD_CREATE, .img = img_name, .vol = name });
		if (r == 0 && ret) {
			g_autoptr(Image) now = dom_image_lookup(d, img_name);

			*ret = now ? img_volume_lookup(now, name) : NULL;
			if (!*ret)
				r = -ENOENT; /* gone again already */
		}
		return r;
	}
	if (r < 0)
		return r;
	g_mutex_lock(&d->op_lock);
	if (img->dead) {
		r = -ENOENT;
		goto out;
	}
	if (model_find_volume_locked(d, name)) {
		r = -EEXIST; /* CONTRACT: unique within the domain */
		goto out;
	}
	img_name = g_strdup(img->name);
	new_record(d, img_name, &md);
	vol = model_volume_new(d, name);

	if (d->iso) {
		vol->plain = true;
		md.legality = MD_LEGALITY_LEGAL;
		r = d->ops->vol_create(d, img_name, name, 0660, d->st->opt.uid, d->st->opt.gid);
		if (r < 0) {
			vol_unref(vol);
			goto out;
		}
		goto publish;
	}

	args = md_kv_new();
	md_kv_set(args, "image", img_name);
	md_kv_set(args, "volume", name);
	if ((r = FAULT_POINT("vol_create.journal")) < 0 ||
	    (r = jrnl_begin(d, MD_JOURNAL_OP_VOL_CREATE, args, &slot)) < 0) {
		vol_unref(vol);
		goto out;
	}
	/* oVirt's order: data, record (illegal while half made), lease, legal. */
	if ((r = FAULT_POINT("vol_create.file")) < 0 ||
	    (r = d->ops->vol_create(d, img_name, name, 0660, d->st->opt.uid, d->st->opt.gid)) < 0)
		goto undo;
	if ((r = FAULT_POINT("vol_create.meta")) < 0 ||
	    (r = d->ops->md_write(d, img_name, name, &md)) < 0)
		goto undo;
	if ((r = FAULT_POINT("vol_create.lease")) < 0 ||
	    (r = d->ops->lease_create(d, img_name, name)) < 0)
		goto undo;
	md.legality = MD_LEGALITY_LEGAL;
	if ((r = FAULT_POINT("vol_create.legal")) < 0 ||
	    (r = d->ops->md_write(d, img_name, name, &md)) < 0)
		goto undo;
	jrnl_end(d, slot);
publish:
	vol->md = md;
	g_rw_lock_writer_lock(&d->lock);
	model_add_volume_locked(d, vol);
	model_link_locked(vol, img);
	g_rw_lock_writer_unlock(&d->lock);
	if (ret)
		*ret = vol_ref(vol);
	r = 0;
	goto out;
undo:
	vol_unref(vol);
	{
		int r2;

		fault_quiet_begin();
		r2 = vol_delete_finish(d, img_name, name, false);
		fault_quiet_end();

		if (r2 < 0)
			log_warning_errno(r2, "domain '%s' volume '%s/%s': cleaning up a failed "
					  "create, the next start finishes it",
					  d->uuid, img_name, name);
		else
			jrnl_end(d, slot);
	}
out:
	g_mutex_unlock(&d->op_lock);
	return r;
}
