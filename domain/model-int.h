/*
 * model-int: the model's structures, private to domain/.
 *
 * Lock order: Domain.op_lock before Domain.lock (the rwlock); Storage.lock
 * is never taken while holding either.  Fields say which lock protects them.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <glib.h>

#include "domain/model.h"
#include "lease/mailbox.h"
#include "metadata/md-domain.h"
#include "metadata/md-journal.h"
#include "metadata/md-kv.h"
#include "metadata/md-qcow2.h"
#include "metadata/md-volume.h"

/* oVirt's image of an ISO domain's files (reference section 1). */
#define ISO_IMAGE_UUID "11111111-1111-1111-1111-111111111111"
#define REMOVE_ME_PREFIX "_remove_me_"
#define JOURNAL_FILE "ovstore.journal"

typedef struct DomainBackend DomainBackend;
typedef struct BlockDom BlockDom;
typedef struct BlockLv BlockLv;

typedef struct Problem {
	char *path;
	char *error;
} Problem;

struct Storage {
	StorageOptions opt; /* paths owned */
	LeaseManager *leases;
	GRWLock lock;	     /* protects the fields below */
	GHashTable *pools;   /* uuid -> Pool* (owned) */
	GHashTable *domains; /* uuid -> Domain* (owned) */
	GHashTable *seen;    /* domain dir path -> NULL: considered already */
	GPtrArray *problems; /* Problem* */
	gint64 last_scan;    /* monotonic µs */
	GMutex scan_lock;    /* serialises scans */

	/* cluster.c: the thread that contends for, checks and gives up SPM roles */
	GThread *cluster;
	GMutex cluster_lock; /* protects the two flags */
	GCond cluster_cond;
	bool cluster_stop;
	bool lease_lost;
};

struct Pool {
	Storage *st;
	char uuid[37];
	Domain *master;	    /* protected by st->lock */
	GPtrArray *domains; /* Domain*, protected by st->lock */

	/* cluster.c (its thread, atomics where others read) */
	GMutex role_lock;      /* taking, starting, checking and releasing the SPM role */
	bool spm_ready;        /* SPM and started (recovered, keys written): atomic */
	gint64 backoff_until;  /* role_lock: monotonic µs, no SPM attempt before (released it) */
	uint64_t released_lver; /* role_lock: the SPM lease version this host gave up last */
	gint64 last_try;      /* monotonic µs of the last SPM attempt */
	gint64 last_refresh;  /* monotonic µs: a non-SPM host re-read the pool */
	GMutex server_lock;  /* protects the four below */
	MBox *mbox;	     /* the master's mailbox, opened on first use */
	bool serving;	     /* this host answers the mailbox (SPM) */
	uint64_t lver;	     /* SPM lease version: ours while serving */
	uint64_t seen_lver;  /* a host that is not SPM: change log read up to */
	uint64_t seen_seq;
};

struct Domain {
	Storage *st;
	Pool *pool;
	const DomainBackend *ops;
	char uuid[37];
	char *dir;	/* <storage path>/<sdUUID>; a block domain: its PVs, comma separated */
	BlockDom *bd;	/* a block domain's PVs and LVs, NULL on a file domain */
	int dir_fd;	/* the domain directory */
	int images_fd;	/* <dir>/images */
	int journal_fd; /* dom_md/ovstore.journal, -1 when read-only */
	int version;
	uint32_t block_size;
	uint32_t alignment;
	bool iso;
	bool master;
	bool shadow;	/* reload.c's read-only copy: scans write nothing */
	GHashTable *shadow_lvs; /* a shadow of a block domain: the LVs its scan found */
	gint changed;	/* the SPM changed metadata since it last told the others (atomic) */

	GMutex op_lock; /* serialises metadata changes */
	/*
	 * Serialises taking and giving back the volume leases of the domain
	 * (Volume.lease); held across the lease manager's call, so never
	 * taken with op_lock or lock held, and guarding nothing else.
	 */
	GMutex lease_lock;
	GCond writers_gone; /* a write handle closed; waited on with op_lock */
	GRWLock lock;	/* protects everything below */
	MdKv *kv;
	MdDomainInfo *info;
	GHashTable *images;  /* name -> Image* (a reference each) */
	GHashTable *volumes; /* name -> Volume* (a reference each) */

