/*
 * mailbox: the storage mailbox transport (lease/mailbox.h, docs/mailbox.md).
 *
 * Storage is the only channel between hosts, and it only offers 4096-byte
 * reads and writes that are each atomic with respect to the CRC: a reader
 * sees a record before or after a write, or a torn one that fails its CRC
 * and is read again.  Each record has one writer (a host writes its own
 * request record and oVirt mailbox; the SPM writes every reply), so there
 * are no write-write races between hosts, only readers racing writers.
 *
 * Requests (ovstore records)
 * --------------------------
 * Host h: write request{seq} to its record, poke the event block, poll its
 * reply record (every 5 ms, backing off to 50 ms) until a reply with the
 * same seq is DONE, then clear its request record (so no later SPM can take
 * the old request for a new one after a reply was lost).
 *
 * SPM: a scan decodes every request record; one whose seq differs from the
 * last seq answered for that host, and is not being worked on, goes to a
 * worker, which
 *   1. writes reply{seq, ACCEPTED},
 *   2. reads the request record again: if it is gone or has another seq,
 *      the host withdrew it: write reply{seq, WITHDRAWN}, done;
 *   3. runs the handler and writes reply{seq, DONE, result}.
 *
 * Timeouts and the withdraw race.  A host that gives up must learn whether
 * the SPM will still run its request; "ETIMEDOUT and nothing half done"
 * (CONTRACT) is only useful if ETIMEDOUT also means "and not done later".
 * On timeout the host
 *   a. writes a zero request record (withdraws), then
 *   b. reads its reply record.
 * The SPM does 1 (write ACCEPTED) before 2 (read the request).  Each side
 * writes, then reads what the other writes (Dekker's pattern), so with
 * linearizable 4 KiB reads and writes at least one side sees the other's
 * write:
 *   - b sees no reply for seq: the SPM's step 1 comes after b, so its step
 *     2 comes after a and sees the withdrawal; the request is never run.
 *     The host returns -ETIMEDOUT, and that is certain.
 *   - b sees DONE: the request ran; the host returns its result.
 *   - b sees WITHDRAWN: never run: -ETIMEDOUT.
 *   - b sees ACCEPTED: the SPM's step 2 may have come before a.  The host
 *     waits up to MBOX_WITHDRAW_GRACE_MS more for DONE or WITHDRAWN.  If
 *     the SPM stays silent (it died or hangs inside the handler), the host
 *     returns -EINPROGRESS: the outcome is the SPM journal's to decide
 *     (finished or rolled back on the next SPM start).
 * A new SPM treats a request whose reply is only ACCEPTED as not answered
 * and runs it again; handlers see the state the journal recovery left.
 *
 * Extensions (oVirt messages, reference section 13)
 * --------------------------------------------------
 * Host: put the xtnd message in a free slot of its own inbox mailbox, seal
 * (checksum), write the 4 KiB mailbox, poke; poll its outbox mailbox until
 * the slot holds a reply whose bytes 0..36 match; then replace the request
 * with the clean message (ack) and rewrite.  The SPM answers the clean
 * message with a clean reply; the host frees the slot (zeroes it) when it
 * next looks for a free slot and sees that.  On timeout the host writes
 * the clean message too, which withdraws the request as far as oVirt's
 * protocol allows: an SPM that already took it still extends the LV, which
 * is harmless since an extension only grows it.
 * SPM: a slot whose 64 bytes differ from the previous scan is new; an xtnd
 * message goes to a worker (extend, then write the reply: the request with
 * the size, or size 0 on failure); a clean message gets a clean reply.  The
 * previous-scan copy of a slot is updated only when its work is done, so a
 * clean message that arrives while the extension runs is answered after
 * the extension's reply, never overwritten by it.
 *
 * Locking
 * -------
 * MBox.lock protects the client state (seq, call_busy, xslot[]).  xio_lock
 * serialises rewrites of this host's inbox mailbox (copy, seal, write).
 * Server.lock protects the server's tables; Server.out_io_lock serialises
 * rewrites of oVirt outbox mailboxes (copy and write of one 4 KiB mailbox
 * whose slots different workers update).  No lock is held while waiting
 * for the other side; mbox_call() waits its turn on a condition variable.
 */
#include "lease/mailbox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "common/cleanup.h"
#include "common/log.h"

#include "common/banned.h"

#define IO_ALIGN 4096u
#define CLIENT_POLL_MIN_MS 5u
#define CLIENT_POLL_MAX_MS 50u
#define CLIENT_POLL_FAST_MS 100u /* poll at the minimum for this long */
#define SERVER_WORKERS 4
#define TORN_RETRIES 20		  /* re-reads of a record that fails its CRC */

/* O_DIRECT bounce buffers: g_aligned_alloc0() is posix_memalign() + g_new's OOM policy. */
typedef uint8_t IoBuf;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(IoBuf, g_aligned_free)

static IoBuf *iobuf_new(size_t len)
{
	return g_aligned_alloc0(1, len, IO_ALIGN);
}

typedef enum XSlotState {
	XSLOT_FREE = 0,
	XSLOT_PENDING, /* request written, waiting for the reply */
	XSLOT_ACKED,   /* clean written, waiting for the SPM's clean reply */
} XSlotState;

typedef struct Server Server;

struct MBox {
	int in_fd, out_fd;
	uint64_t in_off, out_off; /* the 16 MiB areas in in_fd / out_fd */
	unsigned host_id;

	GMutex lock;
	GCond cond;
	uint64_t seq;	    /* protected by lock: last request seq used */
	bool call_busy;	    /* protected by lock: an mbox_call() is running */
	uint8_t xslot[MD_MBOX_MSG_SLOTS]; /* protected by lock: XSlotState */

