/*
 * Tests for lease/mailbox.c: an SPM and host clients as threads of one
 * process, over a real 16 MiB inbox and outbox opened O_DIRECT under
 * /var/tmp (tmpfs has no O_DIRECT; exit 77 = skipped where it fails).
 *
 * Pass/fail never depends on timing: waits are for events with generous
 * deadlines; the latency report at the end is printed, not asserted.
 */
#include "lease/mailbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "tests/unit/tests.h"

#include "common/banned.h"

#define DOM "00010203-0405-4607-8001-020304050607"
#define VOL "11111111-bbbb-4bbb-8bbb-000000000002"
#define SPM_HOST 1
#define MAX_HOST 16
#define LVER 5
#define LONG_MS 20000 /* "forever" for calls expected to be answered */

static char *dir;
static char *inbox;
static char *outbox;

/* ---- what the SPM's callbacks saw ---- */

static GMutex st_lock;
static GCond st_cond;
static GHashTable *st_seen;	/* "host:seq" -> count of handler runs */
static unsigned st_calls;	/* handler runs */
static bool st_block;		/* handler waits for st_release */
static bool st_in_handler;
static bool st_release;
static unsigned st_extends;
static MdMboxExtend st_last_extend;
static unsigned st_last_extend_host;
static int st_extend_result;
static uint8_t st_inbox_slot[64]; /* the request as on disk, read by the extend handler */

static void state_reset(void)
{
	g_mutex_lock(&st_lock);
	if (st_seen)
		g_hash_table_remove_all(st_seen);
	else
		st_seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	st_calls = 0;
	st_block = false;
	st_in_handler = false;
	st_release = false;
	st_extends = 0;
	st_extend_result = 0;
	g_mutex_unlock(&st_lock);
}

static int handler(const MdMboxRequest *req, MdMboxReply *reply, void *opaque)
{
	g_autofree char *key = g_strdup_printf("%u:%" PRIu64, req->host_id, req->seq);
	const char *img;
	uint64_t size = 0;

	ASSERT_TRUE(opaque == &st_lock);
	g_mutex_lock(&st_lock);
	g_hash_table_insert(
		st_seen, g_strdup(key),
		GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(st_seen, key)) + 1));
	st_calls++;
	st_in_handler = true;
	g_cond_broadcast(&st_cond);
	while (st_block && !st_release)
		g_cond_wait(&st_cond, &st_lock);
	st_in_handler = false;
	g_mutex_unlock(&st_lock);

	switch (req->op) {
	case MD_MBOX_OP_VOL_TRUNCATE:
		ASSERT_OK(md_mbox_get_u64(&req->fields, MD_MBOX_F_SIZE, &size));
		if (size > (1ull << 40))
			return -ENOSPC;
		ASSERT_OK(md_mbox_set_u64(&reply->fields, MD_MBOX_F_SIZE, size));
		return 0;
	case MD_MBOX_OP_IMG_RMDIR:
		/* Echo the image as the reply's name, and fail with -(host). */
		img = md_mbox_get_str(&req->fields, MD_MBOX_F_IMAGE);
		ASSERT_OK(md_mbox_set_str(&reply->fields, MD_MBOX_F_NAME, img));
		return -(int)req->host_id;
	default:
		return -EOPNOTSUPP;
	}
}

