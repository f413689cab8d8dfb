/*
 * lvm: the one lvm runner (STYLE.md 1: the only code that spawns lvm).
 *
 * An LvmCtx is the set of PV devices of one block domain.  Every command
 * runs as `lvm CMD --config '...' ARGS` with stdin on /dev/null, no other
 * inherited fd, LC_ALL=C, and a private configuration that makes lvm see
 * those devices and nothing else:
 *
 *   devices { filter and global_filter accepting exactly the ctx's paths
 *             and rejecting everything else, no devices file, no udev
 *             device list, no hints, no component detection }
 *   global  { activation = 0 when the kernel has no device-mapper,
 *             no lvmlockd, no lvmpolld, no D-Bus notification }
 *   backup  { no backup or archive files in /etc/lvm }
 *
 * so the host's own VGs are never read, locked or changed, and nothing is
 * written outside the ctx's devices (lvm's lock files in /run/lock/lvm
 * aside).  LVs are created with --activate n --zero n: activation (where
 * the kernel has device-mapper) and zeroing are the caller's business.
 *
 * Each command has a timeout (default BLK_LVM_TIMEOUT_MS); lvm is killed
 * when it runs out and the call returns -ETIMEDOUT.
 *
 * Errors: lvm's exit status and the first line of its stderr that is not a
 * warning are mapped once, here, to -errno:
 *
 *   -EEXIST     "already exists"
 *   -ENOENT     "not found", "Failed to find"
 *   -ENOSPC     "insufficient free space", "Insufficient suitable ..."
 *   -EBUSY      a device with a signature (filesystem, partition table,
 *               PV) or in use; an LV or VG in use
 *   -ENODEV     a device that is not one of the ctx's
 *   -EINVAL     a bad name, tag or size (checked before lvm runs), or a
 *               command line lvm refused
 *   -ETIMEDOUT  the command ran out of time
 *   -EPROTO     output we could not parse (-EFBIG: more than 64 MiB of it)
 *   -EIO        anything else
 *
 * and the one-line message is kept for the caller's error line:
 * blk_lvm_last_error() (per thread, like errno).  Nothing here logs above
 * debug level (STYLE.md 3: report or return).
 *
 * Calling sequence:
 *   1. blk_lvm_new(paths) checks that every path is a block device;
 *   2. any of the commands below, from any thread (an LvmCtx is immutable
 *      after step 1, blk_lvm_set_timeout() aside; lvm serialises commands
 *      on one VG with its own locks);
 *   3. blk_lvm_free().
 *
 * Sizes are bytes and must be multiples of 512; lvm rounds LV sizes up to
 * whole extents.  Names follow lvm's rules (A-Z a-z 0-9 + _ . -, not
 * starting with '-', at most 127 characters); tags lvm's tag rules
 * (A-Z a-z 0-9 _ + . - / = ! : & #, not starting with '-').
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "block/extmap.h"

typedef struct LvmCtx LvmCtx;

/* A VG has at most 10 PVs (reference section 16, VDSM MAX_PVS_LIMIT). */
#define BLK_LVM_MAX_PVS 10
#define BLK_LVM_TIMEOUT_MS (60 * 1000)

/* A PV (pvs). */
typedef struct BlkPv {
	char *name;	/* device path, as lvm names it */
	char *uuid;	/* LVM PV UUID */
	char *vg_name;	/* "" for a PV in no VG */
	uint64_t size;	/* pv_size: bytes usable for extents and metadata */
	uint64_t dev_size;	/* size of the device */
	uint64_t pe_start;	/* byte offset of physical extent 0 */
	uint64_t pe_count;	/* physical extents (0 for a PV in no VG) */
	uint64_t pe_alloc_count; /* of which allocated */
	uint64_t mda_size;	/* metadata area size (smallest, bytes) */
	uint64_t mda_free;
} BlkPv;

