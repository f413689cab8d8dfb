/*
 * ops.c: the FUSE operations.  Each op finds its node, calls the model and
 * replies exactly once; the model returns -errno and only here is the sign
 * flipped (STYLE.md 3).  The errors are CONTRACT.md's table.
 *
 * What each directory level allows:
 *   root    pools (lookup/readdir); mkdir EPERM
 *   pool    domains; mkdir EPERM
 *   domain  images (data) or files (ISO); mkdir/rmdir/rename of images
 *   image   volumes; create/unlink/rename/link of volumes
 */
#include "fs/fs-int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/names.h"
#include "common/banned.h"

#define FS(req) ((Fs *)fuse_req_userdata(req))

/* One aligned read buffer per worker thread: O_DIRECT needs aligned memory. */
static __thread void *tl_readbuf;

static void free_readbuf(void)
{
	ov_aligned_free(tl_readbuf);
	tl_readbuf = NULL;
}

static void *readbuf(void)
{
	if (!tl_readbuf)
		tl_readbuf = ov_huge_alloc(FS_MAX_WRITE);
	return tl_readbuf;
}

static void reply_err(fuse_req_t req, int r)
{
	fuse_reply_err(req, r < 0 ? -r : r);
}

static Node *get_node(fuse_req_t req, fuse_ino_t ino)
{
	Node *n = node_get(FS(req), ino);

	if (!n)
		fuse_reply_err(req, ESTALE);
	return n;
}

/* The image a volume of this directory lives in: the image, or an ISO domain's. */
static Image *dir_image(Node *dir)
{
	if (dir->kind == NODE_IMAGE)
		return img_ref(dir->img);
	if (dir->kind == NODE_DOMAIN && dom_is_iso(dir->dom))
		return dom_iso_image(dir->dom);
	return NULL;
}

static int fill_entry(Fs *fs, Node *n, struct fuse_entry_param *e)
{
	int r;

	memset(e, 0, sizeof(*e));
	r = node_stat(fs, n, &e->attr);
	if (r < 0)
		return r;
	e->ino = n->ino;
	e->attr_timeout = FS_TIMEOUT;
	e->entry_timeout = FS_TIMEOUT;
	return 0;
}

/* Finds name in dir; ret_obj gets a reference for images and volumes. */
static int find_child(Fs *fs, Node *dir, const char *name, NodeKind *ret_kind, void **ret_obj,
		      Pool **ret_pool, Domain **ret_dom)
{
	*ret_pool = dir->pool;
	*ret_dom = dir->dom;
	switch (dir->kind) {
	case NODE_ROOT: {
		Pool *p = storage_pool_lookup(fs->st, name);

		if (!p && uuid_is_valid(name)) {
			storage_rescan(fs->st);
			p = storage_pool_lookup(fs->st, name);
		}
		if (!p)
			return -ENOENT;
		*ret_kind = NODE_POOL;
		*ret_obj = p;
		*ret_pool = p;
		return 0;
	}
	case NODE_POOL: {
		Domain *d = pool_domain_lookup(dir->pool, name);

		if (!d && uuid_is_valid(name)) {
			storage_rescan(fs->st);
			d = pool_domain_lookup(dir->pool, name);
		}
		if (!d)
			return -ENOENT;
		*ret_kind = NODE_DOMAIN;
		*ret_obj = d;
		*ret_dom = d;
		return 0;
	}
	case NODE_DOMAIN:
		if (!dom_is_iso(dir->dom)) {
			Image *img = dom_image_lookup(dir->dom, name);

			if (!img)
				return -ENOENT;
			*ret_kind = NODE_IMAGE;
			*ret_obj = img;
			return 0;
		}
		/* an ISO domain lists its files */
		G_GNUC_FALLTHROUGH;
	case NODE_IMAGE: {
		g_autoptr(Image) img = dir_image(dir);
		Volume *vol = img ? img_volume_lookup(img, name) : NULL;

		if (!vol)
			return -ENOENT;
		*ret_kind = NODE_VOLUME;
		*ret_obj = vol;
		return 0;
	}
	default:
		return -ENOTDIR;
	}
}

