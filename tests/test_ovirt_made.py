"""A domain laid out the way oVirt's VDSM lays it out mounts and works.

The domain here is written by this test alone, from the format reference
(sections 3-5, 7, 10): nothing of ovstore's own making is on it (no journal,
no ovstore-created files), and it carries what VDSM leaves behind that
ovstore never writes itself (TYPE=NFS, REMOTE_PATH, v4-style SIZE keys
next to CAP, an unknown key, a `_remove_me_` image from an interrupted
delete).
"""
import os
import shutil
import struct
import subprocess
import time
import uuid

import pytest

import ondisk
from util import ovs
from util.ovs import qemu_io, xget

MiB = ovs.MiB
ALIGN = MiB
BLANK = "00000000-0000-0000-0000-000000000000"


def write_metadata(path, kv):
    lines = "".join(f"{k}={kv[k]}\n" for k in sorted(kv))
    with open(path, "w") as f:
        f.write(lines + f"_SHA_CKSUM={ondisk.seal(kv)}\n")


def volume_record(**kv):
    return "".join(f"{k}={kv[k]}\n" for k in sorted(kv)) + "EOF\n"


def sanlock(*args):
    exe = shutil.which("sanlock")
    if exe:
        subprocess.run([exe, "direct", "init", *args], check=True, capture_output=True)
    return exe is not None


def xleases_index(sd):
    meta = bytearray(512)
    struct.pack_into(">I", meta, 0, 0x12152016)
    meta[5:9] = b"0001"
    meta[10:10 + len(sd)] = sd.encode()
    meta[59:69] = b"%010d" % int(time.time())
    meta[70:71] = b"-"
    meta[511:512] = b"\n"
    free = b"\0" * 49 + b"00000000000" + b"\0" + b"--\n"
    return bytes(meta) + free * 3960


def make_vdsm_domain(storage, sd, pool):
    d = os.path.join(storage, sd)
    md = os.path.join(d, "dom_md")
    os.makedirs(md)
    for name, size in (("ids", 0), ("leases", 0), ("xleases", 0),
                       ("inbox", 16 * MiB), ("outbox", 16 * MiB)):
        p = os.path.join(md, name)
        with open(p, "wb") as f:
            f.truncate(size)
        os.chmod(p, 0o660)
    with open(os.path.join(md, "xleases"), "r+b") as f:
        f.seek(ALIGN)
        f.write(xleases_index(sd))
    write_metadata(os.path.join(md, "metadata"), {
        "ALIGNMENT": "1048576", "BLOCK_SIZE": "512", "CLASS": "Data",
        "DESCRIPTION": "made-by-vdsm", "IOOPTIMEOUTSEC": "10", "LEASERETRIES": "3",
        "LEASETIMESEC": "60", "LOCKPOLICY": "ON", "LOCKRENEWALINTERVALSEC": "5",
        "MASTER_VERSION": "1", "POOL_DESCRIPTION": "vdsm-pool",
        "POOL_DOMAINS": f"{sd}:Active", "POOL_SPM_ID": "-1", "POOL_SPM_LVER": "-1",
        "POOL_UUID": pool, "REMOTE_PATH": "nfs.example.com:/export/data",
        "ROLE": "Master", "SDUUID": sd, "TYPE": "NFS", "VERSION": "5"})
    os.makedirs(os.path.join(d, "images"))
    os.makedirs(os.path.join(d, "master", "vms"))
    os.makedirs(os.path.join(d, "master", "tasks"))
    if not sanlock("-s", f"{sd}:0:{md}/ids:0"):
        with open(os.path.join(md, "ids"), "wb") as f:
            f.truncate(ALIGN)
    if not sanlock("-r", f"{sd}:SDM:{md}/leases:{ALIGN}"):
        with open(os.path.join(md, "leases"), "wb") as f:
            f.truncate(2 * ALIGN)
    return d


