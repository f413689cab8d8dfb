/*
 * Fuzz md_volume_decode().  Never crash; a decoded record re-encodes (v5
 * and v4) to something that decodes to the same values.
 */
#include <errno.h>
#include <string.h>

#include "metadata/md-volume.h"
#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

static void check_same(const MdVolume *a, const MdVolume *b, bool v5)
{
	if (v5) {
		FUZZ_CHECK(a->capacity == b->capacity);
		FUZZ_CHECK(a->seq == b->seq);
	} else {
		FUZZ_CHECK((a->capacity + 511) / 512 * 512 == b->capacity);
	}
	FUZZ_CHECK(a->ctime == b->ctime);
	FUZZ_CHECK(strcmp(a->description, b->description) == 0);
	FUZZ_CHECK(strcmp(a->disktype, b->disktype) == 0);
	FUZZ_CHECK(strcmp(a->domain, b->domain) == 0);
	FUZZ_CHECK(strcmp(a->image, b->image) == 0);
	FUZZ_CHECK(strcmp(a->parent, b->parent) == 0);
	FUZZ_CHECK(a->format == b->format);
	FUZZ_CHECK(a->type == b->type);
	FUZZ_CHECK(a->role == b->role);
	FUZZ_CHECK(a->legality == b->legality);
	FUZZ_CHECK(a->generation == b->generation);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	MdVolume vol, back;
	char buf[MD_VOLUME_RECORD_SIZE];
	size_t len = 0;
	int r;

	if (md_volume_decode((const char *)data, size, &vol) < 0)
		return 0;
	(void)md_vol_format_to_string(vol.format);
	for (int version = 4; version <= 5; version++) {
		r = md_volume_encode(&vol, version, buf, sizeof(buf), &len);
		FUZZ_CHECK(r == 0 || r == -ERANGE);
		if (r < 0)
			continue;
		FUZZ_CHECK(len <= MD_VOLUME_RECORD_SIZE);
		FUZZ_CHECK(md_volume_decode(buf, len, &back) == 0);
		check_same(&vol, &back, version == 5);
	}
	return 0;
}
