/*
 * md-kv: the KEY=VALUE dictionary, its SHA-1 seal, and the two ways oVirt
 * stores it (file text and VG tags).  See md-kv.h.
 *
 * Whitespace rules follow VDSM (lib/vdsm/storage/persistent.py) so that a
 * seal we write is a seal VDSM verifies and vice versa:
 *  - reading strips white space around the value (Python str.strip());
 *  - writing strips the value too, and the seal covers the stripped line.
 * The key is trimmed on reading as the reference says; VDSM never writes a
 * key with white space, so both rules agree on everything VDSM writes.
 * "White space" is Python's str.isspace() set (py_isspace below), not C's,
 * because that is what VDSM strips.
 *
 * Storage: a GArray of {key, value} kept sorted by strcmp(), which for
 * UTF-8 is code-point order (the order Python's sorted() gives).
 */
#include "metadata/md-kv.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"

#include "common/banned.h"

#define MD_KV_TAG_PREFIX "MDT_"

typedef struct KvEntry {
	char *key;
	char *value;
} KvEntry;

struct MdKv {
	GArray *entries; /* KvEntry, sorted by key, keys unique */
};

static void kv_entry_release(gpointer p)
{
	KvEntry *e = p;

	g_free(e->key);
	g_free(e->value);
}

MdKv *md_kv_new(void)
{
	MdKv *kv = g_new0(MdKv, 1);

	kv->entries = g_array_new(FALSE, FALSE, sizeof(KvEntry));
	g_array_set_clear_func(kv->entries, kv_entry_release);
	return kv;
}

void md_kv_free(MdKv *kv)
{
	if (!kv)
		return;
	g_array_unref(kv->entries);
	g_free(kv);
}

MdKv *md_kv_copy(const MdKv *kv)
{
	MdKv *copy = md_kv_new();

	for (guint i = 0; i < kv->entries->len; i++) {
		const KvEntry *e = &g_array_index(kv->entries, KvEntry, i);
		KvEntry n = { g_strdup(e->key), g_strdup(e->value) };

		g_array_append_val(copy->entries, n);
	}
	return copy;
}

