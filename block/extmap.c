/*
 * extmap: LV byte ranges to PV byte ranges.  See extmap.h.
 *
 * A map is an array of segments sorted by their first LV byte, searched by
 * bisection, and an array of areas (one per stripe of each segment, the
 * byte offset where the area starts on its PV).  For a linear segment the
 * PV offset of LV byte x is area.base + (x - seg.start).  For a striped
 * segment of n areas and chunk size c (dm-stripe's layout, which LVM uses):
 *
 *   in = x - seg.start, chunk = in / c
 *   area = chunk % n, row = chunk / n
 *   PV offset = areas[area].base + row * c + in % c
 *
 * and a piece ends at the end of its chunk.
 *
 * Replacing maps: ExtMapHolder keeps the current map under a mutex that is
 * held only to load the pointer and take a reference (get) or to store a
 * new pointer (set).  The old map is unreferenced after the mutex is
 * dropped, so the free, if it is the last reference, happens outside it.
 * Without the mutex a reader could load the pointer, be preempted while the
 * writer swaps and drops the last reference, and then take a reference on
 * freed memory.
 */
#include "block/extmap.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "common/log.h"

#include "common/banned.h"

#define SECTOR 512u

typedef struct Seg {
	uint64_t start;	    /* first LV byte */
	uint64_t len;	    /* bytes */
	uint64_t chunk;	    /* stripe chunk in bytes; == len when linear */
	uint32_t n_stripes; /* areas of this segment */
	size_t first_area;  /* index of its first area in ExtMap.areas */
} Seg;

typedef struct Area {
	uint32_t pv;   /* PV index */
	uint64_t base; /* byte offset of the area on the PV */
} Area;

struct ExtMap {
	gint refs; /* atomic */
	uint64_t extent_size;
	uint64_t size; /* LV bytes */
	size_t n_segs;
	Seg *segs;
	size_t n_areas;
	Area *areas;
};

struct ExtMapHolder {
	/* A pthread mutex rather than a GMutex: ThreadSanitizer sees it. */
	pthread_mutex_t lock;
	ExtMap *map; /* protected by lock; never NULL */
};

static bool is_pow2(uint64_t x)
{
	return x && (x & (x - 1)) == 0;
}

static int bad_table(const char *what, size_t seg)
{
	log_debug(LOG_CLASS_BLOCK, "extent map: %s (segment %zu)", what, seg);
	return -EINVAL;
}

static void extmap_free(ExtMap *map)
{
	g_free(map->segs);
	g_free(map->areas);
	g_free(map);
}

/* Checks one segment and appends its Seg and areas; *next_le advances. */
static int add_segment(ExtMap *map, const ExtMapPv *pvs, size_t n_pvs, const ExtMapSegment *s,
		       size_t i, uint64_t *next_le)
{
	uint64_t area_extents, area_bytes, end_le, start, len;
	Seg *seg = &map->segs[i];

	if (s->le != *next_le)
		return bad_table("segments are not contiguous", i);
	if (s->extents == 0 || s->n_stripes == 0 || !s->stripes)
		return bad_table("empty segment", i);
	if (s->extents % s->n_stripes != 0)
		return bad_table("extents not a multiple of the stripes", i);
	if (__builtin_add_overflow(s->le, s->extents, &end_le) ||
	    __builtin_mul_overflow(s->le, map->extent_size, &start) ||
	    __builtin_mul_overflow(s->extents, map->extent_size, &len) ||
	    __builtin_mul_overflow(end_le, map->extent_size, &map->size))
		return -ERANGE;

	area_extents = s->extents / s->n_stripes;
	area_bytes = area_extents * map->extent_size; /* <= len, no overflow */
	if (s->n_stripes > 1) {
		if (!is_pow2(s->stripe_size) || s->stripe_size < SECTOR)
			return bad_table("bad stripe size", i);
		if (area_bytes % s->stripe_size != 0)
			return bad_table("stripe area not a multiple of the stripe size", i);
	}

	seg->start = start;
	seg->len = len;
	seg->chunk = s->n_stripes > 1 ? s->stripe_size : len;
	seg->n_stripes = s->n_stripes;
	seg->first_area = map->n_areas;

	for (uint32_t k = 0; k < s->n_stripes; k++) {
		const ExtMapStripe *st = &s->stripes[k];
		uint64_t end_pe, base;

		if (st->pv >= n_pvs)
			return bad_table("unknown PV index", i);
		if (__builtin_add_overflow(st->pe, area_extents, &end_pe) ||
		    end_pe > pvs[st->pv].pe_count)
			return bad_table("extents past the end of the PV", i);
		/* pe_start + pe_count * extent_size was checked not to overflow. */
		base = pvs[st->pv].pe_start + st->pe * map->extent_size;
		map->areas[map->n_areas++] = (Area){ .pv = st->pv, .base = base };
	}
	*next_le = end_le;
	return 0;
}

