/*
 * journal.c: intent records for multi-step operations (record layout in
 * metadata/md-journal.h and docs/journal.md).
 *
 * A domain has MD_JOURNAL_SLOTS record slots.  jrnl_begin() takes a free
 * slot and writes the record durably before the first step; jrnl_end()
 * zeroes it after the last.  Both run with the op lock held, which also
 * protects the slot bitmap.  A failure to clear a record is only logged:
 * replaying a finished operation is harmless, every step being idempotent.
 *
 * jrnl_replay() runs at start, after the scan: every live record is rolled
 * forward (delete, rename, link, header, LV extension) or back (create),
 * through the same *_finish() functions the operations use, then cleared.
 */
#include "domain/model-int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/banned.h"

int jrnl_begin(Domain *d, MdJournalOp op, MdKv *args, int *ret_slot)
{
	MdJournalRecord rec = { 0 };
	void *buf;
	int slot = -1;
	int r;

	g_mutex_lock(&d->jrnl_lock);
	for (int i = 0; i < MD_JOURNAL_SLOTS; i++) {
		if (!(d->jrnl_used & (1ull << i))) {
			slot = i;
			break;
		}
	}
	if (slot >= 0) {
		d->jrnl_used |= 1ull << slot;
		rec.seq = ++d->jrnl_seq;
	}
	g_mutex_unlock(&d->jrnl_lock);
	if (slot < 0)
		return -EAGAIN; /* only with records the last start could not replay */
	rec.op = op;
	rec.time = (int64_t)time(NULL);
	rec.args = args;
	buf = ov_aligned_alloc(MD_JOURNAL_RECORD_SIZE);
	r = md_journal_encode(&rec, buf, MD_JOURNAL_RECORD_SIZE);
	if (r == 0)
		r = d->ops->journal_write(d, (unsigned)slot, buf);
	ov_aligned_free(buf);
	if (r < 0) {
		/* a torn record fails its CRC: replay leaves it alone, the slot is reusable */
		g_mutex_lock(&d->jrnl_lock);
		d->jrnl_used &= ~(1ull << slot);
		g_mutex_unlock(&d->jrnl_lock);
		return r;
	}
	*ret_slot = slot;
	dom_changed(d);
	return 0;
}

int jrnl_clear(Domain *d, int slot)
{
	void *buf;
	int r;

	if (slot < 0)
		return 0;
	buf = ov_aligned_alloc(MD_JOURNAL_RECORD_SIZE);
	memset(buf, 0, MD_JOURNAL_RECORD_SIZE);
	r = d->ops->journal_write(d, (unsigned)slot, buf);
	ov_aligned_free(buf);
	if (r < 0)
		return r; /* the slot stays busy */
	g_mutex_lock(&d->jrnl_lock);
	d->jrnl_used &= ~(1ull << slot);
	g_mutex_unlock(&d->jrnl_lock);
	dom_changed(d);
	return 0;
}

void jrnl_end(Domain *d, int slot)
{
	int r = jrnl_clear(d, slot);

	if (r < 0)
		log_warning_errno(r, "domain '%s': clearing journal slot %d, ignoring", d->uuid,
				  slot);
	/* the slot stays busy: its record is replayed harmlessly */
}

/*
 * A header write that did not finish.  When it was turning an empty raw
 * volume qcow2 (qemu-img create), the writer never got its answer: back to
 * empty raw.  Otherwise the header on disk is the truth: the record follows.
 */
static int replay_header(Domain *d, const char *img, const char *name, bool raw_empty)
{
	Volume *vol = model_find_volume_locked(d, name);
	Volume *parent = NULL;
	MdQcow2Header hdr;
	void *buf = NULL;
	size_t len = 0;
	int r;

	if (!vol || vol->plain || vol->corrupt)
		return 0;
	if (raw_empty) {
		g_autofree char *old_parent = g_strdup(vol->md.parent);
		MdVolume md = vol->md;

		r = d->ops->vol_truncate(d, img, name, 0);
		if (r < 0)
			return r;
		if (md.format == MD_VOL_FORMAT_RAW && md.capacity == 0 && !*md.parent)
			return 0;
		md.format = MD_VOL_FORMAT_RAW;
		md.capacity = 0;
		md.parent[0] = '\0';
		r = vol_write_md_locked(vol, &md);
		if (r == 0 && *old_parent)
			r = vol_fix_role_locked(d, model_find_volume_locked(d, old_parent));
		return r;
	}
	r = vol_read_head(d, img, name, &buf, &len);
	if (r < 0)
		return r;
	r = md_qcow2_parse(buf, len, &hdr);
	ov_aligned_free(buf);
	if (r < 0)
		return 0; /* not (yet) qcow2: the record stands */
	if (hdr.has_backing) {
		const char *b = strrchr(hdr.backing_name, '/');

		parent = model_find_volume_locked(d, b ? b + 1 : hdr.backing_name);
	}
	return vol_apply_header_locked(d, vol, &hdr, parent);
}

