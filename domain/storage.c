/*
 * storage.c: finding domains on the storage, grouping them in pools, the
 * SPM start, rescans, and the status report.
 *
 * A domain is a directory <path>/<uuid>/ with dom_md/metadata whose SDUUID
 * is that uuid.  Domains are grouped by the pools their POOL_UUID lists; a
 * domain in no pool is not shown.  A domain that cannot be read (broken
 * seal, unknown version) is left out and reported under "problems"; a
 * lockspace that cannot be joined fails the open (another daemon has the
 * storage).
 */
#include "domain/model-int.h"
#include "domain/block-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/names.h"
#include "metadata/md-block.h"
#include "metadata/md-domain.h"
#include "common/banned.h"

#define RESCAN_INTERVAL_US (1 * G_USEC_PER_SEC)
#define JOURNAL_SIZE (MD_JOURNAL_SLOTS * MD_JOURNAL_RECORD_SIZE)

static void problem_free(gpointer p)
{
	Problem *pr = p;

	g_free(pr->path);
	g_free(pr->error);
	g_free(pr);
}

static void add_problem_locked(Storage *st, const char *path, const char *error)
{
	Problem *pr = g_new0(Problem, 1);

	pr->path = g_strdup(path);
	pr->error = g_strdup(error);
	g_ptr_array_add(st->problems, pr);
}

static void domain_free(gpointer p)
{
	Domain *d = p;

	if (!d)
		return;
	if (d->images)
		g_hash_table_unref(d->images);
	if (d->volumes)
		g_hash_table_unref(d->volumes);
	md_kv_free(d->kv);
	md_domain_info_free(d->info);
	ov_close_fd(d->dir_fd);
	ov_close_fd(d->images_fd);
	ov_close_fd(d->journal_fd);
	blockdom_free(d->bd);
	g_mutex_clear(&d->lease_lock);
	g_mutex_clear(&d->op_lock);
	g_mutex_clear(&d->jrnl_lock);
	g_cond_clear(&d->writers_gone);
	g_rw_lock_clear(&d->lock);
	g_free(d->dir);
	g_free(d);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Domain, domain_free)

static void pool_free(gpointer p)
{
	Pool *pool = p;

	spm_mailbox_close(pool);
	g_ptr_array_unref(pool->domains);
	g_mutex_clear(&pool->server_lock);
	g_mutex_clear(&pool->role_lock);
	g_free(pool);
}

static int open_journal(Domain *d)
{
	g_autofree char *path = g_build_filename(d->dir, "dom_md", JOURNAL_FILE, NULL);
	int fd;
	int r;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		/* A domain made by oVirt: ovstore's journal lives beside oVirt's files. */
		g_autofree char *dir = g_build_filename(d->dir, "dom_md", NULL);
		g_auto(OvFd) dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd < 0)
			return ov_errno();
		r = file_create_sized(dfd, JOURNAL_FILE, JOURNAL_SIZE, 0660);
		if (r < 0)
			return r;
		fd = open(path, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0)
		return ov_errno();
	d->journal_fd = fd;
	return 0;
}

/* A domain with nothing read yet: locks and empty tables. */
static Domain *domain_new(Storage *st)
{
	Domain *d = g_new0(Domain, 1);

	d->st = st;
	d->dir_fd = d->images_fd = d->journal_fd = -1;
	g_mutex_init(&d->op_lock);
	g_mutex_init(&d->jrnl_lock);
	g_mutex_init(&d->lease_lock);
	g_cond_init(&d->writers_gone);
	g_rw_lock_init(&d->lock);
	d->images = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					  (GDestroyNotify)img_unref);
	d->volumes = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					   (GDestroyNotify)vol_unref);
	return d;
}

/*
 * Checks the domain metadata just decoded into d->kv (r: the decoder's
 * result) for domain `name` and takes the domain's identity from it.  The
 * same rules for file domains (dom_md/metadata) and block ones (MDT_ tags).
 */
