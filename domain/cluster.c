/*
 * cluster.c: the SPM role of each pool, as one host sees it.
 *
 * Election.  No host is told to be SPM: each one's cluster thread tries,
 * without waiting, to take the pool's SPM lease (`SDM` on the master
 * domain) every ELECT_INTERVAL while nobody holds it, so the role goes to
 * whoever asks first after it became free: at the first mount, after the
 * holder released it, or once a dead holder's lease expired (sanlock's
 * bounds for the lockspace's io_timeout).  A host that released the role
 * stays out of the contest so that another takes it: until the lease's
 * version on disk shows that another host did, or for RELEASE_BACKOFF when
 * nobody does (then the role comes back).  Ending the wait as soon as the
 * version moves matters when the role is passed around quickly: a host
 * still waiting after its own release must not leave the role to the one
 * that has just given it up.
 *
 * Starting as SPM (spm_start): every domain of the pool is re-read (another
 * SPM may have changed it), its journal replayed (operations the last SPM
 * was doing when it died are finished or rolled back), derived metadata
 * repaired; then POOL_SPM_ID and POOL_SPM_LVER (the lease version) go into
 * the pool metadata, and the mailbox server starts answering the other
 * hosts.
 *
 * Fencing.  Before any metadata change the SPM asks the lease manager
 * whether its lease still holds (spm_guard); the cluster thread asks too,
 * every CHECK_INTERVAL, and the lease manager calls back at once when
 * sanlock reports the lockspace lost.  A host without the lease writes no
 * metadata: its changes go to the SPM through the mailbox.
 */
#include "domain/model-int.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/banned.h"

#define TICK_US (100 * 1000)
/* Asking sanlock for the SPM lease: each second while it looks free on
 * disk, else every ELECT_SLOW (a dead holder's lease looks held until
 * sanlock finds its host dead: then the attempt succeeds). */
#define ELECT_INTERVAL_US (1000 * 1000)
#define ELECT_SLOW_US (5 * G_USEC_PER_SEC)
/* The SPM confirms its lease with sanlock this often (and before writes). */
#define CHECK_INTERVAL_US (1000 * 1000)
#define RELEASE_BACKOFF_US (3 * G_USEC_PER_SEC)

/* Set while a thread does work the SPM was asked for: never forwarded again. */
static __thread bool serving;

void spm_set_serving(bool on)
{
	serving = on;
}

int spm_guard(Domain *d)
{
	Pool *p = d->pool;
	int r;

	if (d->shadow)
		return -EROFS;
	if (!lease_is_spm(d->st->leases, p->uuid))
		return serving ? -ENOLCK : 1;
	r = lease_spm_check(d->st->leases, p->uuid);
	if (r < 0) {
		log_error("pool '%s': the SPM lease is lost, writing nothing", p->uuid);
		return -ENOLCK;
	}
	return 0;
}

/*
 * Re-reads, replays and repairs every domain of p as its new SPM.  Every
 * domain's op_lock is held throughout, so no operation runs on a domain
 * whose journal is not replayed yet (nothing holds two op_locks otherwise,
 * so taking them all cannot deadlock).
 */
static void spm_recover(Pool *p)
{
	g_autoptr(GPtrArray) doms = pool_domains(p);

	for (guint i = 0; i < doms->len; i++)
		g_mutex_lock(&((Domain *)doms->pdata[i])->op_lock);
	for (guint i = 0; i < doms->len; i++) {
		Domain *d = doms->pdata[i];
		int r = 0;

		r = dom_reload_locked(d);
		if (r == 0)
			r = jrnl_replay(d);
		if (r == 0)
			(void)dom_repair(d);
		if (r < 0)
			log_warning_errno(r, "domain '%s': recovering as the new SPM", d->uuid);
	}
	for (guint i = doms->len; i-- > 0;)
		g_mutex_unlock(&((Domain *)doms->pdata[i])->op_lock);
}