static void unref_obj(NodeKind kind, void *obj)
{
	if (kind == NODE_IMAGE)
		img_unref(obj);
	else if (kind == NODE_VOLUME)
		vol_unref(obj);
}

/* Replies with the entry of obj (consumes the caller's reference on obj). */
static void reply_entry_obj(fuse_req_t req, NodeKind kind, void *obj, Pool *pool, Domain *dom)
{
	Fs *fs = FS(req);
	struct fuse_entry_param e;
	Node *n = node_lookup_ref(fs, kind, obj, pool, dom);
	int r;

	unref_obj(kind, obj);
	r = fill_entry(fs, n, &e);
	if (r < 0) {
		node_forget(fs, n->ino, 1);
		reply_err(req, r);
		return;
	}
	fuse_reply_entry(req, &e);
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	Fs *fs = userdata;

	conn->max_write = FS_MAX_WRITE;
	/* A guest's asynchronous direct I/O reaches the daemon as background
	 * requests, of which the kernel lets 12 out at a time by default: the
	 * storage would see no more than QD12 whatever the guest queues. */
	conn->max_background = 128;
	conn->congestion_threshold = 96;
	/* Always readdirplus: ls -l of a domain costs no LOOKUP per entry. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	/* The daemon must see every write, in order: no writeback cache. */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/* Requests are read by fs/session.c into aligned buffers, not spliced. */
	conn->want &= ~(unsigned)(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
				  FUSE_CAP_SPLICE_MOVE);
	conn->time_gran = 1;
	log_debug(LOG_CLASS_FS, "init: protocol %u.%u, max_write %u", conn->proto_major,
		  conn->proto_minor, conn->max_write);
	(void)fs;
}

