/*
 * model.c: the in-memory tables of a domain and the reference counting of
 * images and volumes.  Callers hold d->lock (write for changes).
 */
#include "domain/model-int.h"

#include <string.h>

#include "common/banned.h"

Image *model_image_new(Domain *d, const char *name)
{
	Image *img = g_new0(Image, 1);

	img->refs = 1;
	img->dom = d;
	img->name = g_strdup(name);
	img->volumes = g_ptr_array_new();
	return img;
}

Volume *model_volume_new(Domain *d, const char *name)
{
	Volume *vol = g_new0(Volume, 1);

	vol->refs = 1;
	vol->dom = d;
	vol->name = g_strdup(name);
	vol->images = g_ptr_array_new();
	return vol;
}

Image *img_ref(Image *img)
{
	g_atomic_int_inc(&img->refs);
	return img;
}

void img_unref(Image *img)
{
	if (!img || !g_atomic_int_dec_and_test(&img->refs))
		return;
	g_ptr_array_unref(img->volumes);
	g_free(img->name);
	g_free(img);
}

Volume *vol_ref(Volume *vol)
{
	g_atomic_int_inc(&vol->refs);
	return vol;
}

void vol_unref(Volume *vol)
{
	if (!vol || !g_atomic_int_dec_and_test(&vol->refs))
		return;
	g_ptr_array_unref(vol->images);
	g_free(vol->name);
	g_free(vol);
}

void model_add_image_locked(Domain *d, Image *img)
{
	g_hash_table_replace(d->images, img->name, img);
}

void model_add_volume_locked(Domain *d, Volume *vol)
{
	g_hash_table_replace(d->volumes, vol->name, vol);
}

void model_link_locked(Volume *vol, Image *img)
{
	if (model_volume_in_image_locked(vol, img))
		return;
	g_ptr_array_add(vol->images, img);
	g_ptr_array_add(img->volumes, vol);
}

void model_unlink_locked(Volume *vol, Image *img)
{
	g_ptr_array_remove(vol->images, img);
	g_ptr_array_remove(img->volumes, vol);
}

Volume *model_find_volume_locked(Domain *d, const char *name)
{
	return g_hash_table_lookup(d->volumes, name);
}

Image *model_find_image_locked(Domain *d, const char *name)
{
	return g_hash_table_lookup(d->images, name);
}

unsigned model_children_locked(Domain *d, const char *vol, GPtrArray *ret)
{
	GHashTableIter it;
	gpointer value;
	unsigned n = 0;

	g_hash_table_iter_init(&it, d->volumes);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		Volume *v = value;

		if (!v->corrupt && strcmp(v->md.parent, vol) == 0) {
			n++;
			if (ret)
				g_ptr_array_add(ret, v);
		}
	}
	return n;
}

bool model_volume_in_image_locked(Volume *vol, Image *img)
{
	for (guint i = 0; i < vol->images->len; i++)
		if (vol->images->pdata[i] == img)
			return true;
	return false;
}

Image *model_home_image_locked(Volume *vol)
{
	for (guint i = 0; i < vol->images->len; i++) {
		Image *img = vol->images->pdata[i];

		if (strcmp(img->name, vol->md.image) == 0)
			return img;
	}
	return vol->images->len ? vol->images->pdata[0] : NULL;
}

void model_corrupt_record(Domain *d, MdVolType type, const char *img, MdVolume *md)
{
	memset(md, 0, sizeof(*md));
	md->format = MD_VOL_FORMAT_RAW;
	md->type = type;
	md->role = MD_VOL_ROLE_LEAF;
	md->legality = MD_LEGALITY_ILLEGAL;
	g_strlcpy(md->domain, d->uuid, sizeof(md->domain));
	g_strlcpy(md->image, img, sizeof(md->image));
}
