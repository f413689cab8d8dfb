/*
 * model: pools, domains, images and volumes as the tree shows them, and
 * every change to them (STYLE.md 1: fs/ and cli/ call this; it calls
 * metadata/, block/ and lease/).
 *
 * Objects and lifetimes:
 *   Storage  everything one daemon serves; owns pools and domains.
 *   Pool     a pool (by UUID); lives as long as the Storage.
 *   Domain   a storage domain; lives as long as the Storage.  Domains only
 *            come (a rescan finds new ones), never go while mounted.
 *   Image    refcounted (img_ref/img_unref); removed images stay valid
 *            objects, marked dead, until the last reference goes.
 *   Volume   refcounted (vol_ref/vol_unref), same rule.  One Volume per
 *            name in a domain; a template linked into several images is one
 *            Volume that lists all of them.
 *   VolHandle an open volume: the backing fd stays open for the handle's
 *            life, so the data path is one pread/pwrite on it.
 *
 * Every function that can fail returns -errno, with the errno that
 * CONTRACT.md names for that failure.  All functions are thread-safe.
 *
 * Locking (essay in domain/volume.c): each Domain has an op lock that
 * serialises metadata changes (held across their disk I/O) and a model
 * rwlock for the in-memory tables (held only briefly).  The data path takes
 * neither, except writes that touch a qcow2 header.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "lease/lease.h"
#include "metadata/md-volume.h"

typedef struct Storage Storage;
typedef struct Pool Pool;
typedef struct Domain Domain;
typedef struct Image Image;
typedef struct Volume Volume;
typedef struct VolHandle VolHandle;

/* ---- opening the storage ---- */

typedef struct StorageOptions {
	char **paths;	     /* storage directories (g_strv) */
	LeaseKind lease;
	unsigned host_id;
	unsigned io_timeout;
	uid_t uid;	     /* owner of what the tree creates */
	gid_t gid;
	unsigned chunk_mb;   /* thin qcow2 chunk on block domains, MiB (0: 1024) */
} StorageOptions;

/*
 * Scans the paths for domains, groups them in pools, joins every domain's
 * lockspace, takes the SPM role, finishes or rolls back interrupted
 * operations (journal), repairs derived metadata, and loads the images.
 * A domain that cannot be read is left out and listed in the status
 * "problems"; a lease that cannot be taken fails the whole open.
 */
int storage_open(const StorageOptions *opt, Storage **ret);
void storage_free(Storage *st);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Storage, storage_free)
/* In the child a daemonizing fork() left (the leases' watcher thread did not survive). */
int storage_forked(Storage *st);
/*
 * Starts the cluster work (contending for SPM roles, answering or reading
 * the storage mailbox): after daemonizing, since threads do not survive it.
 */
void storage_start(Storage *st);

/* Looks for domains that appeared since the last scan (rate-limited). */
void storage_rescan(Storage *st);
/* Pools sorted by UUID (borrowed pointers; free the array). */
GPtrArray *storage_pools(Storage *st);
Pool *storage_pool_lookup(Storage *st, const char *uuid);
unsigned storage_host_id(const Storage *st);
/* The status object of CONTRACT.md ("host_id", "pools", ...). */
JsonObject *storage_status(Storage *st);

/* ---- pools ---- */

const char *pool_uuid(const Pool *p);
/* The master domain, NULL when the pool has none. */
Domain *pool_master(Pool *p);
/* Domains sorted by UUID (borrowed pointers; free the array). */
GPtrArray *pool_domains(Pool *p);
Domain *pool_domain_lookup(Pool *p, const char *uuid);
/* Host id of the SPM, -1 when none. */
int pool_spm_host(Pool *p);
/* Whether this host is the pool's SPM, started: recovered, keys written, answering. */
bool pool_is_spm(Pool *p);
/* Hands the SPM role over ("release"); -EPERM when this host is not SPM. */
int pool_spm_release(Pool *p);

/* ---- domains ---- */

