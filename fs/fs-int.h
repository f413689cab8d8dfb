/*
 * fs-int: private to fs/.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <fuse_lowlevel.h>
#include <glib.h>

#include "domain/model.h"
#include "fs/fs.h"

#define FS_MAX_WRITE (1024 * 1024)
/* A request buffer: the largest WRITE (fuse headers + FS_MAX_WRITE) placed so
 * that its payload is 4 KiB-aligned (session.c). */
#define FS_REQ_BUF_SIZE (FS_MAX_WRITE + 2 * 4096)
#define FS_TIMEOUT 1.0 /* entry and attr timeouts: CONTRACT's 2 s visibility */

typedef enum FsPassthrough {
	FS_PASSTHROUGH_AUTO,
	FS_PASSTHROUGH_OFF,
	FS_PASSTHROUGH_MAX,
} FsPassthrough;

typedef struct FsConfig {
	unsigned uid;
	unsigned gid;
	char *passthrough; /* "auto" or "off" */
	char *engine;	   /* "uring" (default) or "sync" */
	char *uring;	   /* FUSE transport: "auto" (default) or "off" */
	unsigned threads;
	unsigned chunk_mb;
	int fuse_debug;
} FsConfig;

typedef struct Engine Engine;
typedef struct Ring Ring;
typedef struct RingEnt RingEnt;

typedef enum NodeKind {
	NODE_ROOT,
	NODE_POOL,
	NODE_DOMAIN,
	NODE_IMAGE,
	NODE_VOLUME,
	NODE_KIND_MAX,
} NodeKind;

/*
 * An inode the kernel knows.  Lives while nlookup > 0 (the root always).
 * Holds a reference on its image or volume; pools and domains live as long
 * as the storage.
 */
typedef struct Node {
	fuse_ino_t ino;
	NodeKind kind;
	uint64_t nlookup; /* protected by Fs.nodes_lock */
	Pool *pool;
	Domain *dom;
	Image *img;   /* a reference, NODE_IMAGE */
	Volume *vol;  /* a reference, NODE_VOLUME */
} Node;

struct Fs {
	FsConfig cfg;
	FsPassthrough passthrough;
	struct fuse_args args;
	Storage *st;
	struct fuse_session *se;
	char *mountpoint;
	bool mounted;
	bool passthrough_ok; /* the kernel took FUSE_PASSTHROUGH at INIT */
	time_t mount_time;

	GMutex nodes_lock;
	GHashTable *by_ino; /* fuse_ino_t -> Node* (owned) */
	GHashTable *by_obj; /* object pointer -> Node* */
	fuse_ino_t next_ino;
	Node *root;

	Engine *engine;	       /* engine.c; NULL: synchronous I/O */
	gint busy;	       /* workers handling a request (session.c) */
	atomic_ullong n_read;  /* data requests the daemon served */
	atomic_ullong n_write;
	atomic_ullong n_async; /* of those, answered at an asynchronous I/O's completion */
	atomic_ullong n_fixed; /* of those, done synchronously from registered buffers */
	atomic_ullong n_getxattr; /* GETXATTR requests (the kernel's per-write probe) */

	/* passthrough.c */
	uint64_t init_unique;  /* the INIT request's id (atomic) */
	bool kernel_offers_pt; /* set before the INIT reply, read after */
	bool kernel_offers_killpriv_v2;
	bool kernel_offers_uring;
	bool uring_off;	       /* -o uring=off */
	Ring *ring;	       /* ring.c; NULL: requests come through /dev/fuse */
	GMutex pt_lock;
	GHashTable *backings;  /* Volume* -> Backing*, protected by pt_lock */
};

/* An open volume (fuse_file_info.fh). */
typedef struct FsFile {
	VolHandle *h;
	Volume *vol;	  /* borrowed from h */
	bool passthrough; /* the kernel does this open's I/O */
} FsFile;

/* inode.c */
void nodes_init(Fs *fs);
void nodes_release(Fs *fs);
/* The node of obj (created when new) with one more lookup; for replies. */
Node *node_lookup_ref(Fs *fs, NodeKind kind, void *obj, Pool *pool, Domain *dom);
Node *node_get(Fs *fs, fuse_ino_t ino);
void node_forget(Fs *fs, fuse_ino_t ino, uint64_t n);
/* The existing node of obj, or NULL (no reference taken). */
Node *node_peek(Fs *fs, void *obj);
int node_stat(Fs *fs, Node *n, struct stat *ret);

