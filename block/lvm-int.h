/*
 * lvm-int: block/-private parts of the lvm runner, exposed for the unit
 * tests (tests/unit/test-block-report.c) that feed them recorded lvm
 * output instead of running lvm.
 *
 * The report field lists live here so that the runner (lvm.c) asks for
 * exactly what the parsers (lvm-report.c) read.
 */
#pragma once

#include <stddef.h>
#include <glib.h>

#include "block/lvm.h"

#define BLK_PVS_FIELDS                                                                             \
	"pv_name,pv_uuid,vg_name,pv_size,dev_size,pe_start,pv_pe_count,pv_pe_alloc_count,"         \
	"pv_mda_size,pv_mda_free"
#define BLK_VGS_FIELDS                                                                             \
	"vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,vg_extent_count,vg_free_count,vg_tags,"    \
	"vg_mda_size,vg_mda_free,vg_seqno,pv_count,lv_count"
/* With --segments: one row per segment. */
#define BLK_LVS_FIELDS                                                                             \
	"vg_name,lv_name,lv_uuid,lv_size,lv_tags,vg_extent_size,segtype,seg_start_pe,seg_size_pe," \
	"stripes,stripe_size,devices"

/*
 * Parsers of `lvm {pvs,vgs,lvs} --reportformat json --units b --nosuffix
 * -o FIELDS` output (lvm-report.c), into arrays of BlkPv / BlkVg / BlkLv.
 * Values may be JSON strings (lvm 2.03 "json") or numbers and arrays
 * ("json_std").  -EPROTO for anything that is not such a report: invalid
 * JSON, a missing field, a bad number, LV segments that overlap or leave
 * gaps.
 */
int blk_report_parse_pvs(const char *json, size_t len, GPtrArray **ret);
int blk_report_parse_vgs(const char *json, size_t len, GPtrArray **ret);
int blk_report_parse_lvs(const char *json, size_t len, GPtrArray **ret);

/*
 * lvm.c: maps an lvm run to -errno (see lvm.h for the table) and writes
 * the one-line message to msg.  exit_code is lvm's exit status, or -1 when
 * it was killed by a signal.  0 for exit status 0.
 * -EALREADY: lvextend/lvreduce to the current size ("matches existing
 * size"); blk_lv_extend() turns it into success.
 */
int blk_lvm_map_error(int exit_code, const char *err, char *msg, size_t msg_size);
