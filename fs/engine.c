/*
 * engine.c: the daemon tier's asynchronous reads and writes (io_uring).
 *
 * A worker thread that gets a READ or WRITE does not do the I/O itself: it
 * queues it on one io_uring shared by the workers and goes back to reading
 * /dev/fuse.  One completion thread answers each request when its I/O ends.
 * So the queue depth the storage sees is the guest's, not the number of
 * worker threads (measured.md 4), and a few workers serve any depth.
 *
 * Buffers: a WRITE's payload already sits 4 KiB-aligned in the worker's
 * request buffer (session.c); the engine takes that buffer with the request
 * and the worker continues on a fresh one from the pool.  A READ gets an
 * aligned buffer from the pool and is answered from it.  Both go back to the
 * pool at completion.  When ENGINE_MAX_INFLIGHT requests are out, or the
 * engine is off (-o engine=sync, or io_uring unavailable), the worker does
 * the I/O synchronously as before.
 *
 * Fixed buffers on the synchronous path.  A worker that is not the last
 * free one does its read or write itself (engine_would_queue()).  With
 * pread/pwrite on an O_DIRECT file the kernel pins the buffer's 256 pages
 * for every 1 MiB request; FUSE-over-io_uring's queues skip that with
 * registered buffers (ring.c: 1 MiB QD1 from 0.66 to 0.9 of raw for
 * writes, 0.74 to above raw for reads).  So a large synchronous transfer
 * goes through a small io_uring of the worker's own, on which the worker's
 * two buffers are registered: its read buffer (slot 0) and its request
 * buffer (slot 1, where a WRITE's payload lies).  The request buffer
 * changes when the engine takes it for a queued write; its registration is
 * then forgotten before the worker takes a new one (the old pages stay
 * pinned until slot 1 is registered again, never used), so a freed buffer
 * whose address comes back is never written from the stale pages.
 */
#include "fs/fs-int.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "common/fault.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/banned.h"

#define ENGINE_RING_ENTRIES 256
#define ENGINE_MAX_INFLIGHT 128 /* ≤ the ring: submission never waits for space */
#define ENGINE_POOL_KEEP 64	/* free buffers kept for reuse */
#define FIXED_MIN_SIZE (64 * 1024) /* below it pinning costs less than a ring */

typedef enum OpKind {
	OP_READ,
	OP_WRITE,
	OP_STOP,
} OpKind;

typedef struct Op {
	OpKind kind;
	fuse_req_t req;
	int fd;
	void *buf;	 /* a pool buffer (owned) */
	void *data;	 /* where the bytes are in buf */
	size_t size;
	off_t off;
} Op;

struct Engine {
	struct io_uring ring;
	GMutex sq_lock; /* submission side of the ring */
	pthread_t thread;
	gint inflight;

	GMutex pool_lock;
	GPtrArray *pool; /* free REQ_BUF_SIZE buffers */
};

__thread char *fs_tl_reqbase;
__thread bool fs_tl_no_engine;

void *engine_buf_get(Fs *fs)
{
	Engine *e = fs->engine;
	void *b = NULL;

	if (e) {
		g_mutex_lock(&e->pool_lock);
		if (e->pool->len > 0)
			b = g_ptr_array_steal_index_fast(e->pool, e->pool->len - 1);
		g_mutex_unlock(&e->pool_lock);
	}
	return b ? b : ov_huge_alloc(FS_REQ_BUF_SIZE);
}

void engine_buf_put(Fs *fs, void *buf)
{
	Engine *e = fs->engine;

	if (!buf)
		return;
	if (e) {
		g_mutex_lock(&e->pool_lock);
		if (e->pool->len < ENGINE_POOL_KEEP) {
			g_ptr_array_add(e->pool, buf);
			buf = NULL;
		}
		g_mutex_unlock(&e->pool_lock);
	}
	ov_aligned_free(buf);
}

static void op_free(Fs *fs, Op *op)
{
	engine_buf_put(fs, op->buf);
	g_free(op);
}