/*
 * The SPM lease's leader as it is on disk: whether it is free and its
 * version.  < 0 when it cannot be read (then nothing is known).
 */
static int spm_peek(Pool *p, bool *ret_free, uint64_t *ret_lver)
{
	Domain *m = pool_master(p);
	g_autofree char *path = NULL;
	uint64_t off = 0;
	int r;

	if (!m)
		return -ENOENT;
	r = m->ops->lease_area(m, DOM_LEASE_SPM, NULL, NULL, &path, &off);
	if (r == 0)
		r = lease_resource_peek(path, off, ret_free, ret_lver);
	return r;
}

bool dom_may_write(Domain *d)
{
	return !d->shadow && d->pool && lease_is_spm(d->st->leases, d->pool->uuid);
}

int spm_acquire(Pool *p, uint64_t *ret_lver)
{
	Domain *m = pool_master(p);
	g_autofree char *path = NULL;
	uint64_t off = 0;
	int r;

	*ret_lver = 0;
	if (!m)
		return -ENOENT;
	r = m->ops->lease_area(m, DOM_LEASE_SPM, NULL, NULL, &path, &off);
	if (r < 0)
		return r;
	return lease_spm_acquire(p->st->leases, p->uuid, m->uuid, path, off, ret_lver);
}

void spm_begin(Pool *p, uint64_t lver, bool fresh)
{
	log_info("pool '%s': this host (%u) is SPM, lease version %" G_GUINT64_FORMAT, p->uuid,
		 lease_host_id(p->st->leases), lver);
	if (!fresh)
		spm_recover(p);
	spm_update_master(p, lver);
	if (lease_kind(p->st->leases) != LEASE_KIND_LOCAL) {
		g_mutex_lock(&p->server_lock);
		p->lver = lver;
		g_mutex_unlock(&p->server_lock);
		/* at mount the cluster thread starts it, after daemonizing: no
		 * thread started before the fork would live on in the daemon */
		if (p->st->cluster)
			spm_serve_start(p);
	}
	__atomic_store_n(&p->spm_ready, true, __ATOMIC_RELEASE);
}

/*
 * The lease manager could not confirm the SPM lease.  Lost for good (the
 * manager dropped it): metadata changes go to the next SPM.  Otherwise (the
 * sanlock daemon did not answer in time, say) the mailbox pauses until a
 * later check confirms the lease; spm_guard() refuses writes meanwhile.
 */
static void spm_lost(Pool *p)
{
	spm_serve_stop(p);
	if (!lease_is_spm(p->st->leases, p->uuid))
		log_error("pool '%s': this host lost its lease on the SPM role; metadata changes go to "
			  "the next SPM",
			  p->uuid);
	else
		log_info("pool '%s': the SPM lease could not be confirmed; the mailbox waits "
			 "for the next check",
			 p->uuid);
}

static int spm_release_locked(Pool *p)
{
	Storage *st = p->st;
	uint64_t lver = 0;
	int r;

	if (!pool_is_spm(p))
		return -EPERM;
	if (lease_kind(st->leases) == LEASE_KIND_LOCAL)
		return lease_spm_release(st->leases, p->uuid, NULL); /* nobody else to take it */
	__atomic_store_n(&p->spm_ready, false, __ATOMIC_RELAXED);
	spm_serve_stop(p);
	spm_clear_master(p);
	r = lease_spm_release(st->leases, p->uuid, &lver);
	if (r < 0) {
		/* still SPM (the lease manager kept the hold): say so again */
		log_warning_errno(r, "pool '%s': releasing the SPM lease, staying SPM", p->uuid);
		spm_update_master(p, lver);
		spm_serve_start(p);
		__atomic_store_n(&p->spm_ready, true, __ATOMIC_RELAXED);
		return r;
	}
	/* role_lock held: the cluster thread sees both at its next tick */
	p->released_lver = lver;
	p->backoff_until = g_get_monotonic_time() + RELEASE_BACKOFF_US;
	log_info("pool '%s': SPM role released (lease version %" G_GUINT64_FORMAT ")", p->uuid,
		 lver);
	return 0;
}

