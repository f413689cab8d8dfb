/*
 * names: the names the tree accepts (CONTRACT.md "The tree").
 *
 * Image and volume names: 1 to 64 of A-Z a-z 0-9 _ . + -, not starting with
 * '.' (reserved for the product) or '-'.  UUIDs: 36-character lowercase
 * textual form.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define NAME_MAX_LEN 64
#define UUID_STR_LEN 36
#define BLANK_UUID "00000000-0000-0000-0000-000000000000"

bool name_is_valid(const char *name);
/* Lowercase canonical UUID text (what pool/domain directories are named). */
bool uuid_is_valid(const char *s);
/* Accepts either case; writes the lowercase form into ret (37 bytes). */
bool uuid_normalize(const char *s, char ret[UUID_STR_LEN + 1]);
/* A new random (version 4) UUID, lowercase; free with g_free. */
char *uuid_new(void);
