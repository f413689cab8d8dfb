/*
 * xattr.c: the user.ovstore.* attributes (CONTRACT.md "Attributes").
 *
 * Values are plain text without a trailing newline.  Errors, as the
 * contract's setxattr row says: EPERM for a read-only key, EINVAL for a bad
 * value, ERANGE for a too long one, ENOTSUP for a key we do not know;
 * getxattr of a missing key is ENODATA, of a name outside the user
 * namespace EOPNOTSUPP (user_namespace()).
 *
 * The mount root also answers user.ovstore.status (the JSON of `ovstore
 * status`) and user.ovstore.log (the daemon's recent debug lines).
 */
#include "fs/fs-int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <json-glib/json-glib.h>

#include "common/log.h"
#include "common/banned.h"

#define PREFIX "user.ovstore."
#define XATTR_VALUE_MAX (64 * 1024)

typedef enum Attr {
	A_FORMAT,
	A_ALLOCATION,
	A_CAPACITY,
	A_PARENT,
	A_ROLE,
	A_LEGALITY,
	A_DESCRIPTION,
	A_GENERATION,
	A_IO,
	A_IO_POLICY,
	A_UUID,
	A_TYPE,
	A_CLASS,
	A_VERSION,
	A_SPM,
	A_HOST_ID,
	A_STATUS,
	A_LOG,
	A_MAX,
} Attr;

typedef struct AttrDef {
	const char *key;    /* after the prefix */
	unsigned on;	    /* node kinds it exists on (1 << NodeKind) */
	unsigned writable;  /* node kinds where it can be set */
	bool listed;	    /* shown by listxattr */
} AttrDef;

#define ON(k) (1u << (k))

static const AttrDef attrs[A_MAX] = {
	[A_FORMAT] = { "format", ON(NODE_VOLUME), 0, true },
	[A_ALLOCATION] = { "allocation", ON(NODE_VOLUME), 0, true },
	[A_CAPACITY] = { "capacity", ON(NODE_VOLUME), 0, true },
	[A_PARENT] = { "parent", ON(NODE_VOLUME), 0, true },
	[A_ROLE] = { "role", ON(NODE_VOLUME) | ON(NODE_DOMAIN), 0, true },
	[A_LEGALITY] = { "legality", ON(NODE_VOLUME), ON(NODE_VOLUME), true },
	[A_DESCRIPTION] = { "description", ON(NODE_VOLUME) | ON(NODE_DOMAIN), ON(NODE_VOLUME),
			    true },
	[A_GENERATION] = { "generation", ON(NODE_VOLUME), 0, true },
	[A_IO] = { "io", ON(NODE_VOLUME), 0, true },
	/* Not listed: CONTRACT.md's list of a volume's attributes stays as it is;
	 * ovstore(8) documents it. */
	[A_IO_POLICY] = { "io_policy", ON(NODE_VOLUME) | ON(NODE_IMAGE),
			  ON(NODE_VOLUME) | ON(NODE_IMAGE), false },
	[A_UUID] = { "uuid", ON(NODE_POOL) | ON(NODE_DOMAIN), 0, true },
	[A_TYPE] = { "type", ON(NODE_DOMAIN), 0, true },
	[A_CLASS] = { "class", ON(NODE_DOMAIN), 0, true },
	[A_VERSION] = { "version", ON(NODE_DOMAIN), 0, true },
	[A_SPM] = { "spm", ON(NODE_POOL), ON(NODE_POOL), true },
	[A_HOST_ID] = { "host_id", ON(NODE_POOL), 0, true },
	[A_STATUS] = { "status", ON(NODE_ROOT), 0, false },
	[A_LOG] = { "log", ON(NODE_ROOT), 0, false },
};

/* -ENOTSUP: not one of ours; -ENODATA: ours but not on this kind of node. */
static int find_attr(const char *name, Node *n, Attr *ret)
{
	if (!g_str_has_prefix(name, PREFIX))
		return -ENOTSUP;
	for (int i = 0; i < A_MAX; i++) {
		if (strcmp(name + strlen(PREFIX), attrs[i].key) == 0) {
			*ret = (Attr)i;
			return (attrs[i].on & ON(n->kind)) ? 0 : -ENODATA;
		}
	}
	return -ENOTSUP;
}

static const char *const formats[] = { "raw", "qcow2" };
static const char *const allocations[] = { "preallocated", "sparse", "sparse" };
static const char *const roles[] = { "leaf", "internal", "shared" };
static const char *const legalities[] = { "legal", "illegal", "illegal" };