int blk_extmap_new(uint64_t extent_size, const ExtMapPv *pvs, size_t n_pvs,
		   const ExtMapSegment *segs, size_t n_segs, ExtMap **ret)
{
	ExtMap *map;
	size_t n_areas = 0;
	uint64_t next_le = 0;
	int r;

	if (extent_size == 0 || extent_size % SECTOR != 0)
		return bad_table("bad extent size", 0);
	if (n_pvs > UINT32_MAX || (n_pvs && !pvs) || (n_segs && !segs))
		return -EINVAL;
	for (size_t i = 0; i < n_pvs; i++) {
		uint64_t bytes, end;

		if (pvs[i].pe_start % SECTOR != 0)
			return bad_table("PV extent area not sector aligned", 0);
		if (__builtin_mul_overflow(pvs[i].pe_count, extent_size, &bytes) ||
		    __builtin_add_overflow(pvs[i].pe_start, bytes, &end))
			return -ERANGE;
	}
	for (size_t i = 0; i < n_segs; i++) {
		if (segs[i].n_stripes == 0 || segs[i].n_stripes > 1024)
			return bad_table("bad number of stripes", i);
		n_areas += segs[i].n_stripes;
	}

	map = g_new0(ExtMap, 1);
	map->refs = 1;
	map->extent_size = extent_size;
	map->n_segs = n_segs;
	map->segs = g_new0(Seg, n_segs ? n_segs : 1);
	map->areas = g_new0(Area, n_areas ? n_areas : 1);
	for (size_t i = 0; i < n_segs; i++) {
		r = add_segment(map, pvs, n_pvs, &segs[i], i, &next_le);
		if (r < 0) {
			extmap_free(map);
			return r;
		}
	}
	*ret = map;
	return 0;
}

int blk_extmap_prefix(const ExtMap *map, uint64_t size, ExtMap **ret)
{
	ExtMap *m;

	if (size > map->size || size % map->extent_size != 0)
		return -EINVAL;
	m = g_new0(ExtMap, 1);
	m->refs = 1;
	m->extent_size = map->extent_size;
	m->size = size;
	/* the segments that start below size, the last one cut at size; a
	 * striped segment cut short keeps its chunk arithmetic (lookups never
	 * depend on a segment's length) */
	while (m->n_segs < map->n_segs && map->segs[m->n_segs].start < size)
		m->n_segs++;
	m->segs = g_new0(Seg, m->n_segs ? m->n_segs : 1);
	if (m->n_segs) {
		Seg *last;

		memcpy(m->segs, map->segs, m->n_segs * sizeof(Seg));
		last = &m->segs[m->n_segs - 1];
		last->len = MIN(last->len, size - last->start);
		if (last->n_stripes == 1)
			last->chunk = last->len;
	}
	m->n_areas = map->n_areas;
	m->areas = g_memdup2(map->areas, (map->n_areas ? map->n_areas : 1) * sizeof(Area));
	*ret = m;
	return 0;
}

ExtMap *blk_extmap_ref(ExtMap *map)
{
	g_assert(map);
	g_atomic_int_inc(&map->refs);
	return map;
}

void blk_extmap_unref(ExtMap *map)
{
	if (map && g_atomic_int_dec_and_test(&map->refs))
		extmap_free(map);
}

uint64_t blk_extmap_size(const ExtMap *map)
{
	return map->size;
}

uint64_t blk_extmap_extent_size(const ExtMap *map)
{
	return map->extent_size;
}

size_t blk_extmap_n_segments(const ExtMap *map)
{
	return map->n_segs;
}

static bool in_range(const ExtMap *map, uint64_t offset, uint64_t len)
{
	return len <= map->size && offset <= map->size - len;
}

/* The segment holding LV byte offset (< map->size). */
static const Seg *find_segment(const ExtMap *map, uint64_t offset)
{
	size_t lo = 0, hi = map->n_segs;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (map->segs[mid].start <= offset)
			lo = mid;
		else
			hi = mid;
	}
	return &map->segs[lo];
}

int blk_extmap_lookup(const ExtMap *map, uint64_t offset, uint64_t len, ExtMapPiece *ret)
{
	const Seg *seg;
	uint64_t in, chunk, within, row;
	const Area *area;

	if (len == 0)
		return -EINVAL;
	if (!in_range(map, offset, len))
		return -ERANGE;

	seg = find_segment(map, offset);
	in = offset - seg->start;
	chunk = in / seg->chunk;
	within = in % seg->chunk;
	row = chunk / seg->n_stripes;
	area = &map->areas[seg->first_area + chunk % seg->n_stripes];

	ret->pv = area->pv;
	ret->offset = area->base + row * seg->chunk + within;
	ret->len = MIN(len, seg->chunk - within);
	return 0;
}

int blk_extmap_map(const ExtMap *map, uint64_t offset, uint64_t len, ExtMapPiece *pieces,
		   size_t max, size_t *ret_n)
{
	size_t n = 0;
	int r;

	if (!in_range(map, offset, len))
		return -ERANGE;
	while (len > 0) {
		if (n == max)
			return -ENOBUFS;
		r = blk_extmap_lookup(map, offset, len, &pieces[n]);
		if (r < 0)
			return r;
		offset += pieces[n].len;
		len -= pieces[n].len;
		n++;
	}
	*ret_n = n;
	return 0;
}

ExtMapHolder *blk_extmap_holder_new(ExtMap *map)
{
	ExtMapHolder *holder = g_new0(ExtMapHolder, 1);

	pthread_mutex_init(&holder->lock, NULL);
	holder->map = blk_extmap_ref(map);
	return holder;
}

void blk_extmap_holder_free(ExtMapHolder *holder)
{
	if (!holder)
		return;
	blk_extmap_unref(holder->map);
	pthread_mutex_destroy(&holder->lock);
	g_free(holder);
}

ExtMap *blk_extmap_holder_get(ExtMapHolder *holder)
{
	ExtMap *map;

	pthread_mutex_lock(&holder->lock);
	map = blk_extmap_ref(holder->map);
	pthread_mutex_unlock(&holder->lock);
	return map;
}

void blk_extmap_holder_set(ExtMapHolder *holder, ExtMap *map)
{
	ExtMap *old;

	blk_extmap_ref(map);
	pthread_mutex_lock(&holder->lock);
	old = holder->map;
	holder->map = map;
	pthread_mutex_unlock(&holder->lock);
	blk_extmap_unref(old);
}
