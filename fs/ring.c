/*
 * ring.c: FUSE over io_uring (kernel 6.14+), the request transport for
 * kernels that offer it.
 *
 * Why.  On /dev/fuse every request costs a read(2) and a writev(2) and two
 * wake-ups; on 2 cores that transport, not the daemon's work, is what held
 * the daemon tier's 4 KiB rows at 0.4-0.7 of raw (RESULTS.md, the perf
 * profile in the data-path note).  Over io_uring the kernel hands requests
 * to per-CPU queues of buffers the daemon registered once; one
 * io_uring_enter(2) commits any number of replies, fetches the next
 * requests, and submits the backing file's reads and writes on the same
 * ring, so a busy queue answers many requests per system call and a request
 * is served on the CPU that made it.
 *
 * Negotiation.  The kernel offers FUSE_OVER_IO_URING at INIT only when its
 * module parameter fuse.enable_uring is Y (an admin's choice; see
 * ovstore(8)); with -o uring=auto (the default) the writev hook accepts it in
 * the INIT reply (passthrough.c) and calls ring_start() once the reply is
 * in.  Before every queue has an entry, and on kernels without it, requests
 * keep coming through /dev/fuse and the request loop in session.c; FORGET
 * and INTERRUPT always do.
 *
 * Queues.  The kernel has one per possible CPU, routes a request to the queue
 * of the CPU it was made on, and switches to the ring once every queue has an
 * entry.  Each queue is served by one thread (two on hosts with fewer than 4
 * CPUs: one guest thread at QD16 loads one queue, and the kernel gives a
 * request to any free entry of its queue, whichever ring registered it), each
 * thread with its own io_uring (SQE128, for the commands' 80-byte argument)
 * and `depth` entries: a header buffer (fuse_in_header, the operation's
 * argument struct, the entry's commit id and payload size) and a 1 MiB
 * payload buffer, 4 KiB-aligned, so a WRITE's data can go to an O_DIRECT
 * backing file where it lies.  The payload buffers are also registered with
 * the thread's io_uring (fixed buffers): the backing file's reads and writes
 * then skip pinning 256 pages per 1 MiB request, and the kernel maps them in
 * large segments; measured here, 1 MiB QD1 went from 0.66 to 0.9 of raw for
 * writes and from 0.74 to above raw for reads.  Where registering fails
 * (RLIMIT_MEMLOCK without CAP_IPC_LOCK) the plain read and write are used.
 * The threads are not pinned: measured here, pinning a queue's thread to its
 * CPU made it compete with the guest thread on that CPU (4 KiB QD1 rows
 * 15-25 % slower).
 *
 * Requests.  The queue thread serves READ and WRITE of volumes with a backing
 * file itself, asynchronously: the read or write goes on the queue's ring with
 * the payload buffer as its buffer, and its completion writes the reply into
 * the entry and commits it.  The thread never waits for anything else, so
 * one slow request cannot hold the requests queued behind it on its CPU.
 * Everything else (metadata operations, which may take locks or run lvm2;
 * block volumes, whose extents and thin extension may wait) goes to a pool of
 * worker threads: the request is laid out as /dev/fuse would have delivered it
 * and handed to libfuse's fuse_session_process_buf(); the reply comes back
 * through the writev hook (ring_reply()), which copies it into the entry and
 * gives the entry back to its queue thread to commit (an eventfd wakes it).
 *
 * Falling back.  Once INIT has taken io_uring, the kernel holds every new
 * request until each queue has an entry, and gives up on the ring only when
 * a REGISTER fails.  So the daemon accepts at INIT only after it made an
 * io_uring of the kind it needs (kernel.io_uring_disabled and seccomp can
 * forbid them), and any later failure to set the queues up sends one REGISTER
 * the kernel must refuse (ring_refuse()), after which it uses /dev/fuse.
 *
 * The structures are the kernel's ABI (include/uapi/linux/fuse.h, 7.42);
 * Debian 12's header predates them.
 */
#include "fs/fs-int.h"
#include "fs/fuse-abi.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fault.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/banned.h"

#define K_FUSE_READ 15
#define K_FUSE_WRITE 16
#define K_URING_CMD_REGISTER 1
#define K_URING_CMD_COMMIT_AND_FETCH 2