/* Index of key, or -(insertion point) - 1. */
static gssize kv_find(const MdKv *kv, const char *key)
{
	gssize lo = 0, hi = (gssize)kv->entries->len - 1;

	while (lo <= hi) {
		gssize mid = lo + (hi - lo) / 2;
		int c = strcmp(g_array_index(kv->entries, KvEntry, mid).key, key);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -lo - 1;
}

const char *md_kv_get(const MdKv *kv, const char *key)
{
	gssize i = kv_find(kv, key);

	return i >= 0 ? g_array_index(kv->entries, KvEntry, i).value : NULL;
}

/* Takes ownership of key and value. */
static void kv_put(MdKv *kv, char *key, char *value)
{
	gssize i = kv_find(kv, key);

	if (i >= 0) {
		KvEntry *e = &g_array_index(kv->entries, KvEntry, i);

		g_free(key);
		g_free(e->value);
		e->value = value;
	} else {
		KvEntry n = { key, value };

		g_array_insert_val(kv->entries, (guint)(-i - 1), n);
	}
}

void md_kv_set(MdKv *kv, const char *key, const char *value)
{
	char *v;

	g_assert(key && value);
	g_assert(!strchr(key, '=') && !strchr(key, '\n'));
	g_assert(g_utf8_validate(key, -1, NULL));
	g_assert(strcmp(key, MD_KV_CHECKSUM_KEY) != 0);
	g_assert(!strchr(value, '\n'));
	/* The seal is defined over text; never store bytes we cannot hash. */
	if (g_utf8_validate(value, -1, NULL))
		v = g_strdup(value);
	else
		v = g_utf8_make_valid(value, -1);
	kv_put(kv, g_strdup(key), v);
}

void md_kv_set_int(MdKv *kv, const char *key, long long value)
{
	char buf[32];

	g_snprintf(buf, sizeof(buf), "%lld", value);
	md_kv_set(kv, key, buf);
}

bool md_kv_remove(MdKv *kv, const char *key)
{
	gssize i = kv_find(kv, key);

	if (i < 0)
		return false;
	g_array_remove_index(kv->entries, (guint)i);
	return true;
}

size_t md_kv_size(const MdKv *kv)
{
	return kv->entries->len;
}

const char *md_kv_key_at(const MdKv *kv, size_t i)
{
	g_assert(i < kv->entries->len);
	return g_array_index(kv->entries, KvEntry, i).key;
}

bool md_kv_equal(const MdKv *a, const MdKv *b)
{
	if (a->entries->len != b->entries->len)
		return false;
	for (guint i = 0; i < a->entries->len; i++) {
		const KvEntry *x = &g_array_index(a->entries, KvEntry, i);
		const KvEntry *y = &g_array_index(b->entries, KvEntry, i);

		if (strcmp(x->key, y->key) != 0 || strcmp(x->value, y->value) != 0)
			return false;
	}
	return true;
}

/* Python's str.isspace() (Objects/unicodetype_db.h _PyUnicode_IsWhitespace). */
static bool py_isspace(gunichar c)
{
	switch (c) {
	case 0x09 ... 0x0d:
	case 0x1c ... 0x20:
	case 0x85:
	case 0xa0:
	case 0x1680:
	case 0x2000 ... 0x200a:
	case 0x2028:
	case 0x2029:
	case 0x202f:
	case 0x205f:
	case 0x3000:
		return true;
	default:
		return false;
	}
}

/*
 * Python's str.strip() on valid UTF-8 [s, s + *len): returns the new start
 * and updates *len.
 */
static const char *py_strip(const char *s, size_t *len)
{
	const char *end = s + *len;

	while (s < end && py_isspace(g_utf8_get_char(s)))
		s = g_utf8_next_char(s);
	while (end > s) {
		const char *prev = g_utf8_find_prev_char(s, end);

		if (!prev || !py_isspace(g_utf8_get_char(prev)))
			break;
		end = prev;
	}
	*len = (size_t)(end - s);
	return s;
}

/* The value as written: stripped, as VDSM's _flush() does. */
static const char *value_stripped(const char *value, size_t *len)
{
	*len = strlen(value);
	return py_strip(value, len);
}

/* Feeds s to the hash with non-ASCII characters as "&#NNNN;". */
static void checksum_feed(GChecksum *sum, const char *s, size_t len)
{
	const char *end = s + len;
	const char *run = s;

	while (s < end) {
		if ((unsigned char)*s < 0x80) {
			s++;
			continue;
		}
		if (s > run)
			g_checksum_update(sum, (const guchar *)run, s - run);

		char ref[16];
		int n = g_snprintf(ref, sizeof(ref), "&#%u;", (unsigned)g_utf8_get_char(s));

		g_checksum_update(sum, (const guchar *)ref, n);
		s = g_utf8_next_char(s);
		run = s;
	}
	if (s > run)
		g_checksum_update(sum, (const guchar *)run, s - run);
}

void md_kv_checksum(const MdKv *kv, char ret[41])
{
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA1);

	for (guint i = 0; i < kv->entries->len; i++) {
		const KvEntry *e = &g_array_index(kv->entries, KvEntry, i);
		size_t vlen;
		const char *v = value_stripped(e->value, &vlen);

		checksum_feed(sum, e->key, strlen(e->key));
		g_checksum_update(sum, (const guchar *)"=", 1);
		checksum_feed(sum, v, vlen);
	}
	memcpy(ret, g_checksum_get_string(sum), 41);
}

/*
 * One decoded line (valid UTF-8, no NUL, no '\n').  Lines without '=' are
 * skipped; the checksum line is returned through *declared.
 */
static void decode_line(MdKv *kv, const char *line, size_t len, char **declared)
{
	const char *eq = memchr(line, '=', len);
	const char *k, *v;
	size_t klen, vlen;

	if (!eq) {
		log_debug(LOG_CLASS_METADATA, "metadata line without '=', ignoring");
		return;
	}
	klen = (size_t)(eq - line);
	k = py_strip(line, &klen);
	vlen = len - (size_t)(eq + 1 - line);
	v = py_strip(eq + 1, &vlen);
	if (klen == strlen(MD_KV_CHECKSUM_KEY) && memcmp(k, MD_KV_CHECKSUM_KEY, klen) == 0) {
		g_free(*declared);
		*declared = g_strndup(v, vlen);
		return;
	}
	/* Duplicate keys: the last one wins, as in VDSM's dict. */
	kv_put(kv, g_strndup(k, klen), g_strndup(v, vlen));
}

static int check_seal(const MdKv *kv, const char *declared)
{
	char computed[41];

	/* VDSM accepts empty metadata and metadata without a seal as is. */
	if (md_kv_size(kv) == 0 || !declared)
		return 0;
	md_kv_checksum(kv, computed);
	if (strcmp(computed, declared) != 0) {
		log_debug(LOG_CLASS_METADATA,
			  "metadata seal is broken: declared '%s', computed '%s'", declared,
			  computed);
		return -EUCLEAN;
	}
	return 0;
}

