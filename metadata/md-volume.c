/*
 * md-volume: the volume metadata record (reference section 7).  See
 * md-volume.h.
 *
 * Parsing follows VDSM's VolumeMetadata.from_lines(): stop at the first
 * line starting with "EOF", skip lines without '=', split on the first '=',
 * strip key and value.  Unlike VDSM we also check every value against its
 * domain, because a record we cannot trust must make the volume illegal
 * rather than reach a path name or a size computation.
 */
#include "metadata/md-volume.h"

#include <errno.h>
#include <string.h>
#include <glib.h>

#include "common/log.h"
#include "common/names.h"
#include "common/parse.h"

#include "common/banned.h"

#define SECTOR 512u

static const char *const format_names[MD_VOL_FORMAT_MAX] = {
	[MD_VOL_FORMAT_RAW] = "RAW",
	[MD_VOL_FORMAT_COW] = "COW",
};

static const char *const type_names[MD_VOL_TYPE_MAX] = {
	[MD_VOL_TYPE_PREALLOCATED] = "PREALLOCATED",
	[MD_VOL_TYPE_SPARSE] = "SPARSE",
	[MD_VOL_TYPE_UNKNOWN] = "UNKNOWN",
};

static const char *const role_names[MD_VOL_ROLE_MAX] = {
	[MD_VOL_ROLE_LEAF] = "LEAF",
	[MD_VOL_ROLE_INTERNAL] = "INTERNAL",
	[MD_VOL_ROLE_SHARED] = "SHARED",
};

static const char *const legality_names[MD_LEGALITY_MAX] = {
	[MD_LEGALITY_LEGAL] = "LEGAL",
	[MD_LEGALITY_ILLEGAL] = "ILLEGAL",
	[MD_LEGALITY_FAKE] = "FAKE",
};

const char *md_vol_format_to_string(MdVolFormat f)
{
	return (unsigned)f < MD_VOL_FORMAT_MAX ? format_names[f] : NULL;
}

const char *md_vol_type_to_string(MdVolType t)
{
	return (unsigned)t < MD_VOL_TYPE_MAX ? type_names[t] : NULL;
}

const char *md_vol_role_to_string(MdVolRole r)
{
	return (unsigned)r < MD_VOL_ROLE_MAX ? role_names[r] : NULL;
}

const char *md_legality_to_string(MdLegality l)
{
	return (unsigned)l < MD_LEGALITY_MAX ? legality_names[l] : NULL;
}

/* The keys we read; the order of this enum is irrelevant. */
enum {
	K_CAP,
	K_CTIME,
	K_DESCRIPTION,
	K_DISKTYPE,
	K_DOMAIN,
	K_FORMAT,
	K_GEN,
	K_IMAGE,
	K_LEGALITY,
	K_PUUID,
	K_SEQ,
	K_SIZE,
	K_TYPE,
	K_VOLTYPE,
	K_NONE,
	K__MAX,
};

static const char *const key_names[K__MAX] = {
	[K_CAP] = "CAP",	 [K_CTIME] = "CTIME",	    [K_DESCRIPTION] = "DESCRIPTION",
	[K_DISKTYPE] = "DISKTYPE", [K_DOMAIN] = "DOMAIN", [K_FORMAT] = "FORMAT",
	[K_GEN] = "GEN",	 [K_IMAGE] = "IMAGE",	    [K_LEGALITY] = "LEGALITY",
	[K_PUUID] = "PUUID",	 [K_SEQ] = "SEQ",	    [K_SIZE] = "SIZE",
	[K_TYPE] = "TYPE",	 [K_VOLTYPE] = "VOLTYPE",   [K_NONE] = "NONE",
};

/* ASCII white space: what Python's strip() removes that can occur here. */
static bool is_ws(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static void strip(const char **s, size_t *len)
{
	while (*len > 0 && is_ws(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_ws((*s)[*len - 1]))
		(*len)--;
}

static int bad(const char *key, const char *what)
{
	log_debug(LOG_CLASS_METADATA, "volume metadata: %s %s", key, what);
	return -EUCLEAN;
}

static int parse_enum(char *const *vals, int key, const char *const *names, int n, int *ret)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(vals[key], names[i]) == 0) {
			*ret = i;
			return 0;
		}
	}
	return bad(key_names[key], "has an unknown value");
}

/* DISKTYPE is kept as written: the engine adds values over time. */
static bool disktype_is_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len >= sizeof(((MdVolume *)NULL)->disktype))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!g_ascii_isalnum(s[i]))
			return false;
	return true;
}

