/*
 * md-domain: typed view of domain metadata (reference sections 4 and 11).
 * See md-domain.h.
 */
#include "metadata/md-domain.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/names.h"
#include "common/parse.h"

#include "common/banned.h"

#define MIB (1024u * 1024u)

/* sd.DEFAULT_LEASE_PARAMS */
#define DEFAULT_IO_OP_TIMEOUT_SEC 10
#define DEFAULT_LEASE_RETRIES 3
#define DEFAULT_LEASE_TIME_SEC 60
#define DEFAULT_LOCK_RENEWAL_INTERVAL_SEC 5

static const char *const sd_type_names[MD_SD_TYPE_MAX] = {
	[MD_SD_TYPE_UNKNOWN] = "UNKNOWN", [MD_SD_TYPE_NFS] = "NFS",
	[MD_SD_TYPE_FCP] = "FCP",	  [MD_SD_TYPE_ISCSI] = "ISCSI",
	[MD_SD_TYPE_LOCALFS] = "LOCALFS", [MD_SD_TYPE_CIFS] = "CIFS",
	[MD_SD_TYPE_POSIXFS] = "POSIXFS", [MD_SD_TYPE_GLUSTERFS] = "GLUSTERFS",
};

static const char *const sd_class_names[MD_SD_CLASS_MAX] = {
	[MD_SD_CLASS_DATA] = "Data",
	[MD_SD_CLASS_ISO] = "Iso",
	[MD_SD_CLASS_BACKUP] = "Backup",
};

static const char *const sd_role_names[MD_SD_ROLE_MAX] = {
	[MD_SD_ROLE_REGULAR] = "Regular",
	[MD_SD_ROLE_MASTER] = "Master",
};

const char *md_sd_type_to_string(MdSdType t)
{
	return (unsigned)t < MD_SD_TYPE_MAX ? sd_type_names[t] : "UNKNOWN";
}

const char *md_sd_class_to_string(MdSdClass c)
{
	return (unsigned)c < MD_SD_CLASS_MAX ? sd_class_names[c] : "UNKNOWN";
}

const char *md_sd_role_to_string(MdSdRole r)
{
	return (unsigned)r < MD_SD_ROLE_MAX ? sd_role_names[r] : "UNKNOWN";
}

/* Index of s in names[0..n), or -1. */
static int lookup(const char *const *names, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], s) == 0)
			return i;
	return -1;
}

static bool sd_type_is_block(MdSdType t)
{
	return t == MD_SD_TYPE_FCP || t == MD_SD_TYPE_ISCSI;
}

static bool sd_type_is_file(MdSdType t)
{
	return t == MD_SD_TYPE_NFS || t == MD_SD_TYPE_LOCALFS || t == MD_SD_TYPE_CIFS ||
	       t == MD_SD_TYPE_POSIXFS || t == MD_SD_TYPE_GLUSTERFS;
}

void md_domain_info_free(MdDomainInfo *info)
{
	if (!info)
		return;
	g_free(info->description);
	g_strfreev(info->pools);
	g_free(info->vg_uuid);
	g_free(info->pool_description);
	g_free(info->pool_domains);
	g_free(info);
}

static int bad_key(const char *key, const char *value)
{
	log_debug(LOG_CLASS_METADATA, "domain metadata key %s has bad value '%s'", key,
		  value ? value : "(missing)");
	return -EUCLEAN;
}

/* POOL_UUID: comma-separated; "" and the blank UUID are dropped. */
static int parse_pools(const char *value, char ***ret)
{
	g_autoptr(GPtrArray) pools = g_ptr_array_new_with_free_func(g_free);
	g_auto(GStrv) items = g_strsplit(value, ",", -1);

	for (char **it = items; *it; it++) {
		char norm[UUID_STR_LEN + 1];

		if (!**it || strcmp(*it, BLANK_UUID) == 0)
			continue;
		if (!uuid_normalize(*it, norm))
			return -EUCLEAN;
		g_ptr_array_add(pools, g_strdup(norm));
	}
	g_ptr_array_add(pools, NULL);
	*ret = (char **)g_ptr_array_free(g_steal_pointer(&pools), FALSE);
	return 0;
}

static bool status_is_valid(const char *s, size_t len)
{
	if (len == 0 || len >= sizeof(((MdPoolDomain *)NULL)->status))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!g_ascii_isalnum(s[i]))
			return false;
	return true;
}

/* POOL_DOMAINS: "<sdUUID>:<Status>,..."; empty items skipped (VDSM does). */
static int parse_pool_domains(const char *value, MdPoolDomain **ret, size_t *ret_n)
{
	g_auto(GStrv) items = g_strsplit(value, ",", -1);
	guint n = g_strv_length(items);
	g_autofree MdPoolDomain *doms = g_new0(MdPoolDomain, n ? n : 1);
	size_t count = 0;

	for (char **it = items; *it; it++) {
		const char *colon = strchr(*it, ':');
		g_autofree char *uuid = NULL;
		size_t slen;

		if (!**it)
			continue;
		if (!colon)
			return -EUCLEAN;
		uuid = g_strndup(*it, (gsize)(colon - *it));
		if (!uuid_normalize(uuid, doms[count].uuid))
			return -EUCLEAN;
		slen = strlen(colon + 1);
		if (!status_is_valid(colon + 1, slen))
			return -EUCLEAN;
		memcpy(doms[count].status, colon + 1, slen + 1);
		count++;
	}
	*ret = g_steal_pointer(&doms);
	*ret_n = count;
	return 0;
}