struct k_rw_in { /* fuse_read_in and fuse_write_in share this layout */
	uint64_t fh;
	uint64_t offset;
	uint32_t size;
	uint32_t flags1; /* read_flags / write_flags */
	uint64_t lock_owner;
	uint32_t flags;
	uint32_t padding;
};
_Static_assert(sizeof(struct k_rw_in) == 40, "fuse_read_in / fuse_write_in");

struct k_write_out {
	uint32_t size;
	uint32_t padding;
};

#define K_URING_IN_OUT_SZ 128
#define K_URING_OP_IN_SZ 128

struct k_uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct k_uring_req_header {
	char in_out[K_URING_IN_OUT_SZ];
	char op_in[K_URING_OP_IN_SZ];
	struct k_uring_ent_in_out ent;
};

struct k_uring_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};
_Static_assert(sizeof(struct k_uring_cmd_req) <= 80, "fits an SQE128 command");

/* What a completion is about: the low bits of its user_data. */
enum {
	TAG_FETCH = 0, /* a REGISTER or COMMIT_AND_FETCH came back: a request */
	TAG_IO = 1,    /* the backing file's read or write for an entry */
	TAG_WAKE = 2,  /* the queue's eventfd: entries to commit, or stop */
	TAG_MASK = 3,
};

#define PAYLOAD_SIZE FS_MAX_WRITE

typedef struct RingQueue RingQueue;

typedef struct RingEnt {
	RingQueue *q;
	struct k_uring_req_header *hdr;
	char *payload;
	struct iovec iov[2];
	unsigned last_cmd;
	/* the request being served */
	uint64_t unique;
	bool write;
	int fd;
	size_t size;
	off_t off;
	struct RingEnt *next_done;
} RingEnt;

struct RingQueue {
	Ring *ring;
	unsigned qid;
	struct io_uring uring;
	bool uring_ok;
	bool fixed; /* the payload buffers are registered: READ_FIXED/WRITE_FIXED */
	pthread_t thread;
	bool started;
	int wake_fd;
	uint64_t wake_buf;
	GMutex done_lock;
	RingEnt *done; /* entries a worker answered, to commit */
	RingEnt *ents;
};

struct Ring {
	Fs *fs;
	unsigned nq;	 /* the kernel's queues: one per possible CPU */
	unsigned nt;	 /* queue threads, each with its ring and entries */
	unsigned depth; /* entries per thread */
	RingQueue *q;
	GAsyncQueue *jobs; /* entries for the workers; the Ring itself says stop */
	pthread_t *workers;
	unsigned n_workers;
	gint stopping;
	gint failed;	  /* a queue thread ended on an error: /dev/fuse serves */
	atomic_ullong n_fast; /* requests the queue threads served themselves */
	atomic_ullong n_pool; /* requests handed to the workers */
};

/* The entry whose request this pool worker is processing (for ring_reply). */
static __thread RingEnt *tl_ent;

static uint64_t tag(void *p, unsigned t)
{
	return (uint64_t)(uintptr_t)p | t;
}

static struct io_uring_sqe *get_sqe_of(struct io_uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(u);

	if (!sqe) {
		/* A queue's ring holds 2 SQEs per entry plus the wake read: only a
		 * burst larger than that gets here; submitting frees the slots. */
		io_uring_submit(u);
		sqe = io_uring_get_sqe(u);
	}
	return sqe;
}

static struct io_uring_sqe *get_sqe(RingQueue *q)
{
	return get_sqe_of(&q->uring);
}

static void prep_cmd(RingQueue *q, RingEnt *e, unsigned cmd_op, uint64_t commit_id)
{
	struct io_uring_sqe *sqe = get_sqe(q);
	struct k_uring_cmd_req *cr;

	if (!sqe) {
		log_error("FUSE ring %u: no submission slot; an entry is lost", q->qid);
		return;
	}
	memset(sqe, 0, 128);
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fuse_session_fd(q->ring->fs->se);
	sqe->cmd_op = cmd_op;
	if (cmd_op == K_URING_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)e->iov;
		sqe->len = 2;
	}
	cr = (struct k_uring_cmd_req *)sqe->cmd;
	cr->qid = (uint16_t)q->qid;
	cr->commit_id = commit_id;
	e->last_cmd = cmd_op;
	io_uring_sqe_set_data64(sqe, tag(e, TAG_FETCH));
}

