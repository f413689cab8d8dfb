/*
 * qcow2-set-backing FILE NAME: applies md_qcow2_set_backing() to FILE's
 * first cluster in place, so test-md-qcow2-qemu-img.sh can check the
 * result with qemu-img itself.  Exit 0 ok, 3 for -ENOSPC, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "common/cleanup.h"
#include "metadata/md-qcow2.h"

#include "common/banned.h"

#define READ_MAX (2u * 1024 * 1024)

int main(int argc, char **argv)
{
	g_auto(OvFd) fd = -1;
	g_autofree uint8_t *buf = NULL;
	MdQcow2Header h;
	ssize_t n;
	size_t len;
	int r;

	if (argc != 3) {
		fprintf(stderr, "usage: %s FILE NAME\n", argv[0]);
		return 1;
	}
	fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cannot open '%s': %m\n", argv[1]);
		return 1;
	}
	buf = g_malloc0(READ_MAX);
	n = pread(fd, buf, READ_MAX, 0);
	if (n < 0) {
		fprintf(stderr, "cannot read '%s': %m\n", argv[1]);
		return 1;
	}
	r = md_qcow2_parse(buf, (size_t)n, &h);
	if (r < 0) {
		fprintf(stderr, "cannot parse '%s': %s\n", argv[1], strerror(-r));
		return 1;
	}
	len = MIN((size_t)n, (size_t)1 << h.cluster_bits);
	r = md_qcow2_set_backing(buf, len, argv[2]);
	if (r < 0) {
		fprintf(stderr, "cannot set backing of '%s': %s\n", argv[1], strerror(-r));
		return r == -ENOSPC ? 3 : 1;
	}
	if (pwrite(fd, buf, len, 0) != (ssize_t)len) {
		fprintf(stderr, "cannot write '%s': %m\n", argv[1]);
		return 1;
	}
	return 0;
}