static int parse_enum(const MdKv *kv, const char *key, const char *const *names, int n,
		      int *ret)
{
	const char *v = md_kv_get(kv, key);
	int i;

	if (!v)
		return bad_key(key, v);
	i = lookup(names, n, v);
	if (i < 0)
		return bad_key(key, v);
	*ret = i;
	return 0;
}

/* An optional int64 key: default when absent, -EUCLEAN when not a number. */
static int parse_opt_i64(const MdKv *kv, const char *key, int64_t def, int64_t *ret)
{
	const char *v = md_kv_get(kv, key);

	if (!v) {
		*ret = def;
		return 0;
	}
	if (parse_i64(v, ret) < 0)
		return bad_key(key, v);
	return 0;
}

static int parse_geometry(const MdKv *kv, MdDomainInfo *info)
{
	const char *bs = md_kv_get(kv, "BLOCK_SIZE");
	const char *al = md_kv_get(kv, "ALIGNMENT");

	info->block_size = 512;
	info->alignment = MIB;
	if (bs && (parse_u32(bs, &info->block_size) < 0 ||
		   (info->block_size != 512 && info->block_size != 4096)))
		return bad_key("BLOCK_SIZE", bs);
	if (al && (parse_u32(al, &info->alignment) < 0 ||
		   (info->alignment != MIB && info->alignment != 2 * MIB &&
		    info->alignment != 4 * MIB && info->alignment != 8 * MIB)))
		return bad_key("ALIGNMENT", al);
	/* Reference 2 and 9.2: 512-byte sectors only with 1 MiB; v < 5 only 512/1 MiB. */
	if (info->block_size == 512 && info->alignment != MIB)
		return bad_key("ALIGNMENT", al);
	if (info->version < 5 && (info->block_size != 512 || info->alignment != MIB))
		return bad_key("BLOCK_SIZE", bs);
	return 0;
}

static int parse_pool_keys(const MdKv *kv, MdDomainInfo *info)
{
	const char *mv = md_kv_get(kv, "MASTER_VERSION");
	const char *v;
	int r;

	if (!mv)
		return 0;
	info->has_pool_keys = true;
	if (parse_i64(mv, &info->master_version) < 0)
		return bad_key("MASTER_VERSION", mv);
	v = md_kv_get(kv, "POOL_DESCRIPTION");
	info->pool_description = g_strdup(v ? v : "");
	v = md_kv_get(kv, "POOL_DOMAINS");
	r = parse_pool_domains(v ? v : "", &info->pool_domains, &info->n_pool_domains);
	if (r < 0)
		return bad_key("POOL_DOMAINS", v);
	r = parse_opt_i64(kv, "POOL_SPM_ID", -1, &info->spm_id);
	if (r < 0)
		return r;
	return parse_opt_i64(kv, "POOL_SPM_LVER", -1, &info->spm_lver);
}

int md_domain_parse(const MdKv *kv, MdDomainInfo **ret)
{
	g_autoptr(MdDomainInfo) info = g_new0(MdDomainInfo, 1);
	const char *v;
	int e, r;

	v = md_kv_get(kv, "VERSION");
	if (!v || parse_int(v, &info->version) < 0)
		return bad_key("VERSION", v);
	if (info->version != 0 && (info->version < 2 || info->version > 5)) {
		log_debug(LOG_CLASS_METADATA, "unknown domain version %d", info->version);
		return -EPROTONOSUPPORT;
	}

	v = md_kv_get(kv, "SDUUID");
	if (!v || !uuid_normalize(v, info->uuid))
		return bad_key("SDUUID", v);

	r = parse_enum(kv, "TYPE", sd_type_names, MD_SD_TYPE_MAX, &e);
	if (r < 0)
		return r;
	info->type = (MdSdType)e;
	r = parse_enum(kv, "CLASS", sd_class_names, MD_SD_CLASS_MAX, &e);
	if (r < 0)
		return r;
	info->cls = (MdSdClass)e;
	r = parse_enum(kv, "ROLE", sd_role_names, MD_SD_ROLE_MAX, &e);
	if (r < 0)
		return r;
	info->role = (MdSdRole)e;

	v = md_kv_get(kv, "DESCRIPTION");
	info->description = g_strdup(v ? v : "");

	v = md_kv_get(kv, "POOL_UUID");
	r = parse_pools(v ? v : "", &info->pools);
	if (r < 0)
		return bad_key("POOL_UUID", v);

	r = parse_geometry(kv, info);
	if (r < 0)
		return r;

	v = md_kv_get(kv, "VGUUID");
	info->vg_uuid = sd_type_is_block(info->type) && v ? g_strdup(v) : NULL;

	info->spm_id = -1;
	info->spm_lver = -1;
	r = parse_pool_keys(kv, info);
	if (r < 0)
		return r;

	/* Lease parameters are not ours to police: VDSM's intOrDefault(). */
	v = md_kv_get(kv, "IOOPTIMEOUTSEC");
	if (!v || parse_int(v, &info->io_op_timeout_sec) < 0 || info->io_op_timeout_sec <= 0)
		info->io_op_timeout_sec = DEFAULT_IO_OP_TIMEOUT_SEC;

	*ret = g_steal_pointer(&info);
	return 0;
}

