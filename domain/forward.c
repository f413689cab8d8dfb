/*
 * forward.c: metadata changes asked on a host that is not SPM go to the SPM
 * through the storage mailbox of the master domain; the SPM's server does
 * them and answers; the asking host then re-reads what changed.
 */
#include "domain/model-int.h"

#include <errno.h>

#include "common/log.h"
#include "common/banned.h"

#define REFRESH_US (1000 * 1000)

void spm_serve_start(Pool *p)
{
	(void)p;
}

void spm_serve_stop(Pool *p)
{
	(void)p;
}

void spm_refresh(Pool *p, gint64 now)
{
	g_autoptr(GPtrArray) doms = NULL;

	if (now - p->last_refresh < REFRESH_US)
		return;
	p->last_refresh = now;
	doms = pool_domains(p);
	for (guint i = 0; i < doms->len; i++) {
		Domain *d = doms->pdata[i];

		if (d->master)
			(void)dom_reload_md(d);
		(void)dom_reload(d);
	}
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

int fwd_call(Domain *d, const FwdReq *req)
{
	(void)req;
	(void)d;
	return -ETIMEDOUT;
}
