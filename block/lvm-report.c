/*
 * lvm-report: lvm's JSON reports into BlkPv / BlkVg / BlkLv, and an LV's
 * segments into an ExtMap.  See lvm-int.h and lvm.h.
 *
 * lvm 2.03.16 (`--reportformat json`) prints
 *
 *   {"report": [ {"lv": [ {"lv_name":"a", "lv_size":"4194304", ...}, ... ]} ]}
 *
 * with every value a string (sizes in bytes with --units b --nosuffix,
 * lists such as tags joined with ","), and the array named "pv", "vg",
 * "lv" or, with --segments, "seg".  Later lvm versions add "json_std",
 * where numbers are JSON numbers and lists JSON arrays; both are accepted,
 * so an lvm upgrade does not break the reader.
 *
 * lvs --segments prints one row per segment with the LV's fields repeated;
 * rows are grouped by VG name and LV UUID.  A segment's areas come from the
 * "devices" field, "pv(first_pe)[,pv(first_pe)...]", one per stripe.
 */
#include "block/lvm-int.h"

#include <errno.h>
#include <string.h>
#include <json-glib/json-glib.h>

#include "common/log.h"
#include "common/parse.h"

#include "common/banned.h"

/* Sanity bound on stripes per segment (lvm allows at most 128). */
#define MAX_STRIPES 128

static int bad_report(const char *what, const char *field)
{
	log_debug(LOG_CLASS_BLOCK, "lvm report: %s%s%s%s", what, field ? " '" : "",
		  field ? field : "", field ? "'" : "");
	return -EPROTO;
}

void blk_pv_free(BlkPv *pv)
{
	if (!pv)
		return;
	g_free(pv->name);
	g_free(pv->uuid);
	g_free(pv->vg_name);
	g_free(pv);
}

void blk_vg_free(BlkVg *vg)
{
	if (!vg)
		return;
	g_free(vg->name);
	g_free(vg->uuid);
	g_strfreev(vg->tags);
	g_free(vg);
}

static void seg_release(BlkSeg *seg)
{
	g_free(seg->type);
	for (size_t i = 0; i < seg->n_stripes; i++)
		g_free(seg->stripes[i].pv);
	g_free(seg->stripes);
	memset(seg, 0, sizeof(*seg));
}

void blk_lv_free(BlkLv *lv)
{
	if (!lv)
		return;
	g_free(lv->vg_name);
	g_free(lv->name);
	g_free(lv->uuid);
	g_strfreev(lv->tags);
	for (size_t i = 0; i < lv->n_segs; i++)
		seg_release(&lv->segs[i]);
	g_free(lv->segs);
	g_free(lv);
}

/* Field readers. */

static int get_str(JsonObject *row, const char *field, const char **ret)
{
	JsonNode *node = json_object_get_member(row, field);

	if (!node || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_STRING)
		return bad_report("missing or non-string field", field);
	*ret = json_node_get_string(node);
	return 0;
}

static int get_dup(JsonObject *row, const char *field, char **ret)
{
	const char *s = NULL;
	int r = get_str(row, field, &s);

	if (r < 0)
		return r;
	*ret = g_strdup(s);
	return 0;
}

/* A byte count or counter: a decimal string or a non-negative JSON integer. */
static int get_u64(JsonObject *row, const char *field, uint64_t *ret)
{
	JsonNode *node = json_object_get_member(row, field);

	if (!node || !JSON_NODE_HOLDS_VALUE(node))
		return bad_report("missing field", field);
	if (json_node_get_value_type(node) == G_TYPE_INT64) {
		gint64 v = json_node_get_int(node);

		if (v < 0)
			return bad_report("negative number in field", field);
		*ret = (uint64_t)v;
		return 0;
	}
	if (json_node_get_value_type(node) != G_TYPE_STRING ||
	    parse_u64(json_node_get_string(node), ret) < 0)
		return bad_report("bad number in field", field);
	return 0;
}

/* As get_u64(), but "" (lvm has nothing to say, e.g. no metadata area) is 0. */
static int get_u64_or_empty(JsonObject *row, const char *field, uint64_t *ret)
{
	JsonNode *node = json_object_get_member(row, field);

	if (node && JSON_NODE_HOLDS_VALUE(node) &&
	    json_node_get_value_type(node) == G_TYPE_STRING && !*json_node_get_string(node)) {
		*ret = 0;
		return 0;
	}
	return get_u64(row, field, ret);
}