/* A VG (vgs). */
typedef struct BlkVg {
	char *name;
	char *uuid;
	uint64_t size; /* bytes */
	uint64_t free;
	uint64_t extent_size;
	uint64_t extent_count;
	uint64_t free_count;
	uint64_t mda_size; /* smallest metadata area, bytes */
	uint64_t mda_free;
	uint64_t seqno;	   /* metadata sequence number */
	uint32_t pv_count;
	uint32_t lv_count;
	char **tags; /* NULL-terminated (g_strv), in lvm's order */
} BlkVg;

/* One area of a segment: pv(pe) in lvs "devices". */
typedef struct BlkStripe {
	char *pv;    /* device path, or lvm's "[unknown]" for a missing PV */
	uint64_t pe; /* first physical extent */
} BlkStripe;

/* One segment of an LV (lvs --segments). */
typedef struct BlkSeg {
	uint64_t le;	      /* first logical extent (seg_start_pe) */
	uint64_t extents;     /* seg_size_pe */
	char *type;	      /* segtype: "linear", "striped", ... */
	uint64_t stripe_size; /* bytes; 0 when linear */
	size_t n_stripes;
	BlkStripe *stripes;
} BlkSeg;

/* An LV with its segments. */
typedef struct BlkLv {
	char *vg_name;
	char *name;
	char *uuid;
	uint64_t size;	      /* bytes */
	uint64_t extent_size; /* the VG's */
	char **tags;	      /* NULL-terminated (g_strv) */
	size_t n_segs;
	BlkSeg *segs; /* sorted by le, contiguous from 0 */
} BlkLv;

void blk_pv_free(BlkPv *pv);
void blk_vg_free(BlkVg *vg);
void blk_lv_free(BlkLv *lv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BlkPv, blk_pv_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BlkVg, blk_vg_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BlkLv, blk_lv_free)

/*
 * Whether the kernel has device-mapper (/dev/mapper/control opens, or
 * /proc/misc lists device-mapper).  Decided once per process.  Without it
 * every command runs with activation disabled.
 */
bool blk_dm_available(void);

/*
 * A ctx for the given devices (1..BLK_LVM_MAX_PVS absolute paths of block
 * devices, no duplicates).  -EINVAL for a bad list or a path with
 * characters outside A-Z a-z 0-9 / _ . + : -, -ENOENT for a missing
 * device, -ENOTBLK for something that is not a block device, -ENOENT when
 * lvm itself is not installed.
 */
int blk_lvm_new(const char *const *paths, size_t n_paths, LvmCtx **ret);
void blk_lvm_free(LvmCtx *ctx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LvmCtx, blk_lvm_free)
/* Per-command timeout; 0 restores the default.  Set it before sharing ctx. */
void blk_lvm_set_timeout(LvmCtx *ctx, unsigned timeout_ms);
size_t blk_lvm_n_pvs(const LvmCtx *ctx);
/* The i-th path as given to blk_lvm_new(). */
const char *blk_lvm_pv_path(const LvmCtx *ctx, size_t i);
/*
 * Index of a device name (as lvm reports it, or any path of the same
 * device) among the ctx's paths; -ENODEV when it is not one of them.
 */
int blk_lvm_pv_index(const LvmCtx *ctx, const char *name);
/* Whether commands run with activation enabled (blk_dm_available()). */
bool blk_lvm_activation(const LvmCtx *ctx);

/*
 * The one-line message of this thread's last failed command ("" after a
 * success), e.g. "Volume group \"x\" has insufficient free space (3
 * extents): 8 required."  Valid until the thread's next call.
 */
const char *blk_lvm_last_error(void);
/* The whole stderr of this thread's last lvm run (for tests and debugging). */
const char *blk_lvm_last_stderr(void);

/* Reports.  Arrays own their elements. */

/* The ctx's devices that are PVs (BlkPv). */
int blk_pv_list(LvmCtx *ctx, GPtrArray **ret);
/* Every VG on the ctx's devices (BlkVg). */
int blk_vg_list(LvmCtx *ctx, GPtrArray **ret);
/* One VG; -ENOENT when there is none of that name. */
int blk_vg_get(LvmCtx *ctx, const char *vg, BlkVg **ret);
/* Every LV of vg with its segments (BlkLv), sorted by name; -ENOENT: no such VG. */
int blk_lv_list(LvmCtx *ctx, const char *vg, GPtrArray **ret);
/* One LV; -ENOENT when there is no such LV or VG. */
int blk_lv_get(LvmCtx *ctx, const char *vg, const char *lv, BlkLv **ret);

