/*
 * passthrough.c: FUSE passthrough (kernel 6.9+) with libfuse 3.14, and the
 * OPEN replies libfuse 3.14 cannot express.
 *
 * Negotiation.  The kernel offers FUSE_PASSTHROUGH in the INIT request
 * (flags2 bit 5 when FUSE_INIT_EXT is set).  The request loop shows every
 * request to pt_note_request() first, which remembers the INIT's unique id
 * and what the kernel offered; the writev hook then finds the INIT reply
 * by that id and accepts: FUSE_INIT_EXT, flags2 bit 5, max_stack_depth 1
 * (the word after flags2).  Right after that reply is written, a probe
 * registers and drops one backing file, so a missing CAP_SYS_ADMIN (EPERM)
 * or a kernel that refuses shows at mount time, in one log line, and the
 * daemon serves everything itself.
 *
 * Backing files.  One backing id per volume, registered on the first
 * passthrough open (FUSE_DEV_IOC_BACKING_OPEN) and dropped on the last
 * release.  The kernel opens the backing file again with the FUSE file's own
 * flags, so O_DIRECT stays direct.
 *
 * The structures below are the kernel's ABI (include/uapi/linux/fuse.h);
 * Debian 12's header (protocol 7.38) predates the passthrough parts.
 */
#include "fs/fs-int.h"
#include "fs/fuse-abi.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/banned.h"

#define K_FUSE_INIT 26
#define K_FUSE_INIT_EXT (1u << 30)
#define K_FUSE_HANDLE_KILLPRIV_V2 (1u << 28)
#define K_FUSE_PASSTHROUGH_FLAGS2 (1u << 5) /* FUSE_PASSTHROUGH is bit 37 */
#define K_FUSE_OVER_IO_URING_FLAGS2 (1u << 9) /* FUSE_OVER_IO_URING is bit 41 */
#define K_FOPEN_DIRECT_IO (1u << 0)
#define K_FOPEN_PARALLEL_DIRECT_WRITES (1u << 6)
#define K_FOPEN_PASSTHROUGH (1u << 7)

struct k_init_in {
	uint32_t major;
	uint32_t minor;
	uint32_t max_readahead;
	uint32_t flags;
	uint32_t flags2; /* valid with FUSE_INIT_EXT */
	uint32_t unused[11];
};

struct k_init_out {
	uint32_t major;
	uint32_t minor;
	uint32_t max_readahead;
	uint32_t flags;
	uint16_t max_background;
	uint16_t congestion_threshold;
	uint32_t max_write;
	uint32_t time_gran;
	uint16_t max_pages;
	uint16_t map_alignment;
	uint32_t flags2;
	uint32_t max_stack_depth; /* unused[0] in 7.38 */
	uint32_t unused[6];
};
_Static_assert(sizeof(struct k_init_out) == 64, "fuse_init_out");
_Static_assert(offsetof(struct k_init_out, max_stack_depth) == 36, "max_stack_depth");

struct k_open_out {
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id; /* "padding" before 7.40 */
};
_Static_assert(sizeof(struct k_open_out) == 16, "fuse_open_out");

struct k_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
_Static_assert(sizeof(struct k_backing_map) == 16, "fuse_backing_map");

#define K_DEV_IOC_BACKING_OPEN _IOW(229, 1, struct k_backing_map)
#define K_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

typedef struct Backing {
	int id;
	unsigned refs;
} Backing;

void pt_init(Fs *fs)
{
	g_mutex_init(&fs->pt_lock);
	fs->backings = g_hash_table_new_full(NULL, NULL, NULL, g_free);
}

void pt_release_all(Fs *fs)
{
	if (!fs->backings)
		return;
	g_hash_table_unref(fs->backings);
	fs->backings = NULL;
	g_mutex_clear(&fs->pt_lock);
}

void pt_note_request(Fs *fs, const void *buf, size_t len)
{
	const struct k_in_header *in = buf;
	const struct k_init_in *init = (const void *)(in + 1);

	if (len < sizeof(*in) || in->opcode != K_FUSE_INIT)
		return;
	fs->kernel_offers_pt = len >= sizeof(*in) + offsetof(struct k_init_in, unused) &&
			       (init->flags & K_FUSE_INIT_EXT) &&
			       (init->flags2 & K_FUSE_PASSTHROUGH_FLAGS2);
	fs->kernel_offers_killpriv_v2 = (init->flags & K_FUSE_HANDLE_KILLPRIV_V2) != 0;
	fs->kernel_offers_uring = len >= sizeof(*in) + offsetof(struct k_init_in, unused) &&
				  (init->flags & K_FUSE_INIT_EXT) &&
				  (init->flags2 & K_FUSE_OVER_IO_URING_FLAGS2);
	if (!fs->uring_off && !fs->kernel_offers_uring)
		log_info("requests come through /dev/fuse: the kernel does not offer FUSE over "
			 "io_uring (kernel 6.14 or later with fuse.enable_uring=Y)");
	__atomic_store_n(&fs->init_unique, in->unique, __ATOMIC_RELEASE);
	if (fs->passthrough == FS_PASSTHROUGH_OFF)
		return;
	if (!fs->kernel_offers_pt)
		log_info("passthrough off: the kernel does not offer FUSE passthrough "
			 "(kernel 6.9 or later is needed); the daemon serves all I/O");
}