static int volume_value(Fs *fs, Volume *vol, Attr a, char **ret)
{
	VolumeInfo info;

	vol_get_info(vol, &info);
	if (info.plain)
		return -ENODATA; /* behaviour.md: ISO files have no volume attributes */
	switch (a) {
	case A_FORMAT:
		*ret = g_strdup(formats[info.format % MD_VOL_FORMAT_MAX]);
		break;
	case A_ALLOCATION:
		*ret = g_strdup(allocations[info.type % MD_VOL_TYPE_MAX]);
		break;
	case A_CAPACITY:
		*ret = g_strdup_printf("%" G_GUINT64_FORMAT, info.capacity);
		break;
	case A_PARENT:
		*ret = g_strdup(info.parent);
		break;
	case A_ROLE:
		*ret = g_strdup(roles[info.role % MD_VOL_ROLE_MAX]);
		break;
	case A_LEGALITY:
		*ret = g_strdup(legalities[info.legality % MD_LEGALITY_MAX]);
		break;
	case A_DESCRIPTION:
		*ret = g_strdup(info.description);
		break;
	case A_GENERATION:
		*ret = g_strdup_printf("%u", info.generation);
		break;
	case A_IO:
		*ret = g_strdup(fs_volume_io(fs, vol));
		break;
	case A_IO_POLICY:
		*ret = g_strdup(vol_daemon_io(vol) ? "daemon" : "auto");
		break;
	default:
		return -ENODATA;
	}
	return 0;
}

static int node_value(Fs *fs, Node *n, Attr a, char **ret)
{
	switch (n->kind) {
	case NODE_VOLUME:
		return volume_value(fs, n->vol, a, ret);
	case NODE_DOMAIN: {
		DomainInfo info;

		dom_get_info(n->dom, &info);
		switch (a) {
		case A_DESCRIPTION:
			*ret = g_strdup(info.description);
			break;
		case A_UUID:
			*ret = g_strdup(info.uuid);
			break;
		case A_TYPE:
			*ret = g_strdup(info.type);
			break;
		case A_CLASS:
			*ret = g_strdup(info.cls);
			break;
		case A_VERSION:
			*ret = g_strdup_printf("%d", info.version);
			break;
		case A_ROLE:
			*ret = g_strdup(info.role);
			break;
		default:
			dom_info_release(&info);
			return -ENODATA;
		}
		dom_info_release(&info);
		return 0;
	}
	case NODE_IMAGE:
		if (a != A_IO_POLICY)
			return -ENODATA;
		*ret = g_strdup(img_daemon_io(n->img) ? "daemon" : "auto");
		return 0;
	case NODE_POOL:
		if (a == A_UUID) {
			*ret = g_strdup(pool_uuid(n->pool));
		} else if (a == A_SPM) {
			int spm = pool_spm_host(n->pool);

			*ret = spm < 0 ? g_strdup("") : g_strdup_printf("%d", spm);
		} else if (a == A_HOST_ID) {
			*ret = g_strdup_printf("%u", storage_host_id(fs->st));
		} else {
			return -ENODATA;
		}
		return 0;
	case NODE_ROOT:
		if (a == A_STATUS)
			*ret = fs_status_json(fs);
		else if (a == A_LOG)
			*ret = log_ring_dump();
		else
			return -ENODATA;
		return 0;
	default:
		return -ENODATA;
	}
}

static void reply_value(fuse_req_t req, const char *value, size_t size)
{
	size_t len = strlen(value);

	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, len);
}

/*
 * Whether name is in the user namespace, the only one ovstore keeps.  A
 * missing user attribute is ENODATA (CONTRACT.md); the other namespaces
 * (security., system. for POSIX ACLs, trusted.) are not supported at all,
 * as on a file system mounted without them: EOPNOTSUPP.  Tools remember
 * that per file system, so `ls -l` asks the daemon for an ACL and an
 * SELinux label once, not three times per entry.
 */
static bool user_namespace(const char *name)
{
	return g_str_has_prefix(name, "user.");
}

void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	Fs *fs = fuse_req_userdata(req);
	Node *n = node_get(fs, ino);
	g_autofree char *value = NULL;
	Attr a;
	int r;

	atomic_fetch_add_explicit(&fs->n_getxattr, 1, memory_order_relaxed);
	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	r = find_attr(name, n, &a);
	if (r == 0)
		r = node_value(fs, n, a, &value);
	if (r < 0) {
		fuse_reply_err(req, user_namespace(name) ? ENODATA : EOPNOTSUPP);
		return;
	}
	reply_value(req, value, size);
}

static int parse_legality(const char *value, MdLegality *ret)
{
	if (strcmp(value, "legal") == 0)
		*ret = MD_LEGALITY_LEGAL;
	else if (strcmp(value, "illegal") == 0)
		*ret = MD_LEGALITY_ILLEGAL;
	else
		return -EINVAL;
	return 0;
}

