#include "lease/lease.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sanlock.h>
#include <sanlock_direct.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/banned.h"

typedef struct LocalLock {
	char *lockspace;
	int fd;
} LocalLock;

struct LeaseManager {
	LeaseKind kind;
	unsigned host_id;
	unsigned io_timeout;
	GPtrArray *locks; /* LocalLock*, local backend */
	GHashTable *spm;  /* pool uuid set: pools this host is SPM of */
	GMutex lock;	  /* protects spm */
	LeaseLostFn lost_fn;
	void *lost_opaque;
};

struct LeaseHold {
	LeaseManager *m;
	char *name;
};

int lease_kind_from_string(const char *s, LeaseKind *ret)
{
	if (strcmp(s, "sanlock") == 0)
		*ret = LEASE_KIND_SANLOCK;
	else if (strcmp(s, "local") == 0)
		*ret = LEASE_KIND_LOCAL;
	else
		return -EINVAL;
	return 0;
}

const char *lease_kind_to_string(LeaseKind k)
{
	return k == LEASE_KIND_SANLOCK ? "sanlock" : "local";
}

static void local_lock_free(gpointer p)
{
	LocalLock *l = p;

	ov_close_fd(l->fd);
	g_free(l->lockspace);
	g_free(l);
}

/* Whether a sanlock daemon listens on its socket (SANLOCK_RUN_DIR honoured). */
static bool sanlock_daemon_answers(void)
{
	const char *dir = g_getenv("SANLOCK_RUN_DIR");
	g_autofree char *path = g_build_filename(dir ? dir : "/run/sanlock", "sanlock.sock", NULL);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	g_auto(OvFd) fd = -1;

	if (strlen(path) >= sizeof(addr.sun_path))
		return false;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	return connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
}

int lease_manager_new(LeaseKind kind, unsigned host_id, unsigned io_timeout,
		      LeaseManager **ret)
{
	LeaseManager *m;

	if (kind == LEASE_KIND_SANLOCK) {
		if (!sanlock_daemon_answers())
			return -EHOSTUNREACH;
		return -EPROTONOSUPPORT;
	}
	m = g_new0(LeaseManager, 1);
	m->kind = kind;
	m->host_id = host_id;
	m->io_timeout = io_timeout;
	m->locks = g_ptr_array_new_with_free_func(local_lock_free);
	m->spm = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_mutex_init(&m->lock);
	*ret = m;
	return 0;
}

void lease_manager_free(LeaseManager *m)
{
	if (!m)
		return;
	g_ptr_array_unref(m->locks);
	g_hash_table_unref(m->spm);
	g_mutex_clear(&m->lock);
	g_free(m);
}

unsigned lease_host_id(const LeaseManager *m)
{
	return m->host_id;
}

LeaseKind lease_kind(const LeaseManager *m)
{
	return m->kind;
}

