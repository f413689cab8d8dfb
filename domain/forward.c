/*
 * forward.c: metadata changes asked on a host that is not SPM go to the SPM
 * through the storage mailbox of the master domain (lease/mailbox.c,
 * docs/mailbox.md); the SPM's server does them with the same model code
 * and answers; the asking host then re-reads the domain.  Every change the
 * SPM makes is published in the mailbox's change log, which the other
 * hosts read every REFRESH interval to re-read what changed (CONTRACT: seen
 * on every host within 2 s).
 */
#include "domain/model-int.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/names.h"
#include "common/banned.h"

/* How often a host that is not SPM reads the change log. */
#define REFRESH_US (250 * 1000)
/* With no change log to go by (no SPM yet): a full re-read this often. */
#define REFRESH_ALL_US (5 * G_USEC_PER_SEC)
/* How long a forwarded change waits for the SPM (behaviour.md). */
#define CALL_TIMEOUT_MS 10000u
/* Host ids the SPM serves: oVirt's default maxHostID. */
#define SERVE_MAX_HOST_ID 250u

static int mbox_location(Domain *m, const char *name, char **ret_path, uint64_t *ret_off)
{
	if (m->bd)
		return block_special_location(m, name, 0, MD_MBOX_AREA_SIZE, ret_path, ret_off);
	*ret_path = g_build_filename(m->dir, "dom_md", name, NULL);
	*ret_off = 0;
	return 0;
}

/* The pool's mailbox (opened on first use; server_lock held). */
static MBox *pool_mbox_locked(Pool *p)
{
	Domain *m;
	g_autofree char *in = NULL, *out = NULL;
	uint64_t in_off = 0, out_off = 0;
	int r;

	if (p->mbox)
		return p->mbox;
	m = pool_master(p);
	if (!m)
		return NULL;
	if ((r = mbox_location(m, "inbox", &in, &in_off)) < 0 ||
	    (r = mbox_location(m, "outbox", &out, &out_off)) < 0 ||
	    (r = mbox_open(in, in_off, out, out_off, lease_host_id(p->st->leases), &p->mbox)) <
		    0) {
		log_warning_errno(r, "pool '%s': opening the mailbox on master '%s'", p->uuid,
				  m->uuid);
		return NULL;
	}
	return p->mbox;
}

static MBox *pool_mbox(Pool *p)
{
	MBox *mb;

	g_mutex_lock(&p->server_lock);
	mb = pool_mbox_locked(p);
	g_mutex_unlock(&p->server_lock);
	return mb;
}

/* ---- the request record ---- */

static const MdMboxOp fwd_to_mbox[FWD_MAX] = {
	[FWD_MKDIR] = MD_MBOX_OP_IMG_MKDIR,
	[FWD_RMDIR] = MD_MBOX_OP_IMG_RMDIR,
	[FWD_RENAME_IMG] = MD_MBOX_OP_IMG_RENAME,
	[FWD_CREATE] = MD_MBOX_OP_VOL_CREATE,
	[FWD_UNLINK] = MD_MBOX_OP_VOL_UNLINK,
	[FWD_RENAME_VOL] = MD_MBOX_OP_VOL_RENAME,
	[FWD_LINK] = MD_MBOX_OP_VOL_LINK,
	[FWD_TRUNCATE] = MD_MBOX_OP_VOL_TRUNCATE,
	[FWD_LEGALITY] = MD_MBOX_OP_VOL_SET_LEGALITY,
	[FWD_DESCRIPTION] = MD_MBOX_OP_VOL_SET_DESCRIPTION,
	[FWD_HEADER] = MD_MBOX_OP_VOL_QCOW2_HEADER,
	[FWD_EXTEND] = MD_MBOX_OP_VOL_EXTEND,
};

static int encode_request(Domain *d, const FwdReq *req, MdMboxRequest *ret)
{
	MdMboxFields *f = &ret->fields;
	int r = 0;

	memset(ret, 0, sizeof(*ret));
	if (req->op <= 0 || req->op >= FWD_MAX)
		return -EINVAL;
	ret->op = fwd_to_mbox[req->op];
	md_mbox_fields_clear(f);
	r = md_mbox_set_str(f, MD_MBOX_F_DOMAIN, d->uuid);
	if (r == 0 && req->img)
		r = md_mbox_set_str(f, MD_MBOX_F_IMAGE, req->img);
	if (r == 0 && req->vol)
		r = md_mbox_set_str(f, MD_MBOX_F_VOLUME, req->vol);
	if (r < 0)
		return r;
	switch (req->op) {
	case FWD_RENAME_IMG:
	case FWD_RENAME_VOL:
		return md_mbox_set_str(f, MD_MBOX_F_NAME, req->to);
	case FWD_LINK:
		return md_mbox_set_str(f, MD_MBOX_F_NEW_IMAGE, req->to);
	case FWD_TRUNCATE:
	case FWD_EXTEND:
		return md_mbox_set_u64(f, MD_MBOX_F_SIZE, req->num);
	case FWD_LEGALITY:
		return md_mbox_set_u64(f, MD_MBOX_F_LEGALITY, req->num);
	case FWD_DESCRIPTION:
		return md_mbox_set_str(f, MD_MBOX_F_DESCRIPTION, req->text);
	case FWD_HEADER:
		/* The SPM reads the header from the volume itself. */
		return md_mbox_set_bytes(f, MD_MBOX_F_BYTES, NULL, 0);
	default:
		return 0;
	}
}