static void set_lease_params(MdKv *kv)
{
	md_kv_set_int(kv, "IOOPTIMEOUTSEC", DEFAULT_IO_OP_TIMEOUT_SEC);
	md_kv_set_int(kv, "LEASERETRIES", DEFAULT_LEASE_RETRIES);
	md_kv_set_int(kv, "LEASETIMESEC", DEFAULT_LEASE_TIME_SEC);
	md_kv_set_int(kv, "LOCKRENEWALINTERVALSEC", DEFAULT_LOCK_RENEWAL_INTERVAL_SEC);
}

MdKv *md_domain_new_kv(const MdDomainNew *p)
{
	MdKv *kv = md_kv_new();

	g_assert(p && p->uuid);
	md_kv_set_int(kv, "ALIGNMENT", p->alignment);
	md_kv_set_int(kv, "BLOCK_SIZE", p->block_size);
	md_kv_set(kv, "CLASS", md_sd_class_to_string(p->cls));
	md_kv_set(kv, "DESCRIPTION", p->description ? p->description : "");
	set_lease_params(kv);
	md_kv_set(kv, "LOCKPOLICY", "");
	md_kv_set(kv, "POOL_UUID", "");
	if (sd_type_is_file(p->type) && p->remote_path)
		md_kv_set(kv, "REMOTE_PATH", p->remote_path);
	md_kv_set(kv, "ROLE", md_sd_role_to_string(MD_SD_ROLE_REGULAR));
	md_kv_set(kv, "SDUUID", p->uuid);
	md_kv_set(kv, "TYPE", md_sd_type_to_string(p->type));
	md_kv_set_int(kv, "VERSION", 5);
	if (sd_type_is_block(p->type) && p->vg_uuid)
		md_kv_set(kv, "VGUUID", p->vg_uuid);
	return kv;
}

/*
 * Pool creation (reference 11): the pool keys, then the lease parameters
 * (LOCKPOLICY=ON and VDSM's defaults), POOL_UUID and ROLE=Master.
 */
void md_domain_make_master(MdKv *kv, const char *pool_uuid, const char *pool_description,
			   int64_t master_version)
{
	const char *sd = md_kv_get(kv, "SDUUID");
	g_autofree char *doms = g_strdup_printf("%s:Active", sd ? sd : "");

	md_kv_set_int(kv, "POOL_SPM_ID", -1);
	md_kv_set_int(kv, "POOL_SPM_LVER", -1);
	md_kv_set_int(kv, "MASTER_VERSION", master_version);
	md_kv_set(kv, "POOL_DESCRIPTION", pool_description ? pool_description : "");
	md_kv_set(kv, "POOL_DOMAINS", sd ? doms : "");
	md_kv_set(kv, "LOCKPOLICY", "ON");
	set_lease_params(kv);
	md_kv_set(kv, "POOL_UUID", pool_uuid);
	md_kv_set(kv, "ROLE", md_sd_role_to_string(MD_SD_ROLE_MASTER));
}

/*
 * Only ISO domains may belong to several pools; they get the pool added.
 * Any other domain belongs to exactly pool_uuid afterwards.
 */
void md_domain_attach(MdKv *kv, const char *pool_uuid)
{
	const char *cls = md_kv_get(kv, "CLASS");
	const char *cur = md_kv_get(kv, "POOL_UUID");

	if (cls && strcmp(cls, md_sd_class_to_string(MD_SD_CLASS_ISO)) == 0 && cur) {
		g_auto(GStrv) items = g_strsplit(cur, ",", -1);
		g_autoptr(GString) s = g_string_new(NULL);

		for (char **it = items; *it; it++) {
			if (!**it || strcmp(*it, BLANK_UUID) == 0 || strcmp(*it, pool_uuid) == 0)
				continue;
			g_string_append_printf(s, "%s,", *it);
		}
		g_string_append(s, pool_uuid);
		md_kv_set(kv, "POOL_UUID", s->str);
	} else {
		md_kv_set(kv, "POOL_UUID", pool_uuid);
	}
	md_kv_set(kv, "ROLE", md_sd_role_to_string(MD_SD_ROLE_REGULAR));
}

void md_domain_set_pool_domains(MdKv *kv, const MdPoolDomain *doms, size_t n)
{
	g_autoptr(GString) s = g_string_new(NULL);

	for (size_t i = 0; i < n; i++)
		g_string_append_printf(s, "%s%s:%s", i ? "," : "", doms[i].uuid, doms[i].status);
	md_kv_set(kv, "POOL_DOMAINS", s->str);
}
