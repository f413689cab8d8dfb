/* Unit tests for block/extmap.c: LV byte ranges to PV byte ranges. */
#include "block/extmap.h"

#include <string.h>
#include <glib.h>

#include "tests/unit/tests.h"

#include "common/banned.h"

#define KIB 1024ull
#define MIB (1024ull * 1024)

static ExtMap *build(uint64_t extent_size, const ExtMapPv *pvs, size_t n_pvs,
		     const ExtMapSegment *segs, size_t n_segs)
{
	ExtMap *map = NULL;

	ASSERT_OK(blk_extmap_new(extent_size, pvs, n_pvs, segs, n_segs, &map));
	ASSERT_NOT_NULL(map);
	return map;
}

static void assert_piece(const ExtMapPiece *p, uint32_t pv, uint64_t offset, uint64_t len)
{
	ASSERT_EQ(p->pv, pv);
	ASSERT_EQ(p->offset, offset);
	ASSERT_EQ(p->len, len);
}

static void test_linear_one_segment(void)
{
	const ExtMapPv pvs[] = { { .pe_start = 1 * MIB, .pe_count = 10 } };
	const ExtMapStripe st[] = { { .pv = 0, .pe = 2 } };
	const ExtMapSegment segs[] = { { .le = 0, .extents = 4, .n_stripes = 1, .stripes = st } };
	g_autoptr(ExtMap) map = build(4 * MIB, pvs, 1, segs, 1);
	const uint64_t base = 1 * MIB + 2 * 4 * MIB;
	ExtMapPiece p[4];
	size_t n = 0;

	ASSERT_EQ(blk_extmap_size(map), 16 * MIB);
	ASSERT_EQ(blk_extmap_extent_size(map), 4 * MIB);
	ASSERT_EQ(blk_extmap_n_segments(map), 1);

	ASSERT_OK(blk_extmap_lookup(map, 0, 512, &p[0]));
	assert_piece(&p[0], 0, base, 512);
	ASSERT_OK(blk_extmap_lookup(map, 5 * MIB + 4096, 8192, &p[0]));
	assert_piece(&p[0], 0, base + 5 * MIB + 4096, 8192);
	/* The last byte, and the whole LV in one piece. */
	ASSERT_OK(blk_extmap_lookup(map, 16 * MIB - 1, 1, &p[0]));
	assert_piece(&p[0], 0, base + 16 * MIB - 1, 1);
	ASSERT_OK(blk_extmap_map(map, 0, 16 * MIB, p, 4, &n));
	ASSERT_EQ(n, 1);
	assert_piece(&p[0], 0, base, 16 * MIB);
}

/*
 * Three segments on two PVs with different pe_start, as lvextend leaves an
 * LV after another LV took the extents behind it:
 *   le 0-2 -> pv0 pe 0-2, le 3-4 -> pv1 pe 10-11, le 5 -> pv0 pe 7
 */
static const ExtMapPv pvs2[] = {
	{ .pe_start = 129 * MIB, .pe_count = 8 },
	{ .pe_start = 1 * MIB, .pe_count = 12 },
};
static const ExtMapStripe st_a[] = { { .pv = 0, .pe = 0 } };
static const ExtMapStripe st_b[] = { { .pv = 1, .pe = 10 } };
static const ExtMapStripe st_c[] = { { .pv = 0, .pe = 7 } };
static const ExtMapSegment segs3[] = {
	{ .le = 0, .extents = 3, .n_stripes = 1, .stripes = st_a },
	{ .le = 3, .extents = 2, .n_stripes = 1, .stripes = st_b },
	{ .le = 5, .extents = 1, .n_stripes = 1, .stripes = st_c },
};
#define EXT (4 * MIB)