	GMutex xio_lock;
	IoBuf *xmbox;	    /* protected by xio_lock: our oVirt inbox mailbox */

	GMutex serve_lock;  /* serialises serve start/stop/publish against each other */
	Server *srv;	    /* protected by serve_lock */
};

typedef enum JobKind {
	JOB_REQUEST,
	JOB_XTND,
	JOB_ACK,
} JobKind;

typedef struct Job {
	JobKind kind;
	unsigned host;
	unsigned slot;			/* JOB_XTND, JOB_ACK */
	uint8_t msg[MD_MBOX_MSG_SIZE];	/* JOB_XTND, JOB_ACK: the slot's bytes */
	MdMboxRequest *req;		/* JOB_REQUEST, owned */
} Job;

struct Server {
	MBox *mb;
	unsigned max_host;
	uint64_t lver;
	MBoxServeOps ops;
	void *opaque;
	GThread *thread;
	GThreadPool *pool;

	GMutex lock;
	GCond cond;
	bool stop;		/* protected by lock */
	uint64_t *answered;	/* protected by lock: [host] seq of the last final reply */
	uint64_t *inflight;	/* protected by lock: [host] seq being worked on, 0 none */
	uint8_t *xprev;		/* protected by lock: oVirt inbox as last acted on */
	uint8_t *xbusy;		/* protected by lock: [host * 63 + slot] work queued */
	MdMboxChangeLog *changes; /* protected by lock */

	GMutex out_io_lock;
	IoBuf *xout;		/* protected by out_io_lock: oVirt outbox copy */
};

/* ---- I/O ---- */

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ov_errno();
		}
		if (n == 0) {
			/* Past the end of a short file: reads as zeros. */
			memset((uint8_t *)buf + done, 0, len - done);
			break;
		}
		done += (size_t)n;
	}
	return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + done, len - done,
				   (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ov_errno();
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int in_read(MBox *mb, void *buf, size_t len, uint64_t off)
{
	return pread_full(mb->in_fd, buf, len, mb->in_off + off);
}

static int in_write(MBox *mb, const void *buf, size_t len, uint64_t off)
{
	return pwrite_full(mb->in_fd, buf, len, mb->in_off + off);
}

static int out_read(MBox *mb, void *buf, size_t len, uint64_t off)
{
	return pread_full(mb->out_fd, buf, len, mb->out_off + off);
}

static int out_write(MBox *mb, const void *buf, size_t len, uint64_t off)
{
	return pwrite_full(mb->out_fd, buf, len, mb->out_off + off);
}

/* Writes a new event block: the SPM scans at once. */
static int poke(MBox *mb)
{
	g_autoptr(IoBuf) b = iobuf_new(MD_MBOX_HOST_MAILBOX_SIZE);
	uint8_t uuid[16];

	for (size_t i = 0; i < sizeof(uuid); i += 4) {
		guint32 v = g_random_int();

		memcpy(uuid + i, &v, 4);
	}
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* version 4 */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	(void)md_mbox_event_encode(uuid, b, MD_MBOX_HOST_MAILBOX_SIZE);
	return in_write(mb, b, MD_MBOX_HOST_MAILBOX_SIZE, md_mbox_ovirt_offset(0));
}

/* Reads one reply record, re-reading a torn one. */
static int read_reply(MBox *mb, IoBuf *b, MdMboxReply *ret)
{
	int r = -EUCLEAN;

	for (int i = 0; i < TORN_RETRIES; i++) {
		r = out_read(mb, b, MD_MBOX_RECORD_SIZE, md_mbox_record_offset(mb->host_id));
		if (r < 0)
			return r;
		r = md_mbox_reply_decode(b, MD_MBOX_RECORD_SIZE, ret);
		if (r != -EUCLEAN)
			return r;
		g_usleep(1000);
	}
	return r;
}

static int64_t now_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

/* The next poll interval: the minimum at first, then 1.5 times longer. */
static unsigned backoff(unsigned interval, int64_t since_start_ms)
{
	if (since_start_ms < CLIENT_POLL_FAST_MS)
		return CLIENT_POLL_MIN_MS;
	return MIN(CLIENT_POLL_MAX_MS, interval + interval / 2);
}

static void sleep_until_or(int64_t deadline_ms, unsigned interval_ms)
{
	int64_t left = deadline_ms - now_ms();

	if (left <= 0)
		return;
	g_usleep((gulong)MIN((int64_t)interval_ms, left) * 1000);
}

/* ---- open and close ---- */

static int open_direct(const char *path, int *ret)
{
	int fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);

	if (fd < 0)
		return ov_errno();
	*ret = fd;
	return 0;
}

/* Rewrites our oVirt inbox mailbox from mb->xmbox; xio_lock held. */
static int xmbox_write_locked(MBox *mb)
{
	md_mbox_seal(mb->xmbox);
	return in_write(mb, mb->xmbox, MD_MBOX_HOST_MAILBOX_SIZE,
			md_mbox_ovirt_offset(mb->host_id));
}

/*
 * Start of a host: no request of ours is pending.  Slots whose outbox reply
 * is neither empty nor clean get the clean message, so the SPM acks them
 * and no stale reply is matched against a new request in that slot.
 */