typedef struct FixedRing {
	struct io_uring ring;
	const void *reg[2]; /* slot 0: the read buffer, 1: the request buffer */
} FixedRing;

static __thread FixedRing *tl_fixed;
static __thread bool tl_fixed_failed;

void engine_fixed_forget_reqbuf(void)
{
	if (tl_fixed)
		tl_fixed->reg[1] = NULL;
}

void engine_thread_exit(void)
{
	if (tl_fixed) {
		io_uring_queue_exit(&tl_fixed->ring); /* unregisters the buffers */
		g_free(tl_fixed);
		tl_fixed = NULL;
	}
	tl_fixed_failed = false;
}

/* This thread's ring, with base registered in slot; NULL when unavailable. */
static FixedRing *fixed_ring(unsigned slot, void *base, size_t base_len)
{
	FixedRing *f = tl_fixed;
	int r;

	if (tl_fixed_failed)
		return NULL;
	if (!f) {
		f = g_new0(FixedRing, 1);
		r = FAULT_POINT("engine.fixed");
		if (r == 0)
			r = io_uring_queue_init(4, &f->ring, 0);
		if (r == 0) {
			r = io_uring_register_buffers_sparse(&f->ring, 2);
			if (r < 0)
				io_uring_queue_exit(&f->ring);
		}
		if (r < 0) {
			log_debug(LOG_CLASS_IO, "no fixed-buffer ring for this thread (%s): "
				  "pread/pwrite", g_strerror(-r));
			g_free(f);
			tl_fixed_failed = true;
			return NULL;
		}
		tl_fixed = f;
	}
	if (f->reg[slot] != base) { /* each slot's buffers are of one size */
		struct iovec iov = { .iov_base = base, .iov_len = base_len };

		r = io_uring_register_buffers_update_tag(&f->ring, slot, &iov, NULL, 1);
		if (r < 0) {
			/* RLIMIT_MEMLOCK without CAP_IPC_LOCK, or an old kernel */
			log_debug(LOG_CLASS_IO, "registering a buffer (%s): pread/pwrite",
				  g_strerror(-r));
			engine_thread_exit();
			tl_fixed_failed = true;
			return NULL;
		}
		f->reg[slot] = base;
	}
	return f;
}

bool engine_fixed_wants(Fs *fs, size_t size)
{
	return fs->engine && size >= FIXED_MIN_SIZE && !tl_fixed_failed;
}

ssize_t engine_fixed_io(Fs *fs, bool write, int fd, void *base, size_t base_len, void *data,
			size_t size, off_t off)
{
	unsigned slot = write ? 1 : 0;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	FixedRing *f;
	ssize_t n;
	int r;

	if (!engine_fixed_wants(fs, size) || (char *)data < (char *)base ||
	    (char *)data + size > (char *)base + base_len ||
	    !(f = fixed_ring(slot, base, base_len)))
		return -EAGAIN;
	sqe = io_uring_get_sqe(&f->ring);
	if (!sqe)
		return -EAGAIN; /* never: one at a time */
	if (write)
		io_uring_prep_write_fixed(sqe, fd, data, (unsigned)size, (uint64_t)off, (int)slot);
	else
		io_uring_prep_read_fixed(sqe, fd, data, (unsigned)size, (uint64_t)off, (int)slot);
	do
		r = io_uring_submit_and_wait(&f->ring, 1);
	while (r == -EINTR);
	if (r < 0) {
		/* nothing went: pread/pwrite from now on in this thread */
		log_debug(LOG_CLASS_IO, "fixed-buffer ring: %s; pread/pwrite", g_strerror(-r));
		engine_thread_exit();
		tl_fixed_failed = true;
		return -EAGAIN;
	}
	do
		r = io_uring_wait_cqe(&f->ring, &cqe);
	while (r == -EINTR);
	if (r < 0)
		return -EIO;
	n = cqe->res;
	io_uring_cqe_seen(&f->ring, cqe);
	atomic_fetch_add_explicit(&fs->n_fixed, 1, memory_order_relaxed);
	if (n > 0 && (size_t)n < size)
		n = engine_finish_short(fd, write, data, size, off, n);
	else if (n == 0 && write && size > 0)
		n = -EIO; /* a write that writes nothing would loop in the kernel */
	return n;
}