typedef struct DomainInfo {
	char uuid[37];
	const char *type;  /* "file" / "block" */
	const char *cls;   /* "data" / "iso" / "backup" */
	const char *role;  /* "master" / "regular" */
	int version;
	char *description; /* owned */
} DomainInfo;

const char *dom_uuid(const Domain *d);
Pool *dom_pool(Domain *d);
bool dom_is_iso(const Domain *d);
void dom_get_info(Domain *d, DomainInfo *ret);
void dom_info_release(DomainInfo *info);
int dom_statfs(Domain *d, struct statvfs *ret);

/* Images sorted by name, with a reference each (free with g_ptr_array_unref). */
GPtrArray *dom_images(Domain *d);
/* NULL when absent; a new reference. */
Image *dom_image_lookup(Domain *d, const char *name);
/* mkdir: EEXIST, EINVAL (name), ENOSPC, EPERM (ISO domain). */
int dom_image_create(Domain *d, const char *name, Image **ret);
/* The image holding an ISO domain's files (a new reference); NULL for data domains. */
Image *dom_iso_image(Domain *d);

/* ---- images ---- */

Image *img_ref(Image *img);
void img_unref(Image *img);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Image, img_unref)
Domain *img_domain(Image *img);
char *img_name(Image *img); /* a copy (names change on rename) */
bool img_is_dead(Image *img);
/* stat of the backing directory. */
int img_stat(Image *img, struct stat *ret);
int img_chmod(Image *img, mode_t mode);
int img_chown(Image *img, uid_t uid, gid_t gid);
/* rmdir: ENOTEMPTY. */
int img_remove(Image *img);
/* rename within the domain: EBUSY (a volume open for write), EEXIST/ENOTEMPTY. */
int img_rename(Image *img, const char *new_name);
/* Volumes, each chain leaf first (new references; free with g_ptr_array_unref). */
GPtrArray *img_volumes(Image *img);
/* NULL when absent; a new reference. */
Volume *img_volume_lookup(Image *img, const char *name);
/* create(2): a new raw sparse leaf; EEXIST, EINVAL, ENOSPC. */
int img_volume_create(Image *img, const char *name, mode_t mode, Volume **ret);

/* ---- volumes ---- */

typedef struct VolumeInfo {
	char name[MD_VOLUME_NAME_MAX + 1];
	char parent[MD_VOLUME_NAME_MAX + 1]; /* "" for a base */
	MdVolFormat format;
	MdVolType type;
	MdVolRole role;
	MdLegality legality;
	uint64_t capacity;
	uint32_t generation;
	char description[MD_VOLUME_RECORD_SIZE];
	bool plain;	 /* an ISO domain's file: no metadata */
	bool corrupt;	 /* its metadata record could not be read */
	bool writable;	 /* a leaf with a sound record */
	unsigned n_images; /* images it is linked into */
} VolumeInfo;

Volume *vol_ref(Volume *vol);
void vol_unref(Volume *vol);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Volume, vol_unref)
void vol_get_info(Volume *vol, VolumeInfo *ret);
bool vol_is_dead(Volume *vol);
/*
 * stat of the backing file, mode without write bits when the volume is not
 * writable (internal, shared, corrupt).
 */
int vol_stat(Volume *vol, struct stat *ret);
int vol_chmod(Volume *vol, mode_t mode);
int vol_chown(Volume *vol, uid_t uid, gid_t gid);
int vol_utimens(Volume *vol, const struct timespec times[2]);
/* truncate: EPERM (not a leaf), EROFS (corrupt), EBUSY (qcow2 with a child). */
int vol_truncate(Volume *vol, off_t size);
/* unlink from img: EBUSY (has a child, open for write). */
int vol_unlink(Volume *vol, Image *img);
/* rename within img: EBUSY (open for write, shared), EEXIST, EINVAL. */
int vol_rename(Volume *vol, Image *img, const char *new_name);
/* link into dst (same domain): EPERM (has a parent), EBUSY (open for write), EEXIST. */
int vol_link(Volume *vol, Image *dst);
/* user.ovstore.legality / description: EINVAL, ERANGE, EROFS (corrupt). */
int vol_set_legality(Volume *vol, MdLegality legality);
int vol_set_description(Volume *vol, const char *text);

