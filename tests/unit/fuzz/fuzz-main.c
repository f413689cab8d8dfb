/*
 * fuzz-main: replays fuzz inputs without libFuzzer (systemd
 * src/fuzz/fuzz-main.c).  Each argument is a file or a directory of files;
 * every file is fed once to LLVMFuzzerTestOneInput().  Fails when no input
 * was found, so a missing corpus does not pass silently.
 */
#include <stdio.h>
#include <string.h>
#include <glib.h>

#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

static int run_file(const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *data = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &data, &len, &error)) {
		fprintf(stderr, "cannot read '%s': %s\n", path, error->message);
		return -1;
	}
	fprintf(stderr, "%s (%zu bytes)\n", path, (size_t)len);
	/* A private copy of exactly len bytes, so ASan sees reads past the end. */
	g_autofree uint8_t *copy = g_memdup2(data, len);
	(void)LLVMFuzzerTestOneInput(copy, len);
	return 0;
}

static int compare(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	size_t n = 0;

	for (int i = 1; i < argc; i++) {
		if (g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
			g_autoptr(GError) error = NULL;
			g_autoptr(GDir) dir = g_dir_open(argv[i], 0, &error);
			g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
			const char *name;

			if (!dir) {
				fprintf(stderr, "cannot open '%s': %s\n", argv[i], error->message);
				return 1;
			}
			while ((name = g_dir_read_name(dir)))
				g_ptr_array_add(names, g_build_filename(argv[i], name, NULL));
			g_ptr_array_sort(names, compare);
			for (guint j = 0; j < names->len; j++) {
				if (run_file(names->pdata[j]) < 0)
					return 1;
				n++;
			}
		} else {
			if (run_file(argv[i]) < 0)
				return 1;
			n++;
		}
	}
	if (n == 0) {
		fprintf(stderr, "no inputs\n");
		return 1;
	}
	fprintf(stderr, "%zu inputs ok\n", n);
	return 0;
}
