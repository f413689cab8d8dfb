/*
 * extmap: where an LV's bytes live on its PVs, for I/O without
 * device-mapper.
 *
 * A kernel without device-mapper cannot activate LVs, so the daemon reads
 * and writes an LV's bytes on the PV block devices itself.  An ExtMap is
 * the LV's segment table (lvs --segments) turned into byte arithmetic: it
 * maps a byte range of the LV to pieces (PV index, byte offset on the PV,
 * length), split wherever the range crosses a segment or, on striped
 * segments, a stripe chunk.  The PV index is the caller's: the position of
 * the PV in the arrays given to blk_extmap_new() (block/lvm.c uses the
 * position of the device in its LvmCtx), so the caller keeps one fd per
 * index.
 *
 * Invariants:
 * - An ExtMap is immutable once built and shared by reference count
 *   (thread-safe ref/unref).  Its segments cover logical extents 0..n-1
 *   without gaps; blk_extmap_new() refuses anything else.
 * - Every piece lies inside its PV's extent area:
 *   pe_start + pe_count * extent_size (checked at build time).
 *
 * Replacing a map (an LV extension) goes through an ExtMapHolder:
 *
 *   1. holder = blk_extmap_holder_new(map);
 *   2. each I/O: m = blk_extmap_holder_get(holder);
 *                blk_extmap_map(m, off, len, ...); do the I/O;
 *                blk_extmap_unref(m);
 *   3. after lvextend: blk_extmap_holder_set(holder, new_map);
 *
 * I/O that started before step 3 finishes on the old map, which lives until
 * its last reference goes.  That is safe because lvextend only appends
 * extents: every byte the old map covers is where the new map says it is.
 * Shrinking an LV (lvreduce) is not: the caller must drain I/O on the old
 * map before it reduces.
 *
 * Pure logic, no I/O.  Errors: -EINVAL for a bad table or arguments,
 * -ERANGE for a range past the LV end (or when the table's sizes overflow),
 * -ENOBUFS when the caller's piece array is too small.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <glib.h>

typedef struct ExtMap ExtMap;
typedef struct ExtMapHolder ExtMapHolder;

/* One PV, as the extent arithmetic needs it (pvs pe_start, pv_pe_count). */
typedef struct ExtMapPv {
	uint64_t pe_start; /* byte offset of physical extent 0 on the device */
	uint64_t pe_count; /* number of physical extents on the PV */
} ExtMapPv;

/* One stripe (area) of a segment. */
typedef struct ExtMapStripe {
	uint32_t pv; /* PV index: position in the pvs array of blk_extmap_new() */
	uint64_t pe; /* first physical extent of the area on that PV */
} ExtMapStripe;

/*
 * One segment: logical extents [le, le + extents).  A linear segment has
 * one stripe; a striped one has n_stripes areas of extents / n_stripes
 * extents each, interleaved in chunks of stripe_size bytes.
 */
typedef struct ExtMapSegment {
	uint64_t le;	      /* first logical extent */
	uint64_t extents;     /* length in logical extents, > 0 */
	uint64_t stripe_size; /* bytes per chunk (a power of two, >= 512); unused if linear */
	uint32_t n_stripes;   /* >= 1 */
	const ExtMapStripe *stripes; /* n_stripes areas */
} ExtMapSegment;

/* A contiguous piece of an LV byte range on one PV. */
typedef struct ExtMapPiece {
	uint32_t pv;	 /* PV index */
	uint64_t offset; /* byte offset on the PV device */
	uint64_t len;	 /* bytes, > 0 */
} ExtMapPiece;

/*
 * Builds a map.  extent_size: the VG extent size in bytes (a multiple of
 * 512).  segs must be in logical order and contiguous from extent 0; an
 * empty table is a map of size 0.  The arrays are copied.
 */
int blk_extmap_new(uint64_t extent_size, const ExtMapPv *pvs, size_t n_pvs,
		   const ExtMapSegment *segs, size_t n_segs, ExtMap **ret);
ExtMap *blk_extmap_ref(ExtMap *map);
/*
 * The map of the first size bytes of map's LV: what a reader may use of an
 * LV whose last extents are not ready yet (an extension another host has
 * not finished zeroing).  size: a multiple of the extent size, at most the
 * map's size; -EINVAL otherwise.
 */
int blk_extmap_prefix(const ExtMap *map, uint64_t size, ExtMap **ret);
/* Drops a reference; NULL is fine. */
void blk_extmap_unref(ExtMap *map);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ExtMap, blk_extmap_unref)

/* LV size in bytes: total extents * extent size. */
uint64_t blk_extmap_size(const ExtMap *map);
uint64_t blk_extmap_extent_size(const ExtMap *map);
size_t blk_extmap_n_segments(const ExtMap *map);

/*
 * The first piece of [offset, offset + len): it starts at offset and ends
 * at offset + len or at the next segment or chunk boundary, whichever comes
 * first.  len > 0.  -ERANGE when offset + len is past the LV end.
 */
int blk_extmap_lookup(const ExtMap *map, uint64_t offset, uint64_t len, ExtMapPiece *ret);
/*
 * All pieces of [offset, offset + len), in LV order, into pieces[0..max).
 * len 0 gives no piece.  -ERANGE past the LV end; -ENOBUFS when more than
 * max pieces are needed (nothing useful is in pieces then).
 */
int blk_extmap_map(const ExtMap *map, uint64_t offset, uint64_t len, ExtMapPiece *pieces,
		   size_t max, size_t *ret_n);

/*
 * The current map of one LV, swapped atomically.  new() and set() take a
 * reference of their own (the caller keeps its reference); get() returns a
 * new reference the caller must drop.  All three are thread-safe; get()
 * takes a mutex for a few instructions, never across I/O.
 */
ExtMapHolder *blk_extmap_holder_new(ExtMap *map);
void blk_extmap_holder_free(ExtMapHolder *holder);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ExtMapHolder, blk_extmap_holder_free)
ExtMap *blk_extmap_holder_get(ExtMapHolder *holder);
void blk_extmap_holder_set(ExtMapHolder *holder, ExtMap *map);