static void fs_destroy(void *userdata)
{
	(void)userdata;
	free_readbuf();
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	Fs *fs = FS(req);
	Node *dir = get_node(req, parent);
	NodeKind kind;
	void *obj = NULL;
	Pool *pool;
	Domain *dom;
	int r;

	if (!dir)
		return;
	r = find_child(fs, dir, name, &kind, &obj, &pool, &dom);
	if (r == -ENOENT) {
		/* A negative entry, cached as long as a positive one. */
		struct fuse_entry_param e = { .ino = 0, .entry_timeout = FS_TIMEOUT };

		fuse_reply_entry(req, &e);
		return;
	}
	if (r < 0) {
		reply_err(req, r);
		return;
	}
	reply_entry_obj(req, kind, obj, pool, dom);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(FS(req), ino, nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		node_forget(FS(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Node *n = get_node(req, ino);
	struct stat st;
	int r;

	(void)fi;
	if (!n)
		return;
	r = node_stat(FS(req), n, &st);
	if (r < 0)
		reply_err(req, r);
	else
		fuse_reply_attr(req, &st, FS_TIMEOUT);
}

static int setattr_volume(Node *n, struct stat *attr, int to_set)
{
	int r = 0;

	if (to_set & FUSE_SET_ATTR_SIZE)
		r = vol_truncate(n->vol, attr->st_size);
	if (r == 0 && (to_set & FUSE_SET_ATTR_MODE))
		r = vol_chmod(n->vol, attr->st_mode);
	if (r == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		r = vol_chown(n->vol, (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1,
			      (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1);
	if (r == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };

		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			ts[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			ts[1] = attr->st_mtim;
		r = vol_utimens(n->vol, ts);
	}
	return r;
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	Node *n = get_node(req, ino);
	struct stat st;
	int r = 0;

	(void)fi;
	if (!n)
		return;
	switch (n->kind) {
	case NODE_VOLUME:
		r = setattr_volume(n, attr, to_set);
		break;
	case NODE_IMAGE:
		if (to_set & FUSE_SET_ATTR_SIZE)
			r = -EISDIR;
		if (r == 0 && (to_set & FUSE_SET_ATTR_MODE))
			r = img_chmod(n->img, attr->st_mode);
		if (r == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
			r = img_chown(n->img,
				      (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1,
				      (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1);
		break;
	default:
		/* behaviour.md: the synthetic directories are fixed */
		if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |
			      FUSE_SET_ATTR_SIZE))
			r = -EPERM;
		break;
	}
	if (r == 0)
		r = node_stat(FS(req), n, &st);
	if (r < 0)
		reply_err(req, r);
	else
		fuse_reply_attr(req, &st, FS_TIMEOUT);
}

/* ---- directories ---- */

typedef struct DirEntry {
	char *name;
	NodeKind kind;
	void *obj; /* a reference for images and volumes */
} DirEntry;

typedef struct DirHandle {
	GArray *entries; /* DirEntry */
	Node *dir;
} DirHandle;

static void dir_entry_clear(gpointer p)
{
	DirEntry *e = p;

	g_free(e->name);
	unref_obj(e->kind, e->obj);
}

static void dir_add(DirHandle *dh, char *name, NodeKind kind, void *obj)
{
	DirEntry e = { .name = name, .kind = kind, .obj = obj };

	g_array_append_val(dh->entries, e);
}

static int dir_snapshot(Fs *fs, Node *dir, DirHandle *dh)
{
	switch (dir->kind) {
	case NODE_ROOT: {
		g_autoptr(GPtrArray) pools = NULL;

		storage_rescan(fs->st);
		pools = storage_pools(fs->st);
		for (guint i = 0; i < pools->len; i++)
			dir_add(dh, g_strdup(pool_uuid(pools->pdata[i])), NODE_POOL,
				pools->pdata[i]);
		return 0;
	}
	case NODE_POOL: {
		g_autoptr(GPtrArray) doms = NULL;

		storage_rescan(fs->st);
		doms = pool_domains(dir->pool);
		for (guint i = 0; i < doms->len; i++)
			dir_add(dh, g_strdup(dom_uuid(doms->pdata[i])), NODE_DOMAIN,
				doms->pdata[i]);
		return 0;
	}
	case NODE_DOMAIN:
		if (!dom_is_iso(dir->dom)) {
			g_autoptr(GPtrArray) imgs = dom_images(dir->dom);

			for (guint i = 0; i < imgs->len; i++)
				dir_add(dh, img_name(imgs->pdata[i]), NODE_IMAGE,
					img_ref(imgs->pdata[i]));
			return 0;
		}
		G_GNUC_FALLTHROUGH;
	case NODE_IMAGE: {
		g_autoptr(Image) img = dir_image(dir);
		g_autoptr(GPtrArray) vols = NULL;

		if (!img)
			return 0;
		vols = img_volumes(img);
		for (guint i = 0; i < vols->len; i++) {
			VolumeInfo info;

			vol_get_info(vols->pdata[i], &info);
			dir_add(dh, g_strdup(info.name), NODE_VOLUME, vol_ref(vols->pdata[i]));
		}
		return 0;
	}
	default:
		return -ENOTDIR;
	}
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Node *n = get_node(req, ino);
	DirHandle *dh;
	int r;

	if (!n)
		return;
	if (n->kind == NODE_VOLUME) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	dh = g_new0(DirHandle, 1);
	dh->dir = n;
	dh->entries = g_array_new(FALSE, TRUE, sizeof(DirEntry));
	g_array_set_clear_func(dh->entries, dir_entry_clear);
	r = dir_snapshot(FS(req), n, dh);
	if (r < 0) {
		g_array_unref(dh->entries);
		g_free(dh);
		reply_err(req, r);
		return;
	}
	fi->fh = (uintptr_t)dh;
	fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	Fs *fs = FS(req);
	DirHandle *dh = (DirHandle *)(uintptr_t)fi->fh;
	g_autofree char *buf = g_malloc(size);
	size_t used = 0;

	/* offsets: 1 ".", 2 "..", 3.. the entries */
	for (off_t i = off; i < (off_t)dh->entries->len + 2; i++) {
		struct fuse_entry_param e = { 0 };
		const char *name;
		size_t len;
		Node *n = NULL;

		if (i < 2) {
			name = i == 0 ? "." : "..";
			e.attr.st_ino = i == 0 ? ino : FUSE_ROOT_ID;
			e.attr.st_mode = S_IFDIR;
		} else {
			DirEntry *de = &g_array_index(dh->entries, DirEntry, i - 2);

			name = de->name;
			if (plus) {
				Pool *pool = de->kind == NODE_POOL ? de->obj : dh->dir->pool;
				Domain *dom = de->kind == NODE_DOMAIN ? de->obj : dh->dir->dom;

				if (de->kind == NODE_IMAGE)
					img_ref(de->obj);
				else if (de->kind == NODE_VOLUME)
					vol_ref(de->obj);
				n = node_lookup_ref(fs, de->kind, de->obj, pool, dom);
				unref_obj(de->kind, de->obj);
				if (fill_entry(fs, n, &e) < 0) {
					node_forget(fs, n->ino, 1);
					continue; /* gone meanwhile */
				}
			} else {
				Node *known = node_peek(fs, de->obj);

				e.attr.st_ino = known ? known->ino : 0xffffffffu;
				e.attr.st_mode = de->kind == NODE_VOLUME ? S_IFREG : S_IFDIR;
			}
		}
		if (plus)
			len = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1);
		else
			len = fuse_add_direntry(req, buf + used, size - used, name, &e.attr, i + 1);
		if (len > size - used) {
			if (n)
				node_forget(fs, n->ino, 1); /* not sent */
			break;
		}
		used += len;
	}
	fuse_reply_buf(req, buf, used);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	DirHandle *dh = (DirHandle *)(uintptr_t)fi->fh;

	(void)ino;
	g_array_unref(dh->entries);
	g_free(dh);
	fuse_reply_err(req, 0);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	Node *dir = get_node(req, parent);
	Image *img = NULL;
	int r;

	(void)mode; /* CONTRACT: directories are 0770 */
	if (!dir)
		return;
	if (dir->kind != NODE_DOMAIN) {
		/* CONTRACT: pools and domains come from `ovstore domain create` */
		fuse_reply_err(req, EPERM);
		return;
	}
	r = dom_image_create(dir->dom, name, &img);
	if (r < 0) {
		reply_err(req, r);
		return;
	}
	reply_entry_obj(req, NODE_IMAGE, img, dir->pool, dir->dom);
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	Node *dir = get_node(req, parent);
	g_autoptr(Image) img = NULL;

	if (!dir)
		return;
	if (dir->kind == NODE_ROOT || dir->kind == NODE_POOL) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (dir->kind != NODE_DOMAIN || dom_is_iso(dir->dom)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	img = dom_image_lookup(dir->dom, name);
	if (!img) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	reply_err(req, img_remove(img));
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	Node *dir = get_node(req, parent);
	g_autoptr(Image) img = NULL;
	g_autoptr(Volume) vol = NULL;

	if (!dir)
		return;
	img = dir_image(dir);
	if (!img) {
		fuse_reply_err(req, EPERM);
		return;
	}
	vol = img_volume_lookup(img, name);
	if (!vol) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	reply_err(req, vol_unlink(vol, img));
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	Node *src = get_node(req, parent);
	Node *dst;
	int r;

	if (!src)
		return;
	dst = get_node(req, newparent);
	if (!dst)
		return;
	if (flags & RENAME_EXCHANGE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (src->kind == NODE_DOMAIN && !dom_is_iso(src->dom)) {
		/* an image */
		g_autoptr(Image) img = dom_image_lookup(src->dom, name);

		if (!img) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		if (dst->kind != NODE_DOMAIN) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		if (dst->dom != src->dom) {
			fuse_reply_err(req, EXDEV); /* CONTRACT: other domain */
			return;
		}
		if (flags & RENAME_NOREPLACE) {
			g_autoptr(Image) existing = dom_image_lookup(src->dom, newname);

			if (existing && existing != img) {
				fuse_reply_err(req, EEXIST);
				return;
			}
		}
		reply_err(req, img_rename(img, newname));
		return;
	}
	if (src->kind == NODE_IMAGE || src->kind == NODE_DOMAIN) {
		g_autoptr(Image) img = dir_image(src);
		g_autoptr(Volume) vol = img ? img_volume_lookup(img, name) : NULL;

		if (!vol) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		if (dst != src) {
			/* Volumes stay in their image; mv copies across. */
			fuse_reply_err(req, EXDEV);
			return;
		}
		r = vol_rename(vol, img, newname);
		reply_err(req, r);
		return;
	}
	fuse_reply_err(req, EPERM);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	Fs *fs = FS(req);
	Node *n = get_node(req, ino);
	Node *dir;
	VolumeInfo info;
	int r;

	if (!n)
		return;
	dir = get_node(req, newparent);
	if (!dir)
		return;
	if (n->kind != NODE_VOLUME || dir->kind != NODE_IMAGE) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (dir->dom != n->dom) {
		fuse_reply_err(req, EXDEV); /* CONTRACT: other domain */
		return;
	}
	vol_get_info(n->vol, &info);
	if (strcmp(info.name, newname) != 0) {
		/* behaviour.md: a template keeps its name in every image */
		fuse_reply_err(req, EINVAL);
		return;
	}
	r = vol_link(n->vol, dir->img);
	if (r < 0) {
		reply_err(req, r);
		return;
	}
	reply_entry_obj(req, NODE_VOLUME, vol_ref(n->vol), dir->pool, dir->dom);
	(void)fs;
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link;
	(void)parent;
	(void)name;
	fuse_reply_err(req, EPERM);
}

/* ---- files ---- */

static int new_volume(fuse_req_t req, Node *dir, const char *name, mode_t mode,
		      Volume **ret)
{
	g_autoptr(Image) img = dir_image(dir);

	if (!S_ISREG(mode) && (mode & S_IFMT) != 0)
		return -EPERM;
	if (!img)
		return dir->kind == NODE_DOMAIN || dir->kind == NODE_ROOT ||
				       dir->kind == NODE_POOL
			       ? -EPERM
			       : -ENOTDIR;
	(void)req;
	return img_volume_create(img, name, mode, ret);
}

#define FILE_OF(fi) ((FsFile *)(uintptr_t)(fi)->fh)
#define HANDLE_OF(fi) (FILE_OF(fi)->h)

static void file_close(Fs *fs, FsFile *f)
{
	if (f->passthrough)
		pt_put(fs, f->vol);
	vh_close(f->h);
	g_free(f);
}

/*
 * Picks the tier of an open (README "data path"): the kernel does the I/O
 * itself (passthrough) where the daemon need not watch the writes and the
 * mount can; otherwise the daemon serves it.
 */
static FsFile *file_new(Fs *fs, VolHandle *h, int flags, int *ret_backing_id)
{
	FsFile *f = g_new0(FsFile, 1);

	f->h = h;
	f->vol = vh_volume(h);
	if (fs->passthrough_ok && vol_may_pass_through(f->vol, flags) &&
	    pt_acquire(fs, f->vol, vh_backing_fd(h), ret_backing_id) == 0) {
		f->passthrough = true;
		vh_set_unwatched(h);
	}
	return f;
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	Fs *fs = FS(req);
	Node *dir = get_node(req, parent);
	Volume *vol = NULL;
	VolHandle *h = NULL;
	struct fuse_entry_param e;
	Node *n;
	int r;

	if (!dir)
		return;
	r = new_volume(req, dir, name, mode, &vol);
	if (r < 0) {
		reply_err(req, r);
		return;
	}
	r = vol_open(vol, fi->flags, &h);
	if (r < 0) {
		vol_unref(vol);
		reply_err(req, r);
		return;
	}
	n = node_lookup_ref(fs, NODE_VOLUME, vol, dir->pool, dir->dom);
	vol_unref(vol);
	r = fill_entry(fs, n, &e);
	if (r < 0) {
		vh_close(h);
		node_forget(fs, n->ino, 1);
		reply_err(req, r);
		return;
	}
	/* A new volume is empty: the daemon watches its first bytes (no passthrough). */
	{
		FsFile *f = g_new0(FsFile, 1);

		f->h = h;
		f->vol = vh_volume(h);
		fi->fh = (uintptr_t)f;
		fi->direct_io = 0;
		fi->keep_cache = 0;
		if (fuse_reply_create(req, &e, fi) != 0) {
			file_close(fs, f);
			node_forget(fs, n->ino, 1);
		}
	}
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	Node *dir = get_node(req, parent);
	Volume *vol = NULL;
	int r;

	(void)rdev;
	if (!dir)
		return;
	r = new_volume(req, dir, name, mode, &vol);
	if (r < 0) {
		reply_err(req, r);
		return;
	}
	reply_entry_obj(req, NODE_VOLUME, vol, dir->pool, dir->dom);
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Node *n = get_node(req, ino);
	VolHandle *h = NULL;
	FsFile *f;
	int backing_id = -1;
	int r;

	if (!n)
		return;
	if (n->kind != NODE_VOLUME) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	r = vol_open(n->vol, fi->flags, &h);
	if (r < 0) {
		reply_err(req, r);
		return;
	}
	f = file_new(FS(req), h, fi->flags, &backing_id);
	log_debug(LOG_CLASS_FS, "open inode %" PRIu64 " flags 0x%x: %s", (uint64_t)ino,
		  fi->flags, f->passthrough ? "passthrough" : "daemon");
	if (pt_reply_open(req, (uintptr_t)f, f->passthrough, backing_id,
			  (fi->flags & O_DIRECT) != 0) != 0)
		file_close(FS(req), f);
}

int fs_io_fd(Fs *fs, uint64_t fh, bool write, const void *data, size_t size, off_t off,
	     off_t *fd_off)
{
	FsFile *f = (FsFile *)(uintptr_t)fh;

	(void)fs;
	if (!f || f->passthrough)
		return -EAGAIN;
	return vh_data_fd(f->h, write, data, size, off, fd_off);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	Fs *fs = FS(req);
	VolHandle *h = HANDLE_OF(fi);
	off_t fd_off = 0;
	int fd = -EAGAIN;
	ssize_t n;

	(void)ino;
	atomic_fetch_add_explicit(&fs->n_read, 1, memory_order_relaxed);
	size = MIN(size, (size_t)FS_MAX_WRITE);
	/* The fd, asked once: for the engine's queue, or for this thread's
	 * registered buffer; -EAGAIN: no single fd for it (e.g. across a block
	 * volume's extents, or past its end), vh_pread() below. */
	if (engine_would_queue(fs) || engine_fixed_wants(fs, size)) {
		fd = vh_data_fd(h, false, NULL, size, off, &fd_off);
		if (fd < 0 && fd != -EAGAIN) {
			reply_err(req, fd);
			return;
		}
		if (fd >= 0 && engine_read(fs, req, fd, size, fd_off))
			return; /* answered at completion */
	}
	n = fd >= 0 ? engine_fixed_io(fs, false, fd, readbuf(), FS_MAX_WRITE, readbuf(), size,
				      fd_off)
		    : -EAGAIN;
	if (n == -EAGAIN)
		n = vh_pread(h, readbuf(), size, off);
	log_debug(LOG_CLASS_IO, "read %zu at %jd: %zd", size, (intmax_t)off, n);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_buf(req, tl_readbuf, (size_t)n);
}

static void fs_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
			 struct fuse_file_info *fi)
{
	Fs *fs = FS(req);
	VolHandle *h = HANDLE_OF(fi);
	size_t size = fuse_buf_size(bufv);
	const struct fuse_buf *b = &bufv->buf[bufv->idx];
	ssize_t n;

	(void)ino;
	atomic_fetch_add_explicit(&fs->n_write, 1, memory_order_relaxed);
	if (bufv->count == 1 && !(b->flags & FUSE_BUF_IS_FD) && bufv->off == 0) {
		/* session.c placed the payload on an aligned address: write it as
		 * is, queued, from the registered request buffer, or by vh_pwrite()
		 * (-EAGAIN from vh_data_fd: e.g. a qcow2 header write it checks) */
		off_t fd_off = 0;
		int fd = -EAGAIN;

		/* both the queue and the registered buffer need this thread's
		 * request buffer; without one (a FUSE-over-io_uring worker)
		 * vh_pwrite() alone looks the extent up */
		if (fs_tl_reqbase && (engine_would_queue(fs) || engine_fixed_wants(fs, size))) {
			fd = vh_data_fd(h, true, b->mem, size, off, &fd_off);
			if (fd < 0 && fd != -EAGAIN) {
				reply_err(req, fd);
				return;
			}
			if (fd >= 0 && engine_write(fs, req, fd, b->mem, size, fd_off))
				return; /* answered at completion */
		}
		/* fd >= 0 only with a request buffer (tested above) */
		n = fd >= 0 ? engine_fixed_io(fs, true, fd, fs_tl_reqbase, FS_REQ_BUF_SIZE, b->mem,
					      size, fd_off)
			    : -EAGAIN;
		if (n == -EAGAIN)
			n = vh_pwrite(h, b->mem, size, off);
	} else {
		void *tmp = ov_aligned_alloc(size);
		struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);

		dst.buf[0].mem = tmp;
		n = fuse_buf_copy(&dst, bufv, 0);
		if (n >= 0)
			n = vh_pwrite(h, tmp, (size_t)n, off);
		ov_aligned_free(tmp);
	}
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

/*
 * Writes the daemon did not see (passthrough) reach the metadata here, at
 * close(2) and fsync(2): a qcow2 header that breaks the rules fails them
 * (behaviour.md).
 */
static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int r;

	(void)ino;
	r = vh_learn(HANDLE_OF(fi));
	vh_flushed(HANDLE_OF(fi));
	reply_err(req, r);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)vh_learn(HANDLE_OF(fi)); /* reported at flush already */
	file_close(FS(req), FILE_OF(fi));
	fuse_reply_err(req, 0);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int r;

	(void)ino;
	r = vh_fsync(HANDLE_OF(fi), datasync != 0);
	if (r == 0)
		r = vh_learn(HANDLE_OF(fi));
	reply_err(req, r);
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)ino;
	reply_err(req, vh_fallocate(HANDLE_OF(fi), mode, off, len));
}

static void fs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	off_t r;

	(void)ino;
	r = vh_lseek(HANDLE_OF(fi), off, whence);
	if (r < 0)
		reply_err(req, (int)r);
	else
		fuse_reply_lseek(req, r);
}

static void fs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	ssize_t n;

	(void)ino_in;
	(void)ino_out;
	if (flags) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	n = vh_copy_range(HANDLE_OF(fi_in), off_in, HANDLE_OF(fi_out), off_out, len);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	Fs *fs = FS(req);
	Node *n = get_node(req, ino);
	Domain *d = NULL;
	struct statvfs sv;
	int r;

	if (!n)
		return;
	if (n->dom) {
		d = n->dom;
	} else {
		/* behaviour.md: the root and a pool report the pool's master */
		Pool *p = n->pool;
		g_autoptr(GPtrArray) pools = NULL;

		if (!p) {
			pools = storage_pools(fs->st);
			p = pools->len ? pools->pdata[0] : NULL;
		}
		if (p) {
			d = pool_master(p);
			if (!d) {
				g_autoptr(GPtrArray) doms = pool_domains(p);

				d = doms->len ? doms->pdata[0] : NULL;
			}
		}
	}
	if (!d) {
		memset(&sv, 0, sizeof(sv));
		sv.f_bsize = sv.f_frsize = 4096;
		sv.f_namemax = NAME_MAX_LEN;
		fuse_reply_statfs(req, &sv);
		return;
	}
	r = dom_statfs(d, &sv);
	if (r < 0) {
		reply_err(req, r);
		return;
	}
	sv.f_namemax = NAME_MAX_LEN;
	fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.destroy = fs_destroy,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
	.releasedir = fs_releasedir,
	.mkdir = fs_mkdir,
	.rmdir = fs_rmdir,
	.unlink = fs_unlink,
	.rename = fs_rename,
	.link = fs_link,
	.symlink = fs_symlink,
	.mknod = fs_mknod,
	.create = fs_create,
	.open = fs_open,
	.read = fs_read,
	.write_buf = fs_write_buf,
	.flush = fs_flush,
	.release = fs_release,
	.fsync = fs_fsync,
	.fallocate = fs_fallocate,
	.lseek = fs_lseek,
	.copy_file_range = fs_copy_file_range,
	.statfs = fs_statfs,
	.getxattr = fs_getxattr,
	.setxattr = fs_setxattr,
	.listxattr = fs_listxattr,
	.removexattr = fs_removexattr,
};

void fs_thread_exit(void)
{
	engine_thread_exit();
	free_readbuf();
}
