"""Fault injection: for every fault point of the daemon, kill it there (and
for some, fail the step with EIO); after a remount the operation is wholly
visible or not at all, the on-disk check passes and the tree works again.
Also: a corrupt volume record, a domain with a broken metadata seal."""

import errno
import os
import re
import signal

import pytest

import ondisk
from util import ovs
from util.ovs import Domain, errno_of, qemu_img_info, qemu_io, xget, xset

MiB = ovs.MiB

ALL_POINTS = ovs.fault_points()
# Steps only a block domain takes (an LV grows): test_block.py kills the
# daemon and fails the step there.
BLOCK_POINTS = [p for p in ALL_POINTS if p.startswith("extend.")]
# ring.*, engine.*: the data path's set-up, no domain step: test_io.py.
DAEMON_POINTS = [p for p in ALL_POINTS
                 if not p.startswith(("domain_create.", "ring.", "engine."))
                 and p not in BLOCK_POINTS]


class HalfDone(AssertionError):
    pass


def attrs(path):
    return {k: xget(path, k) for k in ("format", "capacity", "parent", "role", "legality")}


def listing(path):
    return sorted(os.listdir(path))


# ------------------------------------------------------------- scenarios
# setup(t): the state before, made without faults
# op(t): the operation passing through the fault points of the prefix
# state(t): "before" or "after"; HalfDone for anything else

class VolCreate:
    def setup(self, t):
        t.mkimg("img")
        t.raw("img", "old", size=MiB)

    def op(self, t):
        ovs.create_volume(t.vol("img", "new"))

    def state(self, t):
        names = listing(t.img("img"))
        if names == ["old"]:
            return "before"
        if names == ["new", "old"]:
            a = attrs(t.vol("img", "new"))
            if a == {"format": "raw", "capacity": "0", "parent": "", "role": "leaf",
                     "legality": "legal"}:
                return "after"
            raise HalfDone(f"new volume is {a}")
        raise HalfDone(f"image lists {names}")


class VolDelete:
    def setup(self, t):
        t.mkimg("img")
        base = t.raw("img", "base", size=8 * MiB)
        qemu_io(base, "write -P 0x5a 0 1M")
        t.qcow2("img", "top", size="16M", backing="base", backing_fmt="raw")

    def op(self, t):
        os.unlink(t.vol("img", "top"))

    def state(self, t):
        names = os.listdir(t.img("img"))
        base = attrs(t.vol("img", "base")) if "base" in names else None
        qemu_io(t.vol("img", "base"), "read -P 0x5a 0 1M", readonly=True)
        if names == ["top", "base"]:
            top = attrs(t.vol("img", "top"))
            if (top["parent"], top["legality"], base["role"]) == ("base", "legal", "internal"):
                return "before"
            raise HalfDone(f"top {top}, base {base}")
        if names == ["base"]:
            if (base["role"], ovs.mode_within_cache(t.vol("img", "base"), 0o660)) == ("leaf", 0o660):
                return "after"
            raise HalfDone(f"base {base} after its child went")
        raise HalfDone(f"image lists {names}")


class VolParent:
    def setup(self, t):
        t.mkimg("img")
        base = t.raw("img", "base", size=8 * MiB)
        qemu_io(base, "write -P 0x5a 0 1M")

    def op(self, t):
        r = t.qcow2("img", "top", size="16M", backing="base", backing_fmt="raw", check=False)
        if r.returncode != 0:
            raise OSError(errno.EIO if "Input/output" in r.stderr else 0, r.stderr.strip())

    def state(self, t):
        names = listing(t.img("img"))
        base = attrs(t.vol("img", "base"))
        if names == ["base"]:
            if base["role"] == "leaf":
                return "before"
            raise HalfDone(f"base {base} without a child")
        if names != ["base", "top"]:
            raise HalfDone(f"image lists {names}")
        top = attrs(t.vol("img", "top"))
        if top["parent"] == "" and base["role"] == "leaf":
            return "before"   # the create happened; the header naming base did not
        if top["parent"] == "base" and top["format"] == "qcow2" and base["role"] == "internal":
            qemu_io(t.vol("img", "top"), "read -P 0x5a 0 1M", fmt="qcow2", readonly=True)
            return "after"
        raise HalfDone(f"top {top}, base {base}")