static int set_value(Node *n, Attr a, const char *value)
{
	if (n->kind == NODE_VOLUME && a == A_LEGALITY) {
		MdLegality l;
		int r = parse_legality(value, &l);

		return r < 0 ? r : vol_set_legality(n->vol, l);
	}
	if (n->kind == NODE_VOLUME && a == A_DESCRIPTION)
		return vol_set_description(n->vol, value);
	if (a == A_IO_POLICY) {
		VolumeInfo info = { 0 };

		if (n->kind == NODE_VOLUME)
			vol_get_info(n->vol, &info);
		if (info.plain)
			return -ENOTSUP; /* ISO files have no volume attributes */
		if (strcmp(value, "daemon") != 0 && strcmp(value, "auto") != 0)
			return -EINVAL;
		if (n->kind == NODE_VOLUME)
			vol_set_daemon_io(n->vol, value[0] == 'd');
		else
			img_set_daemon_io(n->img, value[0] == 'd');
		return 0;
	}
	if (n->kind == NODE_POOL && a == A_SPM) {
		if (strcmp(value, "release") != 0)
			return -EINVAL;
		return pool_spm_release(n->pool);
	}
	return -EPERM;
}

void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags)
{
	Fs *fs = fuse_req_userdata(req);
	Node *n = node_get(fs, ino);
	g_autofree char *text = NULL;
	Attr a;
	int r;

	(void)flags;
	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	r = find_attr(name, n, &a);
	if (r == -ENODATA) {
		/* Ours, but not something this kind of node has. */
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	if (r < 0) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	if (!(attrs[a].writable & ON(n->kind))) {
		fuse_reply_err(req, EPERM); /* CONTRACT: read-only key */
		return;
	}
	if (size > XATTR_VALUE_MAX || memchr(value, '\0', size)) {
		fuse_reply_err(req, size > XATTR_VALUE_MAX ? ERANGE : EINVAL);
		return;
	}
	text = g_strndup(value, size);
	r = set_value(n, a, text);
	fuse_reply_err(req, r < 0 ? -r : 0);
}

void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	Fs *fs = fuse_req_userdata(req);
	Node *n = node_get(fs, ino);
	g_autoptr(GString) list = g_string_new(NULL);
	VolumeInfo info = { 0 };

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (n->kind == NODE_VOLUME)
		vol_get_info(n->vol, &info);
	for (int i = 0; i < A_MAX && !info.plain; i++) {
		if ((attrs[i].on & ON(n->kind)) && attrs[i].listed) {
			g_string_append(list, PREFIX);
			g_string_append(list, attrs[i].key);
			g_string_append_c(list, '\0');
		}
	}
	if (size == 0)
		fuse_reply_xattr(req, list->len);
	else if (list->len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, list->str, list->len);
}

void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	Fs *fs = fuse_req_userdata(req);
	Node *n = node_get(fs, ino);
	Attr a;
	int r;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	r = find_attr(name, n, &a);
	if (r == 0)
		fuse_reply_err(req, EPERM); /* the attributes always exist */
	else if (r == -ENODATA)
		fuse_reply_err(req, ENODATA);
	else if (g_str_has_prefix(name, PREFIX) || !user_namespace(name))
		fuse_reply_err(req, ENOTSUP);
	else
		fuse_reply_err(req, ENODATA);
}

char *fs_status_json(Fs *fs)
{
	g_autoptr(JsonObject) obj = storage_status(fs->st);
	g_autoptr(JsonObject) req = json_object_new();
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

	json_object_set_boolean_member(obj, "passthrough", fs->passthrough_ok);
	json_object_set_string_member(obj, "engine", engine_name(fs));
	json_object_set_string_member(obj, "transport", ring_active(fs) ? "io_uring" : "dev");
	{
		uint64_t fast, pool;

		ring_counts(fs, &fast, &pool);
		json_object_set_int_member(req, "ring_direct", (gint64)fast);
		json_object_set_int_member(req, "ring_workers", (gint64)pool);
	}
	json_object_set_int_member(req, "read", (gint64)atomic_load(&fs->n_read));
	json_object_set_int_member(req, "write", (gint64)atomic_load(&fs->n_write));
	json_object_set_int_member(req, "async", (gint64)atomic_load(&fs->n_async));
	json_object_set_int_member(req, "fixed", (gint64)atomic_load(&fs->n_fixed));
	json_object_set_int_member(req, "getxattr", (gint64)atomic_load(&fs->n_getxattr));
	json_object_set_object_member(obj, "requests", json_object_ref(req));
	json_node_set_object(node, obj);
	return json_to_string(node, TRUE);
}
