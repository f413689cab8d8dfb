/*
 * md-kv: oVirt's KEY=VALUE metadata container and its SHA-1 seal
 * (reference/ovirt-storage-format.md section 3).
 *
 * Domain metadata (and the pool keys inside the master domain's metadata)
 * is a flat dictionary of string keys.  An MdKv keeps the keys sorted in
 * code-point order, which is the order they are written and hashed in.
 * Unknown keys are kept, so a read-modify-write never drops what another
 * writer (oVirt) put there.
 *
 * Pure functions over buffers: no I/O.  Decoders validate everything and
 * return -EUCLEAN for a broken seal or undecodable text, never crash on
 * any input (fuzzed: tests/unit/fuzz/fuzz-kv.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

typedef struct MdKv MdKv;

#define MD_KV_CHECKSUM_KEY "_SHA_CKSUM"
/* Sizes we accept from disk; a longer file is corrupt, not a reason to allocate. */
#define MD_KV_MAX_TEXT (64 * 1024)

MdKv *md_kv_new(void);
MdKv *md_kv_copy(const MdKv *kv);
void md_kv_free(MdKv *kv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MdKv, md_kv_free)

/* NULL when absent. */
const char *md_kv_get(const MdKv *kv, const char *key);
/*
 * Adds or replaces; key must not contain '=' or '\n', value no '\n' (asserted).
 * The value is stored as given (invalid UTF-8 replaced by U+FFFD); like VDSM,
 * md_kv_encode() and the seal use it stripped of surrounding white space.
 */
void md_kv_set(MdKv *kv, const char *key, const char *value);
void md_kv_set_int(MdKv *kv, const char *key, long long value);
/* true when the key was there. */
bool md_kv_remove(MdKv *kv, const char *key);
size_t md_kv_size(const MdKv *kv);
/* The i-th key in sorted order, 0 <= i < size. */
const char *md_kv_key_at(const MdKv *kv, size_t i);
bool md_kv_equal(const MdKv *a, const MdKv *b);

/*
 * The seal of the current keys (40 lowercase hex digits + NUL): SHA-1 over
 * the concatenated "KEY=VALUE" lines, sorted, no separators, with every
 * non-ASCII character replaced by "&#NNNN;" (decimal code point).
 */
void md_kv_checksum(const MdKv *kv, char ret[41]);

/*
 * File backend text: lines "KEY=VALUE\n" (UTF-8).  Trailing NUL bytes are
 * stripped; lines without '=' are ignored; key and value are whitespace-
 * trimmed (VDSM persistent.py strips the value; Python's white space set).
 * A _SHA_CKSUM line is checked and removed: a mismatch is -EUCLEAN.
 * Without one, or with no other key, the data is accepted (as oVirt does).
 * Invalid UTF-8 or a text longer than MD_KV_MAX_TEXT: -EUCLEAN.
 */
int md_kv_decode(const char *buf, size_t len, MdKv **ret);
/* Sorted lines plus the final _SHA_CKSUM line; *ret_len excludes the NUL. */
char *md_kv_encode(const MdKv *kv, size_t *ret_len);

/*
 * Block backend: one VG tag per line, "MDT_" + the line with every
 * character outside [A-Za-z0-9_+.\-/=!:#] written as "&<code point>&".
 */
char *md_kv_tag_encode(const char *key, const char *value);
/* Decodes every MDT_ tag in tags (others are skipped); seal as above. */
int md_kv_decode_tags(const char *const *tags, size_t n_tags, MdKv **ret);