static void test_segments_on_two_pvs(void)
{
	g_autoptr(ExtMap) map = build(EXT, pvs2, 2, segs3, 3);
	ExtMapPiece p[8];
	size_t n = 0;

	ASSERT_EQ(blk_extmap_size(map), 6 * EXT);
	ASSERT_EQ(blk_extmap_n_segments(map), 3);

	/* Each segment's first and last byte. */
	ASSERT_OK(blk_extmap_lookup(map, 0, 1, &p[0]));
	assert_piece(&p[0], 0, 129 * MIB, 1);
	ASSERT_OK(blk_extmap_lookup(map, 3 * EXT - 1, 1, &p[0]));
	assert_piece(&p[0], 0, 129 * MIB + 3 * EXT - 1, 1);
	ASSERT_OK(blk_extmap_lookup(map, 3 * EXT, 1, &p[0]));
	assert_piece(&p[0], 1, 1 * MIB + 10 * EXT, 1);
	ASSERT_OK(blk_extmap_lookup(map, 5 * EXT - 1, 1, &p[0]));
	assert_piece(&p[0], 1, 1 * MIB + 12 * EXT - 1, 1);
	ASSERT_OK(blk_extmap_lookup(map, 5 * EXT, 1, &p[0]));
	assert_piece(&p[0], 0, 129 * MIB + 7 * EXT, 1);
	ASSERT_OK(blk_extmap_lookup(map, 6 * EXT - 1, 1, &p[0]));
	assert_piece(&p[0], 0, 129 * MIB + 8 * EXT - 1, 1);

	/* lookup() stops at the segment end. */
	ASSERT_OK(blk_extmap_lookup(map, 3 * EXT - 512, 4096, &p[0]));
	assert_piece(&p[0], 0, 129 * MIB + 3 * EXT - 512, 512);

	/* A range over all three segments splits at both boundaries. */
	ASSERT_OK(blk_extmap_map(map, 3 * EXT - 512, 2 * EXT + 1024, p, 8, &n));
	ASSERT_EQ(n, 3);
	assert_piece(&p[0], 0, 129 * MIB + 3 * EXT - 512, 512);
	assert_piece(&p[1], 1, 1 * MIB + 10 * EXT, 2 * EXT);
	assert_piece(&p[2], 0, 129 * MIB + 7 * EXT, 512);

	/* The whole LV. */
	ASSERT_OK(blk_extmap_map(map, 0, 6 * EXT, p, 8, &n));
	ASSERT_EQ(n, 3);
	assert_piece(&p[0], 0, 129 * MIB, 3 * EXT);
	assert_piece(&p[1], 1, 1 * MIB + 10 * EXT, 2 * EXT);
	assert_piece(&p[2], 0, 129 * MIB + 7 * EXT, EXT);

	/* Starting exactly on a boundary gives no empty piece. */
	ASSERT_OK(blk_extmap_map(map, 3 * EXT, EXT, p, 8, &n));
	ASSERT_EQ(n, 1);
	assert_piece(&p[0], 1, 1 * MIB + 10 * EXT, EXT);

	/* Too small an array. */
	ASSERT_ERROR(blk_extmap_map(map, 0, 6 * EXT, p, 2, &n), ENOBUFS);
	ASSERT_ERROR(blk_extmap_map(map, 0, 1, p, 0, &n), ENOBUFS);
}

static void test_out_of_range(void)
{
	g_autoptr(ExtMap) map = build(EXT, pvs2, 2, segs3, 3);
	const uint64_t size = 6 * EXT;
	ExtMapPiece p[8];
	size_t n = 99;

	ASSERT_ERROR(blk_extmap_lookup(map, size, 1, &p[0]), ERANGE);
	ASSERT_ERROR(blk_extmap_lookup(map, size - 512, 1024, &p[0]), ERANGE);
	ASSERT_ERROR(blk_extmap_lookup(map, 0, size + 1, &p[0]), ERANGE);
	ASSERT_ERROR(blk_extmap_lookup(map, UINT64_MAX, 2, &p[0]), ERANGE);
	ASSERT_ERROR(blk_extmap_lookup(map, 512, UINT64_MAX, &p[0]), ERANGE);
	ASSERT_ERROR(blk_extmap_lookup(map, 0, 0, &p[0]), EINVAL);
	ASSERT_ERROR(blk_extmap_map(map, size, 1, p, 8, &n), ERANGE);
	ASSERT_ERROR(blk_extmap_map(map, size + 1, 0, p, 8, &n), ERANGE);
	ASSERT_ERROR(blk_extmap_map(map, UINT64_MAX, UINT64_MAX, p, 8, &n), ERANGE);
	ASSERT_EQ(n, 99); /* untouched on failure */
	/* An empty range at the very end is fine and has no piece. */
	ASSERT_OK(blk_extmap_map(map, size, 0, p, 8, &n));
	ASSERT_EQ(n, 0);
}

