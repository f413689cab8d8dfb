/*
 * repair.c: after the scan and the journal replay, put right what oVirt's
 * rules derive from other data, so every start begins from a consistent
 * domain whatever a crash (ours or an oVirt host's) left behind:
 *   - a record whose volume data is gone: the end of an interrupted delete
 *     when it says ILLEGAL (finished), otherwise a corrupt volume;
 *   - roles: a volume some volume names as parent is INTERNAL, one nobody
 *     names is a LEAF (SHARED is kept);
 *   - a raw volume's capacity is its size.
 * Runs with the op lock held, on the SPM.
 */
#include "domain/model-int.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/banned.h"

static GPtrArray *all_volumes_locked(Domain *d)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)vol_unref);
	GHashTableIter it;
	gpointer value;

	g_hash_table_iter_init(&it, d->volumes);
	while (g_hash_table_iter_next(&it, NULL, &value))
		g_ptr_array_add(out, vol_ref(value));
	return out;
}

static int repair_missing_data(Domain *d, Volume *vol)
{
	Image *img = model_home_image_locked(vol);
	struct stat st;
	int r;

	if (!img)
		return 0;
	r = d->ops->vol_stat(d, img->name, vol->name, &st);
	if (r != -ENOENT)
		return 0;
	if (!vol->corrupt && vol->md.legality == MD_LEGALITY_ILLEGAL) {
		g_autofree char *name = g_strdup(vol->name);
		g_autofree char *img_name = g_strdup(img->name);

		log_info("domain '%s': finishing the delete of volume '%s/%s'", d->uuid, img_name,
			 name);
		while (vol->images->len > 1) {
			Image *other = vol->images->pdata[vol->images->len - 1];
			g_autofree char *other_name = g_strdup(other->name);

			r = vol_delete_finish(d, other_name, name, true);
			if (r < 0)
				return r;
		}
		return vol_delete_finish(d, img_name, name, false);
	}
	log_warning("domain '%s' volume '%s/%s': its data is missing, serving it as corrupt",
		    d->uuid, img->name, vol->name);
	g_rw_lock_writer_lock(&d->lock);
	vol->corrupt = true;
	g_rw_lock_writer_unlock(&d->lock);
	return 0;
}

static int repair_capacity(Domain *d, Volume *vol)
{
	Image *img = model_home_image_locked(vol);
	struct stat st;
	MdVolume md;

	if (!img || vol->md.format != MD_VOL_FORMAT_RAW)
		return 0;
	if (d->ops->vol_stat(d, img->name, vol->name, &st) < 0 ||
	    (uint64_t)st.st_size == vol->md.capacity)
		return 0;
	md = vol->md;
	md.capacity = (uint64_t)st.st_size;
	return vol_write_md_locked(vol, &md);
}

int dom_repair(Domain *d)
{
	g_autoptr(GPtrArray) vols = all_volumes_locked(d);
	int ret = 0;

	for (guint i = 0; i < vols->len; i++) {
		Volume *vol = vols->pdata[i];
		int r;

		if (vol->plain || vol->dead)
			continue;
		r = repair_missing_data(d, vol);
		if (r == 0 && !vol->dead && !vol->corrupt)
			r = repair_capacity(d, vol);
		if (r < 0) {
			log_warning_errno(r, "domain '%s' volume '%s': repair, retrying at the next "
					  "start", d->uuid, vol->name);
			ret = r;
		}
	}
	for (guint i = 0; i < vols->len; i++) {
		Volume *vol = vols->pdata[i];
		int r;

		if (vol->dead)
			continue;
		r = vol_fix_role_locked(d, vol);
		if (r < 0) {
			log_warning_errno(r, "domain '%s' volume '%s': fixing its role, retrying at "
					  "the next start", d->uuid, vol->name);
			ret = r;
		}
	}
	return ret;
}