ssize_t engine_finish_short(int fd, bool write, char *buf, size_t size, off_t off, ssize_t done)
{
	while ((size_t)done < size) {
		char *p = buf + done;
		size_t left = size - (size_t)done;
		ssize_t n = write ? pwrite(fd, p, left, off + done) : pread(fd, p, left, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* end of file (reads) */
		done += n;
	}
	return done;
}

static void complete(Fs *fs, Op *op, int res)
{
	ssize_t n = res;

	if (n > 0 && (size_t)n < op->size)
		n = engine_finish_short(op->fd, op->kind == OP_WRITE, op->data, op->size, op->off, n);
	else if (n == 0 && op->kind == OP_WRITE && op->size > 0)
		n = -EIO; /* a write that writes nothing would loop in the kernel */
	log_debug(LOG_CLASS_IO, "%s %zu at %jd: %zd (async)",
		  op->kind == OP_READ ? "read" : "write", op->size, (intmax_t)op->off, n);
	if (n < 0)
		fuse_reply_err(op->req, (int)-n);
	else if (op->kind == OP_READ)
		fuse_reply_buf(op->req, op->data, (size_t)n);
	else
		fuse_reply_write(op->req, (size_t)n);
	op_free(fs, op);
	g_atomic_int_dec_and_test(&fs->engine->inflight);
}

static void *completion_main(void *arg)
{
	Fs *fs = arg;
	Engine *e = fs->engine;
	bool stop = false;

	while (!stop) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int r = io_uring_wait_cqe(&e->ring, &cqe);

		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0) {
			log_error("io_uring: waiting for completions: %s", g_strerror(-r));
			break;
		}
		io_uring_for_each_cqe(&e->ring, head, cqe) {
			Op *op = io_uring_cqe_get_data(cqe);

			seen++;
			if (op->kind == OP_STOP) {
				g_free(op);
				stop = true;
				continue;
			}
			complete(fs, op, cqe->res);
		}
		io_uring_cq_advance(&e->ring, seen);
	}
	return NULL;
}

static int submit(Engine *e, Op *op)
{
	struct io_uring_sqe *sqe;
	int r;

	g_mutex_lock(&e->sq_lock);
	sqe = io_uring_get_sqe(&e->ring);
	if (!sqe) {
		/* Cannot happen while inflight ≤ the ring size; be safe anyway. */
		io_uring_submit(&e->ring);
		sqe = io_uring_get_sqe(&e->ring);
	}
	if (!sqe) {
		g_mutex_unlock(&e->sq_lock);
		return -EAGAIN;
	}
	switch (op->kind) {
	case OP_READ:
		io_uring_prep_read(sqe, op->fd, op->data, (unsigned)op->size, (uint64_t)op->off);
		break;
	case OP_WRITE:
		io_uring_prep_write(sqe, op->fd, op->data, (unsigned)op->size, (uint64_t)op->off);
		break;
	case OP_STOP:
		io_uring_prep_nop(sqe);
		break;
	}
	io_uring_sqe_set_data(sqe, op);
	r = io_uring_submit(&e->ring);
	g_mutex_unlock(&e->sq_lock);
	return r < 0 ? r : 0;
}

/*
 * Takes a slot for one more request in flight, or says the caller goes
 * synchronous.  While another worker is free to read the next request, a
 * synchronous pread/pwrite in this one costs the storage no depth and saves
 * the hop to the completion thread (QD1 latency); only the last free worker
 * queues, so it never blocks and the depth goes on growing.
 */
bool engine_would_queue(Fs *fs)
{
	return fs->engine && !fs_tl_no_engine &&
	       (unsigned)g_atomic_int_get(&fs->busy) >= fs->cfg.threads;
}

static bool take_slot(Fs *fs, Engine *e)
{
	if (!engine_would_queue(fs))
		return false;
	if (g_atomic_int_add(&e->inflight, 1) >= ENGINE_MAX_INFLIGHT) {
		g_atomic_int_dec_and_test(&e->inflight);
		return false;
	}
	return true;
}