static int replay_one(Domain *d, const MdJournalRecord *rec)
{
	const char *img = md_kv_get(rec->args, "image");
	const char *vol = md_kv_get(rec->args, "volume");
	const char *from = md_kv_get(rec->args, "from");
	const char *to = md_kv_get(rec->args, "to");
	const char *link_only = md_kv_get(rec->args, "link_only");
	const char *raw_empty = md_kv_get(rec->args, "raw_empty");

	switch (rec->op) {
	case MD_JOURNAL_OP_VOL_CREATE:
		/* The create never returned success: roll it back. */
		if (!img || !vol)
			return -EUCLEAN;
		return vol_delete_finish(d, img, vol, false);
	case MD_JOURNAL_OP_VOL_DELETE:
		if (!img || !vol)
			return -EUCLEAN;
		return vol_delete_finish(d, img, vol, link_only && strcmp(link_only, "1") == 0);
	case MD_JOURNAL_OP_VOL_RENAME:
		if (!img || !from || !to)
			return -EUCLEAN;
		return vol_rename_finish(d, img, from, to);
	case MD_JOURNAL_OP_IMG_RENAME:
		if (!from || !to)
			return -EUCLEAN;
		return img_rename_finish(d, from, to);
	case MD_JOURNAL_OP_VOL_LINK: {
		Volume *v = vol ? model_find_volume_locked(d, vol) : NULL;
		Image *dst = to ? model_find_image_locked(d, to) : NULL;

		if (!vol || !from || !to)
			return -EUCLEAN;
		if (!v || !dst)
			return 0; /* nothing left to link */
		if (v->md.role != MD_VOL_ROLE_SHARED) {
			MdVolume md = v->md;
			int r;

			md.role = MD_VOL_ROLE_SHARED;
			if ((r = vol_write_md_locked(v, &md)) < 0)
				return r;
		}
		{
			int r = d->ops->vol_link(d, vol, from, to);

			if (r < 0)
				return r;
		}
		g_rw_lock_writer_lock(&d->lock);
		model_link_locked(v, dst);
		g_rw_lock_writer_unlock(&d->lock);
		return 0;
	}
	case MD_JOURNAL_OP_VOL_HEADER:
		if (!img || !vol)
			return -EUCLEAN;
		return replay_header(d, img, vol, raw_empty && strcmp(raw_empty, "1") == 0);
	case MD_JOURNAL_OP_LV_EXTEND: {
		const char *old = md_kv_get(rec->args, "old_size");
		uint64_t old_size = 0;

		if (!d->bd || !vol || !old || parse_u64(old, &old_size) < 0)
			return -EUCLEAN;
		return block_lv_extend_replay(d, vol, old_size);
	}
	default:
		return -EUCLEAN;
	}
}

/*
 * Every slot in one read (slot i at i * MD_JOURNAL_RECORD_SIZE): a journal
 * on a LUN costs one round trip, not 64, and replay works on what the slots
 * held when it started.  -ENOENT: the domain has no journal.
 */
static int read_all(Domain *d, void **ret)
{
	void *buf = ov_aligned_alloc((size_t)MD_JOURNAL_SLOTS * MD_JOURNAL_RECORD_SIZE);
	int r = d->ops->journal_read(d, 0, MD_JOURNAL_SLOTS, buf);

	if (r < 0) {
		ov_aligned_free(buf);
		return r;
	}
	*ret = buf;
	return 0;
}

static const void *slot_of(const void *all, unsigned slot)
{
	return (const char *)all + (size_t)slot * MD_JOURNAL_RECORD_SIZE;
}

int jrnl_replay(Domain *d)
{
	void *all = NULL;
	int r = read_all(d, &all);

	if (r < 0)
		return r == -ENOENT ? 0 : r;
	for (unsigned slot = 0; slot < MD_JOURNAL_SLOTS; slot++) {
		MdJournalRecord rec = { 0 };

		r = md_journal_decode(slot_of(all, slot), MD_JOURNAL_RECORD_SIZE, &rec);
		if (r == -ENODATA)
			continue;
		if (r < 0) {
			log_warning("domain '%s': journal slot %u is corrupt, leaving it alone",
				    d->uuid, slot);
			d->jrnl_used |= 1ull << slot;
			continue;
		}
		d->jrnl_seq = MAX(d->jrnl_seq, rec.seq);
		log_info("domain '%s': finishing interrupted %s (journal slot %u)", d->uuid,
			 md_journal_op_to_string(rec.op), slot);
		r = replay_one(d, &rec);
		md_journal_record_release(&rec);
		if (r < 0) {
			log_warning_errno(r, "domain '%s': replaying journal slot %u, retrying at "
					  "the next start",
					  d->uuid, slot);
			d->jrnl_used |= 1ull << slot;
			continue;
		}
		d->jrnl_used |= 1ull << slot;
		jrnl_end(d, (int)slot);
	}
	ov_aligned_free(all);
	return 0;
}

int jrnl_pending_extends(Domain *d, GHashTable **ret)
{
	g_autoptr(GHashTable) pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
							      g_free);
	void *all = NULL;
	int r = read_all(d, &all);

	if (r < 0 && r != -ENOENT)
		return r;
	for (unsigned slot = 0; all && slot < MD_JOURNAL_SLOTS; slot++) {
		MdJournalRecord rec = { 0 };
		const char *vol, *old;
		uint64_t old_size;

		/* empty, or torn or corrupt: a record the SPM is writing or
		 * clearing; its lvextend has not run yet, or its zeroing is done */
		if (md_journal_decode(slot_of(all, slot), MD_JOURNAL_RECORD_SIZE, &rec) < 0)
			continue;
		vol = md_kv_get(rec.args, "volume");
		old = md_kv_get(rec.args, "old_size");
		if (rec.op == MD_JOURNAL_OP_LV_EXTEND && vol && old &&
		    parse_u64(old, &old_size) == 0) {
			guint64 *prev = g_hash_table_lookup(pending, vol);

			if (!prev)
				g_hash_table_insert(pending, g_strdup(vol),
						    g_memdup2(&old_size, sizeof(old_size)));
			else if (old_size < *prev)
				*prev = old_size;
		}
		md_journal_record_release(&rec);
	}
	ov_aligned_free(all);
	*ret = g_steal_pointer(&pending);
	return 0;
}
