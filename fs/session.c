/*
 * session.c: options, mount, and the request loop.
 *
 * The loop is ours, not libfuse's: each worker thread reads requests from
 * /dev/fuse into a buffer placed so that a WRITE's payload (80 bytes after
 * the start of the request: fuse_in_header + fuse_write_in) starts on a
 * 4 KiB boundary, and hands it to fuse_session_process_buf().  The write
 * payload can then go to an O_DIRECT backing file as it is: no bounce
 * buffer, no copy (libfuse's own loop puts it at an unaligned address, and
 * its splice path needs a pipe this machine cannot have: measured.md 1, 2).
 *
 * Replies go out through fuse_session_custom_io()'s writev hook, which is
 * where FUSE_PASSTHROUGH is negotiated at INIT (the data-path issue).
 *
 * Shutdown: the main thread waits on a signalfd for SIGTERM/SIGINT/SIGHUP
 * and on an eventfd the workers write when they stop (the kernel answers
 * ENODEV after an unmount).  On a signal it unmounts, which stops the
 * workers in turn.
 */
#include "fs/fs-int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/banned.h"

/* fuse_in_header (40) + fuse_write_in (40): where a WRITE's data starts. */
#define WRITE_HEADER_SIZE 80

#define FS_OPT(t, p, v) { t, offsetof(FsConfig, p), v }

/*
 * The product's -o options: the one table for parsing, help, defaults and
 * bounds (STYLE.md 8).  Everything else goes to libfuse.
 */
static const struct fuse_opt fs_opts[] = {
	FS_OPT("uid=%u", uid, 0),
	FS_OPT("gid=%u", gid, 0),
	FS_OPT("passthrough=%s", passthrough, 0),
	FS_OPT("engine=%s", engine, 0),
	FS_OPT("uring=%s", uring, 0),
	FS_OPT("threads=%u", threads, 0),
	FS_OPT("chunk_mb=%u", chunk_mb, 0),
	FS_OPT("debug", fuse_debug, 1),
	FUSE_OPT_END,
};

static const struct {
	const char *name;
	const char *help;
	unsigned min, max;
} fs_opt_help[] = {
	{ "uid=N", "owner of the tree and of new volumes (default 36, vdsm)", 0, 4294967294u },
	{ "gid=N", "group of the tree and of new volumes (default 36, kvm)", 0, 4294967294u },
	{ "passthrough=auto|off", "let the kernel do a volume's I/O where it can (default auto)",
	  0, 0 },
	{ "engine=uring|sync", "daemon-tier reads and writes: io_uring, answered on completion "
			       "(default), or synchronous in the request threads", 0, 0 },
	{ "uring=auto|off", "take requests over io_uring where the kernel offers it (6.14+, "
			    "fuse.enable_uring=Y; default auto)", 0, 0 },
	{ "threads=N", "request threads (default 8, 1..256)", 1, 256 },
	{ "chunk_mb=N", "thin volume chunk on block domains in MiB (default 1024, 128..65536)",
	  128, 65536 },
	{ "debug", "log every FUSE request", 0, 0 },
};

static void fs_log(enum fuse_log_level level, const char *fmt, va_list ap)
	G_GNUC_PRINTF(2, 0);

/* While set, libfuse's messages are kept here instead of logged (option parsing). */
static __thread GString *fuse_capture;

static void fs_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);

	g_strchomp(msg);
	if (fuse_capture) {
		if (fuse_capture->len == 0)
			g_string_append(fuse_capture, msg);
		return;
	}
	/* libfuse's own messages are about its state, not something an admin acts on
	 * unless it says so at ERR or above. */
	if (level <= FUSE_LOG_ERR)
		log_error("fuse: %s", msg);
	else if (level <= FUSE_LOG_WARNING)
		log_warning("fuse: %s", msg);
	else
		log_debug(LOG_CLASS_FS, "fuse: %s", msg);
}

void fs_print_options_help(void)
{
	printf("ovstore -o options:\n");
	for (size_t i = 0; i < G_N_ELEMENTS(fs_opt_help); i++)
		printf("    -o %-22s %s\n", fs_opt_help[i].name, fs_opt_help[i].help);
	printf("Other -o options go to libfuse (allow_other, fsname=, ...); see fuse(8).\n");
}

