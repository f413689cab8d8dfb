"""The tree: shape, names, modes and owners, permissions, listing order,
statfs, ISO domains, ENOSPC."""

import errno
import os
import stat
import subprocess
import uuid

import pytest

from util import ovs
from util.ovs import Domain, errno_of, errname, mode, xget

MiB = ovs.MiB


def test_shape(mnt):
    assert os.listdir(mnt.root) == [mnt.pool]
    assert os.listdir(mnt.pool_dir) == [mnt.sd]
    assert os.listdir(mnt.dom()) == []
    mnt.mkimg("img")
    assert os.listdir(mnt.dom()) == ["img"]
    assert os.path.isdir(mnt.backing("img"))
    mnt.raw("img", "vol")
    assert os.listdir(mnt.img("img")) == ["vol"]
    st = os.stat(mnt.vol("img", "vol"))
    assert stat.S_ISREG(st.st_mode)
    # nothing of the product's own files shows
    for d in (mnt.root, mnt.pool_dir, mnt.dom(), mnt.img("img")):
        assert not [n for n in os.listdir(d) if n.startswith(".")]


def test_synthetic_dirs_modes(mnt):
    for d in (mnt.root, mnt.pool_dir, mnt.dom()):
        st = os.stat(d)
        assert stat.S_ISDIR(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o770, (d, oct(st.st_mode))
        assert (st.st_uid, st.st_gid) == (36, 36)


def test_synthetic_dirs_refuse_chmod_chown(mnt):
    for d in (mnt.root, mnt.pool_dir, mnt.dom()):
        assert errno_of(os.chmod, d, 0o755) == errno.EPERM
        assert errno_of(os.chown, d, 0, 0) == errno.EPERM
        assert mode(d) == 0o770


def test_owner_options(domain, make_tree):
    t = make_tree([domain], opts=["uid=107", "gid=108"])
    for d in (t.root, t.pool_dir, t.dom()):
        st = os.stat(d)
        assert (st.st_uid, st.st_gid) == (107, 108)
    t.mkimg("img")
    v = t.raw("img", "vol")
    for p in (t.img("img"), v, t.backing("img"), t.backing("img", "vol")):
        st = os.stat(p)
        assert (st.st_uid, st.st_gid) == (107, 108), p
    assert mode(t.img("img")) == 0o770
    assert mode(v) == 0o660


def test_mkdir_root_and_pool_eperm(mnt):
    for parent in (mnt.root, mnt.pool_dir):
        for name in ("x", str(uuid.uuid4())):
            assert errno_of(os.mkdir, os.path.join(parent, name)) == errno.EPERM
    assert os.listdir(mnt.root) == [mnt.pool]
    assert os.listdir(mnt.pool_dir) == [mnt.sd]


def test_mkdir_eexist(mnt):
    mnt.mkimg("img")
    assert errno_of(os.mkdir, mnt.img("img")) == errno.EEXIST


VALID = ["a", "A_z.0+9-", "0abc", "_x", "+x", "x.", str(uuid.uuid4()),
         "n" * 64]
INVALID = ["n" * 65, ".hidden", "-dash", "a b", "a:b", "a@b", "caf\u00e9", "a\\b", "a*",
           "a\tb", "a,b"]


@pytest.mark.parametrize("name", VALID, ids=lambda n: n if len(n) < 20 else f"len{len(n)}")
def test_valid_names(mnt, name):
    mnt.mkimg(name)
    assert os.path.isdir(mnt.backing(name))
    mnt.raw(name, name)
    assert os.listdir(mnt.img(name)) == [name]
    assert os.path.exists(mnt.backing(name, name))


@pytest.mark.parametrize("name", INVALID, ids=lambda n: repr(n) if len(n) < 20 else f"len{len(n)}")
def test_invalid_names(mnt, name):
    assert errno_of(os.mkdir, mnt.img(name)) == errno.EINVAL
    mnt.mkimg("img")
    assert errno_of(ovs.create_volume, mnt.vol("img", name)) == errno.EINVAL
    assert errno_of(os.mknod, mnt.vol("img", name), stat.S_IFREG | 0o660) == errno.EINVAL
    assert os.listdir(mnt.dom()) == ["img"]
    assert os.listdir(mnt.img("img")) == []
    assert os.listdir(mnt.backing()) == ["img"]
    assert os.listdir(mnt.backing("img")) == []


def test_rename_to_invalid_name(mnt):
    mnt.mkimg("img")
    mnt.raw("img", "vol")
    assert errno_of(os.rename, mnt.vol("img", "vol"), mnt.vol("img", ".vol")) == errno.EINVAL
    assert errno_of(os.rename, mnt.img("img"), mnt.img("-img")) == errno.EINVAL
    assert os.listdir(mnt.img("img")) == ["vol"]


def test_rmdir(mnt):
    mnt.mkimg("empty")
    os.rmdir(mnt.img("empty"))
    assert not os.path.exists(mnt.img("empty"))
    assert not os.path.exists(mnt.backing("empty"))
    mnt.mkimg("full")
    mnt.raw("full", "vol")
    assert errno_of(os.rmdir, mnt.img("full")) == errno.ENOTEMPTY
    assert os.listdir(mnt.img("full")) == ["vol"]


def make_chain(t, img, names, size="16M"):
    """raw base, then qcow2 children: names[0] <- names[1] <- ..."""
    t.raw(img, names[0], size=8 * MiB)
    prev, fmt = names[0], "raw"
    for n in names[1:]:
        t.qcow2(img, n, size=size, backing=prev, backing_fmt=fmt)
        prev, fmt = n, "qcow2"


def test_ls_leaf_first(mnt):
    mnt.mkimg("img")
    make_chain(mnt, "img", ["base", "mid", "top"])
    assert os.listdir(mnt.img("img")) == ["top", "mid", "base"]
    # a second chain (a volume naming no parent) comes whole, leaf first too
    mnt.raw("img", "solo")
    make_chain(mnt, "img", ["b2", "t2"])
    got = os.listdir(mnt.img("img"))
    assert sorted(got) == sorted(["top", "mid", "base", "solo", "b2", "t2"])
    for chain in (["top", "mid", "base"], ["t2", "b2"]):
        i = got.index(chain[0])
        assert got[i:i + len(chain)] == chain, got


def test_rm_r_image(mnt):
    mnt.mkimg("img")
    make_chain(mnt, "img", ["base", "mid", "top"])
    mnt.raw("img", "solo")
    r = subprocess.run(["rm", "-r", mnt.img("img")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert os.listdir(mnt.dom()) == []
    assert os.listdir(mnt.backing()) == []


def test_volume_modes_by_role(mnt):
    mnt.mkimg("img")
    mnt.mkimg("other")
    make_chain(mnt, "img", ["base", "top"])
    mnt.raw("other", "tmpl")
    os.link(mnt.vol("other", "tmpl"), mnt.vol("img", "tmpl"))
    want = {("img", "base"): 0o440, ("img", "top"): 0o660, ("img", "tmpl"): 0o440,
            ("other", "tmpl"): 0o440}
    for (img, v), m in want.items():
        assert ovs.mode_within_cache(mnt.vol(img, v), m) == m, (img, v)
        st = os.stat(mnt.vol(img, v))
        assert stat.S_ISREG(st.st_mode)
        assert (st.st_uid, st.st_gid) == (36, 36)
    assert mode(mnt.img("img")) == 0o770


def test_write_bits_come_back_when_leaf_again(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "base", size=MiB)
    os.chmod(v, 0o640)
    assert mode(v) == 0o640
    mnt.qcow2("img", "top", backing="base", backing_fmt="raw")
    assert ovs.mode_within_cache(v, 0o440) == 0o440
    assert ovs.mode(mnt.backing("img", "base")) == 0o640
    os.unlink(mnt.vol("img", "top"))
    assert ovs.mode_within_cache(v, 0o640) == 0o640


OPEN_RW = """
import os
try:
    os.close(os.open({path!r}, os.O_RDWR))
    print("ok")
except OSError as e:
    print(e.errno)
"""

CHMOD = """
import os
try:
    os.chmod({path!r}, 0o600)
    print("ok")
except OSError as e:
    print(e.errno)
"""


def test_permissions_enforced(domain, make_tree):
    t = make_tree([domain], opts=["allow_other"])
    t.mkimg("img")
    v = t.raw("img", "vol")
    # another user, not in group 36: no access
    assert ovs.run_as(1000, 1000, OPEN_RW.format(path=v)) == (0, str(errno.EACCES))
    # the owner can
    assert ovs.run_as(36, 36, OPEN_RW.format(path=v)) == (0, "ok")
    # a group member can open (0660) but not chmod: EPERM
    assert ovs.run_as(1000, 36, OPEN_RW.format(path=v)) == (0, "ok")
    assert ovs.run_as(1000, 36, CHMOD.format(path=v)) == (0, str(errno.EPERM))
    assert mode(v) == 0o660
    # the owner may chmod
    assert ovs.run_as(36, 36, CHMOD.format(path=v)) == (0, "ok")
    assert mode(v) == 0o600
    assert mode(t.backing("img", "vol")) == 0o600


def fs_size(sv):
    return (sv.f_blocks * sv.f_frsize, sv.f_files)


def test_statfs(storage, pool, small_fs, make_tree):
    master = Domain.create(storage, pool)
    small = small_fs(96)
    r = ovs.ovstore("domain", "create", "--pool", pool, "--dir", small, "--storage", storage)
    assert r.returncode == 0, r.stderr
    regular = Domain(r.stdout.strip(), pool, small)
    t = make_tree([master, regular], storages=[storage, small])
    t.mkimg("img", regular)
    big_sv, small_sv = os.statvfs(storage), os.statvfs(small)
    assert fs_size(big_sv) != fs_size(small_sv)
    for d in (t.root, t.pool_dir, t.dom(master)):
        sv = os.statvfs(d)
        assert fs_size(sv) == fs_size(big_sv), d
        assert abs(sv.f_bavail * sv.f_frsize - big_sv.f_bavail * big_sv.f_frsize) < 512 * MiB
    for d in (t.dom(regular), t.img("img", regular)):
        sv = os.statvfs(d)
        assert fs_size(sv) == fs_size(small_sv), d
        assert sv.f_bavail * sv.f_frsize == os.statvfs(small).f_bavail * small_sv.f_frsize


def test_enospc(pool, small_fs, filler, make_tree):
    small = small_fs(96)
    d = Domain.create(small, pool)
    t = make_tree([d])
    t.mkimg("img")
    t.raw("img", "before")
    fill = filler(small)
    assert errno_of(os.mkdir, t.img("img2")) == errno.ENOSPC
    assert errno_of(ovs.create_volume, t.vol("img", "vol")) == errno.ENOSPC
    assert os.listdir(t.dom()) == ["img"]
    assert os.listdir(t.img("img")) == ["before"]
    os.unlink(fill)
    t.mkimg("img2")
    t.raw("img", "vol")
    assert sorted(os.listdir(t.img("img"))) == ["before", "vol"]


# ------------------------------------------------------------------ ISO

@pytest.fixture
def iso_tree(storage, pool, make_tree):
    master = Domain.create(storage, pool)
    iso = Domain.create(storage, pool, klass="iso")
    t = make_tree([master, iso])
    return t, iso


def test_iso_files(iso_tree, workdir):
    t, iso = iso_tree
    src = workdir / "x.iso"
    data = os.urandom(3 * MiB + 123)
    src.write_bytes(data)
    d = t.dom(iso)
    r = subprocess.run(["cp", str(src), d + "/"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert os.listdir(d) == ["x.iso"]
    with open(os.path.join(d, "x.iso"), "rb") as f:
        assert f.read() == data
    backing = iso.images(ovs.ISO_IMAGE_UUID, "x.iso")
    with open(backing, "rb") as f:
        assert f.read() == data
    assert not [n for n in os.listdir(iso.images(ovs.ISO_IMAGE_UUID)) if n != "x.iso"]
    # no volume attributes on ISO files
    for key in ("format", "role", "capacity"):
        assert errno_of(xget, os.path.join(d, "x.iso"), key) == errno.ENODATA
    os.unlink(os.path.join(d, "x.iso"))
    assert os.listdir(d) == []
    assert not os.path.exists(backing)


def test_iso_mkdir_eperm(iso_tree):
    t, iso = iso_tree
    assert errno_of(os.mkdir, os.path.join(t.dom(iso), "img")) == errno.EPERM
    assert os.listdir(t.dom(iso)) == []