static int domain_adopt_metadata(Domain *d, const char *name, int r, char **ret_error)
{
	if (r == -EUCLEAN) {
		*ret_error = g_strdup("metadata seal is broken");
		return r;
	}
	if (r == 0)
		r = md_domain_parse(d->kv, &d->info);
	if (r < 0) {
		*ret_error = g_strdup_printf("bad metadata: %s", g_strerror(-r));
		return r;
	}
	if (strcmp(d->info->uuid, name) != 0) {
		*ret_error = g_strdup_printf("metadata names domain '%s'", d->info->uuid);
		return -EUCLEAN;
	}
	if (d->info->version < 4) {
		*ret_error = g_strdup_printf("format version %d is not supported (4 and 5 are)",
					     d->info->version);
		return -EPROTONOSUPPORT;
	}
	g_strlcpy(d->uuid, name, sizeof(d->uuid));
	d->version = d->info->version;
	d->block_size = d->info->block_size ? d->info->block_size : 512;
	d->alignment = d->info->alignment ? d->info->alignment : 1024 * 1024;
	d->iso = d->info->cls == MD_SD_CLASS_ISO;
	return 0;
}

/*
 * Joins the domain's lockspace: sanlock, at the `ids` area (file: dom_md/ids;
 * block: where the `ids` LV starts on its PV); local, a flock on that file
 * or PV.
 */
static int domain_join(Domain *d)
{
	g_autofree char *path = NULL;
	uint64_t off = 0;
	int r;

	r = d->ops->lease_area(d, DOM_LEASE_IDS, NULL, NULL, &path, &off);
	if (r < 0)
		return r;
	return lease_join(d->st->leases, d->uuid, path, off);
}

/* Reads and checks one domain directory; joins its lockspace. */
static int domain_probe(Storage *st, const char *dirpath, const char *name, Domain **ret,
			char **ret_error)
{
	g_autoptr(Domain) d = domain_new(st);
	g_autofree char *text = NULL;
	size_t len = 0;
	int r;

	d->dir = g_strdup(dirpath);
	d->ops = &file_backend;
	d->dir_fd = open(dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dir_fd < 0)
		return ov_errno();
	r = file_read_all(d->dir_fd, "dom_md/metadata", MD_KV_MAX_TEXT, &text, &len);
	if (r < 0) {
		*ret_error = g_strdup_printf("reading metadata: %s", g_strerror(-r));
		return r;
	}
	r = domain_adopt_metadata(d, name, md_kv_decode(text, len, &d->kv), ret_error);
	if (r < 0)
		return r;
	d->images_fd = openat(d->dir_fd, "images", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->images_fd < 0 && errno == ENOENT && mkdirat(d->dir_fd, "images", 0755) == 0)
		d->images_fd = openat(d->dir_fd, "images", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->images_fd < 0) {
		r = ov_errno();
		*ret_error = g_strdup_printf("opening images: %s", g_strerror(-r));
		return r;
	}
	r = domain_join(d);
	if (r < 0)
		return r; /* fatal: reported by the caller */
	r = open_journal(d);
	if (r < 0) {
		*ret_error = g_strdup_printf("opening the journal: %s", g_strerror(-r));
		return r;
	}
	*ret = g_steal_pointer(&d);
	return 0;
}

static void domain_add_locked(Storage *st, Domain *d);

/* Reads and checks one block domain (VG vg on the PVs devs); joins its lockspace. */
static int domain_probe_block(Storage *st, const char *vg, GPtrArray *devs, Domain **ret,
			      char **ret_error)
{
	g_autoptr(Domain) d = domain_new(st);
	g_autoptr(BlkVg) v = NULL;
	int r;

	g_ptr_array_add(devs, NULL);
	d->dir = g_strjoinv(",", (char **)devs->pdata);
	g_ptr_array_remove_index(devs, devs->len - 1);
	d->ops = &block_backend;
	r = blockdom_open((const char *const *)devs->pdata, devs->len, vg, &d->bd);
	if (r < 0) {
		*ret_error = g_strdup_printf("opening the PVs: %s", *blk_lvm_last_error()
								   ? blk_lvm_last_error()
								   : g_strerror(-r));
		return r;
	}
	r = blk_vg_get(d->bd->ctx, vg, &v);
	if (r == 0 && v->pv_count != devs->len) {
		*ret_error = g_strdup_printf("VG has %u PVs, %u given: name every PV with "
					     "--storage", v->pv_count, devs->len);
		return -ENODEV;
	}
	r = domain_adopt_metadata(d, vg, block_domain_load(d, &d->kv), ret_error);
	if (r < 0)
		return r;
	r = domain_join(d);
	if (r < 0)
		return r;
	*ret = g_steal_pointer(&d);
	return 0;
}

