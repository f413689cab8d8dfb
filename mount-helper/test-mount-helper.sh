#!/bin/sh
# Checks mount.ovstore's translation (common/mountopts.c) through the built
# helper: fake mode (-f) prints the command, and a stand-in ovstore binary
# records the argv it is exec'd with.  No mount, no root needed.
#
# usage: test-mount-helper.sh PATH/TO/mount.ovstore
set -u

helper=${1:?usage: test-mount-helper.sh PATH/TO/mount.ovstore}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-mount-helper.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
failed=0
n=0

# A stand-in ovstore: writes its argv, one per line, and exits with $STUB_RC.
cat >"$tmp/ovstore" <<'EOF'
#!/bin/sh
printf '%s\n' "$0" "$@" >"$STUB_OUT"
exit "${STUB_RC:-0}"
EOF
chmod +x "$tmp/ovstore"
export OVSTORE_BIN="$tmp/ovstore" STUB_OUT="$tmp/argv"

bad() {
	echo "FAIL: $*"
	failed=$((failed + 1))
}

# fake EXPECTED-STDOUT ARGS...: runs the helper with -f first, wants exit 0.
fake() {
	want=$1
	shift
	n=$((n + 1))
	got=$("$helper" -f "$@" 2>"$tmp/err")
	rc=$?
	[ $rc -eq 0 ] || { bad "mount.ovstore -f $*: exit $rc: $(cat "$tmp/err")"; return; }
	[ "$got" = "$want" ] || bad "mount.ovstore -f $*
	  got:  $got
	  want: $want"
	[ ! -s "$tmp/err" ] || bad "mount.ovstore -f $*: stderr: $(cat "$tmp/err")"
}

# refuse RC STDERR-PATTERN ARGS...: wants exit RC and one stderr line matching.
refuse() {
	want_rc=$1
	pattern=$2
	shift 2
	n=$((n + 1))
	"$helper" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ $rc -eq "$want_rc" ] || bad "mount.ovstore $*: exit $rc, want $want_rc"
	[ "$(wc -l <"$tmp/err")" -eq 1 ] || bad "mount.ovstore $*: want one stderr line, got:
$(cat "$tmp/err")"
	grep -q -- "$pattern" "$tmp/err" ||
		bad "mount.ovstore $*: stderr lacks '$pattern': $(cat "$tmp/err")"
	[ ! -s "$tmp/out" ] || bad "mount.ovstore $*: unexpected stdout: $(cat "$tmp/out")"
}

B=$OVSTORE_BIN

# --- what mount(8) passes for an fstab line
fake "$B mount --storage /srv/ovstore --lease local /ovstore" \
	/srv/ovstore /ovstore -o rw,lease=local,_netdev -t ovstore
fake "$B mount --storage /srv/ovstore /ovstore" /srv/ovstore /ovstore
fake "$B mount --storage /srv/ovstore -o ro /ovstore" /srv/ovstore /ovstore -o ro
# product options, all of them; everything else kept in order
want="$B mount --storage /a --storage /b --storage /c --lease sanlock --host-id 7"
want="$want --io-timeout 2 -o uid=36,gid=36,allow_other,passthrough=off,chunk_mb=256,ro /ovstore"
opts=storage=/a:/b,uid=36,storage=/c,host_id=7,gid=36,io_timeout=2,lease=sanlock
opts=$opts,allow_other,passthrough=off,chunk_mb=256,ro
fake "$want" none /ovstore -o "$opts"
# SOURCE none/ovstore/empty name no storage; a real one comes first
fake "$B mount /ovstore" ovstore /ovstore
fake "$B mount /ovstore" '' /ovstore
fake "$B mount --storage /dev/loop0 --storage /x /ovstore" /dev/loop0 /ovstore -o storage=/x
# later values win; numbers are normalised
fake "$B mount --lease sanlock --host-id 3 --io-timeout 10 /m" \
	none /m -o lease=local,host_id=2,io_timeout=5,lease=sanlock,host_id=3,io_timeout=10
fake "$B mount --host-id 7 --io-timeout 8 /m" none /m -o host_id=007,io_timeout=08
# fstab and mount(8) bookkeeping is dropped
opts=defaults,rw,_netdev,nofail,auto,noauto,user,users,nouser,user=bob,owner,group
opts=$opts,x-systemd.automount,x-systemd.requires=a.mount,comment=systemd.x
opts=$opts,helper=udisks2,uhelper=udisks2
fake "$B mount --storage /s /m" /s /m -o "$opts"
# mount.fuse3-style additions (dev,suid) and unknown options pass unchanged
fake "$B mount --storage /s -o dev,suid,default_permissions,max_read=131072,future_opt=1 /m" \
	/s /m -o dev,suid,,default_permissions,max_read=131072,future_opt=1
