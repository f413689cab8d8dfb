/*
 * parse: checked number parsing; the only way numbers are parsed from text
 * (atoi and friends are banned).  All functions return 0 or -EINVAL (not a
 * number, trailing garbage, empty) / -ERANGE (out of range) and write
 * *ret only on success.  Leading/trailing white space is not accepted.
 */
#pragma once

#include <stdint.h>

int parse_u64(const char *s, uint64_t *ret);
int parse_i64(const char *s, int64_t *ret);
int parse_u32(const char *s, uint32_t *ret);
int parse_int(const char *s, int *ret);
/* Parses and checks min <= value <= max, -ERANGE otherwise. */
int parse_u64_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