/* Whether a domain (its seen key: a directory, "vg:" + VG) was considered already. */
static bool already_seen(Storage *st, const char *key, const char *uuid)
{
	bool seen;

	g_rw_lock_reader_lock(&st->lock);
	seen = g_hash_table_contains(st->seen, key) || g_hash_table_contains(st->domains, uuid);
	g_rw_lock_reader_unlock(&st->lock);
	return seen;
}

/*
 * After probing the domain behind key (r: the probe's result, d and error
 * its outputs; where: its directory or VG, for messages and problems): a
 * domain in a pool joins the storage and found; one in no
 * pool is dropped; a failure becomes a problem, except -EBUSY (a lease held
 * elsewhere), which is returned for the caller to fail on.
 */
static int take_probed(Storage *st, const char *key, const char *where, int r, Domain *d,
		       const char *error, GPtrArray *found)
{
	g_rw_lock_writer_lock(&st->lock);
	g_hash_table_add(st->seen, g_strdup(key));
	if (r == -EBUSY) {
		g_rw_lock_writer_unlock(&st->lock);
		log_debug(LOG_CLASS_LEASE, "domain '%s': lease held elsewhere", where);
		return -EBUSY;
	}
	if (r < 0) {
		const char *why = error ? error : g_strerror(-r);

		add_problem_locked(st, where, why);
		g_rw_lock_writer_unlock(&st->lock);
		log_warning("domain '%s': %s, ignoring", where, why);
		return r;
	}
	if (!d->info->pools || !d->info->pools[0]) {
		g_rw_lock_writer_unlock(&st->lock);
		log_info("domain '%s' belongs to no pool, not shown", d->uuid);
		domain_free(d);
		return 0;
	}
	domain_add_locked(st, d);
	g_rw_lock_writer_unlock(&st->lock);
	g_ptr_array_add(found, d);
	return 0;
}

/* The block storages: their VGs, each a domain when its marker tag says so. */
static int scan_block(Storage *st, GPtrArray *found)
{
	g_autoptr(GHashTable) vgs = NULL;
	g_autoptr(GPtrArray) lost = NULL;
	g_autoptr(GPtrArray) devs = g_ptr_array_new();
	GHashTableIter it;
	gpointer key, value;
	int r;

	for (char **p = st->opt.paths; p && *p; p++) {
		struct stat sb;

		if (stat(*p, &sb) == 0 && S_ISBLK(sb.st_mode))
			g_ptr_array_add(devs, *p);
	}
	if (devs->len == 0)
		return 0;
	r = blockdom_group((const char *const *)devs->pdata, devs->len, &vgs, &lost);
	if (r < 0) {
		/* lvm could not run on them: each is a problem, the rest is served */
		g_autofree char *error = g_strdup_printf(
			"no block domain: %s",
			*blk_lvm_last_error() ? blk_lvm_last_error() : g_strerror(-r));

		g_rw_lock_writer_lock(&st->lock);
		for (guint i = 0; i < devs->len; i++)
			add_problem_locked(st, devs->pdata[i], error);
		g_rw_lock_writer_unlock(&st->lock);
		log_warning("block storages: %s, ignoring", error);
		return 0;
	}
	for (guint i = 0; i < lost->len; i++) {
		const char *error = "no block domain: not a PV of a VG lvm can read";

		g_rw_lock_writer_lock(&st->lock);
		add_problem_locked(st, lost->pdata[i], error);
		g_rw_lock_writer_unlock(&st->lock);
		log_warning("storage '%s': %s, ignoring", (const char *)lost->pdata[i], error);
	}
	g_hash_table_iter_init(&it, vgs);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		const char *vg = key;
		g_autofree char *error = NULL;
		g_autofree char *seen_key = g_strconcat("vg:", vg, NULL);
		Domain *d = NULL;

		if (!uuid_is_valid(vg) || already_seen(st, seen_key, vg))
			continue;
		r = domain_probe_block(st, vg, value, &d, &error);
		if (take_probed(st, seen_key, vg, r, d, error, found) == -EBUSY)
			return -EBUSY;
	}
	return 0;
}

