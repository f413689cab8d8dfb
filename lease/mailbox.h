/*
 * mailbox: the storage mailbox transport between hosts and the SPM
 * (docs/mailbox.md; records: metadata/md-mailbox.h).  It belongs with the
 * SPM role: the SPM serves it, every host (the SPM too) calls through it.
 * It knows nothing of domains: it is given the inbox and the outbox as
 * (path, byte offset of the 16 MiB area in that path), e.g. a file
 * domain's dom_md/inbox at 0, or a PV device at the inbox LV's offset.
 * All I/O is O_DIRECT, aligned, 4096 bytes or whole areas, through
 * bounce buffers the functions allocate and free themselves.
 *
 * Calling sequence:
 *   mbox_open(inbox, off, outbox, off, host_id) -> MBox   clears this host's
 *                                      mailbox and withdraws any request a
 *                                      previous run left behind
 *   host side, any thread:
 *     mbox_call(mb, req, &reply, timeout_ms)       one ovstore request
 *     mbox_extend(mb, dom, vol, size_mib, timeout)  oVirt's xtnd message
 *     mbox_read_changes(mb, lver, since, &log, &first)
 *   SPM side, while holding the SPM lease:
 *     mbox_serve_start(mb, max_host_id, lver, ops, opaque)
 *     mbox_publish_change(mb, domain, image)       after each change made
 *     mbox_serve_stop(mb)                          before releasing it
 *   mbox_free(mb)                                  stops serving, clears
 *
 * Threads: mbox_call() calls are serialised per MBox (one outstanding
 * request per host: the host has one request record); mbox_extend() calls
 * run concurrently (up to 63, one per message slot).  The serve callbacks
 * run on a small pool of worker threads, concurrently for different hosts,
 * never twice at once for the same host's record or the same xtnd slot.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "metadata/md-mailbox.h"

typedef struct MBox MBox;

/*
 * Opens both areas O_DIRECT.  The offsets must be multiples of 4096 and
 * host_id 1..MD_MBOX_MAX_HOST_ID, else -EINVAL; -errno of open(2).
 * The same path may be given twice (two LVs on one PV).
 */
int mbox_open(const char *inbox_path, uint64_t inbox_off, const char *outbox_path,
	      uint64_t outbox_off, unsigned host_id, MBox **ret);
/* Stops serving, clears this host's oVirt mailbox and request record. */
void mbox_free(MBox *mb);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MBox, mbox_free)

unsigned mbox_host_id(const MBox *mb);

/*
 * Sends req (host_id and seq are filled in here: the caller's are ignored)
 * and waits for the SPM's answer.
 *   0 / -errno     the SPM ran it: the handler's result; *ret is the DONE
 *                  reply (written whatever the result: ret->fields)
 *   -ETIMEDOUT     no answer in timeout_ms, and the SPM did not and will
 *                  not run it (the request was withdrawn before it took it)
 *   -EINPROGRESS   no answer in time, but the SPM had accepted the request
 *                  and then stayed silent (died or hung while running it):
 *                  the outcome is decided by the SPM's journal recovery,
 *                  finished or rolled back, never half done; reload the
 *                  object before trusting any cached state
 *   -EINVAL        req does not encode (nothing sent)
 *   other -errno   the mailbox I/O failed while sending or withdrawing: the
 *                  outcome is unknown, as for -EINPROGRESS
 * (A handler's own result may of course be any of these codes too; only
 * the state of *ret tells them apart, and *ret is written only for DONE.)
 * The time spent waiting for an earlier mbox_call() on the same MBox counts
 * against timeout_ms.  A withdrawn request may keep the caller up to
 * MBOX_WITHDRAW_GRACE_MS longer than timeout_ms (see lease/mailbox.c).
 */
int mbox_call(MBox *mb, const MdMboxRequest *req, MdMboxReply *ret, unsigned timeout_ms);

#define MBOX_WITHDRAW_GRACE_MS 1000u

/*
 * oVirt's thin-provisioning extend (reference section 13): asks the SPM to
 * extend the LV of vol_uuid in dom_uuid to size_mib MiB, waits for the
 * reply, acknowledges it with the clean message.  0: extended (the caller
 * still refreshes the LV and checks its size); -EREMOTEIO: the SPM answered
 * that it failed; -ETIMEDOUT: no answer (the request is withdrawn with the
 * clean message, but an SPM that already took it may still extend: that is
 * harmless, extension only grows); -EBUSY: all 63 slots are in use;
 * -EINVAL/-ERANGE: bad UUID or size.
 */
int mbox_extend(MBox *mb, const char *dom_uuid, const char *vol_uuid, uint64_t size_mib,
		unsigned timeout_ms);

/*
 * What the SPM does with a request.  reply arrives as a DONE reply with no
 * fields; the callback may add fields and returns the result (0 or -errno;
 * anything else is logged and becomes -EIO).  Runs on a worker thread.
 */
typedef int (*MBoxRequestFn)(const MdMboxRequest *req, MdMboxReply *reply, void *opaque);
/* The SPM extends a volume for host_id: 0 or -errno. */
typedef int (*MBoxExtendFn)(unsigned host_id, const MdMboxExtend *x, void *opaque);

typedef struct MBoxServeOps {
	MBoxRequestFn request; /* NULL: every request fails with -EOPNOTSUPP */
	MBoxExtendFn extend;   /* NULL: every extension fails */
} MBoxServeOps;

/*
 * Starts serving hosts 1..max_host_id (the engine's maxHostID, usually
 * 250) as the SPM of lease version lver: zeroes oVirt's outbox range (as
 * VDSM does), starts a new change log, and a thread that reads the event
 * block every MBOX_EVENT_POLL_MS and every host's records on an event
 * change or every MBOX_SCAN_MS.  A request is new when its seq differs
 * from the last one answered for that host (read back from the outbox at
 * start, so a new SPM does not answer twice what the old one answered).
 * -EALREADY when serving; -EINVAL for max_host_id out of range.
 */
int mbox_serve_start(MBox *mb, unsigned max_host_id, uint64_t lver, const MBoxServeOps *ops,
		     void *opaque);
/*
 * Stops the thread; waits for the callbacks that are running, drops the
 * requests not started (the next SPM will take them).
 */
void mbox_serve_stop(MBox *mb);

#define MBOX_EVENT_POLL_MS 5u
#define MBOX_SCAN_MS 250u

/*
 * SPM: records that image of domain (or "" for the whole domain) changed
 * and rewrites the change log.  -EPERM when not serving.
 */
int mbox_publish_change(MBox *mb, const char *domain, const char *image);
/*
 * Host: reads the change log into *ret.  0 when ret->entries[*ret_first ..
 * ret->n) are exactly the changes after since_seq of the log of lver; 1
 * when the caller must reload everything (another SPM term, or changes
 * dropped from the ring), then *ret_first is 0; -ENODATA when there is no
 * log (no SPM yet); -EUCLEAN for a corrupt one; -errno of the I/O.
 */
int mbox_read_changes(MBox *mb, uint64_t lver, uint64_t since_seq, MdMboxChangeLog *ret,
		      size_t *ret_first);
