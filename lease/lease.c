/*
 * lease.c: the local and sanlock backends of lease.h.
 *
 * sanlock, the connections.  libsanlock lets one caller at a time use a
 * registered connection, and the daemon itself refuses a second command
 * while one runs for the same client (-EBUSY, the code we keep for "another
 * host holds it").  A client whose lockspace failed is also refused every
 * new acquire until it has released all its resources.  So each joined
 * lockspace (Space) gets its own registered connection, made at its first
 * acquire, with its own mutex held across the calls on it: a storage
 * outage of one domain then never blocks the leases of another, and giving
 * up a failed lockspace is closing its connection (the daemon releases
 * every resource of a connection that closes).  The Space mutex is the only
 * lock in the product held across a sanlock call; it guards the connection
 * and nothing else, and no other lock is taken while it is held except
 * m->lock, briefly.  Lock order: Space.lock, then LeaseManager.lock.
 *
 * sanlock, lease loss.  When this host cannot renew its delta lease in a
 * lockspace for 8 io_timeouts, the daemon "kills" every client holding a
 * resource in it: first the client's killpath program, once, then, after
 * the grace period (sanlock daemon -g, 40 s), SIGKILL.  Each connection's
 * killpath is kill(1) sending LOST_SIGNAL with the Space's id as the signal
 * value (sigqueue) to this process; the signal handler writes the id into a
 * pipe; the monitor thread reads it, closes that Space's connection (so the
 * daemon drops its resources and the kill stops), forgets the pools whose
 * SPM resource lived there and calls the lost callback.  The process stays
 * up.  A connection the daemon closes (the daemon died or restarted) is
 * taken as the same loss: the monitor polls every connection for hang-up.
 * LOST_SIGNAL is a real-time signal, so two lockspaces failing together
 * queue two signals instead of merging into one.
 *
 * sanlock, fork.  `ovstore mount` without -f daemonizes after the storage
 * is open, so after leases were taken.  Connections survive a fork, the
 * monitor thread does not: the daemonized child calls
 * lease_manager_forked(), which starts a new one that first points every
 * killpath at the new pid.  (Not a pthread_atfork() handler: that would
 * also run in the children lvm is spawned from, which share our
 * connections; a killpath sent from one of them interleaves with our own
 * commands on the same socket.)  The daemon's last resort, SIGKILL, still
 * names the pid that registered; it is used only when this process did not
 * give up a lost lockspace in the grace period.
 */
#include "lease/lease.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <sanlock.h>
#include <sanlock_admin.h>
#include <sanlock_direct.h>
#include <sanlock_resource.h>
#include <sanlock_rv.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/log.h"
#include "metadata/md-sanlock.h"
#include "common/banned.h"

/* The killpath's signal: real-time, so several losses queue (see above). */
#define LOST_SIGNAL (SIGRTMIN + 6)
/* The resource name of the pool's SPM lease (reference section 9.1). */
#define SPM_RESOURCE "SDM"

typedef struct LocalLock {
	char *lockspace;
	int fd;
} LocalLock;

/* A lockspace joined through a sanlock manager (never freed before it). */
typedef struct Space {
	LeaseManager *m;
	char name[SANLK_NAME_LEN + 1];
	char *path;
	uint64_t offset;
	uint32_t id;	 /* the killpath signal's value; unique in the process */
	bool added;	 /* this manager added it to the daemon: removed at the end */
	GMutex lock;	 /* serialises the calls on sock; protects the fields below */
	int sock;	 /* registered connection holding its resources, -1 none yet */
	pid_t sock_pid;	 /* the pid its killpath names */
	unsigned gen;	 /* bumped when sock is dropped: older holds are gone */
	bool joined;	 /* false again once lost */
} Space;

/* A pool whose SPM resource this host holds (sanlock). */
typedef struct SpmHold {
	Space *space;
	unsigned gen;
	uint64_t lver;
} SpmHold;

struct LeaseManager {
	LeaseKind kind;
	unsigned host_id;
	unsigned io_timeout;
	GPtrArray *locks; /* LocalLock*, local backend */
	GMutex lock;	  /* protects spm and spaces */
	GHashTable *spm;  /* pool uuid -> SpmHold* (local: NULL values) */
	/* sanlock */
	GPtrArray *spaces; /* Space* (owned) */
	char *kill_path;   /* kill(1) */
	int pipe_rd, pipe_wr;
	pthread_t monitor;
	bool monitor_running;
	LeaseLostFn lost_fn; /* set before the leases are used */
	void *lost_opaque;
};

