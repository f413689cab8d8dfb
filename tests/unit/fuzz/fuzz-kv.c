/* Fuzz md_kv_decode(): never crash; decode(encode(x)) == x, also through VG tags. */
#include <string.h>
#include <glib.h>

#include "metadata/md-kv.h"
#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

static void check_tags(const MdKv *kv)
{
	g_autoptr(GPtrArray) tags = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(MdKv) back = NULL;
	size_t total = 0;
	char sum[41];

	md_kv_checksum(kv, sum);
	g_ptr_array_add(tags, md_kv_tag_encode(MD_KV_CHECKSUM_KEY, sum));
	for (size_t i = 0; i < md_kv_size(kv); i++) {
		const char *key = md_kv_key_at(kv, i);

		g_ptr_array_add(tags, md_kv_tag_encode(key, md_kv_get(kv, key)));
	}
	for (guint i = 0; i < tags->len; i++)
		total += strlen(tags->pdata[i]) - 4;
	if (total > MD_KV_MAX_TEXT)
		return;
	FUZZ_CHECK(md_kv_decode_tags((const char *const *)tags->pdata, tags->len, &back) == 0);
	FUZZ_CHECK(md_kv_equal(kv, back));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(MdKv) kv = NULL;
	g_autoptr(MdKv) back = NULL;
	g_autofree char *text = NULL;
	size_t len = 0;

	if (md_kv_decode((const char *)data, size, &kv) < 0)
		return 0;
	text = md_kv_encode(kv, &len);
	FUZZ_CHECK(strlen(text) == len);
	if (len <= MD_KV_MAX_TEXT) {
		FUZZ_CHECK(md_kv_decode(text, len, &back) == 0);
		FUZZ_CHECK(md_kv_equal(kv, back));
	}
	check_tags(kv);
	return 0;
}
