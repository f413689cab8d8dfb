#include "block/mkfs.h"

#include <errno.h>
#include <inttypes.h>
#include <glib.h>

#include "common/log.h"
#include "common/banned.h"

int blk_mkfs_ext3(const char *dev, uint64_t offset, uint64_t size)
{
	g_autofree char *ext = g_strdup_printf("nodiscard,offset=%" PRIu64, offset);
	g_autofree char *blocks = g_strdup_printf("%" PRIu64 "k", size / 1024);
	const char *argv[] = { "mke2fs", "-q", "-F", "-t", "ext3", "-E", ext, dev, blocks, NULL };
	const char *envp[] = { "LC_ALL=C", "PATH=/usr/sbin:/sbin:/usr/bin:/bin", NULL };
	g_autofree char *err = NULL;
	g_autoptr(GError) error = NULL;
	int status = 0;

	if (!g_spawn_sync(NULL, (char **)argv, (char **)envp,
			  G_SPAWN_SEARCH_PATH_FROM_ENVP | G_SPAWN_STDOUT_TO_DEV_NULL |
				  G_SPAWN_CLOEXEC_PIPES,
			  NULL, NULL, NULL, &err, &status, &error)) {
		log_warning("mke2fs: %s", error->message);
		return error->code == G_SPAWN_ERROR_NOENT ? -ENOENT : -EIO;
	}
	if (!g_spawn_check_wait_status(status, NULL)) {
		log_warning("mke2fs %s (offset %" PRIu64 "): %s", dev, offset,
			    err && *err ? g_strstrip(err) : "failed");
		return -EIO;
	}
	log_debug(LOG_CLASS_BLOCK, "mke2fs: ext3 of %" PRIu64 " bytes at %s:%" PRIu64, size, dev,
		  offset);
	return 0;
}
