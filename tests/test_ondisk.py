"""Byte-level checks of what ovstore writes: a fresh domain (reference
sections 3, 4, 5, 9.3, 10) and volumes made through the mount (sections 5,
7, 8), plus the checker's own parsers."""

import hashlib
import mmap
import os
import stat
import struct
import time

import pytest

import ondisk
from util import ovs
from util.ovs import Domain, xget

MiB = ovs.MiB


# -------------------------------------------- the checker's parsers (no binary)

def test_seal_vectors():
    # reference section 3, VDSM's test vectors
    assert ondisk.seal({}) == "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    assert ondisk.seal({"key 1": "value 1", "key 2": "value 2"}) == \
        "ad4e8ffdd89dde809bf1ed700838b590b08a3826"
    example = """ALIGNMENT=1048576
BLOCK_SIZE=512
CLASS=Data
DESCRIPTION=sample-v5
IOOPTIMEOUTSEC=10
LEASERETRIES=3
LEASETIMESEC=60
LOCKPOLICY=ON
LOCKRENEWALINTERVALSEC=5
MASTER_VERSION=1
POOL_DESCRIPTION=sample-pool
POOL_DOMAINS=a5a6e1f0-5b1e-4c4e-9d7c-0f0e1d2c3b4a:Active
POOL_SPM_ID=-1
POOL_SPM_LVER=-1
POOL_UUID=c0c0e1f0-0b1e-4c4e-9d7c-0f0e1d2c3b4c
REMOTE_PATH=server.example.com:/export/data
ROLE=Master
SDUUID=a5a6e1f0-5b1e-4c4e-9d7c-0f0e1d2c3b4a
TYPE=NFS
VERSION=5
"""
    kv, _ = ondisk.parse_kv_lines(example)
    assert ondisk.seal(kv) == "893d60a73eff0605cbbf45853462ad12875d6281"
    # non-ASCII is hashed as an XML character reference
    assert ondisk.seal({"D": "\u05d9"}) == hashlib.sha1(b"D=&#1497;").hexdigest()


def test_volume_record_parser():
    rec = (b"CAP=8388608\nCTIME=1795500814\nDESCRIPTION=snapshot\nDISKTYPE=DATA\n"
           b"DOMAIN=a5a6e1f0-5b1e-4c4e-9d7c-0f0e1d2c3b4a\nFORMAT=COW\nGEN=0\n"
           b"IMAGE=11111111-aaaa-4aaa-8aaa-000000000001\nLEGALITY=LEGAL\n"
           b"PUUID=11111111-bbbb-4bbb-8bbb-000000000001\nSEQ=0\nTYPE=SPARSE\n"
           b"VOLTYPE=LEAF\nEOF\n")
    kv = ondisk.parse_volume_record(rec + b"\0" * 100)
    assert kv["CAP"] == "8388608" and kv["FORMAT"] == "COW"
    assert ondisk.volume_record_layout_problems(rec) == []
    with pytest.raises(ondisk.RecordError):
        ondisk.parse_volume_record(rec.replace(b"DOMAIN=", b"DOMAINX="))
    with pytest.raises(ondisk.RecordError):
        ondisk.parse_volume_record(b"\xff\xfe garbage\n")
    v4 = rec.replace(b"CAP=8388608", b"SIZE=16384")
    assert ondisk.parse_volume_record(v4)["CAP"] == "8388608"


def test_lease_resource_name():
    assert ondisk.lease_resource_name("a" * 48) == "a" * 48
    name = "b" * 49
    got = ondisk.lease_resource_name(name)
    assert len(got) == 48
    assert got == "bbbbbbbb-" + hashlib.sha1(name.encode()).hexdigest()[:39]


def test_qcow2_parser():
    if not ovs.shutil.which("qemu-img"):
        pytest.skip("qemu-img not installed")
    d = ovs.make_workdir()
    try:
        base = os.path.join(d, "base")
        top = os.path.join(d, "top")
        ovs.qemu_img("create", "-f", "raw", base, "1M")
        ovs.qemu_img("create", "-f", "qcow2", "-b", "base", "-F", "raw", top, "2M")
        h = ondisk.read_qcow2_header(top)
        assert h["size"] == 2 * MiB
        assert h["backing"] == "base"
        assert h["backing_format"] == "raw"
        assert ondisk.read_qcow2_header(base) is None
    finally:
        ovs.shutil.rmtree(d)