class VolLink:
    def setup(self, t):
        t.mkimg("a")
        t.mkimg("b")
        v = t.raw("a", "tmpl", size=4 * MiB)
        qemu_io(v, "write -P 0x3c 0 1M")

    def op(self, t):
        os.link(t.vol("a", "tmpl"), t.vol("b", "tmpl"))

    def state(self, t):
        a, b = os.listdir(t.img("a")), os.listdir(t.img("b"))
        qemu_io(t.vol("a", "tmpl"), "read -P 0x3c 0 1M", readonly=True)
        role = xget(t.vol("a", "tmpl"), "role")
        if a == ["tmpl"] and b == [] and role == "leaf":
            return "before"
        if a == ["tmpl"] and b == ["tmpl"] and role == "shared" and \
                xget(t.vol("b", "tmpl"), "role") == "shared":
            return "after"
        raise HalfDone(f"a {a}, b {b}, role {role}")


class VolRename:
    def setup(self, t):
        VolDelete().setup(t)

    def op(self, t):
        os.rename(t.vol("img", "base"), t.vol("img", "base2"))

    def state(self, t):
        names = listing(t.img("img"))
        top = t.vol("img", "top")
        parent = xget(top, "parent")
        backing = qemu_img_info(top).get("backing-filename")
        if names == ["base", "top"] and parent == "base" and backing == "base":
            res = "before"
        elif names == ["base2", "top"] and parent == "base2" and backing == "base2":
            res = "after"
        else:
            raise HalfDone(f"image lists {names}, top parent {parent}, backing {backing}")
        qemu_io(top, "read -P 0x5a 0 1M", fmt="qcow2", readonly=True)
        return res


class ImgRename:
    def setup(self, t):
        VolDelete().setup(t)

    def op(self, t):
        os.rename(t.img("img"), t.img("img2"))

    def state(self, t):
        images = [i for i in os.listdir(t.dom()) if i != "later"]   # follow_up's image
        if images not in (["img"], ["img2"]):
            raise HalfDone(f"domain lists {images}")
        img = images[0]
        names = os.listdir(t.img(img))
        if names != ["top", "base"]:
            raise HalfDone(f"{img} lists {names}")
        qemu_io(t.vol(img, "top"), "read -P 0x5a 0 1M", fmt="qcow2", readonly=True)
        return "before" if img == "img" else "after"


class MetaWrite:
    def setup(self, t):
        t.mkimg("img")
        v = t.raw("img", "vol", size=MiB)
        xset(v, "description", "old text")

    def op(self, t):
        xset(t.vol("img", "vol"), "description", "new text")

    def state(self, t):
        d = xget(t.vol("img", "vol"), "description")
        if d == "old text":
            return "before"
        if d == "new text":
            return "after"
        raise HalfDone(f"description {d!r}")


SCENARIOS = {
    "vol_create": VolCreate,
    "vol_delete": VolDelete,
    "vol_parent": VolParent,
    "vol_link": VolLink,
    "vol_rename": VolRename,
    "img_rename": ImgRename,
    "meta_write": MetaWrite,
}


def scenario(point):
    prefix = point.split(".", 1)[0]
    if prefix not in SCENARIOS:
        pytest.fail(f"fault point {point}: no operation mapped to '{prefix}' in test_crash.py")
    return SCENARIOS[prefix]()


def follow_up(t):
    """The tree works again: a new image, volumes, a chain, data."""
    t.mkimg("later")
    v = t.raw("later", "later-base", size=4 * MiB)
    qemu_io(v, "write -P 0x21 0 64k")
    top = t.qcow2("later", "later-top", size="8M", backing="later-base", backing_fmt="raw")
    qemu_io(top, "read -P 0x21 0 64k", fmt="qcow2")
    os.unlink(top)
    assert xget(v, "role") == "leaf"


def test_every_point_has_a_scenario():
    assert ALL_POINTS, "no fault points found"
    for p in DAEMON_POINTS:
        assert p.split(".", 1)[0] in SCENARIOS, p
    # the block-only ones: test_block.py's extension tests
    assert "extend.zero" in BLOCK_POINTS, BLOCK_POINTS


@pytest.mark.parametrize("point", DAEMON_POINTS or ["none"])
def test_crash_at(mnt, point):
    if point == "none":
        pytest.skip("no fault points")
    sc = scenario(point)
    m = mnt.mount
    sc.setup(mnt)
    assert sc.state(mnt) == "before"
    m.stop()
    m.start(env={"OVSTORE_TEST_FAULT": f"{point}:crash"})
    result = None
    try:
        sc.op(mnt)
        result = "success"
    except OSError as e:
        result = f"{ovs.errname(e.errno)}: {e}"
    rc = m.wait_exit(10)
    assert rc == -signal.SIGKILL, (
        f"the daemon did not die at {point} (operation: {result}, status {rc})")
    m.reap_dead()
    m.start()
    sc.state(mnt)
    mnt.check(allow_leaks=True)
    follow_up(mnt)
    # once more from a clean start: the outcome is stable
    outcome = sc.state(mnt)
    m.remount()
    assert sc.state(mnt) == outcome