struct LeaseHold {
	LeaseManager *m;
	char *name;
	Space *space; /* sanlock */
	unsigned gen;
	char *path;
	uint64_t offset;
};

/* The one sanlock manager of the process (signals and fork are per process). */
static LeaseManager *the_manager;
static volatile sig_atomic_t lost_pipe_wr = -1;
static uint32_t next_space_id = 1;
static GMutex manager_mutex; /* protects the_manager, next_space_id */

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

/* sanlock's rv to -errno, once, here (STYLE.md 3); classes of sanlock_rv.h. */
static int sanlock_rv_to_errno(int rv)
{
	if (rv >= 0)
		return 0;
	if (rv > -200)
		return rv; /* already -errno */
	log_debug(LOG_CLASS_LEASE, "sanlock returned %d", rv);
	switch (rv) {
	case SANLK_AIO_TIMEOUT:
		return -ETIMEDOUT;
	case SANLK_ACQUIRE_IDLIVE:	/* the owner's host renews its host id */
	case SANLK_ACQUIRE_OWNED:	/* another host won the ballot */
	case SANLK_ACQUIRE_OWNED_RETRY: /* its owner may be dying: not yet */
	case SANLK_ACQUIRE_OTHER:	/* another local client holds it */
	case SANLK_ACQUIRE_SHRETRY:
		return -EBUSY;
	case SANLK_HOSTID_BUSY: /* another live host uses our host id */
		return -EADDRINUSE;
	case SANLK_ACQUIRE_LOCKSPACE: /* not joined here */
	case SANLK_RELEASE_OWNER:
	case SANLK_RELEASE_LVER:
		return -ENOLCK;
	case SANLK_LEADER_MAGIC:
	case SANLK_LEADER_VERSION:
	case SANLK_LEADER_SECTORSIZE:
	case SANLK_LEADER_LOCKSPACE:
	case SANLK_LEADER_RESOURCE:
	case SANLK_LEADER_NUMHOSTS:
	case SANLK_LEADER_CHECKSUM:
	case SANLK_DBLOCK_CHECKSUM:
	case SANLK_ADDLS_SIZES:
		return -EUCLEAN; /* not the area we were told, or a corrupt one */
	case SANLK_ADDLS_INVALID_HOSTID:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static void local_lock_free(gpointer p)
{
	LocalLock *l = p;

	ov_close_fd(l->fd);
	g_free(l->lockspace);
	g_free(l);
}

static void space_free(gpointer p)
{
	Space *s = p;

	ov_close_fd(s->sock);
	g_mutex_clear(&s->lock);
	g_free(s->path);
	g_free(s);
}

/* Async-signal-safe: hands the lost Space's id to the monitor. */
static void lost_signal_handler(int sig, siginfo_t *si, void *uctx)
{
	int saved = errno;
	uint32_t id;

	(void)sig;
	(void)uctx;
	if (si->si_code == SI_QUEUE && lost_pipe_wr >= 0) {
		id = (uint32_t)si->si_value.sival_int;
		if (id != 0)
			(void)!write(lost_pipe_wr, &id, sizeof(id));
	}
	errno = saved;
}

/* The killpath argument string: "-s SIG -q ID PID" (sanlock splits it on spaces). */
static int space_set_killpath_locked(Space *s)
{
	char args[SANLK_HELPER_ARGS_LEN];
	int r;

	g_snprintf(args, sizeof(args), "-s %d -q %" PRIu32 " %d", LOST_SIGNAL, s->id,
		   (int)getpid());
	r = sanlock_killpath(s->sock, 0, s->m->kill_path, args);
	if (r < 0)
		return sanlock_rv_to_errno(r);
	s->sock_pid = getpid();
	return 0;
}

/* The Space's registered connection, made at first use (s->lock held). */
static int space_sock_locked(Space *s)
{
	int r;

	if (!s->joined)
		return -ENOLCK;
	if (s->sock >= 0)
		return 0;
	s->sock = sanlock_register();
	if (s->sock < 0) {
		r = s->sock;
		s->sock = -1;
		return r == -ECONNREFUSED || r == -ENOENT ? -EHOSTUNREACH
							   : sanlock_rv_to_errno(r);
	}
	(void)fcntl(s->sock, F_SETFD, FD_CLOEXEC);
	r = space_set_killpath_locked(s);
	if (r < 0) {
		ov_close_fd(s->sock);
		s->sock = -1;
		return r;
	}
	/* the monitor polls the new connection for hang-up */
	if (s->m->pipe_wr >= 0) {
		uint32_t zero = 0;

		(void)!write(s->m->pipe_wr, &zero, sizeof(zero));
	}
	log_debug(LOG_CLASS_LEASE, "lockspace '%s': registered with sanlock (killpath %s)",
		  s->name, s->m->kill_path);
	return 0;
}

/* Drops a lost lockspace's connection; the daemon releases its resources. */
static void space_lost(Space *s)
{
	LeaseManager *m = s->m;
	GHashTableIter it;
	gpointer value;
	bool was;

	g_mutex_lock(&s->lock);
	was = s->joined;
	s->joined = false;
	ov_close_fd(s->sock);
	s->sock = -1;
	s->gen++;
	g_mutex_lock(&m->lock);
	g_hash_table_iter_init(&it, m->spm);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		SpmHold *sh = value;

		if (sh->space == s)
			g_hash_table_iter_remove(&it);
	}
	g_mutex_unlock(&m->lock);
	g_mutex_unlock(&s->lock);
	if (!was)
		return;
	log_debug(LOG_CLASS_LEASE, "lockspace '%s': host %u lost its lease, resources dropped",
		  s->name, m->host_id);
	if (m->lost_fn)
		m->lost_fn(s->name, m->lost_opaque);
}

static Space *space_by_id(LeaseManager *m, uint32_t id)
{
	Space *found = NULL;

	g_mutex_lock(&m->lock);
	for (guint i = 0; i < m->spaces->len; i++) {
		Space *s = m->spaces->pdata[i];

		if (s->id == id)
			found = s;
	}
	g_mutex_unlock(&m->lock);
	return found;
}

/* After a fork: every killpath names this process. */
static void repoint_killpaths(LeaseManager *m)
{
	g_autoptr(GPtrArray) spaces = g_ptr_array_new(); /* borrowed: no free func */

	g_mutex_lock(&m->lock);
	for (guint i = 0; i < m->spaces->len; i++)
		g_ptr_array_add(spaces, m->spaces->pdata[i]);
	g_mutex_unlock(&m->lock);
	for (guint i = 0; i < spaces->len; i++) {
		Space *s = spaces->pdata[i];

		g_mutex_lock(&s->lock);
		if (s->sock >= 0 && s->sock_pid != getpid() && space_set_killpath_locked(s) < 0)
			log_debug(LOG_CLASS_LEASE, "lockspace '%s': cannot point the killpath at "
				  "pid %d", s->name, (int)getpid());
		g_mutex_unlock(&s->lock);
	}
}

/*
 * The monitor: ids from the signal handler (0: the set of connections
 * changed; UINT32_MAX: stop), and hang-ups of the connections.
 */
static void *monitor_main(void *arg)
{
	LeaseManager *m = arg;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, LOST_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	repoint_killpaths(m);
	for (;;) {
		g_autoptr(GArray) fds = g_array_new(FALSE, TRUE, sizeof(struct pollfd));
		g_autoptr(GPtrArray) owners = g_ptr_array_new();
		struct pollfd pfd = { .fd = m->pipe_rd, .events = POLLIN };
		int n;

		g_array_append_val(fds, pfd);
		g_ptr_array_add(owners, NULL);
		g_mutex_lock(&m->lock);
		for (guint i = 0; i < m->spaces->len; i++) {
			Space *s = m->spaces->pdata[i];
			/* racy read: a changed sock is checked again under s->lock */
			int fd = __atomic_load_n(&s->sock, __ATOMIC_RELAXED);

			if (fd < 0)
				continue;
			pfd = (struct pollfd){ .fd = fd, .events = POLLRDHUP };
			g_array_append_val(fds, pfd);
			g_ptr_array_add(owners, s);
		}
		g_mutex_unlock(&m->lock);
		n = poll((struct pollfd *)fds->data, fds->len, -1);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		for (guint i = 1; i < fds->len; i++) {
			struct pollfd *p = &g_array_index(fds, struct pollfd, i);
			Space *s = owners->pdata[i];
			bool gone;

			if (!(p->revents & (POLLHUP | POLLRDHUP | POLLERR)))
				continue;
			/* the same connection still, and hung up: the daemon dropped us */
			g_mutex_lock(&s->lock);
			gone = s->sock == p->fd &&
			       poll(&(struct pollfd){ .fd = p->fd, .events = POLLRDHUP }, 1, 0) > 0;
			g_mutex_unlock(&s->lock);
			if (gone)
				space_lost(s);
		}
		if (g_array_index(fds, struct pollfd, 0).revents & POLLIN) {
			uint32_t id;
			ssize_t r = read(m->pipe_rd, &id, sizeof(id));
			Space *s;

			if (r != sizeof(id))
				continue;
			if (id == UINT32_MAX)
				break;
			if (id == 0)
				continue;
			s = space_by_id(m, id);
			if (s)
				space_lost(s);
		}
	}
	return NULL;
}

static int monitor_start(LeaseManager *m)
{
	sigset_t set, old;
	int r;

	/* threads made from here on inherit the mask: only the monitor's
	 * system calls are interrupted by the signal */
	sigemptyset(&set);
	sigaddset(&set, LOST_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	r = -pthread_create(&m->monitor, NULL, monitor_main, m);
	if (r == 0)
		m->monitor_running = true;
	return r;
}

static const char *find_kill(void)
{
	static const char *const paths[] = { "/usr/bin/kill", "/bin/kill" };

	for (size_t i = 0; i < G_N_ELEMENTS(paths); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

static int sanlock_manager_setup(LeaseManager *m)
{
	struct sigaction sa = { .sa_sigaction = lost_signal_handler,
				.sa_flags = SA_SIGINFO | SA_RESTART };
	const char *kill_path = find_kill();
	int fds[2];
	int sock;
	int r;

	sock = sanlock_register();
	if (sock < 0) {
		log_debug(LOG_CLASS_LEASE, "sanlock_register: %d", sock);
		return -EHOSTUNREACH;
	}
	(void)close(sock);
	if (!kill_path) {
		log_debug(LOG_CLASS_LEASE, "no kill(1) for the sanlock killpath");
		return -ENOENT;
	}
	g_mutex_lock(&manager_mutex);
	if (the_manager) {
		g_mutex_unlock(&manager_mutex);
		return -EALREADY;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		g_mutex_unlock(&manager_mutex);
		return ov_errno();
	}
	m->kill_path = g_strdup(kill_path);
	m->pipe_rd = fds[0];
	m->pipe_wr = fds[1];
	(void)fcntl(m->pipe_wr, F_SETFL, O_NONBLOCK);
	lost_pipe_wr = m->pipe_wr;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(LOST_SIGNAL, &sa, NULL);
	r = monitor_start(m);
	if (r == 0)
		the_manager = m;
	else
		lost_pipe_wr = -1;
	g_mutex_unlock(&manager_mutex);
	return r;
}

int lease_manager_new(LeaseKind kind, unsigned host_id, unsigned io_timeout,
		      LeaseManager **ret)
{
	g_autoptr(LeaseManager) m = g_new0(LeaseManager, 1);
	int r;

	m->kind = kind;
	m->host_id = host_id;
	m->io_timeout = io_timeout;
	m->locks = g_ptr_array_new_with_free_func(local_lock_free);
	m->spaces = g_ptr_array_new_with_free_func(space_free);
	m->spm = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	m->pipe_rd = m->pipe_wr = -1;
	g_mutex_init(&m->lock);
	if (kind == LEASE_KIND_SANLOCK) {
		r = sanlock_manager_setup(m);
		if (r < 0)
			return r;
	}
	*ret = g_steal_pointer(&m);
	return 0;
}

int lease_manager_forked(LeaseManager *m)
{
	if (m->kind != LEASE_KIND_SANLOCK || !m->monitor_running)
		return 0;
	/* only the calling thread survived the fork; the monitor did not */
	m->monitor_running = false;
	return monitor_start(m);
}

static void space_fill(const Space *s, struct sanlk_lockspace *ls)
{
	memset(ls, 0, sizeof(*ls));
	memcpy(ls->name, s->name, strlen(s->name));
	ls->host_id = s->m->host_id;
	memcpy(ls->host_id_disk.path, s->path, strlen(s->path));
	ls->host_id_disk.offset = s->offset;
}

/* Leaves every lockspace: resources released, lockspaces we added removed. */
static void sanlock_manager_leave(LeaseManager *m)
{
	for (guint i = 0; i < m->spaces->len; i++) {
		Space *s = m->spaces->pdata[i];
		struct sanlk_lockspace ls;
		int r;

		g_mutex_lock(&s->lock);
		if (s->sock >= 0) {
			/* written to disk before it returns, so the lockspace is unused */
			r = sanlock_release(s->sock, -1, SANLK_REL_ALL, 0, NULL);
			if (r < 0)
				log_debug(LOG_CLASS_LEASE, "lockspace '%s': releasing all: %d",
					  s->name, r);
			ov_close_fd(s->sock);
			s->sock = -1;
		}
		if (s->joined && s->added) {
			/* the daemon frees our host id in the background; a lockspace
			 * another process still uses stays (SANLK_REM_UNUSED) */
			space_fill(s, &ls);
			r = sanlock_rem_lockspace(&ls, SANLK_REM_ASYNC | SANLK_REM_UNUSED);
			log_debug(LOG_CLASS_LEASE, "lockspace '%s': leaving: %d", s->name, r);
		}
		s->joined = false;
		g_mutex_unlock(&s->lock);
	}
}

void lease_manager_free(LeaseManager *m)
{
	if (!m)
		return;
	if (m->kind == LEASE_KIND_SANLOCK && m->pipe_wr >= 0) {
		uint32_t stop = UINT32_MAX;

		sanlock_manager_leave(m);
		g_mutex_lock(&manager_mutex);
		if (the_manager == m)
			the_manager = NULL;
		lost_pipe_wr = -1;
		g_mutex_unlock(&manager_mutex);
		if (m->monitor_running) {
			(void)!write(m->pipe_wr, &stop, sizeof(stop));
			pthread_join(m->monitor, NULL);
		}
		ov_close_fd(m->pipe_rd);
		ov_close_fd(m->pipe_wr);
	}
	g_ptr_array_unref(m->locks);
	g_ptr_array_unref(m->spaces);
	g_hash_table_unref(m->spm);
	g_mutex_clear(&m->lock);
	g_free(m->kill_path);
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

static int local_join(LeaseManager *m, const char *lockspace, const char *ids_path)
{
	g_auto(OvFd) fd = -1;
	LocalLock *l;

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

static Space *space_lookup(LeaseManager *m, const char *lockspace)
{
	Space *found = NULL;

	g_mutex_lock(&m->lock);
	for (guint i = 0; i < m->spaces->len; i++) {
		Space *s = m->spaces->pdata[i];

		if (strcmp(s->name, lockspace) == 0)
			found = s;
	}
	g_mutex_unlock(&m->lock);
	return found;
}

/*
 * add_lockspace, waiting until this host holds its host id.  The daemon
 * answers -EEXIST when it has joined already (another client of ours, or
 * a daemon of ours killed before it left), -EINPROGRESS while someone's add
 * runs and -EAGAIN while a remove runs: then wait and ask again.
 */
static int sanlock_add(LeaseManager *m, Space *s, bool *ret_added)
{
	struct sanlk_lockspace ls;
	/* a remove or someone else's add finishes within a few renewals */
	gint64 deadline = g_get_monotonic_time() +
			  (gint64)(30 + 10 * m->io_timeout) * G_USEC_PER_SEC;
	int r;

	space_fill(s, &ls);
	for (;;) {
		r = sanlock_add_lockspace_timeout(&ls, 0, m->io_timeout);
		if (r == 0) {
			*ret_added = true;
			return 0;
		}
		if (r == -EEXIST) {
			*ret_added = false;
			return 0;
		}
		if ((r != -EINPROGRESS && r != -EAGAIN) || g_get_monotonic_time() > deadline)
			return sanlock_rv_to_errno(r);
		if (r == -EINPROGRESS && sanlock_inq_lockspace(&ls, SANLK_INQ_WAIT) == 0) {
			*ret_added = false;
			return 0;
		}
		g_usleep(G_USEC_PER_SEC / 4);
	}
}

int lease_join(LeaseManager *m, const char *lockspace, const char *ids_path, uint64_t offset)
{
	Space *s;
	bool added = false;
	int r;

	if (m->kind == LEASE_KIND_LOCAL)
		return local_join(m, lockspace, ids_path);
	if (strlen(lockspace) >= SANLK_NAME_LEN || strlen(ids_path) >= SANLK_PATH_LEN)
		return -EINVAL;
	s = space_lookup(m, lockspace);
	if (!s) {
		s = g_new0(Space, 1);
		s->m = m;
		memcpy(s->name, lockspace, strlen(lockspace) + 1);
		s->path = g_strdup(ids_path);
		s->offset = offset;
		s->sock = -1;
		g_mutex_init(&s->lock);
		g_mutex_lock(&manager_mutex);
		s->id = next_space_id++;
		g_mutex_unlock(&manager_mutex);
		g_mutex_lock(&m->lock);
		g_ptr_array_add(m->spaces, s);
		g_mutex_unlock(&m->lock);
	}
	g_mutex_lock(&s->lock);
	if (s->joined) {
		g_mutex_unlock(&s->lock);
		return 0;
	}
	if (strcmp(s->path, ids_path) != 0 || s->offset != offset) {
		g_free(s->path);
		s->path = g_strdup(ids_path);
		s->offset = offset;
	}
	g_mutex_unlock(&s->lock);
	/* seconds (8 io_timeouts and more): no lock held while it runs */
	r = sanlock_add(m, s, &added);
	if (r < 0)
		return r;
	g_mutex_lock(&s->lock);
	s->joined = true;
	s->added = s->added || added;
	g_mutex_unlock(&s->lock);
	log_debug(LOG_CLASS_LEASE, "lockspace '%s': joined as host %u (%s:%" PRIu64 ", %s)",
		  lockspace, m->host_id, ids_path, offset, added ? "added" : "already there");
	return 0;
}

static void res_fill(struct sanlk_resource *res, const char *lockspace, const char *name,
		     const char *path, uint64_t offset)
{
	memset(res, 0, sizeof(*res) + sizeof(struct sanlk_disk));
	memcpy(res->lockspace_name, lockspace, strlen(lockspace));
	memcpy(res->name, name, strlen(name));
	res->num_disks = 1;
	memcpy(res->disks[0].path, path, strlen(path));
	res->disks[0].offset = offset;
}

typedef union {
	struct sanlk_resource res;
	char buf[sizeof(struct sanlk_resource) + sizeof(struct sanlk_disk)];
} OneDiskResource;

/*
 * Whether the connection holds resource name (s->lock held); with
 * ret_lver, its lease version.  0 held, -ENOENT not, other -errno.
 */
static int space_inquire_locked(Space *s, const char *name, uint64_t *ret_lver)
{
	char *state = NULL;
	struct sanlk_resource **args = NULL;
	int count = 0;
	int r;

	r = sanlock_inquire(s->sock, -1, 0, &count, &state);
	if (r < 0)
		return sanlock_rv_to_errno(r);
	if (!state)
		return -ENOENT;
	r = sanlock_state_to_args(state, &count, &args);
	free(state);
	if (r < 0)
		return sanlock_rv_to_errno(r);
	r = -ENOENT;
	for (int i = 0; i < count; i++) {
		if (r < 0 && strncmp(args[i]->name, name, SANLK_NAME_LEN) == 0 &&
		    strncmp(args[i]->lockspace_name, s->name, SANLK_NAME_LEN) == 0) {
			if (ret_lver)
				*ret_lver = args[i]->lver;
			r = 0;
		}
		free(args[i]);
	}
	free(args);
	return r;
}

/*
 * One try, without waiting for a holder whose liveness is not known yet
 * (SANLK_ACQUIRE_OWNER_NOWAIT), so the connection is busy for the paxos
 * I/O only.  On success, *ret_gen is the connection generation holding it.
 */
static int space_acquire(Space *s, const char *name, const char *path, uint64_t offset,
			 unsigned *ret_gen, uint64_t *ret_lver)
{
	OneDiskResource u;
	struct sanlk_resource *res = &u.res;
	int r;

	if (strlen(name) > SANLK_NAME_LEN || strlen(path) >= SANLK_PATH_LEN)
		return -EINVAL;
	res_fill(res, s->name, name, path, offset);
	g_mutex_lock(&s->lock);
	r = space_sock_locked(s);
	if (r == 0)
		r = sanlock_rv_to_errno(
			sanlock_acquire(s->sock, -1, SANLK_ACQUIRE_OWNER_NOWAIT, 1, &res, NULL));
	if (r == 0 && ret_lver) {
		r = space_inquire_locked(s, name, ret_lver);
		if (r < 0)
			(void)sanlock_release(s->sock, -1, 0, 1, &res);
	}
	if (r == 0)
		*ret_gen = s->gen;
	g_mutex_unlock(&s->lock);
	log_debug(LOG_CLASS_LEASE, "lockspace '%s' resource '%s' (%s:%" PRIu64 "): acquire: %s",
		  s->name, name, path, offset, r < 0 ? g_strerror(-r) : "held");
	return r;
}

/* Gives a resource back if the connection that took it (gen) still holds it. */
static int space_release(Space *s, unsigned gen, const char *name, const char *path,
			 uint64_t offset)
{
	OneDiskResource u;
	struct sanlk_resource *res = &u.res;
	int r = 0;

	res_fill(res, s->name, name, path, offset);
	g_mutex_lock(&s->lock);
	if (s->gen == gen && s->sock >= 0)
		r = sanlock_rv_to_errno(sanlock_release(s->sock, -1, 0, 1, &res));
	g_mutex_unlock(&s->lock);
	log_debug(LOG_CLASS_LEASE, "lockspace '%s' resource '%s': release: %d", s->name, name, r);
	return r;
}

int lease_spm_acquire(LeaseManager *m, const char *pool_uuid, const char *lockspace,
		      const char *leases_path, uint64_t offset, uint64_t *ret_lver)
{
	SpmHold *sh;
	Space *s;
	unsigned gen = 0;
	uint64_t lver = 0;
	int r;

	if (m->kind == LEASE_KIND_LOCAL) {
		g_mutex_lock(&m->lock);
		g_hash_table_replace(m->spm, g_strdup(pool_uuid), NULL);
		g_mutex_unlock(&m->lock);
		if (ret_lver)
			*ret_lver = 0; /* no version kept: the pool metadata counts */
		return 0;
	}
	if (!leases_path)
		return -EINVAL;
	s = space_lookup(m, lockspace);
	if (!s)
		return -ENOLCK;
	g_mutex_lock(&m->lock);
	sh = g_hash_table_lookup(m->spm, pool_uuid);
	if (sh)
		lver = sh->lver;
	g_mutex_unlock(&m->lock);
	if (sh) {
		if (ret_lver)
			*ret_lver = lver;
		return 0;
	}
	r = space_acquire(s, SPM_RESOURCE, leases_path, offset, &gen, &lver);
	if (r < 0)
		return r;
	sh = g_new0(SpmHold, 1);
	sh->space = s;
	sh->gen = gen;
	sh->lver = lver;
	g_mutex_lock(&m->lock);
	g_hash_table_replace(m->spm, g_strdup(pool_uuid), sh);
	g_mutex_unlock(&m->lock);
	if (ret_lver)
		*ret_lver = lver;
	return 0;
}

int lease_spm_release(LeaseManager *m, const char *pool_uuid, uint64_t *ret_lver)
{
	g_autofree SpmHold *sh = NULL;
	gpointer key = NULL;
	OneDiskResource u;
	struct sanlk_resource *res = &u.res;
	int r = 0;

	if (m->kind == LEASE_KIND_LOCAL) {
		/* One host: nobody else can take the role, so it comes straight back. */
		log_info("pool '%s': SPM role released by host %u; no other host, taking it again",
			 pool_uuid, m->host_id);
		if (ret_lver)
			*ret_lver = 0;
		return 0;
	}
	g_mutex_lock(&m->lock);
	if (g_hash_table_steal_extended(m->spm, pool_uuid, &key, (gpointer *)&sh))
		g_free(key);
	g_mutex_unlock(&m->lock);
	if (!sh)
		return -EPERM;
	if (ret_lver)
		*ret_lver = sh->lver;
	/* sanlock_release names a resource by lockspace and name only */
	res_fill(res, sh->space->name, SPM_RESOURCE, "", 0);
	/* a failed release would leave SDM held and forgotten (nobody could
	 * take the role): try again, and on failure keep the hold */
	for (int i = 0; i < 5; i++) {
		if (i)
			g_usleep(50 * 1000);
		g_mutex_lock(&sh->space->lock);
		if (sh->space->gen == sh->gen && sh->space->sock >= 0)
			r = sanlock_rv_to_errno(sanlock_release(sh->space->sock, -1, 0, 1, &res));
		g_mutex_unlock(&sh->space->lock);
		if (r == 0)
			break;
	}
	log_debug(LOG_CLASS_LEASE, "pool '%s': SPM resource released: %d", pool_uuid, r);
	if (r < 0) {
		g_mutex_lock(&m->lock);
		g_hash_table_replace(m->spm, g_strdup(pool_uuid), g_steal_pointer(&sh));
		g_mutex_unlock(&m->lock);
	}
	return r;
}

bool lease_is_spm(const LeaseManager *m, const char *pool_uuid)
{
	bool r;

	g_mutex_lock((GMutex *)&m->lock);
	r = g_hash_table_contains(m->spm, pool_uuid);
	g_mutex_unlock((GMutex *)&m->lock);
	return r;
}

int lease_spm_check(LeaseManager *m, const char *pool_uuid)
{
	SpmHold *sh;
	Space *s = NULL;
	unsigned gen = 0;
	int r;

	g_mutex_lock(&m->lock);
	r = g_hash_table_lookup_extended(m->spm, pool_uuid, NULL, (gpointer *)&sh) ? 0 : -ENOLCK;
	if (r == 0 && sh) {
		s = sh->space;
		gen = sh->gen;
	}
	g_mutex_unlock(&m->lock);
	if (r < 0 || m->kind == LEASE_KIND_LOCAL)
		return r;
	/* the daemon still lists it on the connection that took it */
	g_mutex_lock(&s->lock);
	if (!s->joined || s->gen != gen || s->sock < 0)
		r = -ENOLCK;
	else
		r = space_inquire_locked(s, SPM_RESOURCE, NULL);
	g_mutex_unlock(&s->lock);
	if (r < 0) {
		log_debug(LOG_CLASS_LEASE, "pool '%s': SPM resource not held: %s", pool_uuid,
			  g_strerror(-r));
		return -ENOLCK;
	}
	return 0;
}

void lease_set_lost_callback(LeaseManager *m, LeaseLostFn fn, void *opaque)
{
	m->lost_fn = fn;
	m->lost_opaque = opaque;
}

int lease_acquire(LeaseManager *m, const char *lockspace, const char *name,
		  const char *path, uint64_t offset, LeaseHold **ret)
{
	LeaseHold *h;
	Space *s = NULL;
	unsigned gen = 0;
	int r;

	if (m->kind == LEASE_KIND_SANLOCK) {
		s = space_lookup(m, lockspace);
		if (!s)
			return -ENOLCK;
		r = space_acquire(s, name, path, offset, &gen, NULL);
		if (r < 0)
			return r;
	}
	h = g_new0(LeaseHold, 1);
	h->m = m;
	h->name = g_strdup(name);
	h->space = s;
	h->gen = gen;
	h->path = g_strdup(path);
	h->offset = offset;
	*ret = h;
	return 0;
}

void lease_release(LeaseHold *h)
{
	if (!h)
		return;
	if (h->space)
		(void)space_release(h->space, h->gen, h->name, h->path, h->offset);
	g_free(h->name);
	g_free(h->path);
	g_free(h);
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

int lease_resource_peek(const char *path, uint64_t offset, bool *ret_free, uint64_t *ret_lver)
{
	g_auto(OvFd) fd = -1;
	MdSanlockLeader l;
	void *buf;
	ssize_t n;
	int r;

	fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return ov_errno();
	buf = ov_aligned_alloc(OV_DIRECT_ALIGN);
	n = pread(fd, buf, OV_DIRECT_ALIGN, (off_t)offset);
	if (n < 0) {
		r = ov_errno();
	} else {
		r = md_sanlock_leader_parse(buf, (size_t)n, &l);
		if (r == -EINVAL)
			r = -EIO; /* short read */
	}
	ov_aligned_free(buf);
	if (r < 0)
		return r;
	*ret_free = md_sanlock_leader_free(&l);
	*ret_lver = l.lver;
	return 0;
}