static int fill(char *const *vals, MdVolume *vol)
{
	static const int required[] = { K_DOMAIN, K_IMAGE,    K_PUUID,	     K_FORMAT,
					K_TYPE,	  K_VOLTYPE,  K_DISKTYPE,    K_DESCRIPTION,
					K_LEGALITY, K_CTIME };
	int e;

	for (size_t i = 0; i < G_N_ELEMENTS(required); i++)
		if (!vals[required[i]])
			return bad(key_names[required[i]], "is missing");

	if (vals[K_CAP]) {
		if (parse_u64(vals[K_CAP], &vol->capacity) < 0)
			return bad("CAP", "is not a number");
	} else if (vals[K_SIZE]) {
		uint64_t sectors;

		if (parse_u64(vals[K_SIZE], &sectors) < 0 || sectors > UINT64_MAX / SECTOR)
			return bad("SIZE", "is not a sector count");
		vol->capacity = sectors * SECTOR;
	} else {
		return bad("CAP/SIZE", "is missing");
	}
	if (vol->capacity > INT64_MAX)
		return bad("CAP", "is too large");

	if (parse_i64(vals[K_CTIME], &vol->ctime) < 0)
		return bad("CTIME", "is not a number");

	/* The whole record is <= 512 bytes, so the description always fits. */
	g_strlcpy(vol->description, vals[K_DESCRIPTION], sizeof(vol->description));

	if (!disktype_is_valid(vals[K_DISKTYPE]))
		return bad("DISKTYPE", "has a bad value");
	g_strlcpy(vol->disktype, vals[K_DISKTYPE], sizeof(vol->disktype));

	if (!uuid_normalize(vals[K_DOMAIN], vol->domain))
		return bad("DOMAIN", "is not a UUID");
	/* Kept as written (case included), so a record re-encodes byte for byte. */
	g_strlcpy(vol->domain, vals[K_DOMAIN], sizeof(vol->domain));

	if (strlen(vals[K_IMAGE]) > MD_VOLUME_NAME_MAX || !name_is_valid(vals[K_IMAGE]))
		return bad("IMAGE", "is not a valid name");
	g_strlcpy(vol->image, vals[K_IMAGE], sizeof(vol->image));

	if (strcmp(vals[K_PUUID], BLANK_UUID) == 0) {
		vol->parent[0] = '\0';
	} else {
		if (strlen(vals[K_PUUID]) > MD_VOLUME_NAME_MAX || !name_is_valid(vals[K_PUUID]))
			return bad("PUUID", "is not a valid name");
		g_strlcpy(vol->parent, vals[K_PUUID], sizeof(vol->parent));
	}

	if (parse_enum(vals, K_FORMAT, format_names, MD_VOL_FORMAT_MAX, &e) < 0)
		return -EUCLEAN;
	vol->format = (MdVolFormat)e;
	if (parse_enum(vals, K_TYPE, type_names, MD_VOL_TYPE_MAX, &e) < 0)
		return -EUCLEAN;
	vol->type = (MdVolType)e;
	if (parse_enum(vals, K_VOLTYPE, role_names, MD_VOL_ROLE_MAX, &e) < 0)
		return -EUCLEAN;
	vol->role = (MdVolRole)e;
	if (parse_enum(vals, K_LEGALITY, legality_names, MD_LEGALITY_MAX, &e) < 0)
		return -EUCLEAN;
	vol->legality = (MdLegality)e;

	vol->generation = 0;
	if (vals[K_GEN] && (parse_u32(vals[K_GEN], &vol->generation) < 0 ||
			    vol->generation >= MD_VOLUME_GEN_MODULO))
		return bad("GEN", "is out of range");
	vol->seq = 0;
	if (vals[K_SEQ] && parse_u32(vals[K_SEQ], &vol->seq) < 0)
		return bad("SEQ", "is out of range");
	return 0;
}