/*
 * Loads a domain; on the SPM also finishes what its journal holds and
 * repairs derived metadata.  Other hosts only read.
 */
static int domain_activate(Domain *d)
{
	int r;

	g_mutex_lock(&d->op_lock);
	g_rw_lock_writer_lock(&d->lock);
	r = d->ops->scan(d);
	g_rw_lock_writer_unlock(&d->lock);
	if (r == 0 && dom_may_write(d))
		r = jrnl_replay(d);
	if (r == 0 && dom_may_write(d))
		(void)dom_repair(d); /* logs; what it could not do waits for the next start */
	g_mutex_unlock(&d->op_lock);
	return r;
}

static Pool *pool_get_locked(Storage *st, const char *uuid)
{
	Pool *p = g_hash_table_lookup(st->pools, uuid);

	if (p)
		return p;
	p = g_new0(Pool, 1);
	p->st = st;
	g_strlcpy(p->uuid, uuid, sizeof(p->uuid));
	p->domains = g_ptr_array_new();
	g_mutex_init(&p->server_lock);
	g_mutex_init(&p->role_lock);
	g_hash_table_insert(st->pools, p->uuid, p);
	return p;
}

/* Writes the SPM's keys into the pool metadata and lists every member domain. */
void spm_update_master(Pool *p, uint64_t lver)
{
	Domain *m = p->master;
	g_autoptr(MdKv) kv = NULL;
	g_autoptr(MdDomainInfo) info = NULL;
	g_autofree MdPoolDomain *doms = NULL;
	size_t n = 0;
	int r;

	if (!m || !m->info->has_pool_keys)
		return;
	if (lease_spm_check(p->st->leases, p->uuid) < 0) {
		log_warning("pool '%s': the SPM lease is not held, not writing the SPM keys", p->uuid);
		return;
	}
	kv = md_kv_copy(m->kv);
	md_kv_set_int(kv, "POOL_SPM_ID", lease_host_id(p->st->leases));
	/* the SPM resource's lease version; never lower than the last + 1 (the
	 * local lease has no versions, and oVirt's disk backend counts by one) */
	md_kv_set_int(kv, "POOL_SPM_LVER", MAX((int64_t)lver, m->info->spm_lver + 1));
	/* A domain that joined but crashed before the master listed it. */
	doms = g_new0(MdPoolDomain, m->info->n_pool_domains + p->domains->len);
	for (size_t i = 0; i < m->info->n_pool_domains; i++)
		doms[n++] = m->info->pool_domains[i];
	for (guint i = 0; i < p->domains->len; i++) {
		Domain *d = p->domains->pdata[i];
		bool listed = false;

		for (size_t j = 0; j < m->info->n_pool_domains; j++)
			listed |= strcmp(m->info->pool_domains[j].uuid, d->uuid) == 0;
		if (!listed) {
			g_strlcpy(doms[n].uuid, d->uuid, sizeof(doms[n].uuid));
			g_strlcpy(doms[n].status, "Active", sizeof(doms[n].status));
			n++;
		}
	}
	md_domain_set_pool_domains(kv, doms, n);
	r = md_domain_parse(kv, &info);
	if (r == 0)
		r = m->ops->domain_md_write(m, kv);
	if (r < 0) {
		log_warning_errno(r, "pool '%s': writing the SPM keys on master '%s', ignoring",
				  p->uuid, m->uuid);
		return;
	}
	g_rw_lock_writer_lock(&m->lock);
	md_kv_free(m->kv);
	md_domain_info_free(m->info);
	m->kv = g_steal_pointer(&kv);
	m->info = g_steal_pointer(&info);
	g_rw_lock_writer_unlock(&m->lock);
}

/* Puts a probed domain in its pools; the domain then belongs to the storage. */
static void domain_add_locked(Storage *st, Domain *d)
{
	g_hash_table_insert(st->domains, d->uuid, d);
	for (char **pu = d->info->pools; pu && *pu; pu++) {
		Pool *p = pool_get_locked(st, *pu);

		if (d->pool == NULL)
			d->pool = p;
		g_ptr_array_add(p->domains, d);
		if (d->info->role == MD_SD_ROLE_MASTER && d->pool == p) {
			p->master = d;
			d->master = true;
		}
	}
}