static int decode_request(const MdMboxRequest *m, FwdReq *ret)
{
	const MdMboxFields *f = &m->fields;
	uint64_t v = 0;

	memset(ret, 0, sizeof(*ret));
	for (int op = 1; op < FWD_MAX; op++)
		if (fwd_to_mbox[op] == m->op)
			ret->op = (FwdOp)op;
	if (!ret->op)
		return -EOPNOTSUPP;
	ret->img = md_mbox_get_str(f, MD_MBOX_F_IMAGE);
	ret->vol = md_mbox_get_str(f, MD_MBOX_F_VOLUME);
	ret->text = md_mbox_get_str(f, MD_MBOX_F_DESCRIPTION);
	ret->to = md_mbox_get_str(f, ret->op == FWD_LINK ? MD_MBOX_F_NEW_IMAGE : MD_MBOX_F_NAME);
	if (md_mbox_get_u64(f, MD_MBOX_F_SIZE, &v) == 0 ||
	    md_mbox_get_u64(f, MD_MBOX_F_LEGALITY, &v) == 0)
		ret->num = v;
	return 0;
}

/* ---- the SPM's side ---- */

static int serve_request(const MdMboxRequest *req, MdMboxReply *reply, void *opaque)
{
	Pool *p = opaque;
	const char *dom_uuid = md_mbox_get_str(&req->fields, MD_MBOX_F_DOMAIN);
	Domain *d = dom_uuid ? pool_domain_lookup(p, dom_uuid) : NULL;
	FwdReq fr;
	int r;

	(void)reply;
	if (!d)
		return -ENOENT;
	r = decode_request(req, &fr);
	if (r < 0)
		return r;
	r = fwd_serve(d, &fr);
	log_debug(LOG_CLASS_LEASE, "pool '%s': host %u asked %s on '%s/%s': %s", p->uuid,
		  req->host_id, md_mbox_op_to_string(req->op), fr.img ? fr.img : "",
		  fr.vol ? fr.vol : "", r < 0 ? g_strerror(-r) : "done");
	/* what it changed is published with the SPM's other changes
	 * (dom_changed(), spm_publish_changes()) */
	return r;
}

/* oVirt's xtnd message (from any host, VDSM's too): size in MiB. */
static int serve_extend(unsigned host_id, const MdMboxExtend *x, void *opaque)
{
	Pool *p = opaque;
	Domain *d = pool_domain_lookup(p, x->domain);
	int r;

	if (!d || !d->bd)
		return -ENOENT;
	spm_set_serving(true);
	r = block_lv_grow(d, x->volume, x->size_mib << 20);
	spm_set_serving(false);
	log_debug(LOG_CLASS_LEASE, "pool '%s': host %u asked to extend '%s' to %" G_GUINT64_FORMAT
		  " MiB: %s", p->uuid, host_id, x->volume, x->size_mib,
		  r < 0 ? g_strerror(-r) : "done");
	return r;
}

void spm_publish_changes(Pool *p)
{
	g_autoptr(GPtrArray) doms = pool_domains(p);

	g_mutex_lock(&p->server_lock);
	for (guint i = 0; i < doms->len; i++) {
		Domain *d = doms->pdata[i];

		if (p->serving && g_atomic_int_compare_and_exchange(&d->changed, 1, 0)) {
			int r = mbox_publish_change(p->mbox, d->uuid, "");

			if (r < 0) {
				g_atomic_int_set(&d->changed, 1); /* next time */
				log_warning_errno(r, "pool '%s': publishing a change", p->uuid);
			}
		}
	}
	g_mutex_unlock(&p->server_lock);
}

void spm_serve_start(Pool *p)
{
	static const MBoxServeOps ops = { .request = serve_request, .extend = serve_extend };
	MBox *mb;
	int r;

	g_mutex_lock(&p->server_lock);
	if (p->serving || !(mb = pool_mbox_locked(p))) {
		g_mutex_unlock(&p->server_lock);
		return;
	}
	p->serving = true;
	g_mutex_unlock(&p->server_lock);
	r = mbox_serve_start(mb, SERVE_MAX_HOST_ID, p->lver, &ops, p);
	if (r < 0 && r != -EALREADY) {
		log_error_errno(r, "pool '%s': serving the mailbox", p->uuid);
		g_mutex_lock(&p->server_lock);
		p->serving = false;
		g_mutex_unlock(&p->server_lock);
	}
}

