#include "common/fault.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/banned.h"

/*
 * Every step of every multi-step operation, in order.  Keep in step with
 * the code: fault_point() asserts its name is here, and
 * tests/test_crash.py loops over this table.
 */
static const char *const points[] = {
	/* ovstore domain create --dir */
	"domain_create.dir",
	"domain_create.special",
	"domain_create.xleases",
	"domain_create.lockspace",
	"domain_create.metadata",
	"domain_create.publish",
	"domain_create.join",
	/* create(2) of a volume */
	"vol_create.journal",
	"vol_create.file",
	"vol_create.meta",
	"vol_create.lease",
	"vol_create.legal",
	/* unlink(2) of a volume */
	"vol_delete.journal",
	"vol_delete.illegal",
	"vol_delete.data",
	"vol_delete.meta",
	"vol_delete.parent",
	/* a qcow2 header that names a parent */
	"vol_parent.child",
	"vol_parent.parent",
	/* link(2): a volume becomes a template in another image */
	"vol_link.journal",
	"vol_link.shared",
	"vol_link.files",
	/* rename(2) of a volume */
	"vol_rename.journal",
	"vol_rename.files",
	"vol_rename.meta",
	"vol_rename.children",
	/* rename(2) of an image */
	"img_rename.journal",
	"img_rename.dir",
	"img_rename.meta",
	/* a block volume's LV grows (thin extension, truncate, fallocate) */
	"extend.journal",
	"extend.lvextend",
	"extend.zero",
	/* metadata record writes (any change) */
	"meta_write.tmp",
	"meta_write.rename",
	/* FUSE over io_uring set up after INIT took it (the fall-back to /dev/fuse) */
	"ring.start",
	"ring.queue",
	"ring.fixed",
	/* the daemon tier's registered buffers for synchronous I/O (the fall-back to pread) */
	"engine.fixed",
	NULL,
};

typedef struct FaultArm {
	char *name;
	int err; /* > 0: errno to return; 0: crash; -1: delay */
	bool once;
	bool fired;
} FaultArm;

static FaultArm *arms;
static size_t n_arms;
static __thread unsigned quiet;

void fault_quiet_begin(void)
{
	quiet++;
}

void fault_quiet_end(void)
{
	assert(quiet > 0);
	quiet--;
}

const char *const *fault_point_names(void)
{
	return points;
}

static bool known(const char *name)
{
	for (size_t i = 0; points[i]; i++)
		if (strcmp(points[i], name) == 0)
			return true;
	return false;
}

static int parse_errno_name(const char *s, int *ret)
{
	static const struct {
		const char *name;
		int err;
	} names[] = {
		{ "EIO", EIO },	     { "ENOSPC", ENOSPC }, { "EROFS", EROFS },
		{ "EDQUOT", EDQUOT }, { "ENOMEM", ENOMEM }, { "EPERM", EPERM },
		{ "EACCES", EACCES }, { "ETIMEDOUT", ETIMEDOUT }, { "EAGAIN", EAGAIN },
	};
	int v;

	for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*ret = names[i].err;
			return 0;
		}
	}
	if (parse_int(s, &v) == 0 && v > 0 && v < 4096) {
		*ret = v;
		return 0;
	}
	return -EINVAL;
}

int fault_setup(void)
{
	const char *spec = getenv("OVSTORE_TEST_FAULT");
	g_auto(GStrv) items = NULL;
	size_t n;

	if (!spec || !*spec)
		return 0;
	items = g_strsplit(spec, ",", -1);
	n = g_strv_length(items);
	arms = g_new0(FaultArm, n);
	for (size_t i = 0; i < n; i++) {
		g_auto(GStrv) parts = g_strsplit(items[i], ":", -1);
		FaultArm *a = &arms[n_arms];

		if (!parts[0] || !known(parts[0])) {
			log_error("OVSTORE_TEST_FAULT: unknown fault point '%s'",
				  parts[0] ? parts[0] : "");
			return -EINVAL;
		}
		a->name = g_strdup(parts[0]);
		a->err = EIO;
		for (char **p = parts + 1; *p; p++) {
			if (strcmp(*p, "once") == 0)
				a->once = true;
			else if (strcmp(*p, "crash") == 0)
				a->err = 0;
			else if (strcmp(*p, "delay") == 0)
				a->err = -1;
			else if (parse_errno_name(*p, &a->err) < 0) {
				log_error("OVSTORE_TEST_FAULT: bad action '%s' for '%s'", *p,
					  a->name);
				return -EINVAL;
			}
		}
		n_arms++;
	}
	return 0;
}

int fault_point(const char *name)
{
	assert(known(name));
	if (quiet)
		return 0;
	for (size_t i = 0; i < n_arms; i++) {
		FaultArm *a = &arms[i];

		if (strcmp(a->name, name) != 0)
			continue;
		if (a->once && __atomic_exchange_n(&a->fired, true, __ATOMIC_SEQ_CST))
			return 0;
		if (a->err == 0) {
			log_notice("fault point '%s' fired: killing the process", name);
			(void)kill(getpid(), SIGKILL);
			for (;;)
				pause();
		}
		if (a->err < 0) {
			log_notice("fault point '%s' fired: waiting %d ms", name, FAULT_DELAY_MS);
			g_usleep(FAULT_DELAY_MS * 1000);
			return 0;
		}
		log_notice("fault point '%s' fired: returning errno %d", name, a->err);
		return -a->err;
	}
	return 0;
}
