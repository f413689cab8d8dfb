"""Block domains (CONTRACT: domain create --block, mount --storage DEV, thin
provisioning): black-box, on loop devices over sparse files.

Every lvm query here runs with a device filter that accepts this test's loop
devices only, so the host's own VGs are never read.
"""

import errno
import hashlib
import json
import os
import re
import subprocess
import uuid

import pytest

from util import ovs

GiB = ovs.GiB
MiB = ovs.MiB
EXTENT = 128 * MiB
SLOT_BASE = MiB  # V5 slots: 1 MiB + slot * 8 KiB, 512-byte records
SLOT_SIZE = 8192


def _need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (loop devices, lvm)")
    for tool in ("losetup", "lvm", "blkid"):
        if not ovs.shutil.which(tool):
            pytest.skip(f"{tool} not installed")


@pytest.fixture
def loops(workdir):
    """Factory: loops(n, size) -> [device paths] of fresh loop devices over
    sparse files in workdir; always detached at teardown."""
    _need_root()
    made = []

    def make(n=1, size=12 * GiB):
        devs = []
        for _ in range(n):
            img = workdir / f"pv{len(made)}.img"
            with open(img, "wb") as f:
                f.truncate(size)
            r = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True,
                               text=True)
            if r.returncode != 0:
                pytest.skip(f"losetup failed: {r.stderr.strip()}")
            dev = r.stdout.strip()
            made.append(dev)
            devs.append(dev)
        return devs

    yield make
    # the daemons are gone by now (btree/mounts tear down first); be safe anyway
    ovs.unmount_everything_under(os.fspath(workdir))
    for dev in reversed(made):
        subprocess.run(["losetup", "-d", dev], capture_output=True)


