/*
 * Fuzz md_qcow2_parse() and md_qcow2_set_backing().  Never crash or read
 * outside the buffer; a header that parses takes a new backing name and
 * still parses with that name.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "metadata/md-qcow2.h"
#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree uint8_t *copy = NULL;
	MdQcow2Header h, h2;
	int r;

	(void)md_qcow2_has_magic(data, size);
	if (md_qcow2_parse(data, size, &h) < 0)
		return 0;
	FUZZ_CHECK(strlen(h.backing_name) <= MD_QCOW2_BACKING_MAX);
	FUZZ_CHECK(h.has_backing == (h.backing_name[0] != '\0'));

	copy = g_memdup2(data, size);
	r = md_qcow2_set_backing(copy, size, "fuzz-parent");
	FUZZ_CHECK(r == 0 || r == -ENOSPC);
	if (r == 0) {
		FUZZ_CHECK(md_qcow2_parse(copy, size, &h2) == 0);
		FUZZ_CHECK(strcmp(h2.backing_name, "fuzz-parent") == 0);
		FUZZ_CHECK(strcmp(h2.backing_format, h.backing_format) == 0);
		FUZZ_CHECK(h2.size == h.size && h2.cluster_bits == h.cluster_bits);
	} else {
		FUZZ_CHECK(memcmp(copy, data, size) == 0);
	}
	memcpy(copy, data, size);
	r = md_qcow2_set_backing(copy, size, "");
	FUZZ_CHECK(r == 0 || r == -ENODATA);
	if (r == 0) {
		FUZZ_CHECK(md_qcow2_parse(copy, size, &h2) == 0);
		FUZZ_CHECK(!h2.has_backing);
		FUZZ_CHECK(h2.size == h.size && h2.cluster_bits == h.cluster_bits);
	} else {
		FUZZ_CHECK(memcmp(copy, data, size) == 0);
	}
	return 0;
}