static void test_empty_map(void)
{
	g_autoptr(ExtMap) map = build(EXT, NULL, 0, NULL, 0);
	ExtMapPiece p;
	size_t n = 1;

	ASSERT_EQ(blk_extmap_size(map), 0);
	ASSERT_ERROR(blk_extmap_lookup(map, 0, 1, &p), ERANGE);
	ASSERT_OK(blk_extmap_map(map, 0, 0, &p, 1, &n));
	ASSERT_EQ(n, 0);
}

static void test_bad_tables(void)
{
	const ExtMapPv pv1[] = { { .pe_start = 1 * MIB, .pe_count = 10 } };
	const ExtMapPv odd[] = { { .pe_start = 1 * MIB + 100, .pe_count = 10 } };
	const ExtMapPv huge[] = { { .pe_start = 1 * MIB, .pe_count = UINT64_MAX / 2 } };
	const ExtMapStripe s0[] = { { .pv = 0, .pe = 0 } };
	const ExtMapStripe s8[] = { { .pv = 0, .pe = 8 } };
	const ExtMapStripe bad_pv[] = { { .pv = 1, .pe = 0 } };
	const ExtMapStripe two[] = { { .pv = 0, .pe = 0 }, { .pv = 0, .pe = 5 } };
	ExtMapSegment seg = { .le = 0, .extents = 2, .n_stripes = 1, .stripes = s0 };
	ExtMapSegment gap[] = {
		{ .le = 0, .extents = 2, .n_stripes = 1, .stripes = s0 },
		{ .le = 3, .extents = 1, .n_stripes = 1, .stripes = s8 },
	};
	ExtMapSegment overlap[] = {
		{ .le = 0, .extents = 2, .n_stripes = 1, .stripes = s0 },
		{ .le = 1, .extents = 1, .n_stripes = 1, .stripes = s8 },
	};
	ExtMap *map = NULL;
	ExtMapSegment s;

	ASSERT_ERROR(blk_extmap_new(0, pv1, 1, &seg, 1, &map), EINVAL);
	ASSERT_ERROR(blk_extmap_new(1000, pv1, 1, &seg, 1, &map), EINVAL);
	ASSERT_ERROR(blk_extmap_new(EXT, odd, 1, &seg, 1, &map), EINVAL);
	ASSERT_ERROR(blk_extmap_new(EXT, huge, 1, &seg, 1, &map), ERANGE);
	ASSERT_ERROR(blk_extmap_new(EXT, pv1, 1, gap, 2, &map), EINVAL);
	ASSERT_ERROR(blk_extmap_new(EXT, pv1, 1, overlap, 2, &map), EINVAL);

	s = seg;
	s.le = 1; /* does not start at extent 0 */
	ASSERT_ERROR(blk_extmap_new(EXT, pv1, 1, &s, 1, &map), EINVAL);
	s = seg;
	s.extents = 0;
	ASSERT_ERROR(blk_extmap_new(EXT, pv1, 1, &s, 1, &map), EINVAL);
	s = seg;
	s.stripes = bad_pv;
	ASSERT_ERROR(blk_extmap_new(EXT, pv1, 1, &s, 1, &map), EINVAL);
	s = seg;
	s.stripes = s8;
	s.extents = 3; /* pe 8..10 on a PV of 10 extents */
	ASSERT_ERROR(blk_extmap_new(EXT, pv1, 1, &s, 1, &map), EINVAL);
	s.extents = 2; /* pe 8..9: the last two, fine */
	ASSERT_OK(blk_extmap_new(EXT, pv1, 1, &s, 1, &map));
	blk_extmap_unref(map);
	map = NULL;
	s = seg;
	s.n_stripes = 0;
	ASSERT_ERROR(blk_extmap_new(EXT, pv1, 1, &s, 1, &map), EINVAL);
	s = seg;
	s.stripes = NULL;
	ASSERT_ERROR(blk_extmap_new(EXT, pv1, 1, &s, 1, &map), EINVAL);

	/* Striped: extents a multiple of the stripes, chunk a power of two >= 512. */
	s = (ExtMapSegment){ .le = 0, .extents = 3, .n_stripes = 2, .stripe_size = 64 * KIB,
			     .stripes = two };
	ASSERT_ERROR(blk_extmap_new(EXT, pv1, 1, &s, 1, &map), EINVAL);
	s.extents = 4;
	s.stripe_size = 48 * KIB;
	ASSERT_ERROR(blk_extmap_new(EXT, pv1, 1, &s, 1, &map), EINVAL);
	s.stripe_size = 256;
	ASSERT_ERROR(blk_extmap_new(EXT, pv1, 1, &s, 1, &map), EINVAL);
	s.stripe_size = 8 * MIB; /* larger than an area of 2 extents of 4 MiB is fine... */
	ASSERT_OK(blk_extmap_new(EXT, pv1, 1, &s, 1, &map));
	blk_extmap_unref(map);
	map = NULL;
	s.stripe_size = 16 * MIB; /* ...one that does not divide the area is not */
	ASSERT_ERROR(blk_extmap_new(EXT, pv1, 1, &s, 1, &map), EINVAL);

	/* Extents whose byte size overflows. */
	s = seg;
	s.extents = UINT64_MAX / 2;
	ASSERT_ERROR(blk_extmap_new(EXT, huge, 1, &s, 1, &map), ERANGE);
	ASSERT_NULL(map);
}

