/*
 * mountopts: mount(8) / mount.fuse3 arguments -> `ovstore mount` argv.
 *
 * Two callers, one translation:
 *   - mount.ovstore, run by mount(8) for `-t ovstore` and /etc/fstab lines:
 *         mount.ovstore SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS] [-t TYPE]
 *   - the ovstore binary itself when argv[1] is not a subcommand: mount.fuse3
 *     runs `ovstore SOURCE MOUNTPOINT -o OPTIONS` for `-t fuse.ovstore`.
 * Both become
 *     ovstore mount [--storage SOURCE] [--storage EXTRA]... [--lease L]
 *                   [--host-id N] [--io-timeout S] [-o REST] MOUNTPOINT
 *
 * Rules (comma-separated OPTIONS; a backslash escapes the next character and
 * double quotes protect commas, as mount(8) and fuse_opt do):
 *   lease=local|sanlock    -> --lease L        (last one wins)
 *   host_id=N (1..2000)    -> --host-id N      (last one wins)
 *   io_timeout=S (1..3600) -> --io-timeout S   (last one wins)
 *   storage=P1:P2:...      -> --storage P1 --storage P2 ... (may repeat)
 *   _netdev nofail auto noauto defaults rw user user=* nouser users owner
 *   group x-* comment=* helper=* uhelper=*
 *                          -> dropped (mount(8)/fstab bookkeeping, not FUSE's)
 *   anything else          -> kept unchanged, in order, in one -o a,b,c
 * SOURCE "none", "ovstore" or "" names no storage (it then comes from
 * storage= only); any other SOURCE is the first --storage.  A MOUNTPOINT
 * starting with '-' is preceded by "--".
 *
 * Pure functions: no I/O, no exec, no logging.  Errors are -EINVAL with, when
 * ret_error is not NULL, one lowercase line saying what is wrong (for the
 * caller to print).  Output parameters are written only on success.
 */
#pragma once

#include <stdbool.h>

/* Mount helper flags, as mount(8) passes them (mount(8) "EXTERNAL HELPERS"). */
typedef enum MountArgsFlags {
	MOUNT_ARGS_FAKE = 1 << 0,    /* -f: print the command, run nothing */
	MOUNT_ARGS_VERBOSE = 1 << 1, /* -v: print the command, then run it */
	MOUNT_ARGS_NO_MTAB = 1 << 2, /* -n: accepted; there is no mtab to skip */
	MOUNT_ARGS_SLOPPY = 1 << 3,  /* -s: accepted; unknown options pass anyway */
	MOUNT_ARGS_HELP = 1 << 4,    /* -h, --help */
	MOUNT_ARGS_VERSION = 1 << 5, /* -V, --version */
} MountArgsFlags;

typedef struct MountArgs {
	char *source;     /* NULL when only a mountpoint was given */
	char *mountpoint; /* NULL only with MOUNT_ARGS_HELP/VERSION */
	char *options;    /* every -o value joined by ',', NULL if none */
	char *type;       /* the -t value, NULL if none */
	unsigned flags;   /* MountArgsFlags */
} MountArgs;

/*
 * Parses a mount helper's argv (argv[0] is the program): SOURCE MOUNTPOINT,
 * or MOUNTPOINT alone (mount.fuse3 drops an empty source), with -s -f -n -v
 * -h -V (clustered or not), -o OPTS, -t TYPE and --help/--version anywhere;
 * "--" ends the flags.  -t must be "ovstore" or "fuse.ovstore"; -N (mount
 * namespaces) is refused.  Release *ret with mountopts_args_release().
 */
int mountopts_parse_args(int argc, char *const *argv, MountArgs *ret, char **ret_error);
void mountopts_args_release(MountArgs *args);

/*
 * Builds the `ovstore mount` argv.  ovstore_path becomes argv[0] (what to
 * exec; "ovstore" if NULL), argv[1] is "mount".  source and options may be
 * NULL.  *ret_argv is NULL-terminated; free it with g_strfreev().
 */
int mountopts_translate(const char *source, const char *mountpoint, const char *options,
			const char *ovstore_path, char ***ret_argv);
/* The same, with the reason for -EINVAL in *ret_error (g_free it). */
int mountopts_translate_full(const char *source, const char *mountpoint, const char *options,
			     const char *ovstore_path, char ***ret_argv, char **ret_error);

/* One shell-quoted line (quotes only where needed) for -v and -f; g_free it. */
char *mountopts_argv_to_string(char *const *argv);
