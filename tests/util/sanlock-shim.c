/*
 * sanlock-shim: LD_PRELOADed into the sanlock daemons the tests start.
 *
 * A privileged sanlock daemon raises RLIMIT_MEMLOCK and RLIMIT_RTPRIO to
 * unlimited at start and exits when that fails.  Test machines (containers)
 * often run as root without CAP_SYS_RESOURCE, where raising a hard limit is
 * refused; the tests run sanlock without mlockall (-l 0) and without
 * real-time scheduling (-h 0), so neither limit matters to them.  This shim
 * answers success for those two resources when the kernel refuses, and
 * passes everything else through.  Production runs the distribution's
 * sanlock service, never this.
 */
/* The build asks for 64-bit off_t, which renames setrlimit to setrlimit64;
 * sanlock calls setrlimit, so that is the name to define. */
#undef _FILE_OFFSET_BITS

#include <dlfcn.h>
#include <errno.h>
#include <sys/resource.h>

typedef int (*setrlimit_fn)(__rlimit_resource_t, const struct rlimit *);

int setrlimit(__rlimit_resource_t resource, const struct rlimit *rlim)
{
	static setrlimit_fn real;
	int r;

	if (!real)
		real = (setrlimit_fn)dlsym(RTLD_NEXT, "setrlimit");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	r = real(resource, rlim);
	if (r < 0 && errno == EPERM &&
	    (resource == RLIMIT_MEMLOCK || resource == RLIMIT_RTPRIO))
		return 0;
	return r;
}