/*
 * Striped: 2 areas of 2 extents, 64 KiB chunks.  LV chunk k is in area
 * k % 2, row k / 2.
 */
/* Prefixes of segs3: whole segments, a cut one, nothing; bad sizes refused. */
static void test_prefix(void)
{
	g_autoptr(ExtMap) map = build(EXT, pvs2, 2, segs3, 3);
	g_autoptr(ExtMap) four = NULL;
	g_autoptr(ExtMap) none = NULL;
	g_autoptr(ExtMap) all = NULL;
	ExtMapPiece p[8];
	size_t n = 0;

	ASSERT_OK(blk_extmap_prefix(map, 4 * EXT, &four));
	ASSERT_EQ(blk_extmap_size(four), 4 * EXT);
	ASSERT_EQ(blk_extmap_n_segments(four), 2);
	/* the second segment is cut after its first extent */
	ASSERT_OK(blk_extmap_map(four, 2 * EXT, 2 * EXT, p, 8, &n));
	ASSERT_EQ(n, 2);
	assert_piece(&p[0], 0, 129 * MIB + 2 * EXT, EXT);
	assert_piece(&p[1], 1, 1 * MIB + 10 * EXT, EXT);
	ASSERT_EQ(blk_extmap_lookup(four, 4 * EXT, 1, &p[0]), -ERANGE);
	ASSERT_EQ(blk_extmap_lookup(four, 4 * EXT - 1, 2, &p[0]), -ERANGE);
	ASSERT_OK(blk_extmap_prefix(map, 0, &none));
	ASSERT_EQ(blk_extmap_size(none), 0);
	ASSERT_EQ(blk_extmap_lookup(none, 0, 1, &p[0]), -ERANGE);
	ASSERT_OK(blk_extmap_prefix(map, 6 * EXT, &all));
	ASSERT_EQ(blk_extmap_n_segments(all), 3);
	ASSERT_EQ(blk_extmap_prefix(map, 7 * EXT, &all), -EINVAL);
	ASSERT_EQ(blk_extmap_prefix(map, EXT + 512, &all), -EINVAL);
}