void spm_serve_stop(Pool *p)
{
	MBox *mb;

	g_mutex_lock(&p->server_lock);
	mb = p->serving ? p->mbox : NULL;
	p->serving = false;
	g_mutex_unlock(&p->server_lock);
	if (mb)
		mbox_serve_stop(mb);
}

void spm_mailbox_close(Pool *p)
{
	spm_serve_stop(p);
	g_mutex_lock(&p->server_lock);
	g_clear_pointer(&p->mbox, mbox_free);
	g_mutex_unlock(&p->server_lock);
}

/* ---- a host that is not SPM ---- */

static void reload_pool(Pool *p)
{
	g_autoptr(GPtrArray) doms = pool_domains(p);

	for (guint i = 0; i < doms->len; i++) {
		Domain *d = doms->pdata[i];

		if (d->master)
			(void)dom_reload_md(d);
		(void)dom_reload(d);
	}
}

void spm_refresh(Pool *p, gint64 now)
{
	g_autofree MdMboxChangeLog *log = NULL;
	g_autoptr(GHashTable) doms = NULL;
	MBox *mb;
	size_t first = 0;
	int r;

	if (now - p->last_refresh < REFRESH_US)
		return;
	mb = pool_mbox(p);
	if (!mb)
		return;
	log = g_new0(MdMboxChangeLog, 1);
	r = mbox_read_changes(mb, p->seen_lver, p->seen_seq, log, &first);
	if (r < 0) {
		/* No SPM has written a log yet: nobody changes anything, but look
		 * now and then all the same. */
		if (now - p->last_refresh >= REFRESH_ALL_US) {
			p->last_refresh = now;
			reload_pool(p);
		}
		return;
	}
	p->last_refresh = now;
	if (r == 1) {
		reload_pool(p);
	} else {
		doms = g_hash_table_new(g_str_hash, g_str_equal);
		for (size_t i = first; i < log->n; i++)
			g_hash_table_add(doms, log->entries[i].domain);
		if (g_hash_table_size(doms)) {
			GHashTableIter it;
			gpointer key;

			g_hash_table_iter_init(&it, doms);
			while (g_hash_table_iter_next(&it, &key, NULL)) {
				Domain *d = pool_domain_lookup(p, key);

				if (d)
					(void)dom_reload(d);
			}
		}
	}
	p->seen_lver = log->lver;
	p->seen_seq = log->seq;
}

/* Finds image img's volume vol in d (a new reference), or NULL. */
static Volume *find_volume(Domain *d, const char *img, const char *vol)
{
	g_autoptr(Image) i = img ? dom_image_lookup(d, img) : NULL;

	return i && vol ? img_volume_lookup(i, vol) : NULL;
}

int fwd_serve(Domain *d, const FwdReq *req)
{
	g_autoptr(Image) img = NULL;
	g_autoptr(Volume) vol = NULL;
	int r;

	if (req->op <= 0 || req->op >= FWD_MAX)
		return -EOPNOTSUPP;
	if (req->op == FWD_EXTEND) {
		if (!d->bd || !req->vol)
			return -EINVAL;
		spm_set_serving(true);
		r = block_lv_grow(d, req->vol, req->num);
		spm_set_serving(false);
		return r;
	}
	if (req->op != FWD_MKDIR) {
		img = req->img ? dom_image_lookup(d, req->img) : NULL;
		if (!img)
			return -ENOENT;
	}
	if (req->op != FWD_MKDIR && req->op != FWD_RMDIR && req->op != FWD_RENAME_IMG &&
	    req->op != FWD_CREATE) {
		vol = find_volume(d, req->img, req->vol);
		if (!vol)
			return -ENOENT;
	}
	spm_set_serving(true);
	switch (req->op) {
	case FWD_MKDIR:
		r = req->img ? dom_image_create(d, req->img, NULL) : -EINVAL;
		break;
	case FWD_RMDIR:
		r = img_remove(img);
		break;
	case FWD_RENAME_IMG:
		r = req->to ? img_rename(img, req->to) : -EINVAL;
		break;
	case FWD_CREATE:
		r = req->vol ? img_volume_create(img, req->vol, (mode_t)req->num, NULL) : -EINVAL;
		break;
	case FWD_UNLINK:
		r = vol_unlink(vol, img);
		break;
	case FWD_RENAME_VOL:
		r = req->to ? vol_rename(vol, img, req->to) : -EINVAL;
		break;
	case FWD_LINK: {
		g_autoptr(Image) dst = req->to ? dom_image_lookup(d, req->to) : NULL;

		r = dst ? vol_link(vol, dst) : -ENOENT;
		break;
	}
	case FWD_TRUNCATE:
		r = req->num > INT64_MAX ? -EFBIG : vol_truncate(vol, (off_t)req->num);
		break;
	case FWD_LEGALITY:
		r = vol_set_legality(vol, (MdLegality)req->num);
		break;
	case FWD_DESCRIPTION:
		r = req->text ? vol_set_description(vol, req->text) : -EINVAL;
		break;
	case FWD_HEADER:
		r = vol_learn_header(vol);
		break;
	default:
		r = -EOPNOTSUPP;
		break;
	}
	spm_set_serving(false);
	return r;
}

