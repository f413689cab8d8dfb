/*
 * Fuzz the lvm JSON report parsers of block/lvm-report.c with any bytes as
 * pvs, vgs and lvs output.  Never crash; what parses as an lvs report has
 * segments sorted and contiguous from extent 0, and as many areas as
 * "devices" named.
 */
#include <string.h>
#include <glib.h>

#include "block/lvm-int.h"
#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *json = (const char *)data;
	GPtrArray *a = NULL;

	if (size > 256 * 1024)
		return 0;
	if (blk_report_parse_pvs(json, size, &a) == 0) {
		for (guint i = 0; i < a->len; i++)
			FUZZ_CHECK(((BlkPv *)a->pdata[i])->name[0] != '\0');
		g_ptr_array_unref(a);
	}
	a = NULL;
	if (blk_report_parse_vgs(json, size, &a) == 0) {
		for (guint i = 0; i < a->len; i++)
			FUZZ_CHECK(((BlkVg *)a->pdata[i])->tags != NULL);
		g_ptr_array_unref(a);
	}
	a = NULL;
	if (blk_report_parse_lvs(json, size, &a) == 0) {
		for (guint i = 0; i < a->len; i++) {
			const BlkLv *lv = a->pdata[i];
			uint64_t next = 0;

			for (size_t s = 0; s < lv->n_segs; s++) {
				FUZZ_CHECK(lv->segs[s].le == next);
				FUZZ_CHECK(lv->segs[s].extents > 0);
				FUZZ_CHECK(lv->segs[s].n_stripes == 0 || lv->segs[s].stripes);
				for (size_t k = 0; k < lv->segs[s].n_stripes; k++)
					FUZZ_CHECK(lv->segs[s].stripes[k].pv != NULL);
				next = lv->segs[s].le + lv->segs[s].extents;
			}
		}
		g_ptr_array_unref(a);
	}
	return 0;
}