/*
 * Scans one storage path for domains not seen yet.  With fatal, a missing
 * path or a lease held elsewhere fails; otherwise they are reported.
 */
static int scan_path(Storage *st, const char *path, GPtrArray *found)
{
	g_autoptr(GDir) dir = NULL;
	g_autoptr(GError) err = NULL;
	const char *name;

	dir = g_dir_open(path, 0, &err);
	if (!dir)
		return err->code == G_FILE_ERROR_NOENT ? -ENOENT : -ENOTDIR;
	while ((name = g_dir_read_name(dir))) {
		g_autofree char *dirpath = g_build_filename(path, name, NULL);
		g_autofree char *md = g_build_filename(dirpath, "dom_md", NULL);
		g_autofree char *error = NULL;
		Domain *d = NULL;
		int r;

		if (!uuid_is_valid(name) || !g_file_test(md, G_FILE_TEST_IS_DIR) ||
		    already_seen(st, dirpath, name))
			continue;
		r = domain_probe(st, dirpath, name, &d, &error);
		if (take_probed(st, dirpath, dirpath, r, d, error, found) == -EBUSY)
			return -EBUSY; /* fatal: the caller says so */
	}
	return 0;
}

/*
 * Tries for the SPM role of the pools of newly found domains (another host
 * may hold it: then this one only reads), then loads the domains.
 */
static int activate(Storage *st, GPtrArray *found)
{
	g_autoptr(GHashTable) pools = g_hash_table_new(NULL, NULL);
	GHashTableIter it;
	gpointer key, value;

	for (guint i = 0; i < found->len; i++) {
		Pool *p = ((Domain *)found->pdata[i])->pool;
		uint64_t lver = 0;
		int r;

		if (g_hash_table_contains(pools, p) || lease_is_spm(st->leases, p->uuid))
			continue;
		r = spm_acquire(p, &lver);
		if (r == -EBUSY || r == -ENOENT) {
			log_info("pool '%s': %s", p->uuid,
				 r == -EBUSY ? "another host is SPM" : "no master domain seen");
			continue;
		}
		if (r < 0)
			return log_error_errno(r, "pool '%s': taking the SPM role", p->uuid);
		g_hash_table_insert(pools, p, GSIZE_TO_POINTER(lver + 1));
	}
	for (guint i = 0; i < found->len; i++) {
		Domain *d = found->pdata[i];
		int r = domain_activate(d);

		if (r < 0)
			return log_error_errno(r, "domain '%s': loading", d->uuid);
	}
	g_hash_table_iter_init(&it, pools);
	while (g_hash_table_iter_next(&it, &key, &value))
		spm_begin(key, GPOINTER_TO_SIZE(value) - 1, true);
	return 0;
}

int dom_reload_md(Domain *d)
{
	g_autoptr(MdKv) kv = NULL;
	g_autoptr(MdDomainInfo) info = NULL;
	g_autofree char *text = NULL;
	size_t len = 0;
	int r;

	if (d->bd) {
		g_auto(GStrv) tags = NULL;

		r = blockdom_read_kv(d->bd, &tags, &kv);
	} else {
		r = file_read_all(d->dir_fd, "dom_md/metadata", MD_KV_MAX_TEXT, &text, &len);
		if (r == 0)
			r = md_kv_decode(text, len, &kv);
	}
	if (r == 0)
		r = md_domain_parse(kv, &info);
	if (r < 0)
		return r;
	g_rw_lock_writer_lock(&d->lock);
	md_kv_free(d->kv);
	md_domain_info_free(d->info);
	d->kv = g_steal_pointer(&kv);
	d->info = g_steal_pointer(&info);
	g_rw_lock_writer_unlock(&d->lock);
	return 0;
}

/*
 * The lease manager's thread: this host can no longer renew its lease in a
 * lockspace; its resources there (the SPM role, volume leases) are gone.
 */
static void lease_lost(const char *lockspace, void *opaque)
{
	Storage *st = opaque;

	log_error("domain '%s': this host lost its lease (storage not reachable in time); "
		  "the SPM role and the volume leases there are given up", lockspace);
	/* the cluster thread stops serving at once (cluster.c) */
	g_mutex_lock(&st->cluster_lock);
	st->lease_lost = true;
	g_cond_signal(&st->cluster_cond);
	g_mutex_unlock(&st->cluster_lock);
}