static int get_u32(JsonObject *row, const char *field, uint32_t *ret)
{
	uint64_t v = 0;
	int r = get_u64(row, field, &v);

	if (r < 0)
		return r;
	if (v > UINT32_MAX)
		return bad_report("number out of range in field", field);
	*ret = (uint32_t)v;
	return 0;
}

/* A list: "a,b,c" ("" is empty) or a JSON array of strings. */
static int get_list(JsonObject *row, const char *field, char ***ret)
{
	JsonNode *node = json_object_get_member(row, field);
	g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(g_free);

	if (node && JSON_NODE_HOLDS_ARRAY(node)) {
		JsonArray *a = json_node_get_array(node);

		for (guint i = 0; i < json_array_get_length(a); i++) {
			JsonNode *e = json_array_get_element(a, i);

			if (!JSON_NODE_HOLDS_VALUE(e) ||
			    json_node_get_value_type(e) != G_TYPE_STRING)
				return bad_report("non-string list item in field", field);
			g_ptr_array_add(items, g_strdup(json_node_get_string(e)));
		}
	} else {
		const char *s = NULL;
		g_auto(GStrv) parts = NULL;
		int r = get_str(row, field, &s);

		if (r < 0)
			return r;
		parts = g_strsplit(s, ",", -1);
		for (char **p = parts; *p; p++)
			if (**p)
				g_ptr_array_add(items, g_strdup(*p));
	}
	g_ptr_array_add(items, NULL);
	*ret = (char **)g_ptr_array_free(g_steal_pointer(&items), FALSE);
	return 0;
}

typedef int (*RowFn)(JsonObject *row, void *data);

/*
 * Calls fn for every object in report[*].<key>[*].  A report with no such
 * array at all is malformed; an empty array is an empty result.
 */
static int for_each_row(const char *json, size_t len, const char *key, RowFn fn, void *data)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	JsonNode *root;
	JsonNode *report;
	JsonArray *reports;
	bool found = false;
	int r;

	if (!json || len > G_MAXSSIZE)
		return -EPROTO;
	if (!json_parser_load_from_data(parser, json, (gssize)len, &error)) {
		log_debug(LOG_CLASS_BLOCK, "lvm report: %s", error->message);
		return -EPROTO;
	}
	root = json_parser_get_root(parser);
	if (!root || !JSON_NODE_HOLDS_OBJECT(root))
		return bad_report("not a JSON object", NULL);
	report = json_object_get_member(json_node_get_object(root), "report");
	if (!report || !JSON_NODE_HOLDS_ARRAY(report))
		return bad_report("no report array", NULL);
	reports = json_node_get_array(report);
	for (guint i = 0; i < json_array_get_length(reports); i++) {
		JsonNode *item = json_array_get_element(reports, i);
		JsonNode *rows_node;
		JsonArray *rows;

		if (!JSON_NODE_HOLDS_OBJECT(item))
			return bad_report("report item is not an object", NULL);
		rows_node = json_object_get_member(json_node_get_object(item), key);
		if (!rows_node)
			continue;
		if (!JSON_NODE_HOLDS_ARRAY(rows_node))
			return bad_report("rows are not an array", key);
		found = true;
		rows = json_node_get_array(rows_node);
		for (guint j = 0; j < json_array_get_length(rows); j++) {
			JsonNode *row = json_array_get_element(rows, j);

			if (!JSON_NODE_HOLDS_OBJECT(row))
				return bad_report("row is not an object", key);
			r = fn(json_node_get_object(row), data);
			if (r < 0)
				return r;
		}
	}
	if (!found)
		return bad_report("no rows named", key);
	return 0;
}

