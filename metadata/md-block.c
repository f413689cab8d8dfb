/*
 * md-block: block domain records.  See md-block.h.
 *
 * VDSM sources behind each part (lib/vdsm/storage/): blockSD.py
 * (encodePVInfo/decodePVInfo, VGTagMetadataRW, SPECIAL_LVS, slot offsets,
 * METADATA_BASE_V5, RESERVED_LEASES), blockVolume.py (tags, slot
 * allocation, lease offsets), constants.py (tag prefixes).
 *
 * Where VDSM is lenient we are strict in decoding (a duplicate IU_ tag or
 * a PV mapping with a missing item is -EUCLEAN rather than "the first one
 * wins"), because what we cannot trust must make a volume illegal, not
 * pick a parent or a slot by accident.  Nothing VDSM writes is refused.
 */
#include "metadata/md-block.h"

#include <errno.h>
#include <string.h>
#include <glib.h>

#include "common/log.h"
#include "common/names.h"
#include "common/parse.h"

#include "common/banned.h"

static int invalid(const char *what, const char *value)
{
	log_debug(LOG_CLASS_METADATA, "block metadata: %s '%s'", what, value ? value : "");
	return -EUCLEAN;
}

/* VG tags. */

char **md_block_kv_tags(const MdKv *kv)
{
	GPtrArray *tags = g_ptr_array_new();
	char sum[41];

	for (size_t i = 0; i < md_kv_size(kv); i++) {
		const char *key = md_kv_key_at(kv, i);

		g_ptr_array_add(tags, md_kv_tag_encode(key, md_kv_get(kv, key)));
	}
	md_kv_checksum(kv, sum);
	g_ptr_array_add(tags, md_kv_tag_encode(MD_KV_CHECKSUM_KEY, sum));
	g_ptr_array_add(tags, NULL);
	return (char **)g_ptr_array_free(tags, FALSE);
}

static bool matches(const char *tag, const char *prefix)
{
	return tag && (!prefix || g_str_has_prefix(tag, prefix));
}

/* Tags of a that b lacks, matching prefix, each once. */
static char **difference(const char *const *a, const char *const *b, const char *prefix)
{
	g_autoptr(GHashTable) in_b = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	GPtrArray *out = g_ptr_array_new();

	for (size_t i = 0; b && b[i]; i++)
		g_hash_table_add(in_b, (gpointer)b[i]);
	for (size_t i = 0; a && a[i]; i++) {
		if (!matches(a[i], prefix) || g_hash_table_contains(in_b, a[i]) ||
		    g_hash_table_contains(seen, a[i]))
			continue;
		g_hash_table_add(seen, (gpointer)a[i]);
		g_ptr_array_add(out, g_strdup(a[i]));
	}
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}

void md_block_tags_diff(const char *const *old_tags, const char *const *new_tags,
			const char *prefix, char ***ret_add, char ***ret_del)
{
	*ret_add = difference(new_tags, old_tags, prefix);
	*ret_del = difference(old_tags, new_tags, prefix);
}

/* PV mapping. */

enum { PV_GUID, PV_UUID, PV_PESTART, PV_PECOUNT, PV_MAPOFFSET, PV__MAX };
static const char *const pv_items[PV__MAX] = { "pv", "uuid", "pestart", "pecount", "mapoffset" };

static bool guid_valid(const char *s)
{
	size_t len = strlen(s);

	/* ',' would split the value; the rest is what a device name can hold. */
	if (len == 0 || len > MD_BLOCK_PV_GUID_MAX || !g_utf8_validate(s, -1, NULL))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == ',' || (unsigned char)s[i] < 0x20)
			return false;
	return true;
}

static bool pv_uuid_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > MD_BLOCK_PV_UUID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!g_ascii_isalnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

