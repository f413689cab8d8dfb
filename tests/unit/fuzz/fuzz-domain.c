/*
 * Fuzz md_domain_parse() through md_kv_decode().  Never crash; whatever
 * parses keeps parsing after the pool operations.
 */
#include <string.h>
#include <glib.h>

#include "metadata/md-domain.h"
#include "tests/unit/fuzz/fuzz.h"

#include "common/banned.h"

#define POOL "c0c0e1f0-0b1e-4c4e-9d7c-0f0e1d2c3b4c"

static void check_parses(const MdKv *kv)
{
	g_autoptr(MdDomainInfo) info = NULL;

	FUZZ_CHECK(md_domain_parse(kv, &info) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(MdKv) kv = NULL;
	g_autoptr(MdKv) master = NULL;
	g_autoptr(MdKv) attached = NULL;
	g_autoptr(MdDomainInfo) info = NULL;
	g_autoptr(MdDomainInfo) again = NULL;

	if (md_kv_decode((const char *)data, size, &kv) < 0)
		return 0;
	if (md_domain_parse(kv, &info) < 0)
		return 0;
	(void)md_sd_type_to_string(info->type);
	(void)md_sd_class_to_string(info->cls);
	(void)md_sd_role_to_string(info->role);

	master = md_kv_copy(kv);
	md_domain_make_master(master, POOL, info->description, info->master_version + 1);
	check_parses(master);

	attached = md_kv_copy(kv);
	md_domain_attach(attached, POOL);
	check_parses(attached);

	md_domain_set_pool_domains(kv, info->pool_domains, info->n_pool_domains);
	FUZZ_CHECK(md_domain_parse(kv, &again) == 0);
	FUZZ_CHECK(again->n_pool_domains == info->n_pool_domains);
	for (size_t i = 0; i < info->n_pool_domains; i++) {
		const MdPoolDomain *a = &info->pool_domains[i], *b = &again->pool_domains[i];

		FUZZ_CHECK(strcmp(a->uuid, b->uuid) == 0);
		FUZZ_CHECK(strcmp(a->status, b->status) == 0);
	}
	return 0;
}