/* Registers and drops one backing file: can this mount pass files through? */
static void probe(Fs *fs)
{
	struct k_backing_map map = { 0 };
	g_auto(OvFd) fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	int id;

	if (fd < 0)
		return;
	map.fd = fd;
	id = ioctl(fuse_session_fd(fs->se), K_DEV_IOC_BACKING_OPEN, &map);
	if (id < 0) {
		log_info("passthrough off: the kernel refused a backing file (%s%s); the daemon "
			 "serves all I/O", g_strerror(errno),
			 errno == EPERM ? ", CAP_SYS_ADMIN is needed" : "");
		return;
	}
	(void)ioctl(fuse_session_fd(fs->se), K_DEV_IOC_BACKING_CLOSE, &(uint32_t){ (uint32_t)id });
	fs->passthrough_ok = true;
	log_info("passthrough on: the kernel does the I/O of volumes the daemon need not watch");
}

ssize_t pt_writev(Fs *fs, int fd, struct iovec *iov, int count)
{
	const struct k_out_header *out = iov[0].iov_base;
	bool init_reply = count >= 2 && iov[0].iov_len >= sizeof(*out) &&
			  out->unique == __atomic_load_n(&fs->init_unique, __ATOMIC_ACQUIRE) &&
			  out->error == 0 &&
			  iov[1].iov_len >= sizeof(struct k_init_out);
	bool accept = init_reply && fs->kernel_offers_pt &&
		      fs->passthrough == FS_PASSTHROUGH_AUTO;
	bool uring = init_reply && fs->kernel_offers_uring && !fs->uring_off && ring_usable();
	ssize_t r;

	/* A reply to a request that came over io_uring goes back the same way. */
	if (ring_reply(fs, iov, count, &r))
		return r;

	/*
	 * FUSE_HANDLE_KILLPRIV_V2 (libfuse 3.14 has no name for it): the server
	 * clears set-id bits and capabilities on write.  Volumes carry neither
	 * (vol_chmod drops set-id bits; no security.* xattrs exist here), and in
	 * return the kernel marks the mount SB_NOSEC.  Without it every write
	 * first asks the daemon for security.capability: a GETXATTR round trip
	 * per write, under the inode lock, even with passthrough (measured: 4 KiB
	 * QD16 passthrough writes at 0.24 of raw).
	 */
	if (init_reply && fs->kernel_offers_killpriv_v2) {
		struct k_init_out *arg = iov[1].iov_base;

		arg->flags |= K_FUSE_HANDLE_KILLPRIV_V2;
	}
	if (accept) {
		struct k_init_out *arg = iov[1].iov_base;

		arg->flags |= K_FUSE_INIT_EXT;
		arg->flags2 |= K_FUSE_PASSTHROUGH_FLAGS2;
		arg->max_stack_depth = 1;
	}
	if (uring) {
		struct k_init_out *arg = iov[1].iov_base;

		arg->flags |= K_FUSE_INIT_EXT;
		arg->flags2 |= K_FUSE_OVER_IO_URING_FLAGS2;
	}
	r = writev(fd, iov, count);
	if (accept && r >= 0)
		probe(fs);
	/* The queues can register only once the kernel has the INIT reply. */
	if (uring && r >= 0)
		ring_start(fs);
	return r;
}

int pt_acquire(Fs *fs, Volume *vol, int backing_fd, int *ret_id)
{
	Backing *b;
	struct stat st;
	int r = 0;

	if (fstat(backing_fd, &st) < 0)
		return ov_errno();
	if (!S_ISREG(st.st_mode))
		return -ENOTSUP; /* only regular files can be backing files */
	g_mutex_lock(&fs->pt_lock);
	b = g_hash_table_lookup(fs->backings, vol);
	if (!b) {
		struct k_backing_map map = { .fd = backing_fd };
		int id = ioctl(fuse_session_fd(fs->se), K_DEV_IOC_BACKING_OPEN, &map);

		if (id < 0) {
			r = ov_errno();
			goto out;
		}
		b = g_new0(Backing, 1);
		b->id = id;
		g_hash_table_insert(fs->backings, vol, b);
	}
	b->refs++;
	*ret_id = b->id;
out:
	g_mutex_unlock(&fs->pt_lock);
	return r;
}

void pt_put(Fs *fs, Volume *vol)
{
	Backing *b;

	g_mutex_lock(&fs->pt_lock);
	b = g_hash_table_lookup(fs->backings, vol);
	if (b && --b->refs == 0) {
		uint32_t id = (uint32_t)b->id;

		if (ioctl(fuse_session_fd(fs->se), K_DEV_IOC_BACKING_CLOSE, &id) < 0)
			log_debug(LOG_CLASS_FS, "closing backing id %u: %s", id, g_strerror(errno));
		g_hash_table_remove(fs->backings, vol);
	}
	g_mutex_unlock(&fs->pt_lock);
}

int pt_reply_open(fuse_req_t req, uint64_t fh, bool passthrough, int backing_id, bool direct)
{
	struct k_open_out out = { .fh = fh };

	if (passthrough) {
		/* FOPEN_DIRECT_IO would override passthrough: never both. */
		out.open_flags = K_FOPEN_PASSTHROUGH;
		out.backing_id = backing_id;
	} else if (direct) {
		/* O_DIRECT: let synchronous writers (QEMU aio=threads) run in parallel
		 * (measured.md 3); the kernel still serialises writes that extend. */
		out.open_flags = K_FOPEN_DIRECT_IO | K_FOPEN_PARALLEL_DIRECT_WRITES;
	}
	return fuse_reply_buf(req, (const char *)&out, sizeof(out));
}

const char *fs_volume_io(Fs *fs, Volume *vol)
{
	return fs->passthrough_ok && vol_may_pass_through(vol, O_RDWR) ? "passthrough" : "daemon";
}
