#!/bin/bash
# demo.sh: a working ovstore on a fresh Debian 12 machine, as root.
#
# Installs what is missing, builds ./build, makes a demo file domain in
# /var/tmp/ovstore-demo/storage (once) and mounts it at /ovstore with the
# single-host local lease.  Running it again is harmless: an existing mount
# is reported and left alone.  Stop the demo with `umount /ovstore`.
#
# OVSTORE_DEMO_STORAGE and OVSTORE_DEMO_MOUNTPOINT move the two places.
# (Storage stays off tmpfs: a domain needs O_DIRECT.)
set -euo pipefail

cd "$(dirname "$0")/.."

STORAGE=${OVSTORE_DEMO_STORAGE:-/var/tmp/ovstore-demo/storage}
MOUNTPOINT=${OVSTORE_DEMO_MOUNTPOINT:-/ovstore}
PACKAGES=(libfuse3-dev fuse3 libdevmapper-dev lvm2 sanlock libsanlock-dev libaio-dev
	liburing-dev libglib2.0-dev libjson-glib-dev python3-pytest qemu-utils
	qemu-system-common fio attr cmake gcc clang pkg-config)

die() {
	echo "demo.sh: $*" >&2
	exit 1
}

install_deps() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q ' ok installed$' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "demo.sh: installing ${missing[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${missing[@]}"
}

hints() {
	local ovstore=$1 pool="" domain=""
	pool=$(find "$MOUNTPOINT" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null |
		head -n1 || true)
	[ -n "$pool" ] && domain=$(find "$MOUNTPOINT/$pool" -mindepth 1 -maxdepth 1 -type d \
		-printf '%f\n' 2>/dev/null | head -n1 || true)
	cat <<EOF

Try:
  ls $MOUNTPOINT
  $ovstore status $MOUNTPOINT
EOF
	if [ -n "$domain" ]; then
		cat <<EOF
  mkdir $MOUNTPOINT/$pool/$domain/img1
  qemu-img create -f qcow2 $MOUNTPOINT/$pool/$domain/img1/vol1 1G
  getfattr -d -m user.ovstore $MOUNTPOINT/$pool/$domain/img1/vol1
EOF
	fi
	cat <<EOF
Stop it with:
  umount $MOUNTPOINT
EOF
}

[ "$(id -u)" -eq 0 ] || die "run me as root: I install packages and mount $MOUNTPOINT"

install_deps
cmake -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
ovstore=$PWD/build/cli/ovstore
[ -x "$ovstore" ] || die "the build made no $ovstore"

if findmnt -rn --mountpoint "$MOUNTPOINT" >/dev/null; then
	if stat "$MOUNTPOINT/." >/dev/null 2>&1; then
		echo "demo.sh: $MOUNTPOINT is already mounted, nothing to do"
		hints "$ovstore"
		exit 0
	fi
	# The daemon is gone (kill -9, crash): "Transport endpoint is not connected".
	echo "demo.sh: $MOUNTPOINT is a dead mount, unmounting it first"
	fusermount3 -u "$MOUNTPOINT" 2>/dev/null || umount -l "$MOUNTPOINT"
fi

[ -c /dev/fuse ] || modprobe fuse 2>/dev/null || true
[ -c /dev/fuse ] || die "no /dev/fuse: this machine cannot run FUSE file systems"

mkdir -p "$STORAGE" "$MOUNTPOINT"
shopt -s nullglob
existing=("$STORAGE"/*/dom_md)
shopt -u nullglob
if [ ${#existing[@]} -eq 0 ]; then
	pool=$(cat /proc/sys/kernel/random/uuid)
	domain=$("$ovstore" domain create --pool "$pool" --dir "$STORAGE" --description demo)
	echo "demo.sh: created domain $domain (pool $pool) in $STORAGE"
else
	echo "demo.sh: using the domain already in $STORAGE"
fi

# Without -f, `ovstore mount` returns once the mount is up and keeps serving
# it in the background.
"$ovstore" mount --lease local --storage "$STORAGE" "$MOUNTPOINT"
echo "demo.sh: mounted $STORAGE at $MOUNTPOINT (lease local, single host)"
hints "$ovstore"
