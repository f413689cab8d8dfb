/*
 * fs: the FUSE file system (libfuse3 low-level API).  The only folder that
 * includes FUSE headers; this header does not, so cli/ can use it.
 *
 * Calling sequence (sshfs's order, STYLE.md 2: every failure reaches the
 * caller before the parent exits):
 *   fs_new(opts, fsname)  parse -o options (product ones here, the rest to libfuse)
 *   ... storage_open() with fs_uid()/fs_gid() ...
 *   fs_mount(fs, st, mp)  mount; from now the kernel may send requests
 *   fs_daemonize(fs)      fork unless foreground, the parent exits 0
 *   fs_run(fs)            serve until unmounted or SIGTERM/SIGINT/SIGHUP
 *   fs_free(fs)           unmount if still mounted, free
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <glib.h>

#include "domain/model.h"

typedef struct Fs Fs;

/*
 * opts: the -o option strings as given (each "a,b=c,..."), may be NULL;
 * fsname: what /proc/mounts shows as the source.  -EINVAL with a one-line
 * *ret_error for a bad value or an unknown option.
 */
int fs_new(char **opts, const char *fsname, Fs **ret, char **ret_error);
void fs_free(Fs *fs);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Fs, fs_free)

uid_t fs_uid(const Fs *fs);
/* -o chunk_mb: the thin qcow2 chunk on block domains, MiB. */
unsigned fs_chunk_mb(const Fs *fs);
gid_t fs_gid(const Fs *fs);
/* Prints the -o options ovstore and libfuse understand. */
void fs_print_options_help(void);

int fs_mount(Fs *fs, Storage *st, const char *mountpoint, char **ret_error);
int fs_daemonize(Fs *fs, bool foreground);
/* 0 after a clean unmount or a signal. */
int fs_run(Fs *fs);
