/*
 * reload.c: bringing a domain's in-memory tables in step with the disk
 * after another host (the SPM) changed it.
 *
 * The backend's scan reads the domain into a shadow Domain with fresh
 * tables; the live tables are then made to match it by name.  Live objects
 * are kept (FUSE inodes and open handles point at them): a volume or image
 * still on disk keeps its object and takes the record just read; one that
 * is gone is marked dead and leaves the tables; a new one is added.  The
 * links between volumes and images are rebuilt from the shadow.
 *
 * A rename made elsewhere shows here as a removal and an addition: the old
 * name's inode goes stale (ENOENT), the new name is a new inode.
 */
#include "domain/model-int.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/banned.h"

/* A shadow of d for one scan: same storage objects, empty tables. */
static Domain *shadow_new(Domain *d)
{
	Domain *s = g_new0(Domain, 1);

	s->st = d->st;
	s->pool = d->pool;
	s->ops = d->ops;
	memcpy(s->uuid, d->uuid, sizeof(s->uuid));
	s->dir = d->dir;
	s->bd = d->bd;
	s->dir_fd = d->dir_fd;
	s->images_fd = d->images_fd;
	s->journal_fd = -1;
	s->version = d->version;
	s->block_size = d->block_size;
	s->alignment = d->alignment;
	s->iso = d->iso;
	s->master = d->master;
	s->shadow = true;
	g_mutex_init(&s->op_lock);
	g_cond_init(&s->writers_gone);
	g_rw_lock_init(&s->lock);
	s->images = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					  (GDestroyNotify)img_unref);
	s->volumes = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					   (GDestroyNotify)vol_unref);
	return s;
}

static void shadow_free(Domain *s)
{
	if (s->shadow_lvs)
		g_hash_table_unref(s->shadow_lvs);
	g_hash_table_unref(s->images);
	g_hash_table_unref(s->volumes);
	g_mutex_clear(&s->op_lock);
	g_cond_clear(&s->writers_gone);
	g_rw_lock_clear(&s->lock);
	g_free(s);
}

/* Makes d's tables match s's (d->lock held for writing). */
static void reconcile_locked(Domain *d, Domain *s)
{
	g_autoptr(GPtrArray) gone_vols = g_ptr_array_new();
	g_autoptr(GPtrArray) gone_imgs = g_ptr_array_new();
	GHashTableIter it;
	gpointer key, value;

	/* Every live link is rebuilt below. */
	g_hash_table_iter_init(&it, d->images);
	while (g_hash_table_iter_next(&it, NULL, &value))
		g_ptr_array_set_size(((Image *)value)->volumes, 0);
	g_hash_table_iter_init(&it, d->volumes);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		Volume *v = value;

		g_ptr_array_set_size(v->images, 0);
		if (!g_hash_table_contains(s->volumes, key))
			g_ptr_array_add(gone_vols, v);
	}
	g_hash_table_iter_init(&it, d->images);
	while (g_hash_table_iter_next(&it, &key, &value))
		/* block domains: an image made by mkdir lives in memory until a
		 * volume names it (behaviour.md), not on disk */
		if (!g_hash_table_contains(s->images, key) &&
		    !(d->bd && block_image_in_memory(d, key)))
			g_ptr_array_add(gone_imgs, value);
	for (guint i = 0; i < gone_vols->len; i++) {
		Volume *v = gone_vols->pdata[i];

		v->dead = true;
		log_debug(LOG_CLASS_DOMAIN, "domain '%s': volume '%s' is gone", d->uuid, v->name);
		g_hash_table_remove(d->volumes, v->name); /* drops the table's reference */
	}
	for (guint i = 0; i < gone_imgs->len; i++) {
		Image *img = gone_imgs->pdata[i];

		img->dead = true;
		log_debug(LOG_CLASS_DOMAIN, "domain '%s': image '%s' is gone", d->uuid, img->name);
		g_hash_table_remove(d->images, img->name);
	}

	g_hash_table_iter_init(&it, s->volumes);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		Volume *sv = value;
		Volume *v = g_hash_table_lookup(d->volumes, key);

		if (!v) {
			v = model_volume_new(d, sv->name);
			model_add_volume_locked(d, v);
		}
		if (memcmp(&v->md, &sv->md, sizeof(v->md)) != 0)
			g_atomic_int_set(&v->cluster_size, 0);
		v->md = sv->md;
		v->corrupt = sv->corrupt;
		v->plain = sv->plain;
	}
	g_hash_table_iter_init(&it, s->images);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		Image *si = value;
		Image *img = g_hash_table_lookup(d->images, key);

		if (!img) {
			img = model_image_new(d, si->name);
			model_add_image_locked(d, img);
		}
		for (guint i = 0; i < si->volumes->len; i++) {
			Volume *sv = si->volumes->pdata[i];
			Volume *v = g_hash_table_lookup(d->volumes, sv->name);

			if (v)
				model_link_locked(v, img);
		}
	}
}

int dom_reload_locked(Domain *d)
{
	Domain *s = NULL;
	int r = 0;

	/* The SPM may be rewriting what is read (lvm metadata, a record):
	 * a failed read is tried again. */
	for (int i = 0; i < 3; i++) {
		if (i)
			g_usleep(20 * 1000);
		s = shadow_new(d);
		r = d->ops->scan(s);
		if (r == 0)
			break;
		shadow_free(s);
		s = NULL;
	}
	if (r < 0) {
		log_warning_errno(r, "domain '%s': re-reading the images", d->uuid);
		return r;
	}
	g_rw_lock_writer_lock(&d->lock);
	if (d->bd)
		block_reconcile(d, s);
	reconcile_locked(d, s);
	g_rw_lock_writer_unlock(&d->lock);
	shadow_free(s);
	return 0;
}

int dom_reload(Domain *d)
{
	int r;

	g_mutex_lock(&d->op_lock);
	r = dom_reload_locked(d);
	g_mutex_unlock(&d->op_lock);
	return r;
}