	/* journal (journal.c): taken briefly, never across I/O; LV extensions
	 * write records without the op lock */
	GMutex jrnl_lock;
	uint64_t jrnl_seq;  /* protected by jrnl_lock */
	uint64_t jrnl_used; /* bitmap of busy slots, protected by jrnl_lock */
};

struct Image {
	gint refs;
	Domain *dom;
	char *name;	    /* protected by dom->lock */
	bool dead;	    /* protected by dom->lock */
	GPtrArray *volumes; /* Volume* linked here (no reference), protected by dom->lock */
	gint daemon_io;	    /* 1: its volumes' opens go to the daemon (io_policy); atomic */
};

struct Volume {
	gint refs;
	Domain *dom;
	char *name;	   /* protected by dom->lock */
	GPtrArray *images; /* Image* it is linked into (no reference), protected by dom->lock */
	MdVolume md;	   /* protected by dom->lock */
	bool corrupt;	   /* protected by dom->lock */
	bool plain;	   /* ISO file: no metadata record, no lease */
	bool dead;	   /* protected by dom->lock */
	gint n_writers;	   /* handles open for write; changed under op_lock */
	gint n_flushed;	   /* of those, flushed (closing) and not written since */
	gint cluster_size; /* qcow2 cluster size, 0 unknown; atomic */
	bool emptied;	   /* truncated to 0 since the last header check; op_lock */
	LeaseHold *lease;  /* its volume lease while open for write; dom->lease_lock */
	guint lease_users; /* handles counting on lease; dom->lease_lock */
	gint daemon_io;	   /* 1: the daemon serves every open (io_policy); atomic */
};

struct VolHandle {
	Volume *vol; /* a reference */
	int fd;	     /* -1 on a block domain */
	BlockLv *lv; /* a block domain's volume LV, else NULL */
	int flags;
	bool write;
	bool unwatched; /* writes go around the daemon (passthrough) */
	bool leased;	/* counted in vol->lease_users */
	gint flushed;	/* 1 after a flush, 0 again at a write; counted in n_flushed */
};

/* The sanlock areas of a domain (reference section 9.1). */
typedef enum DomLeaseArea {
	DOM_LEASE_IDS,	  /* the lockspace: delta leases */
	DOM_LEASE_SPM,	  /* the pool's SPM resource `SDM` (on the master) */
	DOM_LEASE_VOLUME, /* a volume's lease */
	DOM_LEASE_MAX,
} DomLeaseArea;

/*
 * What a storage backend does to the bytes on disk; the generic code in
 * volume.c/image.c decides the order, the journal and the model updates.
 * Names passed in are validated; every function returns -errno.
 */
struct DomainBackend {
	const char *type; /* "file", "block" */
	/* Loads images and volumes into the (empty) tables. */
	int (*scan)(Domain *d);
	int (*image_create)(Domain *d, const char *img, uid_t uid, gid_t gid);
	int (*image_remove)(Domain *d, const char *img);
	int (*image_rename)(Domain *d, const char *from, const char *to);
	int (*image_stat)(Domain *d, const char *img, struct stat *ret);
	int (*image_chmod)(Domain *d, const char *img, mode_t mode);
	int (*image_chown)(Domain *d, const char *img, uid_t uid, gid_t gid);
	/* The volume's data object, empty; -EEXIST when it exists. */
	int (*vol_create)(Domain *d, const char *img, const char *vol, mode_t mode, uid_t uid,
			  gid_t gid);
	int (*vol_remove)(Domain *d, const char *img, const char *vol);
	int (*vol_rename)(Domain *d, const char *img, const char *from, const char *to);
	/* Links data, record and lease of vol from image `from` into `to`. */
	int (*vol_link)(Domain *d, const char *vol, const char *from, const char *to);
	int (*vol_open)(Domain *d, const char *img, const char *vol, int flags);
	int (*vol_stat)(Domain *d, const char *img, const char *vol, struct stat *ret);
	int (*vol_chmod)(Domain *d, const char *img, const char *vol, mode_t mode);
	int (*vol_chown)(Domain *d, const char *img, const char *vol, uid_t uid, gid_t gid);
	int (*vol_utimens)(Domain *d, const char *img, const char *vol,
			   const struct timespec times[2]);
	int (*vol_truncate)(Domain *d, const char *img, const char *vol, off_t size);
	/* Writes the record of vol into image img. */
	int (*md_write)(Domain *d, const char *img, const char *vol, const MdVolume *md);
	int (*md_remove)(Domain *d, const char *img, const char *vol);
	int (*lease_create)(Domain *d, const char *img, const char *vol);
	int (*lease_remove)(Domain *d, const char *img, const char *vol);
	/* Where a sanlock area is: a file or device and a byte offset in it
	 * (img and vol only for DOM_LEASE_VOLUME). */
	int (*lease_area)(Domain *d, DomLeaseArea area, const char *img, const char *vol,
			  char **ret_path, uint64_t *ret_offset);
	/* n records from slot on, in one read (MD_JOURNAL_RECORD_SIZE each);
	 * -ENOENT: the domain has no journal */
	int (*journal_read)(Domain *d, unsigned slot, unsigned n, void *buf);
	int (*journal_write)(Domain *d, unsigned slot, const void *buf);
	int (*statfs)(Domain *d, struct statvfs *ret);
	/* Replaces the domain metadata (and the pool keys on a master). */
	int (*domain_md_write)(Domain *d, const MdKv *kv);
};