int lease_join(LeaseManager *m, const char *lockspace, const char *ids_path, uint64_t offset)
{
	g_auto(OvFd) fd = -1;
	LocalLock *l;

	(void)offset;
	fd = open(ids_path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return ov_errno();
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : ov_errno();
	l = g_new0(LocalLock, 1);
	l->lockspace = g_strdup(lockspace);
	l->fd = ov_steal_fd(&fd);
	g_ptr_array_add(m->locks, l);
	log_debug(LOG_CLASS_LEASE, "lockspace '%s': joined as host %u (local)", lockspace,
		  m->host_id);
	return 0;
}

int lease_spm_acquire(LeaseManager *m, const char *pool_uuid, const char *lockspace,
		      const char *leases_path, uint64_t offset, uint64_t *ret_lver)
{
	(void)lockspace;
	(void)leases_path;
	(void)offset;
	g_mutex_lock(&m->lock);
	g_hash_table_add(m->spm, g_strdup(pool_uuid));
	g_mutex_unlock(&m->lock);
	if (ret_lver)
		*ret_lver = 0; /* no version kept: the pool metadata counts */
	return 0;
}

int lease_spm_check(LeaseManager *m, const char *pool_uuid)
{
	return lease_is_spm(m, pool_uuid) ? 0 : -ENOLCK;
}

void lease_set_lost_callback(LeaseManager *m, LeaseLostFn fn, void *opaque)
{
	m->lost_fn = fn;
	m->lost_opaque = opaque;
}

int lease_acquire(LeaseManager *m, const char *lockspace, const char *name,
		  const char *path, uint64_t offset, LeaseHold **ret)
{
	LeaseHold *h = g_new0(LeaseHold, 1);

	(void)lockspace;
	(void)path;
	(void)offset;
	h->m = m;
	h->name = g_strdup(name);
	*ret = h;
	return 0;
}

void lease_release(LeaseHold *h)
{
	if (!h)
		return;
	g_free(h->name);
	g_free(h);
}

int lease_spm_release(LeaseManager *m, const char *pool_uuid)
{
	/* One host: nobody else can take the role, so it comes straight back. */
	log_info("pool '%s': SPM role released by host %u; no other host, taking it again",
		 pool_uuid, m->host_id);
	return 0;
}

bool lease_is_spm(const LeaseManager *m, const char *pool_uuid)
{
	bool r;

	g_mutex_lock((GMutex *)&m->lock);
	r = g_hash_table_contains(m->spm, pool_uuid);
	g_mutex_unlock((GMutex *)&m->lock);
	return r;
}

void lease_volume_resource_name(const char *volume, char ret[LEASE_NAME_MAX + 1])
{
	g_autofree char *sha = NULL;
	size_t len = strlen(volume);

	if (len <= LEASE_NAME_MAX) {
		memcpy(ret, volume, len + 1);
		return;
	}
	sha = g_compute_checksum_for_string(G_CHECKSUM_SHA1, volume, -1);
	memcpy(ret, volume, 8);
	ret[8] = '-';
	memcpy(ret + 9, sha, 39);
	ret[48] = '\0';
}

static uint32_t align_flag(unsigned align, bool resource)
{
	switch (align) {
	case 1 << 20:
		return resource ? SANLK_RES_ALIGN1M : SANLK_LSF_ALIGN1M;
	case 2 << 20:
		return resource ? SANLK_RES_ALIGN2M : SANLK_LSF_ALIGN2M;
	case 4 << 20:
		return resource ? SANLK_RES_ALIGN4M : SANLK_LSF_ALIGN4M;
	case 8 << 20:
		return resource ? SANLK_RES_ALIGN8M : SANLK_LSF_ALIGN8M;
	default:
		return 0;
	}
}

/* sanlock's rv to -errno, once, here (STYLE.md 3). */
static int sanlock_rv_to_errno(int rv)
{
	if (rv >= 0)
		return 0;
	if (rv > -200)
		return rv; /* already -errno */
	log_debug(LOG_CLASS_LEASE, "sanlock returned %d", rv);
	return -EIO;
}

int lease_format_lockspace(const char *path, uint64_t offset, const char *lockspace,
			   unsigned io_timeout, unsigned sector_size, unsigned align)
{
	struct sanlk_lockspace ls;

	if (strlen(lockspace) >= SANLK_NAME_LEN || strlen(path) >= SANLK_PATH_LEN ||
	    !align_flag(align, false) || (sector_size != 512 && sector_size != 4096))
		return -EINVAL;
	memset(&ls, 0, sizeof(ls));
	memcpy(ls.name, lockspace, strlen(lockspace));
	memcpy(ls.host_id_disk.path, path, strlen(path));
	ls.host_id_disk.offset = offset;
	ls.flags = align_flag(align, false) |
		   (sector_size == 512 ? SANLK_LSF_SECTOR512 : SANLK_LSF_SECTOR4K);
	return sanlock_rv_to_errno(sanlock_direct_write_lockspace(&ls, 0, 0, io_timeout));
}

int lease_format_resource(const char *path, uint64_t offset, const char *lockspace,
			  const char *name, unsigned sector_size, unsigned align)
{
	union {
		struct sanlk_resource res;
		char buf[sizeof(struct sanlk_resource) + sizeof(struct sanlk_disk)];
	} u;

	if (strlen(lockspace) >= SANLK_NAME_LEN || strlen(name) > SANLK_NAME_LEN ||
	    strlen(path) >= SANLK_PATH_LEN || !align_flag(align, true) ||
	    (sector_size != 512 && sector_size != 4096))
		return -EINVAL;
	memset(&u, 0, sizeof(u));
	memcpy(u.res.lockspace_name, lockspace, strlen(lockspace));
	memcpy(u.res.name, name, strlen(name));
	u.res.num_disks = 1;
	memcpy(u.res.disks[0].path, path, strlen(path));
	u.res.disks[0].offset = offset;
	u.res.flags = align_flag(align, true) |
		      (sector_size == 512 ? SANLK_RES_SECTOR512 : SANLK_RES_SECTOR4K);
	return sanlock_rv_to_errno(sanlock_direct_write_resource(&u.res, 0, 0, 0));
}
