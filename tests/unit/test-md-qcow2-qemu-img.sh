#!/bin/sh
# md_qcow2_set_backing() checked by qemu-img: images made by qemu-img get a
# new backing name through tests/unit/qcow2-set-backing, then qemu-img info
# must report that name and qemu-img check must find the image clean.
#
#   test-md-qcow2-qemu-img.sh QCOW2_SET_BACKING QEMU_IMG
# Exit 77 (skipped) without qemu-img.
set -eu

helper=$1
qemu_img=${2:-}
if [ -z "$qemu_img" ] || [ ! -x "$qemu_img" ]; then
	echo "qemu-img not found, skipping"
	exit 77
fi

tmp=$(mktemp -d /var/tmp/test-md-qcow2.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

backing_of() {
	"$qemu_img" info -U --output=json "$1" |
		python3 -c 'import json, sys; print(json.load(sys.stdin).get("backing-filename", ""))'
}

"$qemu_img" create -q -f raw base.raw 1G
"$qemu_img" create -q -f qcow2 -o compat=1.1 base.qcow2 1G
long=$(python3 -c 'print("b" * 200)')
ln -s base.qcow2 "$long"

check() { # image expected-backing
	[ "$(backing_of "$1")" = "$2" ] || fail "$1: backing '$(backing_of "$1")', expected '$2'"
	"$qemu_img" check -q "$1" || fail "$1: qemu-img check failed"
}

for compat in 1.1 0.10; do
	echo "compat=$compat"
	# No backing file yet: the name goes after the header extensions.
	"$qemu_img" create -q -f qcow2 -o compat=$compat plain.qcow2 1G
	"$helper" plain.qcow2 base.raw
	check plain.qcow2 base.raw

	# Replace a backing name: shorter, longer, then remove it.
	"$qemu_img" create -q -f qcow2 -o compat=$compat -b base.qcow2 -F qcow2 top.qcow2
	check top.qcow2 base.qcow2
	"$helper" top.qcow2 "$long"
	check top.qcow2 "$long"
	"$helper" top.qcow2 base.qcow2
	check top.qcow2 base.qcow2
	"$helper" top.qcow2 ""
	check top.qcow2 ""
done

# 512-byte clusters: a name that does not fit in the first cluster is refused.
"$qemu_img" create -q -f qcow2 -o cluster_size=512 -b base.raw -F raw small.qcow2
rc=0
"$helper" small.qcow2 "$(python3 -c 'print("z" * 400)')" 2>/dev/null || rc=$?
[ $rc -eq 3 ] || fail "small.qcow2: expected ENOSPC (3), got $rc"
check small.qcow2 base.raw
echo ok