int storage_open(const StorageOptions *opt, Storage **ret)
{
	g_autoptr(Storage) st = g_new0(Storage, 1);
	g_autoptr(GPtrArray) found = g_ptr_array_new();
	int r;

	st->opt = *opt;
	st->opt.paths = g_strdupv(opt->paths);
	g_rw_lock_init(&st->lock);
	g_mutex_init(&st->scan_lock);
	g_mutex_init(&st->cluster_lock);
	g_cond_init(&st->cluster_cond);
	st->pools = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, pool_free);
	st->domains = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, domain_free);
	st->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	st->problems = g_ptr_array_new_with_free_func(problem_free);
	r = lease_manager_new(opt->lease, opt->host_id, opt->io_timeout, &st->leases);
	if (r < 0)
		return r;
	lease_set_lost_callback(st->leases, lease_lost, st);
	for (char **p = st->opt.paths; p && *p; p++) {
		struct stat sb;

		if (stat(*p, &sb) == 0 && S_ISBLK(sb.st_mode))
			continue;
		r = scan_path(st, *p, found);
		if (r < 0)
			return r;
	}
	r = scan_block(st, found);
	if (r < 0)
		return r;
	r = activate(st, found);
	if (r < 0)
		return r;
	st->last_scan = g_get_monotonic_time();
	*ret = g_steal_pointer(&st);
	return 0;
}

int storage_forked(Storage *st)
{
	return lease_manager_forked(st->leases);
}

void storage_start(Storage *st)
{
	cluster_start(st);
}

void storage_rescan(Storage *st)
{
	g_autoptr(GPtrArray) found = g_ptr_array_new();

	if (g_get_monotonic_time() - __atomic_load_n(&st->last_scan, __ATOMIC_RELAXED) <
	    RESCAN_INTERVAL_US)
		return;
	if (!g_mutex_trylock(&st->scan_lock))
		return;
	for (char **p = st->opt.paths; p && *p; p++) {
		struct stat sb;

		/* block storages: read at mount only (behaviour.md) */
		if (stat(*p, &sb) == 0 && S_ISBLK(sb.st_mode))
			continue;
		(void)scan_path(st, *p, found);
	}
	if (found->len)
		(void)activate(st, found);
	__atomic_store_n(&st->last_scan, g_get_monotonic_time(), __ATOMIC_RELAXED);
	g_mutex_unlock(&st->scan_lock);
}

void spm_clear_master(Pool *p)
{
	Domain *m = p->master;
	g_autoptr(MdKv) kv = NULL;

	/* -ENOLCK when not held at all */
	if (!m || !m->info->has_pool_keys || lease_spm_check(p->st->leases, p->uuid) < 0)
		return;
	kv = md_kv_copy(m->kv);
	md_kv_set_int(kv, "POOL_SPM_ID", -1);
	if (m->ops->domain_md_write(m, kv) < 0)
		log_warning("pool '%s': clearing the SPM id on master '%s', ignoring", p->uuid,
			    m->uuid);
}

void storage_free(Storage *st)
{
	if (!st)
		return;
	cluster_stop(st);
	if (st->pools) {
		GHashTableIter it;
		gpointer value;

		g_hash_table_iter_init(&it, st->pools);
		while (g_hash_table_iter_next(&it, NULL, &value)) {
			spm_serve_stop(value);
			spm_clear_master(value);
		}
		g_hash_table_unref(st->pools);
	}
	if (st->domains)
		g_hash_table_unref(st->domains);
	if (st->seen)
		g_hash_table_unref(st->seen);
	if (st->problems)
		g_ptr_array_unref(st->problems);
	lease_manager_free(st->leases);
	g_strfreev(st->opt.paths);
	g_rw_lock_clear(&st->lock);
	g_mutex_clear(&st->scan_lock);
	g_mutex_clear(&st->cluster_lock);
	g_cond_clear(&st->cluster_cond);
	g_free(st);
}

static gint cmp_pool(gconstpointer a, gconstpointer b)
{
	return strcmp((*(Pool *const *)a)->uuid, (*(Pool *const *)b)->uuid);
}

static gint cmp_domain(gconstpointer a, gconstpointer b)
{
	return strcmp((*(Domain *const *)a)->uuid, (*(Domain *const *)b)->uuid);
}