static void prep_wake_read(RingQueue *q)
{
	struct io_uring_sqe *sqe = get_sqe(q);

	if (!sqe)
		return;
	io_uring_prep_read(sqe, q->wake_fd, &q->wake_buf, sizeof(q->wake_buf), 0);
	io_uring_sqe_set_data64(sqe, tag(q, TAG_WAKE));
}

/* The reply is in the entry's buffers: commit it and fetch the next request. */
static void commit(RingQueue *q, RingEnt *e)
{
	prep_cmd(q, e, K_URING_CMD_COMMIT_AND_FETCH, e->unique);
}

static void set_reply(RingEnt *e, int error, size_t payload_sz)
{
	struct k_out_header *out = (struct k_out_header *)e->hdr->in_out;

	out->len = (uint32_t)(sizeof(*out) + payload_sz);
	out->error = error;
	out->unique = e->unique;
	e->hdr->ent.payload_sz = (uint32_t)payload_sz;
}

/* ---- the pool: everything but the fast READ and WRITE ---- */

static void pool_serve(Ring *r, RingEnt *e)
{
	Fs *fs = r->fs;
	const struct k_in_header *in = (const void *)e->hdr->in_out;
	uint32_t plen = e->hdr->ent.payload_sz;
	size_t oplen = in->len - sizeof(*in) - plen; /* checked by the queue thread */
	char *base = engine_buf_get(fs);
	/* As session.c does: the payload lands on a 4 KiB boundary. */
	char *req = base + OV_DIRECT_ALIGN - sizeof(*in) - oplen;
	struct fuse_buf fbuf = { .mem = req, .size = in->len };

	memcpy(req, in, sizeof(*in));
	memcpy(req + sizeof(*in), e->hdr->op_in, oplen);
	memcpy(base + OV_DIRECT_ALIGN, e->payload, plen);
	tl_ent = e;
	g_atomic_int_inc(&fs->busy);
	fuse_session_process_buf(fs->se, &fbuf);
	g_atomic_int_dec_and_test(&fs->busy);
	if (tl_ent) {
		/* libfuse sent no reply; the entry must go back all the same. */
		log_warning("FUSE ring: request %u (opcode %u) got no reply", (unsigned)e->unique,
			    in->opcode);
		set_reply(e, -EIO, 0);
		ring_done(e);
		tl_ent = NULL;
	}
	engine_buf_put(fs, base);
}

static void *worker_main(void *arg)
{
	Ring *r = arg;

	/* Every reply must leave before the request is done: no engine queueing. */
	fs_tl_no_engine = true;
	for (;;) {
		void *job = g_async_queue_pop(r->jobs);

		if (job == r)
			break;
		pool_serve(r, job);
	}
	fs_thread_exit();
	return NULL;
}

void ring_done(RingEnt *e)
{
	RingQueue *q = e->q;
	uint64_t one = 1;

	g_mutex_lock(&q->done_lock);
	e->next_done = q->done;
	q->done = e;
	g_mutex_unlock(&q->done_lock);
	if (write(q->wake_fd, &one, sizeof(one)) < 0)
		log_error("FUSE ring %u: waking the queue: %s", q->qid, g_strerror(errno));
}

