/*
 * create.c: formatting a file domain (reference section 5, "Creation order
 * of a file domain"), as numbered steps with an undo ladder and a fault
 * point each (STYLE.md 3, 9).
 */
#include "domain/create.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <glib.h>

#include "common/cleanup.h"
#include "common/fault.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/names.h"
#include "domain/block-int.h"
#include "domain/model-int.h"
#include "block/mkfs.h"
#include "lease/lease.h"
#include "metadata/md-block.h"
#include "metadata/md-domain.h"
#include "metadata/md-kv.h"
#include "metadata/md-mailbox.h"
#include "metadata/md-xleases.h"
#include "common/banned.h"

#define NFS_SUPER_MAGIC 0x6969
#define VDSM_UID 36 /* vdsm */
#define VDSM_GID 36 /* kvm */
#define MAILBOX_SIZE (16 * 1024 * 1024)
#define ALIGNMENT (1024 * 1024)
#define CREATE_LOCK ".ovstore-create.lock"
#define DESCRIPTION_MAX 50

typedef struct PoolScan {
	char *master;	     /* the pool's master domain dir, NULL when none */
	char **master_devs;  /* or the PVs of a block master domain (g_strv) */
	char *master_vg;
	unsigned n_members; /* domains that list the pool */
} PoolScan;

static int fail(char **ret_error, int r, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static int fail(char **ret_error, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	*ret_error = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	return r;
}

static int read_domain_kv(const char *dirpath, MdKv **ret_kv, MdDomainInfo **ret_info)
{
	g_autofree char *path = g_build_filename(dirpath, "dom_md", "metadata", NULL);
	g_autofree char *text = NULL;
	g_autoptr(MdKv) kv = NULL;
	size_t len = 0;
	int r;

	r = file_read_all(AT_FDCWD, path, MD_KV_MAX_TEXT, &text, &len);
	if (r < 0)
		return r;
	r = md_kv_decode(text, len, &kv);
	if (r < 0)
		return r;
	r = md_domain_parse(kv, ret_info);
	if (r < 0)
		return r;
	*ret_kv = g_steal_pointer(&kv);
	return 0;
}

/* The block storages: the domains on them (devices grouped by VG). */
static int scan_block(GPtrArray *devs, const char *uuid, const char *pool, PoolScan *ret,
		      char **ret_error)
{
	g_autoptr(GHashTable) vgs = NULL;
	GHashTableIter it;
	gpointer key, value;
	int r;

	if (devs->len == 0)
		return 0;
	r = blockdom_group((const char *const *)devs->pdata, devs->len, &vgs, NULL);
	if (r < 0)
		return fail(ret_error, r, "storage '%s': %s", (const char *)devs->pdata[0],
			    *blk_lvm_last_error() ? blk_lvm_last_error() : g_strerror(-r));
	g_hash_table_iter_init(&it, vgs);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		const char *vg = key;
		GPtrArray *paths = value;
		g_autoptr(BlockDom) bd = NULL;
		g_autoptr(MdKv) kv = NULL;
		g_autoptr(MdDomainInfo) info = NULL;

		if (strcmp(vg, uuid) == 0)
			return fail(ret_error, -EEXIST, "domain '%s' already exists on '%s'", uuid,
				    (const char *)paths->pdata[0]);
		if (!uuid_is_valid(vg) ||
		    blockdom_open((const char *const *)paths->pdata, paths->len, vg, &bd) < 0 ||
		    blockdom_read_kv(bd, NULL, &kv) < 0 || md_domain_parse(kv, &info) < 0)
			continue;
		for (char **pu = info->pools; pu && *pu; pu++) {
			if (strcmp(*pu, pool) != 0)
				continue;
			ret->n_members++;
			if (info->role == MD_SD_ROLE_MASTER && !ret->master && !ret->master_devs) {
				g_ptr_array_add(paths, NULL);
				ret->master_devs = g_strdupv((char **)paths->pdata);
				g_ptr_array_remove_index(paths, paths->len - 1);
				ret->master_vg = g_strdup(vg);
			}
		}
	}
	return 0;
}