def add_volume(d, sd, img, vol, fmt, parent=BLANK, cap=64 * MiB, role="LEAF",
               data=None, v4=False):
    idir = os.path.join(d, "images", img)
    os.makedirs(idir, exist_ok=True)
    path = os.path.join(idir, vol)
    if fmt == "RAW":
        with open(path, "wb") as f:
            f.truncate(cap)
            if data:
                f.write(data)
    else:
        cmd = ["qemu-img", "create", "-f", "qcow2", "-o", "compat=1.1"]
        if parent != BLANK:
            cmd += ["-b", parent, "-F", "raw", "-u"]
        subprocess.run(cmd + [vol, str(cap)], cwd=idir, check=True, capture_output=True)
    os.chmod(path, 0o660)
    rec = dict(CTIME=str(int(time.time())), DESCRIPTION='{"DiskAlias":"disk1"}',
               DISKTYPE="DATA", DOMAIN=sd, FORMAT=fmt, GEN="0", IMAGE=img,
               LEGALITY="LEGAL", PUUID=parent, TYPE="SPARSE", VOLTYPE=role)
    if v4:
        rec.update(SIZE=str(cap // 512), MTIME="0")
    else:
        rec.update(CAP=str(cap), SEQ="0")
    with open(path + ".meta", "w") as f:
        f.write(volume_record(**rec))
    lease = path + ".lease"
    with open(lease, "wb") as f:
        f.truncate(0)
    os.chmod(lease, 0o660)
    if not sanlock("-r", f"{sd}:{vol}:{lease}:0"):
        with open(lease, "wb") as f:
            f.truncate(ALIGN)
    return path


@pytest.fixture
def vdsm_domain(storage, pool):
    sd = str(uuid.uuid4())
    d = make_vdsm_domain(os.fspath(storage), sd, pool)
    img, tmpl_img = str(uuid.uuid4()), str(uuid.uuid4())
    base, snap = str(uuid.uuid4()), str(uuid.uuid4())
    tbase, tsnap = str(uuid.uuid4()), str(uuid.uuid4())
    add_volume(d, sd, img, base, "RAW", role="INTERNAL", data=b"\xab" * MiB, v4=True)
    add_volume(d, sd, img, snap, "COW", parent=base)
    # A template: its volume hard-linked (data, .meta, .lease) into a VM's image.
    add_volume(d, sd, tmpl_img, tbase, "RAW", role="SHARED", data=b"\xcd" * MiB)
    vm_img = str(uuid.uuid4())
    os.makedirs(os.path.join(d, "images", vm_img))
    for suffix in ("", ".meta", ".lease"):
        os.link(os.path.join(d, "images", tmpl_img, tbase + suffix),
                os.path.join(d, "images", vm_img, tbase + suffix))
    add_volume(d, sd, vm_img, tsnap, "COW", parent=tbase)
    # An image delete that VDSM did not finish.
    gone = os.path.join(d, "images", "_remove_me_" + str(uuid.uuid4()))
    os.makedirs(gone)
    with open(os.path.join(gone, "junk"), "w") as f:
        f.write("x")
    dom = ovs.Domain(sd, pool, storage)
    dom.ids = dict(img=img, base=base, snap=snap, tmpl_img=tmpl_img, tbase=tbase,
                   vm_img=vm_img, tsnap=tsnap, gone=gone)
    return dom


def test_vdsm_made_domain_mounts(vdsm_domain, make_tree):
    ids = vdsm_domain.ids
    t = make_tree([vdsm_domain])
    # Our own consistency check of the bytes ends every test; VDSM's layout
    # has no ovstore journal, and must still pass it after we worked on it.
    dpath = t.dom()
    assert xget(dpath, "type") == "file"
    assert xget(dpath, "class") == "data"
    assert xget(dpath, "role") == "master"
    assert xget(dpath, "description") == "made-by-vdsm"
    assert sorted(os.listdir(dpath)) == sorted([ids["img"], ids["tmpl_img"], ids["vm_img"]])

    img = t.img(ids["img"])
    assert os.listdir(img) == [ids["snap"], ids["base"]]  # leaf first
    base, snap = os.path.join(img, ids["base"]), os.path.join(img, ids["snap"])
    assert xget(base, "capacity") == str(64 * MiB)  # from the v4 SIZE key
    assert xget(base, "role") == "internal"
    assert xget(snap, "format") == "qcow2"
    assert xget(snap, "parent") == ids["base"]
    assert xget(snap, "role") == "leaf"

    tb = os.path.join(t.img(ids["vm_img"]), ids["tbase"])
    assert xget(tb, "role") == "shared"
    tsnap = os.path.join(t.img(ids["vm_img"]), ids["tsnap"])
    qemu_io(tsnap, "read -P 0xcd 0 1M", fmt="qcow2", readonly=True)

    # The chain reads through the mount, and a guest write lands in the leaf.
    qemu_io(snap, "read -P 0xab 0 1M", "write -P 0x77 4M 64k", fmt="qcow2", cache="none")
    qemu_io(snap, "read -P 0x77 4M 64k", "read -P 0xab 0 1M", fmt="qcow2", readonly=True)
    with pytest.raises(PermissionError):
        open(base, "r+b")
    # A new snapshot the way an admin makes one through the mount.
    new = os.path.join(img, "s2")
    r = subprocess.run(["qemu-img", "create", "-f", "qcow2", "-b", ids["snap"], "-F", "qcow2",
                        new], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert xget(snap, "role") == "internal"
    assert xget(new, "parent") == ids["snap"]
    # The interrupted delete is finished when the domain is produced.
    assert not os.path.exists(ids["gone"])


def test_vdsm_made_domain_survives_remount(vdsm_domain, make_tree):
    ids = vdsm_domain.ids
    t = make_tree([vdsm_domain])
    snap = os.path.join(t.img(ids["img"]), ids["snap"])
    ovs.xset(snap, "description", "changed here")
    t.mount.close()
    rec = ondisk.read_volume_record(vdsm_domain.images(ids["img"], ids["snap"] + ".meta"))
    assert rec["DESCRIPTION"] == "changed here"
    assert rec["GEN"] == "1"
    # Our write keeps VDSM's v5 record form (CAP and SEQ, sorted, EOF).
    t2 = make_tree([vdsm_domain])
    assert xget(os.path.join(t2.img(ids["img"]), ids["snap"]), "description") == "changed here"