static int client_reset(MBox *mb)
{
	g_autoptr(IoBuf) b = iobuf_new(MD_MBOX_RECORD_SIZE);
	g_autofree MdMboxRequest *req = g_new0(MdMboxRequest, 1);
	g_autofree MdMboxReply *rep = g_new0(MdMboxReply, 1);
	uint64_t seq = 0;
	int r;

	/* Sequence numbers keep growing across restarts. */
	r = in_read(mb, b, MD_MBOX_RECORD_SIZE, md_mbox_record_offset(mb->host_id));
	if (r < 0)
		return r;
	if (md_mbox_request_decode(b, MD_MBOX_RECORD_SIZE, req) == 0)
		seq = MAX(seq, req->seq);
	r = out_read(mb, b, MD_MBOX_RECORD_SIZE, md_mbox_record_offset(mb->host_id));
	if (r < 0)
		return r;
	if (md_mbox_reply_decode(b, MD_MBOX_RECORD_SIZE, rep) == 0)
		seq = MAX(seq, rep->seq);
	mb->seq = MAX(seq, (uint64_t)g_get_real_time());

	memset(b, 0, MD_MBOX_RECORD_SIZE);
	r = in_write(mb, b, MD_MBOX_RECORD_SIZE, md_mbox_record_offset(mb->host_id));
	if (r < 0)
		return r;

	r = out_read(mb, b, MD_MBOX_HOST_MAILBOX_SIZE, md_mbox_ovirt_offset(mb->host_id));
	if (r < 0)
		return r;
	memset(mb->xmbox, 0, MD_MBOX_HOST_MAILBOX_SIZE);
	for (unsigned s = 0; s < MD_MBOX_MSG_SLOTS; s++) {
		const uint8_t *reply = b + s * MD_MBOX_MSG_SIZE;

		mb->xslot[s] = XSLOT_FREE;
		if (!md_mbox_msg_is_empty(reply) && !md_mbox_msg_is_clean(reply)) {
			md_mbox_msg_clean(mb->xmbox + s * MD_MBOX_MSG_SIZE);
			mb->xslot[s] = XSLOT_ACKED;
		}
	}
	return xmbox_write_locked(mb);
}

int mbox_open(const char *inbox_path, uint64_t inbox_off, const char *outbox_path,
	      uint64_t outbox_off, unsigned host_id, MBox **ret)
{
	g_autoptr(MBox) mb = NULL;
	int r;

	if (!inbox_path || !outbox_path || inbox_off % IO_ALIGN || outbox_off % IO_ALIGN)
		return -EINVAL;
	if (host_id < 1 || host_id > MD_MBOX_MAX_HOST_ID)
		return -EINVAL;
	mb = g_new0(MBox, 1);
	mb->in_fd = mb->out_fd = -1;
	g_mutex_init(&mb->lock);
	g_cond_init(&mb->cond);
	g_mutex_init(&mb->xio_lock);
	g_mutex_init(&mb->serve_lock);
	mb->in_off = inbox_off;
	mb->out_off = outbox_off;
	mb->host_id = host_id;
	mb->xmbox = iobuf_new(MD_MBOX_HOST_MAILBOX_SIZE);
	r = open_direct(inbox_path, &mb->in_fd);
	if (r < 0)
		return r;
	r = open_direct(outbox_path, &mb->out_fd);
	if (r < 0)
		return r;
	r = client_reset(mb);
	if (r < 0)
		return r;
	log_debug(LOG_CLASS_MAILBOX, "mailbox: host %u opened '%s'@%" PRIu64 ", '%s'@%" PRIu64,
		  host_id, inbox_path, inbox_off, outbox_path, outbox_off);
	*ret = g_steal_pointer(&mb);
	return 0;
}

void mbox_free(MBox *mb)
{
	if (!mb)
		return;
	mbox_serve_stop(mb);
	if (mb->in_fd >= 0) {
		g_autoptr(IoBuf) b = iobuf_new(MD_MBOX_RECORD_SIZE);

		/* VDSM clears a host's mailbox on stop; we clear our request too. */
		(void)in_write(mb, b, MD_MBOX_HOST_MAILBOX_SIZE, md_mbox_ovirt_offset(mb->host_id));
		(void)in_write(mb, b, MD_MBOX_RECORD_SIZE, md_mbox_record_offset(mb->host_id));
	}
	ov_close_fd(mb->in_fd);
	ov_close_fd(mb->out_fd);
	g_aligned_free(mb->xmbox);
	g_mutex_clear(&mb->lock);
	g_cond_clear(&mb->cond);
	g_mutex_clear(&mb->xio_lock);
	g_mutex_clear(&mb->serve_lock);
	g_free(mb);
}

unsigned mbox_host_id(const MBox *mb)
{
	return mb->host_id;
}

/* ---- host side: requests ---- */

static int write_request(MBox *mb, IoBuf *b)
{
	return in_write(mb, b, MD_MBOX_RECORD_SIZE, md_mbox_record_offset(mb->host_id));
}

/* After the deadline: withdraw, then find out whether the SPM took it. */
static int call_withdraw(MBox *mb, uint64_t seq, IoBuf *b, MdMboxReply *rep)
{
	int64_t grace_end;
	unsigned interval = CLIENT_POLL_MIN_MS;
	int r;

	memset(b, 0, MD_MBOX_RECORD_SIZE);
	r = write_request(mb, b);
	if (r < 0)
		return r;
	grace_end = now_ms() + MBOX_WITHDRAW_GRACE_MS;
	for (;;) {
		r = read_reply(mb, b, rep);
		if (r == -EUCLEAN || r == -EPROTONOSUPPORT)
			return -EINPROGRESS; /* unreadable even after re-reads: cannot tell */
		if (r < 0 && r != -ENODATA)
			return r;
		if (r < 0 || rep->seq != seq)
			return -ETIMEDOUT; /* never taken: the SPM will see the withdrawal */
		if (rep->state == MD_MBOX_REPLY_DONE)
			return 1;
		if (rep->state == MD_MBOX_REPLY_WITHDRAWN)
			return -ETIMEDOUT;
		/* ACCEPTED: the SPM may be running it. */
		if (now_ms() >= grace_end)
			return -EINPROGRESS;
		sleep_until_or(grace_end, interval);
		interval = MIN(CLIENT_POLL_MAX_MS, interval * 2);
	}
}