/* ---- the data path ---- */

/*
 * Opens the volume.  flags are open(2) flags (O_ACCMODE, O_DIRECT, O_DSYNC,
 * O_SYNC pass on to the backing file).  Writing: EPERM on internal and
 * shared volumes, EROFS on corrupt ones.
 */
int vol_open(Volume *vol, int flags, VolHandle **ret);
void vh_close(VolHandle *h);
Volume *vh_volume(VolHandle *h);
/*
 * The handle was flushed (close(2) of one of its descriptors): unless it is
 * written through again, its RELEASE follows, and unlink/rename wait for it
 * rather than fail with EBUSY.
 */
void vh_flushed(VolHandle *h);
bool vh_is_direct(const VolHandle *h);
/*
 * Whether the kernel may do the reads and writes of an open with these
 * flags itself (FUSE passthrough), the daemon not seeing them: always for
 * reading, and for writing unless the daemon must watch the writes (an
 * empty raw volume, whose first bytes may be a qcow2 header to check).
 */
bool vol_may_pass_through(Volume *vol, int flags);
/*
 * The volume's I/O policy on this host (user.ovstore.io_policy), kept in
 * memory for the life of the mount: with `daemon` set, every later open is
 * served by the daemon (vol_may_pass_through() says no); the default lets
 * the mount choose.  Opens made before keep their tier.
 */
void vol_set_daemon_io(Volume *vol, bool daemon);
bool vol_daemon_io(Volume *vol);
/* The same for a whole image (the disk): applies to the volumes whose home
 * it is, today's and those made later (the next snapshot's leaf). */
void img_set_daemon_io(Image *img, bool daemon);
bool img_daemon_io(Image *img);
/* The backing fd (for registering it with the kernel). */
int vh_backing_fd(VolHandle *h);
/* This handle's writes go around the daemon from now on (passthrough). */
void vh_set_unwatched(VolHandle *h);
/*
 * For a handle whose writes the daemon did not see: brings the record in
 * step with the bytes (qcow2 header: capacity, parent; raw: size).  A header
 * that breaks the rules fails with CONTRACT's errors (EINVAL, EBUSY): the
 * bytes stay as written, the record keeps its last valid state.  Called at
 * fsync, flush and close.
 */
int vh_learn(VolHandle *h);
/*
 * For an asynchronous engine: the fd on which the caller may do this read or
 * write itself (size bytes, from buf), and the offset on that fd in
 * *ret_off (off itself for a file; on a block volume, where the range lies on
 * its PV), after the checks vh_pread() and vh_pwrite() make.  -EAGAIN when
 * it must go through them instead (a qcow2 header write; on a block volume
 * a range past its end, across extents, or at a thin LV's extension
 * threshold), or -errno (EINVAL misaligned O_DIRECT, EBADF).
 */
int vh_data_fd(VolHandle *h, bool write, const void *buf, size_t size, off_t off,
	       off_t *ret_off);
/* Reads up to size bytes; returns the count (0 at the end) or -errno. */
ssize_t vh_pread(VolHandle *h, void *buf, size_t size, off_t off);
/*
 * Writes all of buf (or fails).  A write that touches a qcow2 header is
 * checked first and the metadata follows it (CONTRACT.md: EINVAL for a
 * backing file outside the image, EBUSY when the named parent is not the
 * leaf).  buf must be aligned for O_DIRECT handles (OV_DIRECT_ALIGN).
 */
ssize_t vh_pwrite(VolHandle *h, const void *buf, size_t size, off_t off);
int vh_fsync(VolHandle *h, bool datasync);
int vh_fallocate(VolHandle *h, int mode, off_t off, off_t len);
off_t vh_lseek(VolHandle *h, off_t off, int whence);
/* Server-side copy keeping holes; returns bytes copied or -errno. */
ssize_t vh_copy_range(VolHandle *src, off_t src_off, VolHandle *dst, off_t dst_off,
		      size_t len);