/* Looks through the storage paths for domains of the pool. */
static int scan_pool(const DomainCreateOptions *opt, const char *uuid, PoolScan *ret,
		     char **ret_error)
{
	g_autoptr(GPtrArray) paths = g_ptr_array_new();
	g_autoptr(GPtrArray) devs = g_ptr_array_new();
	int r;

	if (opt->dir)
		g_ptr_array_add(paths, (char *)opt->dir);
	for (char **p = opt->storage; p && *p; p++)
		g_ptr_array_add(paths, *p);
	for (guint i = 0; i < paths->len; i++) {
		const char *path = paths->pdata[i];
		g_autoptr(GDir) dir = NULL;
		const char *name;
		struct stat st;

		if (stat(path, &st) < 0)
			return fail(ret_error, ov_errno(), "storage '%s': %s", path,
				    g_strerror(errno));
		if (S_ISBLK(st.st_mode)) {
			g_ptr_array_add(devs, (char *)path);
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			return fail(ret_error, -ENOTDIR, "storage '%s' is not a directory", path);
		dir = g_dir_open(path, 0, NULL);
		if (!dir)
			return fail(ret_error, -EACCES, "storage '%s' cannot be read", path);
		while ((name = g_dir_read_name(dir))) {
			g_autofree char *dirpath = g_build_filename(path, name, NULL);
			g_autoptr(MdKv) kv = NULL;
			g_autoptr(MdDomainInfo) info = NULL;

			if (!uuid_is_valid(name))
				continue;
			if (strcmp(name, uuid) == 0 && i == 0 && opt->dir)
				return fail(ret_error, -EEXIST, "domain '%s' already exists in '%s'",
					    uuid, path);
			if (read_domain_kv(dirpath, &kv, &info) < 0)
				continue;
			if (strcmp(info->uuid, uuid) == 0)
				return fail(ret_error, -EEXIST, "domain '%s' already exists in '%s'",
					    uuid, path);
			for (char **pu = info->pools; pu && *pu; pu++) {
				if (strcmp(*pu, opt->pool) != 0)
					continue;
				ret->n_members++;
				if (info->role == MD_SD_ROLE_MASTER && !ret->master)
					ret->master = g_strdup(dirpath);
			}
		}
	}
	r = scan_block(devs, uuid, opt->pool, ret, ret_error);
	return r;
}

/* The smallest direct write the storage takes (oVirt's block size probe). */
static int probe_block_size(int dirfd, uint32_t *ret)
{
	static const uint32_t sizes[] = { 512, 4096 };
	void *buf = ov_aligned_alloc(4096);
	g_auto(OvFd) fd = -1;
	int r = -EINVAL;

	memset(buf, 0, 4096);
	fd = openat(dirfd, ".probe", O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = ov_errno();
		goto out;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
		if (pwrite(fd, buf, sizes[i], 0) == (ssize_t)sizes[i]) {
			*ret = sizes[i];
			r = 0;
			break;
		}
	}
out:
	(void)unlinkat(dirfd, ".probe", 0);
	ov_aligned_free(buf);
	return r;
}

static int mkdir_owned(int dirfd, const char *name, mode_t mode)
{
	if (mkdirat(dirfd, name, mode) < 0)
		return ov_errno();
	if (fchmodat(dirfd, name, mode, 0) < 0 ||
	    fchownat(dirfd, name, VDSM_UID, VDSM_GID, AT_SYMLINK_NOFOLLOW) < 0)
		return ov_errno();
	return 0;
}

static int create_owned(int dirfd, const char *name, off_t size)
{
	int r = file_create_sized(dirfd, name, size, 0660);

	if (r == 0 && fchownat(dirfd, name, VDSM_UID, VDSM_GID, AT_SYMLINK_NOFOLLOW) < 0)
		r = ov_errno();
	return r;
}

static int remove_tree(int dirfd, const char *name)
{
	g_auto(OvFd) fd = -1;
	DIR *dir;
	struct dirent *de;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR ? (unlinkat(dirfd, name, 0) < 0 ? ov_errno() : 0)
					: ov_errno();
	dir = fdopendir(dup(fd));
	if (!dir)
		return ov_errno();
	while ((de = readdir(dir))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type == DT_DIR)
			(void)remove_tree(fd, de->d_name);
		else
			(void)unlinkat(fd, de->d_name, 0);
	}
	closedir(dir);
	return unlinkat(dirfd, name, AT_REMOVEDIR) < 0 ? ov_errno() : 0;
}

/* Removes .<uuid>.creating directories that an interrupted create left. */
static void remove_leftovers(int pathfd)
{
	DIR *dir = fdopendir(dup(pathfd));
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.' && g_str_has_suffix(de->d_name, ".creating") &&
		    remove_tree(pathfd, de->d_name) == 0)
			log_info("removed '%s' left by an interrupted domain create", de->d_name);
	}
	closedir(dir);
}

