/*
 * cmd-mount.c: `ovstore mount`, in sshfs's order (STYLE.md 2): parse,
 * validate, open the storage and join the leases, mount, and only then
 * daemonize, so every failure reaches the caller.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <glib.h>

#include "cli/cli.h"
#include "common/log.h"
#include "common/parse.h"
#include "domain/model.h"
#include "fs/fs.h"
#include "common/banned.h"

typedef struct MountOptions {
	bool foreground;
	unsigned host_id;
	LeaseKind lease;
	unsigned io_timeout;
	GPtrArray *storage;
	GPtrArray *fuse_opts;
	const char *mountpoint;
} MountOptions;

static void mount_usage(FILE *f)
{
	fprintf(f,
		"usage: ovstore mount [-f] [--host-id N] [--lease sanlock|local] [--io-timeout S]\n"
		"                     [--storage PATH|DEV]... [-o OPTIONS] MOUNTPOINT\n"
		"\n"
		"Serves the domains found in the storage as MOUNTPOINT/<pool>/<domain>/...\n"
		"\n"
		"  -f                  stay in the foreground, log to stderr\n"
		"  --host-id N         this host's id in the pools, 1..2000 (default 1)\n"
		"  --lease KIND        sanlock (default; cluster) or local (one host)\n"
		"  --io-timeout S      lease I/O timeout, 1..300 (default 10)\n"
		"  --storage PATH|DEV  a directory holding domains, or a PV of a block\n"
		"                      domain (name every PV of it; repeatable)\n"
		"  -o OPTIONS          comma-separated mount options, below\n\n");
	fs_print_options_help();
}

static int parse_mount(int argc, char **argv, MountOptions *o)
{
	enum { OPT_HOST_ID = 256, OPT_LEASE, OPT_IO_TIMEOUT, OPT_STORAGE };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "host-id", required_argument, NULL, OPT_HOST_ID },
		{ "lease", required_argument, NULL, OPT_LEASE },
		{ "io-timeout", required_argument, NULL, OPT_IO_TIMEOUT },
		{ "storage", required_argument, NULL, OPT_STORAGE },
		{},
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+hfo:", longopts, NULL)) != -1) {
		uint64_t v;

		switch (c) {
		case 'h':
			mount_usage(stdout);
			return 1;
		case 'f':
			o->foreground = true;
			break;
		case 'o':
			g_ptr_array_add(o->fuse_opts, optarg);
			break;
		case OPT_HOST_ID:
			if (parse_u64_range(optarg, 1, 2000, &v) < 0) {
				log_error("--host-id: '%s' is not 1 to 2000", optarg);
				return -EINVAL;
			}
			o->host_id = (unsigned)v;
			break;
		case OPT_LEASE:
			if (lease_kind_from_string(optarg, &o->lease) < 0) {
				log_error("--lease: '%s' is not 'sanlock' or 'local'", optarg);
				return -EINVAL;
			}
			break;
		case OPT_IO_TIMEOUT:
			if (parse_u64_range(optarg, 1, 300, &v) < 0) {
				log_error("--io-timeout: '%s' is not 1 to 300 seconds", optarg);
				return -EINVAL;
			}
			o->io_timeout = (unsigned)v;
			break;
		case OPT_STORAGE:
			g_ptr_array_add(o->storage, optarg);
			break;
		default:
			log_error("mount: unknown or incomplete option '%s' (see --help)",
				  argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind != argc - 1) {
		log_error(optind >= argc ? "mount: MOUNTPOINT is missing"
					 : "mount: give exactly one MOUNTPOINT");
		return -EINVAL;
	}
	o->mountpoint = argv[optind];
	return 0;
}

static int validate(const MountOptions *o)
{
	struct stat st;

	if (o->storage->len == 0) {
		log_error("mount: no --storage given");
		return -EINVAL;
	}
	for (guint i = 0; i < o->storage->len; i++) {
		const char *p = o->storage->pdata[i];

		if (stat(p, &st) < 0) {
			log_error("mount: storage '%s': %s", p, g_strerror(errno));
			return -ENOENT;
		}
		if (S_ISBLK(st.st_mode))
			continue; /* a PV of a block domain */
		if (!S_ISDIR(st.st_mode)) {
			log_error("mount: storage '%s' is not a directory or a block device", p);
			return -ENOTDIR;
		}
	}
	if (stat(o->mountpoint, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_error("mount: mountpoint '%s' is not a directory", o->mountpoint);
		return -ENOTDIR;
	}
	return 0;
}

static void report_open_error(const MountOptions *o, int r)
{
	switch (r) {
	case -EHOSTUNREACH:
		log_error("mount: no sanlock daemon answers (is sanlock running? "
			  "SANLOCK_RUN_DIR=%s); use --lease local on a single host",
			  g_getenv("SANLOCK_RUN_DIR") ? g_getenv("SANLOCK_RUN_DIR")
						      : "/run/sanlock");
		break;
	case -EADDRINUSE:
		log_error("mount: host id %u is in use by another live host in a domain's "
			  "lockspace; give each host its own --host-id", o->host_id);
		break;
	case -EBUSY:
		log_error("mount: the storage is in use by another ovstore daemon");
		break;
	default:
		log_error("mount: opening storage '%s': %s",
			  (const char *)o->storage->pdata[0], g_strerror(-r));
	}
	(void)o;
}

int cmd_mount(int argc, char **argv)
{
	g_autoptr(GPtrArray) storage = g_ptr_array_new();
	g_autoptr(GPtrArray) fuse_opts = g_ptr_array_new();
	MountOptions o = { .host_id = 1, .lease = LEASE_KIND_SANLOCK, .io_timeout = 10,
			   .storage = storage, .fuse_opts = fuse_opts };
	g_autoptr(Fs) fs = NULL;
	g_autoptr(Storage) st = NULL;
	g_autofree char *error = NULL;
	StorageOptions so = { 0 };
	int r;

	/* 1. parse */
	r = parse_mount(argc, argv, &o);
	if (r != 0)
		return r > 0 ? 0 : 1;
	g_ptr_array_add(fuse_opts, NULL);
	r = fs_new((char **)fuse_opts->pdata, storage->len ? storage->pdata[0] : NULL, &fs,
		   &error);
	if (r < 0) {
		log_error("mount: -o: %s", error);
		return 1;
	}
	/* 2. validate */
	if (validate(&o) < 0)
		return 1;
	/* 3. open the storage, join the leases */
	g_ptr_array_add(storage, NULL);
	so.paths = (char **)storage->pdata;
	so.lease = o.lease;
	so.host_id = o.host_id;
	so.io_timeout = o.io_timeout;
	so.uid = fs_uid(fs);
	so.gid = fs_gid(fs);
	so.chunk_mb = fs_chunk_mb(fs);
	r = storage_open(&so, &st);
	if (r < 0) {
		report_open_error(&o, r);
		return 1;
	}
	/* 4. mount */
	r = fs_mount(fs, st, o.mountpoint, &error);
	if (r < 0) {
		log_error("mount: %s", error);
		return 1;
	}
	/* 5. only now detach */
	r = fs_daemonize(fs, o.foreground);
	if (r < 0) {
		log_error("mount: cannot daemonize");
		return 1;
	}
	if (!o.foreground && (r = storage_forked(st)) < 0) {
		log_error_errno(r, "mount: restarting the lease watcher after daemonizing");
		return 1;
	}
	storage_start(st);
	r = fs_run(fs);
	g_clear_pointer(&fs, fs_free);
	g_clear_pointer(&st, storage_free);
	return r < 0 ? 1 : 0;
}