EIO_POINTS = [p for p in (
    "vol_create.meta", "vol_create.lease", "vol_delete.illegal", "vol_delete.data",
    "vol_parent.parent", "vol_link.files", "vol_rename.files", "vol_rename.children",
    "img_rename.dir", "meta_write.tmp", "meta_write.rename",
) if p in DAEMON_POINTS]


@pytest.mark.parametrize("point", EIO_POINTS or ["none"])
def test_eio_at(mnt, point):
    if point == "none":
        pytest.skip("no fault points")
    sc = scenario(point)
    m = mnt.mount
    sc.setup(mnt)
    m.stop()
    m.start(env={"OVSTORE_TEST_FAULT": f"{point}:EIO"})
    m.allow_stderr(r"Input/output error")
    with pytest.raises(OSError) as e:
        sc.op(mnt)
    assert e.value.errno == errno.EIO, e.value
    assert m.alive(), "the daemon died on an injected EIO"
    assert sc.state(mnt) == "before"
    m.remount()
    assert sc.state(mnt) == "before"
    mnt.check()
    follow_up(mnt)


# ------------------------------------------------------- corrupt metadata

CORRUPTIONS = {
    "binary": lambda text: b"\xff\xfe\x00garbage\x80\x81\n" * 20,
    "missing-key": lambda text: re.sub(rb"^DOMAIN=.*\n", b"", text, flags=re.M),
    "bad-value": lambda text: re.sub(rb"^FORMAT=.*$", b"FORMAT=XYZ", text, flags=re.M),
    "empty": lambda text: b"",
    "too-long": lambda text: text.replace(b"DESCRIPTION=", b"DESCRIPTION=" + b"d" * 600),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupt_volume_record(mnt, kind):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol", data=b"\x12" * 8192)
    good = mnt.raw("img", "good", size=MiB)
    m = mnt.mount
    m.stop()
    meta = mnt.backing("img", "vol.meta")
    with open(meta, "rb") as f:
        text = f.read()
    with open(meta, "wb") as f:
        f.write(CORRUPTIONS[kind](text))
    m.allow_stderr(r"vol.*bad metadata record|bad metadata record.*vol")
    m.start()
    mnt.ondisk["allow_corrupt"].add("vol")
    assert sorted(os.listdir(mnt.img("img"))) == ["good", "vol"]
    assert xget(v, "legality") == "illegal"
    for flags in (os.O_WRONLY, os.O_RDWR):
        assert errno_of(os.open, v, flags) == errno.EROFS
    assert errno_of(os.truncate, v, 0) == errno.EROFS
    assert ovs.read_at(v, 0, 8192) == b"\x12" * 8192
    st = m.status()
    dom = st["pools"][0]["domains"][0]
    assert dom["corrupt"] == ["vol"]
    # the rest works, the daemon stays up
    ovs.write_at(good, 0, b"fine")
    follow_up(mnt)
    assert m.alive()


def test_broken_domain_seal(storage, pool, make_tree):
    master = Domain.create(storage, pool)
    regular = Domain.create(storage, pool)
    path = os.path.join(regular.path, "dom_md", "metadata")
    with open(path) as f:
        text = f.read()
    assert "DESCRIPTION=" in text
    with open(path, "w") as f:
        f.write(text.replace("DESCRIPTION=", "DESCRIPTION=tampered"))
    t = make_tree([master, regular], start=False)
    t.ondisk["skip_domains"].add(regular.uuid)
    t.mount.allow_stderr(re.escape(regular.uuid) + r".*seal|seal.*" + re.escape(regular.uuid))
    t.mount.start()
    assert os.listdir(t.pool_dir) == [master.uuid]
    st = t.mount.status()
    probs = st["problems"]
    assert len(probs) == 1, probs
    assert os.path.realpath(probs[0]["path"]) == os.path.realpath(regular.path)
    assert probs[0]["error"]
    assert [d["uuid"] for d in st["pools"][0]["domains"]] == [master.uuid]
    assert ondisk.domain_metadata_problems(regular.path)[0]  # still broken: never rewritten
    follow_up(t)