GPtrArray *storage_pools(Storage *st)
{
	GPtrArray *out = g_ptr_array_new();
	GHashTableIter it;
	gpointer value;

	g_rw_lock_reader_lock(&st->lock);
	g_hash_table_iter_init(&it, st->pools);
	while (g_hash_table_iter_next(&it, NULL, &value))
		g_ptr_array_add(out, value);
	g_rw_lock_reader_unlock(&st->lock);
	g_ptr_array_sort(out, cmp_pool);
	return out;
}

Pool *storage_pool_lookup(Storage *st, const char *uuid)
{
	Pool *p;

	g_rw_lock_reader_lock(&st->lock);
	p = g_hash_table_lookup(st->pools, uuid);
	g_rw_lock_reader_unlock(&st->lock);
	return p;
}

unsigned storage_host_id(const Storage *st)
{
	return lease_host_id(st->leases);
}

const char *pool_uuid(const Pool *p)
{
	return p->uuid;
}

Domain *pool_master(Pool *p)
{
	Domain *m;

	g_rw_lock_reader_lock(&p->st->lock);
	m = p->master;
	g_rw_lock_reader_unlock(&p->st->lock);
	return m;
}

GPtrArray *pool_domains(Pool *p)
{
	GPtrArray *out;

	g_rw_lock_reader_lock(&p->st->lock);
	out = g_ptr_array_copy(p->domains, NULL, NULL);
	g_rw_lock_reader_unlock(&p->st->lock);
	g_ptr_array_sort(out, cmp_domain);
	return out;
}

Domain *pool_domain_lookup(Pool *p, const char *uuid)
{
	Domain *found = NULL;

	g_rw_lock_reader_lock(&p->st->lock);
	for (guint i = 0; i < p->domains->len; i++) {
		Domain *d = p->domains->pdata[i];

		if (strcmp(d->uuid, uuid) == 0)
			found = d;
	}
	g_rw_lock_reader_unlock(&p->st->lock);
	return found;
}

bool pool_is_spm(Pool *p)
{
	return __atomic_load_n(&p->spm_ready, __ATOMIC_ACQUIRE) &&
	       lease_is_spm(p->st->leases, p->uuid);
}

int pool_spm_host(Pool *p)
{
	Domain *m;
	int64_t id = -1;

	if (pool_is_spm(p))
		return (int)lease_host_id(p->st->leases);
	/* Another host: the one the pool metadata names (re-read every second). */
	m = pool_master(p);
	if (m) {
		g_rw_lock_reader_lock(&m->lock);
		if (m->info->has_pool_keys)
			id = m->info->spm_id;
		g_rw_lock_reader_unlock(&m->lock);
	}
	return id > 0 && id <= 2000 ? (int)id : -1;
}

const char *dom_uuid(const Domain *d)
{
	return d->uuid;
}

Pool *dom_pool(Domain *d)
{
	return d->pool;
}

bool dom_is_iso(const Domain *d)
{
	return d->iso;
}

void dom_get_info(Domain *d, DomainInfo *ret)
{
	static const char *const classes[MD_SD_CLASS_MAX] = { "data", "iso", "backup" };

	memset(ret, 0, sizeof(*ret));
	g_strlcpy(ret->uuid, d->uuid, sizeof(ret->uuid));
	ret->type = d->ops->type;
	g_rw_lock_reader_lock(&d->lock);
	ret->cls = d->info->cls < MD_SD_CLASS_MAX ? classes[d->info->cls] : "data";
	ret->role = d->master ? "master" : "regular";
	ret->version = d->info->version;
	ret->description = g_strdup(d->info->description ? d->info->description : "");
	g_rw_lock_reader_unlock(&d->lock);
}

void dom_info_release(DomainInfo *info)
{
	g_clear_pointer(&info->description, g_free);
}

int dom_statfs(Domain *d, struct statvfs *ret)
{
	return d->ops->statfs(d, ret);
}

