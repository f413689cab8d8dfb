/*
 * Fuzz md_sanlock_leader_parse().  Each input is parsed as it is and, so
 * that the fields behind the checksum get exercised, once more with the
 * paxos magic and a matching checksum put in (as sanlock would seal it).
 */
#include <string.h>

#include "metadata/md-bytes.h"
#include "metadata/md-journal.h"
#include "metadata/md-sanlock.h"
#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

static void check(const uint8_t *buf, size_t len)
{
	MdSanlockLeader l;

	if (md_sanlock_leader_parse(buf, len, &l) != 0)
		return;
	FUZZ_CHECK(len >= MD_SANLOCK_LEADER_SIZE);
	FUZZ_CHECK(md_get_le32(buf) == MD_SANLOCK_PAXOS_MAGIC);
	FUZZ_CHECK(l.lver == md_get_le64(buf + 48));
	FUZZ_CHECK(md_sanlock_leader_free(&l) == (md_get_le64(buf + 152) == 0));
	FUZZ_CHECK(strlen(l.resource) <= 48);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sealed[MD_SANLOCK_LEADER_SIZE];

	check(data, size);
	if (size < MD_SANLOCK_LEADER_SIZE)
		return 0;
	memcpy(sealed, data, sizeof(sealed));
	md_put_le32(sealed, MD_SANLOCK_PAXOS_MAGIC);
	md_put_le32(sealed + 168, ~md_crc32c(1, sealed, 168));
	check(sealed, sizeof(sealed));
	{
		MdSanlockLeader l;

		FUZZ_CHECK(md_sanlock_leader_parse(sealed, sizeof(sealed), &l) == 0);
	}
	return 0;
}
