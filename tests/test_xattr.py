"""user.ovstore.* attributes on volumes, domains and pools: values, the
writable ones, each error, and the generation counter."""

import errno
import os
import re
import subprocess

import pytest

import ondisk
from util import ovs
from util.ovs import Domain, errno_of, qemu_img, xget, xset

MiB = ovs.MiB
P = ovs.XATTR

VOLUME_KEYS = {"format", "allocation", "capacity", "parent", "role", "legality", "description",
               "generation", "io"}
DOMAIN_KEYS = {"uuid", "type", "class", "version", "role", "description"}
POOL_KEYS = {"uuid", "spm", "host_id"}


def ovstore_keys(path):
    return {n[len(P):] for n in os.listxattr(path) if n.startswith(P)}


@pytest.fixture
def pool3(storage, pool, make_tree):
    """master + regular data domain + ISO domain, mounted."""
    master = Domain.create(storage, pool, "--description", "the master")
    regular = Domain.create(storage, pool, "--description", "a regular one")
    iso = Domain.create(storage, pool, "--description", "isos", klass="iso")
    return make_tree([master, regular, iso]), master, regular, iso


def test_listxattr(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    assert ovstore_keys(v) == VOLUME_KEYS
    assert ovstore_keys(mnt.dom()) == DOMAIN_KEYS
    assert ovstore_keys(mnt.pool_dir) == POOL_KEYS


def test_volume_values(mnt):
    mnt.mkimg("img")
    base = mnt.raw("img", "base", size=3 * MiB)
    top = mnt.qcow2("img", "top", size="1G", backing="base", backing_fmt="raw")
    want = {
        base: {"format": "raw", "allocation": "sparse", "capacity": str(3 * MiB),
               "parent": "", "role": "internal", "legality": "legal", "description": ""},
        top: {"format": "qcow2", "allocation": "sparse", "capacity": str(ovs.GiB),
              "parent": "base", "role": "leaf", "legality": "legal", "description": ""},
    }
    for v, kv in want.items():
        for k, val in kv.items():
            assert xget(v, k) == val, (v, k)
        assert re.fullmatch(r"[0-9]+", xget(v, "generation"))
        assert xget(v, "io") in ("daemon", "passthrough")
        for k in VOLUME_KEYS:
            assert not xget(v, k).endswith("\n")


def test_domain_and_pool_values(pool3):
    t, master, regular, iso = pool3
    want = {
        master: {"uuid": master.uuid, "type": "file", "class": "data", "version": "5",
                 "role": "master", "description": "the master"},
        regular: {"uuid": regular.uuid, "type": "file", "class": "data", "version": "5",
                  "role": "regular", "description": "a regular one"},
        iso: {"uuid": iso.uuid, "type": "file", "class": "iso", "version": "5",
              "role": "regular", "description": "isos"},
    }
    for d, kv in want.items():
        for k, val in kv.items():
            assert xget(t.dom(d), k) == val, (d, k)
    assert xget(t.pool_dir, "uuid") == t.pool
    assert xget(t.pool_dir, "host_id") == "1"
    assert xget(t.pool_dir, "spm") == "1"


def test_set_description(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    for text in ("a disk", "", "h\u00e9llo \u2603 \U0001f600", "x" * 200, "\u00e9" * 100):
        xset(v, "description", text)
        assert xget(v, "description") == text
    # 201 bytes: too long, nothing changes
    for text in ("y" * 201, "\u00e9" * 100 + "z"):
        assert len(text.encode()) == 201
        assert errno_of(xset, v, "description", text) == errno.ERANGE
        assert xget(v, "description") == "\u00e9" * 100
    assert ondisk.read_volume_record(mnt.backing("img", "vol.meta"))["DESCRIPTION"] == \
        "\u00e9" * 100


def test_set_description_bad_utf8(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    xset(v, "description", "ok")
    assert errno_of(xset, v, "description", b"\xff\xfe") == errno.EINVAL
    assert xget(v, "description") == "ok"


def test_set_legality(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol", data=b"\x12" * 4096)
    xset(v, "legality", "illegal")
    assert xget(v, "legality") == "illegal"
    assert ondisk.read_volume_record(mnt.backing("img", "vol.meta"))["LEGALITY"] == "ILLEGAL"
    # a mark for tools: still served
    assert ovs.read_at(v, 0, 4096) == b"\x12" * 4096
    for bad in ("bogus", "fake", ""):
        assert errno_of(xset, v, "legality", bad) == errno.EINVAL, repr(bad)
    assert xget(v, "legality") == "illegal"
    xset(v, "legality", "legal")
    assert xget(v, "legality") == "legal"


@pytest.mark.parametrize("key", sorted(VOLUME_KEYS - {"legality", "description"}))
def test_volume_readonly_keys_eperm(mnt, key):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    old = xget(v, key)
    assert errno_of(xset, v, key, old) == errno.EPERM
    assert xget(v, key) == old


def test_domain_and_pool_readonly_keys_eperm(pool3):
    t, master, regular, iso = pool3
    for d in (master, regular, iso):
        for key in sorted(DOMAIN_KEYS):
            old = xget(t.dom(d), key)
            assert errno_of(xset, t.dom(d), key, old) == errno.EPERM, (d, key)
            assert xget(t.dom(d), key) == old
    for key in ("uuid", "host_id"):
        old = xget(t.pool_dir, key)
        assert errno_of(xset, t.pool_dir, key, old) == errno.EPERM, key


def test_unknown_key_enotsup(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    for path in (v, mnt.pool_dir):
        assert errno_of(xset, path, "no_such_key", "1") == errno.ENOTSUP, path
        assert errno_of(xget, path, "no_such_key") == errno.ENODATA, path


def test_enodata(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    for path in (mnt.root, mnt.pool_dir, mnt.dom(), mnt.img("img"), v):
        assert errno_of(os.getxattr, path, "user.nosuch") == errno.ENODATA, path
    for path in (mnt.pool_dir, mnt.dom(), mnt.img("img")):
        assert errno_of(xget, path, "format") == errno.ENODATA, path
    assert errno_of(xget, v, "uuid") == errno.ENODATA
    assert errno_of(xget, v, "spm") == errno.ENODATA
    assert errno_of(xget, mnt.dom(), "spm") == errno.ENODATA


def test_other_namespaces_not_supported(mnt):
    """Only the user namespace is kept: security., system. (POSIX ACLs) and
    trusted. names are EOPNOTSUPP, to read, set and remove, as on a file
    system mounted without them."""
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    for path in (mnt.root, mnt.dom(), mnt.img("img"), v):
        for name in ("security.selinux", "security.capability", "system.posix_acl_access",
                     "system.posix_acl_default", "trusted.x"):
            assert errno_of(os.getxattr, path, name) == errno.EOPNOTSUPP, (path, name)
        # (capabilities and ACLs the kernel handles itself before asking)
        for name in ("security.selinux", "trusted.x"):
            assert errno_of(os.setxattr, path, name, b"x") == errno.EOPNOTSUPP, (path, name)
            assert errno_of(os.removexattr, path, name) == errno.EOPNOTSUPP, (path, name)
        assert errno_of(os.removexattr, path, "user.nosuch") == errno.ENODATA, path


def test_ls_l_asks_for_xattrs_once(mnt):
    """GNU ls -l asks for an ACL and an SELinux label of every entry; told
    EOPNOTSUPP once it stops asking on this file system (with ENODATA it
    would ask 3 times per entry: 3 requests to the daemon each)."""
    n = 200
    for i in range(n):
        mnt.mkimg(f"img{i:03}")
    mnt.raw("img000", "vol")
    before = mnt.mount.status()["requests"]["getxattr"]
    out = subprocess.run(["ls", "-l", mnt.dom(), mnt.img("img000")], check=True,
                         capture_output=True, text=True).stdout
    after = mnt.mount.status()["requests"]["getxattr"]
    assert out.count("img") >= n and "vol" in out
    assert after - before < 10, f"{after - before} GETXATTR requests for ls -l of {n} entries"


def test_spm_bad_value_einval(mnt):
    for bad in ("bogus", "2", ""):
        assert errno_of(xset, mnt.pool_dir, "spm", bad) == errno.EINVAL, repr(bad)
    assert xget(mnt.pool_dir, "spm") == "1"


def test_generation_grows_with_each_change(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    q = mnt.qcow2("img", "q", size="64M")
    g = int(xget(v, "generation"))
    xset(v, "description", "one")
    assert int(xget(v, "generation")) == g + 1
    xset(v, "legality", "illegal")
    assert int(xget(v, "generation")) == g + 2
    xset(v, "legality", "legal")
    assert int(xget(v, "generation")) == g + 3
    os.truncate(v, MiB)
    assert int(xget(v, "generation")) > g + 3
    gq = int(xget(q, "generation"))
    qemu_img("resize", "-f", "qcow2", q, "128M")
    assert int(xget(q, "generation")) > gq
    assert ondisk.read_volume_record(mnt.backing("img", "q.meta"))["GEN"] == xget(q, "generation")


def test_generation_wraps(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    mnt.mount.stop()
    meta = mnt.backing("img", "vol.meta")
    with open(meta) as f:
        text = f.read()
    text = re.sub(r"^GEN=\d+$", "GEN=999", text, flags=re.M)
    with open(meta, "w") as f:
        f.write(text)
    mnt.mount.start()
    assert xget(v, "generation") == "999"
    xset(v, "description", "wrap")
    assert xget(v, "generation") == "0"