static void test_striped(void)
{
	const ExtMapPv pvs[] = { { .pe_start = 1 * MIB, .pe_count = 10 },
				 { .pe_start = 2 * MIB, .pe_count = 10 } };
	const ExtMapStripe st[] = { { .pv = 0, .pe = 0 }, { .pv = 1, .pe = 5 } };
	const ExtMapStripe lin[] = { { .pv = 0, .pe = 4 } };
	const ExtMapSegment segs[] = {
		{ .le = 0, .extents = 4, .n_stripes = 2, .stripe_size = 64 * KIB, .stripes = st },
		{ .le = 4, .extents = 1, .n_stripes = 1, .stripes = lin },
	};
	g_autoptr(ExtMap) map = build(1 * MIB, pvs, 2, segs, 2);
	const uint64_t a0 = 1 * MIB, a1 = 2 * MIB + 5 * MIB;
	ExtMapPiece p[8];
	size_t n = 0;

	ASSERT_EQ(blk_extmap_size(map), 5 * MIB);
	ASSERT_OK(blk_extmap_lookup(map, 0, 512, &p[0]));
	assert_piece(&p[0], 0, a0, 512);
	ASSERT_OK(blk_extmap_lookup(map, 64 * KIB, 512, &p[0]));
	assert_piece(&p[0], 1, a1, 512);
	ASSERT_OK(blk_extmap_lookup(map, 128 * KIB + 4096, 512, &p[0]));
	assert_piece(&p[0], 0, a0 + 64 * KIB + 4096, 512);
	ASSERT_OK(blk_extmap_lookup(map, 3 * 64 * KIB, 512, &p[0]));
	assert_piece(&p[0], 1, a1 + 64 * KIB, 512);
	/* The last chunk of the striped segment: chunk 63, area 1, row 31. */
	ASSERT_OK(blk_extmap_lookup(map, 4 * MIB - 512, 512, &p[0]));
	assert_piece(&p[0], 1, a1 + 31 * 64 * KIB + 64 * KIB - 512, 512);

	/* Chunk boundaries split; then the linear segment. */
	ASSERT_OK(blk_extmap_map(map, 64 * KIB - 512, 64 * KIB + 1024, p, 8, &n));
	ASSERT_EQ(n, 3);
	assert_piece(&p[0], 0, a0 + 64 * KIB - 512, 512);
	assert_piece(&p[1], 1, a1, 64 * KIB);
	assert_piece(&p[2], 0, a0 + 64 * KIB, 512);
	ASSERT_OK(blk_extmap_map(map, 4 * MIB - 512, 1024, p, 8, &n));
	ASSERT_EQ(n, 2);
	assert_piece(&p[0], 1, a1 + 2 * MIB - 512, 512);
	assert_piece(&p[1], 0, 1 * MIB + 4 * MIB, 512);
}

/* Where LV byte x is, computed the slow way from the table. */
static void naive(uint64_t extent_size, const ExtMapPv *pvs, const ExtMapSegment *segs,
		  size_t n_segs, uint64_t x, uint32_t *ret_pv, uint64_t *ret_off)
{
	for (size_t i = 0; i < n_segs; i++) {
		const ExtMapSegment *s = &segs[i];
		uint64_t start = s->le * extent_size, len = s->extents * extent_size;

		if (x < start || x >= start + len)
			continue;
		if (s->n_stripes == 1) {
			*ret_pv = s->stripes[0].pv;
			*ret_off = pvs[*ret_pv].pe_start + s->stripes[0].pe * extent_size +
				   (x - start);
		} else {
			uint64_t in = x - start, chunk = in / s->stripe_size;
			const ExtMapStripe *st = &s->stripes[chunk % s->n_stripes];

			*ret_pv = st->pv;
			*ret_off = pvs[st->pv].pe_start + st->pe * extent_size +
				   (chunk / s->n_stripes) * s->stripe_size + in % s->stripe_size;
		}
		return;
	}
	TEST_FAIL("byte %" PRIu64 " not in any segment", x);
}

/*
 * A prefix of map, at a random extent boundary, maps every range below its
 * end to the same pieces as map does, and refuses ranges past its end.
 */