bool engine_read(Fs *fs, fuse_req_t req, int fd, size_t size, off_t off)
{
	Engine *e = fs->engine;
	Op *op;

	if (!e || !take_slot(fs, e))
		return false;
	op = g_new0(Op, 1);
	op->kind = OP_READ;
	op->req = req;
	op->fd = fd;
	op->buf = engine_buf_get(fs);
	op->data = op->buf;
	op->size = size;
	op->off = off;
	if (submit(e, op) < 0) {
		op_free(fs, op);
		g_atomic_int_dec_and_test(&e->inflight);
		return false;
	}
	atomic_fetch_add_explicit(&fs->n_async, 1, memory_order_relaxed);
	return true;
}

bool engine_write(Fs *fs, fuse_req_t req, int fd, const void *data, size_t size, off_t off)
{
	Engine *e = fs->engine;
	char *base = fs_tl_reqbase;
	Op *op;

	/* Only a payload inside this worker's request buffer can be taken over. */
	if (!e || !base || (const char *)data < base ||
	    (const char *)data + size > base + FS_REQ_BUF_SIZE || !take_slot(fs, e))
		return false;
	op = g_new0(Op, 1);
	op->kind = OP_WRITE;
	op->req = req;
	op->fd = fd;
	op->buf = base;
	op->data = (void *)data;
	op->size = size;
	op->off = off;
	if (submit(e, op) < 0) {
		op->buf = NULL; /* still the worker's */
		op_free(fs, op);
		g_atomic_int_dec_and_test(&e->inflight);
		return false;
	}
	fs_tl_reqbase = NULL; /* the worker takes a fresh buffer for its next request */
	atomic_fetch_add_explicit(&fs->n_async, 1, memory_order_relaxed);
	return true;
}

int engine_start(Fs *fs)
{
	Engine *e;
	int r;

	if (fs->cfg.engine && strcmp(fs->cfg.engine, "sync") == 0)
		return 0;
	e = g_new0(Engine, 1);
	r = io_uring_queue_init(ENGINE_RING_ENTRIES, &e->ring, 0);
	if (r < 0) {
		log_notice("io_uring unavailable (%s): reads and writes are synchronous",
			   g_strerror(-r));
		g_free(e);
		return 0;
	}
	g_mutex_init(&e->sq_lock);
	g_mutex_init(&e->pool_lock);
	e->pool = g_ptr_array_new();
	fs->engine = e;
	if (pthread_create(&e->thread, NULL, completion_main, fs) != 0) {
		fs->engine = NULL;
		io_uring_queue_exit(&e->ring);
		g_ptr_array_unref(e->pool);
		g_free(e);
		return log_error_errno(-EAGAIN, "starting the I/O completion thread");
	}
	log_debug(LOG_CLASS_IO, "io_uring engine started");
	return 0;
}

void engine_stop(Fs *fs)
{
	Engine *e = fs->engine;
	Op *stop;

	if (!e)
		return;
	/* Workers are gone: nothing new comes.  Let what is in flight finish. */
	for (int i = 0; i < 3000 && g_atomic_int_get(&e->inflight) > 0; i++)
		g_usleep(1000);
	stop = g_new0(Op, 1);
	stop->kind = OP_STOP;
	if (submit(e, stop) < 0) {
		g_free(stop);
		log_error("io_uring: cannot stop the completion thread");
		return; /* leaking the engine beats a crash at exit */
	}
	pthread_join(e->thread, NULL);
	io_uring_queue_exit(&e->ring);
	fs->engine = NULL;
	for (guint i = 0; i < e->pool->len; i++)
		ov_aligned_free(e->pool->pdata[i]);
	g_ptr_array_unref(e->pool);
	g_mutex_clear(&e->sq_lock);
	g_mutex_clear(&e->pool_lock);
	g_free(e);
}

const char *engine_name(Fs *fs)
{
	return fs->engine ? "io_uring" : "sync";
}
