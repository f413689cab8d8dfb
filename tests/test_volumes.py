"""Volumes: create, qcow2 headers and parents, resize/rebase/truncate,
unlink, rename, link (templates), and what a deleted volume leaves."""

import errno
import os
import stat

import pytest

import ondisk
from util import ovs
from util.ovs import Domain, errno_of, mode, qemu_img, qemu_img_info, qemu_io, xget

MiB = ovs.MiB
GiB = ovs.GiB


def attrs(path):
    return {k: xget(path, k) for k in ("format", "allocation", "capacity", "parent", "role",
                                       "legality")}


def rec(t, img, vol, d=None):
    return ondisk.read_volume_record(t.backing(img, vol + ".meta", d=d))


def chain(t, img="img"):
    """raw base (8 MiB, 0x5a in its first MiB) <- qcow2 top."""
    if not os.path.isdir(t.img(img)):
        t.mkimg(img)
    base = t.raw(img, "base", size=8 * MiB)
    qemu_io(base, "write -P 0x5a 0 1M")
    t.qcow2(img, "top", size="16M", backing="base", backing_fmt="raw")
    return base, t.vol(img, "top")


@pytest.fixture
def two(storage, pool, make_tree):
    """A pool of two data domains in one storage dir, mounted."""
    master = Domain.create(storage, pool)
    regular = Domain.create(storage, pool)
    return make_tree([master, regular]), master, regular


# ------------------------------------------------------------------ create

