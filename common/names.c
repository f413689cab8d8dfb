#include "common/names.h"

#include <string.h>
#include <glib.h>

#include "common/banned.h"

bool name_is_valid(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strlen(name);
	if (len < 1 || len > NAME_MAX_LEN)
		return false;
	if (name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!g_ascii_isalnum(c) && c != '_' && c != '.' && c != '+' && c != '-')
			return false;
	}
	return true;
}

bool uuid_normalize(const char *s, char ret[UUID_STR_LEN + 1])
{
	char tmp[UUID_STR_LEN + 1];

	if (!s || strlen(s) != UUID_STR_LEN)
		return false;
	for (size_t i = 0; i < UUID_STR_LEN; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!g_ascii_isxdigit(c)) {
			return false;
		}
		tmp[i] = g_ascii_tolower(c);
	}
	tmp[UUID_STR_LEN] = '\0';
	memcpy(ret, tmp, sizeof(tmp));
	return true;
}

bool uuid_is_valid(const char *s)
{
	char norm[UUID_STR_LEN + 1];

	return uuid_normalize(s, norm) && strcmp(norm, s) == 0;
}

char *uuid_new(void)
{
	return g_uuid_string_random();
}
