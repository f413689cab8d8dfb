/*
 * io.c: the data path of a volume, and the qcow2 header rules.
 *
 * A VolHandle keeps the backing fd open; reads and writes are one
 * pread/pwrite on it with the caller's buffer (fs/ hands in buffers aligned
 * for O_DIRECT), no lock, no copy.
 *
 * Writes that can change what the metadata says go the slow way, under the
 * domain's op lock: a write into the first 2 MiB (the largest qcow2 cluster,
 * which holds the header and the backing file name) of a qcow2 volume, and
 * a write at offset 0 of an empty raw volume that starts with the qcow2
 * magic (qemu-img create).  The header as it will be after the write is
 * parsed and checked before a byte is written (CONTRACT: EINVAL for a
 * backing file outside the image, EBUSY when the named parent is not the
 * leaf); then a journal record is written, the data, the child's record and
 * the parents' roles, and the record cleared.  A crash in between is rolled
 * forward from the bytes (journal.c).
 */
#include "domain/model-int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <linux/falloc.h>

#include "common/cleanup.h"
#include "common/fault.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/names.h"
#include "metadata/md-qcow2.h"
#include "common/banned.h"

#define HEADER_WINDOW ((size_t)1 << MD_QCOW2_MAX_CLUSTER_BITS)

static ssize_t pread_full(int fd, void *buf, size_t size, off_t off)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = pread(fd, (char *)buf + done, size - done, off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ov_errno();
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static ssize_t pwrite_full(int fd, const void *buf, size_t size, off_t off)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = pwrite(fd, (const char *)buf + done, size - done, off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ov_errno();
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/*
 * Block volumes have no fd: their bytes are reached through the LV's extent
 * map (block.c).  These helpers pick the way.
 */
static ssize_t h_pread(VolHandle *h, void *buf, size_t size, off_t off)
{
	if (h->lv)
		return block_lv_pread(h->vol->dom, h->lv, (h->flags & O_DIRECT) != 0, buf, size,
				      (uint64_t)off);
	return pread_full(h->fd, buf, size, off);
}

static ssize_t h_pwrite(VolHandle *h, const void *buf, size_t size, off_t off)
{
	if (h->lv)
		return block_lv_pwrite(h->vol->dom, h->lv, (h->flags & O_DIRECT) != 0, buf, size,
				       (uint64_t)off);
	return pwrite_full(h->fd, buf, size, off);
}

static int h_size(VolHandle *h, off_t *ret)
{
	struct stat st;

	if (h->lv) {
		*ret = (off_t)block_lv_size(h->lv);
		return 0;
	}
	if (fstat(h->fd, &st) < 0)
		return ov_errno();
	*ret = st.st_size;
	return 0;
}

/* The first HEADER_WINDOW bytes of a volume (fewer when it is shorter). */
static ssize_t read_window(Domain *d, const char *img, const char *name, void *buf)
{
	ssize_t n;
	int rfd;

	if (d->bd) {
		BlockLv *lv = block_lv_lookup(d, name);

		return lv ? block_lv_read_head(d, lv, buf, HEADER_WINDOW) : -ENOENT;
	}
	rfd = d->ops->vol_open(d, img, name, O_RDONLY);
	if (rfd < 0)
		return rfd;
	n = pread_full(rfd, buf, HEADER_WINDOW, 0);
	ov_close_fd(rfd);
	return n;
}

int vol_read_head(Domain *d, const char *img, const char *name, void **ret_buf, size_t *ret_len)
{
	void *buf = ov_aligned_alloc(HEADER_WINDOW);
	ssize_t n = read_window(d, img, name, buf);

	if (n < 0) {
		ov_aligned_free(buf);
		return (int)n;
	}
	memset((char *)buf + n, 0, HEADER_WINDOW - (size_t)n);
	*ret_buf = buf;
	*ret_len = (size_t)n;
	return 0;
}

int vol_write_head(Domain *d, const char *img, const char *name, const void *buf, size_t len)
{
	g_auto(OvFd) fd = -1;

	if (d->bd) {
		BlockLv *lv = block_lv_lookup(d, name);
		ssize_t n;

		if (!lv)
			return -ENOENT;
		n = block_lv_pwrite(d, lv, false, buf, len, 0);
		if (n < 0)
			return (int)n;
		return block_sync(d, false);
	}
	fd = d->ops->vol_open(d, img, name, O_RDWR);
	if (fd < 0)
		return fd;
	if (pwrite_full(fd, buf, len, 0) != (ssize_t)len || fsync(fd) < 0)
		return -EIO;
	return 0;
}

static int read_header_of(Domain *d, const char *img, const char *name, MdQcow2Header *ret)
{
	void *buf = ov_aligned_alloc(HEADER_WINDOW);
	ssize_t n = read_window(d, img, name, buf);
	int r;

	if (n < 0) {
		ov_aligned_free(buf);
		return (int)n;
	}
	memset((char *)buf + n, 0, HEADER_WINDOW - (size_t)n);
	r = md_qcow2_parse(buf, (size_t)n, ret);
	ov_aligned_free(buf);
	return r;
}

int qcow2_read_header(int fd, void **ret_buf, size_t *ret_len, MdQcow2Header *ret_hdr)
{
	void *buf = ov_aligned_alloc(HEADER_WINDOW);
	ssize_t n;
	int r;

	n = pread_full(fd, buf, HEADER_WINDOW, 0);
	if (n < 0) {
		ov_aligned_free(buf);
		return (int)n;
	}
	memset((char *)buf + n, 0, HEADER_WINDOW - (size_t)n);
	r = md_qcow2_parse(buf, (size_t)n, ret_hdr);
	if (r < 0 || !ret_buf) {
		ov_aligned_free(buf);
		return r;
	}
	*ret_buf = buf;
	*ret_len = (size_t)n;
	return 0;
}

/*
 * Volume leases (CONTRACT: a volume open for write on one host cannot be
 * opened for write on another).  The first write handle of a volume on this
 * host takes its sanlock resource, the last one to close gives it back;
 * another host holding it makes the open fail with EBUSY.  The lease is
 * taken before the op lock, never under it (STYLE.md 4: no lock across a
 * sanlock call), and only where an open for write can succeed: a leaf that
 * is not corrupt (the checks under the op lock still decide).  ISO files
 * have no lease; --lease local has none to take.
 */
static int vol_lease_get(Volume *vol, bool *ret_took)
{
	Domain *d = vol->dom;
	LeaseManager *leases = d->st->leases;
	g_autofree char *img = NULL;
	g_autofree char *name = NULL;
	g_autofree char *path = NULL;
	char res[LEASE_NAME_MAX + 1];
	uint64_t off = 0;
	bool eligible;
	int r = 0;

	*ret_took = false;
	if (lease_kind(leases) != LEASE_KIND_SANLOCK)
		return 0;
	g_rw_lock_reader_lock(&d->lock);
	eligible = !vol->dead && !vol->plain && !vol->corrupt &&
		   vol->md.role == MD_VOL_ROLE_LEAF;
	if (eligible) {
		Image *home = model_home_image_locked(vol);

		img = g_strdup(home ? home->name : vol->md.image);
		name = g_strdup(vol->name);
	}
	g_rw_lock_reader_unlock(&d->lock);
	if (!eligible)
		return 0;
	g_mutex_lock(&d->lease_lock);
	if (vol->lease_users == 0) {
		r = d->ops->lease_area(d, DOM_LEASE_VOLUME, img, name, &path, &off);
		if (r == 0) {
			lease_volume_resource_name(name, res);
			r = lease_acquire(leases, d->uuid, res, path, off, &vol->lease);
		}
	}
	if (r == 0) {
		vol->lease_users++;
		*ret_took = true;
	}
	g_mutex_unlock(&d->lease_lock);
	if (r < 0)
		log_debug(LOG_CLASS_DOMAIN, "domain '%s' volume '%s': taking its lease: %s",
			  d->uuid, name, g_strerror(-r));
	return r;
}

static void vol_lease_put(Volume *vol)
{
	Domain *d = vol->dom;

	g_mutex_lock(&d->lease_lock);
	if (--vol->lease_users == 0)
		g_clear_pointer(&vol->lease, lease_release);
	g_mutex_unlock(&d->lease_lock);
}

int vol_lease_probe(Volume *vol)
{
	bool took = false;
	int r = vol_lease_get(vol, &took);

	if (r == 0 && took)
		vol_lease_put(vol);
	return r == -EBUSY ? -EBUSY : 0;
}

int vol_open(Volume *vol, int flags, VolHandle **ret)
{
	Domain *d = vol->dom;
	bool write = (flags & O_ACCMODE) != O_RDONLY;
	int oflags = flags & (O_ACCMODE | O_DIRECT | O_DSYNC | O_SYNC);
	g_autofree char *img = NULL;
	g_autofree char *name = NULL;
	bool learn = false;
	VolHandle *h;
	BlockLv *lv = NULL;
	bool leased = false;
	int fd;
	int r = 0;

	if (write) {
		r = vol_lease_get(vol, &leased);
		if (r < 0)
			return r; /* CONTRACT: EBUSY when open for write on another host */
	}
	g_mutex_lock(&d->op_lock);
	if (vol->dead) {
		r = -ENOENT;
	} else if (write && !vol->plain && vol->corrupt) {
		r = -EROFS; /* behaviour.md: a corrupt record makes the volume read-only */
	} else if (write && !vol->plain && vol->md.role != MD_VOL_ROLE_LEAF) {
		r = -EPERM; /* CONTRACT: EPERM writing internal/shared */
	}
	if (r < 0) {
		g_mutex_unlock(&d->op_lock);
		if (leased)
			vol_lease_put(vol);
		return r;
	}
	img = g_strdup(model_home_image_locked(vol) ? model_home_image_locked(vol)->name
						    : vol->md.image);
	name = g_strdup(vol->name);
	if (d->bd) {
		lv = block_lv_lookup(d, name);
		fd = lv ? -1 : -ENOENT;
	} else {
		fd = d->ops->vol_open(d, img, name, oflags);
	}
	if ((fd >= 0 || lv) && write)
		g_atomic_int_inc(&vol->n_writers);
	learn = (fd >= 0 || lv) && write && !vol->plain && vol->md.format == MD_VOL_FORMAT_COW &&
		g_atomic_int_get(&vol->cluster_size) == 0;
	g_mutex_unlock(&d->op_lock);
	if (fd < 0 && !lv) {
		if (leased)
			vol_lease_put(vol);
		return fd;
	}

	if (learn) {
		/* Writes below the first cluster end are header writes. */
		MdQcow2Header hdr;

		if (read_header_of(d, img, name, &hdr) == 0)
			g_atomic_int_set(&vol->cluster_size, 1 << hdr.cluster_bits);
	}
	h = g_new0(VolHandle, 1);
	h->vol = vol_ref(vol);
	h->fd = fd;
	h->lv = lv;
	h->flags = oflags;
	h->write = write;
	h->leased = leased;
	*ret = h;
	return 0;
}

void vh_close(VolHandle *h)
{
	Volume *vol;
	Domain *d;

	if (!h)
		return;
	vol = h->vol;
	d = vol->dom;
	if (h->write) {
		off_t size = 0;

		g_mutex_lock(&d->op_lock);
		/* A raw volume's capacity follows its size (writes may have grown it). */
		if (!vol->dead && !vol->plain && !vol->corrupt &&
		    vol->md.format == MD_VOL_FORMAT_RAW && h_size(h, &size) == 0 &&
		    (uint64_t)size != vol->md.capacity) {
			MdVolume md = vol->md;
			int r;

			md.capacity = (uint64_t)size;
			r = vol_write_md_locked(vol, &md);
			if (r < 0)
				log_warning_errno(r, "domain '%s' volume '%s': recording its size, "
						  "ignoring",
						  d->uuid, vol->name);
		}
		if (g_atomic_int_get(&h->flushed))
			g_atomic_int_dec_and_test(&vol->n_flushed);
		g_atomic_int_dec_and_test(&vol->n_writers);
		g_cond_broadcast(&d->writers_gone);
		g_mutex_unlock(&d->op_lock);
	}
	ov_close_fd(h->fd);
	if (h->leased)
		vol_lease_put(vol); /* after the fd: no write of ours follows the release */
	vol_unref(vol);
	g_free(h);
}

void vh_flushed(VolHandle *h)
{
	if (h->write && g_atomic_int_compare_and_exchange(&h->flushed, 0, 1))
		g_atomic_int_inc(&h->vol->n_flushed);
}

static void vh_written(VolHandle *h)
{
	if (g_atomic_int_get(&h->flushed) && g_atomic_int_compare_and_exchange(&h->flushed, 1, 0))
		g_atomic_int_dec_and_test(&h->vol->n_flushed);
}

Volume *vh_volume(VolHandle *h)
{
	return h->vol;
}

bool vh_is_direct(const VolHandle *h)
{
	return (h->flags & O_DIRECT) != 0;
}

/*
 * CONTRACT: O_DIRECT I/O not aligned to the storage's logical block size
 * fails with EINVAL, as a block device answers; QEMU probes its alignment
 * this way.  Checked here because a file system does not always refuse it
 * (ext4 reads holes at any offset).
 */
static bool misaligned(VolHandle *h, size_t size, off_t off)
{
	uint32_t bs = h->vol->dom->block_size;

	return (h->flags & O_DIRECT) && (((uint64_t)off | size) & (bs - 1)) != 0;
}

ssize_t vh_pread(VolHandle *h, void *buf, size_t size, off_t off)
{
	if (misaligned(h, size, off))
		return -EINVAL;
	return h_pread(h, buf, size, off);
}

/* Whether vol's chain (walking parents by name) reaches `ancestor`. */
static bool is_ancestor_locked(Domain *d, Volume *vol, Volume *ancestor)
{
	const char *p = vol->md.parent;

	for (int i = 0; i < 1000 && *p; i++) {
		Volume *v = model_find_volume_locked(d, p);

		if (!v)
			return false;
		if (v == ancestor)
			return true;
		p = v->md.parent;
	}
	return false;
}

/*
 * The parent that a backing file name written into vol's header means:
 * ret_parent "" for none.  CONTRACT: EINVAL outside the image, EBUSY when
 * the named volume is not the leaf (nor a template, nor an ancestor that a
 * rebase goes back to).
 */
static int resolve_backing_locked(Domain *d, Volume *vol, const char *backing,
				  Volume **ret_parent)
{
	Image *img = model_home_image_locked(vol);
	const char *p = backing;
	Volume *pv;

	*ret_parent = NULL;
	if (!*backing)
		return 0;
	if (!img)
		return -EINVAL;
	if (g_str_has_prefix(p, "../")) {
		/* oVirt's older form: ../<image>/<volume> */
		const char *slash = strchr(p + 3, '/');
		size_t n = strlen(img->name);

		if (!slash || (size_t)(slash - (p + 3)) != n || strncmp(p + 3, img->name, n) != 0)
			return -EINVAL;
		p = slash + 1;
	}
	if (!name_is_valid(p))
		return -EINVAL;
	pv = model_find_volume_locked(d, p);
	if (!pv || pv == vol || pv->plain || pv->corrupt || !model_volume_in_image_locked(pv, img))
		return -EINVAL;
	if (strcmp(vol->md.parent, p) != 0 && pv->md.role != MD_VOL_ROLE_SHARED &&
	    !(pv->md.role == MD_VOL_ROLE_LEAF && model_children_locked(d, p, NULL) == 0) &&
	    !is_ancestor_locked(d, vol, pv))
		return -EBUSY;
	*ret_parent = pv;
	return 0;
}

/* Brings vol's record and its parents' roles in step with a parsed header. */
/* Whether applying hdr (with parent) would change vol's record at all. */
static bool header_changes_record_locked(Domain *d, Volume *vol, const MdQcow2Header *hdr,
					 Volume *parent)
{
	const MdVolume *md = &vol->md;

	return md->format != MD_VOL_FORMAT_COW || md->capacity != hdr->size ||
	       strcmp(md->parent, parent ? parent->name : "") != 0 ||
	       (d->bd && md->type != MD_VOL_TYPE_SPARSE);
}

int vol_apply_header_locked(Domain *d, Volume *vol, const MdQcow2Header *hdr, Volume *parent)
{
	g_autofree char *old_parent = NULL;
	const char *pname = parent ? parent->name : "";
	bool parent_changed = strcmp(vol->md.parent, pname) != 0;
	MdVolume md = vol->md;
	int r;

	if (!header_changes_record_locked(d, vol, hdr, parent))
		return 0;
	old_parent = g_strdup(md.parent);
	md.format = MD_VOL_FORMAT_COW;
	if (d->bd)
		md.type = MD_VOL_TYPE_SPARSE; /* CONTRACT: qcow2 on a block domain is thin */
	md.capacity = hdr->size;
	if (parent_changed) {
		g_strlcpy(md.parent, pname, sizeof(md.parent));
		md.seq = parent ? parent->md.seq + 1 : 0;
	}
	if ((r = FAULT_POINT("vol_parent.child")) < 0 || (r = vol_write_md_locked(vol, &md)) < 0)
		return r;
	if (!parent_changed)
		return 0;
	if ((r = FAULT_POINT("vol_parent.parent")) < 0)
		return r;
	if (parent && (r = vol_fix_role_locked(d, parent)) < 0)
		return r;
	if (*old_parent)
		r = vol_fix_role_locked(d, model_find_volume_locked(d, old_parent));
	return r;
}

/* Writes below this offset of a qcow2 volume can touch its header. */
static size_t header_window(Volume *vol)
{
	gint cs = g_atomic_int_get(&vol->cluster_size);

	return cs > 0 ? (size_t)cs : HEADER_WINDOW;
}

static int header_journal_begin(Domain *d, Volume *vol, bool raw_empty, int *ret_slot)
{
	g_autoptr(MdKv) args = md_kv_new();

	md_kv_set(args, "image", model_home_image_locked(vol)->name);
	md_kv_set(args, "volume", vol->name);
	md_kv_set(args, "raw_empty", raw_empty ? "1" : "0");
	return jrnl_begin(d, MD_JOURNAL_OP_VOL_HEADER, args, ret_slot);
}

/* Decides under the op lock whether this write is a header write. */
static bool is_header_write_locked(VolHandle *h, const void *buf, size_t size, off_t off,
				   bool *ret_raw_empty)
{
	Volume *vol = h->vol;
	off_t cur = 0;

	*ret_raw_empty = false;
	if (vol->plain || vol->dead)
		return false;
	if (vol->md.format == MD_VOL_FORMAT_COW)
		return (size_t)off < header_window(vol);
	if (off != 0 || !md_qcow2_has_magic(buf, size))
		return false;
	if (h_size(h, &cur) < 0 || cur != 0)
		return false; /* behaviour.md: only an empty raw volume turns qcow2 */
	*ret_raw_empty = true;
	return true;
}

static int forward_header(Domain *d, Volume *vol);

static ssize_t header_write(VolHandle *h, const void *buf, size_t size, off_t off)
{
	Volume *vol = h->vol;
	Domain *d = vol->dom;
	void *old = NULL;
	size_t old_len = 0;
	MdQcow2Header hdr;
	MdVolume old_md;
	Volume *parent = NULL;
	bool raw_empty;
	int slot = -1;
	ssize_t r;
	int guard;

	g_mutex_lock(&d->op_lock);
	if (!is_header_write_locked(h, buf, size, off, &raw_empty)) {
		g_mutex_unlock(&d->op_lock);
		return h_pwrite(h, buf, size, off);
	}
	/* only now: asking sanlock is not for every write near the start */
	guard = spm_guard(d);
	if (guard < 0) {
		g_mutex_unlock(&d->op_lock);
		return guard;
	}

	/* The first 2 MiB as they will be after this write. */
	old = ov_aligned_alloc(HEADER_WINDOW);
	memset(old, 0, HEADER_WINDOW);
	if (!raw_empty) {
		g_autofree char *img = g_strdup(model_home_image_locked(vol)->name);

		r = read_window(d, img, vol->name, old);
		if (r < 0)
			goto out;
		old_len = (size_t)r;
	}
	{
		g_autofree char *merged = g_malloc0(HEADER_WINDOW);
		size_t end = MIN((size_t)off + size, HEADER_WINDOW);
		size_t len = MAX(old_len, end);

		memcpy(merged, old, old_len);
		memcpy(merged + off, buf, end - (size_t)off);
		r = md_qcow2_parse(merged, len, &hdr);
		if (r == -ENODATA && raw_empty && guard > 0) {
			/* Another host is SPM: it learns the header from the bytes. */
			r = h_pwrite(h, buf, size, off);
			goto out;
		}
		if (r == -ENODATA && raw_empty) {
			/* A header still being written: qcow2 now, the next header write
			 * completes what the record says. */
			MdVolume md = vol->md;

			r = h_pwrite(h, buf, size, off);
			md.format = MD_VOL_FORMAT_COW;
			if (r >= 0) {
				int r2 = vol_write_md_locked(vol, &md);

				if (r2 < 0)
					r = r2;
			}
			goto out;
		}
		if (r < 0 || hdr.has_data_file) {
			log_debug(LOG_CLASS_DOMAIN, "domain '%s' volume '%s': refusing a write "
				  "that leaves no valid qcow2 header", d->uuid, vol->name);
			r = -EINVAL;
			goto out;
		}
	}
	r = resolve_backing_locked(d, vol, hdr.has_backing ? hdr.backing_name : "", &parent);
	if (r < 0)
		goto out;
	if (guard > 0) {
		/* Checked here; the SPM writes the record, learning from the bytes. */
		r = h_pwrite(h, buf, size, off);
		goto out;
	}

	r = header_journal_begin(d, vol, raw_empty, &slot);
	if (r < 0)
		goto out;
	r = h_pwrite(h, buf, size, off);
	if (r < 0) {
		jrnl_end(d, slot);
		goto out;
	}
	old_md = vol->md;
	r = vol_apply_header_locked(d, vol, &hdr, parent);
	if (r < 0) {
		/* Undo: the old record, the parents' roles and the old bytes back. */
		ssize_t keep = MIN((ssize_t)old_len - off, (ssize_t)size);
		int r2 = 0;

		fault_quiet_begin();
		if (memcmp(&old_md, &vol->md, sizeof(old_md)) != 0)
			r2 = vol_write_md_locked(vol, &old_md);
		if (r2 == 0 && parent)
			r2 = vol_fix_role_locked(d, parent);
		if (r2 == 0 && *old_md.parent)
			r2 = vol_fix_role_locked(d, model_find_volume_locked(d, old_md.parent));
		fault_quiet_end();

		if (r2 == 0 && keep > 0)
			r2 = (int)MIN(0, h_pwrite(h, (char *)old + off, (size_t)keep, off));
		if (r2 == 0 && (size_t)off + size > old_len && h->fd >= 0 &&
		    ftruncate(h->fd, (off_t)old_len) < 0)
			r2 = ov_errno();
		if (r2 < 0) {
			log_warning_errno(r2, "domain '%s' volume '%s': header change interrupted, "
					  "the next start finishes it",
					  d->uuid, vol->name);
			goto out;
		}
		jrnl_end(d, slot);
		goto out;
	}
	g_atomic_int_set(&vol->cluster_size, 1 << hdr.cluster_bits);
	vol->emptied = false;
	jrnl_end(d, slot);
	r = (ssize_t)size;
out:
	g_mutex_unlock(&d->op_lock);
	ov_aligned_free(old);
	if (guard > 0 && r >= 0) {
		int r2 = forward_header(d, vol);

		if (r2 < 0)
			r = r2;
	}
	return r;
}

/*
 * Whether a write may touch a qcow2 header (header_write() must see it).
 * Racy reads of the format are fine: header_write() decides again under the
 * op lock.
 */
static bool may_write_header(Volume *vol, const void *buf, size_t size, off_t off)
{
	if (vol->plain)
		return false;
	if (g_atomic_int_get((gint *)&vol->md.format) == MD_VOL_FORMAT_COW)
		return (size_t)off < header_window(vol);
	return off == 0 && md_qcow2_has_magic(buf, size);
}

ssize_t vh_pwrite(VolHandle *h, const void *buf, size_t size, off_t off)
{
	if (!h->write)
		return -EBADF;
	if (misaligned(h, size, off))
		return -EINVAL;
	vh_written(h);
	if (may_write_header(h->vol, buf, size, off))
		return header_write(h, buf, size, off);
	return h_pwrite(h, buf, size, off);
}

int vh_data_fd(VolHandle *h, bool write, const void *buf, size_t size, off_t off,
	       off_t *ret_off)
{
	int fd = h->fd;

	if (write && !h->write)
		return -EBADF;
	if (misaligned(h, size, off))
		return -EINVAL;
	if (write && may_write_header(h->vol, buf, size, off))
		return -EAGAIN; /* a header write: vh_pwrite() checks it */
	*ret_off = off;
	if (h->lv) {
		/* a block volume: the PV the range lies on, at its place there */
		uint64_t dev_off;
		int r = block_lv_io_target(h->vol->dom, h->lv, write, (h->flags & O_DIRECT) != 0,
					   size, (uint64_t)off, &fd, &dev_off);

		if (r < 0)
			return r;
		*ret_off = (off_t)dev_off;
	}
	if (write)
		vh_written(h);
	return fd;
}

int vh_fsync(VolHandle *h, bool datasync)
{
	int r;

	if (h->lv)
		return block_sync(h->vol->dom, datasync);
	r = datasync ? fdatasync(h->fd) : fsync(h->fd);

	return r < 0 ? ov_errno() : 0;
}

int vh_fallocate(VolHandle *h, int mode, off_t off, off_t len)
{
	if (!h->write)
		return -EBADF;
	vh_written(h);
	if (h->lv)
		return block_lv_fallocate(h->vol->dom, h->lv, mode, (uint64_t)off, (uint64_t)len);
	return fallocate(h->fd, mode, off, len) < 0 ? ov_errno() : 0;
}

off_t vh_lseek(VolHandle *h, off_t off, int whence)
{
	off_t r;

	if (h->lv) {
		/* CONTRACT: block volumes report data */
		off_t size = (off_t)block_lv_size(h->lv);

		if (whence == SEEK_DATA || whence == SEEK_HOLE) {
			if (off < 0 || off >= size)
				return -ENXIO;
			return whence == SEEK_DATA ? off : size;
		}
		if (whence == SEEK_END)
			off += size;
		return off < 0 ? -EINVAL : off;
	}
	r = lseek(h->fd, off, whence);

	return r < 0 ? ov_errno() : r;
}

/* Copies [off, off+len) of data; the kernel does it on the backing files. */
static ssize_t copy_data(int in, off_t off, int out, off_t doff, size_t len)
{
	size_t done = 0;

	while (done < len) {
		loff_t a = off + (off_t)done, b = doff + (off_t)done;
		ssize_t n = copy_file_range(in, &a, out, &b, len - done, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ov_errno();
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

ssize_t vh_copy_range(VolHandle *src, off_t src_off, VolHandle *dst, off_t dst_off, size_t len)
{
	Volume *dvol = dst->vol;
	struct stat st;
	off_t end, pos;
	size_t total;

	if (!dst->write)
		return -EBADF;
	if (src->lv || dst->lv)
		return -EOPNOTSUPP; /* no fds to copy between: the caller copies */
	vh_written(dst);
	if (fstat(src->fd, &st) < 0)
		return ov_errno();
	/* Header writes need the checks of vh_pwrite(): let the caller copy by hand. */
	if (!dvol->plain && g_atomic_int_get((gint *)&dvol->md.format) == MD_VOL_FORMAT_COW &&
	    (size_t)dst_off < header_window(dvol))
		return -EOPNOTSUPP;
	if (!dvol->plain && dst_off == 0) {
		struct stat dst_st;
		bool magic = false;

		if (fstat(dst->fd, &dst_st) < 0)
			return ov_errno();
		if (dst_st.st_size == 0) {
			/* aligned: src may be an O_DIRECT handle */
			void *head = ov_aligned_alloc(OV_DIRECT_ALIGN);

			magic = pread(src->fd, head, OV_DIRECT_ALIGN, src_off) >= 4 &&
				md_qcow2_has_magic(head, 4);
			ov_aligned_free(head);
		}
		if (magic)
			return -EOPNOTSUPP; /* it would turn the volume qcow2 */
	}
	if (src_off >= st.st_size)
		return 0;
	end = MIN(st.st_size, src_off + (off_t)MIN(len, (size_t)INT64_MAX / 2));
	total = (size_t)(end - src_off);

	/* Holes stay holes: copy the data extents, punch the rest. */
	for (pos = src_off; pos < end;) {
		off_t data = lseek(src->fd, pos, SEEK_DATA);
		off_t hole;
		ssize_t n;

		if (data < 0 && errno != ENXIO)
			return ov_errno();
		if (data < 0 || data > end)
			data = end;
		if (data > pos && fallocate(dst->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					    dst_off + (pos - src_off), data - pos) < 0 &&
		    errno != EOPNOTSUPP)
			return ov_errno();
		if (data >= end)
			break;
		hole = lseek(src->fd, data, SEEK_HOLE);
		if (hole < 0)
			return ov_errno();
		hole = MIN(hole, end);
		n = copy_data(src->fd, data, dst->fd, dst_off + (data - src_off),
			      (size_t)(hole - data));
		if (n < 0)
			return n;
		if (n < hole - data)
			return (ssize_t)(data - src_off + n);
		pos = hole;
	}
	/* A trailing hole still makes the destination that long. */
	if (fstat(dst->fd, &st) < 0)
		return ov_errno();
	if (st.st_size < dst_off + (off_t)total && ftruncate(dst->fd, dst_off + (off_t)total) < 0)
		return ov_errno();
	return (ssize_t)total;
}

void vol_set_daemon_io(Volume *vol, bool daemon)
{
	g_atomic_int_set(&vol->daemon_io, daemon ? 1 : 0);
}

bool vol_daemon_io(Volume *vol)
{
	return g_atomic_int_get(&vol->daemon_io) != 0;
}

void img_set_daemon_io(Image *img, bool daemon)
{
	g_atomic_int_set(&img->daemon_io, daemon ? 1 : 0);
}

bool img_daemon_io(Image *img)
{
	return g_atomic_int_get(&img->daemon_io) != 0;
}

bool vol_may_pass_through(Volume *vol, int flags)
{
	Domain *d = vol->dom;
	g_autofree char *img = NULL;
	g_autofree char *name = NULL;
	Image *home;
	int verdict; /* 1 yes, 0 no, -1: yes if the backing file is not empty */
	struct stat st;

	if (d->bd)
		return false; /* no backing file: the daemon does block volumes */
	g_rw_lock_reader_lock(&d->lock);
	home = model_home_image_locked(vol);
	if (vol_daemon_io(vol) || (home && img_daemon_io(home)))
		verdict = 0; /* the admin asked for the daemon tier (io_policy) */
	else if ((flags & O_ACCMODE) == O_RDONLY)
		verdict = 1;
	else if (flags & O_TRUNC)
		verdict = 0; /* emptied now: a qcow2 header may be next */
	else if (vol->dead || vol->plain || vol->corrupt)
		verdict = 1;
	else if (vol->md.format != MD_VOL_FORMAT_RAW)
		verdict = 1; /* header changes are learnt at fsync, flush and close */
	else
		verdict = -1;
	if (verdict < 0) {
		img = g_strdup(home ? home->name : vol->md.image);
		name = g_strdup(vol->name);
	}
	g_rw_lock_reader_unlock(&d->lock);
	if (verdict >= 0)
		return verdict;
	/* behaviour.md: only an empty raw volume turns qcow2: watch those. */
	return d->ops->vol_stat(d, img, name, &st) == 0 && st.st_size > 0;
}

int vh_backing_fd(VolHandle *h)
{
	return h->fd;
}

void vh_set_unwatched(VolHandle *h)
{
	h->unwatched = true;
}

/*
 * Brings vol's record in step with the header on disk (op lock held).
 * any_raw: also a raw volume not emptied here (the SPM serving another
 * host, who wrote the header).  apply false: only says whether the record
 * would change (1) or not (0).
 */
static int learn_locked(Domain *d, Volume *vol, bool any_raw, bool apply)
{
	g_autofree char *img = NULL;
	MdQcow2Header hdr;
	Volume *parent = NULL;
	bool raw;
	int slot = -1;
	int r;

	if (vol->dead || vol->plain || vol->corrupt ||
	    (vol->md.format == MD_VOL_FORMAT_RAW && !vol->emptied && !any_raw))
		return 0;
	raw = vol->md.format == MD_VOL_FORMAT_RAW;
	img = g_strdup(model_home_image_locked(vol)->name);
	r = read_header_of(d, img, vol->name, &hdr);
	if (r < 0 && raw && any_raw) {
		/* A header still being written by another host: qcow2 from now on
		 * (as header_write() does), the rest comes with its next write. */
		void *buf = ov_aligned_alloc(HEADER_WINDOW);
		ssize_t n = read_window(d, img, vol->name, buf);
		bool magic = n > 0 && md_qcow2_has_magic(buf, (size_t)n);
		MdVolume md = vol->md;

		ov_aligned_free(buf);
		if (!magic)
			return 0;
		if (!apply)
			return 1;
		md.format = MD_VOL_FORMAT_COW;
		return vol_write_md_locked(vol, &md);
	}
	if (r < 0)
		/* raw bytes in an emptied raw volume are just raw; a qcow2 one broke */
		return raw ? 0 : -EINVAL;
	r = resolve_backing_locked(d, vol, hdr.has_backing ? hdr.backing_name : "", &parent);
	if (r < 0)
		return r;
	g_atomic_int_set(&vol->cluster_size, 1 << hdr.cluster_bits);
	/* Most flushes and fsyncs change nothing: no journal record for those. */
	if (!header_changes_record_locked(d, vol, &hdr, parent)) {
		vol->emptied = false;
		return 0;
	}
	if (!apply)
		return 1;
	r = header_journal_begin(d, vol, false, &slot);
	if (r < 0)
		return r;
	r = vol_apply_header_locked(d, vol, &hdr, parent);
	if (r == 0) {
		vol->emptied = false;
		jrnl_end(d, slot);
	}
	return r;
}

int vol_learn_header(Volume *vol)
{
	Domain *d = vol->dom;
	int r;

	g_mutex_lock(&d->op_lock);
	r = learn_locked(d, vol, true, true);
	g_mutex_unlock(&d->op_lock);
	return r;
}

/* Asks the SPM to learn vol's header (this host wrote it). */
static int forward_header(Domain *d, Volume *vol)
{
	g_autofree char *img = NULL;
	g_autofree char *name = NULL;

	g_rw_lock_reader_lock(&d->lock);
	if (!vol->dead) {
		img = g_strdup(model_home_image_locked(vol)->name);
		name = g_strdup(vol->name);
	}
	g_rw_lock_reader_unlock(&d->lock);
	if (!name)
		return -ENOENT;
	return fwd_call(d, &(FwdReq){ .op = FWD_HEADER, .img = img, .vol = name });
}

int vh_learn(VolHandle *h)
{
	Volume *vol = h->vol;
	Domain *d = vol->dom;
	int r;

	if (!h->write || !h->unwatched)
		return 0;
	g_mutex_lock(&d->op_lock);
	/* Most flushes change nothing: sanlock is asked only when one does. */
	r = learn_locked(d, vol, false, false);
	if (r == 1) {
		int guard = spm_guard(d);

		if (guard < 0)
			r = guard;
		else if (guard == 0)
			r = learn_locked(d, vol, false, true);
		/* guard 1: another host is SPM, r stays 1 and it is asked below */
	}
	g_mutex_unlock(&d->op_lock);
	if (r == 1)
		r = forward_header(d, vol);
	if (r < 0)
		log_debug(LOG_CLASS_DOMAIN, "domain '%s' volume '%s': header learnt after the "
			  "fact breaks the rules: %s", d->uuid, vol->name, g_strerror(-r));
	return r;
}