static int parse_pv_row(JsonObject *row, void *data)
{
	GPtrArray *out = data;
	g_autoptr(BlkPv) pv = g_new0(BlkPv, 1);
	int r;

	if ((r = get_dup(row, "pv_name", &pv->name)) < 0 ||
	    (r = get_dup(row, "pv_uuid", &pv->uuid)) < 0 ||
	    (r = get_dup(row, "vg_name", &pv->vg_name)) < 0 ||
	    (r = get_u64(row, "pv_size", &pv->size)) < 0 ||
	    (r = get_u64(row, "dev_size", &pv->dev_size)) < 0 ||
	    (r = get_u64(row, "pe_start", &pv->pe_start)) < 0 ||
	    (r = get_u64(row, "pv_pe_count", &pv->pe_count)) < 0 ||
	    (r = get_u64(row, "pv_pe_alloc_count", &pv->pe_alloc_count)) < 0 ||
	    (r = get_u64_or_empty(row, "pv_mda_size", &pv->mda_size)) < 0 ||
	    (r = get_u64_or_empty(row, "pv_mda_free", &pv->mda_free)) < 0)
		return r;
	if (!*pv->name)
		return bad_report("empty PV name", NULL);
	g_ptr_array_add(out, g_steal_pointer(&pv));
	return 0;
}

int blk_report_parse_pvs(const char *json, size_t len, GPtrArray **ret)
{
	g_autoptr(GPtrArray) pvs = g_ptr_array_new_with_free_func((GDestroyNotify)blk_pv_free);
	int r = for_each_row(json, len, "pv", parse_pv_row, pvs);

	if (r < 0)
		return r;
	*ret = g_steal_pointer(&pvs);
	return 0;
}

static int parse_vg_row(JsonObject *row, void *data)
{
	GPtrArray *out = data;
	g_autoptr(BlkVg) vg = g_new0(BlkVg, 1);
	int r;

	if ((r = get_dup(row, "vg_name", &vg->name)) < 0 ||
	    (r = get_dup(row, "vg_uuid", &vg->uuid)) < 0 ||
	    (r = get_u64(row, "vg_size", &vg->size)) < 0 ||
	    (r = get_u64(row, "vg_free", &vg->free)) < 0 ||
	    (r = get_u64(row, "vg_extent_size", &vg->extent_size)) < 0 ||
	    (r = get_u64(row, "vg_extent_count", &vg->extent_count)) < 0 ||
	    (r = get_u64(row, "vg_free_count", &vg->free_count)) < 0 ||
	    (r = get_list(row, "vg_tags", &vg->tags)) < 0 ||
	    (r = get_u64_or_empty(row, "vg_mda_size", &vg->mda_size)) < 0 ||
	    (r = get_u64_or_empty(row, "vg_mda_free", &vg->mda_free)) < 0 ||
	    (r = get_u64(row, "vg_seqno", &vg->seqno)) < 0 ||
	    (r = get_u32(row, "pv_count", &vg->pv_count)) < 0 ||
	    (r = get_u32(row, "lv_count", &vg->lv_count)) < 0)
		return r;
	if (!*vg->name || vg->extent_size == 0)
		return bad_report("empty VG name or extent size", NULL);
	g_ptr_array_add(out, g_steal_pointer(&vg));
	return 0;
}

int blk_report_parse_vgs(const char *json, size_t len, GPtrArray **ret)
{
	g_autoptr(GPtrArray) vgs = g_ptr_array_new_with_free_func((GDestroyNotify)blk_vg_free);
	int r = for_each_row(json, len, "vg", parse_vg_row, vgs);

	if (r < 0)
		return r;
	*ret = g_steal_pointer(&vgs);
	return 0;
}

/*
 * "devices": "/dev/a(0)" or "/dev/a(0),/dev/b(12)"; "" for segment types
 * without areas.  The PV name is everything before the last '(' of an item.
 */
static int parse_devices(const char *s, BlkSeg *seg)
{
	g_auto(GStrv) items = NULL;
	size_t n;

	if (!*s)
		return 0;
	items = g_strsplit(s, ",", -1);
	n = g_strv_length(items);
	if (n > MAX_STRIPES)
		return bad_report("too many stripes", NULL);
	seg->stripes = g_new0(BlkStripe, n);
	for (size_t i = 0; i < n; i++) {
		const char *item = items[i];
		const char *open = strrchr(item, '(');
		size_t len = strlen(item);
		g_autofree char *num = NULL;

		if (!open || open == item || len < 3 || item[len - 1] != ')')
			return bad_report("bad devices item", item);
		num = g_strndup(open + 1, (size_t)(item + len - 1 - (open + 1)));
		if (parse_u64(num, &seg->stripes[i].pe) < 0)
			return bad_report("bad first extent in devices item", item);
		seg->stripes[i].pv = g_strndup(item, (size_t)(open - item));
		seg->n_stripes = i + 1;
	}
	return 0;
}