extern const DomainBackend file_backend;
extern const DomainBackend block_backend;

/* block.c: what io.c and storage.c need of a block domain. */
/* Reads the MDT_ tags (checked: seal, ready marker) and the metadata LV's map. */
int block_domain_load(Domain *d, MdKv **ret_kv);
/* The LV of a volume, valid for the life of the domain; NULL when none. */
BlockLv *block_lv_lookup(Domain *d, const char *vol);
/* Bytes a volume shows: raw, its capacity; qcow2, its LV size. */
uint64_t block_lv_size(BlockLv *lv);
/* Reads stop at block_lv_size(); writes past the LV end fail with ENOSPC. */
ssize_t block_lv_pread(Domain *d, BlockLv *lv, bool direct, void *buf, size_t len, uint64_t off);
ssize_t block_lv_pwrite(Domain *d, BlockLv *lv, bool direct, const void *buf, size_t len,
			uint64_t off);
/*
 * For an asynchronous engine: the PV fd and offset where the whole of a read
 * or write of [off, off + len) lies, after the checks block_lv_pread/pwrite
 * make.  -EAGAIN when it must go through them (past the shown end, a thin
 * LV's extension threshold, a range across extents).
 */
int block_lv_io_target(Domain *d, BlockLv *lv, bool write, bool direct, size_t len, uint64_t off,
		       int *ret_fd, uint64_t *ret_off);
int block_lv_zero(Domain *d, BlockLv *lv, uint64_t off, uint64_t len);
/*
 * The first len bytes of the LV as they are on the PVs, whatever size the
 * volume shows (a raw volume's capacity may be 0 while another host has
 * written a qcow2 header into it).
 */
ssize_t block_lv_read_head(Domain *d, BlockLv *lv, void *buf, size_t len);
/* fallocate(2) modes 0, KEEP_SIZE (the LV grows), PUNCH_HOLE and ZERO_RANGE (zeroed). */
int block_lv_fallocate(Domain *d, BlockLv *lv, int mode, uint64_t off, uint64_t len);
int block_sync(Domain *d, bool datasync);
/*
 * Where [off, off + len) of a special LV (`ids`, `leases`, `inbox`...) is
 * on the PVs: the PV's path (owned) and the byte offset on it; -ERANGE when
 * the range is not on one PV.
 */
int block_special_location(Domain *d, const char *lv, uint64_t off, uint64_t len,
			   char **ret_path, uint64_t *ret_off);
/*
 * After a reload's scan of s (a shadow of d): d's LVs take what s found;
 * LVs gone from the VG move to the kept list (open handles), maps grow.
 */
void block_reconcile(Domain *d, Domain *s);
/* The SPM extends a thin volume's LV to size bytes for another host. */
int block_lv_grow(Domain *d, const char *vol, uint64_t size);
/* Whether an image of a block domain was made here (mkdir) and lives in memory. */
bool block_image_in_memory(Domain *d, const char *img);
/*
 * Journal replay of an LV extension cut off before its record was cleared:
 * zeroes the LV from old_size (what was served) to its end.
 */