int md_block_pv_decode(const char *value, MdBlockPv *ret)
{
	g_auto(GStrv) items = NULL;
	const char *vals[PV__MAX] = { NULL };
	MdBlockPv pv;

	if (!value)
		return -EINVAL;
	items = g_strsplit(value, ",", -1);
	for (char **it = items; *it; it++) {
		char *colon = strchr(*it, ':');

		if (!colon)
			return invalid("PV mapping item without ':'", *it);
		*colon = '\0';
		for (int k = 0; k < PV__MAX; k++) {
			if (strcmp(*it, pv_items[k]) != 0)
				continue;
			if (vals[k])
				return invalid("PV mapping item repeated", *it);
			vals[k] = colon + 1;
		}
	}
	for (int k = 0; k < PV__MAX; k++)
		if (!vals[k])
			return invalid("PV mapping item missing", pv_items[k]);

	memset(&pv, 0, sizeof(pv));
	if (!guid_valid(vals[PV_GUID]))
		return invalid("bad PV guid", vals[PV_GUID]);
	if (!pv_uuid_valid(vals[PV_UUID]))
		return invalid("bad PV uuid", vals[PV_UUID]);
	g_strlcpy(pv.guid, vals[PV_GUID], sizeof(pv.guid));
	g_strlcpy(pv.uuid, vals[PV_UUID], sizeof(pv.uuid));
	if (parse_u64(vals[PV_PESTART], &pv.pestart) < 0 ||
	    parse_u64(vals[PV_PECOUNT], &pv.pecount) < 0 ||
	    parse_u64(vals[PV_MAPOFFSET], &pv.mapoffset) < 0)
		return invalid("bad number in PV mapping", value);
	*ret = pv;
	return 0;
}

int md_block_pv_encode(const MdBlockPv *pv, char **ret)
{
	if (!guid_valid(pv->guid) || !pv_uuid_valid(pv->uuid))
		return -EINVAL;
	*ret = g_strdup_printf("pv:%s,uuid:%s,pestart:%" G_GUINT64_FORMAT
			       ",pecount:%" G_GUINT64_FORMAT ",mapoffset:%" G_GUINT64_FORMAT,
			       pv->guid, pv->uuid, pv->pestart, pv->pecount, pv->mapoffset);
	return 0;
}

int md_block_pv_key(unsigned index, char ret[8])
{
	if (index >= MD_BLOCK_MAX_PVS)
		return -EINVAL;
	g_snprintf(ret, 8, "PV%u", index);
	return 0;
}

bool md_block_pv_key_parse(const char *key, unsigned *ret_index)
{
	uint32_t n;

	if (!key || !g_str_has_prefix(key, "PV") || parse_u32(key + 2, &n) < 0)
		return false;
	if (ret_index)
		*ret_index = n;
	return true;
}

/* Special LVs. */

static const char *const special_lvs[] = {
	MD_BLOCK_LV_METADATA, MD_BLOCK_LV_IDS,	   MD_BLOCK_LV_LEASES, MD_BLOCK_LV_INBOX,
	MD_BLOCK_LV_OUTBOX,   MD_BLOCK_LV_XLEASES, MD_BLOCK_LV_MASTER, NULL,
};

const char *const *md_block_special_lvs(void)
{
	return special_lvs;
}

bool md_block_lv_is_special(const char *name)
{
	for (size_t i = 0; name && special_lvs[i]; i++)
		if (strcmp(name, special_lvs[i]) == 0)
			return true;
	return false;
}

static bool alignment_valid(uint32_t alignment)
{
	return alignment == MD_BLOCK_MIB || alignment == 2 * MD_BLOCK_MIB ||
	       alignment == 4 * MD_BLOCK_MIB || alignment == 8 * MD_BLOCK_MIB;
}

int md_block_special_lv_size(const char *name, uint32_t alignment, uint64_t *ret)
{
	static const struct {
		const char *name;
		uint64_t mib;	 /* fixed size, or 0 */
		uint64_t aligns; /* size in alignment units, or 0 */
	} sizes[] = {
		{ MD_BLOCK_LV_METADATA, 128, 0 },
		{ MD_BLOCK_LV_IDS, 8, 0 },
		{ MD_BLOCK_LV_LEASES, 0, MD_BLOCK_LEASE_SLOTS },
		{ MD_BLOCK_LV_INBOX, 16, 0 },
		{ MD_BLOCK_LV_OUTBOX, 16, 0 },
		{ MD_BLOCK_LV_XLEASES, 0, 1024 },
		{ MD_BLOCK_LV_MASTER, 1024, 0 },
	};

	if (!alignment_valid(alignment))
		return -EINVAL;
	for (size_t i = 0; name && i < G_N_ELEMENTS(sizes); i++) {
		if (strcmp(name, sizes[i].name) != 0)
			continue;
		*ret = sizes[i].mib ? sizes[i].mib * MD_BLOCK_MIB : sizes[i].aligns * alignment;
		return 0;
	}
	return -ENOENT;
}