# ------------------------------------------------------------ fresh domain

def probe_block_size(directory):
    """The smallest O_DIRECT write the storage takes (behaviour.md)."""
    path = os.path.join(directory, ".bs-probe")
    buf = mmap.mmap(-1, 4096)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
    try:
        for size in (512, 4096):
            try:
                os.pwritev(fd, [memoryview(buf)[:size]], 0)
                return size
            except OSError:
                pass
    finally:
        os.close(fd)
        os.unlink(path)


def check_owner_mode(path, want_mode, uid=36, gid=36):
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == want_mode, f"{path}: mode {oct(st.st_mode)}"
    assert (st.st_uid, st.st_gid) == (uid, gid), f"{path}: owner {st.st_uid}:{st.st_gid}"


def test_fresh_master_domain(storage, pool):
    t0 = int(time.time())
    d = Domain.create(storage, pool, "--description", "fresh one")
    md = os.path.join(d.path, "dom_md")

    # layout and modes (reference section 5)
    assert sorted(os.listdir(d.path)) == ["dom_md", "images", "master"]
    assert sorted(os.listdir(md)) == sorted(["metadata", "ids", "leases", "inbox", "outbox",
                                             "xleases", ondisk.JOURNAL_FILE])
    assert sorted(os.listdir(os.path.join(d.path, "master"))) == ["tasks", "vms"]
    assert os.listdir(d.images()) == []
    check_owner_mode(md, 0o755)
    check_owner_mode(os.path.join(md, "metadata"), 0o644)
    for f in ("ids", "leases", "inbox", "outbox", "xleases"):
        check_owner_mode(os.path.join(md, f), 0o660)
    sizes = {f: os.stat(os.path.join(md, f)).st_size
             for f in ("ids", "leases", "inbox", "outbox", "xleases")}
    assert sizes == {"ids": MiB, "leases": 2 * MiB, "inbox": 16 * MiB, "outbox": 16 * MiB,
                     "xleases": MiB + 253952}
    assert os.stat(os.path.join(md, ondisk.JOURNAL_FILE)).st_size == 64 * 4096
    assert ondisk.journal_live_records(os.path.join(md, ondisk.JOURNAL_FILE)) == []

    # metadata: sorted lines, seal, keys (reference sections 3, 4)
    problems, kv = ondisk.domain_metadata_problems(d.path)
    assert problems == []
    _, stored, raw = ondisk.read_domain_metadata(d.path)
    assert stored == ondisk.seal(kv)
    assert raw.endswith(b"\n") and b"\0" not in raw
    want = {
        "VERSION": "5", "SDUUID": d.uuid, "TYPE": "POSIXFS", "CLASS": "Data",
        "DESCRIPTION": "fresh one", "ROLE": "Master", "POOL_UUID": pool,
        "BLOCK_SIZE": str(probe_block_size(storage)), "ALIGNMENT": "1048576",
        "POOL_DOMAINS": f"{d.uuid}:Active",
    }
    for k, v in want.items():
        assert kv.get(k) == v, f"{k}={kv.get(k)!r}, want {v!r}"
    for k in ondisk.DOMAIN_KEYS + ondisk.POOL_KEYS:
        assert k in kv, f"key {k} missing"
    for k in ("IOOPTIMEOUTSEC", "LEASERETRIES", "LEASETIMESEC", "LOCKRENEWALINTERVALSEC",
              "MASTER_VERSION", "POOL_SPM_ID", "POOL_SPM_LVER"):
        int(kv[k])

    # ids: a lockspace named after the domain, one delta lease per host id
    bs = int(kv["BLOCK_SIZE"])
    for host in (1, 2, 250, 2000):
        ld = ondisk.read_leader(os.path.join(md, "ids"), (host - 1) * bs)
        assert ld["magic"] == ondisk.DELTA_MAGIC, f"host {host}: {ld['magic']:#x}"
        assert ld["lockspace"] == d.uuid
        assert ld["sector_size"] == bs
        assert ld["checksum_ok"]
        assert ld["timestamp"] == 0
        assert ld["io_timeout"] == 10
    # leases: the SDM resource at 1 MiB, nothing at 0 (legacy safelease area)
    sdm = ondisk.read_leader(os.path.join(md, "leases"), MiB)
    assert sdm["magic"] == ondisk.PAXOS_MAGIC
    assert sdm["lockspace"] == d.uuid
    assert sdm["resource"] == "SDM"
    assert sdm["checksum_ok"]
    assert sdm["timestamp"] == 0
    # xleases: the index at 1 MiB, all records free
    assert ondisk.xleases_index_problems(os.path.join(md, "xleases"), d.uuid) == []
    with open(os.path.join(md, "xleases"), "rb") as f:
        f.seek(MiB)
        head = f.read(70)
    assert struct.unpack(">I", head[:4])[0] == 0x12152016
    assert t0 - 5 <= int(head[59:69]) <= time.time() + 5
    ondisk.assert_consistent([storage])


