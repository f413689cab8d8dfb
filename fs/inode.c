/*
 * inode.c: the inode table.  An inode number is handed out once per object
 * and never reused during a mount (64-bit counter), so the generation is
 * always 0.  The same Volume seen through two images (a template) is one
 * node: one inode, st_nlink = the number of images.
 */
#include "fs/fs-int.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/banned.h"

static void node_free(gpointer p)
{
	Node *n = p;

	if (n->img)
		img_unref(n->img);
	if (n->vol)
		vol_unref(n->vol);
	g_free(n);
}

void nodes_init(Fs *fs)
{
	g_mutex_init(&fs->nodes_lock);
	fs->by_ino = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, node_free);
	fs->by_obj = g_hash_table_new(NULL, NULL);
	fs->next_ino = FUSE_ROOT_ID + 1;
	fs->root = g_new0(Node, 1);
	fs->root->ino = FUSE_ROOT_ID;
	fs->root->kind = NODE_ROOT;
	fs->root->nlookup = 1;
	g_hash_table_insert(fs->by_ino, &fs->root->ino, fs->root);
}

void nodes_release(Fs *fs)
{
	if (!fs->by_ino)
		return;
	g_hash_table_unref(fs->by_obj);
	g_hash_table_unref(fs->by_ino);
	g_mutex_clear(&fs->nodes_lock);
	fs->by_ino = NULL;
}

Node *node_lookup_ref(Fs *fs, NodeKind kind, void *obj, Pool *pool, Domain *dom)
{
	Node *n;

	g_mutex_lock(&fs->nodes_lock);
	n = g_hash_table_lookup(fs->by_obj, obj);
	if (!n) {
		n = g_new0(Node, 1);
		n->ino = fs->next_ino++;
		n->kind = kind;
		n->pool = pool;
		n->dom = dom;
		if (kind == NODE_IMAGE)
			n->img = img_ref(obj);
		else if (kind == NODE_VOLUME)
			n->vol = vol_ref(obj);
		g_hash_table_insert(fs->by_ino, &n->ino, n);
		g_hash_table_insert(fs->by_obj, obj, n);
	}
	n->nlookup++;
	g_mutex_unlock(&fs->nodes_lock);
	return n;
}

Node *node_peek(Fs *fs, void *obj)
{
	Node *n;

	g_mutex_lock(&fs->nodes_lock);
	n = g_hash_table_lookup(fs->by_obj, obj);
	g_mutex_unlock(&fs->nodes_lock);
	return n;
}

Node *node_get(Fs *fs, fuse_ino_t ino)
{
	Node *n;

	g_mutex_lock(&fs->nodes_lock);
	n = g_hash_table_lookup(fs->by_ino, &ino);
	g_mutex_unlock(&fs->nodes_lock);
	return n;
}

static void *node_obj(Node *n)
{
	switch (n->kind) {
	case NODE_POOL:
		return n->pool;
	case NODE_DOMAIN:
		return n->dom;
	case NODE_IMAGE:
		return n->img;
	case NODE_VOLUME:
		return n->vol;
	default:
		return NULL;
	}
}

void node_forget(Fs *fs, fuse_ino_t ino, uint64_t count)
{
	Node *n;

	if (ino == FUSE_ROOT_ID)
		return;
	g_mutex_lock(&fs->nodes_lock);
	n = g_hash_table_lookup(fs->by_ino, &ino);
	if (n) {
		n->nlookup -= MIN(count, n->nlookup);
		if (n->nlookup == 0) {
			g_hash_table_remove(fs->by_obj, node_obj(n));
			g_hash_table_remove(fs->by_ino, &ino);
		}
	}
	g_mutex_unlock(&fs->nodes_lock);
}

static void synthetic_dir(Fs *fs, Node *n, struct stat *st, nlink_t nlink)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	/* CONTRACT: directories 0770, owner from -o uid=,gid= */
	st->st_mode = S_IFDIR | 0770;
	st->st_nlink = nlink;
	st->st_uid = fs->cfg.uid;
	st->st_gid = fs->cfg.gid;
	st->st_blksize = 4096;
	st->st_atime = st->st_mtime = st->st_ctime = fs->mount_time;
}

int node_stat(Fs *fs, Node *n, struct stat *ret)
{
	int r = 0;

	switch (n->kind) {
	case NODE_ROOT: {
		g_autoptr(GPtrArray) pools = storage_pools(fs->st);

		synthetic_dir(fs, n, ret, 2 + pools->len);
		break;
	}
	case NODE_POOL: {
		g_autoptr(GPtrArray) doms = pool_domains(n->pool);

		synthetic_dir(fs, n, ret, 2 + doms->len);
		break;
	}
	case NODE_DOMAIN:
		synthetic_dir(fs, n, ret, 2);
		break;
	case NODE_IMAGE:
		r = img_stat(n->img, ret);
		if (r == 0)
			ret->st_nlink = 2;
		break;
	case NODE_VOLUME:
		r = vol_stat(n->vol, ret);
		break;
	default:
		r = -EIO;
	}
	if (r == 0)
		ret->st_ino = n->ino;
	return r;
}