/* Rows of one LV, collected before they are checked and sorted. */
typedef struct LvRows {
	BlkLv *lv;
	GArray *segs; /* BlkSeg */
} LvRows;

/* State of one blk_report_parse_lvs(): LvRows in row order, indexed by "vg/uuid". */
typedef struct SegParse {
	GHashTable *index;
	GPtrArray *rows;
} SegParse;

static void lv_rows_free(gpointer p)
{
	LvRows *rows = p;

	if (rows->segs) {
		for (guint i = 0; i < rows->segs->len; i++)
			seg_release(&g_array_index(rows->segs, BlkSeg, i));
		g_array_free(rows->segs, TRUE);
	}
	blk_lv_free(rows->lv);
	g_free(rows);
}

static int parse_seg_row(JsonObject *row, void *data)
{
	SegParse *sp = data;
	g_autoptr(BlkLv) lv = g_new0(BlkLv, 1);
	BlkSeg seg = { 0 };
	const char *devices = NULL;
	uint32_t stripes = 0;
	g_autofree char *key = NULL;
	LvRows *rows;
	int r;

	if ((r = get_dup(row, "vg_name", &lv->vg_name)) < 0 ||
	    (r = get_dup(row, "lv_name", &lv->name)) < 0 ||
	    (r = get_dup(row, "lv_uuid", &lv->uuid)) < 0 ||
	    (r = get_u64(row, "lv_size", &lv->size)) < 0 ||
	    (r = get_u64(row, "vg_extent_size", &lv->extent_size)) < 0 ||
	    (r = get_list(row, "lv_tags", &lv->tags)) < 0)
		return r;
	if (!*lv->name || !*lv->uuid || lv->extent_size == 0)
		return bad_report("empty LV name, UUID or extent size", NULL);

	if ((r = get_dup(row, "segtype", &seg.type)) < 0 ||
	    (r = get_u64(row, "seg_start_pe", &seg.le)) < 0 ||
	    (r = get_u64(row, "seg_size_pe", &seg.extents)) < 0 ||
	    (r = get_u32(row, "stripes", &stripes)) < 0 ||
	    (r = get_u64_or_empty(row, "stripe_size", &seg.stripe_size)) < 0 ||
	    (r = get_str(row, "devices", &devices)) < 0 || (r = parse_devices(devices, &seg)) < 0)
		goto fail;
	if ((strcmp(seg.type, "linear") == 0 || strcmp(seg.type, "striped") == 0) &&
	    (seg.n_stripes == 0 || seg.n_stripes != stripes)) {
		r = bad_report("stripes do not match devices", devices);
		goto fail;
	}

	key = g_strdup_printf("%s/%s", lv->vg_name, lv->uuid);
	rows = g_hash_table_lookup(sp->index, key);
	if (!rows) {
		rows = g_new0(LvRows, 1);
		rows->lv = g_steal_pointer(&lv);
		rows->segs = g_array_new(FALSE, TRUE, sizeof(BlkSeg));
		g_ptr_array_add(sp->rows, rows);
		g_hash_table_insert(sp->index, g_steal_pointer(&key), rows);
	} else if (strcmp(rows->lv->name, lv->name) != 0 || rows->lv->size != lv->size) {
		r = bad_report("segments of one LV disagree", lv->name);
		goto fail;
	}
	g_array_append_val(rows->segs, seg);
	return 0;
fail:
	seg_release(&seg);
	return r;
}

static int compare_seg(gconstpointer a, gconstpointer b)
{
	const BlkSeg *x = a, *y = b;

	return x->le < y->le ? -1 : x->le > y->le;
}

static int compare_lv(gconstpointer a, gconstpointer b)
{
	const BlkLv *x = *(BlkLv *const *)a, *y = *(BlkLv *const *)b;
	int c = strcmp(x->vg_name, y->vg_name);

	return c ? c : strcmp(x->name, y->name);
}

/* Sorts an LV's segments and checks they cover 0..n without gaps. */
static int finish_lv(LvRows *rows, BlkLv **ret)
{
	BlkLv *lv = rows->lv;
	uint64_t next = 0;

	g_array_sort(rows->segs, compare_seg);
	for (guint i = 0; i < rows->segs->len; i++) {
		const BlkSeg *seg = &g_array_index(rows->segs, BlkSeg, i);

		if (seg->le != next || seg->extents == 0 ||
		    __builtin_add_overflow(seg->le, seg->extents, &next))
			return bad_report("segments overlap or leave a gap in LV", lv->name);
	}
	lv->n_segs = rows->segs->len;
	lv->segs = (BlkSeg *)(void *)g_array_free(rows->segs, FALSE);
	rows->segs = NULL;
	rows->lv = NULL;
	*ret = lv;
	return 0;
}

