/*
 * fault: named fault points for crash and error injection (STYLE.md 9,
 * modelled on QEMU blkdebug).
 *
 * Every step of a multi-step operation calls FAULT_POINT("op.step") before
 * it does the step.  Production never arms them.  Tests arm them with
 *
 *   OVSTORE_TEST_FAULT=point[:action][:once][,point...]
 *
 * action is "crash" (the process kills itself with SIGKILL, as a power cut
 * or kill -9 would), "delay" (the step waits FAULT_DELAY_MS, then runs: a
 * window in which another host or thread acts), an errno name ("ENOSPC",
 * "EIO") or number, and defaults to EIO.  With ":once" the point fires only the first time.
 * A name that is not in the table of known points is an error at start
 * (fault_setup() fails), so a test cannot arm a point that does not exist.
 * The table is printed by `ovstore --list-fault-points` so tests loop over
 * all of them.
 */
#pragma once

#define FAULT_DELAY_MS 3000

/* Reads OVSTORE_TEST_FAULT once; -EINVAL on a bad spec or unknown point. */
int fault_setup(void);
/* 0, or -errno when the point is armed for an error; does not return for crash. */
int fault_point(const char *name);
/*
 * Undo paths run with fault points quiet: an armed point simulates the
 * failure of a forward step, and the undo that follows must be able to put
 * things back (its own failures are real I/O errors, tested separately).
 * Nests; per thread.
 */
void fault_quiet_begin(void);
void fault_quiet_end(void);
/* NULL-terminated table of every fault point name. */
const char *const *fault_point_names(void);

#define FAULT_POINT(name) fault_point(name)