def test_io_timeout_written(storage, pool):
    d = Domain.create(storage, pool, "--io-timeout", "3")
    ld = ondisk.read_leader(os.path.join(d.path, "dom_md", "ids"), 0)
    assert ld["io_timeout"] == 3
    assert ld["checksum_ok"]


def test_fresh_regular_and_iso_domains(storage, pool):
    master = Domain.create(storage, pool)
    reg = Domain.create(storage, pool)
    iso = Domain.create(storage, pool, klass="iso")
    for d, cls in ((reg, "Data"), (iso, "Iso")):
        assert "master" not in os.listdir(d.path)
        kv, stored, _ = ondisk.read_domain_metadata(d.path)
        assert stored == ondisk.seal(kv)
        assert kv["ROLE"] == "Regular"
        assert kv["CLASS"] == cls
        assert kv["POOL_UUID"] == pool
        assert "POOL_DOMAINS" not in kv
    assert os.listdir(iso.images()) == [ovs.ISO_IMAGE_UUID]
    ondisk.assert_consistent([storage])


# --------------------------------------------------- volumes through the mount

def record(d, img, vol):
    with open(d.images(img, vol + ".meta"), "rb") as f:
        raw = f.read()
    assert ondisk.volume_record_layout_problems(raw) == []
    return ondisk.parse_volume_record(raw)


def test_new_volume_bytes(mnt):
    t0 = int(time.time())
    mnt.mkimg("img")
    mnt.raw("img", "vol")
    d = mnt.domain
    assert sorted(os.listdir(d.images("img"))) == ["vol", "vol.lease", "vol.meta"]
    check_owner_mode(d.images("img"), 0o770)
    check_owner_mode(d.images("img", "vol"), 0o660)
    assert os.stat(d.images("img", "vol")).st_size == 0
    rec = record(d, "img", "vol")
    assert set(rec) == set(ondisk.VOLUME_KEYS)
    want = {"CAP": "0", "DISKTYPE": "DATA", "DOMAIN": d.uuid, "FORMAT": "RAW",
            "IMAGE": "img", "LEGALITY": "LEGAL", "PUUID": ovs.BLANK_UUID, "TYPE": "SPARSE",
            "VOLTYPE": "LEAF"}
    for k, v in want.items():
        assert rec[k] == v, f"{k}={rec[k]!r}, want {v!r}"
    assert t0 - 5 <= int(rec["CTIME"]) <= time.time() + 5
    ld = ondisk.read_leader(d.images("img", "vol.lease"), 0)
    assert ld["magic"] == ondisk.PAXOS_MAGIC
    assert ld["lockspace"] == d.uuid
    assert ld["resource"] == "vol"
    assert ld["checksum_ok"]
    assert os.stat(d.images("img", "vol.lease")).st_size >= MiB