static int write_xleases(int mdfd, const char *path, const char *uuid)
{
	void *buf = ov_aligned_alloc(MD_XLEASES_INDEX_SIZE);
	g_auto(OvFd) fd = -1;
	int r;

	r = md_xleases_format(uuid, (int64_t)time(NULL), buf, MD_XLEASES_INDEX_SIZE);
	if (r < 0)
		goto out;
	fd = openat(mdfd, "xleases", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = ov_errno();
		goto out;
	}
	if (pwrite(fd, buf, MD_XLEASES_INDEX_SIZE, ALIGNMENT) != MD_XLEASES_INDEX_SIZE ||
	    fsync(fd) < 0)
		r = -EIO;
out:
	(void)path;
	ov_aligned_free(buf);
	return r;
}

static int write_metadata(int mdfd, const MdKv *kv)
{
	g_autofree char *text = NULL;
	size_t len = 0;
	int r;

	text = md_kv_encode(kv, &len);
	r = file_write_atomic(mdfd, "metadata", text, len, 0644, NULL, NULL);
	if (r == 0 && fchownat(mdfd, "metadata", VDSM_UID, VDSM_GID, AT_SYMLINK_NOFOLLOW) < 0)
		r = ov_errno();
	return r;
}

/* Adds the new domain to the master's POOL_DOMAINS. */
static int join_pool(const char *master_dir, const char *uuid)
{
	g_autofree char *mddir = g_build_filename(master_dir, "dom_md", NULL);
	g_autoptr(MdKv) kv = NULL;
	g_autoptr(MdDomainInfo) info = NULL;
	g_autofree MdPoolDomain *doms = NULL;
	g_auto(OvFd) mdfd = -1;
	size_t n;
	int r;

	r = read_domain_kv(master_dir, &kv, &info);
	if (r < 0)
		return r;
	n = info->n_pool_domains;
	doms = g_new0(MdPoolDomain, n + 1);
	memcpy(doms, info->pool_domains, n * sizeof(*doms));
	g_strlcpy(doms[n].uuid, uuid, sizeof(doms[n].uuid));
	g_strlcpy(doms[n].status, "Active", sizeof(doms[n].status));
	md_domain_set_pool_domains(kv, doms, n + 1);
	mdfd = open(mddir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mdfd < 0)
		return ov_errno();
	return write_metadata(mdfd, kv);
}

static bool pool_has_master(const PoolScan *ps)
{
	return ps->master || ps->master_devs;
}

static void pool_scan_clear(PoolScan *ps)
{
	g_clear_pointer(&ps->master, g_free);
	g_clear_pointer(&ps->master_devs, g_strfreev);
	g_clear_pointer(&ps->master_vg, g_free);
}

/* Adds the new domain to POOL_DOMAINS of a block master (its MDT_ tags). */
static int join_block_pool(char **devs, const char *vg, const char *uuid)
{
	g_autoptr(BlockDom) bd = NULL;
	g_autoptr(MdKv) kv = NULL;
	g_autoptr(MdDomainInfo) info = NULL;
	g_autofree MdPoolDomain *doms = NULL;
	size_t n;
	int r;

	if ((r = blockdom_open((const char *const *)devs, g_strv_length(devs), vg, &bd)) < 0 || (r = blockdom_read_kv(bd, NULL, &kv)) < 0 ||
	    (r = md_domain_parse(kv, &info)) < 0)
		return r;
	n = info->n_pool_domains;
	doms = g_new0(MdPoolDomain, n + 1);
	memcpy(doms, info->pool_domains, n * sizeof(*doms));
	g_strlcpy(doms[n].uuid, uuid, sizeof(doms[n].uuid));
	g_strlcpy(doms[n].status, "Active", sizeof(doms[n].status));
	md_domain_set_pool_domains(kv, doms, n + 1);
	return blockdom_write_kv(bd, kv);
}

static int join_pool_any(const PoolScan *ps, const char *uuid)
{
	if (ps->master)
		return join_pool(ps->master, uuid);
	return join_block_pool(ps->master_devs, ps->master_vg, uuid);
}

static int dom_create_block(const DomainCreateOptions *opt, const char *uuid,
			    const char *description, char **ret_uuid, char **ret_error);

static const char *remote_path(const char *dir, MdSdType type)
{
	(void)type;
	return dir;
}

