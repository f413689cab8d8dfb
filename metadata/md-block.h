/*
 * md-block: the records of block domains that md-kv and md-volume do not
 * cover (reference/ovirt-storage-format.md sections 2, 4, 6, 9.1, 16):
 *
 *   - the VG: marker tags, and the domain metadata, which block domains of
 *     every version from 2 to 5 keep in VG tags "MDT_<KEY=VALUE>" (the
 *     encoding is md-kv's; here the tag set and its update);
 *   - the PVn keys of the domain metadata (PV mapping);
 *   - the special LVs and their sizes;
 *   - the tags of a volume LV: IU_<image>, PU_<parent>, MD_<slot>,
 *     OVIRT_VOL_INITIALIZING, and the "_remove_me_" image prefix;
 *   - the metadata LV slot layout (v2-v4: 512-byte slots from 0; v5: 8 KiB
 *     slots from 1 MiB), slot allocation, the volume lease offset in the
 *     `leases` LV, and a slot's bytes (md-volume's record, NUL padded to
 *     512 bytes).
 *
 * Pure functions over strings and buffers: no lvm, no I/O.  Decoders
 * return -EUCLEAN for a value that is malformed (a volume with such tags
 * is illegal, never a crash) and are fuzzed (tests/unit/fuzz/fuzz-block.c);
 * encoders return -EINVAL for input they would not write.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metadata/md-kv.h"
#include "metadata/md-volume.h"

#define MD_BLOCK_MIB (1024ull * 1024)

/* The VG (reference 6.1). */
#define MD_BLOCK_VG_TAG "RHAT_storage_domain"
#define MD_BLOCK_VG_TAG_UNREADY "RHAT_storage_domain_UNREADY"
#define MD_BLOCK_MDT_PREFIX "MDT_"
#define MD_BLOCK_EXTENT_SIZE (128 * MD_BLOCK_MIB)	/* vgcreate --physicalextentsize */
#define MD_BLOCK_PV_METADATA_SIZE (128 * MD_BLOCK_MIB) /* pvcreate --metadatasize */
#define MD_BLOCK_PV_METADATA_COPIES 2		/* pvcreate --metadatacopies */
#define MD_BLOCK_MIN_VG_SIZE (10 * 1024 * MD_BLOCK_MIB)
#define MD_BLOCK_MAX_PVS 10
/* VDSM "mdavalid": the VG metadata area is at least half the size asked for. */
#define MD_BLOCK_MDA_MIN_SIZE (MD_BLOCK_PV_METADATA_SIZE / 2)

/*
 * Every MDT_ tag of kv: one per key (md_kv_tag_encode()) and the
 * _SHA_CKSUM line, NULL-terminated (g_strfreev).
 */
char **md_block_kv_tags(const MdKv *kv);

/*
 * Set differences between two tag lists, restricted to tags starting with
 * prefix (all tags when prefix is NULL): *ret_add = new - old, *ret_del =
 * old - new, each without duplicates, in input order, NULL-terminated
 * (g_strfreev; empty lists are { NULL }).  This is the one vgchange or
 * lvchange VDSM issues to go from old to new (reference section 3).
 */
void md_block_tags_diff(const char *const *old_tags, const char *const *new_tags,
			const char *prefix, char ***ret_add, char ***ret_del);

/*
 * The PVn keys (reference section 4):
 * "pv:<guid>,uuid:<pv uuid>,pestart:0,pecount:<n>,mapoffset:<m>".
 */
#define MD_BLOCK_PV_GUID_MAX 255
#define MD_BLOCK_PV_UUID_MAX 64

typedef struct MdBlockPv {
	char guid[MD_BLOCK_PV_GUID_MAX + 1]; /* pv: the device's basename (/dev/mapper/<guid>) */
	char uuid[MD_BLOCK_PV_UUID_MAX + 1]; /* uuid: the LVM PV UUID */
	uint64_t pestart;   /* pestart: always 0 as VDSM writes it */
	uint64_t pecount;   /* pecount: the PV's physical extents */
	uint64_t mapoffset; /* mapoffset: sum of the pecount of the PVs before it */
} MdBlockPv;

/*
 * VDSM decodePVInfo(): items split on ',', each on its first ':'.  Items
 * other than the five above are ignored.  -EUCLEAN for an item without
 * ':', a missing or repeated item, a bad number, an empty or overlong
 * guid or uuid.
 */
int md_block_pv_decode(const char *value, MdBlockPv *ret);
/* VDSM encodePVInfo(); -EINVAL for a guid or uuid that could not be decoded back. */
int md_block_pv_encode(const MdBlockPv *pv, char **ret);
/* "PV<index>" into ret; -EINVAL for index >= MD_BLOCK_MAX_PVS. */
int md_block_pv_key(unsigned index, char ret[8]);
/* Whether key is a PV mapping key (VDSM ^PV\d+$), and its number. */
bool md_block_pv_key_parse(const char *key, unsigned *ret_index);

/* Special LVs (reference 6.2), in creation order. */
#define MD_BLOCK_LV_METADATA "metadata"
#define MD_BLOCK_LV_IDS "ids"
#define MD_BLOCK_LV_LEASES "leases"
#define MD_BLOCK_LV_INBOX "inbox"
#define MD_BLOCK_LV_OUTBOX "outbox"
#define MD_BLOCK_LV_XLEASES "xleases"
#define MD_BLOCK_LV_MASTER "master"
/* Zeroed at creation: the v4 and v5 slot areas of `metadata`; the mailboxes' host area. */
#define MD_BLOCK_METADATA_ZEROED (17 * MD_BLOCK_MIB)
#define MD_BLOCK_MAILBOX_ZEROED (250 * 4096)