bool ring_reply(Fs *fs, const struct iovec *iov, int count, ssize_t *ret)
{
	RingEnt *e = tl_ent;
	const struct k_out_header *out = iov[0].iov_base;
	size_t len = 0;
	int error;

	(void)fs;
	if (!e || iov[0].iov_len < sizeof(*out) || out->unique != e->unique)
		return false;
	error = out->error;
	for (int i = 1; i < count; i++) {
		if (len + iov[i].iov_len > PAYLOAD_SIZE) {
			log_error("FUSE ring: a reply of more than %d bytes", PAYLOAD_SIZE);
			error = -EIO;
			len = 0;
			break;
		}
		if (iov[i].iov_base != e->payload + len)
			memcpy(e->payload + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	*ret = (ssize_t)(iov[0].iov_len + len);
	set_reply(e, error, error ? 0 : len);
	tl_ent = NULL;
	ring_done(e);
	return true;
}

/* ---- the queue thread ---- */

static void io_done(RingQueue *q, RingEnt *e, int res)
{
	ssize_t n = res;

	if (n > 0 && (size_t)n < e->size)
		n = engine_finish_short(e->fd, e->write, e->payload, e->size, e->off, n);
	else if (n == 0 && e->write && e->size > 0)
		n = -EIO; /* a write that writes nothing would loop in the kernel */
	log_debug(LOG_CLASS_IO, "%s %zu at %jd: %zd (ring)", e->write ? "write" : "read",
		  e->size, (intmax_t)e->off, n);
	if (n < 0) {
		set_reply(e, (int)n, 0);
	} else if (e->write) {
		struct k_write_out wo = { .size = (uint32_t)n };

		memcpy(e->payload, &wo, sizeof(wo));
		set_reply(e, 0, sizeof(wo));
	} else {
		set_reply(e, 0, (size_t)n);
	}
	commit(q, e);
}

/* READ or WRITE of a volume with a backing file: on this ring.  false: the pool. */
static bool serve_fast(RingQueue *q, RingEnt *e, const struct k_in_header *in, uint32_t plen)
{
	Fs *fs = q->ring->fs;
	const struct k_rw_in *rw = (const void *)e->hdr->op_in;
	bool write = in->opcode == K_FUSE_WRITE;
	struct io_uring_sqe *sqe;
	size_t size = write ? plen : MIN(rw->size, (uint32_t)PAYLOAD_SIZE);
	off_t fd_off = 0;
	int fd;

	if (write && rw->size != plen)
		return false; /* libfuse checks and answers this one */
	fd = fs_io_fd(fs, rw->fh, write, write ? e->payload : NULL, size, (off_t)rw->offset,
		      &fd_off);
	if (fd == -EAGAIN)
		return false;
	atomic_fetch_add_explicit(write ? &fs->n_write : &fs->n_read, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&q->ring->n_fast, 1, memory_order_relaxed);
	if (fd < 0) {
		set_reply(e, fd, 0);
		commit(q, e);
		return true;
	}
	e->write = write;
	e->fd = fd;
	e->size = size;
	e->off = fd_off; /* on fd: a block volume's data lies elsewhere on its PV */
	sqe = get_sqe(q);
	if (!sqe) {
		io_done(q, e, write ? (int)pwrite(fd, e->payload, size, e->off)
				    : (int)pread(fd, e->payload, size, e->off));
		return true;
	}
	if (q->fixed && write)
		io_uring_prep_write_fixed(sqe, fd, e->payload, (unsigned)size, (uint64_t)e->off,
					  (int)(e - q->ents));
	else if (q->fixed)
		io_uring_prep_read_fixed(sqe, fd, e->payload, (unsigned)size, (uint64_t)e->off,
					 (int)(e - q->ents));
	else if (write)
		io_uring_prep_write(sqe, fd, e->payload, (unsigned)size, (uint64_t)e->off);
	else
		io_uring_prep_read(sqe, fd, e->payload, (unsigned)size, (uint64_t)e->off);
	io_uring_sqe_set_data64(sqe, tag(e, TAG_IO));
	atomic_fetch_add_explicit(&fs->n_async, 1, memory_order_relaxed);
	return true;
}

static void serve(RingQueue *q, RingEnt *e)
{
	const struct k_in_header *in = (const void *)e->hdr->in_out;
	uint32_t plen = e->hdr->ent.payload_sz;

	e->unique = e->hdr->ent.commit_id;
	/* The kernel puts the operation's struct in op_in and the rest (names,
	 * data) in the payload; in->len counts them all. */
	if (in->len < sizeof(*in) + plen || in->len - sizeof(*in) - plen > K_URING_OP_IN_SZ ||
	    plen > PAYLOAD_SIZE || in->unique != e->unique) {
		log_error("FUSE ring %u: a request that does not add up (opcode %u, len %u, "
			  "payload %u)", q->qid, in->opcode, in->len, plen);
		set_reply(e, -EIO, 0);
		commit(q, e);
		return;
	}
	if ((in->opcode == K_FUSE_READ || in->opcode == K_FUSE_WRITE) &&
	    in->len - sizeof(*in) - plen == sizeof(struct k_rw_in) && serve_fast(q, e, in, plen))
		return;
	atomic_fetch_add_explicit(&q->ring->n_pool, 1, memory_order_relaxed);
	g_async_queue_push(q->ring->jobs, e);
}

static void commit_done(RingQueue *q)
{
	RingEnt *e;

	g_mutex_lock(&q->done_lock);
	e = q->done;
	q->done = NULL;
	g_mutex_unlock(&q->done_lock);
	while (e) {
		RingEnt *next = e->next_done;

		commit(q, e);
		e = next;
	}
}

/*
 * Makes the kernel give up on the ring for this connection: a REGISTER
 * without buffers fails, and a failed REGISTER turns io_uring off (requests
 * held for the ring go to /dev/fuse).
 */
static void ring_refuse(Ring *r)
{
	struct io_uring u;
	struct io_uring_params p = { .flags = IORING_SETUP_SQE128 };
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int ret;

	if (!g_atomic_int_compare_and_exchange(&r->failed, 0, 1))
		return; /* done already */
	ret = io_uring_queue_init_params(2, &u, &p);
	if (ret < 0) {
		log_error("FUSE ring: cannot fall back to /dev/fuse (%s): unmount and mount with "
			  "-o uring=off", g_strerror(-ret));
		return;
	}
	sqe = get_sqe_of(&u);
	if (!sqe) {
		io_uring_queue_exit(&u);
		log_error("FUSE ring: cannot fall back to /dev/fuse: unmount and mount with "
			  "-o uring=off");
		return;
	}
	memset(sqe, 0, 128);
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fuse_session_fd(r->fs->se);
	sqe->cmd_op = K_URING_CMD_REGISTER;
	ret = io_uring_submit_and_wait(&u, 1);
	if (ret >= 0)
		ret = io_uring_wait_cqe(&u, &cqe);
	if (ret >= 0) {
		ret = cqe->res;
		io_uring_cqe_seen(&u, cqe);
	}
	io_uring_queue_exit(&u);
	if (ret >= 0)
		log_error("FUSE ring: the kernel took a REGISTER it must refuse: unmount and mount "
			  "with -o uring=off");
	else
		log_info("requests come through /dev/fuse");
}

bool ring_usable(void)
{
	static int usable = -1; /* once per process: the answer does not change */
	int was = __atomic_load_n(&usable, __ATOMIC_RELAXED);

	if (was < 0) {
		struct io_uring u;
		struct io_uring_params p = { .flags = IORING_SETUP_SQE128 };
		int ret = io_uring_queue_init_params(2, &u, &p);

		if (ret == 0)
			io_uring_queue_exit(&u);
		else
			log_info("requests come through /dev/fuse: io_uring unavailable (%s)",
				 g_strerror(-ret));
		was = ret == 0;
		__atomic_store_n(&usable, was, __ATOMIC_RELAXED);
	}
	return was;
}

static void *queue_main(void *arg)
{
	RingQueue *q = arg;
	Ring *r = q->ring;
	bool fatal = false;
	int fault = FAULT_POINT("ring.queue");

	if (fault < 0) {
		log_warning("FUSE ring %u: %s: requests stay on /dev/fuse", q->qid,
			    g_strerror(-fault));
		ring_refuse(r);
		return NULL;
	}

	for (unsigned i = 0; i < r->depth; i++)
		prep_cmd(q, &q->ents[i], K_URING_CMD_REGISTER, 0);
	prep_wake_read(q);
	while (!fatal) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int n = io_uring_submit_and_wait(&q->uring, 1);

		if (n < 0 && n != -EINTR && n != -EAGAIN && n != -EBUSY) {
			log_error("FUSE ring %u: %s", q->qid, g_strerror(-n));
			g_atomic_int_set(&r->failed, 1);
			break;
		}
		io_uring_for_each_cqe(&q->uring, head, cqe) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);
			void *p = (void *)(uintptr_t)(ud & ~(uint64_t)TAG_MASK);

			seen++;
			switch (ud & TAG_MASK) {
			case TAG_WAKE:
				if (g_atomic_int_get(&r->stopping)) {
					fatal = true;
					break;
				}
				commit_done(q);
				prep_wake_read(q);
				break;
			case TAG_IO:
				io_done(q, p, cqe->res);
				break;
			case TAG_FETCH: {
				RingEnt *e = p;

				if (cqe->res == 0) {
					serve(q, e);
				} else if (cqe->res == -EAGAIN || cqe->res == -EINTR) {
					prep_cmd(q, e, e->last_cmd, e->unique);
				} else {
					/* -ENOTCONN: unmounted.  Anything else: the
					 * kernel tore the ring down. */
					/* Only the first failure is news: after a
					 * fallback (ring_refuse()) the kernel fails
					 * the other queues' commands too. */
					if (cqe->res != -ENOTCONN && !g_atomic_int_get(&r->stopping) &&
					    g_atomic_int_compare_and_exchange(&r->failed, 0, 1))
						log_warning("FUSE ring %u: %s%s: requests stay on "
							    "/dev/fuse", q->qid,
							    e->last_cmd == K_URING_CMD_REGISTER
								    ? "registering: " : "",
							    g_strerror(-cqe->res));
					else if (cqe->res != -ENOTCONN)
						log_debug(LOG_CLASS_FS, "FUSE ring %u: %s", q->qid,
							  g_strerror(-cqe->res));
					fatal = true;
				}
				break;
			}
			default:
				break;
			}
		}
		io_uring_cq_advance(&q->uring, seen);
	}
	return NULL;
}