def lvm(devs, *args):
    """lvm with a filter accepting devs only; JSON report as a dict."""
    accept = ",".join(f'"a|^{re.escape(d)}$|"' for d in devs)
    cfg = (f"devices {{ filter=[{accept},\"r|.*|\"] global_filter=[{accept},\"r|.*|\"] "
           f"use_devicesfile=0 obtain_device_list_from_udev=0 }}")
    env = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1")
    r = subprocess.run(["lvm", *args, "--config", cfg, "--reportformat", "json", "--units",
                        "b", "--nosuffix"], capture_output=True, text=True, env=env,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"lvm {args}: {r.stderr}"
    return json.loads(r.stdout)["report"][0]


def vgs(devs):
    return lvm(devs, "vgs", "-o", "vg_name,vg_uuid,vg_tags,vg_extent_size,vg_size,vg_free")["vg"]


def lvs(devs):
    """LVs by name; seg_pe_ranges lists every segment, in LV order."""
    rows = lvm(devs, "lvs", "-o", "lv_name,lv_size,lv_tags,seg_start_pe,seg_pe_ranges",
               "--segments")["seg"]
    out = {}
    for r in sorted(rows, key=lambda r: (r["lv_name"], int(r["seg_start_pe"]))):
        if r["lv_name"] in out:
            out[r["lv_name"]]["seg_pe_ranges"] += " " + r["seg_pe_ranges"]
        else:
            out[r["lv_name"]] = dict(r)
    return out


def pvs(devs):
    rows = lvm(devs, "pvs", "-o", "pv_name,pe_start,pv_mda_size,vg_name")["pv"]
    return {r["pv_name"]: r for r in rows}


def decode_tag(tag):
    return re.sub(r"&(\d+)&", lambda m: chr(int(m.group(1))), tag)


def mdt(vg):
    """The MDT_ tags of a VG as a dict, seal checked (reference section 3)."""
    kv = {}
    for t in vg["vg_tags"].split(","):
        if t.startswith("MDT_"):
            k, _, v = decode_tag(t[4:]).partition("=")
            kv[k] = v
    seal = kv.pop("_SHA_CKSUM")
    text = "".join(f"{k}={kv[k]}" for k in sorted(kv))
    assert hashlib.sha1(text.encode()).hexdigest() == seal, "MDT_ seal broken"
    return kv


def lv_pv_offset(devs, lv, off):
    """(device, byte offset) of byte off of LV lv, from its segments."""
    pe_start = {n: int(p["pe_start"]) for n, p in pvs(devs).items()}
    le = off // EXTENT
    for rng in lv["seg_pe_ranges"].split():
        dev, _, pes = rng.rpartition(":")
        a, b = map(int, pes.split("-"))
        if le < b - a + 1:
            return dev, pe_start[dev] + (a + le) * EXTENT + off % EXTENT
        le -= b - a + 1
    raise AssertionError(f"offset {off} past LV {lv['lv_name']}")


def read_dev(dev, off, n):
    with open(dev, "rb") as f:
        f.seek(off)
        return f.read(n)


def read_lv(devs, lv, off, n):
    """n bytes of LV lv from byte off, extent by extent from the PVs."""
    out = bytearray()
    while n > 0:
        dev, pos = lv_pv_offset(devs, lv, off)
        k = min(n, EXTENT - off % EXTENT)
        out += read_dev(dev, pos, k)
        off += k
        n -= k
    return bytes(out)


def lv_tags(devs, name):
    return lvs(devs)[name]["lv_tags"].split(",")


def slot_record(devs, name):
    """The metadata record of volume LV name, from its MD_ slot, as a dict."""
    [slot] = [int(t[3:]) for t in lv_tags(devs, name) if t.startswith("MD_")]
    rec = read_lv(devs, lvs(devs)["metadata"], SLOT_BASE + slot * SLOT_SIZE, 512)
    text = rec.rstrip(b"\0").decode()
    assert text.endswith("EOF\n"), text
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


JOURNAL_OFFSET = 32 * MiB  # ovstore's journal in the metadata LV (behaviour.md)
JOURNAL_RECORD = 4096      # docs/journal.md: 64 records of 4 KiB
JOURNAL_SLOTS = 64
OP_LV_EXTEND = 7


def journal_records(devs):
    """The live records of a block domain's journal: [(op, {key: value})]."""
    area = read_lv(devs, lvs(devs)["metadata"], JOURNAL_OFFSET, JOURNAL_SLOTS * JOURNAL_RECORD)
    out = []
    for i in range(JOURNAL_SLOTS):
        rec = area[i * JOURNAL_RECORD:(i + 1) * JOURNAL_RECORD]
        if rec == bytes(JOURNAL_RECORD):
            continue
        assert rec[:8] == b"OVSJRNL1", f"journal slot {i}: {rec[:16]!r}"
        op = int.from_bytes(rec[12:16], "little")
        n = int.from_bytes(rec[36:40], "little")
        out.append((op, dict(line.split("=", 1) for line in rec[48:48 + n].decode().splitlines())))
    return out


def blkid(dev):
    r = subprocess.run(["blkid", "-p", "-o", "export", dev], capture_output=True, text=True)
    return r.stdout


def create(pool, devs, *args):
    return ovs.ovstore("domain", "create", "--pool", pool, "--block", ",".join(devs), *args)


def create_ok(pool, devs, *args):
    r = create(pool, devs, *args)
    assert r.returncode == 0, f"domain create --block failed: {r.stderr}"
    sd = r.stdout.strip()
    assert ovs.UUID_RE.match(sd), r.stdout
    assert not ovs.suspicious_lines(r.stderr), r.stderr
    return sd


class BlockTree:
    def __init__(self, make_tree, devs, pool, sd, opts=()):
        self.devs = devs
        dom = ovs.Domain(sd, pool, devs[0])
        self.tree = make_tree([dom], storages=devs, opts=opts)
        self.tree.check_ondisk = False  # ondisk.py knows file domains only
        self.pool = pool
        self.sd = sd

    @property
    def dom(self):
        return self.tree.dom()

    def remount(self):
        self.tree.remount()


@pytest.fixture
def btree(loops, make_tree, pool):
    """Factory: btree(n_pvs=1, opts=()) -> a BlockTree of a fresh block domain."""
    def make(n=1, opts=()):
        devs = loops(n)
        sd = create_ok(pool, devs, "--description", "block test")
        return BlockTree(make_tree, devs, pool, sd, opts)
    return make


# ----------------------------------------------------------------- create

def test_create_layout(loops, pool):
    devs = loops(2)
    sd = create_ok(pool, devs, "--description", "blk")
    [vg] = vgs(devs)
    assert vg["vg_name"] == sd
    tags = vg["vg_tags"].split(",")
    assert "RHAT_storage_domain" in tags and "RHAT_storage_domain_UNREADY" not in tags
    assert int(vg["vg_extent_size"]) == EXTENT
    kv = mdt(vg)
    assert kv["SDUUID"] == sd and kv["VERSION"] == "5"
    assert kv["TYPE"] == "ISCSI" and kv["CLASS"] == "Data"
    assert kv["BLOCK_SIZE"] == "512" and kv["ALIGNMENT"] == "1048576"
    assert kv["VGUUID"] == vg["vg_uuid"]
    assert kv["ROLE"] == "Master" and kv["POOL_UUID"] == pool
    assert kv["POOL_DOMAINS"] == f"{sd}:Active" and kv["MASTER_VERSION"] == "1"
    p = pvs(devs)
    offset = 0
    for i, dev in enumerate(devs):
        info = dict(item.split(":", 1) for item in kv[f"PV{i}"].split(","))
        assert info["pv"] == os.path.basename(dev)
        assert info["pestart"] == "0" and info["mapoffset"] == str(offset)
        offset += int(info["pecount"])
        assert int(p[dev]["pv_mda_size"]) == 128 * MiB
    sizes = {n: int(lv["lv_size"]) for n, lv in lvs(devs).items()}
    assert sizes == {"metadata": 128 * MiB, "ids": 128 * MiB, "leases": 2 * GiB,
                     "inbox": 128 * MiB, "outbox": 128 * MiB, "xleases": GiB,
                     "master": GiB}
    # metadata on the first PV; its slot area zeroed
    all_lvs = lvs(devs)
    dev, off = lv_pv_offset(devs, all_lvs["metadata"], 0)
    assert dev == devs[0]
    assert read_dev(dev, off, 17 * MiB) == bytes(17 * MiB)
    # the xleases index at 1 MiB (reference section 10)
    dev, off = lv_pv_offset(devs, all_lvs["xleases"], MiB)
    head = read_dev(dev, off, 512)
    assert head[:4] == bytes.fromhex("12152016") and head[10:10 + len(sd)] == sd.encode()
    # the mailboxes zeroed whole (oVirt's host area and ovstore's records)
    for box in ("inbox", "outbox"):
        dev, off = lv_pv_offset(devs, all_lvs[box], 0)
        assert read_dev(dev, off, 16 * MiB) == bytes(16 * MiB)
    # the master LV holds an ext3 file system, as VDSM makes it (reference 6):
    # superblock magic, a journal, as large as the LV
    dev, off = lv_pv_offset(devs, all_lvs["master"], 0)
    sb = read_dev(dev, off + 1024, 1024)
    assert int.from_bytes(sb[56:58], "little") == 0xEF53
    assert int.from_bytes(sb[92:96], "little") & 0x4, "no journal (ext2, not ext3)"
    block = 1024 << int.from_bytes(sb[24:28], "little")
    assert int.from_bytes(sb[4:8], "little") * block == GiB


def test_create_refuses_formatted_device(loops, pool):
    if not ovs.shutil.which("mkfs.ext4"):
        pytest.skip("mkfs.ext4 not installed")
    [dev] = loops(1)
    subprocess.run(["mkfs.ext4", "-q", "-F", dev], check=True, capture_output=True)
    before = blkid(dev)
    assert "TYPE=ext4" in before
    r = create(pool, [dev])
    line = ovs.assert_one_line_error(r, "create on ext4")
    assert dev in line and "ext4" in line
    assert blkid(dev) == before
    assert vgs([dev]) == []


def test_create_refuses_a_pv_and_changes_nothing(loops, pool):
    a, b = loops(2)
    create_ok(pool, [a])
    before = (blkid(a), blkid(b))
    r = create(str(uuid.uuid4()), [b, a])
    ovs.assert_one_line_error(r, "create on a PV")
    assert (blkid(a), blkid(b)) == before
    assert len(vgs([a, b])) == 1


def test_create_refuses_iso(loops, pool):
    [dev] = loops(1)
    r = create(pool, [dev], "--class", "iso")
    ovs.assert_one_line_error(r, "iso on block")
    assert blkid(dev) == ""


def test_create_refuses_small_devices(loops, pool):
    [dev] = loops(1, size=4 * GiB)
    r = create(pool, [dev])
    line = ovs.assert_one_line_error(r, "small device")
    assert "10 GiB" in line
    assert blkid(dev) == ""


# ------------------------------------------------------------------ mount

def test_mount_tree_io_and_slots(btree):
    bt = btree()
    dom = bt.dom
    assert ovs.xget(dom, "type") == "block"
    assert ovs.xget(dom, "role") == "master"
    [vg] = vgs(bt.devs)
    sv = os.statvfs(dom)
    assert sv.f_blocks * sv.f_frsize == int(vg["vg_size"])
    assert sv.f_bavail * sv.f_frsize == int(vg["vg_free"])

    img = os.path.join(dom, "img1")
    os.mkdir(img)
    vol = os.path.join(img, "vol1")
    ovs.create_volume(vol)
    assert os.stat(vol).st_size == 0
    assert ovs.xget(vol, "allocation") == "preallocated"
    os.truncate(vol, 300 * MiB)
    assert os.stat(vol).st_size == 300 * MiB
    ovs.qemu_io(vol, "write -P 0xab 0 1M", "write -P 0xcd 200M 64k", cache="none")
    ovs.qemu_io(vol, "read -P 0xab 0 1M", "read -P 0xcd 200M 64k", "read -P 0 1M 1M",
                cache="none")
    ovs.qemu_io(vol, "read -P 0xab 0 1M", "read -P 0 299M 1M")

    lv = lvs(bt.devs)["vol1"]
    assert int(lv["lv_size"]) == 384 * MiB  # 300 MiB in 128 MiB extents
    tags = lv["lv_tags"].split(",")
    assert "IU_img1" in tags and "PU_00000000-0000-0000-0000-000000000000" in tags
    assert "OVIRT_VOL_INITIALIZING" not in tags
    [slot] = [int(t[3:]) for t in tags if t.startswith("MD_")]
    assert slot >= 1
    # the record, where the metadata LV's extent map says
    dev, off = lv_pv_offset(bt.devs, lvs(bt.devs)["metadata"], SLOT_BASE + slot * SLOT_SIZE)
    rec = read_dev(dev, off, 512)
    text = rec.rstrip(b"\0").decode()
    assert text.endswith("EOF\n")
    keys = dict(l.split("=", 1) for l in text.splitlines() if "=" in l)
    assert keys["IMAGE"] == "img1" and keys["DOMAIN"] == bt.sd
    assert keys["FORMAT"] == "RAW" and keys["TYPE"] == "PREALLOCATED"
    assert keys["CAP"] == str(300 * MiB) and keys["LEGALITY"] == "LEGAL"
    # the data, on the PV where the volume LV's map says
    dev, off = lv_pv_offset(bt.devs, lv, 200 * MiB)
    assert read_dev(dev, off, 64 * 1024) == b"\xcd" * 64 * 1024

    # an image with no volume lasts only in memory (CONTRACT)
    os.mkdir(os.path.join(dom, "empty"))
    bt.remount()
    assert sorted(os.listdir(dom)) == ["img1"]
    assert os.stat(vol).st_size == 300 * MiB
    ovs.qemu_io(vol, "read -P 0xab 0 1M", "read -P 0xcd 200M 64k", cache="none")

    os.unlink(vol)
    assert "vol1" not in lvs(bt.devs)
    assert os.listdir(img) == []  # the image stays for this mount's life
    bt.remount()
    assert os.listdir(dom) == []


def test_new_volume_shows_no_old_bytes(btree):
    bt = btree()
    img = os.path.join(bt.dom, "img")
    os.mkdir(img)
    a = ovs.create_volume(os.path.join(img, "a"))
    os.truncate(a, 128 * MiB)
    ovs.qemu_io(a, "write -P 0x5a 0 128M")
    os.unlink(a)
    b = ovs.create_volume(os.path.join(img, "b"))
    os.truncate(b, 128 * MiB)
    ovs.qemu_io(b, "read -P 0 0 128M")


def test_qcow2_thin_extension(btree):
    bt = btree(opts=("chunk_mb=128",))
    img = os.path.join(bt.dom, "img")
    os.mkdir(img)
    q = bt.tree.qcow2("img", "q1", size="256M")
    assert ovs.xget(q, "format") == "qcow2"
    assert ovs.xget(q, "allocation") == "sparse"
    assert ovs.xget(q, "capacity") == str(256 * MiB)
    ovs.qemu_io(q, "write -P 0x33 0 256M", fmt="qcow2", cache="none")
    size = int(lvs(bt.devs)["q1"]["lv_size"])
    assert 256 * MiB < size <= 384 * MiB  # never past capacity * 1.1 in extents
    assert os.stat(q).st_size == size
    # status: the LV count (7 special LVs + q1) and the extensions the writes waited for
    dom = [d for p in bt.tree.mount.status()["pools"] for d in p["domains"]
           if d["type"] == "block"][0]
    assert dom["lvs"] == len(lvs(bt.devs)) == 8
    thin = dom["thin"]
    assert thin["extensions"] >= 1 and 0 <= thin["waited"] <= thin["extensions"]
    assert 0 <= thin["wait_p50_ms"] <= thin["wait_p99_ms"] <= thin["wait_max_ms"]
    bt.remount()
    ovs.qemu_io(q, "read -P 0x33 0 256M", fmt="qcow2")
    assert ovs.qemu_img("check", "-f", "qcow2", q).returncode == 0


def test_enospc_when_the_vg_is_full(btree):
    bt = btree()
    img = os.path.join(bt.dom, "img")
    os.mkdir(img)
    v = ovs.create_volume(os.path.join(img, "big"))
    [vg] = vgs(bt.devs)
    free = int(vg["vg_free"])
    with pytest.raises(OSError) as e:
        os.truncate(v, free + 2 * EXTENT)
    assert e.value.errno == errno.ENOSPC
    assert int(vgs(bt.devs)[0]["vg_free"]) == free
    assert os.stat(v).st_size == 0
    # a thin volume: its writes fail with ENOSPC only once the VG is full
    os.truncate(v, free - 128 * MiB)  # leaves one extent
    q = bt.tree.qcow2("img", "q", size="2G")
    r = ovs.qemu_io(q, "write -P 0x44 0 512M", fmt="qcow2", check=False)
    assert re.search(r"No space left on device", r.stdout + r.stderr), r.stdout + r.stderr
    assert int(vgs(bt.devs)[0]["vg_free"]) == 0


def test_create_failure_leaves_nothing(loops, pool):
    devs = loops(2)
    before = [blkid(d) for d in devs]
    for point in ("domain_create.special", "domain_create.lockspace",
                  "domain_create.metadata", "domain_create.publish"):
        r = ovs.ovstore("domain", "create", "--pool", pool, "--block", ",".join(devs),
                        env={"OVSTORE_TEST_FAULT": point})
        ovs.assert_one_line_error(r, point)
        assert vgs(devs) == [], point
        assert pvs(devs) == {}, point
        assert [blkid(d) for d in devs] == before, point
    create_ok(pool, devs)


def test_pool_of_block_domains(loops, pool, make_tree, workdir):
    a, b = loops(2)
    master = create_ok(pool, [a], "--description", "master")
    regular = create_ok(pool, [b], "--storage", a, "--description", "regular")
    kv_a = mdt(vgs([a])[0])
    kv_b = mdt(vgs([b])[0])
    assert kv_b["ROLE"] == "Regular" and kv_b["POOL_UUID"] == pool
    assert "MASTER_VERSION" not in kv_b
    assert sorted(kv_a["POOL_DOMAINS"].split(",")) == sorted(
        [f"{master}:Active", f"{regular}:Active"])
    # a file domain joins the block master's pool too
    storage = workdir / "storage"
    storage.mkdir()
    fdom = ovs.Domain.create(storage, pool, "--storage", a)
    assert f"{fdom.uuid}:Active" in mdt(vgs([a])[0])["POOL_DOMAINS"]
    doms = [ovs.Domain(master, pool, a), ovs.Domain(regular, pool, b), fdom]
    t = make_tree(doms, storages=[a, b, os.fspath(storage)])
    t.check_ondisk = False
    assert sorted(os.listdir(os.path.join(t.root, pool))) == sorted(
        [master, regular, fdom.uuid])
    assert ovs.xget(t.dom(doms[0]), "role") == "master"
    assert ovs.xget(t.dom(doms[1]), "role") == "regular"
    assert ovs.xget(t.dom(doms[1]), "type") == "block"
    assert ovs.xget(t.dom(doms[2]), "type") == "file"
    st = t.mount.status()
    types = {d["uuid"]: d["type"] for p in st["pools"] for d in p["domains"]}
    assert types == {master: "block", regular: "block", fdom.uuid: "file"}


def test_mount_wants_every_pv(loops, pool, mounts):
    a, b = loops(2)
    sd = create_ok(pool, [a, b])
    m = mounts([a])
    m.allow_stderr(r"VG has 2 PVs|ignoring")
    assert os.listdir(m.path) == []
    assert any(sd in p["path"] for p in m.status()["problems"])


def test_rename_volume_and_image(btree):
    bt = btree()
    img = os.path.join(bt.dom, "img")
    os.mkdir(img)
    base = bt.tree.raw("img", "base", size=128 * MiB)
    ovs.qemu_io(base, "write -P 0x61 0 1M")
    top = bt.tree.qcow2("img", "top", size="128M", backing="base", backing_fmt="raw")
    assert ovs.xget(top, "parent") == "base"
    os.rename(base, os.path.join(img, "base2"))
    assert ovs.xget(top, "parent") == "base2"
    assert ovs.qemu_img_info(top)["backing-filename"] == "base2"
    tags = lvs(bt.devs)["top"]["lv_tags"].split(",")
    assert "PU_base2" in tags
    os.rename(img, os.path.join(bt.dom, "img2"))
    all_lvs = lvs(bt.devs)
    assert "base2" in all_lvs and "base" not in all_lvs
    for name in ("base2", "top"):
        assert "IU_img2" in all_lvs[name]["lv_tags"].split(",")
    bt.remount()
    top = os.path.join(bt.dom, "img2", "top")
    assert sorted(os.listdir(os.path.join(bt.dom, "img2"))) == ["base2", "top"]
    assert ovs.xget(top, "parent") == "base2"
    ovs.qemu_io(top, "read -P 0x61 0 1M", fmt="qcow2")


def test_attributes_and_plain_io(btree, workdir):
    bt = btree()
    img = os.path.join(bt.dom, "img")
    os.mkdir(img)
    v = bt.tree.raw("img", "v", size=16 * MiB)
    assert ovs.xget(v, "io") == "daemon"  # never passthrough: no backing file
    # chmod/chown are kept for the life of the mount (CONTRACT)
    os.chmod(v, 0o600)
    os.chown(v, 107, 107)
    os.chmod(img, 0o750)
    st = os.stat(v)
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o600, 107, 107)
    assert os.stat(img).st_mode & 0o7777 == 0o750
    # plain write/read/fsync; cp (copy_file_range falls back to read/write)
    data = os.urandom(4 * MiB)
    src = workdir / "src.bin"
    src.write_bytes(data)
    r = subprocess.run(["cp", str(src), v], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert ovs.read_at(v, 0, 4 * MiB) == data
    ovs.write_at(v, 5 * MiB, b"tail")
    assert ovs.read_at(v, 5 * MiB, 4) == b"tail"
    # SEEK_DATA/SEEK_HOLE: block volumes report data
    fd = os.open(v, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        assert os.lseek(fd, 0, os.SEEK_DATA) == 0
        assert os.lseek(fd, 0, os.SEEK_HOLE) == size
    finally:
        os.close(fd)
    # fallocate grows the LV (preallocated); punching a hole zeroes
    fd = os.open(v, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, 200 * MiB)
        assert os.fstat(fd).st_size == 200 * MiB
    finally:
        os.close(fd)
    assert int(lvs(bt.devs)["v"]["lv_size"]) == 256 * MiB
    r = subprocess.run(["fallocate", "-p", "-o", "0", "-l", str(MiB), v], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert ovs.read_at(v, 0, MiB) == bytes(MiB)
    assert ovs.read_at(v, MiB, 3 * MiB) == data[MiB:]
    bt.remount()
    st = os.stat(v)
    assert st.st_size == 200 * MiB
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o660, 36, 36)
    assert ovs.read_at(v, MiB, 3 * MiB) == data[MiB:]


# -------------------------------------------------------------- templates
# test_volumes.py's link tests on a block domain, where a template keeps
# its home image's IU_ tag and the images using it are found through their
# volumes' PU_ tags (reference 6.3).

def _template(bt, size=128 * MiB):
    """A/tmpl: a raw volume with 0x3c in its first MiB; images A and B."""
    t = bt.tree
    t.mkimg("a")
    t.mkimg("b")
    tmpl = t.raw("a", "tmpl", size=size)
    ovs.qemu_io(tmpl, "write -P 0x3c 0 1M")
    return tmpl


def test_block_link_template(btree):
    bt = btree()
    t = bt.tree
    tmpl = _template(bt)
    os.link(tmpl, t.vol("b", "tmpl"))
    for img in ("a", "b"):
        v = t.vol(img, "tmpl")
        assert ovs.xget(v, "role") == "shared"
        assert ovs.mode_within_cache(v, 0o440) == 0o440
        assert ovs.errno_of(os.open, v, os.O_WRONLY) == errno.EPERM
        assert ovs.errno_of(os.truncate, v, MiB) == errno.EPERM
    assert os.stat(tmpl).st_nlink == 2
    child = t.qcow2("b", "child", size="256M", backing="tmpl", backing_fmt="raw")
    assert ovs.xget(child, "parent") == "tmpl"
    assert ovs.xget(t.vol("b", "tmpl"), "role") == "shared"
    ovs.qemu_io(child, "read -P 0x3c 0 1M", fmt="qcow2", readonly=True)
    ovs.qemu_io(child, "write -P 0x77 0 64k", fmt="qcow2", cache="none")
    ovs.qemu_io(tmpl, "read -P 0x3c 0 1M", readonly=True)
    # used by a child: it stays; the home goes last
    assert ovs.errno_of(os.unlink, t.vol("b", "tmpl")) == errno.EBUSY
    assert ovs.errno_of(os.unlink, tmpl) == errno.EBUSY
    # on disk as oVirt lays it out: one LV, one record, the home's IU_ tag
    tags = lv_tags(bt.devs, "tmpl")
    assert "IU_a" in tags and "IU_b" not in tags
    rec = slot_record(bt.devs, "tmpl")
    assert (rec["VOLTYPE"], rec["IMAGE"], rec["PUUID"]) == (
        "SHARED", "a", "00000000-0000-0000-0000-000000000000")
    tags = lv_tags(bt.devs, "child")
    assert "IU_b" in tags and "PU_tmpl" in tags
    rec = slot_record(bt.devs, "child")
    assert (rec["VOLTYPE"], rec["IMAGE"], rec["PUUID"]) == ("LEAF", "b", "tmpl")

    bt.remount()
    assert os.listdir(t.img("a")) == ["tmpl"]
    assert os.listdir(t.img("b")) == ["child", "tmpl"]
    for img in ("a", "b"):
        assert ovs.xget(t.vol(img, "tmpl"), "role") == "shared"
    assert ovs.xget(child, "parent") == "tmpl"
    assert os.stat(tmpl).st_nlink == 2
    ovs.qemu_io(child, "read -P 0x77 0 64k", "read -P 0x3c 64k 960k", fmt="qcow2",
                readonly=True)
    assert ovs.errno_of(os.unlink, t.vol("b", "tmpl")) == errno.EBUSY

    # the child goes, then the link, then the template
    os.unlink(child)
    os.unlink(t.vol("b", "tmpl"))
    assert os.listdir(t.img("b")) == []
    assert "tmpl" in lvs(bt.devs)
    ovs.qemu_io(tmpl, "read -P 0x3c 0 1M", readonly=True)
    os.unlink(tmpl)
    assert "tmpl" not in lvs(bt.devs)
    assert os.listdir(t.img("a")) == []


def test_block_template_in_several_images(btree):
    """The scan rebuilds every image a template is linked into from the
    parents of their volumes, chains included; a link no volume names
    lasts only in memory, as an image with no volume does."""
    bt = btree()
    t = bt.tree
    tmpl = _template(bt)
    t.mkimg("c")
    t.mkimg("d")
    for img in ("b", "c", "d"):
        os.link(tmpl, t.vol(img, "tmpl"))
    b1 = t.qcow2("b", "b1", size="128M", backing="tmpl", backing_fmt="raw")
    ovs.qemu_io(b1, "write -P 0x61 0 64k", fmt="qcow2")
    b2 = t.qcow2("b", "b2", size="128M", backing="b1", backing_fmt="qcow2")
    ovs.qemu_io(b2, "write -P 0x62 64k 64k", fmt="qcow2")
    c1 = t.qcow2("c", "c1", size="128M", backing="tmpl", backing_fmt="raw")
    ovs.qemu_io(c1, "write -P 0x63 0 64k", fmt="qcow2")
    t.raw("d", "own", size=MiB)  # d has a volume, but none based on tmpl
    assert os.stat(tmpl).st_nlink == 4

    bt.remount()
    assert sorted(os.listdir(bt.dom)) == ["a", "b", "c", "d"]
    assert os.listdir(t.img("b")) == ["b2", "b1", "tmpl"]
    assert os.listdir(t.img("c")) == ["c1", "tmpl"]
    assert os.listdir(t.img("d")) == ["own"]
    assert os.stat(tmpl).st_nlink == 3
    assert ovs.xget(t.vol("b", "b1"), "role") == "internal"
    ovs.qemu_io(b2, "read -P 0x61 0 64k", "read -P 0x62 64k 64k", "read -P 0x3c 128k 896k",
                fmt="qcow2", readonly=True)
    ovs.qemu_io(c1, "read -P 0x63 0 64k", "read -P 0x3c 64k 960k", fmt="qcow2", readonly=True)
    # linking it into d again, then a child there: lasts
    os.link(tmpl, t.vol("d", "tmpl"))
    t.qcow2("d", "d1", size="128M", backing="tmpl", backing_fmt="raw")
    bt.remount()
    assert sorted(os.listdir(t.img("d"))) == ["d1", "own", "tmpl"]
    assert ovs.xget(t.vol("d", "d1"), "parent") == "tmpl"
    ovs.qemu_io(t.vol("d", "d1"), "read -P 0x3c 0 1M", fmt="qcow2", readonly=True)
    # image renames: the home's IU_ tag and the record follow; users keep it
    os.rename(t.img("a"), t.img("a2"))
    os.rename(t.img("c"), t.img("c2"))
    assert "IU_a2" in lv_tags(bt.devs, "tmpl")
    assert slot_record(bt.devs, "tmpl")["IMAGE"] == "a2"
    assert "IU_c2" in lv_tags(bt.devs, "c1")
    bt.remount()
    assert os.listdir(t.img("a2")) == ["tmpl"]
    assert os.listdir(t.img("c2")) == ["c1", "tmpl"]
    assert ovs.xget(t.vol("c2", "tmpl"), "role") == "shared"
    ovs.qemu_io(t.vol("c2", "c1"), "read -P 0x63 0 64k", "read -P 0x3c 64k 960k", fmt="qcow2",
                readonly=True)


def test_block_link_refusals(btree, workdir):
    bt = btree()
    t = bt.tree
    tmpl = _template(bt)
    # not a base volume: EPERM
    top = t.qcow2("a", "top", size="128M", backing="tmpl", backing_fmt="raw")
    assert ovs.errno_of(os.link, top, t.vol("b", "top")) == errno.EPERM
    os.unlink(top)
    assert ovs.xget(tmpl, "role") == "leaf"
    # open for write: EBUSY
    fd = os.open(tmpl, os.O_RDWR)
    try:
        assert ovs.errno_of(os.link, tmpl, t.vol("b", "tmpl")) == errno.EBUSY
    finally:
        os.close(fd)
    assert os.listdir(t.img("b")) == []
    assert ovs.xget(tmpl, "role") == "leaf"
    # twice: EEXIST
    os.link(tmpl, t.vol("b", "tmpl"))
    assert ovs.errno_of(os.link, tmpl, t.vol("b", "tmpl")) == errno.EEXIST
    # a shared volume keeps its name: EBUSY
    assert ovs.errno_of(os.rename, tmpl, t.vol("a", "tmpl2")) == errno.EBUSY
    assert os.listdir(t.img("a")) == ["tmpl"]
    # an unused template leaves an image, then goes
    os.unlink(t.vol("b", "tmpl"))
    assert os.listdir(t.img("b")) == []
    assert "IU_a" in lv_tags(bt.devs, "tmpl")
    os.unlink(tmpl)
    assert "tmpl" not in lvs(bt.devs)


def test_block_link_across_domains_exdev(loops, pool, make_tree, workdir):
    [a] = loops(1)
    sd = create_ok(pool, [a])
    storage = workdir / "storage"
    storage.mkdir()
    fdom = ovs.Domain.create(storage, pool, "--storage", a)
    bdom = ovs.Domain(sd, pool, a)
    t = make_tree([bdom, fdom], storages=[a, os.fspath(storage)])
    t.check_ondisk = False
    t.mkimg("a", bdom)
    t.mkimg("b", fdom)
    v = t.raw("a", "tmpl", size=MiB, d=bdom)
    assert ovs.errno_of(os.link, v, t.vol("b", "tmpl", fdom)) == errno.EXDEV
    assert os.listdir(t.img("b", fdom)) == []
    assert ovs.xget(v, "role") == "leaf"


# ------------------------------------------------------------ crash safety
# test_crash.py's scenarios, on a block domain: killed at a fault point, the
# operation is wholly visible or not after a remount, and the tree works.

def _block_crash_points():
    import test_crash
    return [p for p in test_crash.DAEMON_POINTS if p.split(".", 1)[0] != "meta_write"]


def _block_scenario(point):
    """test_crash.py's scenario for point.  A link on a block domain: image b
    has no volume, so it (and a link into it that no volume names) lasts in
    memory only (behaviour.md); "after" is the template shared, with or
    without the link."""
    import test_crash

    class BlockVolLink(test_crash.VolLink):
        def op(self, t):
            if not os.path.isdir(t.img("b")):
                t.mkimg("b")  # gone with the restart that armed the fault
            super().op(t)

        def state(self, t):
            a = os.listdir(t.img("a"))
            b = os.listdir(t.img("b")) if os.path.isdir(t.img("b")) else []
            ovs.qemu_io(t.vol("a", "tmpl"), "read -P 0x3c 0 1M", readonly=True)
            role = ovs.xget(t.vol("a", "tmpl"), "role")
            if a == ["tmpl"] and b == [] and role == "leaf":
                return "before"
            if a == ["tmpl"] and role == "shared" and (
                    b == [] or (b == ["tmpl"] and ovs.xget(t.vol("b", "tmpl"), "role") == "shared")):
                return "after"
            raise test_crash.HalfDone(f"a {a}, b {b}, role {role}")

    sc = test_crash.scenario(point)
    return BlockVolLink() if isinstance(sc, test_crash.VolLink) else sc


@pytest.mark.parametrize("point", _block_crash_points())
def test_block_crash_at(btree, point):
    import signal

    import test_crash
    bt = btree()
    t = bt.tree
    sc = _block_scenario(point)
    m = t.mount
    sc.setup(t)
    assert sc.state(t) == "before"
    m.stop()
    m.start(env={"OVSTORE_TEST_FAULT": f"{point}:crash"})
    try:
        sc.op(t)
    except OSError:
        pass
    rc = m.wait_exit(10)
    assert rc == -signal.SIGKILL, f"the daemon did not die at {point} (status {rc})"
    m.reap_dead()
    m.start()
    sc.state(t)
    assert not [n for n, lv in lvs(bt.devs).items()
                if "OVIRT_VOL_INITIALIZING" in lv["lv_tags"] or "_remove_me_" in lv["lv_tags"]]
    test_crash.follow_up(t)
    outcome = sc.state(t)
    m.remount()
    assert sc.state(t) == outcome


@pytest.mark.parametrize("point", ["vol_create.meta", "vol_create.lease", "vol_delete.illegal",
                                   "vol_delete.data", "vol_parent.parent", "vol_link.files",
                                   "vol_rename.files", "vol_rename.children", "img_rename.dir"])
def test_block_eio_at(btree, point):
    import test_crash
    bt = btree()
    t = bt.tree
    sc = _block_scenario(point)
    m = t.mount
    sc.setup(t)
    m.stop()
    m.start(env={"OVSTORE_TEST_FAULT": f"{point}:EIO"})
    m.allow_stderr(r"Input/output error")
    with pytest.raises(OSError) as e:
        sc.op(t)
    assert e.value.errno == errno.EIO, e.value
    assert m.alive(), "the daemon died on an injected EIO"
    assert sc.state(t) == "before"
    m.remount()
    assert sc.state(t) == "before"
    test_crash.follow_up(t)


# ------------------------------------------------- LV extension, journaled
# The extents lvextend hands out may hold a deleted LV's bytes until they are
# zeroed; the extension keeps an lv-extend journal record from before its
# lvextend until after the zeroing, and the next start zeroes again for a
# live record (behaviour.md "No stale bytes").

def _stale_extents(img, n):
    """A deleted LV's 0x5a bytes on the VG's n lowest free extents, where
    the next LVs and extensions go."""
    old = ovs.create_volume(os.path.join(img, "old"))
    os.truncate(old, n * EXTENT)
    ovs.qemu_io(old, f"write -P 0x5a 0 {n * EXTENT // MiB}M", cache="none")
    os.unlink(old)


def _extend_points():
    import test_crash
    assert "extend.zero" in test_crash.BLOCK_POINTS, test_crash.BLOCK_POINTS
    return test_crash.BLOCK_POINTS


@pytest.mark.parametrize("point", _extend_points())
def test_block_extend_crash(btree, point):
    """kill -9 at each step of a thin extension: after the restart the LV
    past what was served reads as zeros, on the PVs and through the mount,
    and no journal record is left."""
    import signal
    bt = btree(opts=("chunk_mb=128",))
    t = bt.tree
    m = t.mount
    img = os.path.join(bt.dom, "img")
    os.mkdir(img)
    _stale_extents(img, 2)
    q = t.qcow2("img", "q", size="1G")
    assert int(lvs(bt.devs)["q"]["lv_size"]) == EXTENT
    m.stop()
    m.start(env={"OVSTORE_TEST_FAULT": f"{point}:crash"})
    # past half the chunk: the extension, and the kill
    ovs.qemu_io(q, "write -P 0x66 0 200M", fmt="qcow2", cache="none", check=False)
    rc = m.wait_exit(10)
    assert rc == -signal.SIGKILL, f"the daemon did not die at {point} (status {rc})"
    m.reap_dead()
    lv = lvs(bt.devs)["q"]
    size = int(lv["lv_size"])
    if point == "extend.zero":
        # killed between lvextend and the zeroing: the deleted LV's bytes are there
        assert size > EXTENT
        assert read_lv(bt.devs, lv, EXTENT, MiB) == b"\x5a" * MiB
        assert [(op, kv["volume"], kv["old_size"]) for op, kv in journal_records(bt.devs)] \
            == [(OP_LV_EXTEND, "q", str(EXTENT))]
    else:
        assert size == EXTENT
    m.start()
    assert journal_records(bt.devs) == []
    lv = lvs(bt.devs)["q"]
    assert int(lv["lv_size"]) == size
    assert read_lv(bt.devs, lv, EXTENT, size - EXTENT) == bytes(size - EXTENT)
    assert os.stat(q).st_size == size
    assert ovs.read_at(q, EXTENT, size - EXTENT) == bytes(size - EXTENT)
    # extensions go on working, and stay put across a restart
    q2 = t.qcow2("img", "q2", size="1G")
    ovs.qemu_io(q2, "write -P 0x77 0 300M", fmt="qcow2", cache="none")
    assert int(lvs(bt.devs)["q2"]["lv_size"]) > 2 * EXTENT
    m.remount()
    assert journal_records(bt.devs) == []
    ovs.qemu_io(q2, "read -P 0x77 0 300M", fmt="qcow2")


@pytest.mark.parametrize("point", _extend_points())
def test_block_extend_eio(btree, point):
    """A failed step of an extension (truncate of a raw volume here): the
    call fails with EIO; a failure after lvextend keeps the record, and the
    retry zeroes what lvextend added and clears it, so a restart zeroes no
    data written since."""
    bt = btree()
    t = bt.tree
    m = t.mount
    img = os.path.join(bt.dom, "img")
    os.mkdir(img)
    _stale_extents(img, 3)
    v = t.raw("img", "v", size=MiB)
    m.stop()
    m.start(env={"OVSTORE_TEST_FAULT": f"{point}:EIO:once"})
    m.allow_stderr(r"Input/output error")
    with pytest.raises(OSError) as e:
        os.truncate(v, 300 * MiB)
    assert e.value.errno == errno.EIO, e.value
    assert m.alive(), "the daemon died on an injected EIO"
    assert os.stat(v).st_size == MiB
    lv = lvs(bt.devs)["v"]
    if point == "extend.zero":
        assert int(lv["lv_size"]) == 3 * EXTENT
        assert read_lv(bt.devs, lv, EXTENT, MiB) == b"\x5a" * MiB
        assert [(op, kv["volume"], kv["old_size"]) for op, kv in journal_records(bt.devs)] \
            == [(OP_LV_EXTEND, "v", str(EXTENT))]
    else:
        assert int(lv["lv_size"]) == EXTENT
        assert journal_records(bt.devs) == []
    os.truncate(v, 300 * MiB)
    assert os.stat(v).st_size == 300 * MiB
    assert journal_records(bt.devs) == []
    lv = lvs(bt.devs)["v"]
    assert int(lv["lv_size"]) == 3 * EXTENT
    assert read_lv(bt.devs, lv, EXTENT, 2 * EXTENT) == bytes(2 * EXTENT)
    ovs.qemu_io(v, "write -P 0x77 200M 100M", cache="none")
    m.remount()
    assert journal_records(bt.devs) == []
    ovs.qemu_io(v, "read -P 0x77 200M 100M", "read -P 0 1M 199M", cache="none")


def test_odirect_on_block(btree):
    import mmap
    bt = btree()
    os.mkdir(os.path.join(bt.dom, "img"))
    v = bt.tree.raw("img", "v", size=1000)  # not a whole sector
    ovs.write_at(v, 0, b"\x17" * 1000)
    buf = mmap.mmap(-1, 2 * 4096)
    mv = memoryview(buf)
    fd = os.open(v, os.O_RDWR | os.O_DIRECT)
    try:
        # a read past the end stops at the size, as on a file
        assert os.preadv(fd, [mv[:4096]], 0) == 1000
        assert bytes(mv[:1000]) == b"\x17" * 1000
        for view, off in ((mv[:512], 1), (mv[:100], 0)):
            for op in (os.preadv, os.pwritev):
                assert ovs.errno_of(op, fd, [view], off) == errno.EINVAL
        buf[4096:] = b"\x29" * 4096
        assert os.pwritev(fd, [mv[4096:]], 4096) == 4096
        assert os.fstat(fd).st_size == 8192
    finally:
        os.close(fd)
    assert ovs.read_at(v, 4096, 4096) == b"\x29" * 4096
    assert ovs.read_at(v, 1000, 3096) == bytes(3096)
    # sizes that are no whole sectors grow the LV too
    os.truncate(v, 200 * MiB + 1)
    assert os.stat(v).st_size == 200 * MiB + 1
    assert int(lvs(bt.devs)["v"]["lv_size"]) == 256 * MiB
    assert ovs.read_at(v, 200 * MiB - 4096, 4097) == bytes(4097)


def test_mount_helper_with_devices(loops, pool, workdir):
    """mount -t ovstore DEV MP -o lease=local,storage=DEV2: a block storage is a
    device path, as a directory is."""
    if not os.access(ovs.HELPER, os.X_OK):
        pytest.skip(f"mount helper not built: {ovs.HELPER}")
    a, b = loops(2)
    sd = create_ok(pool, [a, b])
    mp = workdir / "mp"
    mp.mkdir()
    env = ovs.base_env(None, debug=False)
    env["OVSTORE_BIN"] = ovs.BIN
    r = subprocess.run([ovs.HELPER, a, str(mp), "-o", f"lease=local,storage={b}"],
                       capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                       timeout=ovs.DEADLINE)
    assert r.returncode == 0, r.stderr
    pids = ovs.pids_with_arg(str(mp))
    try:
        assert os.listdir(mp / pool) == [sd]
        assert ovs.xget(mp / pool / sd, "type") == "block"
    finally:
        r = subprocess.run(["fusermount3", "-u", str(mp)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert ovs.wait_pids_gone(pids), "daemon did not exit after unmount"


def test_two_pv_domain(loops, pool, make_tree):
    """A VG on two PVs: found by mount and by domain create --storage when
    every PV is named (the second PV has no metadata areas in use), and a
    volume whose extents span both PVs reads and writes right."""
    a, b, c = loops(3)
    master = create_ok(pool, [a, b])
    regular = create_ok(pool, [c], "--storage", a, "--storage", b)
    kv = mdt(vgs([a, b])[0])
    assert f"{regular}:Active" in kv["POOL_DOMAINS"].split(",")
    doms = [ovs.Domain(master, pool, a), ovs.Domain(regular, pool, c)]
    t = make_tree(doms, storages=[a, b, c])
    t.check_ondisk = False
    assert sorted(os.listdir(os.path.join(t.root, pool))) == sorted([master, regular])
    img = os.path.join(t.dom(doms[0]), "img")
    os.mkdir(img)
    v = ovs.create_volume(os.path.join(img, "wide"))
    os.truncate(v, 14 * GiB)
    lv = lvs([a, b])["wide"]
    assert a in lv["seg_pe_ranges"] and b in lv["seg_pe_ranges"], lv
    ovs.qemu_io(v, "write -P 0x71 0 1M", "write -P 0x72 14335M 1M", cache="none")
    dev, off = lv_pv_offset([a, b], lv, 14335 * MiB)
    assert dev == b
    assert read_dev(dev, off, MiB) == b"\x72" * MiB
    t.remount()
    ovs.qemu_io(v, "read -P 0x71 0 1M", "read -P 0x72 14335M 1M", "read -P 0 14334M 1M",
                cache="none")


def test_fio_verify_on_block(btree, workdir):
    """A raw volume whose extents lie in two places on the PV, under fio with
    verify=crc32c (1 MiB and 4 KiB, depth 16 and 1, requests across the gap
    between its extents): the daemon answers the reads and writes that lie
    in one extent asynchronously (the engine queue, or the io_uring ring)
    at the PV offset of the LV's byte, the rest synchronously, and every
    byte lands where lvm's map puts it."""
    if not ovs.shutil.which("fio"):
        pytest.skip("fio not installed")
    # threads=1: the only request thread is always the last free one, so
    # over /dev/fuse every read and write it can hand off goes to the engine
    bt = btree(opts=["threads=1"])
    os.mkdir(os.path.join(bt.dom, "img"))
    v = bt.tree.raw("img", "v", size=EXTENT)
    bt.tree.raw("img", "between", size=EXTENT)  # takes the next extent
    os.truncate(v, 3 * EXTENT)                    # v's 2nd and 3rd come after it
    lv = lvs(bt.devs)["v"]
    first = lv_pv_offset(bt.devs, lv, EXTENT - 1)
    second = lv_pv_offset(bt.devs, lv, EXTENT)
    assert first[0] != second[0] or second[1] != first[1] + 1, \
        f"v's extents are contiguous on the PV: {lv['seg_pe_ranges']}"
    jobs = {
        # 64 KiB off the MiB grid: one 1 MiB block spans bytes either side of
        # the gap, and 1 MiB blocks cross the 2nd-3rd extent boundary too
        "seq-1m-qd16": "rw=write bs=1m ioengine=libaio iodepth=16 offset=64k size=240m",
        "rand-4k-qd16": "rw=randwrite bs=4k ioengine=libaio iodepth=16 offset=244m size=8m",
        "rand-4k-qd1": "rw=randwrite bs=4k ioengine=libaio iodepth=1 offset=252m size=2m",
        "rand-mixed-qd16": "rw=randwrite bsrange=4k-1m ioengine=libaio iodepth=16 "
                           "offset=256m size=128m",
    }
    lines = ["[global]", f"filename={v}", "direct=1", "verify=crc32c", "do_verify=1",
             "verify_fatal=1", "verify_dump=0", "fallocate=none", "allow_file_create=0"]
    for name, opts in jobs.items():
        lines += ["", f"[{name}]"] + opts.split()
    jobfile = workdir / "block.fio"
    jobfile.write_text("\n".join(lines) + "\n")

    def fio(*extra):
        r = subprocess.run(["fio", "--output-format=json", *extra, str(jobfile)],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=300, cwd=workdir)
        assert r.returncode == 0, f"fio {extra}: {r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        data = json.loads(r.stdout[r.stdout.find("{"):])
        assert not [j["error"] for j in data["jobs"] if j["error"]], data["jobs"]
        return data

    before = bt.tree.mount.status()["requests"]
    data = fio()
    after = bt.tree.mount.status()["requests"]
    for j in data["jobs"]:
        assert j["write"]["io_bytes"] > 0 and j["read"]["io_bytes"] == j["write"]["io_bytes"]
    assert sum(j["write"]["io_bytes"] for j in data["jobs"]) == (240 + 8 + 2 + 128) * MiB
    served = (after["read"] - before["read"]) + (after["write"] - before["write"])
    asynchronous = after["async"] - before["async"]
    # most requests lie inside one extent; the few across a boundary do not
    assert 0.9 * served < asynchronous < served, (before, after)

    # The PV holds, extent by extent, what the mount shows.
    with open(v, "rb") as f:
        shown = hashlib.sha256(f.read()).hexdigest()
    assert hashlib.sha256(read_lv(bt.devs, lvs(bt.devs)["v"], 0, 3 * EXTENT)).hexdigest() == shown
    bt.remount()
    fio("--verify_only")