static void status_domain(JsonBuilder *b, Domain *d)
{
	DomainInfo info;
	struct statvfs sv;
	g_autoptr(GPtrArray) corrupt = g_ptr_array_new_with_free_func(g_free);
	guint n_images = 0, n_volumes = 0;
	GHashTableIter it;
	gpointer value;
	bool have_sv = dom_statfs(d, &sv) == 0;

	dom_get_info(d, &info);
	g_rw_lock_reader_lock(&d->lock);
	n_images = d->iso ? 0 : g_hash_table_size(d->images);
	n_volumes = g_hash_table_size(d->volumes);
	g_hash_table_iter_init(&it, d->volumes);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		Volume *v = value;

		if (v->corrupt)
			g_ptr_array_add(corrupt, g_strdup(v->name));
	}
	g_rw_lock_reader_unlock(&d->lock);
	g_ptr_array_sort(corrupt, (GCompareFunc)g_strcmp0);

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "uuid");
	json_builder_add_string_value(b, info.uuid);
	json_builder_set_member_name(b, "type");
	json_builder_add_string_value(b, info.type);
	json_builder_set_member_name(b, "class");
	json_builder_add_string_value(b, info.cls);
	json_builder_set_member_name(b, "role");
	json_builder_add_string_value(b, info.role);
	json_builder_set_member_name(b, "version");
	json_builder_add_int_value(b, info.version);
	json_builder_set_member_name(b, "description");
	json_builder_add_string_value(b, info.description);
	json_builder_set_member_name(b, "path");
	json_builder_add_string_value(b, d->dir);
	json_builder_set_member_name(b, "size");
	json_builder_add_int_value(b, have_sv ? (gint64)(sv.f_blocks * sv.f_frsize) : 0);
	json_builder_set_member_name(b, "free");
	json_builder_add_int_value(b, have_sv ? (gint64)(sv.f_bavail * sv.f_frsize) : 0);
	json_builder_set_member_name(b, "state");
	json_builder_add_string_value(b, have_sv ? "active" : "unreachable");
	json_builder_set_member_name(b, "images");
	json_builder_add_int_value(b, n_images);
	json_builder_set_member_name(b, "volumes");
	json_builder_add_int_value(b, n_volumes);
	if (d->bd)
		block_status(d, b);
	json_builder_set_member_name(b, "corrupt");
	json_builder_begin_array(b);
	for (guint i = 0; i < corrupt->len; i++)
		json_builder_add_string_value(b, corrupt->pdata[i]);
	json_builder_end_array(b);
	json_builder_end_object(b);
	dom_info_release(&info);
}

JsonObject *storage_status(Storage *st)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(GPtrArray) pools = storage_pools(st);
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "host_id");
	json_builder_add_int_value(b, storage_host_id(st));
	json_builder_set_member_name(b, "lease");
	json_builder_add_string_value(b, lease_kind_to_string(lease_kind(st->leases)));
	json_builder_set_member_name(b, "pools");
	json_builder_begin_array(b);
	for (guint i = 0; i < pools->len; i++) {
		Pool *p = pools->pdata[i];
		g_autoptr(GPtrArray) doms = pool_domains(p);
		Domain *m = pool_master(p);
		int spm = pool_spm_host(p);

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "uuid");
		json_builder_add_string_value(b, p->uuid);
		json_builder_set_member_name(b, "spm");
		if (spm < 0)
			json_builder_add_null_value(b);
		else
			json_builder_add_int_value(b, spm);
		json_builder_set_member_name(b, "is_spm");
		json_builder_add_boolean_value(b, pool_is_spm(p));
		json_builder_set_member_name(b, "master");
		if (m)
			json_builder_add_string_value(b, m->uuid);
		else
			json_builder_add_null_value(b);
		json_builder_set_member_name(b, "domains");
		json_builder_begin_array(b);
		for (guint j = 0; j < doms->len; j++)
			status_domain(b, doms->pdata[j]);
		json_builder_end_array(b);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	json_builder_set_member_name(b, "problems");
	json_builder_begin_array(b);
	g_rw_lock_reader_lock(&st->lock);
	for (guint i = 0; i < st->problems->len; i++) {
		Problem *pr = st->problems->pdata[i];

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "path");
		json_builder_add_string_value(b, pr->path);
		json_builder_set_member_name(b, "error");
		json_builder_add_string_value(b, pr->error);
		json_builder_end_object(b);
	}
	g_rw_lock_reader_unlock(&st->lock);
	json_builder_end_array(b);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	return json_object_ref(json_node_get_object(root));
}
