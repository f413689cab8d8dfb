/*
 * Fuzz md_kv_decode_tags(): the input is a list of VG tags, one per line.
 * Never crash; re-encoding what decoded gives the same dictionary.
 */
#include <string.h>
#include <glib.h>

#include "metadata/md-kv.h"
#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *text = g_strndup((const char *)data, size);
	g_auto(GStrv) tags = g_strsplit(text, "\n", -1);
	g_autoptr(GPtrArray) again = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(MdKv) kv = NULL;
	g_autoptr(MdKv) back = NULL;
	size_t total = 0;
	char sum[41];

	if (md_kv_decode_tags((const char *const *)tags, g_strv_length(tags), &kv) < 0)
		return 0;
	md_kv_checksum(kv, sum);
	g_ptr_array_add(again, md_kv_tag_encode(MD_KV_CHECKSUM_KEY, sum));
	for (size_t i = 0; i < md_kv_size(kv); i++) {
		const char *key = md_kv_key_at(kv, i);

		g_ptr_array_add(again, md_kv_tag_encode(key, md_kv_get(kv, key)));
		total += strlen(again->pdata[again->len - 1]);
	}
	if (total > MD_KV_MAX_TEXT / 2)
		return 0;
	FUZZ_CHECK(md_kv_decode_tags((const char *const *)again->pdata, again->len, &back) == 0);
	FUZZ_CHECK(md_kv_equal(kv, back));
	return 0;
}