/* Waits for the role to settle (an SPM still starting finishes first). */
int pool_spm_release(Pool *p)
{
	int r;

	g_mutex_lock(&p->role_lock);
	r = spm_release_locked(p);
	g_mutex_unlock(&p->role_lock);
	return r;
}

static void cluster_tick_locked(Pool *p, gint64 now)
{
	Storage *st = p->st;
	bool known, free_ = true;
	uint64_t lver = 0;

	if (lease_is_spm(st->leases, p->uuid)) {
		spm_publish_changes(p);
		if (now - p->last_try < CHECK_INTERVAL_US)
			return;
		p->last_try = now;
		if (lease_spm_check(st->leases, p->uuid) < 0) {
			spm_lost(p);
		} else {
			spm_serve_start(p); /* again after a check that failed */
		}
		return;
	}
	spm_serve_stop(p); /* no-op unless the role went away */
	__atomic_store_n(&p->spm_ready, false, __ATOMIC_RELAXED);
	if (now - p->last_try < ELECT_INTERVAL_US)
		return;
	known = spm_peek(p, &free_, &lver) == 0;
	if (now < p->backoff_until) {
		/* released it: wait until another host has taken it since */
		if (!known || lver <= p->released_lver)
			return;
		p->backoff_until = 0;
	}
	/* on doubt (the leader cannot be read) ask sanlock, which decides */
	if (now - p->last_try < ELECT_SLOW_US && known && !free_)
		return;
	p->last_try = now;
	if (spm_acquire(p, &lver) == 0)
		spm_begin(p, lver, false);
}

/*
 * One round for one pool.  Under role_lock: a release (another thread)
 * never runs while this host takes the role, starts as SPM or restarts
 * the mailbox after a check.
 */
static void cluster_tick(Pool *p, gint64 now)
{
	/* Re-reading what the SPM changed is reading only: outside the lock.
	 * Only this thread takes the role, so it cannot become ours meanwhile. */
	if (!lease_is_spm(p->st->leases, p->uuid))
		spm_refresh(p, now);
	g_mutex_lock(&p->role_lock);
	cluster_tick_locked(p, now);
	g_mutex_unlock(&p->role_lock);
}

static gpointer cluster_thread(gpointer opaque)
{
	Storage *st = opaque;

	g_mutex_lock(&st->cluster_lock);
	while (!st->cluster_stop) {
		gint64 deadline = g_get_monotonic_time() + TICK_US;

		while (!st->cluster_stop && !st->lease_lost &&
		       g_cond_wait_until(&st->cluster_cond, &st->cluster_lock, deadline))
			;
		if (st->cluster_stop)
			break;
		st->lease_lost = false;
		g_mutex_unlock(&st->cluster_lock);
		{
			g_autoptr(GPtrArray) pools = storage_pools(st);

			for (guint i = 0; i < pools->len; i++)
				cluster_tick(pools->pdata[i], g_get_monotonic_time());
		}
		g_mutex_lock(&st->cluster_lock);
	}
	g_mutex_unlock(&st->cluster_lock);
	return NULL;
}

void cluster_start(Storage *st)
{
	if (lease_kind(st->leases) == LEASE_KIND_LOCAL)
		return; /* one host: SPM from the mount on, nothing to watch */
	st->cluster = g_thread_new("cluster", cluster_thread, st);
}

void cluster_stop(Storage *st)
{
	if (!st->cluster)
		return;
	g_mutex_lock(&st->cluster_lock);
	st->cluster_stop = true;
	g_cond_signal(&st->cluster_cond);
	g_mutex_unlock(&st->cluster_lock);
	g_thread_join(st->cluster);
	st->cluster = NULL;
}