int md_kv_decode(const char *buf, size_t len, MdKv **ret)
{
	g_autoptr(MdKv) kv = NULL;
	g_autofree char *declared = NULL;
	const char *p, *end;
	int r;

	if (!buf && len)
		return -EINVAL;
	while (len > 0 && buf[len - 1] == '\0')
		len--;
	if (len > MD_KV_MAX_TEXT)
		return -EUCLEAN;
	if (len > 0 && memchr(buf, '\0', len))
		return -EUCLEAN;
	if (len > 0 && !g_utf8_validate(buf, (gssize)len, NULL))
		return -EUCLEAN;

	kv = md_kv_new();
	p = buf;
	end = len ? buf + len : buf;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;

		decode_line(kv, p, (size_t)(le - p), &declared);
		p = nl ? nl + 1 : end;
	}
	r = check_seal(kv, declared);
	if (r < 0)
		return r;
	*ret = g_steal_pointer(&kv);
	return 0;
}

char *md_kv_encode(const MdKv *kv, size_t *ret_len)
{
	GString *s = g_string_new(NULL);
	char sum[41];

	for (guint i = 0; i < kv->entries->len; i++) {
		const KvEntry *e = &g_array_index(kv->entries, KvEntry, i);
		size_t vlen;
		const char *v = value_stripped(e->value, &vlen);

		g_string_append(s, e->key);
		g_string_append_c(s, '=');
		g_string_append_len(s, v, (gssize)vlen);
		g_string_append_c(s, '\n');
	}
	md_kv_checksum(kv, sum);
	g_string_append_printf(s, "%s=%s\n", MD_KV_CHECKSUM_KEY, sum);
	if (ret_len)
		*ret_len = s->len;
	return g_string_free(s, FALSE);
}

/* VDSM blockSD.py INVALID_CHARS: [^a-zA-Z0-9_+.\-/=!:#] */
static bool tag_char_ok(gunichar c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '+' || c == '.' || c == '-' || c == '/' || c == '=' ||
	       c == '!' || c == ':' || c == '#';
}

static void tag_append(GString *s, const char *text)
{
	for (const char *p = text; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (tag_char_ok(c))
			g_string_append_c(s, (char)c);
		else
			g_string_append_printf(s, "&%u&", (unsigned)c);
	}
}

char *md_kv_tag_encode(const char *key, const char *value)
{
	g_autofree char *vkey = g_utf8_make_valid(key, -1);
	g_autofree char *vval = g_utf8_make_valid(value, -1);
	GString *s = g_string_new(MD_KV_TAG_PREFIX);
	size_t vlen;
	const char *v = value_stripped(vval, &vlen);
	g_autofree char *stripped = g_strndup(v, vlen);

	tag_append(s, vkey);
	g_string_append_c(s, '=');
	tag_append(s, stripped);
	return g_string_free(s, FALSE);
}

/*
 * VDSM lvmTagDecode(): every "&<digits>&" becomes that code point, anything
 * else (a lone '&' included) is kept.  A code point that is not a valid
 * character (or NUL) is -EUCLEAN.
 */
static int tag_decode(const char *t, GString *out)
{
	while (*t) {
		if (*t == '&') {
			const char *d = t + 1;
			guint64 cp = 0;
			size_t nd = 0;

			while (g_ascii_isdigit(*d)) {
				if (cp <= 0x10ffff)
					cp = cp * 10 + (guint64)(*d - '0');
				d++;
				nd++;
			}
			if (nd > 0 && *d == '&') {
				if (cp == 0 || cp > 0x10ffff || !g_unichar_validate((gunichar)cp))
					return -EUCLEAN;
				g_string_append_unichar(out, (gunichar)cp);
				t = d + 1;
				continue;
			}
		}
		g_string_append_c(out, *t);
		t++;
	}
	return 0;
}

int md_kv_decode_tags(const char *const *tags, size_t n_tags, MdKv **ret)
{
	g_autoptr(MdKv) kv = md_kv_new();
	g_autofree char *declared = NULL;
	g_autoptr(GString) line = g_string_new(NULL);
	size_t total = 0;
	int r;

	if (!tags && n_tags)
		return -EINVAL;
	for (size_t i = 0; i < n_tags; i++) {
		const char *t = tags[i];

		if (!t || !g_str_has_prefix(t, MD_KV_TAG_PREFIX))
			continue;
		t += strlen(MD_KV_TAG_PREFIX);
		total += strlen(t);
		if (total > MD_KV_MAX_TEXT)
			return -EUCLEAN;
		g_string_truncate(line, 0);
		r = tag_decode(t, line);
		if (r < 0)
			return r;
		if (!g_utf8_validate(line->str, (gssize)line->len, NULL) ||
		    memchr(line->str, '\n', line->len))
			return -EUCLEAN;
		decode_line(kv, line->str, line->len, &declared);
	}
	r = check_seal(kv, declared);
	if (r < 0)
		return r;
	*ret = g_steal_pointer(&kv);
	return 0;
}
