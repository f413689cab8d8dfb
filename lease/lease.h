/*
 * lease: cluster locks behind one interface (STYLE.md 1).  Two backends:
 *
 *   local    one host, no cluster safety: an exclusive flock() on each
 *            domain's dom_md/ids (what oVirt's LOCALFS domains do), so a
 *            second daemon on the same storage is refused; this host is
 *            always SPM; volume leases are no-ops.
 *   sanlock  the sanlock daemon found the usual way (SANLOCK_RUN_DIR
 *            honoured), through libsanlock: a lockspace per domain
 *            (add_lockspace with the manager's io_timeout; the one on disk
 *            rules), the pool's SPM resource `SDM` and the volume leases as
 *            paxos resources.  One registered connection per lockspace,
 *            serialised by its own mutex (lease.c has the why).
 *
 * Calling sequence:
 *   lease_manager_new(kind, host_id, io_timeout) -> LeaseManager
 *   lease_set_lost_callback(m, fn, opaque)       before anything is taken
 *   lease_join(m, lockspace, path, offset)       per domain, before use
 *   lease_spm_acquire(m, ...) / lease_is_spm(m)  pool role
 *   lease_spm_check(m, pool)                     before each metadata write
 *   lease_acquire() / lease_release()            volume leases
 *   lease_manager_forked(m)                      in a daemonized child
 *   lease_manager_free(m)                        leaves everything
 *
 * Lease loss (sanlock).  When this host cannot renew its host id in a
 * lockspace (8 io_timeouts without a successful renewal, or a delta lease
 * that is not ours any more), sanlock ends every lease holder in that
 * lockspace.  This process tells sanlock, per connection, a killpath:
 * kill(1) sending it a real-time signal whose value names the lockspace,
 * instead of being killed.  A monitor thread then closes that lockspace's
 * connection (the daemon releases everything held through it), forgets the
 * pools whose SPM resource was there (lease_is_spm() false,
 * lease_spm_check() -ENOLCK), makes the holds there no-ops, and calls the
 * lost callback; the process, and its FUSE mount, stay up.  The lockspace
 * counts as not joined until lease_join() is called again.  The daemon
 * closing a connection (sanlock stopped or crashed) is the same loss.  Only
 * one sanlock manager may exist in a process at a time (-EALREADY).
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
 * sanlock: registers with the daemon; -EHOSTUNREACH when none answers,
 * -ENOENT without kill(1) for the killpath, -EALREADY when this process has
 * a sanlock manager already.  The calling thread (and the threads it makes
 * from then on) block the killpath's signal: only the monitor takes it.
 */
int lease_manager_new(LeaseKind kind, unsigned host_id, unsigned io_timeout,
		      LeaseManager **ret);
void lease_manager_free(LeaseManager *m);
/*
 * In the child that goes on after a fork() (daemonizing), before the
 * leases are used again: starts the sanlock monitor thread anew and points
 * every killpath at this process.  A no-op for the local backend.
 */
int lease_manager_forked(LeaseManager *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LeaseManager, lease_manager_free)

unsigned lease_host_id(const LeaseManager *m);
LeaseKind lease_kind(const LeaseManager *m);

/*
 * Joins the lockspace of a domain, whose delta leases (the `ids` area) are
 * at offset of path (absolute: the sanlock daemon opens it), and waits
 * until this host holds its host id (sanlock: add_lockspace with the
 * manager's io_timeout; about 3 io_timeouts, 21 s at the default 10; a
 * lockspace the daemon has joined already is fine; -EADDRINUSE when a live
 * host uses our host id).  local: an exclusive flock on path; -EBUSY when
 * another daemon holds it.
 */
int lease_join(LeaseManager *m, const char *lockspace, const char *path, uint64_t offset);

/*
 * Tries once, without waiting for a live holder, to take the pool's SPM
 * resource (`SDM` in lockspace, at offset of path).  0: taken (or held
 * already), *ret_lver (may be NULL) is the resource's lease version;
 * -EBUSY: another host holds it and is alive, or may be (its lease is
 * valid until its host id is dead: 8 io_timeouts + 60 s after its last
 * renewal); -ENOLCK: lockspace not joined; other -errno on failure.
 * local: always taken, lver 0 (no version kept:
 * the pool metadata counts).
 */
int lease_spm_acquire(LeaseManager *m, const char *pool_uuid, const char *lockspace,
		      const char *path, uint64_t offset, uint64_t *ret_lver);
/*
 * Gives the SPM resource back; -EPERM when not held.  With ret_lver, the
 * lease version given up (0 for local leases).
 */
int lease_spm_release(LeaseManager *m, const char *pool_uuid, uint64_t *ret_lver);
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
 * lease_release() or by the process's death (the sanlock daemon releases
 * what a dead client held at once).  One try, as lease_spm_acquire():
 * -EBUSY when another host holds it; -ENOLCK when the lockspace is not
 * joined (or was lost).  local: always granted (no cluster safety).  A
 * hold whose lockspace was lost is released already: lease_release() only
 * frees it.
 */
typedef struct LeaseHold LeaseHold;
int lease_acquire(LeaseManager *m, const char *lockspace, const char *name,
		  const char *path, uint64_t offset, LeaseHold **ret);
void lease_release(LeaseHold *h);

/*
 * Reads the leader record of the paxos resource at offset of path straight
 * from the storage (no daemon): *ret_free is true when nobody holds it
 * (timestamp 0, as sanlock leaves a released resource), *ret_lver is its
 * lease version (+1 at each acquisition, by any host).  -EUCLEAN when the
 * sector is not a resource leader or fails its checksum.  A hint for when
 * to ask sanlock, never a grant.
 */
int lease_resource_peek(const char *path, uint64_t offset, bool *ret_free, uint64_t *ret_lver);

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