def test_chain_bytes(mnt):
    d = mnt.domain
    mnt.mkimg("img")
    mnt.raw("img", "base", size=8 * MiB)
    mnt.qcow2("img", "mid", size="16M", backing="base", backing_fmt="raw")
    mnt.qcow2("img", "top", size="16M", backing="mid", backing_fmt="qcow2")
    base, mid, top = (record(d, "img", v) for v in ("base", "mid", "top"))
    assert (base["FORMAT"], base["VOLTYPE"], base["CAP"]) == ("RAW", "INTERNAL", str(8 * MiB))
    assert (mid["FORMAT"], mid["VOLTYPE"], mid["PUUID"]) == ("COW", "INTERNAL", "base")
    assert (top["FORMAT"], top["VOLTYPE"], top["PUUID"]) == ("COW", "LEAF", "mid")
    assert mid["CAP"] == top["CAP"] == str(16 * MiB)
    # the backing name is the bare parent name (reference section 8)
    hm = ondisk.read_qcow2_header(d.images("img", "mid"))
    ht = ondisk.read_qcow2_header(d.images("img", "top"))
    assert (hm["backing"], hm["backing_format"]) == ("base", "raw")
    assert (ht["backing"], ht["backing_format"]) == ("mid", "qcow2")
    # internal volumes keep 0660 on disk; only the tree hides write bits
    for v in ("base", "mid", "top"):
        check_owner_mode(d.images("img", v), 0o660)
    assert ovs.mode_within_cache(mnt.vol("img", "base"), 0o440) == 0o440
    assert ovs.mode_within_cache(mnt.vol("img", "mid"), 0o440) == 0o440
    assert ovs.mode(mnt.vol("img", "top")) == 0o660


def test_description_and_generation_bytes(mnt):
    d = mnt.domain
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    gen = int(record(d, "img", "vol")["GEN"])
    ovs.xset(v, "description", "hello, world")
    rec = record(d, "img", "vol")
    assert rec["DESCRIPTION"] == "hello, world"
    assert int(rec["GEN"]) == (gen + 1) % 1000
    assert xget(v, "generation") == rec["GEN"]


def test_long_volume_name_lease(mnt):
    name = "v" * 30 + "-" + "0123456789abcdef" * 2 + "x"   # 64 bytes
    assert len(name) == 64
    mnt.mkimg("img")
    mnt.raw("img", name)
    ld = ondisk.read_leader(mnt.domain.images("img", name + ".lease"), 0)
    assert ld["resource"] == name[:8] + "-" + hashlib.sha1(name.encode()).hexdigest()[:39]
    assert ld["lockspace"] == mnt.sd


def test_template_bytes(mnt):
    d = mnt.domain
    mnt.mkimg("a")
    mnt.mkimg("b")
    mnt.raw("a", "tmpl", size=MiB)
    os.link(mnt.vol("a", "tmpl"), mnt.vol("b", "tmpl"))
    for f in ("tmpl", "tmpl.lease"):
        assert os.stat(d.images("a", f)).st_ino == os.stat(d.images("b", f)).st_ino
    ra, rb = record(d, "a", "tmpl"), record(d, "b", "tmpl")
    assert ra == rb
    assert ra["VOLTYPE"] == "SHARED"
    assert ra["IMAGE"] == "a"


def test_checker_finds_problems(mnt):
    """The on-disk check can fail: it sees a missing lease and a stray .new."""
    mnt.mkimg("img")
    mnt.raw("img", "vol")
    mnt.mount.stop()
    mnt.check()
    lease = mnt.backing("img", "vol.lease")
    os.rename(lease, lease + ".new")
    problems = ondisk.check_storage(mnt.storages)
    assert any("without .lease" in p for p in problems), problems
    assert any("leftover temporary" in p for p in problems), problems
    os.rename(lease + ".new", lease)
    meta = mnt.backing("img", "vol.meta")
    with open(meta) as f:
        text = f.read()
    with open(meta, "w") as f:
        f.write(text.replace("VOLTYPE=LEAF", "VOLTYPE=INTERNAL"))
    problems = ondisk.check_storage(mnt.storages)
    assert any("has no child but VOLTYPE=INTERNAL" in p for p in problems), problems
    with open(meta, "w") as f:
        f.write(text)
    mnt.check()