static int call_locked(MBox *mb, MdMboxRequest *req, MdMboxReply *ret, int64_t deadline)
{
	g_autoptr(IoBuf) b = iobuf_new(MD_MBOX_RECORD_SIZE);
	g_autofree MdMboxReply *rep = g_new0(MdMboxReply, 1);
	int64_t start = now_ms();
	unsigned interval = CLIENT_POLL_MIN_MS;
	int r;

	r = md_mbox_request_encode(req, b, MD_MBOX_RECORD_SIZE);
	if (r < 0)
		return r;
	r = write_request(mb, b);
	if (r < 0)
		return r;
	r = poke(mb);
	if (r < 0)
		return r;
	for (;;) {
		sleep_until_or(deadline, interval);
		interval = backoff(interval, now_ms() - start);
		/* Errors (I/O, a torn or foreign record) are retried until the deadline. */
		r = read_reply(mb, b, rep);
		if (r == 0 && rep->seq == req->seq) {
			if (rep->state == MD_MBOX_REPLY_DONE)
				break;
			if (rep->state == MD_MBOX_REPLY_WITHDRAWN) {
				/* The SPM could not read our request back: never run. */
				log_debug(LOG_CLASS_MAILBOX, "mailbox: host %u seq %" PRIu64
					  " refused as withdrawn", mb->host_id, req->seq);
				r = -ETIMEDOUT;
				goto clear;
			}
		}
		if (now_ms() >= deadline) {
			r = call_withdraw(mb, req->seq, b, rep);
			log_debug(LOG_CLASS_MAILBOX, "mailbox: host %u seq %" PRIu64
				  " timed out, withdrawn: %d", mb->host_id, req->seq, r);
			if (r < 0)
				return r;
			break;
		}
	}
	memcpy(ret, rep, sizeof(*rep));
	r = rep->result;
clear:
	/* Answered: clear the request, so no later SPM mistakes it for a new one. */
	memset(b, 0, MD_MBOX_RECORD_SIZE);
	(void)write_request(mb, b);
	return r;
}

int mbox_call(MBox *mb, const MdMboxRequest *req, MdMboxReply *ret, unsigned timeout_ms)
{
	g_autofree MdMboxRequest *copy = g_memdup2(req, sizeof(*req));
	int64_t deadline = now_ms() + timeout_ms;
	int r;

	g_mutex_lock(&mb->lock);
	while (mb->call_busy) {
		if (!g_cond_wait_until(&mb->cond, &mb->lock, deadline * 1000)) {
			g_mutex_unlock(&mb->lock);
			return -ETIMEDOUT; /* never sent */
		}
	}
	mb->call_busy = true;
	copy->host_id = mb->host_id;
	copy->seq = ++mb->seq;
	g_mutex_unlock(&mb->lock);

	r = call_locked(mb, copy, ret, deadline);

	g_mutex_lock(&mb->lock);
	mb->call_busy = false;
	g_cond_broadcast(&mb->cond);
	g_mutex_unlock(&mb->lock);
	return r;
}

/* ---- host side: oVirt extend messages ---- */

/* Sets slot s of our inbox mailbox to msg (NULL: zero) and writes it. */
static int xslot_set(MBox *mb, unsigned s, const uint8_t *msg, XSlotState state)
{
	int r;

	g_mutex_lock(&mb->xio_lock);
	if (msg)
		memcpy(mb->xmbox + s * MD_MBOX_MSG_SIZE, msg, MD_MBOX_MSG_SIZE);
	else
		memset(mb->xmbox + s * MD_MBOX_MSG_SIZE, 0, MD_MBOX_MSG_SIZE);
	r = xmbox_write_locked(mb);
	g_mutex_unlock(&mb->xio_lock);
	g_mutex_lock(&mb->lock);
	mb->xslot[s] = (uint8_t)state;
	g_mutex_unlock(&mb->lock);
	return r;
}

/* Frees acked slots the SPM has answered with the clean message; picks a free one. */
static int xslot_take(MBox *mb, const uint8_t *msg, unsigned *ret)
{
	g_autoptr(IoBuf) b = iobuf_new(MD_MBOX_HOST_MAILBOX_SIZE);
	bool reaped = false;
	int r, slot = -1;

	r = out_read(mb, b, MD_MBOX_HOST_MAILBOX_SIZE, md_mbox_ovirt_offset(mb->host_id));
	if (r < 0)
		return r;
	g_mutex_lock(&mb->xio_lock);
	g_mutex_lock(&mb->lock);
	for (unsigned s = 0; s < MD_MBOX_MSG_SLOTS; s++) {
		if (mb->xslot[s] == XSLOT_ACKED && md_mbox_msg_is_clean(b + s * MD_MBOX_MSG_SIZE)) {
			memset(mb->xmbox + s * MD_MBOX_MSG_SIZE, 0, MD_MBOX_MSG_SIZE);
			mb->xslot[s] = XSLOT_FREE;
			reaped = true;
		}
		/* A slot whose old reply is still there could be matched by mistake. */
		if (slot < 0 && mb->xslot[s] == XSLOT_FREE &&
		    !md_mbox_xtnd_reply_matches(msg, b + s * MD_MBOX_MSG_SIZE))
			slot = (int)s;
	}
	if (slot >= 0) {
		memcpy(mb->xmbox + (unsigned)slot * MD_MBOX_MSG_SIZE, msg, MD_MBOX_MSG_SIZE);
		mb->xslot[slot] = XSLOT_PENDING;
	}
	g_mutex_unlock(&mb->lock);
	if (slot >= 0 || reaped)
		r = xmbox_write_locked(mb);
	g_mutex_unlock(&mb->xio_lock);
	if (slot < 0)
		return -EBUSY;
	if (r < 0) {
		(void)xslot_set(mb, (unsigned)slot, NULL, XSLOT_FREE);
		return r;
	}
	*ret = (unsigned)slot;
	return 0;
}

