/*
 * block-int: what domain/ knows of a block domain (an LVM VG named by the
 * domain UUID, reference section 6), private to domain/.
 *
 * A BlockDom is the VG as the daemon uses it: one LvmCtx for the lvm
 * commands and one LvIo (block/lvio.h) through which every LV byte is read
 * and written, named by the LV's extent map: this kernel has no
 * device-mapper, so no LV is ever activated and the LvIo is the PV
 * backend (block/pvio.h).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "block/extmap.h"
#include "block/lvio.h"
#include "block/lvm.h"
#include "metadata/md-kv.h"

typedef struct Domain Domain;

/* ovstore's own intent journal: in the metadata LV, after VDSM's 17 MiB area. */
#define BLOCK_JOURNAL_OFFSET (32ull * 1024 * 1024)
/* Sanlock alignment and sector size of the block domains ovstore makes. */
#define BLOCK_ALIGNMENT (1024u * 1024)
#define BLOCK_SECTOR 512u

typedef struct BlockLv BlockLv; /* one volume LV (block.c) */

typedef struct BlockDom {
	LvmCtx *ctx;
	char *vg;
	char *vg_uuid;
	uint64_t extent_size;
	LvIo *io;	/* LV bytes, by extent map (PV index: ctx's device order) */
	GPtrArray *pvs; /* BlkPv of ctx's devices (pe_start, pe_count) */
	ExtMap *md_map; /* the `metadata` LV */
	ExtMap *ids_map;    /* the `ids` LV, read at first need (lock) */
	ExtMap *leases_map; /* the `leases` LV, read at first need (lock) */
	/* block.c's tables, protected by lock */
	GMutex lock;
	GMutex extend_lock; /* serialises LV extensions (block.c) */
	GHashTable *lvs;    /* volume LV name -> BlockLv* (owned) */
	GHashTable *images; /* image name -> its attributes (owned) */
	GPtrArray *gone;    /* removed BlockLv*, kept for open handles until the end */
	/* thin extensions (block.c): done ahead of the writes by this thread */
	GThreadPool *extender;
	/* protected by stats_lock */
	GMutex stats_lock;
	uint64_t n_extensions; /* writes that reached a threshold */
	uint64_t n_waited;     /* of those, writes that had to wait */
	GArray *waits_us;   /* gint64: how long writes waited for an extension (last 65536) */
	GArray *remote_us;  /* gint64: extensions asked of another host's SPM, round trips */
	guint waits_next;   /* ring position once full */
	gint64 vg_read_at;  /* monotonic µs of the cached VG size/free below, 0: stale */
	uint64_t vg_size;
	uint64_t vg_free;
} BlockDom;

/* Adds "lvs" and "thin" (extensions, write waits p50/p99/max in ms) to a status object. */
void block_status(Domain *d, JsonBuilder *b);

/* Opens the PVs at paths (all of the VG's) for VG vg. */
int blockdom_open(const char *const *paths, size_t n_paths, const char *vg, BlockDom **ret);
void blockdom_free(BlockDom *bd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BlockDom, blockdom_free)

/* The extent map of an LV from a report of it. */
int blockdom_map_lv(BlockDom *bd, const BlkLv *lv, ExtMap **ret);
/* The extent map of LV name (one lvs). */
int blockdom_map(BlockDom *bd, const char *lv, ExtMap **ret);
/*
 * Where [off, off + len) of the LV that map describes lies: its PV's path
 * (borrowed from bd) and the byte offset there; -ERANGE when the range
 * spans two segments.  (sanlock and mke2fs are given areas this way.)
 */
int blockdom_area(BlockDom *bd, const ExtMap *map, uint64_t off, uint64_t len,
		  const char **ret_path, uint64_t *ret_off);

/* The VG's MDT_ tags decoded and checked (seal); with ret_tags, all its tags. */
int blockdom_read_kv(BlockDom *bd, char ***ret_tags, MdKv **ret);
/* Replaces the MDT_ tags by kv's, in one vgchange (reference section 3). */
int blockdom_write_kv(BlockDom *bd, const MdKv *kv);
/*
 * Groups block devices by VG (one lvm run over all): *ret_vgs maps a VG
 * name to its given devices (canonical paths, GPtrArray of char*); with
 * ret_lost, the devices in no VG lvm could read.
 */
int blockdom_group(const char *const *devs, size_t n_devs, GHashTable **ret_vgs,
		   GPtrArray **ret_lost);