/* PVs. */

/*
 * pvcreate --metadatasize metadata_size --metadatacopies copies (1 or 2)
 * --metadataignore y|n DEV.  Refuses, changing nothing, a device that is
 * open exclusively elsewhere (mounted, held) or carries any signature
 * blkid finds (a file system, a partition table, an LVM PV, RAID ...):
 * -EBUSY with a message naming it.  -ENODEV when dev is not the ctx's.
 */
int blk_pv_create(LvmCtx *ctx, const char *dev, uint64_t metadata_size, unsigned copies,
		  bool metadata_ignore);
/* pvchange --metadataignore y|n DEV. */
int blk_pv_set_metadata_ignore(LvmCtx *ctx, const char *dev, bool ignore);
/* pvremove DEV (a PV in no VG); the undo of blk_pv_create(). */
int blk_pv_remove(LvmCtx *ctx, const char *dev);

/* VGs. */

/*
 * vgcreate --setautoactivation n --physicalextentsize extent_size
 * [--addtag T]... VG DEV...  extent_size: a power of two >= 1 MiB.
 * devs must be PVs of the ctx in no VG.
 */
int blk_vg_create(LvmCtx *ctx, const char *vg, const char *const *devs, size_t n_devs,
		  uint64_t extent_size, const char *const *tags);
/* vgremove -f: removes the VG and every LV in it (undo of blk_vg_create()). */
int blk_vg_remove(LvmCtx *ctx, const char *vg);
/*
 * One vgchange that deletes del and adds add (NULL-terminated, either may
 * be NULL); no command at all when both are empty.  Deleting a tag that is
 * not there is not an error.
 */
int blk_vg_change_tags(LvmCtx *ctx, const char *vg, const char *const *add,
		       const char *const *del);

/* LVs. */

/*
 * lvcreate --name LV --size SIZE [--addtag T]... VG [DEV]: a new linear
 * LV, not activated, not zeroed (the caller zeroes what it exposes).  dev,
 * when not NULL, is the one PV to allocate from (the `metadata` LV goes on
 * the first PV).
 */
int blk_lv_create(LvmCtx *ctx, const char *vg, const char *lv, uint64_t size,
		  const char *const *tags, const char *dev);
/*
 * lvextend to size bytes.  A size that rounds to the current extents is a
 * success (so a retried extension is harmless); a smaller one -EINVAL.
 */
int blk_lv_extend(LvmCtx *ctx, const char *vg, const char *lv, uint64_t size);
/* lvreduce -f to size bytes; the caller drains I/O on the LV first. */
int blk_lv_reduce(LvmCtx *ctx, const char *vg, const char *lv, uint64_t size);
/* lvremove -f. */
int blk_lv_remove(LvmCtx *ctx, const char *vg, const char *lv);
/* One lvchange that deletes del and adds add, as blk_vg_change_tags(). */
int blk_lv_change_tags(LvmCtx *ctx, const char *vg, const char *lv, const char *const *add,
		       const char *const *del);
/* lvrename VG OLD NEW. */
int blk_lv_rename(LvmCtx *ctx, const char *vg, const char *old_name, const char *new_name);

/*
 * The extent map of lv (block/extmap.h) with PV indexes of the ctx, from a
 * report of the LV and of the ctx's PVs (blk_pv_list()).  -ENODEV when a
 * segment is on a PV that is not the ctx's or is missing, -EOPNOTSUPP for
 * a segment type other than linear or striped, -EPROTO when the report is
 * inconsistent (sizes, extents).
 */
int blk_lv_extmap(const LvmCtx *ctx, const BlkLv *lv, const GPtrArray *pvs, ExtMap **ret);
