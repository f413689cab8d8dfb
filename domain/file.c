/*
 * file.c: the file-domain backend (reference section 5).
 *
 *   <dir>/images/<img>/<vol>        the volume's bytes
 *   <dir>/images/<img>/<vol>.meta   its record (written as .meta.new + rename)
 *   <dir>/images/<img>/<vol>.lease  its sanlock resource, at offset 0
 *
 * A template is the same three files hard-linked into every image that uses
 * it.  Paths are always opened relative to the domain's images/ fd with
 * validated names, so nothing here can leave the domain.
 */
#include "domain/model-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/names.h"
#include "lease/lease.h"
#include "metadata/md-volume.h"
#include "common/banned.h"

#define META_SUFFIX ".meta"
#define LEASE_SUFFIX ".lease"
#define NEW_SUFFIX ".new"

static char *vol_path(const char *img, const char *vol, const char *suffix)
{
	return g_strconcat(img, "/", vol, suffix, NULL);
}

static int open_image_dir(Domain *d, const char *img)
{
	int fd = openat(d->images_fd, img, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? ov_errno() : fd;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

static int read_record(int img_fd, const char *vol, MdVolume *ret)
{
	g_autofree char *path = g_strconcat(vol, META_SUFFIX, NULL);
	g_autofree char *buf = NULL;
	size_t len = 0;
	int r;

	r = file_read_all(img_fd, path, MD_VOLUME_RECORD_SIZE, &buf, &len);
	if (r == -EFBIG)
		return -EUCLEAN;
	if (r < 0)
		return r;
	return md_volume_decode(buf, len, ret);
}

static void scan_volume(Domain *d, Image *img, int img_fd, const char *name)
{
	Volume *vol = model_find_volume_locked(d, name);
	MdVolume md;
	int r;

	if (vol) {
		/* A template: one volume, linked into several images. */
		model_link_locked(vol, img);
		return;
	}
	vol = model_volume_new(d, name);
	r = read_record(img_fd, name, &md);
	if (r < 0) {
		log_warning("domain '%s' volume '%s/%s': bad metadata record (%s), serving it "
			    "read-only and illegal",
			    d->uuid, img->name, name, g_strerror(-r));
		model_corrupt_record(d, MD_VOL_TYPE_SPARSE, img->name, &md);
		vol->corrupt = true;
	}
	vol->md = md;
	model_add_volume_locked(d, vol);
	model_link_locked(vol, img);
}

static void scan_iso_file(Domain *d, Image *img, int img_fd, const char *name)
{
	Volume *vol;
	struct stat st;

	if (fstatat(img_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return;
	vol = model_volume_new(d, name);
	vol->plain = true;
	model_corrupt_record(d, MD_VOL_TYPE_SPARSE, img->name, &vol->md);
	vol->md.legality = MD_LEGALITY_LEGAL;
	vol->md.capacity = (uint64_t)st.st_size;
	model_add_volume_locked(d, vol);
	model_link_locked(vol, img);
}

static int scan_image(Domain *d, const char *name)
{
	g_auto(OvFd) fd = -1;
	DIR *dir;
	struct dirent *de;
	Image *img;

	fd = open_image_dir(d, name);
	if (fd < 0)
		return fd;
	dir = fdopendir(dup(fd));
	if (!dir)
		return ov_errno();
	img = model_image_new(d, name);
	model_add_image_locked(d, img);
	while ((de = readdir(dir))) {
		g_autofree char *vol = NULL;

		if (de->d_name[0] == '.')
			continue;
		if (d->iso) {
			if (name_is_valid(de->d_name))
				scan_iso_file(d, img, fd, de->d_name);
			continue;
		}
		if (has_suffix(de->d_name, META_SUFFIX NEW_SUFFIX)) {
			/* An interrupted record write: the old record stands. */
			if (dom_may_write(d) && unlinkat(fd, de->d_name, 0) == 0)
				log_info("domain '%s': removed leftover '%s/%s'", d->uuid, name,
					 de->d_name);
			continue;
		}
		if (!has_suffix(de->d_name, META_SUFFIX))
			continue;
		vol = g_strndup(de->d_name, strlen(de->d_name) - strlen(META_SUFFIX));
		if (!name_is_valid(vol)) {
			log_warning("domain '%s': volume name '%s/%s' is not valid, ignoring",
				    d->uuid, name, vol);
			continue;
		}
		scan_volume(d, img, fd, vol);
	}
	closedir(dir);
	return 0;
}

static int remove_tree_at(int dirfd, const char *name)
{
	g_auto(OvFd) fd = -1;
	DIR *dir;
	struct dirent *de;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ov_errno();
	dir = fdopendir(dup(fd));
	if (!dir)
		return ov_errno();
	while ((de = readdir(dir))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		(void)unlinkat(fd, de->d_name, 0);
	}
	closedir(dir);
	return unlinkat(dirfd, name, AT_REMOVEDIR) < 0 ? ov_errno() : 0;
}

static int file_scan(Domain *d)
{
	DIR *dir;
	struct dirent *de;
	int r = 0;

	dir = fdopendir(dup(d->images_fd));
	if (!dir)
		return ov_errno();
	rewinddir(dir); /* the dup shares the position an earlier scan left at the end */
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		if (g_str_has_prefix(de->d_name, REMOVE_ME_PREFIX)) {
			/* An image deletion oVirt started: the SPM finishes it (reference 5). */
			if (dom_may_write(d) && remove_tree_at(d->images_fd, de->d_name) == 0)
				log_info("domain '%s': removed deleted image '%s'", d->uuid,
					 de->d_name);
			continue;
		}
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (!name_is_valid(de->d_name)) {
			log_warning("domain '%s': image name '%s' is not valid, ignoring", d->uuid,
				    de->d_name);
			continue;
		}
		if (d->iso && strcmp(de->d_name, ISO_IMAGE_UUID) != 0)
			continue;
		r = scan_image(d, de->d_name);
		if (r == -ENOTDIR)
			r = 0;
		if (r < 0)
			break;
	}
	closedir(dir);
	return r;
}

static int file_image_create(Domain *d, const char *img, uid_t uid, gid_t gid)
{
	g_auto(OvFd) fd = -1;

	if (mkdirat(d->images_fd, img, 0770) < 0)
		return ov_errno();
	fd = open_image_dir(d, img);
	if (fd < 0 || fchown(fd, uid, gid) < 0 || fchmod(fd, 0770) < 0) {
		int r = fd < 0 ? fd : ov_errno();

		(void)unlinkat(d->images_fd, img, AT_REMOVEDIR);
		return r;
	}
	return fsync_dir(d->images_fd);
}

static int file_image_remove(Domain *d, const char *img)
{
	if (unlinkat(d->images_fd, img, AT_REMOVEDIR) < 0)
		return errno == EEXIST ? -ENOTEMPTY : ov_errno();
	return fsync_dir(d->images_fd);
}

static int file_image_rename(Domain *d, const char *from, const char *to)
{
	if (renameat(d->images_fd, from, d->images_fd, to) < 0)
		return errno == EEXIST ? -ENOTEMPTY : ov_errno();
	return fsync_dir(d->images_fd);
}

static int file_image_stat(Domain *d, const char *img, struct stat *ret)
{
	return fstatat(d->images_fd, img, ret, AT_SYMLINK_NOFOLLOW) < 0 ? ov_errno() : 0;
}

static int file_image_chmod(Domain *d, const char *img, mode_t mode)
{
	return fchmodat(d->images_fd, img, mode, 0) < 0 ? ov_errno() : 0;
}

static int file_image_chown(Domain *d, const char *img, uid_t uid, gid_t gid)
{
	return fchownat(d->images_fd, img, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ? ov_errno() : 0;
}

static int file_vol_create(Domain *d, const char *img, const char *vol, mode_t mode, uid_t uid,
			   gid_t gid)
{
	g_auto(OvFd) dfd = -1;
	g_auto(OvFd) fd = -1;
	int r;

	dfd = open_image_dir(d, img);
	if (dfd < 0)
		return dfd;
	fd = openat(dfd, vol, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return ov_errno();
	/* Mode forced after creation, as oVirt does: the umask must not apply. */
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		r = ov_errno();
		(void)unlinkat(dfd, vol, 0);
		return r;
	}
	return fsync_dir(dfd);
}

static int unlink_ok(int dfd, const char *name)
{
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return ov_errno();
	return 0;
}

static int file_vol_remove(Domain *d, const char *img, const char *vol)
{
	g_auto(OvFd) dfd = -1;
	int r;

	dfd = open_image_dir(d, img);
	if (dfd < 0)
		return dfd == -ENOENT ? 0 : dfd;
	r = unlink_ok(dfd, vol);
	if (r < 0)
		return r;
	return fsync_dir(dfd);
}

static int rename_ok(int dfd, const char *from, const char *to)
{
	if (renameat(dfd, from, dfd, to) < 0 && errno != ENOENT)
		return ov_errno();
	return 0;
}

static int file_vol_rename(Domain *d, const char *img, const char *from, const char *to)
{
	static const char *const suffixes[] = { "", LEASE_SUFFIX, META_SUFFIX };
	g_auto(OvFd) dfd = -1;
	int r;

	dfd = open_image_dir(d, img);
	if (dfd < 0)
		return dfd;
	/* The record last: while it has the old name, the scan sees the old volume. */
	for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		g_autofree char *a = g_strconcat(from, suffixes[i], NULL);
		g_autofree char *b = g_strconcat(to, suffixes[i], NULL);

		r = rename_ok(dfd, a, b);
		if (r < 0)
			return r;
	}
	return fsync_dir(dfd);
}

static int file_vol_link(Domain *d, const char *vol, const char *from, const char *to)
{
	static const char *const suffixes[] = { "", LEASE_SUFFIX, META_SUFFIX };
	g_auto(OvFd) sfd = -1;
	g_auto(OvFd) dfd = -1;

	sfd = open_image_dir(d, from);
	if (sfd < 0)
		return sfd;
	dfd = open_image_dir(d, to);
	if (dfd < 0)
		return dfd;
	/* The record last, so the scan never sees a record without its data. */
	for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		g_autofree char *name = g_strconcat(vol, suffixes[i], NULL);

		if (linkat(sfd, name, dfd, name, 0) < 0 && errno != EEXIST &&
		    !(errno == ENOENT && i == 1))
			return ov_errno();
	}
	return fsync_dir(dfd);
}

static int file_vol_open(Domain *d, const char *img, const char *vol, int flags)
{
	g_autofree char *path = vol_path(img, vol, "");
	int fd = openat(d->images_fd, path, flags | O_CLOEXEC | O_NOFOLLOW);

	return fd < 0 ? ov_errno() : fd;
}

static int file_vol_stat(Domain *d, const char *img, const char *vol, struct stat *ret)
{
	g_autofree char *path = vol_path(img, vol, "");

	return fstatat(d->images_fd, path, ret, AT_SYMLINK_NOFOLLOW) < 0 ? ov_errno() : 0;
}

static int file_vol_chmod(Domain *d, const char *img, const char *vol, mode_t mode)
{
	g_autofree char *path = vol_path(img, vol, "");

	return fchmodat(d->images_fd, path, mode, 0) < 0 ? ov_errno() : 0;
}

static int file_vol_chown(Domain *d, const char *img, const char *vol, uid_t uid, gid_t gid)
{
	g_autofree char *path = vol_path(img, vol, "");

	if (fchownat(d->images_fd, path, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return ov_errno();
	return 0;
}

static int file_vol_utimens(Domain *d, const char *img, const char *vol,
			    const struct timespec times[2])
{
	g_autofree char *path = vol_path(img, vol, "");

	return utimensat(d->images_fd, path, times, AT_SYMLINK_NOFOLLOW) < 0 ? ov_errno() : 0;
}

static int file_vol_truncate(Domain *d, const char *img, const char *vol, off_t size)
{
	g_autofree char *path = vol_path(img, vol, "");
	g_auto(OvFd) fd = -1;

	fd = openat(d->images_fd, path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ov_errno();
	if (ftruncate(fd, size) < 0 || fsync(fd) < 0)
		return ov_errno();
	return 0;
}

static int file_md_write(Domain *d, const char *img, const char *vol, const MdVolume *md)
{
	char buf[MD_VOLUME_RECORD_SIZE];
	g_autofree char *name = g_strconcat(vol, META_SUFFIX, NULL);
	g_auto(OvFd) dfd = -1;
	size_t len = 0;
	int r;

	r = md_volume_encode(md, d->version, buf, sizeof(buf), &len);
	if (r < 0)
		return r;
	dfd = open_image_dir(d, img);
	if (dfd < 0)
		return dfd;
	/* Replace by rename: oVirt relies on it, and it breaks a template's hard link only
	 * for this image's copy, which the caller rewrites in every image. */
	return file_write_atomic(dfd, name, buf, len, 0644, "meta_write.tmp", "meta_write.rename");
}

static int file_md_remove(Domain *d, const char *img, const char *vol)
{
	g_autofree char *name = g_strconcat(vol, META_SUFFIX, NULL);
	g_auto(OvFd) dfd = -1;
	int r;

	dfd = open_image_dir(d, img);
	if (dfd < 0)
		return dfd == -ENOENT ? 0 : dfd;
	r = unlink_ok(dfd, name);
	if (r < 0)
		return r;
	return fsync_dir(dfd);
}

static int file_lease_create(Domain *d, const char *img, const char *vol)
{
	g_autofree char *rel = vol_path(img, vol, LEASE_SUFFIX);
	g_autofree char *path = g_build_filename(d->dir, "images", rel, NULL);
	char res[LEASE_NAME_MAX + 1];
	g_auto(OvFd) fd = -1;

	fd = openat(d->images_fd, rel, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
	if (fd < 0)
		return ov_errno();
	if (fchmod(fd, 0660) < 0 || fchown(fd, d->st->opt.uid, d->st->opt.gid) < 0)
		return ov_errno();
	lease_volume_resource_name(vol, res);
	return lease_format_resource(path, 0, d->uuid, res, d->block_size, d->alignment);
}

static int file_lease_area(Domain *d, DomLeaseArea area, const char *img, const char *vol,
			   char **ret_path, uint64_t *ret_offset)
{
	g_autofree char *rel = NULL;
	g_autofree char *fdlink = g_strdup_printf("/proc/self/fd/%d", d->dir_fd);
	g_autofree char *dir = NULL;

	/* sanlock opens the path itself, from its own working directory: an
	 * absolute one, also when the storage was named relative to ours */
	dir = g_file_read_link(fdlink, NULL);
	if (!dir || !g_path_is_absolute(dir))
		return -ENOENT;
	switch (area) {
	case DOM_LEASE_IDS:
		*ret_path = g_build_filename(dir, "dom_md", "ids", NULL);
		*ret_offset = 0;
		return 0;
	case DOM_LEASE_SPM:
		/* slot 1 of dom_md/leases; slot 0 is the legacy safelease */
		*ret_path = g_build_filename(dir, "dom_md", "leases", NULL);
		*ret_offset = d->alignment;
		return 0;
	case DOM_LEASE_VOLUME:
		rel = vol_path(img, vol, LEASE_SUFFIX);
		*ret_path = g_build_filename(dir, "images", rel, NULL);
		*ret_offset = 0;
		return 0;
	default:
		return -EINVAL;
	}
}

static int file_lease_remove(Domain *d, const char *img, const char *vol)
{
	g_autofree char *rel = vol_path(img, vol, LEASE_SUFFIX);

	if (unlinkat(d->images_fd, rel, 0) < 0 && errno != ENOENT)
		return ov_errno();
	return 0;
}

static int file_journal_read(Domain *d, unsigned slot, unsigned count, void *buf)
{
	size_t len = (size_t)count * MD_JOURNAL_RECORD_SIZE;
	ssize_t n;

	if (d->journal_fd < 0)
		return -ENOENT;
	n = pread(d->journal_fd, buf, len, (off_t)slot * MD_JOURNAL_RECORD_SIZE);
	if (n < 0)
		return ov_errno();
	if ((size_t)n < len)
		memset((char *)buf + n, 0, len - (size_t)n); /* past the end: empty slots */
	return 0;
}

static int file_journal_write(Domain *d, unsigned slot, const void *buf)
{
	ssize_t n;

	if (d->journal_fd < 0)
		return -EROFS;
	n = pwrite(d->journal_fd, buf, MD_JOURNAL_RECORD_SIZE,
		   (off_t)slot * MD_JOURNAL_RECORD_SIZE);
	if (n < 0)
		return ov_errno();
	if (n != MD_JOURNAL_RECORD_SIZE)
		return -EIO;
	return fdatasync(d->journal_fd) < 0 ? ov_errno() : 0;
}

static int file_statfs(Domain *d, struct statvfs *ret)
{
	return fstatvfs(d->dir_fd, ret) < 0 ? ov_errno() : 0;
}

static int file_domain_md_write(Domain *d, const MdKv *kv)
{
	g_autofree char *text = NULL;
	g_auto(OvFd) fd = -1;
	size_t len = 0;

	text = md_kv_encode(kv, &len);
	fd = openat(d->dir_fd, "dom_md", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ov_errno();
	return file_write_atomic(fd, "metadata", text, len, 0644, NULL, NULL);
}

const DomainBackend file_backend = {
	.type = "file",
	.scan = file_scan,
	.image_create = file_image_create,
	.image_remove = file_image_remove,
	.image_rename = file_image_rename,
	.image_stat = file_image_stat,
	.image_chmod = file_image_chmod,
	.image_chown = file_image_chown,
	.vol_create = file_vol_create,
	.vol_remove = file_vol_remove,
	.vol_rename = file_vol_rename,
	.vol_link = file_vol_link,
	.vol_open = file_vol_open,
	.vol_stat = file_vol_stat,
	.vol_chmod = file_vol_chmod,
	.vol_chown = file_vol_chown,
	.vol_utimens = file_vol_utimens,
	.vol_truncate = file_vol_truncate,
	.md_write = file_md_write,
	.md_remove = file_md_remove,
	.lease_create = file_lease_create,
	.lease_remove = file_lease_remove,
	.lease_area = file_lease_area,
	.journal_read = file_journal_read,
	.journal_write = file_journal_write,
	.statfs = file_statfs,
	.domain_md_write = file_domain_md_write,
};