int fs_new(char **opts, const char *fsname, Fs **ret, char **ret_error)
{
	g_autoptr(Fs) fs = g_new0(Fs, 1);
	g_autofree char *mopts = NULL;
	g_autofree char *fsname_esc = NULL;
	int r;

	fs->cfg.uid = 36;
	fs->cfg.gid = 36;
	fs->cfg.threads = 8;
	fs->cfg.chunk_mb = 1024;
	nodes_init(fs);
	pt_init(fs);
	fuse_opt_add_arg(&fs->args, "ovstore");
	for (char **o = opts; o && *o; o++) {
		fuse_opt_add_arg(&fs->args, "-o");
		fuse_opt_add_arg(&fs->args, *o);
	}
	fuse_set_log_func(fs_log);
	fuse_capture = g_string_new(NULL);
	r = fuse_opt_parse(&fs->args, &fs->cfg, fs_opts, NULL);
	if (r < 0)
		*ret_error = g_strdup(fuse_capture->len ? fuse_capture->str : "bad -o options");
	g_string_free(g_steal_pointer(&fuse_capture), TRUE);
	if (r < 0)
		return -EINVAL;
	if (!fs->cfg.passthrough || strcmp(fs->cfg.passthrough, "auto") == 0) {
		fs->passthrough = FS_PASSTHROUGH_AUTO;
	} else if (strcmp(fs->cfg.passthrough, "off") == 0) {
		fs->passthrough = FS_PASSTHROUGH_OFF;
	} else {
		*ret_error = g_strdup_printf("passthrough must be 'auto' or 'off', not '%s'",
					     fs->cfg.passthrough);
		return -EINVAL;
	}
	if (fs->cfg.engine && strcmp(fs->cfg.engine, "uring") != 0 &&
	    strcmp(fs->cfg.engine, "sync") != 0) {
		*ret_error = g_strdup_printf("engine must be 'uring' or 'sync', not '%s'",
					     fs->cfg.engine);
		return -EINVAL;
	}
	if (fs->cfg.uring && strcmp(fs->cfg.uring, "auto") != 0 &&
	    strcmp(fs->cfg.uring, "off") != 0) {
		*ret_error = g_strdup_printf("uring must be 'auto' or 'off', not '%s'",
					     fs->cfg.uring);
		return -EINVAL;
	}
	fs->uring_off = fs->cfg.uring && strcmp(fs->cfg.uring, "off") == 0;
	if (fs->cfg.uid == (unsigned)-1 || fs->cfg.gid == (unsigned)-1) {
		*ret_error = g_strdup("uid and gid must be real ids");
		return -EINVAL;
	}
	if (fs->cfg.threads < 1 || fs->cfg.threads > 256) {
		*ret_error = g_strdup_printf("threads must be 1 to 256, not %u", fs->cfg.threads);
		return -EINVAL;
	}
	if (fs->cfg.chunk_mb < 128 || fs->cfg.chunk_mb > 65536) {
		*ret_error = g_strdup_printf("chunk_mb must be 128 to 65536, not %u",
					     fs->cfg.chunk_mb);
		return -EINVAL;
	}
	if (fs->cfg.fuse_debug)
		fuse_opt_add_arg(&fs->args, "-odebug");
	/* fsname is what mount(8) and systemd match an fstab line against. */
	fsname_esc = g_strescape(fsname ? fsname : "ovstore", NULL);
	mopts = g_strdup_printf("default_permissions,subtype=ovstore,fsname=%s", fsname_esc);
	fuse_opt_add_arg(&fs->args, "-o");
	fuse_opt_add_arg(&fs->args, mopts);
	/* The session parses libfuse's options: unknown ones fail here, before anything
	 * is opened, with libfuse's reason as our one line. */
	fuse_capture = g_string_new(NULL);
	fs->se = fuse_session_new(&fs->args, &fs_ops, sizeof(fs_ops), fs);
	if (!fs->se) {
		*ret_error = g_strdup_printf("%s", fuse_capture->len ? fuse_capture->str
								      : "bad FUSE options");
		g_string_free(g_steal_pointer(&fuse_capture), TRUE);
		return -EINVAL;
	}
	g_string_free(g_steal_pointer(&fuse_capture), TRUE);
	*ret = g_steal_pointer(&fs);
	return 0;
}

uid_t fs_uid(const Fs *fs)
{
	return fs->cfg.uid;
}

gid_t fs_gid(const Fs *fs)
{
	return fs->cfg.gid;
}

unsigned fs_chunk_mb(const Fs *fs)
{
	return fs->cfg.chunk_mb;
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	return read(fd, buf, len);
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	return pt_writev(userdata, fd, iov, count);
}

static const struct fuse_custom_io custom_io = {
	.read = io_read,
	.writev = io_writev,
};

int fs_mount(Fs *fs, Storage *st, const char *mountpoint, char **ret_error)
{
	fs->st = st;
	fs->mount_time = time(NULL);
	if (fuse_session_mount(fs->se, mountpoint) != 0) {
		*ret_error = g_strdup_printf("cannot mount on '%s'", mountpoint);
		return -EIO;
	}
	fs->mounted = true;
	fs->mountpoint = g_strdup(mountpoint);
	if (fuse_session_custom_io(fs->se, &custom_io, fuse_session_fd(fs->se)) != 0) {
		*ret_error = g_strdup("cannot set up the FUSE session");
		return -EIO;
	}
	return 0;
}