/* ---- setup ---- */

static void queue_free(Ring *r, RingQueue *q)
{
	if (q->ents) {
		for (unsigned i = 0; i < r->depth; i++) {
			ov_aligned_free(q->ents[i].hdr);
			ov_aligned_free(q->ents[i].payload);
		}
		g_free(q->ents);
	}
	if (q->uring_ok)
		io_uring_queue_exit(&q->uring);
	if (q->wake_fd >= 0)
		close(q->wake_fd);
	g_mutex_clear(&q->done_lock);
}

static int queue_init(Ring *r, RingQueue *q, unsigned qid)
{
	struct io_uring_params p = { 0 };
	unsigned entries = 2 * r->depth + 4;
	int ret;

	q->ring = r;
	q->qid = qid;
	g_mutex_init(&q->done_lock);
	q->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (q->wake_fd < 0)
		return ov_errno();
	p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
	p.cq_entries = 2 * entries;
	ret = io_uring_queue_init_params(entries, &q->uring, &p);
	if (ret < 0)
		return ret;
	q->uring_ok = true;
	q->ents = g_new0(RingEnt, r->depth);
	for (unsigned i = 0; i < r->depth; i++) {
		RingEnt *e = &q->ents[i];

		e->q = q;
		e->hdr = ov_aligned_alloc(sizeof(*e->hdr));
		e->payload = ov_aligned_alloc(PAYLOAD_SIZE);
		memset(e->hdr, 0, sizeof(*e->hdr));
		e->iov[0] = (struct iovec){ .iov_base = e->hdr, .iov_len = sizeof(*e->hdr) };
		e->iov[1] = (struct iovec){ .iov_base = e->payload, .iov_len = PAYLOAD_SIZE };
	}
	{
		g_autofree struct iovec *bufs = g_new(struct iovec, r->depth);

		for (unsigned i = 0; i < r->depth; i++)
			bufs[i] = q->ents[i].iov[1];
		ret = FAULT_POINT("ring.fixed");
		if (ret == 0)
			ret = io_uring_register_buffers(&q->uring, bufs, r->depth);
		q->fixed = ret == 0;
		if (ret < 0)
			log_debug(LOG_CLASS_FS, "FUSE ring %u: payload buffers not registered: %s",
				  qid, g_strerror(-ret));
	}
	return 0;
}