static void check_random_prefix(GRand *rand, const ExtMap *map, uint64_t extent_size)
{
	uint64_t extents = blk_extmap_size(map) / extent_size;
	uint64_t size = extent_size * (uint64_t)g_rand_int_range(rand, 0, (gint32)extents + 1);
	g_autoptr(ExtMap) pre = NULL;
	ExtMapPiece a[256], b[256];
	size_t na = 0, nb = 0;

	ASSERT_OK(blk_extmap_prefix(map, size, &pre));
	ASSERT_EQ(blk_extmap_size(pre), size);
	for (int q = 0; q < 20 && size > 0; q++) {
		/* the first range ends at the prefix's end */
		uint64_t off = q == 0 ? size - MIN(size, 30000)
				      : (uint64_t)g_rand_double_range(rand, 0, (double)size);
		uint64_t want = (uint64_t)g_rand_int_range(rand, 1, 40000);
		uint64_t len = q == 0 ? size - off : MIN(size - off, want);

		ASSERT_OK(blk_extmap_map(pre, off, len, a, G_N_ELEMENTS(a), &na));
		ASSERT_OK(blk_extmap_map(map, off, len, b, G_N_ELEMENTS(b), &nb));
		ASSERT_EQ(na, nb);
		ASSERT_TRUE(memcmp(a, b, na * sizeof(a[0])) == 0);
	}
	ASSERT_EQ(blk_extmap_lookup(pre, size, 1, &a[0]), -ERANGE);
	if (size > 0)
		ASSERT_EQ(blk_extmap_map(pre, size - 1, 2, a, G_N_ELEMENTS(a), &na), -ERANGE);
}

/* Random tables; every piece of random ranges checked against naive(). */
static void test_random_tables(void)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(20240611);

	for (int round = 0; round < 200; round++) {
		const uint64_t extent_size = 512ull << g_rand_int_range(rand, 0, 6);
		ExtMapPv pvs[4];
		ExtMapSegment segs[8];
		ExtMapStripe stripes[8][4];
		uint64_t next_pe[4] = { 0 }, le = 0;
		size_t n_segs = (size_t)g_rand_int_range(rand, 1, 9);
		g_autoptr(ExtMap) map = NULL;

		for (int i = 0; i < 4; i++)
			pvs[i] = (ExtMapPv){ .pe_start = 512ull * g_rand_int_range(rand, 0, 300),
					     .pe_count = 1000 };
		for (size_t i = 0; i < n_segs; i++) {
			uint32_t n_st =
				g_rand_boolean(rand) ? 1 : (uint32_t)g_rand_int_range(rand, 2, 5);
			uint64_t area = (uint64_t)g_rand_int_range(rand, 1, 6);
			uint64_t chunk = 512ull << g_rand_int_range(rand, 0, 3);

			for (uint32_t k = 0; k < n_st; k++) {
				uint32_t pv = (uint32_t)g_rand_int_range(rand, 0, 4);

				next_pe[pv] += (uint64_t)g_rand_int_range(rand, 0, 3);
				stripes[i][k] = (ExtMapStripe){ .pv = pv, .pe = next_pe[pv] };
				next_pe[pv] += area;
			}
			segs[i] = (ExtMapSegment){ .le = le, .extents = area * n_st,
						   .n_stripes = n_st,
						   .stripe_size = MIN(extent_size, chunk),
						   .stripes = stripes[i] };
			le += area * n_st;
		}
		map = build(extent_size, pvs, 4, segs, n_segs);
		ASSERT_EQ(blk_extmap_size(map), le * extent_size);

		for (int q = 0; q < 50; q++) {
			uint64_t size = blk_extmap_size(map);
			uint64_t off = (uint64_t)g_rand_double_range(rand, 0, (double)size);
			uint64_t want = (uint64_t)g_rand_int_range(rand, 0, 40000);
			uint64_t len = MIN(size - off, want);
			ExtMapPiece p[256];
			size_t n = 0;
			uint64_t x = off;

			ASSERT_OK(blk_extmap_map(map, off, len, p, G_N_ELEMENTS(p), &n));
			for (size_t i = 0; i < n; i++) {
				uint32_t pv;
				uint64_t expect, last_pv_off;

				ASSERT_TRUE(p[i].len > 0);
				/* First and last byte of the piece: contiguous on one PV. */
				naive(extent_size, pvs, segs, n_segs, x, &pv, &expect);
				ASSERT_EQ(p[i].pv, pv);
				ASSERT_EQ(p[i].offset, expect);
				naive(extent_size, pvs, segs, n_segs, x + p[i].len - 1, &pv,
				      &last_pv_off);
				ASSERT_EQ(p[i].pv, pv);
				ASSERT_EQ(last_pv_off, p[i].offset + p[i].len - 1);
				x += p[i].len;
			}
			ASSERT_EQ(x, off + len);
		}
		check_random_prefix(rand, map, extent_size);
	}
}