int blk_report_parse_lvs(const char *json, size_t len, GPtrArray **ret)
{
	g_autoptr(GHashTable) index = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GPtrArray) rows = g_ptr_array_new();
	g_autoptr(GPtrArray) lvs = g_ptr_array_new_with_free_func((GDestroyNotify)blk_lv_free);
	SegParse sp = { .index = index, .rows = rows };
	int r;

	r = for_each_row(json, len, "seg", parse_seg_row, &sp);
	for (guint i = 0; i < rows->len; i++) {
		LvRows *lr = rows->pdata[i];
		BlkLv *lv = NULL;

		if (r >= 0) {
			r = finish_lv(lr, &lv);
			if (r >= 0)
				g_ptr_array_add(lvs, lv);
		}
		lv_rows_free(lr);
	}
	if (r < 0)
		return r;
	g_ptr_array_sort(lvs, compare_lv);
	*ret = g_steal_pointer(&lvs);
	return 0;
}

int blk_lv_extmap(const LvmCtx *ctx, const BlkLv *lv, const GPtrArray *pvs, ExtMap **ret)
{
	size_t n_pvs = blk_lvm_n_pvs(ctx), n_stripes = 0;
	g_autofree ExtMapPv *epvs = g_new0(ExtMapPv, n_pvs);
	g_autofree bool *known = g_new0(bool, n_pvs);
	g_autofree ExtMapSegment *segs = g_new0(ExtMapSegment, lv->n_segs ? lv->n_segs : 1);
	g_autofree ExtMapStripe *stripes = NULL;
	g_autoptr(ExtMap) map = NULL;
	int r;

	for (guint i = 0; i < pvs->len; i++) {
		const BlkPv *pv = pvs->pdata[i];
		int idx = blk_lvm_pv_index(ctx, pv->name);

		if (idx < 0)
			continue;
		epvs[idx] = (ExtMapPv){ .pe_start = pv->pe_start, .pe_count = pv->pe_count };
		known[idx] = true;
	}
	for (size_t i = 0; i < lv->n_segs; i++)
		n_stripes += lv->segs[i].n_stripes;
	stripes = g_new0(ExtMapStripe, n_stripes ? n_stripes : 1);

	n_stripes = 0;
	for (size_t i = 0; i < lv->n_segs; i++) {
		const BlkSeg *s = &lv->segs[i];

		if (strcmp(s->type, "linear") != 0 && strcmp(s->type, "striped") != 0) {
			log_debug(LOG_CLASS_BLOCK, "LV '%s': segment type '%s' not supported",
				  lv->name, s->type);
			return -EOPNOTSUPP;
		}
		segs[i] = (ExtMapSegment){
			.le = s->le,
			.extents = s->extents,
			.stripe_size = s->stripe_size,
			.n_stripes = (uint32_t)s->n_stripes,
			.stripes = &stripes[n_stripes],
		};
		for (size_t k = 0; k < s->n_stripes; k++) {
			int idx = blk_lvm_pv_index(ctx, s->stripes[k].pv);

			if (idx < 0 || !known[idx]) {
				log_debug(LOG_CLASS_BLOCK,
					  "LV '%s': extents on PV '%s' not in reach", lv->name,
					  s->stripes[k].pv);
				return -ENODEV;
			}
			stripes[n_stripes++] = (ExtMapStripe){ .pv = (uint32_t)idx,
							       .pe = s->stripes[k].pe };
		}
	}
	r = blk_extmap_new(lv->extent_size, epvs, n_pvs, segs, lv->n_segs, &map);
	if (r < 0)
		return r == -EINVAL ? -EPROTO : r;
	if (blk_extmap_size(map) != lv->size) {
		log_debug(LOG_CLASS_BLOCK, "LV '%s': size %" G_GUINT64_FORMAT
			  " but segments cover %" G_GUINT64_FORMAT, lv->name, lv->size,
			  blk_extmap_size(map));
		return -EPROTO;
	}
	*ret = g_steal_pointer(&map);
	return 0;
}