void ring_start(Fs *fs)
{
	Ring *r = g_new0(Ring, 1);
	int nq = get_nprocs_conf();
	int ret = 0;

	r->fs = fs;
	fs->ring = r; /* before any thread: status and ring_stop() look here */
	r->nq = nq > 0 ? (unsigned)nq : 1;
	/* A queue's requests come from the CPU that made them: one guest thread at
	 * QD16 loads one queue.  On few CPUs several threads serve each queue (the
	 * kernel hands a request to any free entry of the queue, whichever ring
	 * registered it, the last one freed first), each with a few entries, so
	 * that load spreads over the cores.  Measured on 2 CPUs (4 KiB, QD16 and
	 * 16 synchronous writers): 4 threads of 8 entries per queue beat 2 of 32
	 * by 10-25 %; thinner splits gained nothing more. */
	r->nt = r->nq * CLAMP(8 / r->nq, 1, 4);
	/* 32 entries per queue on up to 8 CPUs, fewer beyond, down to 8: depth for a
	 * busy guest, and the payload buffers (1 MiB each, registered with
	 * io_uring and so pinned in memory: 64 MiB on 2 CPUs) stay within 512 MiB
	 * on 64 CPUs. */
	r->depth = MAX(CLAMP(256 / r->nq, 8, 32) / (r->nt / r->nq), 2);
	r->q = g_new0(RingQueue, r->nt);
	for (unsigned i = 0; i < r->nt; i++)
		r->q[i].wake_fd = -1;
	for (unsigned i = 0; i < r->nt && ret == 0; i++)
		ret = queue_init(r, &r->q[i], i % r->nq);
	if (ret == 0)
		ret = FAULT_POINT("ring.start");
	r->jobs = g_async_queue_new();
	r->workers = g_new0(pthread_t, fs->cfg.threads);
	for (unsigned i = 0; i < fs->cfg.threads && ret == 0; i++) {
		if (pthread_create(&r->workers[i], NULL, worker_main, r) != 0)
			ret = -EAGAIN;
		else
			r->n_workers++;
	}
	for (unsigned i = 0; i < r->nt && ret == 0; i++) {
		if (pthread_create(&r->q[i].thread, NULL, queue_main, &r->q[i]) != 0)
			ret = -EAGAIN;
		else
			r->q[i].started = true;
	}
	if (ret < 0) {
		log_warning("FUSE over io_uring not started (%s)", g_strerror(-ret));
		ring_refuse(r);
		ring_stop(fs);
		return;
	}
	{
		unsigned fixed = 0;

		for (unsigned i = 0; i < r->nt; i++)
			fixed += r->q[i].fixed;
		log_info("FUSE over io_uring: %u queues, %u threads of %u entries, %s", r->nq,
			 r->nt, r->depth,
			 fixed == r->nt ? "payload buffers registered"
			 : fixed ? "payload buffers registered for some threads"
				 : "payload buffers not registered");
	}
}