static int read_raw(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	ASSERT_TRUE(fd >= 0);
	n = pread(fd, buf, len, (off_t)off);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

static void write_raw(const char *path, uint64_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
	ASSERT_OK(fsync(fd));
	close(fd);
}

static int extend_handler(unsigned host_id, const MdMboxExtend *x, void *opaque)
{
	uint8_t mb[4096];
	int r;

	ASSERT_TRUE(opaque == &st_lock);
	/* The request as the host wrote it: a sealed mailbox. */
	ASSERT_OK(read_raw(inbox, md_mbox_ovirt_offset(host_id), mb, sizeof(mb)));
	ASSERT_OK(md_mbox_verify(mb));
	g_mutex_lock(&st_lock);
	for (unsigned s = 0; s < MD_MBOX_MSG_SLOTS; s++)
		if (!md_mbox_msg_is_empty(mb + s * 64) && !md_mbox_msg_is_clean(mb + s * 64))
			memcpy(st_inbox_slot, mb + s * 64, 64);
	st_extends++;
	st_last_extend = *x;
	st_last_extend_host = host_id;
	r = st_extend_result;
	g_cond_broadcast(&st_cond);
	g_mutex_unlock(&st_lock);
	return r;
}

static const MBoxServeOps ops = { .request = handler, .extend = extend_handler };

static MBox *open_host(unsigned host)
{
	MBox *mb = NULL;

	ASSERT_OK(mbox_open(inbox, 0, outbox, 0, host, &mb));
	return mb;
}

static MBox *start_spm(void)
{
	MBox *spm = open_host(SPM_HOST);

	ASSERT_OK(mbox_serve_start(spm, MAX_HOST, LVER, &ops, &st_lock));
	return spm;
}

static void truncate_req(MdMboxRequest *req, uint64_t size)
{
	memset(req, 0, sizeof(*req));
	req->op = MD_MBOX_OP_VOL_TRUNCATE;
	ASSERT_OK(md_mbox_set_str(&req->fields, MD_MBOX_F_DOMAIN, DOM));
	ASSERT_OK(md_mbox_set_str(&req->fields, MD_MBOX_F_IMAGE, "img"));
	ASSERT_OK(md_mbox_set_str(&req->fields, MD_MBOX_F_VOLUME, "vol"));
	ASSERT_OK(md_mbox_set_u64(&req->fields, MD_MBOX_F_SIZE, size));
}

static bool record_is_zero(const char *path, uint64_t off)
{
	uint8_t b[4096], z[4096] = { 0 };

	ASSERT_OK(read_raw(path, off, b, sizeof(b)));
	return memcmp(b, z, sizeof(b)) == 0;
}

static unsigned handler_calls(void)
{
	unsigned n;

	g_mutex_lock(&st_lock);
	n = st_calls;
	g_mutex_unlock(&st_lock);
	return n;
}

/* Lets the serve thread run a few full scans. */
static void wait_scans(void)
{
	g_usleep(3 * MBOX_SCAN_MS * 1000);
}

static void test_call(void)
{
	g_autoptr(MBox) spm = NULL;
	g_autoptr(MBox) host = NULL;
	g_autofree MdMboxRequest *req = g_new0(MdMboxRequest, 1);
	g_autofree MdMboxReply *rep = g_new0(MdMboxReply, 1);
	uint64_t v = 0, seq1;

	state_reset();
	spm = start_spm();
	host = open_host(3);
	ASSERT_EQ(mbox_host_id(host), 3);
	ASSERT_ERROR(mbox_serve_start(spm, MAX_HOST, LVER, &ops, NULL), EALREADY);

	truncate_req(req, 1 << 20);
	req->host_id = 99; /* ignored: the MBox's own id is used */
	ASSERT_OK(mbox_call(host, req, rep, LONG_MS));
	ASSERT_EQ(rep->host_id, 3);
	ASSERT_EQ(rep->op, MD_MBOX_OP_VOL_TRUNCATE);
	ASSERT_EQ(rep->state, MD_MBOX_REPLY_DONE);
	ASSERT_EQ(rep->lver, LVER);
	ASSERT_EQ(rep->result, 0);
	ASSERT_OK(md_mbox_get_u64(&rep->fields, MD_MBOX_F_SIZE, &v));
	ASSERT_EQ(v, 1 << 20);
	seq1 = rep->seq;
	/* Answered requests are cleared from the inbox. */
	ASSERT_TRUE(record_is_zero(inbox, md_mbox_record_offset(3)));

	/* An error result, with the reply still readable. */
	truncate_req(req, 1ull << 41);
	ASSERT_ERROR(mbox_call(host, req, rep, LONG_MS), ENOSPC);
	ASSERT_EQ(rep->result, -ENOSPC);
	ASSERT_TRUE(rep->seq > seq1);

	/* Ping is answered by the transport; an op with no handler case fails. */
	memset(req, 0, sizeof(*req));
	req->op = MD_MBOX_OP_PING;
	ASSERT_OK(mbox_call(host, req, rep, LONG_MS));
	ASSERT_EQ(handler_calls(), 2);
	req->op = MD_MBOX_OP_IMG_RMDIR;
	ASSERT_ERROR(mbox_call(host, req, rep, LONG_MS), EINVAL); /* missing fields */
	ASSERT_OK(md_mbox_set_str(&req->fields, MD_MBOX_F_DOMAIN, DOM));
	ASSERT_OK(md_mbox_set_str(&req->fields, MD_MBOX_F_IMAGE, "gone"));
	ASSERT_ERROR(mbox_call(host, req, rep, LONG_MS), 3); /* -(host) */
	ASSERT_STREQ(md_mbox_get_str(&rep->fields, MD_MBOX_F_NAME), "gone");
	/* Every request ran exactly once. */
	wait_scans();
	ASSERT_EQ(handler_calls(), 3);
	ASSERT_EQ(g_hash_table_size(st_seen), 3);
}

/* ---- concurrent hosts, with latency ---- */

#define CALLS_PER_HOST 40
#define CLIENTS 4

typedef struct ClientArg {
	unsigned host;
	double ms[CALLS_PER_HOST];
} ClientArg;

static gpointer client_thread(gpointer data)
{
	ClientArg *a = data;
	g_autoptr(MBox) mb = open_host(a->host);
	g_autofree MdMboxRequest *req = g_new0(MdMboxRequest, 1);
	g_autofree MdMboxReply *rep = g_new0(MdMboxReply, 1);
	uint64_t last = 0;

	for (int i = 0; i < CALLS_PER_HOST; i++) {
		g_autofree char *img = g_strdup_printf("h%u-%d", a->host, i);
		int64_t t0;

		memset(req, 0, sizeof(*req));
		req->op = MD_MBOX_OP_IMG_RMDIR;
		ASSERT_OK(md_mbox_set_str(&req->fields, MD_MBOX_F_DOMAIN, DOM));
		ASSERT_OK(md_mbox_set_str(&req->fields, MD_MBOX_F_IMAGE, img));
		t0 = g_get_monotonic_time();
		ASSERT_ERROR(mbox_call(mb, req, rep, LONG_MS), a->host);
		a->ms[i] = (double)(g_get_monotonic_time() - t0) / 1000.0;
		ASSERT_EQ(rep->host_id, a->host);
		ASSERT_STREQ(md_mbox_get_str(&rep->fields, MD_MBOX_F_NAME), img);
		ASSERT_TRUE(rep->seq > last);
		last = rep->seq;
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *ms, size_t n)
{
	qsort(ms, n, sizeof(*ms), cmp_double);
	fprintf(stderr, "latency %s: n=%zu p50=%.1f ms p99=%.1f ms max=%.1f ms\n", what, n,
		ms[n / 2], ms[(n * 99 + 99) / 100 - 1], ms[n - 1]);
}

static void test_concurrent(void)
{
	g_autoptr(MBox) spm = NULL;
	ClientArg args[CLIENTS];
	GThread *t[CLIENTS];
	double all[CLIENTS * CALLS_PER_HOST];
	GHashTableIter it;
	gpointer key, val;

	state_reset();
	spm = start_spm();
	for (unsigned i = 0; i < CLIENTS; i++) {
		args[i].host = 2 + i * 3; /* 2, 5, 8, 11 */
		t[i] = g_thread_new("client", client_thread, &args[i]);
	}
	for (unsigned i = 0; i < CLIENTS; i++) {
		g_thread_join(t[i]);
		memcpy(all + i * CALLS_PER_HOST, args[i].ms, sizeof(args[i].ms));
	}
	wait_scans();
	ASSERT_EQ(handler_calls(), CLIENTS * CALLS_PER_HOST);
	ASSERT_EQ(g_hash_table_size(st_seen), CLIENTS * CALLS_PER_HOST);
	g_hash_table_iter_init(&it, st_seen);
	while (g_hash_table_iter_next(&it, &key, &val))
		ASSERT_EQ(GPOINTER_TO_UINT(val), 1);
	report("forwarded op, 4 hosts", all, G_N_ELEMENTS(all));
}

/* ---- timeouts and the withdraw handshake ---- */

static void test_timeout_never_run(void)
{
	g_autoptr(MBox) host = open_host(4);
	g_autoptr(MBox) spm = NULL;
	g_autofree MdMboxRequest *req = g_new0(MdMboxRequest, 1);
	g_autofree MdMboxReply *rep = g_new0(MdMboxReply, 1);

	state_reset();
	/* No SPM: a definite timeout, and the request is withdrawn. */
	truncate_req(req, 1);
	ASSERT_ERROR(mbox_call(host, req, rep, 50), ETIMEDOUT);
	ASSERT_TRUE(record_is_zero(inbox, md_mbox_record_offset(4)));
	/* An SPM that starts later never runs it. */
	spm = start_spm();
	wait_scans();
	ASSERT_EQ(handler_calls(), 0);
	/* And the host works normally afterwards. */
	ASSERT_OK(mbox_call(host, req, rep, LONG_MS));
	ASSERT_EQ(handler_calls(), 1);
}

typedef struct CallArg {
	MBox *mb;
	unsigned timeout_ms;
	int r;
	MdMboxReply rep;
} CallArg;

static gpointer call_thread(gpointer data)
{
	CallArg *a = data;
	g_autofree MdMboxRequest *req = g_new0(MdMboxRequest, 1);

	truncate_req(req, 77);
	a->r = mbox_call(a->mb, req, &a->rep, a->timeout_ms);
	return NULL;
}

static void wait_in_handler(void)
{
	int64_t end = g_get_monotonic_time() + LONG_MS * 1000ll;

	g_mutex_lock(&st_lock);
	while (!st_in_handler)
		ASSERT_TRUE(g_cond_wait_until(&st_cond, &st_lock, end));
	g_mutex_unlock(&st_lock);
}

static void release_handler(void)
{
	g_mutex_lock(&st_lock);
	st_release = true;
	g_cond_broadcast(&st_cond);
	g_mutex_unlock(&st_lock);
}

/* Waits until the host withdrew (zeroed) its request record. */
static void wait_withdrawn(unsigned host)
{
	for (int i = 0; i < LONG_MS / 5 && !record_is_zero(inbox, md_mbox_record_offset(host)); i++)
		g_usleep(5000);
	ASSERT_TRUE(record_is_zero(inbox, md_mbox_record_offset(host)));
}

static void test_timeout_accepted(void)
{
	g_autoptr(MBox) spm = NULL;
	g_autoptr(MBox) host = open_host(6);
	g_autofree CallArg *a = g_new0(CallArg, 1);
	GThread *t;

	/*
	 * The SPM runs the request when the host times out: the host sees
	 * ACCEPTED, waits, and gets the real result when it comes in the grace.
	 */
	state_reset();
	st_block = true;
	spm = start_spm();
	a->mb = host;
	a->timeout_ms = 1500; /* ample time for the SPM to take it */
	t = g_thread_new("call", call_thread, a);
	wait_in_handler();
	wait_withdrawn(6);
	release_handler();
	g_thread_join(t);
	ASSERT_EQ(a->r, 0);
	ASSERT_EQ(a->rep.state, MD_MBOX_REPLY_DONE);

	/* The SPM stays silent past the grace: in doubt, -EINPROGRESS. */
	state_reset();
	st_block = true;
	a->r = 1;
	t = g_thread_new("call", call_thread, a);
	wait_in_handler();
	g_thread_join(t);
	ASSERT_EQ(a->r, -EINPROGRESS);
	release_handler();
	/* It ran once; the withdrawn request is not run again. */
	wait_scans();
	ASSERT_EQ(handler_calls(), 1);
}

/*
 * The SPM took the request (queued behind busy workers) but had not started
 * it when the host withdrew: it reads the request back, finds it gone and
 * answers WITHDRAWN without running it.
 */
static void test_withdrawn_before_run(void)
{
	g_autoptr(MBox) spm = NULL;
	g_autoptr(MBox) late = open_host(6);
	g_autofree MdMboxRequest *req = g_new0(MdMboxRequest, 1);
	g_autofree MdMboxReply *rep = g_new0(MdMboxReply, 1);
	CallArg busy[4];
	GThread *t[4];
	uint8_t b[4096];

	state_reset();
	st_block = true;
	spm = start_spm();
	/* Occupy every worker (the pool has 4) with a blocked handler. */
	for (unsigned i = 0; i < 4; i++) {
		memset(&busy[i], 0, sizeof(busy[i]));
		busy[i].mb = open_host(2 + i);
		busy[i].timeout_ms = LONG_MS;
		t[i] = g_thread_new("busy", call_thread, &busy[i]);
	}
	for (int i = 0; i < LONG_MS / 5 && handler_calls() < 4; i++)
		g_usleep(5000);
	ASSERT_EQ(handler_calls(), 4);
	/* Host 6: taken by the scan, queued, withdrawn on timeout. */
	truncate_req(req, 1);
	ASSERT_ERROR(mbox_call(late, req, rep, 1000), ETIMEDOUT);
	release_handler();
	for (unsigned i = 0; i < 4; i++) {
		g_thread_join(t[i]);
		ASSERT_EQ(busy[i].r, 0);
		mbox_free(busy[i].mb);
	}
	wait_scans();
	ASSERT_EQ(handler_calls(), 4);
	/* The queued job saw the withdrawal. */
	ASSERT_OK(read_raw(outbox, md_mbox_record_offset(6), b, sizeof(b)));
	ASSERT_OK(md_mbox_reply_decode(b, sizeof(b), rep));
	ASSERT_EQ(rep->state, MD_MBOX_REPLY_WITHDRAWN);
	ASSERT_EQ(rep->host_id, 6);
}

/* ---- SPM handover: what the outbox says was answered ---- */

static void put_request(unsigned host, uint64_t seq)
{
	g_autofree MdMboxRequest *req = g_new0(MdMboxRequest, 1);
	uint8_t b[4096];

	truncate_req(req, 5);
	req->host_id = host;
	req->seq = seq;
	ASSERT_OK(md_mbox_request_encode(req, b, sizeof(b)));
	write_raw(inbox, md_mbox_record_offset(host), b, sizeof(b));
}

static void put_reply(unsigned host, uint64_t seq, MdMboxReplyState state)
{
	g_autofree MdMboxReply *rep = g_new0(MdMboxReply, 1);
	uint8_t b[4096];

	rep->host_id = host;
	rep->seq = seq;
	rep->op = MD_MBOX_OP_VOL_TRUNCATE;
	rep->state = state;
	rep->lver = LVER - 1;
	ASSERT_OK(md_mbox_reply_encode(rep, b, sizeof(b)));
	write_raw(outbox, md_mbox_record_offset(host), b, sizeof(b));
}

static void test_handover(void)
{
	g_autoptr(MBox) spm = NULL;
	uint8_t b[4096];
	g_autofree MdMboxReply *rep = g_new0(MdMboxReply, 1);

	state_reset();
	/* Host 9: answered (DONE) by the old SPM; host 10: only ACCEPTED. */
	put_request(9, 1000);
	put_reply(9, 1000, MD_MBOX_REPLY_DONE);
	put_request(10, 2000);
	put_reply(10, 2000, MD_MBOX_REPLY_ACCEPTED);
	spm = start_spm();
	wait_scans();
	ASSERT_EQ(handler_calls(), 1);
	ASSERT_TRUE(g_hash_table_contains(st_seen, "10:2000"));
	ASSERT_OK(read_raw(outbox, md_mbox_record_offset(10), b, sizeof(b)));
	ASSERT_OK(md_mbox_reply_decode(b, sizeof(b), rep));
	ASSERT_EQ(rep->state, MD_MBOX_REPLY_DONE);
	ASSERT_EQ(rep->lver, LVER);
	/* Clean up for later tests. */
	memset(b, 0, sizeof(b));
	write_raw(inbox, md_mbox_record_offset(9), b, sizeof(b));
	write_raw(inbox, md_mbox_record_offset(10), b, sizeof(b));
}

/* ---- corrupt records are ignored ---- */

static void test_corrupt(void)
{
	g_autoptr(MBox) spm = NULL;
	g_autoptr(MBox) host = NULL;
	g_autofree MdMboxRequest *req = g_new0(MdMboxRequest, 1);
	g_autofree MdMboxReply *rep = g_new0(MdMboxReply, 1);
	uint8_t b[4096];
	MdMboxExtend x = { .domain = DOM, .volume = VOL, .size_mib = 1024 };

	state_reset();
	/* Host 12: garbage; host 13: a request with a flipped CRC byte; host 14:
	 * host 13's valid request in host 14's slot; host 15: an xtnd message in
	 * a mailbox with a bad checksum. */
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)(i * 131 + 7);
	write_raw(inbox, md_mbox_record_offset(12), b, sizeof(b));
	truncate_req(req, 5);
	req->host_id = 13;
	req->seq = 42;
	ASSERT_OK(md_mbox_request_encode(req, b, sizeof(b)));
	write_raw(inbox, md_mbox_record_offset(14), b, sizeof(b));
	b[33] ^= 0xff;
	write_raw(inbox, md_mbox_record_offset(13), b, sizeof(b));
	memset(b, 0, sizeof(b));
	ASSERT_OK(md_mbox_xtnd_encode(&x, b + 64));
	md_mbox_seal(b);
	b[4092] ^= 1;
	write_raw(inbox, md_mbox_ovirt_offset(15), b, sizeof(b));

	spm = start_spm();
	wait_scans();
	ASSERT_EQ(handler_calls(), 0);
	g_mutex_lock(&st_lock);
	ASSERT_EQ(st_extends, 0);
	g_mutex_unlock(&st_lock);
	/* Nothing was answered for them. */
	for (unsigned h = 12; h <= 15; h++)
		ASSERT_TRUE(record_is_zero(outbox, md_mbox_record_offset(h)));
	/* A good host is served alongside. */
	host = open_host(3);
	truncate_req(req, 5);
	ASSERT_OK(mbox_call(host, req, rep, LONG_MS));

	/* Fixing host 15's checksum makes its request visible. */
	b[4092] ^= 1;
	write_raw(inbox, md_mbox_ovirt_offset(15), b, sizeof(b));
	for (int i = 0; i < LONG_MS / 5; i++) {
		g_mutex_lock(&st_lock);
		bool done = st_extends == 1;
		g_mutex_unlock(&st_lock);
		if (done)
			break;
		g_usleep(5000);
	}
	g_mutex_lock(&st_lock);
	ASSERT_EQ(st_extends, 1);
	ASSERT_EQ(st_last_extend_host, 15);
	g_mutex_unlock(&st_lock);
	memset(b, 0, sizeof(b));
	for (unsigned h = 12; h <= 15; h++) {
		write_raw(inbox, md_mbox_record_offset(h), b, sizeof(b));
		write_raw(inbox, md_mbox_ovirt_offset(h), b, sizeof(b));
	}
}

/* ---- oVirt extend messages ---- */

static const uint8_t xtnd_vector[64] = {
	/* "1xtnd" */
	0x31, 0x78, 0x74, 0x6e, 0x64,
	/* domain, reversed */
	0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x80,
	0x07, 0x46, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00,
	/* volume, reversed */
	0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xbb, 0x8b,
	0xbb, 0x4b, 0xbb, 0xbb, 0x11, 0x11, 0x11, 0x11,
	/* "0000000000001400" */
	0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30,
	0x30, 0x30, 0x30, 0x30, 0x31, 0x34, 0x30, 0x30,
	/* 11 x '0' */
	0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30,
};

typedef struct ExtendArg {
	MBox *mb;
	int r;
	double ms[20];
	unsigned n;
} ExtendArg;

static gpointer extend_thread(gpointer data)
{
	ExtendArg *a = data;

	for (unsigned i = 0; i < a->n; i++) {
		int64_t t0 = g_get_monotonic_time();

		a->r = mbox_extend(a->mb, DOM, VOL, 100 + i, LONG_MS);
		a->ms[i] = (double)(g_get_monotonic_time() - t0) / 1000.0;
		if (a->r < 0)
			break;
	}
	return NULL;
}

static void test_extend(void)
{
	g_autoptr(MBox) spm = NULL;
	g_autoptr(MBox) host = open_host(7);
	uint8_t in[4096], clean[64];
	ExtendArg args[4];
	GThread *t[4];
	double all[4 * 20];

	state_reset();
	md_mbox_msg_clean(clean);
	/* No SPM: timeout, and the slot is withdrawn with the clean message. */
	ASSERT_ERROR(mbox_extend(host, DOM, VOL, 5120, 50), ETIMEDOUT);
	ASSERT_OK(read_raw(inbox, md_mbox_ovirt_offset(7), in, sizeof(in)));
	ASSERT_OK(md_mbox_verify(in));
	ASSERT_MEMEQ(in, clean, 64);
	ASSERT_ERROR(mbox_extend(host, "bad", VOL, 1, 50), EINVAL);
	ASSERT_ERROR(mbox_extend(host, DOM, VOL, 1ull << 32, 50), ERANGE);

	spm = start_spm();
	/* The SPM acks the withdrawn slot; the request takes the next slot. */
	ASSERT_OK(mbox_extend(host, DOM, VOL, 5120, LONG_MS));
	g_mutex_lock(&st_lock);
	ASSERT_EQ(st_extends, 1);
	ASSERT_EQ(st_last_extend_host, 7);
	ASSERT_STREQ(st_last_extend.domain, DOM);
	ASSERT_STREQ(st_last_extend.volume, VOL);
	ASSERT_EQ(st_last_extend.size_mib, 5120);
	/* Byte for byte VDSM's message (test-md-mailbox.c has the derivation). */
	ASSERT_MEMEQ(st_inbox_slot, xtnd_vector, 64);
	g_mutex_unlock(&st_lock);
	/* Failure: the reply carries size 0. */
	g_mutex_lock(&st_lock);
	st_extend_result = -ENOSPC;
	g_mutex_unlock(&st_lock);
	ASSERT_ERROR(mbox_extend(host, DOM, VOL, 6000, LONG_MS), EREMOTEIO);
	g_mutex_lock(&st_lock);
	st_extend_result = 0;
	g_mutex_unlock(&st_lock);

	/* Concurrent extensions from one host and from others, slots reused. */
	for (unsigned i = 0; i < 4; i++) {
		args[i].mb = i < 2 ? host : NULL;
		args[i].n = 20;
		args[i].r = 0;
	}
	args[2].mb = open_host(8);
	args[3].mb = open_host(9);
	for (unsigned i = 0; i < 4; i++)
		t[i] = g_thread_new("extend", extend_thread, &args[i]);
	for (unsigned i = 0; i < 4; i++) {
		g_thread_join(t[i]);
		ASSERT_OK(args[i].r);
		memcpy(all + i * 20, args[i].ms, sizeof(args[i].ms));
	}
	mbox_free(args[2].mb);
	mbox_free(args[3].mb);
	g_mutex_lock(&st_lock);
	ASSERT_EQ(st_extends, 2 + 4 * 20);
	g_mutex_unlock(&st_lock);
	report("extend round trip, 3 hosts", all, G_N_ELEMENTS(all));
}

/* Polls a 64-byte outbox slot until it holds want. */
static void wait_outbox_slot(unsigned host, unsigned slot, const uint8_t *want)
{
	uint8_t out[4096];

	for (int i = 0; i < LONG_MS / 5; i++) {
		ASSERT_OK(read_raw(outbox, md_mbox_ovirt_offset(host), out, sizeof(out)));
		if (memcmp(out + slot * 64, want, 64) == 0)
			return;
		g_usleep(5000);
	}
	ASSERT_MEMEQ(out + slot * 64, want, 64);
}

/* The SPM side against a host that writes the protocol by hand, as VDSM does. */
static void test_extend_raw_host(void)
{
	g_autoptr(MBox) spm = NULL;
	uint8_t mb[4096] = { 0 }, ev[4096], clean[64], failed[64];
	const uint8_t uuid[16] = { 1, 2, 3, 4, 5, 6, 0x47, 8, 0x89, 10, 11, 12, 13, 14, 15, 16 };
	MdMboxExtend x = { .domain = DOM, .volume = VOL, .size_mib = 0 };

	state_reset();
	md_mbox_msg_clean(clean);
	spm = start_spm();
	/* Request in slot 62, checksum, mailbox, then a new event block. */
	memcpy(mb + 62 * 64, xtnd_vector, 64);
	md_mbox_seal(mb);
	write_raw(inbox, md_mbox_ovirt_offset(10), mb, sizeof(mb));
	ASSERT_OK(md_mbox_event_encode(uuid, ev, sizeof(ev)));
	write_raw(inbox, 0, ev, sizeof(ev));
	/* Reply: the request bytes exactly (success keeps the size). */
	wait_outbox_slot(10, 62, xtnd_vector);
	g_mutex_lock(&st_lock);
	ASSERT_EQ(st_extends, 1);
	ASSERT_EQ(st_last_extend.size_mib, 5120);
	g_mutex_unlock(&st_lock);
	/* Ack with clean: the SPM answers clean. */
	memcpy(mb + 62 * 64, clean, 64);
	md_mbox_seal(mb);
	write_raw(inbox, md_mbox_ovirt_offset(10), mb, sizeof(mb));
	wait_outbox_slot(10, 62, clean);
	/* A failed extension is answered with size 0. */
	g_mutex_lock(&st_lock);
	st_extend_result = -ENOSPC;
	g_mutex_unlock(&st_lock);
	memcpy(mb + 62 * 64, xtnd_vector, 64);
	md_mbox_seal(mb);
	write_raw(inbox, md_mbox_ovirt_offset(10), mb, sizeof(mb));
	ASSERT_OK(md_mbox_xtnd_encode(&x, failed));
	wait_outbox_slot(10, 62, failed);
	/* The same message again is not new: no second extension. */
	wait_scans();
	g_mutex_lock(&st_lock);
	ASSERT_EQ(st_extends, 2);
	g_mutex_unlock(&st_lock);
	memset(mb, 0, sizeof(mb));
	write_raw(inbox, md_mbox_ovirt_offset(10), mb, sizeof(mb));
}

/* ---- the change log ---- */

static void test_changes(void)
{
	g_autoptr(MBox) spm = NULL;
	g_autoptr(MBox) host = open_host(2);
	g_autofree MdMboxChangeLog *log = g_new0(MdMboxChangeLog, 1);
	size_t first = 99;
	uint8_t z[4096] = { 0 };

	write_raw(outbox, md_mbox_record_offset(0), z, sizeof(z));
	ASSERT_ERROR(mbox_read_changes(host, LVER, 0, log, &first), ENODATA);
	ASSERT_ERROR(mbox_publish_change(host, DOM, "img"), EPERM);
	spm = start_spm();
	ASSERT_EQ(mbox_read_changes(host, LVER, 0, log, &first), 0);
	ASSERT_EQ(log->n, 0);
	ASSERT_EQ(log->spm_host_id, SPM_HOST);
	ASSERT_OK(mbox_publish_change(spm, DOM, "img-a"));
	ASSERT_OK(mbox_publish_change(spm, DOM, NULL));
	ASSERT_OK(mbox_publish_change(spm, DOM, "img-b"));
	ASSERT_ERROR(mbox_publish_change(spm, DOM, "../x"), EINVAL);
	ASSERT_EQ(mbox_read_changes(host, LVER, 0, log, &first), 0);
	ASSERT_EQ(first, 0);
	ASSERT_EQ(log->n, 3);
	ASSERT_STREQ(log->entries[0].image, "img-a");
	ASSERT_STREQ(log->entries[1].image, "");
	ASSERT_EQ(mbox_read_changes(host, LVER, 2, log, &first), 0);
	ASSERT_EQ(first, 2);
	ASSERT_STREQ(log->entries[first].image, "img-b");
	/* Another term: reload everything. */
	ASSERT_EQ(mbox_read_changes(host, LVER - 1, 2, log, &first), 1);
	ASSERT_EQ(first, 0);
	/* A new SPM term starts a new log. */
	mbox_serve_stop(spm);
	ASSERT_OK(mbox_serve_start(spm, MAX_HOST, LVER + 1, &ops, &st_lock));
	ASSERT_EQ(mbox_read_changes(host, LVER, 3, log, &first), 1);
	ASSERT_EQ(log->lver, LVER + 1);
	ASSERT_EQ(log->seq, 0);
}

static void test_open_errors(void)
{
	MBox *mb = NULL;

	ASSERT_ERROR(mbox_open(inbox, 512, outbox, 0, 1, &mb), EINVAL);
	ASSERT_ERROR(mbox_open(inbox, 0, outbox, 0, 0, &mb), EINVAL);
	ASSERT_ERROR(mbox_open(inbox, 0, outbox, 0, MD_MBOX_MAX_HOST_ID + 1, &mb), EINVAL);
	ASSERT_ERROR(mbox_open("/nonexistent/inbox", 0, outbox, 0, 1, &mb), ENOENT);
	ASSERT_NULL(mb);
	mbox_free(NULL);
}

static int setup(void)
{
	int fd;

	/* /var/tmp, not /tmp: tmpfs refuses O_DIRECT (sanlock tox.ini). */
	dir = g_strdup("/var/tmp/ovstore-mbox-XXXXXX");
	ASSERT_NOT_NULL(g_mkdtemp(dir));
	inbox = g_build_filename(dir, "inbox", NULL);
	outbox = g_build_filename(dir, "outbox", NULL);
	for (int i = 0; i < 2; i++) {
		fd = open(i ? outbox : inbox, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		ASSERT_TRUE(fd >= 0);
		ASSERT_OK(ftruncate(fd, MD_MBOX_AREA_SIZE));
		close(fd);
	}
	fd = open(inbox, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "O_DIRECT not supported in %s: %s, skipping\n", dir,
			g_strerror(errno));
		return 77;
	}
	close(fd);
	return 0;
}

static void teardown(void)
{
	(void)g_unlink(inbox);
	(void)g_unlink(outbox);
	(void)g_rmdir(dir);
	g_free(inbox);
	g_free(outbox);
	g_free(dir);
	if (st_seen)
		g_hash_table_destroy(st_seen);
}

int main(void)
{
	int r = setup();

	if (r) {
		teardown();
		return r;
	}
	TEST_RUN(test_open_errors);
	TEST_RUN(test_call);
	TEST_RUN(test_concurrent);
	TEST_RUN(test_timeout_never_run);
	TEST_RUN(test_timeout_accepted);
	TEST_RUN(test_withdrawn_before_run);
	TEST_RUN(test_handover);
	TEST_RUN(test_corrupt);
	TEST_RUN(test_extend);
	TEST_RUN(test_extend_raw_host);
	TEST_RUN(test_changes);
	teardown();
	return 0;
}