/* Holder: readers keep the map they got while a writer swaps maps. */

typedef struct Stress {
	ExtMapHolder *holder;
	gint stop;
	gint reads;
} Stress;

static gpointer reader(gpointer data)
{
	Stress *s = data;

	while (!g_atomic_int_get(&s->stop)) {
		g_autoptr(ExtMap) m = blk_extmap_holder_get(s->holder);
		ExtMapPiece p;
		uint64_t size = blk_extmap_size(m);

		/* The map stays whole while we hold it, whatever the writer does. */
		ASSERT_OK(blk_extmap_lookup(m, size - 512, 512, &p));
		ASSERT_EQ(p.len, 512);
		g_atomic_int_inc(&s->reads);
	}
	return NULL;
}

static ExtMap *map_of_extents(uint64_t extents)
{
	const ExtMapPv pv[] = { { .pe_start = 0, .pe_count = 1u << 20 } };
	const ExtMapStripe st[] = { { .pv = 0, .pe = 0 } };
	const ExtMapSegment seg = { .le = 0, .extents = extents, .n_stripes = 1, .stripes = st };

	return build(MIB, pv, 1, &seg, 1);
}

static void test_holder(void)
{
	g_autoptr(ExtMap) first = map_of_extents(1);
	g_autoptr(ExtMap) second = map_of_extents(2);
	g_autoptr(ExtMapHolder) holder = blk_extmap_holder_new(first);
	ExtMap *got, *old;
	GThread *threads[4];
	Stress s = { 0 };

	got = blk_extmap_holder_get(holder);
	ASSERT_TRUE(got == first);
	/* An I/O in flight keeps the old map after the swap. */
	old = got;
	blk_extmap_holder_set(holder, second);
	got = blk_extmap_holder_get(holder);
	ASSERT_TRUE(got == second);
	ASSERT_EQ(blk_extmap_size(old), 1 * MIB);
	ASSERT_EQ(blk_extmap_size(got), 2 * MIB);
	blk_extmap_unref(old);
	blk_extmap_unref(got);
	blk_extmap_holder_free(NULL);
	blk_extmap_unref(NULL);

	/* Swaps under load: ASan/TSan find a use after free if refs are wrong. */
	s.holder = holder;
	for (size_t i = 0; i < G_N_ELEMENTS(threads); i++)
		threads[i] = g_thread_new("reader", reader, &s);
	for (uint64_t i = 0; i < 2000; i++) {
		ExtMap *m = map_of_extents(1 + i % 7);

		blk_extmap_holder_set(holder, m);
		blk_extmap_unref(m); /* the holder (and readers) keep it alive */
		if (i % 100 == 0)
			g_thread_yield();
	}
	g_atomic_int_set(&s.stop, 1);
	for (size_t i = 0; i < G_N_ELEMENTS(threads); i++)
		g_thread_join(threads[i]);
	ASSERT_TRUE(g_atomic_int_get(&s.reads) > 0);
}

int main(void)
{
	TEST_RUN(test_linear_one_segment);
	TEST_RUN(test_segments_on_two_pvs);
	TEST_RUN(test_out_of_range);
	TEST_RUN(test_empty_map);
	TEST_RUN(test_bad_tables);
	TEST_RUN(test_prefix);
	TEST_RUN(test_striped);
	TEST_RUN(test_random_tables);
	TEST_RUN(test_holder);
	return 0;
}