int block_lv_extend_replay(Domain *d, const char *vol, uint64_t old_size);

/* model.c: building and querying the tables (callers hold the right locks). */
Image *model_image_new(Domain *d, const char *name);
Volume *model_volume_new(Domain *d, const char *name);
/* Adds to d->images (takes the reference). */
void model_add_image_locked(Domain *d, Image *img);
void model_add_volume_locked(Domain *d, Volume *vol);
void model_link_locked(Volume *vol, Image *img);
void model_unlink_locked(Volume *vol, Image *img);
Volume *model_find_volume_locked(Domain *d, const char *name);
Image *model_find_image_locked(Domain *d, const char *name);
/* Volumes whose parent is vol (any image); count only when ret is NULL. */
unsigned model_children_locked(Domain *d, const char *vol, GPtrArray *ret);
bool model_volume_in_image_locked(Volume *vol, Image *img);
/*
 * The record a volume gets when its own cannot be read (or an ISO file,
 * which has none): raw, type as the backend makes them, a leaf, illegal.
 */
void model_corrupt_record(Domain *d, MdVolType type, const char *img, MdVolume *md);
/* The image named in the record (the home of a template), or NULL. */
Image *model_home_image_locked(Volume *vol);

/* volume.c */
/* Writes md as vol's record in every image holding it, then keeps it in memory. */
int vol_write_md_locked(Volume *vol, MdVolume *md);
/* Sets the role that the parent links imply (LEAF/INTERNAL; SHARED kept). */
int vol_fix_role_locked(Domain *d, Volume *vol);

/* io.c */
/*
 * Reads and parses the header at the start of fd (up to 2 MiB); with
 * ret_buf, hands out the bytes read (free with ov_aligned_free).
 */
int qcow2_read_header(int fd, void **ret_buf, size_t *ret_len, MdQcow2Header *ret_hdr);
/*
 * The first 2 MiB of a volume on any backend, zero padded (free with
 * ov_aligned_free); *ret_len says how many bytes were there.
 */
int vol_read_head(Domain *d, const char *img, const char *name, void **ret_buf, size_t *ret_len);
/* Writes len bytes at offset 0 of a volume and syncs them. */
int vol_write_head(Domain *d, const char *img, const char *name, const void *buf, size_t len);
/*
 * -EBUSY when another host has vol open for write (it holds the volume
 * lease): takes the lease and gives it back.  0 otherwise (and always
 * with the local lease).
 */
int vol_lease_probe(Volume *vol);
/* The SPM learns vol's header from its bytes (written by another host). */
int vol_learn_header(Volume *vol);
/* Brings vol's record and its parents' roles in step with its header. */
int vol_apply_header_locked(Domain *d, Volume *vol, const MdQcow2Header *hdr, Volume *parent);

/* Waits (op lock held, briefly dropped) while every write handle of vol is
 * flushed and only its RELEASE is still to come. */
void vol_settle_writers_locked(Domain *d, Volume *vol);

/*
 * journal.c: intent records.  Callers serialise the operations a record
 * covers (the op lock; an LV's extension lock); slots are taken and freed
 * under d->jrnl_lock.
 */
int jrnl_begin(Domain *d, MdJournalOp op, MdKv *args, int *ret_slot);
/* Clears a record; on failure the slot stays busy (and the record live). */
int jrnl_clear(Domain *d, int slot);
/* jrnl_clear(), a failure logged: for records whose replay is harmless. */
void jrnl_end(Domain *d, int slot);
/* Rolls every live record forward or back; at start, before the scan. */
int jrnl_replay(Domain *d);
/*
 * The LV extensions the SPM has begun and not finished (live lv-extend
 * records, read from the disk): volume name -> its old_size (a guint64
 * pointer), the bytes of the LV that are zeroed and may be used.  A host
 * that reads an LV's segments must not use the extents past that: the SPM
 * may still be zeroing them (block.c, "the map a host may use").
 */
int jrnl_pending_extends(Domain *d, GHashTable **ret);

