/*
 * Fuzz the block domain decoders of metadata/md-block.c.  The input is a
 * list of lines, used three ways:
 *   - as an LV's tag list: md_lv_tags_parse(); what parses re-formats and
 *     parses to the same fields;
 *   - each line as a PVn value: md_block_pv_decode(); encode(decode(x))
 *     decodes to the same fields;
 *   - the first half and the second half as old and new tag lists:
 *     applying md_block_tags_diff() to old gives exactly the set new;
 * and the raw bytes as a metadata LV slot (md_block_slot_decode()).
 * Never crash.
 */
#include <string.h>
#include <glib.h>

#include "metadata/md-block.h"
#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

static void check_lv_tags(char **lines, size_t n)
{
	g_auto(GStrv) again = NULL;
	MdLvTags t, back;

	if (md_lv_tags_parse((const char *const *)lines, n, &t) < 0)
		return;
	FUZZ_CHECK(md_lv_tags_format(&t, &again) == 0);
	FUZZ_CHECK(md_lv_tags_parse((const char *const *)again, g_strv_length(again), &back) == 0);
	FUZZ_CHECK(back.has_image == t.has_image && back.has_parent == t.has_parent &&
		   back.has_slot == t.has_slot && back.initializing == t.initializing);
	FUZZ_CHECK(strcmp(back.image, t.image) == 0 && strcmp(back.parent, t.parent) == 0);
	FUZZ_CHECK(!t.has_image || back.removal == t.removal);
	FUZZ_CHECK(!t.has_slot || back.slot == t.slot);
	FUZZ_CHECK(md_lv_tags_is_volume(&back) == md_lv_tags_is_volume(&t));
}

static void check_pv(const char *line)
{
	g_autofree char *enc = NULL;
	MdBlockPv pv, back;

	if (md_block_pv_decode(line, &pv) < 0)
		return;
	FUZZ_CHECK(md_block_pv_encode(&pv, &enc) == 0);
	FUZZ_CHECK(md_block_pv_decode(enc, &back) == 0);
	FUZZ_CHECK(strcmp(pv.guid, back.guid) == 0 && strcmp(pv.uuid, back.uuid) == 0);
	FUZZ_CHECK(pv.pestart == back.pestart && pv.pecount == back.pecount &&
		   pv.mapoffset == back.mapoffset);
}

static void check_diff(char **lines, size_t n)
{
	size_t half = n / 2;
	g_autofree char **old_tags = g_new0(char *, half + 1);
	g_autofree char **new_tags = g_new0(char *, n - half + 1);
	g_autoptr(GHashTable) set = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GHashTable) want = g_hash_table_new(g_str_hash, g_str_equal);
	g_auto(GStrv) add = NULL;
	g_auto(GStrv) del = NULL;
	GHashTableIter it;
	gpointer key;

	memcpy(old_tags, lines, half * sizeof(char *));
	memcpy(new_tags, lines + half, (n - half) * sizeof(char *));
	md_block_tags_diff((const char *const *)old_tags, (const char *const *)new_tags, NULL, &add,
			   &del);
	for (size_t i = 0; old_tags[i]; i++)
		g_hash_table_add(set, old_tags[i]);
	for (size_t i = 0; del[i]; i++) {
		FUZZ_CHECK(g_hash_table_contains(set, del[i]));
		g_hash_table_remove(set, del[i]);
	}
	for (size_t i = 0; add[i]; i++) {
		FUZZ_CHECK(!g_hash_table_contains(set, add[i]));
		g_hash_table_add(set, add[i]);
	}
	for (size_t i = 0; new_tags[i]; i++)
		g_hash_table_add(want, new_tags[i]);
	FUZZ_CHECK(g_hash_table_size(set) == g_hash_table_size(want));
	g_hash_table_iter_init(&it, set);
	while (g_hash_table_iter_next(&it, &key, NULL))
		FUZZ_CHECK(g_hash_table_contains(want, key));
}

static void check_slot(const uint8_t *data, size_t size)
{
	uint8_t slot[MD_BLOCK_RECORD_SIZE] = { 0 };
	uint8_t enc[MD_BLOCK_RECORD_SIZE];
	MdVolume vol, back;

	memcpy(slot, data, MIN(size, sizeof(slot)));
	if (md_block_slot_decode(slot, sizeof(slot), &vol) < 0)
		return;
	/* Re-encoding may not fit (v5 adds keys); what fits decodes again. */
	if (md_block_slot_encode(&vol, 5, enc) < 0)
		return;
	FUZZ_CHECK(md_block_slot_decode(enc, sizeof(enc), &back) == 0);
	FUZZ_CHECK(back.capacity == vol.capacity && strcmp(back.image, vol.image) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	size_t n;

	if (size > 65536)
		return 0;
	text = g_strndup((const char *)data, size);
	lines = g_strsplit(text, "\n", -1);
	n = g_strv_length(lines);

	check_lv_tags(lines, n);
	for (size_t i = 0; i < n; i++)
		check_pv(lines[i]);
	check_diff(lines, n);
	check_slot(data, size);
	return 0;
}