/* Volume LV tags. */

/* A volume or image name as the tree and md-volume accept it. */
static bool vol_name_valid(const char *s)
{
	return strlen(s) <= MD_VOLUME_NAME_MAX && name_is_valid(s);
}

static int parse_slot(const char *s, uint32_t *ret)
{
	uint32_t v;

	if (parse_u32(s, &v) < 0 || v > MD_BLOCK_MAX_SLOT)
		return invalid("bad metadata slot tag value", s);
	*ret = v;
	return 0;
}

int md_lv_tags_parse(const char *const *tags, size_t n_tags, MdLvTags *ret)
{
	MdLvTags t;
	int r;

	memset(&t, 0, sizeof(t));
	if (n_tags && !tags)
		return -EINVAL;
	for (size_t i = 0; i < n_tags; i++) {
		const char *tag = tags[i];

		if (!tag)
			continue;
		if (strcmp(tag, MD_BLOCK_TAG_INITIALIZING) == 0) {
			t.initializing = true;
		} else if (g_str_has_prefix(tag, MD_BLOCK_TAG_IMAGE)) {
			const char *v = tag + strlen(MD_BLOCK_TAG_IMAGE);

			if (t.has_image)
				return invalid("two image tags, second", tag);
			if (g_str_has_prefix(v, MD_BLOCK_REMOVE_ZERO_PREFIX)) {
				t.removal = MD_LV_REMOVAL_ZERO;
				v += strlen(MD_BLOCK_REMOVE_ZERO_PREFIX);
			} else if (g_str_has_prefix(v, MD_BLOCK_REMOVE_PREFIX)) {
				t.removal = MD_LV_REMOVAL_PENDING;
				v += strlen(MD_BLOCK_REMOVE_PREFIX);
			}
			if (!vol_name_valid(v))
				return invalid("bad image tag", tag);
			g_strlcpy(t.image, v, sizeof(t.image));
			t.has_image = true;
		} else if (g_str_has_prefix(tag, MD_BLOCK_TAG_PARENT)) {
			const char *v = tag + strlen(MD_BLOCK_TAG_PARENT);

			if (t.has_parent)
				return invalid("two parent tags, second", tag);
			if (strcmp(v, BLANK_UUID) == 0)
				t.parent[0] = '\0';
			else if (vol_name_valid(v))
				g_strlcpy(t.parent, v, sizeof(t.parent));
			else
				return invalid("bad parent tag", tag);
			t.has_parent = true;
		} else if (g_str_has_prefix(tag, MD_BLOCK_TAG_SLOT)) {
			if (t.has_slot)
				return invalid("two metadata slot tags, second", tag);
			r = parse_slot(tag + strlen(MD_BLOCK_TAG_SLOT), &t.slot);
			if (r < 0)
				return r;
			t.has_slot = true;
		}
	}
	*ret = t;
	return 0;
}

bool md_lv_tags_is_volume(const MdLvTags *t)
{
	return t->has_image && t->has_parent && t->has_slot && !t->initializing &&
	       t->removal == MD_LV_REMOVAL_NONE;
}

int md_lv_tags_format(const MdLvTags *t, char ***ret)
{
	static const char *const removal_prefix[MD_LV_REMOVAL_MAX] = {
		[MD_LV_REMOVAL_NONE] = "",
		[MD_LV_REMOVAL_PENDING] = MD_BLOCK_REMOVE_PREFIX,
		[MD_LV_REMOVAL_ZERO] = MD_BLOCK_REMOVE_ZERO_PREFIX,
	};
	GPtrArray *tags;

	if (t->has_image &&
	    (!vol_name_valid(t->image) || (unsigned)t->removal >= MD_LV_REMOVAL_MAX))
		return -EINVAL;
	if (t->has_parent && t->parent[0] && !vol_name_valid(t->parent))
		return -EINVAL;
	if (t->has_slot && t->slot > MD_BLOCK_MAX_SLOT)
		return -EINVAL;

	tags = g_ptr_array_new();
	if (t->initializing)
		g_ptr_array_add(tags, g_strdup(MD_BLOCK_TAG_INITIALIZING));
	if (t->has_image)
		g_ptr_array_add(tags, g_strconcat(MD_BLOCK_TAG_IMAGE, removal_prefix[t->removal],
						  t->image, NULL));
	if (t->has_parent)
		g_ptr_array_add(tags, g_strconcat(MD_BLOCK_TAG_PARENT,
						  t->parent[0] ? t->parent : BLANK_UUID, NULL));
	if (t->has_slot)
		g_ptr_array_add(tags, g_strdup_printf(MD_BLOCK_TAG_SLOT "%u", t->slot));
	g_ptr_array_add(tags, NULL);
	*ret = (char **)g_ptr_array_free(tags, FALSE);
	return 0;
}