void ring_stop(Fs *fs)
{
	Ring *r = fs->ring;
	uint64_t one = 1;

	if (!r)
		return;
	g_atomic_int_set(&r->stopping, 1);
	/* Workers first (they finish what is queued): their replies only touch the
	 * entries and the eventfds. */
	for (unsigned i = 0; i < r->n_workers; i++)
		g_async_queue_push(r->jobs, r);
	for (unsigned i = 0; i < r->n_workers; i++)
		pthread_join(r->workers[i], NULL);
	g_free(r->workers);
	g_async_queue_unref(r->jobs);
	for (unsigned i = 0; i < r->nt; i++) {
		if (!r->q[i].started)
			continue;
		if (write(r->q[i].wake_fd, &one, sizeof(one)) < 0)
			log_debug(LOG_CLASS_FS, "stopping FUSE ring %u: %s", i, g_strerror(errno));
		pthread_join(r->q[i].thread, NULL);
	}
	for (unsigned i = 0; i < r->nt; i++)
		queue_free(r, &r->q[i]);
	g_free(r->q);
	fs->ring = NULL;
	g_free(r);
}

bool ring_active(Fs *fs)
{
	Ring *r = fs->ring;

	return r && !g_atomic_int_get(&r->failed) && !g_atomic_int_get(&r->stopping);
}

void ring_counts(Fs *fs, uint64_t *fast, uint64_t *pool)
{
	Ring *r = fs->ring;

	*fast = r ? atomic_load(&r->n_fast) : 0;
	*pool = r ? atomic_load(&r->n_pool) : 0;
}