int mbox_extend(MBox *mb, const char *dom_uuid, const char *vol_uuid, uint64_t size_mib,
		unsigned timeout_ms)
{
	g_autoptr(IoBuf) b = iobuf_new(MD_MBOX_HOST_MAILBOX_SIZE);
	MdMboxExtend x = { .size_mib = size_mib };
	uint8_t msg[MD_MBOX_MSG_SIZE], clean[MD_MBOX_MSG_SIZE];
	int64_t start = now_ms(), deadline = start + timeout_ms;
	unsigned slot, interval = CLIENT_POLL_MIN_MS;
	int r;

	if (!dom_uuid || !vol_uuid || strlen(dom_uuid) > UUID_STR_LEN ||
	    strlen(vol_uuid) > UUID_STR_LEN)
		return -EINVAL;
	g_strlcpy(x.domain, dom_uuid, sizeof(x.domain));
	g_strlcpy(x.volume, vol_uuid, sizeof(x.volume));
	r = md_mbox_xtnd_encode(&x, msg);
	if (r < 0)
		return r;
	md_mbox_msg_clean(clean);
	r = xslot_take(mb, msg, &slot);
	if (r < 0)
		return r;
	r = poke(mb);
	while (r >= 0) {
		const uint8_t *reply = b + slot * MD_MBOX_MSG_SIZE;
		MdMboxExtend got;

		sleep_until_or(deadline, interval);
		interval = backoff(interval, now_ms() - start);
		r = out_read(mb, b, MD_MBOX_HOST_MAILBOX_SIZE, md_mbox_ovirt_offset(mb->host_id));
		if (r < 0)
			break;
		if (md_mbox_xtnd_reply_matches(msg, reply) &&
		    md_mbox_xtnd_decode(reply, &got) == 0 &&
		    (got.size_mib == size_mib || got.size_mib == 0)) {
			r = got.size_mib == size_mib ? 0 : -EREMOTEIO;
			break;
		}
		if (now_ms() >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
	}
	log_debug(LOG_CLASS_MAILBOX, "mailbox: host %u extend %s/%s to %" PRIu64 " MiB: %d",
		  mb->host_id, x.domain, x.volume, size_mib, r);
	/* Answered or given up: ack with the clean message (reference 13, step 4). */
	if (xslot_set(mb, slot, clean, XSLOT_ACKED) >= 0)
		(void)poke(mb);
	return r;
}

/* ---- host side: the change log ---- */

int mbox_read_changes(MBox *mb, uint64_t lver, uint64_t since_seq, MdMboxChangeLog *ret,
		      size_t *ret_first)
{
	g_autoptr(IoBuf) b = iobuf_new(MD_MBOX_RECORD_SIZE);
	g_autofree MdMboxChangeLog *log = g_new0(MdMboxChangeLog, 1);
	size_t first = 0;
	int r = -EUCLEAN;

	for (int i = 0; i < TORN_RETRIES && r == -EUCLEAN; i++) {
		if (i)
			g_usleep(1000);
		r = out_read(mb, b, MD_MBOX_RECORD_SIZE, md_mbox_record_offset(0));
		if (r < 0)
			return r;
		r = md_mbox_changes_decode(b, MD_MBOX_RECORD_SIZE, log);
	}
	if (r < 0)
		return r;
	r = md_mbox_changes_since(log, lver, since_seq, &first);
	memcpy(ret, log, sizeof(*log));
	*ret_first = r == 0 ? first : 0;
	return r;
}

/* ---- SPM side ---- */

static void job_free(gpointer p)
{
	Job *j = p;

	if (!j)
		return;
	g_free(j->req);
	g_free(j);
}

static int write_reply(MBox *mb, const MdMboxReply *rep, IoBuf *b)
{
	int r = md_mbox_reply_encode(rep, b, MD_MBOX_RECORD_SIZE);

	if (r < 0)
		return r;
	return out_write(mb, b, MD_MBOX_RECORD_SIZE, md_mbox_record_offset(rep->host_id));
}

static void run_request(Server *srv, const MdMboxRequest *req)
{
	MBox *mb = srv->mb;
	g_autoptr(IoBuf) b = iobuf_new(MD_MBOX_RECORD_SIZE);
	g_autofree MdMboxReply *rep = g_new0(MdMboxReply, 1);
	g_autofree MdMboxRequest *again = g_new0(MdMboxRequest, 1);
	int r = 0;

	rep->host_id = req->host_id;
	rep->seq = req->seq;
	rep->op = req->op;
	rep->lver = srv->lver;

	/* 1. Accept, 2. read the request back: see "withdraw race" above. */
	rep->state = MD_MBOX_REPLY_ACCEPTED;
	r = write_reply(mb, rep, b);
	if (r >= 0)
		r = in_read(mb, b, MD_MBOX_RECORD_SIZE, md_mbox_record_offset(req->host_id));
	if (r < 0) {
		log_debug(LOG_CLASS_MAILBOX, "mailbox: host %u seq %" PRIu64 ": %s, retrying",
			  req->host_id, req->seq, g_strerror(-r));
		return; /* not answered: the next scan takes it again */
	}
	r = md_mbox_request_decode(b, MD_MBOX_RECORD_SIZE, again);
	if (r < 0 || again->seq != req->seq || again->host_id != req->host_id) {
		rep->state = MD_MBOX_REPLY_WITHDRAWN;
		log_debug(LOG_CLASS_MAILBOX, "mailbox: host %u seq %" PRIu64 " withdrawn",
			  req->host_id, req->seq);
	} else {
		/* 3. Run it. */
		rep->state = MD_MBOX_REPLY_DONE;
		if (req->op == MD_MBOX_OP_PING)
			r = 0;
		else if (srv->ops.request)
			r = srv->ops.request(req, rep, srv->opaque);
		else
			r = -EOPNOTSUPP;
		if (r > 0 || r < -4095) {
			log_debug(LOG_CLASS_MAILBOX,
				  "mailbox: handler of %s returned %d, sending EIO",
				  md_mbox_op_to_string(req->op), r);
			r = -EIO;
		}
		rep->result = r;
		log_debug(LOG_CLASS_MAILBOX, "mailbox: host %u seq %" PRIu64 " %s: %d",
			  req->host_id, req->seq, md_mbox_op_to_string(req->op), r);
	}
	/* Reply fields are bounded by the setters, so this only fails on I/O. */
	r = write_reply(mb, rep, b);
	if (r < 0)
		log_debug(LOG_CLASS_MAILBOX, "mailbox: reply to host %u seq %" PRIu64 ": %s",
			  req->host_id, req->seq, g_strerror(-r));
	g_mutex_lock(&srv->lock);
	/* Answered even if the reply write failed: never run a request twice. */
	srv->answered[req->host_id] = req->seq;
	g_mutex_unlock(&srv->lock);
}

/* Writes msg into slot of host's oVirt outbox mailbox. */
static int write_xreply(Server *srv, unsigned host, unsigned slot, const uint8_t *msg)
{
	g_autoptr(IoBuf) b = iobuf_new(MD_MBOX_HOST_MAILBOX_SIZE);
	uint8_t *mbox;
	int r;

	g_mutex_lock(&srv->out_io_lock);
	mbox = srv->xout + (size_t)host * MD_MBOX_HOST_MAILBOX_SIZE;
	memcpy(mbox + slot * MD_MBOX_MSG_SIZE, msg, MD_MBOX_MSG_SIZE);
	memcpy(b, mbox, MD_MBOX_HOST_MAILBOX_SIZE);
	r = out_write(srv->mb, b, MD_MBOX_HOST_MAILBOX_SIZE, md_mbox_ovirt_offset(host));
	g_mutex_unlock(&srv->out_io_lock);
	return r;
}

static void run_xtnd(Server *srv, Job *j)
{
	uint8_t reply[MD_MBOX_MSG_SIZE];
	MdMboxExtend x;
	int r;

	memcpy(reply, j->msg, sizeof(reply));
	if (j->kind == JOB_XTND) {
		r = md_mbox_xtnd_decode(j->msg, &x);
		g_assert(r == 0); /* the scan decoded it */
		r = srv->ops.extend ? srv->ops.extend(j->host, &x, srv->opaque) : -EOPNOTSUPP;
		log_debug(LOG_CLASS_MAILBOX, "mailbox: host %u extend %s/%s to %" PRIu64 " MiB: %d",
			  j->host, x.domain, x.volume, x.size_mib, r);
		if (r < 0) {
			/* The reply to a failure is the request with size 0. */
			x.size_mib = 0;
			(void)md_mbox_xtnd_encode(&x, reply);
		}
	}
	r = write_xreply(srv, j->host, j->slot, reply);
	if (r < 0)
		log_debug(LOG_CLASS_MAILBOX, "mailbox: reply to host %u slot %u: %s", j->host,
			  j->slot, g_strerror(-r));
	g_mutex_lock(&srv->lock);
	/* Acted on: only a change from these bytes is new. */
	memcpy(srv->xprev + (size_t)j->host * MD_MBOX_HOST_MAILBOX_SIZE +
		       j->slot * MD_MBOX_MSG_SIZE,
	       j->msg, MD_MBOX_MSG_SIZE);
	g_mutex_unlock(&srv->lock);
}

static void worker(gpointer data, gpointer user_data)
{
	Job *j = data;
	Server *srv = user_data;

	if (j->kind == JOB_REQUEST)
		run_request(srv, j->req);
	else
		run_xtnd(srv, j);
	g_mutex_lock(&srv->lock);
	if (j->kind == JOB_REQUEST)
		srv->inflight[j->host] = 0;
	else
		srv->xbusy[j->host * MD_MBOX_MSG_SLOTS + j->slot] = 0;
	g_cond_broadcast(&srv->cond); /* a finished job may let the scan act again */
	g_mutex_unlock(&srv->lock);
	job_free(j);
}

static void push(Server *srv, Job *j)
{
	g_autoptr(GError) error = NULL;

	/* Non-exclusive pools only fail to start a thread when one cannot be made. */
	if (!g_thread_pool_push(srv->pool, j, &error))
		log_debug(LOG_CLASS_MAILBOX, "mailbox: queueing work: %s", error->message);
}

static bool is_zero(const uint8_t *p, size_t len)
{
	return p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

static void scan_requests(Server *srv, IoBuf *area)
{
	size_t len = (size_t)srv->max_host * MD_MBOX_RECORD_SIZE;

	if (in_read(srv->mb, area, len, md_mbox_record_offset(1)) < 0)
		return;
	for (unsigned h = 1; h <= srv->max_host; h++) {
		const uint8_t *rec = area + (size_t)(h - 1) * MD_MBOX_RECORD_SIZE;
		g_autofree MdMboxRequest *req = NULL;
		bool take;

		if (is_zero(rec, MD_MBOX_RECORD_SIZE))
			continue; /* the common case: no request */
		req = g_new0(MdMboxRequest, 1);
		if (md_mbox_request_decode(rec, MD_MBOX_RECORD_SIZE, req) < 0)
			continue; /* torn or corrupt: ignored, read again next scan */
		if (req->host_id != h)
			continue; /* a record in another host's slot is not a request */
		g_mutex_lock(&srv->lock);
		take = !srv->stop && srv->inflight[h] == 0 && srv->answered[h] != req->seq;
		if (take)
			srv->inflight[h] = req->seq;
		g_mutex_unlock(&srv->lock);
		if (take) {
			Job *j = g_new0(Job, 1);

			j->kind = JOB_REQUEST;
			j->host = h;
			j->req = g_steal_pointer(&req);
			push(srv, j);
		}
	}
}

static void scan_ovirt(Server *srv, IoBuf *area)
{
	static const uint8_t zero[MD_MBOX_MSG_SIZE];
	size_t len = (size_t)(srv->max_host + 1) * MD_MBOX_HOST_MAILBOX_SIZE;

	if (in_read(srv->mb, area, len, 0) < 0)
		return;
	for (unsigned h = 1; h <= srv->max_host; h++) {
		const uint8_t *mbox = area + (size_t)h * MD_MBOX_HOST_MAILBOX_SIZE;
		int v = md_mbox_verify(mbox);

		if (v == -EUCLEAN)
			continue; /* torn or corrupt: the whole mailbox waits a round */
		for (unsigned s = 0; s < MD_MBOX_MSG_SLOTS; s++) {
			const uint8_t *cur = v == -ENODATA ? zero : mbox + s * MD_MBOX_MSG_SIZE;
			uint8_t *prev = srv->xprev + (size_t)h * MD_MBOX_HOST_MAILBOX_SIZE +
					s * MD_MBOX_MSG_SIZE;
			uint8_t *busy = &srv->xbusy[h * MD_MBOX_MSG_SLOTS + s];
			MdMboxExtend x;
			Job *j = NULL;

			g_mutex_lock(&srv->lock);
			if (!srv->stop && !*busy && memcmp(cur, prev, MD_MBOX_MSG_SIZE) != 0) {
				bool clean = md_mbox_msg_is_clean(cur);

				if (clean || md_mbox_xtnd_decode(cur, &x) == 0) {
					j = g_new0(Job, 1);
					j->kind = clean ? JOB_ACK : JOB_XTND;
					j->host = h;
					j->slot = s;
					memcpy(j->msg, cur, MD_MBOX_MSG_SIZE);
					*busy = 1;
				} else {
					/* Empty, or a message we do not know: nothing to do. */
					memcpy(prev, cur, MD_MBOX_MSG_SIZE);
				}
			}
			g_mutex_unlock(&srv->lock);
			if (j)
				push(srv, j);
		}
	}
}

static gpointer serve_thread(gpointer data)
{
	Server *srv = data;
	size_t area_len = MAX((size_t)(srv->max_host + 1) * MD_MBOX_HOST_MAILBOX_SIZE,
			      (size_t)srv->max_host * MD_MBOX_RECORD_SIZE);
	g_autoptr(IoBuf) area = iobuf_new(area_len);
	g_autoptr(IoBuf) ev = iobuf_new(MD_MBOX_HOST_MAILBOX_SIZE);
	uint8_t last_event[20] = { 0 };
	int64_t next_scan = 0;

	for (;;) {
		bool scan = false;
		int64_t wake;

		if (in_read(srv->mb, ev, MD_MBOX_HOST_MAILBOX_SIZE, md_mbox_ovirt_offset(0)) == 0 &&
		    memcmp(ev, last_event, sizeof(last_event)) != 0) {
			memcpy(last_event, ev, sizeof(last_event));
			scan = true;
		}
		if (scan || now_ms() >= next_scan) {
			scan_requests(srv, area);
			scan_ovirt(srv, area);
			next_scan = now_ms() + MBOX_SCAN_MS;
		}
		wake = g_get_monotonic_time() + MBOX_EVENT_POLL_MS * 1000;
		g_mutex_lock(&srv->lock);
		while (!srv->stop && g_cond_wait_until(&srv->cond, &srv->lock, wake))
			;
		if (srv->stop) {
			g_mutex_unlock(&srv->lock);
			break;
		}
		g_mutex_unlock(&srv->lock);
	}
	return NULL;
}

static void server_free(Server *srv)
{
	if (!srv)
		return;
	g_free(srv->answered);
	g_free(srv->inflight);
	g_free(srv->xprev);
	g_free(srv->xbusy);
	g_free(srv->changes);
	g_aligned_free(srv->xout);
	g_mutex_clear(&srv->lock);
	g_cond_clear(&srv->cond);
	g_mutex_clear(&srv->out_io_lock);
	g_free(srv);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Server, server_free)

/* The last seq answered per host, from the replies on disk. */
static int load_answered(Server *srv)
{
	size_t len = (size_t)srv->max_host * MD_MBOX_RECORD_SIZE;
	g_autoptr(IoBuf) area = iobuf_new(len);
	g_autofree MdMboxReply *rep = g_new0(MdMboxReply, 1);
	int r;

	r = out_read(srv->mb, area, len, md_mbox_record_offset(1));
	if (r < 0)
		return r;
	for (unsigned h = 1; h <= srv->max_host; h++) {
		const uint8_t *rec = area + (size_t)(h - 1) * MD_MBOX_RECORD_SIZE;

		if (md_mbox_reply_decode(rec, MD_MBOX_RECORD_SIZE, rep) == 0 && rep->host_id == h &&
		    rep->state != MD_MBOX_REPLY_ACCEPTED)
			srv->answered[h] = rep->seq;
	}
	return 0;
}

static int write_changes(Server *srv)
{
	g_autoptr(IoBuf) b = iobuf_new(MD_MBOX_RECORD_SIZE);
	int r;

	g_mutex_lock(&srv->lock);
	r = md_mbox_changes_encode(srv->changes, b, MD_MBOX_RECORD_SIZE);
	g_mutex_unlock(&srv->lock);
	if (r < 0)
		return r;
	return out_write(srv->mb, b, MD_MBOX_RECORD_SIZE, md_mbox_record_offset(0));
}

int mbox_serve_start(MBox *mb, unsigned max_host_id, uint64_t lver, const MBoxServeOps *ops,
		     void *opaque)
{
	g_autoptr(Server) srv = NULL;
	g_autoptr(GError) error = NULL;
	size_t ovirt_len = (size_t)(max_host_id + 1) * MD_MBOX_HOST_MAILBOX_SIZE;
	int r;

	if (max_host_id < 1 || max_host_id > MD_MBOX_MAX_HOST_ID)
		return -EINVAL;
	g_mutex_lock(&mb->serve_lock);
	if (mb->srv) {
		g_mutex_unlock(&mb->serve_lock);
		return -EALREADY;
	}
	srv = g_new0(Server, 1);
	g_mutex_init(&srv->lock);
	g_cond_init(&srv->cond);
	g_mutex_init(&srv->out_io_lock);
	srv->mb = mb;
	srv->max_host = max_host_id;
	srv->lver = lver;
	if (ops)
		srv->ops = *ops;
	srv->opaque = opaque;
	srv->answered = g_new0(uint64_t, max_host_id + 1);
	srv->inflight = g_new0(uint64_t, max_host_id + 1);
	srv->xprev = g_malloc0(ovirt_len);
	srv->xbusy = g_malloc0((size_t)(max_host_id + 1) * MD_MBOX_MSG_SLOTS);
	srv->xout = iobuf_new(ovirt_len);
	srv->changes = g_new0(MdMboxChangeLog, 1);
	md_mbox_changes_init(srv->changes, mb->host_id, lver);

	/* The previous SPM's answers count; its oVirt replies do not (VDSM zeroes them). */
	r = load_answered(srv);
	if (r >= 0)
		r = out_write(mb, srv->xout, ovirt_len, 0);
	if (r >= 0)
		r = write_changes(srv);
	if (r < 0) {
		g_mutex_unlock(&mb->serve_lock);
		return r;
	}
	srv->pool = g_thread_pool_new_full(worker, srv, job_free, SERVER_WORKERS, FALSE, &error);
	if (!srv->pool) {
		g_mutex_unlock(&mb->serve_lock);
		log_debug(LOG_CLASS_MAILBOX, "mailbox: worker pool: %s", error->message);
		return -EAGAIN;
	}
	srv->thread = g_thread_try_new("mbox-serve", serve_thread, srv, &error);
	if (!srv->thread) {
		g_thread_pool_free(srv->pool, TRUE, TRUE);
		g_mutex_unlock(&mb->serve_lock);
		log_debug(LOG_CLASS_MAILBOX, "mailbox: serve thread: %s", error->message);
		return -EAGAIN;
	}
	log_debug(LOG_CLASS_MAILBOX, "mailbox: serving hosts 1..%u as SPM host %u lver %" PRIu64,
		  max_host_id, mb->host_id, lver);
	mb->srv = g_steal_pointer(&srv);
	g_mutex_unlock(&mb->serve_lock);
	return 0;
}

void mbox_serve_stop(MBox *mb)
{
	Server *srv;

	g_mutex_lock(&mb->serve_lock);
	srv = g_steal_pointer(&mb->srv);
	g_mutex_unlock(&mb->serve_lock);
	if (!srv)
		return;
	g_mutex_lock(&srv->lock);
	srv->stop = true;
	g_cond_broadcast(&srv->cond);
	g_mutex_unlock(&srv->lock);
	g_thread_join(srv->thread);
	/* Running callbacks finish; queued jobs are dropped (job_free). */
	g_thread_pool_free(srv->pool, TRUE, TRUE);
	log_debug(LOG_CLASS_MAILBOX, "mailbox: stopped serving as SPM host %u", mb->host_id);
	server_free(srv);
}

int mbox_publish_change(MBox *mb, const char *domain, const char *image)
{
	int r;

	g_mutex_lock(&mb->serve_lock);
	if (!mb->srv) {
		g_mutex_unlock(&mb->serve_lock);
		return -EPERM;
	}
	g_mutex_lock(&mb->srv->lock);
	r = md_mbox_changes_append(mb->srv->changes, domain, image ? image : "");
	g_mutex_unlock(&mb->srv->lock);
	if (r >= 0)
		r = write_changes(mb->srv);
	g_mutex_unlock(&mb->serve_lock);
	return r;
}