/* repair.c: derived metadata put right after a scan. */
int dom_repair(Domain *d);
/* Finishing steps shared by operations and journal replay. */
int vol_rename_finish(Domain *d, const char *img, const char *from, const char *to);
int img_rename_finish(Domain *d, const char *from, const char *to);
int vol_delete_finish(Domain *d, const char *img, const char *vol, bool link_only);

/* reload.c: re-reading a domain that another host changed (op_lock held). */
int dom_reload_locked(Domain *d);
int dom_reload(Domain *d);

/* cluster.c: the SPM role. */
/*
 * Before a metadata change: 0 when this host may write (SPM, lease still
 * held), 1 when the change must be forwarded to the SPM, -ENOLCK when the
 * lease is lost while serving a forwarded request, -EROFS on a shadow.
 */
int spm_guard(Domain *d);
/* This host (SPM) changed d's metadata: the other hosts are told (cluster.c). */
static inline void dom_changed(Domain *d)
{
	g_atomic_int_set(&d->changed, 1);
}
void spm_set_serving(bool on);
/* One attempt at p's SPM lease; *ret_lver its version (0: not kept). */
int spm_acquire(Pool *p, uint64_t *ret_lver);
/* What a new SPM does once it has the lease; fresh: the domains were just read. */
void spm_begin(Pool *p, uint64_t lver, bool fresh);
/* Whether this host may write d's metadata now (no fencing check: spm_guard). */
bool dom_may_write(Domain *d);
void cluster_start(Storage *st);
void cluster_stop(Storage *st);

/* storage.c, for cluster.c */
/* Writes POOL_SPM_ID (this host) and POOL_SPM_LVER (lver, or the old one + 1 when 0). */
void spm_update_master(Pool *p, uint64_t lver);
/* Writes POOL_SPM_ID=-1 (giving the role up). */
void spm_clear_master(Pool *p);
/* Re-reads a domain's metadata (its kv and info). */
int dom_reload_md(Domain *d);

/* forward.c: metadata changes asked on a host that is not SPM. */
typedef enum FwdOp {
	FWD_MKDIR = 1,	  /* img */
	FWD_RMDIR,	  /* img */
	FWD_RENAME_IMG,	  /* img -> to */
	FWD_CREATE,	  /* img, vol, num = mode */
	FWD_UNLINK,	  /* img, vol */
	FWD_RENAME_VOL,	  /* img, vol -> to */
	FWD_LINK,	  /* vol into image to */
	FWD_TRUNCATE,	  /* vol, num = size */
	FWD_LEGALITY,	  /* vol, num = MdLegality */
	FWD_DESCRIPTION,  /* vol, text */
	FWD_HEADER,	  /* vol: learn its qcow2 header from the bytes */
	FWD_EXTEND,	  /* vol (thin, block): its LV to num bytes */
	FWD_MAX,
} FwdOp;

typedef struct FwdReq {
	FwdOp op;
	const char *img;
	const char *vol;
	const char *to;
	const char *text;
	uint64_t num;
} FwdReq;

/*
 * Sends req (about domain d) to the SPM and waits for its answer: the
 * result of the operation there, or -ETIMEDOUT when no SPM answered in
 * time (then nothing was done).  d is re-read before returning.
 */
int fwd_call(Domain *d, const FwdReq *req);
/*
 * Asks the SPM to extend vol's LV to size bytes: oVirt's 64-byte xtnd
 * message when the names are UUIDs (as VDSM hosts send), else ovstore's
 * own request.  0 when the SPM says it is done.
 */
int fwd_extend(Domain *d, const char *vol, uint64_t size);
/* The SPM's side: does req on domain d as if asked here. */
int fwd_serve(Domain *d, const FwdReq *req);
/* The mailbox server of the SPM: start (idempotent) and stop (idempotent). */
void spm_serve_start(Pool *p);
void spm_serve_stop(Pool *p);
/* The SPM tells the other hosts which domains it changed (change log). */
void spm_publish_changes(Pool *p);
/* Stops serving and closes the pool's mailbox. */
void spm_mailbox_close(Pool *p);
/* A host that is not SPM re-reads what the SPM changed (called often). */
void spm_refresh(Pool *p, gint64 now);

/* Increments a record generation the way oVirt does (mod 1000). */
static inline uint32_t md_next_generation(uint32_t gen)
{
	return (gen + 1) % MD_VOLUME_GEN_MODULO;
}