int fs_daemonize(Fs *fs, bool foreground)
{
	(void)fs;
	if (foreground)
		return 0;
	if (fuse_daemonize(0) != 0)
		return -EIO;
	log_to_syslog();
	return 0;
}

typedef struct Worker {
	Fs *fs;
	int done_fd;
	pthread_t thread;
} Worker;

static void *worker_main(void *arg)
{
	Worker *w = arg;
	struct fuse_session *se = w->fs->se;
	int fd = fuse_session_fd(se);
	uint64_t one = 1;

	while (!fuse_session_exited(se)) {
		/* The request starts 80 bytes before a 4 KiB boundary: WRITE data lands on
		 * it.  The engine may keep the buffer of a WRITE it queued: take another. */
		char *req;
		ssize_t n;
		struct fuse_buf fbuf = { .size = 0 };

		if (!fs_tl_reqbase) {
			engine_fixed_forget_reqbuf(); /* the engine took the old one */
			fs_tl_reqbase = engine_buf_get(w->fs);
		}
		req = fs_tl_reqbase + OV_DIRECT_ALIGN - WRITE_HEADER_SIZE;
		n = read(fd, req, FS_REQ_BUF_SIZE - (OV_DIRECT_ALIGN - WRITE_HEADER_SIZE));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == ENOENT)
				continue; /* ENOENT: the request was interrupted */
			if (errno != ENODEV)
				log_error("reading /dev/fuse: %s", g_strerror(errno));
			fuse_session_exit(se);
			break;
		}
		fbuf.mem = req;
		fbuf.size = (size_t)n;
		pt_note_request(w->fs, req, (size_t)n);
		g_atomic_int_inc(&w->fs->busy);
		fuse_session_process_buf(se, &fbuf);
		g_atomic_int_dec_and_test(&w->fs->busy);
	}
	fs_thread_exit();
	engine_buf_put(w->fs, fs_tl_reqbase);
	fs_tl_reqbase = NULL;
	if (write(w->done_fd, &one, sizeof(one)) < 0)
		log_debug(LOG_CLASS_FS, "waking the main thread: %s", g_strerror(errno));
	return NULL;
}

int fs_run(Fs *fs)
{
	g_autofree Worker *workers = g_new0(Worker, fs->cfg.threads);
	g_auto(OvFd) sfd = -1;
	g_auto(OvFd) done = -1;
	sigset_t mask, old;
	unsigned started = 0, stopped = 0;
	int ret = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	/* Workers inherit the mask: signals come only to the signalfd. */
	pthread_sigmask(SIG_BLOCK, &mask, &old);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	done = eventfd(0, EFD_CLOEXEC);
	if (sfd < 0 || done < 0)
		return log_error_errno(ov_errno(), "setting up the request loop");
	ret = engine_start(fs);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < fs->cfg.threads; i++) {
		workers[i].fs = fs;
		workers[i].done_fd = done;
		if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
			ret = log_error_errno(-EAGAIN, "starting request threads");
			fuse_session_exit(fs->se);
			break;
		}
		started++;
	}
	log_notice("serving '%s' with %u threads, %s I/O", fs->mountpoint, started,
		   engine_name(fs));
	while (stopped == 0 && started > 0) {
		struct pollfd pfd[2] = { { .fd = sfd, .events = POLLIN },
					 { .fd = done, .events = POLLIN } };

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				log_notice("signal %u: unmounting '%s'", si.ssi_signo,
					   fs->mountpoint);
			break;
		}
		if (pfd[1].revents & POLLIN)
			stopped = 1;
	}
	/* Unmounting makes every worker's read fail with ENODEV. */
	fuse_session_exit(fs->se);
	if (fs->mounted) {
		fuse_session_unmount(fs->se);
		fs->mounted = false;
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(workers[i].thread, NULL);
	ring_stop(fs);
	engine_stop(fs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

void fs_free(Fs *fs)
{
	if (!fs)
		return;
	if (fs->se) {
		if (fs->mounted)
			fuse_session_unmount(fs->se);
		fuse_session_destroy(fs->se);
	}
	nodes_release(fs);
	pt_release_all(fs);
	fuse_opt_free_args(&fs->args);
	g_free(fs->cfg.passthrough);
	g_free(fs->cfg.engine);
	g_free(fs->cfg.uring);
	g_free(fs->mountpoint);
	g_free(fs);
}