# quotes and backslashes protect commas; storage paths are unescaped
fake "$B mount --storage /s -o 'fsname=\"a,b\",esc\\,aped' /m" /s /m -o 'fsname="a,b",esc\,aped'
fake "$B mount --storage /s --storage /a:b --storage /c,d /m" /s /m -o 'storage=/a\:b:/c\,d'
# quoting of the printed command
fake "$B mount --storage 'my storage' -o 'fsname=it'\\''s' '/mnt/with space'" \
	'my storage' '/mnt/with space' -o "fsname=it's"
# flags anywhere, clustered, -oVALUE, repeated -o, -t fuse.ovstore
fake "$B mount --storage /a -o allow_other,ro /b" -snv /a -oallow_other /b -o ro -t fuse.ovstore
fake "$B mount --storage /a /b" -t ovstore -- /a /b
# a mountpoint that looks like a flag is guarded
fake "$B mount -- -m" ovstore -- -m
# MOUNTPOINT alone (mount.fuse3 drops an empty source)
fake "$B mount /m" /m

# --- bad input: exit 1, one line
refuse 1 "unknown lease 'bogus'" /s /m -o lease=bogus
refuse 1 "bad host_id '0'" /s /m -o host_id=0
refuse 1 "bad host_id '2001'" /s /m -o host_id=2001
refuse 1 "bad host_id '-1'" /s /m -o host_id=-1
refuse 1 "bad host_id '12x'" /s /m -o host_id=12x
refuse 1 "bad host_id ''" /s /m -o host_id
refuse 1 "bad host_id ' 1'" /s /m -o 'host_id= 1'
refuse 1 "bad io_timeout '0'" /s /m -o io_timeout=0
refuse 1 "bad io_timeout '99999999999999999999'" /s /m -o io_timeout=99999999999999999999
refuse 1 "empty path in storage" /s /m -o storage=/a::/b
refuse 1 "empty path in storage" /s /m -o storage=
refuse 1 "unterminated quote" /s /m -o 'a="x'
refuse 1 "no mountpoint given" -f
refuse 1 "empty mountpoint" /s '' -f
refuse 1 "unexpected argument '/c'" /a /b /c
refuse 1 "unsupported filesystem type 'nfs'" /a /b -t nfs
refuse 1 "not supported" /a /b -N /proc/1/ns/mnt
refuse 1 "unknown option '-x'" /a /b -x
refuse 1 "unknown option '--bogus'" /a /b --bogus
refuse 1 "option '-o' needs a value" /a /b -o
# the stand-in must not have run for any of these
n=$((n + 1))
[ ! -e "$tmp/argv" ] || bad "ovstore ran for bad input: $(cat "$tmp/argv")"

# --- exec: the exact argv, exit status passed through
n=$((n + 1))
if "$helper" /srv/x '/mnt/a b' -o lease=local,allow_other >"$tmp/out" 2>"$tmp/err"; then
	printf '%s\n' "$B" mount --storage /srv/x --lease local -o allow_other '/mnt/a b' >"$tmp/want"
	cmp -s "$tmp/argv" "$tmp/want" || bad "exec argv: got $(cat "$tmp/argv")"
	if [ -s "$tmp/out" ] || [ -s "$tmp/err" ]; then bad "exec: unexpected output"; fi
else
	bad "exec: exit $?: $(cat "$tmp/err")"
fi
n=$((n + 1))
STUB_RC=32 "$helper" /s /m 2>/dev/null
rc=$?
[ $rc -eq 32 ] || bad "exit status of ovstore not passed on: $rc"
n=$((n + 1))
out=$("$helper" /s /m -v 2>&1)
[ "$out" = "$B mount --storage /s /m" ] || bad "-v output: $out"
# a missing binary is a mount failure (32), said in one line
OVSTORE_BIN="$tmp/nonexistent"
export OVSTORE_BIN
refuse 32 "cannot run '$tmp/nonexistent'" /s /m
OVSTORE_BIN="$tmp/ovstore"

# --- without OVSTORE_BIN the ovstore next to the helper is used
n=$((n + 1))
mkdir "$tmp/sbin"
cp "$helper" "$tmp/sbin/mount.ovstore"
cp "$tmp/ovstore" "$tmp/sbin/ovstore"
rm -f "$tmp/argv"
if env -u OVSTORE_BIN "$tmp/sbin/mount.ovstore" /s /m 2>"$tmp/err"; then
	[ "$(head -n1 "$tmp/argv")" = "$tmp/sbin/ovstore" ] ||
		bad "sibling lookup ran: $(head -n1 "$tmp/argv")"
else
	bad "sibling lookup: $(cat "$tmp/err")"
fi

# --- --help and --version go to stdout, exit 0
n=$((n + 1))
"$helper" --help | grep -q '^Usage: mount.ovstore' || bad "--help"
n=$((n + 1))
"$helper" -V | grep -q '^mount.ovstore ' || bad "-V"

if [ $failed -ne 0 ]; then
	echo "$failed of $n checks failed"
	exit 1
fi
echo "all $n checks passed"
