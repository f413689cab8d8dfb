/*
 * blockdom.c: a block domain's VG as the model uses it (block-int.h): its
 * lvm context, its data path (an LvIo, block/lvio.h) and its MDT_ tags.
 */
#include "domain/block-int.h"

#include <errno.h>
#include <string.h>

#include "block/pvio.h"
#include "common/log.h"
#include "metadata/md-block.h"
#include "common/banned.h"

void blockdom_free(BlockDom *bd)
{
	if (!bd)
		return;
	if (bd->extender)
		g_thread_pool_free(bd->extender, FALSE, TRUE); /* lets queued extensions finish */
	blk_lvio_free(bd->io);
	if (bd->pvs)
		g_ptr_array_unref(bd->pvs);
	blk_extmap_unref(bd->md_map);
	blk_extmap_unref(bd->ids_map);
	blk_extmap_unref(bd->leases_map);
	if (bd->lvs)
		g_hash_table_unref(bd->lvs);
	if (bd->images)
		g_hash_table_unref(bd->images);
	if (bd->gone)
		g_ptr_array_unref(bd->gone);
	g_mutex_clear(&bd->lock);
	g_mutex_clear(&bd->extend_lock);
	g_mutex_clear(&bd->stats_lock);
	if (bd->waits_us)
		g_array_unref(bd->waits_us);
	if (bd->remote_us)
		g_array_unref(bd->remote_us);
	blk_lvm_free(bd->ctx);
	g_free(bd->vg);
	g_free(bd->vg_uuid);
	g_free(bd);
}

int blockdom_open(const char *const *paths, size_t n_paths, const char *vg, BlockDom **ret)
{
	g_autoptr(BlockDom) bd = g_new0(BlockDom, 1);
	g_autoptr(BlkVg) v = NULL;
	int r;

	g_mutex_init(&bd->lock);
	g_mutex_init(&bd->extend_lock);
	g_mutex_init(&bd->stats_lock);
	bd->waits_us = g_array_new(FALSE, FALSE, sizeof(gint64));
	bd->remote_us = g_array_new(FALSE, FALSE, sizeof(gint64));
	r = blk_lvm_new(paths, n_paths, &bd->ctx);
	if (r < 0)
		return r;
	bd->vg = g_strdup(vg);
	/* the PVs in the ctx's order: the PV index of every extent map */
	r = blk_pvio_open(paths, n_paths, &bd->io);
	if (r < 0)
		return r;
	r = blk_pv_list(bd->ctx, &bd->pvs);
	if (r < 0)
		return r;
	if (vg) {
		r = blk_vg_get(bd->ctx, vg, &v);
		if (r < 0)
			return r;
		bd->extent_size = v->extent_size;
		bd->vg_uuid = g_strdup(v->uuid);
	}
	*ret = g_steal_pointer(&bd);
	return 0;
}

int blockdom_map_lv(BlockDom *bd, const BlkLv *lv, ExtMap **ret)
{
	return blk_lv_extmap(bd->ctx, lv, bd->pvs, ret);
}

int blockdom_area(BlockDom *bd, const ExtMap *map, uint64_t off, uint64_t len,
		  const char **ret_path, uint64_t *ret_off)
{
	ExtMapPiece p;
	int r = blk_extmap_lookup(map, off, len, &p);

	if (r < 0)
		return r;
	if (p.len != len)
		return -ERANGE;
	*ret_path = blk_lvm_pv_path(bd->ctx, p.pv);
	*ret_off = p.offset;
	return 0;
}

int blockdom_map(BlockDom *bd, const char *name, ExtMap **ret)
{
	g_autoptr(BlkLv) lv = NULL;
	int r;

	r = blk_lv_get(bd->ctx, bd->vg, name, &lv);
	if (r < 0)
		return r;
	return blockdom_map_lv(bd, lv, ret);
}

int blockdom_read_kv(BlockDom *bd, char ***ret_tags, MdKv **ret)
{
	g_autoptr(BlkVg) v = NULL;
	int r;

	r = blk_vg_get(bd->ctx, bd->vg, &v);
	if (r < 0)
		return r;
	r = md_kv_decode_tags((const char *const *)v->tags, g_strv_length(v->tags), ret);
	if (r == 0 && ret_tags)
		*ret_tags = g_steal_pointer(&v->tags);
	return r;
}

int blockdom_write_kv(BlockDom *bd, const MdKv *kv)
{
	g_autoptr(BlkVg) v = NULL;
	g_auto(GStrv) tags = md_block_kv_tags(kv);
	g_auto(GStrv) add = NULL;
	g_auto(GStrv) del = NULL;
	int r;

	r = blk_vg_get(bd->ctx, bd->vg, &v);
	if (r < 0)
		return r;
	md_block_tags_diff((const char *const *)v->tags, (const char *const *)tags,
			   MD_BLOCK_MDT_PREFIX, &add, &del);
	return blk_vg_change_tags(bd->ctx, bd->vg, (const char *const *)add,
				  (const char *const *)del);
}

int blockdom_group(const char *const *devs, size_t n_devs, GHashTable **ret_vgs,
		   GPtrArray **ret_lost)
{
	g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GHashTable) vgs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
							  (GDestroyNotify)g_ptr_array_unref);
	g_autoptr(GPtrArray) lost = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(LvmCtx) ctx = NULL;
	g_autoptr(GPtrArray) pvs = NULL;
	g_autofree bool *found = NULL;
	int r;

	for (size_t i = 0; i < n_devs; i++) {
		g_autofree char *p = g_canonicalize_filename(devs[i], NULL);
		bool dup = false;

		for (guint j = 0; j < paths->len; j++)
			dup |= strcmp(paths->pdata[j], p) == 0;
		if (!dup)
			g_ptr_array_add(paths, g_steal_pointer(&p));
	}
	if (paths->len == 0)
		goto out;
	/* one lvm run over all of them: a PV without metadata areas only shows
	 * its VG when the PV that has them is scanned too */
	r = blk_lvm_new((const char *const *)paths->pdata, paths->len, &ctx);
	if (r < 0)
		return r;
	r = blk_pv_list(ctx, &pvs);
	if (r < 0)
		return r;
	found = g_new0(bool, paths->len);
	for (guint i = 0; i < pvs->len; i++) {
		BlkPv *pv = pvs->pdata[i];
		int idx = blk_lvm_pv_index(ctx, pv->name);
		GPtrArray *list;

		if (idx < 0 || !pv->vg_name || !*pv->vg_name || pv->vg_name[0] == '[')
			continue;
		list = g_hash_table_lookup(vgs, pv->vg_name);
		if (!list) {
			list = g_ptr_array_new_with_free_func(g_free);
			g_hash_table_insert(vgs, g_strdup(pv->vg_name), list);
		}
		g_ptr_array_add(list, g_strdup(paths->pdata[idx]));
		found[idx] = true;
	}
	for (guint i = 0; i < paths->len; i++) {
		if (!found[i])
			g_ptr_array_add(lost, g_strdup(paths->pdata[i]));
	}
out:
	*ret_vgs = g_steal_pointer(&vgs);
	if (ret_lost)
		*ret_lost = g_steal_pointer(&lost);
	return 0;
}