int dom_create(const DomainCreateOptions *opt, char **ret_uuid, char **ret_error)
{
	g_autofree char *uuid = NULL;
	g_autofree char *tmpname = NULL;
	g_autofree char *tmppath = NULL;
	g_autofree char *abspath = NULL;
	g_autofree char *description = NULL;
	g_auto(OvFd) pathfd = -1;
	g_auto(OvFd) lockfd = -1;
	g_auto(OvFd) tmpfd = -1;
	g_auto(OvFd) mdfd = -1;
	g_autoptr(MdKv) kv = NULL;
	PoolScan ps = { 0 };
	MdDomainNew dn = { 0 };
	struct statfs sfs;
	uint32_t block_size = 0;
	bool published = false;
	int r;

	/* 1. validate */
	if (!uuid_is_valid(opt->pool))
		return fail(ret_error, -EINVAL, "pool '%s' is not a lowercase UUID", opt->pool);
	if (opt->uuid) {
		if (!uuid_is_valid(opt->uuid))
			return fail(ret_error, -EINVAL, "domain uuid '%s' is not a lowercase UUID",
				    opt->uuid);
		uuid = g_strdup(opt->uuid);
	} else {
		uuid = uuid_new();
	}
	description = g_strdup(opt->description ? opt->description : "");
	if (!g_utf8_validate(description, -1, NULL) || strpbrk(description, "\n\r") ||
	    g_utf8_strlen(description, -1) > DESCRIPTION_MAX)
		return fail(ret_error, -EINVAL,
			    "description must be one line of at most %d characters",
			    DESCRIPTION_MAX);
	if (opt->io_timeout < 1 || opt->io_timeout > 300)
		return fail(ret_error, -EINVAL, "io timeout must be 1 to 300 seconds");
	if (opt->block)
		return dom_create_block(opt, uuid, description, ret_uuid, ret_error);
	abspath = g_canonicalize_filename(opt->dir, NULL);
	pathfd = open(abspath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pathfd < 0) {
		r = ov_errno();
		if (r == -ENOTDIR)
			return fail(ret_error, r, "'%s' is not a directory", opt->dir);
		return fail(ret_error, r, "'%s': %s", opt->dir, g_strerror(-r));
	}
	lockfd = openat(pathfd, CREATE_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX) < 0)
		return fail(ret_error, ov_errno(), "'%s': cannot lock for creating: %s", opt->dir,
			    g_strerror(errno));
	r = scan_pool(opt, uuid, &ps, ret_error);
	if (r < 0)
		goto out;
	if (ps.n_members > 0 && !pool_has_master(&ps)) {
		r = fail(ret_error, -ENOENT, "pool '%s' has domains but no master domain was "
			 "found; name its storage with --storage", opt->pool);
		goto out;
	}
	if (!pool_has_master(&ps) && opt->cls != MD_SD_CLASS_DATA) {
		r = fail(ret_error, -EINVAL, "the first domain of pool '%s' must be a data domain",
			 opt->pool);
		goto out;
	}
	remove_leftovers(pathfd);
	r = probe_block_size(pathfd, &block_size);
	if (r < 0) {
		r = fail(ret_error, r, "'%s' does not support direct I/O", opt->dir);
		goto out;
	}
	if (fstatfs(pathfd, &sfs) < 0) {
		r = fail(ret_error, ov_errno(), "'%s': statfs failed", opt->dir);
		goto out;
	}

	/* 2. build it aside */
	tmpname = g_strdup_printf(".%s.creating", uuid);
	tmppath = g_build_filename(abspath, tmpname, NULL);
	if ((r = FAULT_POINT("domain_create.dir")) < 0 ||
	    (r = mkdir_owned(pathfd, tmpname, 0755)) < 0)
		goto fail_io;
	tmpfd = openat(pathfd, tmpname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tmpfd < 0 || (r = mkdir_owned(tmpfd, "dom_md", 0755)) < 0 ||
	    (r = mkdir_owned(tmpfd, "images", 0755)) < 0) {
		r = tmpfd < 0 ? ov_errno() : r;
		goto fail_io;
	}
	mdfd = openat(tmpfd, "dom_md", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mdfd < 0) {
		r = ov_errno();
		goto fail_io;
	}
	if ((r = FAULT_POINT("domain_create.special")) < 0 ||
	    (r = create_owned(mdfd, "ids", 0)) < 0 || (r = create_owned(mdfd, "leases", 0)) < 0 ||
	    (r = create_owned(mdfd, "inbox", MAILBOX_SIZE)) < 0 ||
	    (r = create_owned(mdfd, "outbox", MAILBOX_SIZE)) < 0 ||
	    (r = create_owned(mdfd, "xleases", 0)) < 0 ||
	    (r = create_owned(mdfd, JOURNAL_FILE,
			      MD_JOURNAL_SLOTS * MD_JOURNAL_RECORD_SIZE)) < 0)
		goto fail_io;
	if ((r = FAULT_POINT("domain_create.xleases")) < 0 ||
	    (r = write_xleases(mdfd, tmppath, uuid)) < 0)
		goto fail_io;
	{
		g_autofree char *ids = g_build_filename(tmppath, "dom_md", "ids", NULL);
		g_autofree char *leases = g_build_filename(tmppath, "dom_md", "leases", NULL);

		if ((r = FAULT_POINT("domain_create.lockspace")) < 0 ||
		    (r = lease_format_lockspace(ids, 0, uuid, opt->io_timeout, block_size,
						ALIGNMENT)) < 0 ||
		    (r = lease_format_resource(leases, ALIGNMENT, uuid, "SDM", block_size,
					       ALIGNMENT)) < 0)
			goto fail_io;
	}
	dn.uuid = uuid;
	dn.type = sfs.f_type == NFS_SUPER_MAGIC ? MD_SD_TYPE_NFS : MD_SD_TYPE_POSIXFS;
	dn.cls = opt->cls;
	dn.description = description;
	dn.block_size = block_size;
	dn.alignment = ALIGNMENT;
	dn.remote_path = remote_path(abspath, dn.type);
	kv = md_domain_new_kv(&dn);
	if (pool_has_master(&ps))
		md_domain_attach(kv, opt->pool);
	else
		md_domain_make_master(kv, opt->pool, description, 1);
	if ((r = FAULT_POINT("domain_create.metadata")) < 0 || (r = write_metadata(mdfd, kv)) < 0)
		goto fail_io;
	if (!pool_has_master(&ps)) {
		g_auto(OvFd) mfd = -1;

		if ((r = mkdir_owned(tmpfd, "master", 0755)) < 0)
			goto fail_io;
		mfd = openat(tmpfd, "master", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (mfd < 0 || (r = mkdir_owned(mfd, "vms", 0755)) < 0 ||
		    (r = mkdir_owned(mfd, "tasks", 0755)) < 0) {
			r = mfd < 0 ? ov_errno() : r;
			goto fail_io;
		}
	}
	if (opt->cls == MD_SD_CLASS_ISO) {
		g_auto(OvFd) ifd = openat(tmpfd, "images", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (ifd < 0 || (r = mkdir_owned(ifd, ISO_IMAGE_UUID, 0755)) < 0) {
			r = ifd < 0 ? ov_errno() : r;
			goto fail_io;
		}
	}
	if (fsync(mdfd) < 0 || fsync(tmpfd) < 0) {
		r = ov_errno();
		goto fail_io;
	}

	/* 3. publish: one rename makes it a domain */
	if ((r = FAULT_POINT("domain_create.publish")) < 0)
		goto fail_io;
	if (renameat(pathfd, tmpname, pathfd, uuid) < 0) {
		r = ov_errno();
		goto fail_io;
	}
	published = true;
	(void)fsync_dir(pathfd);

	/* 4. join the pool */
	if (pool_has_master(&ps)) {
		if ((r = FAULT_POINT("domain_create.join")) < 0 ||
		    (r = join_pool_any(&ps, uuid)) < 0) {
			r = fail(ret_error, r, "adding domain '%s' to pool '%s': %s", uuid,
				 opt->pool, g_strerror(-r));
			goto undo;
		}
	}
	*ret_uuid = g_steal_pointer(&uuid);
	r = 0;
	goto out;

fail_io:
	*ret_error = g_strdup_printf("creating domain '%s' in '%s': %s", uuid, opt->dir,
				     g_strerror(-r));
undo:
	if (published)
		(void)renameat(pathfd, uuid, pathfd, tmpname);
	(void)remove_tree(pathfd, tmpname);
	(void)fsync_dir(pathfd);
out:
	pool_scan_clear(&ps);
	return r;
}

/*
 * Block domains (reference 6.1, 6.2, "Creation order"): PVs, a VG marked
 * UNREADY, the special LVs, their areas zeroed or formatted through the
 * extent maps, the MDT_ tags, then the marker swapped to ready.  Any
 * failure removes the VG and the PVs made here.
 */
static int dev_size(const char *dev, uint64_t *ret)
{
	g_auto(OvFd) fd = open(dev, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return ov_errno();
	if (ioctl(fd, BLKGETSIZE64, ret) < 0)
		return ov_errno();
	return 0;
}

static int format_block_areas(BlockDom *bd, const char *uuid, unsigned io_timeout)
{
	g_autoptr(ExtMap) ids = NULL;
	g_autoptr(ExtMap) leases = NULL;
	g_autoptr(ExtMap) xleases = NULL;
	g_autoptr(ExtMap) inbox = NULL;
	g_autoptr(ExtMap) outbox = NULL;
	g_autoptr(ExtMap) master = NULL;
	const char *dev;
	uint64_t off;
	void *buf;
	int r;

	if ((r = blockdom_map(bd, MD_BLOCK_LV_METADATA, &bd->md_map)) < 0 ||
	    (r = blockdom_map(bd, MD_BLOCK_LV_IDS, &ids)) < 0 ||
	    (r = blockdom_map(bd, MD_BLOCK_LV_LEASES, &leases)) < 0 ||
	    (r = blockdom_map(bd, MD_BLOCK_LV_XLEASES, &xleases)) < 0 ||
	    (r = blockdom_map(bd, MD_BLOCK_LV_INBOX, &inbox)) < 0 ||
	    (r = blockdom_map(bd, MD_BLOCK_LV_OUTBOX, &outbox)) < 0 ||
	    (r = blockdom_map(bd, MD_BLOCK_LV_MASTER, &master)) < 0)
		return r;
	/* the slot areas (v4 and v5), ovstore's journal, the mailboxes' host area */
	if ((r = blk_lvio_zero(bd->io, bd->md_map, 0, MD_BLOCK_METADATA_ZEROED)) < 0 ||
	    (r = blk_lvio_zero(bd->io, bd->md_map, BLOCK_JOURNAL_OFFSET,
			       MD_JOURNAL_SLOTS * MD_JOURNAL_RECORD_SIZE)) < 0 ||
	    (r = blk_lvio_zero(bd->io, inbox, 0, MD_MBOX_AREA_SIZE)) < 0 ||
	    (r = blk_lvio_zero(bd->io, outbox, 0, MD_MBOX_AREA_SIZE)) < 0)
		return r;
	/* the master file system (ext3, as VDSM makes it), where the LV lies */
	if ((r = blockdom_area(bd, master, 0, blk_extmap_size(master), &dev, &off)) < 0 ||
	    (r = blk_mkfs_ext3(dev, off, blk_extmap_size(master))) < 0)
		return r;
	/* the xleases index at 1 * align */
	buf = ov_aligned_alloc(MD_XLEASES_INDEX_SIZE);
	r = md_xleases_format(uuid, (int64_t)time(NULL), buf, MD_XLEASES_INDEX_SIZE);
	if (r == 0) {
		ssize_t n = blk_lvio_pwrite(bd->io, xleases, true, buf, MD_XLEASES_INDEX_SIZE,
					    BLOCK_ALIGNMENT);
		r = n < 0 ? (int)n : 0;
	}
	ov_aligned_free(buf);
	if (r < 0)
		return r;
	/* the lockspace in ids, the SDM resource at 1 * align of leases */
	if ((r = FAULT_POINT("domain_create.lockspace")) < 0 ||
	    (r = blockdom_area(bd, ids, 0, BLOCK_ALIGNMENT, &dev, &off)) < 0 ||
	    (r = lease_format_lockspace(dev, off, uuid, io_timeout, BLOCK_SECTOR,
					BLOCK_ALIGNMENT)) < 0 ||
	    (r = blockdom_area(bd, leases, BLOCK_ALIGNMENT, BLOCK_ALIGNMENT, &dev, &off)) < 0 ||
	    (r = lease_format_resource(dev, off, uuid, "SDM", BLOCK_SECTOR, BLOCK_ALIGNMENT)) < 0)
		return r;
	return blk_lvio_sync(bd->io, false);
}

/* The PVn keys: PV0 holds the metadata LV's first extent (the first device). */
static int set_pv_keys(BlockDom *bd, MdKv *kv)
{
	uint64_t mapoffset = 0;

	for (size_t i = 0; i < blk_lvm_n_pvs(bd->ctx); i++) {
		const char *path = blk_lvm_pv_path(bd->ctx, i);
		const BlkPv *pv = NULL;
		MdBlockPv mp = { 0 };
		g_autofree char *value = NULL;
		g_autofree char *base = g_path_get_basename(path);
		char key[8];
		int r;

		for (guint j = 0; j < bd->pvs->len; j++) {
			const BlkPv *c = bd->pvs->pdata[j];

			if (blk_lvm_pv_index(bd->ctx, c->name) == (int)i)
				pv = c;
		}
		if (!pv)
			return -ENODEV;
		g_strlcpy(mp.guid, base, sizeof(mp.guid));
		g_strlcpy(mp.uuid, pv->uuid, sizeof(mp.uuid));
		mp.pecount = pv->pe_count;
		mp.mapoffset = mapoffset;
		mapoffset += pv->pe_count;
		if ((r = md_block_pv_key((unsigned)i, key)) < 0 ||
		    (r = md_block_pv_encode(&mp, &value)) < 0)
			return r;
		md_kv_set(kv, key, value);
	}
	return 0;
}

static int dom_create_block(const DomainCreateOptions *opt, const char *uuid,
			    const char *description, char **ret_uuid, char **ret_error)
{
	g_auto(GStrv) devs = NULL;
	g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(LvmCtx) ctx = NULL;
	g_autoptr(BlockDom) bd = NULL;
	g_autoptr(MdKv) kv = NULL;
	g_auto(GStrv) mdt = NULL;
	PoolScan ps = { 0 };
	MdDomainNew dn = { 0 };
	uint64_t total = 0;
	size_t n_pvs = 0;
	bool vg_made = false;
	int r;

	if (opt->cls == MD_SD_CLASS_ISO)
		return fail(ret_error, -EINVAL, "ISO domains are file domains (use --dir)");
	devs = g_strsplit(opt->block, ",", -1);
	for (char **d = devs; *d; d++) {
		struct stat st;
		uint64_t size = 0;

		if (!**d)
			continue;
		if (stat(*d, &st) < 0)
			return fail(ret_error, ov_errno(), "device '%s': %s", *d, g_strerror(errno));
		if (!S_ISBLK(st.st_mode))
			return fail(ret_error, -ENOTBLK, "'%s' is not a block device", *d);
		g_ptr_array_add(paths, g_canonicalize_filename(*d, NULL));
		r = dev_size(*d, &size);
		if (r < 0)
			return fail(ret_error, r, "device '%s': %s", *d, g_strerror(-r));
		/* each PV keeps two 128 MiB metadata areas */
		total += size > 2 * MD_BLOCK_PV_METADATA_SIZE + MD_BLOCK_MIB
				 ? size - 2 * MD_BLOCK_PV_METADATA_SIZE - MD_BLOCK_MIB
				 : 0;
	}
	if (paths->len == 0 || paths->len > MD_BLOCK_MAX_PVS)
		return fail(ret_error, -EINVAL, "--block takes 1 to %d devices", MD_BLOCK_MAX_PVS);
	if (total < MD_BLOCK_MIN_VG_SIZE)
		return fail(ret_error, -ENOSPC,
			    "devices too small: a block domain needs at least 10 GiB after "
			    "LVM metadata");
	r = blk_lvm_new((const char *const *)paths->pdata, paths->len, &ctx);
	if (r < 0)
		return fail(ret_error, r, "devices '%s': %s", opt->block,
			    *blk_lvm_last_error() ? blk_lvm_last_error() : g_strerror(-r));
	r = scan_pool(opt, uuid, &ps, ret_error);
	if (r < 0)
		goto out;
	if (ps.n_members > 0 && !pool_has_master(&ps)) {
		r = fail(ret_error, -ENOENT, "pool '%s' has domains but no master domain was "
			 "found; name its storage with --storage", opt->pool);
		goto out;
	}
	if (!pool_has_master(&ps) && opt->cls != MD_SD_CLASS_DATA) {
		r = fail(ret_error, -EINVAL, "the first domain of pool '%s' must be a data domain",
			 opt->pool);
		goto out;
	}

	/* 1. PVs: every device is checked (and refused) before any is written */
	for (; n_pvs < paths->len; n_pvs++) {
		const char *dev = paths->pdata[n_pvs];

		if ((r = blk_pv_create(ctx, dev, MD_BLOCK_PV_METADATA_SIZE,
				       MD_BLOCK_PV_METADATA_COPIES, true)) < 0) {
			if (*blk_lvm_last_error())
				r = fail(ret_error, r, "%s", blk_lvm_last_error());
			else
				r = fail(ret_error, r, "device '%s': %s", dev, g_strerror(-r));
			goto undo;
		}
	}
	if ((r = blk_pv_set_metadata_ignore(ctx, paths->pdata[0], false)) < 0)
		goto fail_lvm;

	/* 2. the VG, not ready */
	{
		const char *tags[] = { MD_BLOCK_VG_TAG_UNREADY, NULL };

		if ((r = FAULT_POINT("domain_create.special")) < 0 ||
		    (r = blk_vg_create(ctx, uuid, (const char *const *)paths->pdata, paths->len,
				       MD_BLOCK_EXTENT_SIZE, tags)) < 0)
			goto fail_lvm;
		vg_made = true;
	}

	/* 3. the special LVs, metadata on the first PV */
	for (const char *const *lv = md_block_special_lvs(); *lv; lv++) {
		uint64_t size = 0;

		if ((r = md_block_special_lv_size(*lv, BLOCK_ALIGNMENT, &size)) < 0 ||
		    (r = blk_lv_create(ctx, uuid, *lv, size, NULL,
				       strcmp(*lv, MD_BLOCK_LV_METADATA) == 0 ? paths->pdata[0]
									      : NULL)) < 0)
			goto fail_lvm;
	}

	/* 4. areas zeroed and formatted on the PVs */
	r = blockdom_open((const char *const *)paths->pdata, paths->len, uuid, &bd);
	if (r < 0)
		goto fail_lvm;
	r = format_block_areas(bd, uuid, opt->io_timeout);
	if (r < 0)
		goto fail_io;

	/* 5. the domain metadata as MDT_ tags, then the marker swapped */
	dn.uuid = uuid;
	dn.type = MD_SD_TYPE_ISCSI;
	dn.cls = opt->cls;
	dn.description = description;
	dn.block_size = BLOCK_SECTOR;
	dn.alignment = BLOCK_ALIGNMENT;
	dn.vg_uuid = bd->vg_uuid;
	kv = md_domain_new_kv(&dn);
	r = set_pv_keys(bd, kv);
	if (r < 0)
		goto fail_io;
	if (pool_has_master(&ps))
		md_domain_attach(kv, opt->pool);
	else
		md_domain_make_master(kv, opt->pool, description, 1);
	mdt = md_block_kv_tags(kv);
	if ((r = FAULT_POINT("domain_create.metadata")) < 0 ||
	    (r = blk_vg_change_tags(ctx, uuid, (const char *const *)mdt, NULL)) < 0)
		goto fail_lvm;
	{
		const char *add[] = { MD_BLOCK_VG_TAG, NULL };
		const char *del[] = { MD_BLOCK_VG_TAG_UNREADY, NULL };

		if ((r = FAULT_POINT("domain_create.publish")) < 0 ||
		    (r = blk_vg_change_tags(ctx, uuid, add, del)) < 0)
			goto fail_lvm;
	}

	/* 6. join the pool */
	if (pool_has_master(&ps)) {
		if ((r = FAULT_POINT("domain_create.join")) < 0 ||
		    (r = join_pool_any(&ps, uuid)) < 0) {
			r = fail(ret_error, r, "adding domain '%s' to pool '%s': %s", uuid,
				 opt->pool, g_strerror(-r));
			goto undo;
		}
	}
	*ret_uuid = g_strdup(uuid);
	r = 0;
	goto out;

fail_lvm:
	*ret_error = g_strdup_printf("creating domain '%s' on '%s': %s", uuid, opt->block,
				     *blk_lvm_last_error() ? blk_lvm_last_error()
							    : g_strerror(-r));
	goto undo;
fail_io:
	*ret_error = g_strdup_printf("creating domain '%s' on '%s': %s", uuid, opt->block,
				     g_strerror(-r));
undo:
	g_clear_pointer(&bd, blockdom_free);
	fault_quiet_begin();
	if (vg_made)
		(void)blk_vg_remove(ctx, uuid);
	while (n_pvs > 0)
		(void)blk_pv_remove(ctx, paths->pdata[--n_pvs]);
	fault_quiet_end();
out:
	pool_scan_clear(&ps);
	return r;
}
