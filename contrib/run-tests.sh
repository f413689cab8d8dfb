#!/bin/bash
# run-tests.sh: install what the build and the suite need (Debian 12, only
# what is missing), build, and run ctest.
#
#   contrib/run-tests.sh [--sanitize] [--no-install] [--] [CTEST-ARGS...]
#
#   (default)    ./build, RelWithDebInfo, warnings as errors
#   --sanitize   ./build-asan, ASan + UBSan (clang, or gcc without clang; $CC
#                overrides), asserts on, halt on the first report
#   --no-install never run apt-get; fail if a package is missing
#   CTEST-ARGS   passed to ctest, e.g. -R pytest, -V; everything after "--"
#                and every argument this script does not know goes there
#
# Environment: OVSTORE_TEST_* knobs (tests/README.md) reach the tests
# unchanged, e.g. OVSTORE_TEST_PASSTHROUGH=auto for the passthrough tier.
set -euo pipefail

cd "$(dirname "$0")/.."

# sanlock: the daemons of test_sanlock.py; procps: kill(1), the daemon's
# sanlock killpath
PACKAGES=(libfuse3-dev fuse3 libdevmapper-dev lvm2 sanlock libsanlock-dev libaio-dev
	liburing-dev libglib2.0-dev libjson-glib-dev python3-pytest qemu-utils
	qemu-system-common fio attr cmake gcc clang pkg-config procps)

die() {
	echo "run-tests.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '2,15s/^# \{0,1\}//p' "$0"
}

install_deps() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q ' ok installed$' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$no_install" = 1 ] || [ "$(id -u)" -ne 0 ]; then
		die "missing packages: ${missing[*]} (run as root to install them)"
	fi
	echo "run-tests.sh: installing ${missing[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${missing[@]}"
}

# LeakSanitizer stops the world with ptrace-like means that some sandboxes
# forbid; there it dies instead of reporting.  Probe once and say so.
leak_detection_works() {
	local cc=$1 dir=$2 out
	printf '#include <stdlib.h>\nvoid *p;\nint main(void) { p = malloc(7); p = 0; return 0; }\n' \
		>"$dir/lsan-probe.c"
	"$cc" -fsanitize=address -g -o "$dir/lsan-probe" "$dir/lsan-probe.c" 2>/dev/null ||
		return 1
	out=$(ASAN_OPTIONS=detect_leaks=1 "$dir/lsan-probe" 2>&1 || true)
	grep -q 'detected memory leaks' <<<"$out"
}

sanitize=0
no_install=0
ctest_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--sanitize) sanitize=1 ;;
	--no-install) no_install=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		shift
		ctest_args+=("$@")
		break
		;;
	*) ctest_args+=("$1") ;;
	esac
	shift
done

install_deps

jobs=$(nproc 2>/dev/null || echo 2)
if [ "$sanitize" = 1 ]; then
	build="build-asan"
	cc=${CC:-}
	if [ -z "$cc" ]; then
		if command -v clang >/dev/null; then cc=clang; else cc=gcc; fi
	fi
	mkdir -p "$build"
	leaks=1
	if ! leak_detection_works "$cc" "$build"; then
		leaks=0
		echo "run-tests.sh: LeakSanitizer does not work here (ptrace restricted?), leak checks off"
	fi
	# Sanitizer reports end the process (halt_on_error) and fail the tests
	# that watch daemon stderr.  User settings come last, so they win.
	asan="halt_on_error=1:detect_leaks=$leaks:detect_stack_use_after_return=1"
	export ASAN_OPTIONS="$asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
	export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
	# RelWithDebInfo defines NDEBUG; a test build wants its asserts.
	cmake -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DOVSTORE_WERROR=ON \
		-DOVSTORE_SANITIZE='address;undefined'
else
	build=build
	cmake -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOVSTORE_WERROR=ON
fi
cmake --build "$build" -j"$jobs"
ctest --test-dir "$build" --output-on-failure "${ctest_args[@]}"