/*
 * A block domain's images live in memory until a volume names them: the
 * SPM made or dropped one for us, this host does the same in its memory.
 */
static void mirror_block_image(Domain *d, const FwdReq *req)
{
	g_mutex_lock(&d->op_lock);
	if (req->op == FWD_MKDIR) {
		(void)d->ops->image_create(d, req->img, d->st->opt.uid, d->st->opt.gid);
		g_rw_lock_writer_lock(&d->lock);
		if (!model_find_image_locked(d, req->img))
			model_add_image_locked(d, model_image_new(d, req->img));
		g_rw_lock_writer_unlock(&d->lock);
	} else {
		(void)d->ops->image_remove(d, req->img);
	}
	g_mutex_unlock(&d->op_lock);
}

int fwd_extend(Domain *d, const char *vol, uint64_t size)
{
	MBox *mb = pool_mbox(d->pool);
	int r;

	if (!mb)
		return -ETIMEDOUT;
	if (uuid_is_valid(vol) && size % (1 << 20) == 0) {
		r = mbox_extend(mb, d->uuid, vol, size >> 20, CALL_TIMEOUT_MS);
		return r == -EREMOTEIO ? -ENOSPC : r;
	}
	{
		g_autofree MdMboxRequest *m = g_new0(MdMboxRequest, 1);
		g_autofree MdMboxReply *reply = g_new0(MdMboxReply, 1);

		r = encode_request(d, &(FwdReq){ .op = FWD_EXTEND, .vol = vol, .num = size }, m);
		if (r == 0)
			r = mbox_call(mb, m, reply, CALL_TIMEOUT_MS);
		if (reply->state != MD_MBOX_REPLY_DONE && r < 0)
			r = -ETIMEDOUT;
	}
	return r;
}

/*
 * A rename asked here: the object this host's kernel knows moves to its new
 * name before the re-read, so its inode stays valid (elsewhere a rename
 * shows as a removal and an addition).
 */
static void mirror_rename(Domain *d, const FwdReq *req)
{
	const char *from = req->op == FWD_RENAME_IMG ? req->img : req->vol;
	GHashTable *table = req->op == FWD_RENAME_IMG ? d->images : d->volumes;
	gpointer key = NULL, obj = NULL;

	g_mutex_lock(&d->op_lock);
	g_rw_lock_writer_lock(&d->lock);
	if (!g_hash_table_contains(table, req->to) &&
	    g_hash_table_lookup_extended(table, from, &key, &obj)) {
		char **name = req->op == FWD_RENAME_IMG ? &((Image *)obj)->name
							: &((Volume *)obj)->name;

		g_hash_table_steal(table, from);
		g_free(*name);
		*name = g_strdup(req->to);
		g_hash_table_insert(table, *name, obj);
	}
	g_rw_lock_writer_unlock(&d->lock);
	g_mutex_unlock(&d->op_lock);
}

int fwd_call(Domain *d, const FwdReq *req)
{
	g_autofree MdMboxRequest *m = g_new0(MdMboxRequest, 1);
	g_autofree MdMboxReply *reply = g_new0(MdMboxReply, 1);
	MBox *mb = pool_mbox(d->pool);
	int r;

	if (!mb)
		return -ETIMEDOUT; /* no mailbox: no SPM can answer */
	r = encode_request(d, req, m);
	if (r < 0)
		return r == -E2BIG ? -ENAMETOOLONG : r;
	r = mbox_call(mb, m, reply, CALL_TIMEOUT_MS);
	if (reply->state != MD_MBOX_REPLY_DONE && r < 0 && r != -ETIMEDOUT) {
		/* Taken and never answered: the next SPM's recovery decides. */
		log_warning_errno(r, "domain '%s': the SPM did not answer %s in time", d->uuid,
				  md_mbox_op_to_string(m->op));
		r = -ETIMEDOUT;
	}
	if (r == 0 && d->bd && (req->op == FWD_MKDIR || req->op == FWD_RMDIR))
		mirror_block_image(d, req);
	if (r == 0 && (req->op == FWD_RENAME_IMG || req->op == FWD_RENAME_VOL))
		mirror_rename(d, req);
	(void)dom_reload(d);
	return r;
}
