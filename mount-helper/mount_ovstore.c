/*
 * mount.ovstore: what mount(8) runs for `mount -t ovstore` and /etc/fstab
 * lines of type ovstore (mount(8) "EXTERNAL HELPERS"):
 *
 *     mount.ovstore SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS] [-t ovstore]
 *
 * It only translates (STYLE.md 8): common/mountopts.c turns the arguments
 * into `ovstore mount ...` and this program execs that.  `ovstore mount`
 * without -f returns only once the mount is up (it daemonizes last), so
 * mount(8) sees the real outcome in our exit status.
 *
 * The ovstore binary is, in order: $OVSTORE_BIN (tests), the one next to
 * this helper, /usr/sbin/ovstore, /usr/local/sbin/ovstore, then $PATH.
 *
 * Exit status as mount(8) documents: 1 for incorrect invocation, 32 when
 * the mount could not be started; otherwise whatever `ovstore mount` exits
 * with.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "config.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/mountopts.h"
#include "common/banned.h"

#define EXIT_USAGE 1
#define EXIT_MOUNT_FAILURE 32

static const char *const fixed_paths[] = {
	"/usr/sbin/ovstore",
	"/usr/local/sbin/ovstore",
};

static void print_help(void)
{
	printf("Usage: mount.ovstore SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS] [-t ovstore]\n"
	       "\n"
	       "Mount helper for ovstore, run by mount(8) for `mount -t ovstore` and\n"
	       "/etc/fstab lines of type ovstore.  Runs `ovstore mount`.\n"
	       "\n"
	       "SOURCE      storage path or device; 'none' or 'ovstore' for none\n"
	       "MOUNTPOINT  where to mount the pools\n"
	       "  -f        fake: print the command that would run, run nothing\n"
	       "  -v        print the command before running it\n"
	       "  -n, -s    accepted and ignored\n"
	       "  -o OPTS   comma-separated options:\n"
	       "              lease=local|sanlock   -> --lease\n"
	       "              host_id=N             -> --host-id\n"
	       "              io_timeout=S          -> --io-timeout\n"
	       "              storage=P1:P2:...     -> --storage P1 --storage P2 ...\n"
	       "              _netdev, nofail, auto, noauto, defaults, rw, user, users,\n"
	       "              x-*, comment=*        -> dropped (fstab bookkeeping)\n"
	       "              anything else         -> passed on in -o\n"
	       "  -h, --help     show this help\n"
	       "  -V, --version  show the version\n"
	       "\n"
	       "Environment: OVSTORE_BIN names the ovstore binary to run.\n");
}

/* The ovstore binary in the directory this helper runs from, if any. */
static char *sibling_path(const char *argv0)
{
	g_autofree char *self = NULL;
	g_autofree char *dir = NULL;
	char buf[PATH_MAX];
	ssize_t n;

	n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		self = g_strdup(buf);
	} else if (argv0 && strchr(argv0, '/')) {
		self = g_strdup(argv0);
	} else {
		return NULL;
	}
	dir = g_path_get_dirname(self);
	return g_build_filename(dir, "ovstore", NULL);
}

static char *find_ovstore(const char *argv0)
{
	const char *env = getenv("OVSTORE_BIN");
	g_autofree char *sibling = NULL;

	if (env && *env)
		return g_strdup(env);
	sibling = sibling_path(argv0);
	if (sibling && access(sibling, X_OK) == 0)
		return g_steal_pointer(&sibling);
	for (size_t i = 0; i < G_N_ELEMENTS(fixed_paths); i++)
		if (access(fixed_paths[i], X_OK) == 0)
			return g_strdup(fixed_paths[i]);
	return g_find_program_in_path("ovstore");
}

int main(int argc, char **argv)
{
	MountArgs args = { 0 };
	g_autofree char *error = NULL;
	g_autofree char *ovstore = NULL;
	g_auto(GStrv) new_argv = NULL;
	g_autofree char *line = NULL;
	unsigned flags;
	int r;

	log_setup("mount.ovstore");

	r = mountopts_parse_args(argc, argv, &args, &error);
	if (r < 0) {
		log_error("%s (see --help)", error);
		return EXIT_USAGE;
	}
	if (args.flags & MOUNT_ARGS_HELP) {
		print_help();
		mountopts_args_release(&args);
		return 0;
	}
	if (args.flags & MOUNT_ARGS_VERSION) {
		printf("mount.ovstore %s\n", OVSTORE_VERSION);
		mountopts_args_release(&args);
		return 0;
	}

	flags = args.flags;
	ovstore = find_ovstore(argv[0]);
	if (!ovstore && !(flags & MOUNT_ARGS_FAKE)) {
		log_error("cannot find the ovstore binary (set OVSTORE_BIN or install ovstore)");
		mountopts_args_release(&args);
		return EXIT_MOUNT_FAILURE;
	}

	r = mountopts_translate_full(args.source, args.mountpoint, args.options,
				     ovstore ? ovstore : "ovstore", &new_argv, &error);
	mountopts_args_release(&args);
	if (r < 0) {
		log_error("%s", error);
		return EXIT_USAGE;
	}

	if (flags & (MOUNT_ARGS_FAKE | MOUNT_ARGS_VERBOSE)) {
		line = mountopts_argv_to_string(new_argv);
		printf("%s\n", line);
		(void)fflush(stdout);
	}
	if (flags & MOUNT_ARGS_FAKE)
		return 0;

	(void)execv(new_argv[0], new_argv);
	(void)log_error_errno(ov_errno(), "cannot run '%s'", new_argv[0]);
	return EXIT_MOUNT_FAILURE;
}