/* ops.c */
extern const struct fuse_lowlevel_ops fs_ops;
/* Frees what a worker thread kept (its read buffer). */
void fs_thread_exit(void);

/* passthrough.c */
void pt_init(Fs *fs);
void pt_release_all(Fs *fs);
/* Sees each request before libfuse: notes the INIT request. */
void pt_note_request(Fs *fs, const void *buf, size_t len);
/* The custom writev: accepts passthrough in the INIT reply. */
ssize_t pt_writev(Fs *fs, int fd, struct iovec *iov, int count);
/* A backing id for vol (registered on first use); -ENOTSUP for non-regular files. */
int pt_acquire(Fs *fs, Volume *vol, int backing_fd, int *ret_id);
void pt_put(Fs *fs, Volume *vol);
/* The OPEN reply: passthrough with backing_id, or direct I/O with parallel writes. */
int pt_reply_open(fuse_req_t req, uint64_t fh, bool passthrough, int backing_id, bool direct);
/* The tier a volume opened now (read-write) gets: "passthrough" or "daemon". */
const char *fs_volume_io(Fs *fs, Volume *vol);

/* engine.c */
/* The current worker's request buffer (session.c); the engine may take it. */
extern __thread char *fs_tl_reqbase;
int engine_start(Fs *fs);
void engine_stop(Fs *fs);
void *engine_buf_get(Fs *fs);
void engine_buf_put(Fs *fs, void *buf);
/* Whether a READ or WRITE now would be queued (no other worker is free):
 * the only case worth asking the domain for the fd (vh_data_fd) first. */
bool engine_would_queue(Fs *fs);
/* Queue a read or write; true: the reply comes from the completion thread. */
bool engine_read(Fs *fs, fuse_req_t req, int fd, size_t size, off_t off);
bool engine_write(Fs *fs, fuse_req_t req, int fd, const void *data, size_t size, off_t off);
const char *engine_name(Fs *fs);
/* The rest of a short transfer of buf[0, size) at off, of which done bytes
 * went: done here, synchronously (rare, EOF aside, and must be right).  The
 * total, or -errno. */
ssize_t engine_finish_short(int fd, bool write, char *buf, size_t size, off_t off, ssize_t done);
/* Set in threads whose requests must be answered before they return (ring.c). */
extern __thread bool fs_tl_no_engine;
/*
 * A large synchronous read or write from this thread's own buffer (base,
 * base_len: the thread's read buffer, or its request buffer for a WRITE's
 * payload), through the thread's io_uring with the buffer registered once
 * (no page pinning per request).  The bytes done (a short transfer
 * finished), -errno, or -EAGAIN when this path does not apply: small, no
 * engine, or the ring or the registration unavailable (the caller uses
 * pread/pwrite).
 */
ssize_t engine_fixed_io(Fs *fs, bool write, int fd, void *base, size_t base_len, void *data,
			size_t size, off_t off);
/* Whether engine_fixed_io() would take a transfer of size from this thread. */
bool engine_fixed_wants(Fs *fs, size_t size);
/* The thread's request buffer is about to change: its registration goes. */
void engine_fixed_forget_reqbuf(void);
/* At thread exit, before the thread's buffers are freed. */
void engine_thread_exit(void);

/* ring.c: FUSE over io_uring */
/* Can this process make the io_uring the ring needs?  Asked before INIT takes it. */
bool ring_usable(void);
void ring_start(Fs *fs);
void ring_stop(Fs *fs);
bool ring_active(Fs *fs);
void ring_counts(Fs *fs, uint64_t *fast, uint64_t *pool);
/* A reply for the request this thread processes from a ring entry: taken (true). */
bool ring_reply(Fs *fs, const struct iovec *iov, int count, ssize_t *ret);
void ring_done(RingEnt *e);

/* ops.c: the backing fd for a READ/WRITE of open file fh and the offset on it
 * (*fd_off), as vh_data_fd(); -EAGAIN: only the request handlers can serve it. */
int fs_io_fd(Fs *fs, uint64_t fh, bool write, const void *data, size_t size, off_t off,
	     off_t *fd_off);

/* xattr.c */
void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags);
void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
/* The status JSON (storage status + what only fs/ knows). */
char *fs_status_json(Fs *fs);