def test_create_defaults(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    assert attrs(v) == {"format": "raw", "allocation": "sparse", "capacity": "0", "parent": "",
                        "role": "leaf", "legality": "legal"}
    assert os.stat(v).st_size == 0
    assert xget(v, "description") == ""


def test_mknod_creates_volume(mnt):
    mnt.mkimg("img")
    v = mnt.vol("img", "vol")
    os.mknod(v, stat.S_IFREG | 0o660)
    assert attrs(v)["format"] == "raw"
    assert os.path.exists(mnt.backing("img", "vol.meta"))


def test_create_eexist(mnt):
    mnt.mkimg("a")
    mnt.mkimg("b")
    mnt.raw("a", "vol")
    assert errno_of(ovs.create_volume, mnt.vol("a", "vol")) == errno.EEXIST
    # volume names are unique in the domain
    assert errno_of(ovs.create_volume, mnt.vol("b", "vol")) == errno.EEXIST
    assert errno_of(os.mknod, mnt.vol("b", "vol"), stat.S_IFREG | 0o660) == errno.EEXIST
    assert os.listdir(mnt.img("b")) == []
    assert os.listdir(mnt.backing("b")) == []


def test_same_name_in_other_domain(two):
    t, master, regular = two
    for d in (master, regular):
        t.mkimg("img", d)
        t.raw("img", "vol", d=d)
    assert os.listdir(t.img("img", master)) == ["vol"]
    assert os.listdir(t.img("img", regular)) == ["vol"]


# ------------------------------------------------------------ qcow2 headers

def test_qcow2_without_backing(mnt):
    mnt.mkimg("img")
    v = mnt.qcow2("img", "vol", size="1G")
    assert attrs(v) == {"format": "qcow2", "allocation": "sparse", "capacity": str(GiB),
                        "parent": "", "role": "leaf", "legality": "legal"}
    info = qemu_img_info(v)
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == GiB
    assert "backing-filename" not in info


def test_qcow2_with_backing(mnt):
    base, top = chain(mnt)
    a = attrs(top)
    assert (a["format"], a["parent"], a["role"], a["capacity"]) == ("qcow2", "base", "leaf",
                                                                    str(16 * MiB))
    assert xget(base, "role") == "internal"
    assert ovs.mode_within_cache(base, 0o440) == 0o440
    assert mode(top) == 0o660
    assert qemu_img_info(top)["backing-filename"] == "base"
    # a third layer on a qcow2 parent
    top2 = mnt.qcow2("img", "top2", size="16M", backing="top", backing_fmt="qcow2")
    assert xget(top2, "parent") == "top"
    assert xget(top, "role") == "internal"
    assert ovs.mode_within_cache(top, 0o440) == 0o440
    qemu_io(top2, "read -P 0x5a 0 1M", fmt="qcow2", readonly=True)


def test_qcow2_backing_old_form(mnt):
    mnt.mkimg("img")
    mnt.raw("img", "base", size=MiB)
    top = mnt.qcow2("img", "top", size="16M", backing="../img/base", backing_fmt="raw")
    assert xget(top, "parent") == "base"
    assert xget(mnt.vol("img", "base"), "role") == "internal"


def test_backing_not_leaf_ebusy(mnt):
    base, top = chain(mnt)
    r = mnt.qcow2("img", "other", size="16M", backing="base", backing_fmt="raw", check=False)
    assert r.returncode != 0
    assert os.strerror(errno.EBUSY) in r.stderr, r.stderr
    new = mnt.vol("img", "other")
    if os.path.exists(new):
        # qemu-img leaves the file it made (a qcow2 header without backing
        # name was written first): it names no parent
        assert xget(new, "parent") == ""
        assert xget(new, "role") == "leaf"
    assert xget(top, "parent") == "base"
    assert xget(top, "role") == "leaf"
    assert xget(base, "role") == "internal"


def test_backing_outside_image_einval(mnt):
    mnt.mkimg("a")
    mnt.mkimg("b")
    base = mnt.raw("a", "base", size=MiB)
    for backing in ("../a/base", base):
        r = mnt.qcow2("b", "new", size="16M", backing=backing, backing_fmt="raw", check=False)
        assert r.returncode != 0, backing
        assert os.strerror(errno.EINVAL) in r.stderr, r.stderr
        new = mnt.vol("b", "new")
        if os.path.exists(new):
            assert xget(new, "parent") == ""
            os.unlink(new)
    assert xget(base, "role") == "leaf"
    assert mode(base) == 0o660


def test_raw_with_data_stays_raw(mnt, workdir):
    q = workdir / "q.qcow2"
    qemu_img("create", "-f", "qcow2", q, "1G")
    header = q.read_bytes()[:4096]
    mnt.mkimg("img")
    v = mnt.raw("img", "vol", data=b"\1" * MiB)
    ovs.write_at(v, 0, header)
    assert xget(v, "format") == "raw"
    assert xget(v, "capacity") == str(MiB)
    assert ovs.read_at(v, 0, 4096) == header


# ------------------------------------------------- resize / rebase / truncate

def test_resize_qcow2(mnt):
    mnt.mkimg("img")
    v = mnt.qcow2("img", "vol", size="1G")
    qemu_img("resize", "-f", "qcow2", v, "2G")
    assert xget(v, "capacity") == str(2 * GiB)
    assert qemu_img_info(v)["virtual-size"] == 2 * GiB
    assert rec(mnt, "img", "vol")["CAP"] == str(2 * GiB)


def test_resize_raw(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol", size=MiB)
    qemu_img("resize", "-f", "raw", v, "32M")
    assert xget(v, "capacity") == str(32 * MiB)
    assert os.stat(v).st_size == 32 * MiB


def test_resize_internal_eperm(mnt):
    base, top = chain(mnt)
    r = qemu_img("resize", "-f", "raw", base, "64M", check=False)
    assert r.returncode != 0
    assert os.strerror(errno.EPERM) in r.stderr, r.stderr
    assert xget(base, "capacity") == str(8 * MiB)


def test_rebase_unsafe_drops_parent(mnt):
    base, top = chain(mnt)
    qemu_img("rebase", "-u", "-f", "qcow2", "-b", "", top)
    assert xget(top, "parent") == ""
    assert xget(base, "role") == "leaf"
    assert ovs.mode_within_cache(base, 0o660) == 0o660
    assert "backing-filename" not in qemu_img_info(top)
    assert rec(mnt, "img", "top")["PUUID"] == ovs.BLANK_UUID


def test_truncate_raw_sets_capacity(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    for size in (10 * MiB, 5 * MiB, 0, 3 * MiB + 512):
        os.truncate(v, size)
        assert xget(v, "capacity") == str(size)
        assert os.stat(v).st_size == size
        assert rec(mnt, "img", "vol")["CAP"] == str(size)


def test_truncate_qcow2_leaf_to_zero_makes_raw(mnt):
    base, top = chain(mnt)
    os.truncate(top, 0)
    assert attrs(top)["format"] == "raw"
    assert attrs(top)["parent"] == ""
    assert attrs(top)["capacity"] == "0"
    assert xget(base, "role") == "leaf"
    assert ovs.mode_within_cache(base, 0o660) == 0o660


def test_qemu_img_create_over_existing_volume(mnt):
    base, top = chain(mnt)
    mnt.qcow2("img", "top", size="32M", backing="base", backing_fmt="raw")
    assert xget(top, "parent") == "base"
    assert xget(top, "capacity") == str(32 * MiB)
    assert xget(base, "role") == "internal"


def test_internal_refuses_writes(mnt):
    base, top = chain(mnt)
    assert os.geteuid() == 0
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_RDWR | os.O_DIRECT):
        assert errno_of(os.open, base, flags) == errno.EPERM
    assert errno_of(os.truncate, base, 16 * MiB) == errno.EPERM
    assert xget(base, "capacity") == str(8 * MiB)
    os.close(os.open(base, os.O_RDONLY))
    qemu_io(top, "read -P 0x5a 0 1M", fmt="qcow2", readonly=True)


# ------------------------------------------------------------------ unlink

def test_unlink_leaf_makes_parent_leaf(mnt):
    base, top = chain(mnt)
    os.unlink(top)
    assert os.listdir(mnt.img("img")) == ["base"]
    assert xget(base, "role") == "leaf"
    assert ovs.mode_within_cache(base, 0o660) == 0o660
    assert sorted(os.listdir(mnt.backing("img"))) == ["base", "base.lease", "base.meta"]
    ovs.write_at(base, 0, b"writable again")


def test_unlink_with_child_ebusy(mnt):
    base, top = chain(mnt)
    assert errno_of(os.unlink, base) == errno.EBUSY
    assert sorted(os.listdir(mnt.img("img"))) == ["base", "top"]


def test_unlink_open_for_write_ebusy(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol", size=MiB)
    fd = os.open(v, os.O_RDWR)
    try:
        assert errno_of(os.unlink, v) == errno.EBUSY
    finally:
        os.close(fd)
    # read-only opens do not block it
    fd = os.open(v, os.O_RDONLY)
    os.close(fd)
    os.unlink(v)
    assert os.listdir(mnt.img("img")) == []


# ------------------------------------------------------------------ rename

def test_rename_open_for_write_ebusy(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol", size=MiB)
    fd = os.open(v, os.O_WRONLY)
    try:
        assert errno_of(os.rename, v, mnt.vol("img", "vol2")) == errno.EBUSY
        assert errno_of(os.rename, mnt.img("img"), mnt.img("img2")) == errno.EBUSY
    finally:
        os.close(fd)
    assert os.listdir(mnt.dom()) == ["img"]
    assert os.listdir(mnt.img("img")) == ["vol"]


@pytest.mark.parametrize("which", ["base", "mid"])
def test_rename_volume_keeps_children(mnt, which):
    base, top = chain(mnt)
    os.unlink(top)
    mnt.qcow2("img", "mid", size="16M", backing="base", backing_fmt="raw")
    top = mnt.qcow2("img", "top", size="16M", backing="mid", backing_fmt="qcow2")
    child = {"base": "mid", "mid": "top"}[which]
    os.rename(mnt.vol("img", which), mnt.vol("img", which + "2"))
    new = which + "2"
    assert sorted(os.listdir(mnt.img("img"))) == sorted({"base", "mid", "top", new} - {which})
    assert xget(mnt.vol("img", child), "parent") == new
    assert qemu_img_info(mnt.vol("img", child))["backing-filename"] == new
    assert rec(mnt, "img", child)["PUUID"] == new
    assert xget(mnt.vol("img", new), "role") == "internal"
    assert not os.path.exists(mnt.backing("img", which))
    assert not os.path.exists(mnt.backing("img", which + ".meta"))
    assert not os.path.exists(mnt.backing("img", which + ".lease"))
    qemu_io(top, "read -P 0x5a 0 1M", fmt="qcow2", readonly=True)


def test_rename_leaf(mnt):
    base, top = chain(mnt)
    os.rename(top, mnt.vol("img", "leaf"))
    assert xget(mnt.vol("img", "leaf"), "parent") == "base"
    assert rec(mnt, "img", "leaf")["PUUID"] == "base"
    qemu_io(mnt.vol("img", "leaf"), "read -P 0x5a 0 1M", fmt="qcow2", readonly=True)


def test_rename_image(mnt):
    base, top = chain(mnt)
    os.rename(mnt.img("img"), mnt.img("img2"))
    assert os.listdir(mnt.dom()) == ["img2"]
    assert os.listdir(mnt.img("img2")) == ["top", "base"]
    assert not os.path.exists(mnt.backing("img"))
    for v in ("base", "top"):
        assert rec(mnt, "img2", v)["IMAGE"] == "img2"
    qemu_io(mnt.vol("img2", "top"), "read -P 0x5a 0 1M", fmt="qcow2", readonly=True)


def test_rename_image_across_domains_exdev(two):
    t, master, regular = two
    t.mkimg("img", master)
    t.raw("img", "vol", d=master)
    assert errno_of(os.rename, t.img("img", master), t.img("img", regular)) == errno.EXDEV
    assert os.listdir(t.dom(master)) == ["img"]
    assert os.listdir(t.dom(regular)) == []


def test_rename_shared_ebusy(mnt):
    mnt.mkimg("a")
    mnt.mkimg("b")
    t = mnt.raw("a", "tmpl", size=MiB)
    os.link(t, mnt.vol("b", "tmpl"))
    assert errno_of(os.rename, t, mnt.vol("a", "tmpl2")) == errno.EBUSY
    assert os.listdir(mnt.img("a")) == ["tmpl"]


# -------------------------------------------------------------------- link

def test_link_makes_shared_template(mnt):
    mnt.mkimg("a")
    mnt.mkimg("b")
    t = mnt.raw("a", "tmpl", size=8 * MiB)
    qemu_io(t, "write -P 0x3c 0 1M")
    os.link(t, mnt.vol("b", "tmpl"))
    for img in ("a", "b"):
        v = mnt.vol(img, "tmpl")
        assert xget(v, "role") == "shared"
        assert ovs.mode_within_cache(v, 0o440) == 0o440
        assert errno_of(os.open, v, os.O_WRONLY) == errno.EPERM
        assert errno_of(os.truncate, v, MiB) == errno.EPERM
    child = mnt.qcow2("b", "child", size="16M", backing="tmpl", backing_fmt="raw")
    assert xget(child, "parent") == "tmpl"
    assert xget(mnt.vol("b", "tmpl"), "role") == "shared"
    qemu_io(child, "read -P 0x3c 0 1M", fmt="qcow2", readonly=True)
    qemu_io(child, "write -P 0x77 0 64k", fmt="qcow2")
    qemu_io(t, "read -P 0x3c 0 1M", readonly=True)
    # used by a child: it stays
    assert errno_of(os.unlink, mnt.vol("b", "tmpl")) == errno.EBUSY


def test_unlink_unused_template(mnt):
    mnt.mkimg("a")
    mnt.mkimg("b")
    t = mnt.raw("a", "tmpl", size=MiB)
    os.link(t, mnt.vol("b", "tmpl"))
    os.unlink(mnt.vol("b", "tmpl"))
    assert os.listdir(mnt.img("b")) == []
    assert os.listdir(mnt.backing("b")) == []
    os.unlink(t)
    assert os.listdir(mnt.img("a")) == []
    assert os.listdir(mnt.backing("a")) == []


def test_link_across_domains_exdev(two):
    t, master, regular = two
    t.mkimg("a", master)
    t.mkimg("b", regular)
    v = t.raw("a", "tmpl", size=MiB, d=master)
    assert errno_of(os.link, v, t.vol("b", "tmpl", regular)) == errno.EXDEV
    assert os.listdir(t.img("b", regular)) == []
    assert xget(v, "role") == "leaf"


def test_link_not_base_eperm(mnt):
    base, top = chain(mnt)
    mnt.mkimg("b")
    assert errno_of(os.link, top, mnt.vol("b", "top")) == errno.EPERM
    assert os.listdir(mnt.img("b")) == []


def test_link_open_for_write_ebusy(mnt):
    mnt.mkimg("a")
    mnt.mkimg("b")
    v = mnt.raw("a", "tmpl", size=MiB)
    fd = os.open(v, os.O_RDWR)
    try:
        assert errno_of(os.link, v, mnt.vol("b", "tmpl")) == errno.EBUSY
    finally:
        os.close(fd)
    assert os.listdir(mnt.img("b")) == []


def test_link_twice_eexist(mnt):
    mnt.mkimg("a")
    mnt.mkimg("b")
    v = mnt.raw("a", "tmpl", size=MiB)
    os.link(v, mnt.vol("b", "tmpl"))
    assert errno_of(os.link, v, mnt.vol("b", "tmpl")) == errno.EEXIST


# ------------------------------------------------------------ deleted bytes

def test_new_volume_never_shows_old_bytes(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "old", size=4 * MiB)
    qemu_io(v, "write -P 0xab 0 4M")
    os.unlink(v)
    for name in ("old", "new"):
        n = mnt.raw("img", name, size=4 * MiB)
        assert ovs.read_at(n, 0, 4 * MiB) == b"\0" * (4 * MiB)
        os.unlink(n)
    q = mnt.qcow2("img", "q", size="4M")
    qemu_io(q, "read -P 0 0 4M", fmt="qcow2", readonly=True)