/* NULL-terminated names, in the order VDSM creates them. */
const char *const *md_block_special_lvs(void);
bool md_block_lv_is_special(const char *name);
/*
 * The size VDSM requests for a special LV (lvm rounds it up to extents);
 * leases and xleases scale with the sanlock alignment (1, 2, 4 or 8 MiB).
 * -ENOENT for a name that is not special, -EINVAL for a bad alignment.
 */
int md_block_special_lv_size(const char *name, uint32_t alignment, uint64_t *ret);

/* Volume LV tags (reference 6.3). */
#define MD_BLOCK_TAG_IMAGE "IU_"
#define MD_BLOCK_TAG_PARENT "PU_"
#define MD_BLOCK_TAG_SLOT "MD_"
#define MD_BLOCK_TAG_INITIALIZING "OVIRT_VOL_INITIALIZING"
#define MD_BLOCK_REMOVE_PREFIX "_remove_me_"
#define MD_BLOCK_REMOVE_ZERO_PREFIX "_remove_me_ZERO_"

typedef enum MdLvRemoval {
	MD_LV_REMOVAL_NONE,    /* IU_<image> */
	MD_LV_REMOVAL_PENDING, /* IU__remove_me_<image>: being deleted */
	MD_LV_REMOVAL_ZERO,    /* IU__remove_me_ZERO_<image>: being zeroed, then deleted */
	MD_LV_REMOVAL_MAX,
} MdLvRemoval;

typedef struct MdLvTags {
	bool has_image;
	char image[MD_VOLUME_NAME_MAX + 1];  /* IU_, without the removal prefix */
	MdLvRemoval removal;		     /* from the IU_ tag's prefix */
	bool has_parent;
	char parent[MD_VOLUME_NAME_MAX + 1]; /* PU_; "" for the blank UUID (a base volume) */
	bool has_slot;
	uint32_t slot;	   /* MD_, 0..MD_BLOCK_MAX_SLOT */
	bool initializing; /* OVIRT_VOL_INITIALIZING: creation not finished, ignore the LV */
} MdLvTags;

/*
 * Reads the volume tags out of an LV's tag list; other tags are ignored.
 * Names must pass name_is_valid() (UUIDs do).  -EUCLEAN for a repeated
 * IU_/PU_/MD_ tag, a bad name, or a slot that is not a number up to
 * MD_BLOCK_MAX_SLOT.  A tag missing is not an error: see
 * md_lv_tags_is_volume().
 */
int md_lv_tags_parse(const char *const *tags, size_t n_tags, MdLvTags *ret);
/* A complete volume: IU_, PU_ and MD_ present, not initializing, not being removed. */
bool md_lv_tags_is_volume(const MdLvTags *t);
/*
 * The tags of t as VDSM writes them (OVIRT_VOL_INITIALIZING, IU_, PU_ with
 * the blank UUID for "", MD_), each only when set, NULL-terminated
 * (g_strfreev).  -EINVAL for a bad name or slot.
 */
int md_lv_tags_format(const MdLvTags *t, char ***ret);

/* The metadata LV slots (reference 6.4) and volume leases (9.1). */
#define MD_BLOCK_RECORD_SIZE MD_VOLUME_RECORD_SIZE /* bytes used in a slot */
#define MD_BLOCK_SLOT_SIZE_V4 512
#define MD_BLOCK_SLOT_SIZE_V5 8192
#define MD_BLOCK_SLOTS_BASE_V5 MD_BLOCK_MIB
#define MD_BLOCK_RESERVED_LEASES 100 /* leases LV slots before the volume leases */
#define MD_BLOCK_LEASE_SLOTS 2048    /* leases LV size in alignment units */
/* The last slot whose volume lease fits in the leases LV. */
#define MD_BLOCK_MAX_SLOT (MD_BLOCK_LEASE_SLOTS - MD_BLOCK_RESERVED_LEASES - 1)

typedef struct MdBlockSlots {
	uint64_t base;	     /* offset of slot 0 in the metadata LV */
	uint32_t slot_size;  /* bytes between slots */
	uint32_t first_slot; /* the lowest slot given to a volume */
} MdBlockSlots;

/* The layout of a domain version (2 to 5); -EPROTONOSUPPORT for others. */
int md_block_slots(int version, MdBlockSlots *ret);
/* base + slot * slot_size; -ERANGE for slot > MD_BLOCK_MAX_SLOT. */
int md_block_slot_offset(int version, uint32_t slot, uint64_t *ret);
/*
 * VDSM's allocation: the lowest slot >= first_slot not in used (any order,
 * duplicates allowed).  -ENOSPC when every slot up to MD_BLOCK_MAX_SLOT is
 * taken.
 */
int md_block_slot_pick(int version, const uint32_t *used, size_t n_used, uint32_t *ret);
/*
 * Offset of the volume lease of slot in the leases LV: (100 + slot) *
 * alignment.  -EINVAL for an alignment other than 1, 2, 4 or 8 MiB,
 * -ERANGE for slot > MD_BLOCK_MAX_SLOT.
 */
int md_block_lease_offset(uint32_t slot, uint32_t alignment, uint64_t *ret);
/*
 * A slot's record: md_volume_encode() for the domain version, NUL padded
 * to MD_BLOCK_RECORD_SIZE bytes (written with one O_DIRECT write).
 */
int md_block_slot_encode(const MdVolume *vol, int version, uint8_t buf[MD_BLOCK_RECORD_SIZE]);
/*
 * Decodes the first MD_BLOCK_RECORD_SIZE bytes of a slot (len may be a
 * whole 8 KiB v5 slot).  -ENODATA for a cleared slot, -EUCLEAN for a bad
 * record, -EINVAL when len < MD_BLOCK_RECORD_SIZE.
 */
int md_block_slot_decode(const uint8_t *buf, size_t len, MdVolume *ret);