/* Metadata LV slots. */

int md_block_slots(int version, MdBlockSlots *ret)
{
	switch (version) {
	case 2:
	case 3:
	case 4:
		/* Slots 0-3: the first 2048 bytes held v0 domain metadata. */
		*ret = (MdBlockSlots){ .base = 0, .slot_size = MD_BLOCK_SLOT_SIZE_V4,
				       .first_slot = 4 };
		return 0;
	case 5:
		/* The first MiB stays zero (the v4 area, for conversion); slot 0 reserved. */
		*ret = (MdBlockSlots){ .base = MD_BLOCK_SLOTS_BASE_V5,
				       .slot_size = MD_BLOCK_SLOT_SIZE_V5, .first_slot = 1 };
		return 0;
	default:
		return -EPROTONOSUPPORT;
	}
}

/* Both areas hold at least MD_BLOCK_MAX_SLOT + 1 slots. */
_Static_assert((MD_BLOCK_MAX_SLOT + 1) * MD_BLOCK_SLOT_SIZE_V4 <= MD_BLOCK_MIB,
	       "v4 slots fit in the first MiB");
_Static_assert(MD_BLOCK_SLOTS_BASE_V5 + (MD_BLOCK_MAX_SLOT + 1) * MD_BLOCK_SLOT_SIZE_V5 <=
		       MD_BLOCK_METADATA_ZEROED,
	       "v5 slots fit in the zeroed area");

int md_block_slot_offset(int version, uint32_t slot, uint64_t *ret)
{
	MdBlockSlots s;
	int r = md_block_slots(version, &s);

	if (r < 0)
		return r;
	if (slot > MD_BLOCK_MAX_SLOT)
		return -ERANGE;
	*ret = s.base + (uint64_t)slot * s.slot_size;
	return 0;
}

int md_block_slot_pick(int version, const uint32_t *used, size_t n_used, uint32_t *ret)
{
	bool taken[MD_BLOCK_MAX_SLOT + 1] = { false };
	MdBlockSlots s;
	int r = md_block_slots(version, &s);

	if (r < 0)
		return r;
	if (n_used && !used)
		return -EINVAL;
	for (size_t i = 0; i < n_used; i++)
		if (used[i] <= MD_BLOCK_MAX_SLOT)
			taken[used[i]] = true;
	for (uint32_t slot = s.first_slot; slot <= MD_BLOCK_MAX_SLOT; slot++) {
		if (!taken[slot]) {
			*ret = slot;
			return 0;
		}
	}
	return -ENOSPC;
}

int md_block_lease_offset(uint32_t slot, uint32_t alignment, uint64_t *ret)
{
	if (!alignment_valid(alignment))
		return -EINVAL;
	if (slot > MD_BLOCK_MAX_SLOT)
		return -ERANGE;
	*ret = (uint64_t)(MD_BLOCK_RESERVED_LEASES + slot) * alignment;
	return 0;
}

int md_block_slot_encode(const MdVolume *vol, int version, uint8_t buf[MD_BLOCK_RECORD_SIZE])
{
	size_t len = 0;
	int r;

	memset(buf, 0, MD_BLOCK_RECORD_SIZE);
	r = md_volume_encode(vol, version, (char *)buf, MD_BLOCK_RECORD_SIZE, &len);
	if (r < 0) {
		memset(buf, 0, MD_BLOCK_RECORD_SIZE);
		return r;
	}
	return 0;
}

int md_block_slot_decode(const uint8_t *buf, size_t len, MdVolume *ret)
{
	if (!buf || len < MD_BLOCK_RECORD_SIZE)
		return -EINVAL;
	return md_volume_decode((const char *)buf, MD_BLOCK_RECORD_SIZE, ret);
}