int md_volume_decode(const char *buf, size_t len, MdVolume *ret)
{
	char *vals[K__MAX] = { NULL };
	const char *p, *end;
	MdVolume vol;
	int r;

	if (!buf && len)
		return -EINVAL;
	while (len > 0 && buf[len - 1] == '\0')
		len--;
	if (len == 0)
		return -ENODATA;
	if (len > MD_VOLUME_RECORD_SIZE)
		return bad("record", "is longer than 512 bytes");
	if (memchr(buf, '\0', len))
		return bad("record", "contains NUL bytes");

	memset(&vol, 0, sizeof(vol));
	p = buf;
	end = buf + len;
	r = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t llen = (size_t)((nl ? nl : end) - p);
		const char *eq, *k, *v;
		size_t klen, vlen;

		if (!g_utf8_validate(p, (gssize)llen, NULL)) {
			r = bad("record", "has a line that is not UTF-8");
			goto out;
		}
		if (llen >= 3 && memcmp(p, "EOF", 3) == 0)
			break;
		eq = memchr(p, '=', llen);
		if (eq) {
			k = p;
			klen = (size_t)(eq - p);
			v = eq + 1;
			vlen = llen - klen - 1;
			strip(&k, &klen);
			strip(&v, &vlen);
			for (int i = 0; i < K__MAX; i++) {
				if (strlen(key_names[i]) == klen &&
				    memcmp(key_names[i], k, klen) == 0) {
					g_free(vals[i]);
					vals[i] = g_strndup(v, vlen);
					break;
				}
			}
		}
		p = nl ? nl + 1 : end;
	}
	if (vals[K_NONE]) {
		/* Cleared by VDSM < 4.2.5: "NONE=###...\nEOF\n". */
		r = -ENODATA;
		goto out;
	}
	r = fill(vals, &vol);
	if (r == 0)
		*ret = vol;
out:
	for (int i = 0; i < K__MAX; i++)
		g_free(vals[i]);
	return r;
}

static bool text_is_valid(const char *s)
{
	return g_utf8_validate(s, -1, NULL) && !strchr(s, '\n');
}

int md_volume_encode(const MdVolume *vol, int domain_version, char *buf, size_t buflen,
		     size_t *ret_len)
{
	g_autoptr(GString) s = g_string_sized_new(MD_VOLUME_RECORD_SIZE);
	const char *format = md_vol_format_to_string(vol->format);
	const char *type = md_vol_type_to_string(vol->type);
	const char *role = md_vol_role_to_string(vol->role);
	const char *legality = md_legality_to_string(vol->legality);
	const char *parent = vol->parent[0] ? vol->parent : BLANK_UUID;
	bool v5 = domain_version >= 5;

	if (!format || !type || !role || !legality)
		return -EINVAL;
	if (!memchr(vol->description, '\0', sizeof(vol->description)) ||
	    !memchr(vol->disktype, '\0', sizeof(vol->disktype)) ||
	    !memchr(vol->domain, '\0', sizeof(vol->domain)) ||
	    !memchr(vol->image, '\0', sizeof(vol->image)) ||
	    !memchr(vol->parent, '\0', sizeof(vol->parent)))
		return -EINVAL;
	if (!text_is_valid(vol->description) || !text_is_valid(vol->disktype) ||
	    !text_is_valid(vol->domain) || !text_is_valid(vol->image) || !text_is_valid(parent))
		return -EINVAL;

	/* Keys in sorted order, as VDSM's storage_format() writes them. */
	if (v5)
		g_string_append_printf(s, "CAP=%" G_GUINT64_FORMAT "\n", vol->capacity);
	g_string_append_printf(s, "CTIME=%" G_GINT64_FORMAT "\n", vol->ctime);
	g_string_append_printf(s, "DESCRIPTION=%s\n", vol->description);
	g_string_append_printf(s, "DISKTYPE=%s\n", vol->disktype);
	g_string_append_printf(s, "DOMAIN=%s\n", vol->domain);
	g_string_append_printf(s, "FORMAT=%s\n", format);
	g_string_append_printf(s, "GEN=%u\n", (unsigned)vol->generation);
	g_string_append_printf(s, "IMAGE=%s\n", vol->image);
	g_string_append_printf(s, "LEGALITY=%s\n", legality);
	if (!v5)
		g_string_append(s, "MTIME=0\n");
	g_string_append_printf(s, "PUUID=%s\n", parent);
	if (v5)
		g_string_append_printf(s, "SEQ=%u\n", (unsigned)vol->seq);
	else
		/* SIZE is in sectors; capacities are 4 KiB multiples, round up anyway. */
		g_string_append_printf(s, "SIZE=%" G_GUINT64_FORMAT "\n",
				       vol->capacity / SECTOR + (vol->capacity % SECTOR != 0));
	g_string_append_printf(s, "TYPE=%s\n", type);
	g_string_append_printf(s, "VOLTYPE=%s\n", role);
	g_string_append(s, "EOF\n");

	if (s->len > MD_VOLUME_RECORD_SIZE || s->len > buflen)
		return -ERANGE;
	memcpy(buf, s->str, s->len);
	if (ret_len)
		*ret_len = s->len;
	return 0;
}
