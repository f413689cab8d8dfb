/*
 * lease: cluster locks behind one interface (STYLE.md 1).  Two backends:
 *
 *   local    one host, no cluster safety: an exclusive flock() on each
 *            domain's dom_md/ids (what oVirt's LOCALFS domains do), so a
 *            second daemon on the same storage is refused; this host is
 *            always SPM; volume leases are no-ops.
 *   sanlock  the sanlock daemon (lockspaces, the SPM resource, volume
 *            leases).  Not available yet: opening it fails with a clear
 *            reason (no daemon answering, or not implemented).
 *
 * Calling sequence:
 *   lease_manager_new(kind, host_id, io_timeout) -> LeaseManager
 *   lease_join(m, lockspace, ids_path)           per domain, before use
 *   lease_spm_acquire(m, ...) / lease_is_spm(m)  pool role
 *   lease_manager_free(m)                        leaves everything
 *
 * Formatting sanlock areas on disk (domain create) needs no daemon and is
 * done with sanlock's direct API: lease_format_lockspace(),
 * lease_format_resource().
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef enum LeaseKind {
	LEASE_KIND_SANLOCK,
	LEASE_KIND_LOCAL,
	LEASE_KIND_MAX,
} LeaseKind;

typedef struct LeaseManager LeaseManager;

/* Resource names are at most this long (SANLK_NAME_LEN). */
#define LEASE_NAME_MAX 48

int lease_kind_from_string(const char *s, LeaseKind *ret);
const char *lease_kind_to_string(LeaseKind k);

/*
 * -EHOSTUNREACH when kind is sanlock and no sanlock daemon answers,
 * -EPROTONOSUPPORT when sanlock is reachable but not supported yet.
 */
int lease_manager_new(LeaseKind kind, unsigned host_id, unsigned io_timeout,
		      LeaseManager **ret);
void lease_manager_free(LeaseManager *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LeaseManager, lease_manager_free)

unsigned lease_host_id(const LeaseManager *m);
LeaseKind lease_kind(const LeaseManager *m);

/*
 * Joins the lockspace of a domain, whose delta leases (the `ids` area) are
 * at offset of path, and waits until this host holds its host id (sanlock:
 * add_lockspace with the manager's io_timeout; seconds).  local: an
 * exclusive flock on path; -EBUSY when another daemon holds it.
 */
int lease_join(LeaseManager *m, const char *lockspace, const char *path, uint64_t offset);

/*
 * Tries once, without waiting for a live holder, to take the pool's SPM
 * resource (`SDM` in lockspace, at offset of path).  0: taken, *ret_lver
 * (may be NULL) is the resource's new lease version; -EBUSY: another live
 * host holds it; other -errno on failure.  local: always taken, lver 0
 * (no version kept).
 */
int lease_spm_acquire(LeaseManager *m, const char *pool_uuid, const char *lockspace,
		      const char *path, uint64_t offset, uint64_t *ret_lver);
/* Gives the SPM resource back; -EPERM when not held. */
int lease_spm_release(LeaseManager *m, const char *pool_uuid);
bool lease_is_spm(const LeaseManager *m, const char *pool_uuid);
/*
 * Asks the lease manager (sanlock: the daemon) whether the SPM resource is
 * still validly held: 0 yes; -ENOLCK when it is lost (the pool then is no
 * longer counted as ours).  Called before every metadata write (fencing).
 */
int lease_spm_check(LeaseManager *m, const char *pool_uuid);

/*
 * Called (from a lease-manager thread) when a lease of this host is lost:
 * its lockspace could not be renewed in time, so every resource in it is
 * gone.  The callee stops writing metadata at once.
 */
typedef void (*LeaseLostFn)(const char *lockspace, void *opaque);
void lease_set_lost_callback(LeaseManager *m, LeaseLostFn fn, void *opaque);

/*
 * An exclusive resource held by this process (a volume lease), released by
 * lease_release() or by the process's death.  -EBUSY when a live host
 * holds it.  local: always granted (no cluster safety).
 */
typedef struct LeaseHold LeaseHold;
int lease_acquire(LeaseManager *m, const char *lockspace, const char *name,
		  const char *path, uint64_t offset, LeaseHold **ret);
void lease_release(LeaseHold *h);

/*
 * The sanlock resource name of a volume: the name itself when it fits,
 * else its first 8 bytes, '-' and 39 hex digits of its SHA-1.
 */
void lease_volume_resource_name(const char *volume, char ret[LEASE_NAME_MAX + 1]);

/*
 * Writes an empty lockspace (delta leases for every host id) at offset of
 * path; sector_size 512/4096, align in bytes (1..8 MiB).
 */
int lease_format_lockspace(const char *path, uint64_t offset, const char *lockspace,
			   unsigned io_timeout, unsigned sector_size, unsigned align);
/* Writes a free paxos resource at offset of path. */
int lease_format_resource(const char *path, uint64_t offset, const char *lockspace,
			  const char *name, unsigned sector_size, unsigned align);
