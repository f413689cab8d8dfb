"""On-disk consistency checker for file domains (oVirt storage format V5).

Reads the bytes the daemon left on the storage directories, never the mount,
and lists every rule it finds broken (reference/ovirt-storage-format.md
sections 3, 4, 5, 7, 8, 9.3, 10; docs/behaviour.md for ovstore's own files).

    problems = check_storage([storage_dir, ...])
    assert_consistent([storage_dir, ...])      # AssertionError listing them

Also holds the small parsers the byte-level tests use: domain metadata and
its SHA-1 seal, volume records, qcow2 headers, sanlock leader records,
the xleases index and the journal.
"""

import hashlib
import os
import re
import stat
import struct
import subprocess

BLANK_UUID = "00000000-0000-0000-0000-000000000000"
ISO_IMAGE_UUID = "11111111-1111-1111-1111-111111111111"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,63}$")
MiB = 1024 * 1024
ALIGNMENT = MiB

# dom_md sizes (reference section 5, 10)
MAILBOX_SIZE = 16 * MiB
XLEASES_INDEX_SIZE = 253952
XLEASES_RECORDS = 3960
XLEASES_MAGIC = 0x12152016
JOURNAL_FILE = "ovstore.journal"
JOURNAL_RECORD = 4096
JOURNAL_SLOTS = 64
JOURNAL_MAGIC = b"OVSJRNL1"

# sanlock leader (reference section 9.3)
DELTA_MAGIC = 0x12212010
PAXOS_MAGIC = 0x06152010
CLEAR_MAGIC = 0x11282016
LEASE_NAME_MAX = 48

QCOW2_MAGIC = b"QFI\xfb"
QCOW2_EXT_BACKING_FORMAT = 0xE2792ACA

VOLUME_KEYS = ("CAP", "CTIME", "DESCRIPTION", "DISKTYPE", "DOMAIN", "FORMAT", "GEN",
               "IMAGE", "LEGALITY", "PUUID", "SEQ", "TYPE", "VOLTYPE")
# Required by the format (reference section 7); GEN and SEQ default to 0.
VOLUME_REQUIRED = ("DOMAIN", "IMAGE", "PUUID", "CAP", "FORMAT", "TYPE", "VOLTYPE",
                   "DISKTYPE", "DESCRIPTION", "LEGALITY", "CTIME")
DOMAIN_KEYS = ("ALIGNMENT", "BLOCK_SIZE", "CLASS", "DESCRIPTION", "IOOPTIMEOUTSEC",
               "LEASERETRIES", "LEASETIMESEC", "LOCKPOLICY", "LOCKRENEWALINTERVALSEC",
               "POOL_UUID", "REMOTE_PATH", "ROLE", "SDUUID", "TYPE", "VERSION")
POOL_KEYS = ("MASTER_VERSION", "POOL_DESCRIPTION", "POOL_DOMAINS", "POOL_SPM_ID",
             "POOL_SPM_LVER")


# ---------------------------------------------------------------- checksums

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c_raw(seed, data):
    """CRC-32C without final xor, as sanlock computes it (seed ~1 there)."""
    c = seed
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c


def crc32c(data):
    """Standard CRC-32C (seed ~0, final xor ~0), as the ovstore journal uses."""
    return crc32c_raw(0xFFFFFFFF, data) ^ 0xFFFFFFFF


def sanlock_checksum(leader):
    return crc32c_raw(0xFFFFFFFE, leader[:168])


def seal(kv):
    """The _SHA_CKSUM of a metadata dictionary (reference section 3)."""
    text = "".join(f"{k}={kv[k]}" for k in sorted(kv))
    return hashlib.sha1(text.encode("ascii", "xmlcharrefreplace")).hexdigest()


def lease_resource_name(volume):
    """The sanlock resource name of a volume lease (docs/behaviour.md)."""
    raw = volume.encode()
    if len(raw) <= LEASE_NAME_MAX:
        return volume
    return volume[:8] + "-" + hashlib.sha1(raw).hexdigest()[:39]


# ---------------------------------------------------------- domain metadata

def parse_kv_lines(text):
    """KEY=VALUE lines -> (dict, list of (key, value) in file order)."""
    kv = {}
    order = []
    for line in text.split("\n"):
        if "=" not in line:
            continue
        k, v = line.split("=", 1)
        k = k.strip()
        kv[k] = v
        order.append((k, v))
    return kv, order


def read_domain_metadata(domdir):
    """Returns (kv without _SHA_CKSUM, stored checksum or None, raw bytes)."""
    with open(os.path.join(domdir, "dom_md", "metadata"), "rb") as f:
        raw = f.read()
    text = raw.rstrip(b"\0").decode("utf-8")
    kv, _ = parse_kv_lines(text)
    stored = kv.pop("_SHA_CKSUM", None)
    return kv, stored, raw


def domain_metadata_problems(domdir):
    """Format rules of dom_md/metadata as ovstore writes it."""
    problems = []
    try:
        kv, stored, raw = read_domain_metadata(domdir)
    except (OSError, UnicodeDecodeError) as e:
        return [f"{domdir}: metadata unreadable: {e}"], None
    if stored is None:
        problems.append(f"{domdir}: metadata has no _SHA_CKSUM line")
    elif stored != seal(kv):
        problems.append(f"{domdir}: metadata seal is broken ({stored} != {seal(kv)})")
    text = raw.decode("utf-8", "replace")
    if not text.endswith("\n"):
        problems.append(f"{domdir}: metadata does not end with a newline")
    lines = [l for l in text.split("\n") if l]
    keys = [l.split("=", 1)[0] for l in lines]
    if keys and keys[-1] != "_SHA_CKSUM":
        problems.append(f"{domdir}: _SHA_CKSUM is not the last line")
    if keys[:-1] != sorted(keys[:-1]):
        problems.append(f"{domdir}: metadata keys are not sorted: {keys}")
    if any("=" not in l for l in lines):
        problems.append(f"{domdir}: metadata has a line without '='")
    return problems, kv


# ----------------------------------------------------------- volume records

class RecordError(Exception):
    pass


def parse_volume_record(raw):
    """Parses a volume record (reference section 7); RecordError if invalid."""
    raw = raw.rstrip(b"\0")
    kv = {}
    for bline in raw.split(b"\n"):
        try:
            line = bline.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RecordError(f"undecodable line {bline!r}") from e
        if line.startswith("EOF"):
            break
        if "=" not in line:
            continue
        k, v = line.split("=", 1)
        kv[k.strip()] = v.strip()
    if "NONE" in kv:
        raise RecordError("cleared record (NONE)")
    if "CAP" not in kv and "SIZE" in kv:
        kv["CAP"] = str(int(kv["SIZE"]) * 512)
    missing = [k for k in VOLUME_REQUIRED if k not in kv]
    if missing:
        raise RecordError(f"missing keys {missing}")
    kv.setdefault("GEN", "0")
    kv.setdefault("SEQ", "0")
    return kv


def read_volume_record(path):
    with open(path, "rb") as f:
        return parse_volume_record(f.read())


def volume_record_layout_problems(raw):
    """How ovstore writes a record: sorted KEY=VALUE lines, then EOF, <= 512 bytes."""
    problems = []
    if len(raw) > 512:
        problems.append(f"record is {len(raw)} bytes (> 512)")
    if not raw.endswith(b"EOF\n"):
        problems.append("record does not end with 'EOF\\n'")
    lines = raw.split(b"\n")
    body = []
    for l in lines:
        if l == b"EOF":
            break
        body.append(l)
    keys = [l.split(b"=", 1)[0].decode("utf-8", "replace") for l in body]
    if keys != sorted(keys):
        problems.append(f"record keys are not sorted: {keys}")
    if any(b"=" not in l for l in body):
        problems.append("record has a line without '='")
    return problems


# -------------------------------------------------------------------- qcow2

def read_qcow2_header(path):
    """The qcow2 fields ovstore follows, or None when the file is not qcow2."""
    with open(path, "rb") as f:
        buf = f.read(64 * 1024)
    if len(buf) < 72 or buf[:4] != QCOW2_MAGIC:
        return None
    (version, backing_off, backing_size, cluster_bits, size) = struct.unpack_from(">IQIIQ", buf, 4)
    hdr = {"version": version, "cluster_bits": cluster_bits, "size": size,
           "backing": None, "backing_format": None}
    header_length = 72
    if version >= 3 and len(buf) >= 104:
        header_length = struct.unpack_from(">I", buf, 100)[0]
    cluster = 1 << cluster_bits if 9 <= cluster_bits <= 21 else 65536
    if len(buf) < cluster:
        with open(path, "rb") as f:
            buf = f.read(cluster)
    if backing_off:
        hdr["backing"] = buf[backing_off:backing_off + backing_size].decode("utf-8", "replace")
    off = header_length
    while off + 8 <= len(buf):
        etype, elen = struct.unpack_from(">II", buf, off)
        if etype == 0:
            break
        if etype == QCOW2_EXT_BACKING_FORMAT:
            hdr["backing_format"] = buf[off + 8:off + 8 + elen].decode("ascii", "replace")
        off += 8 + ((elen + 7) & ~7)
    return hdr


def qemu_img_check(path, fmt="qcow2"):
    """(returncode, output) of `qemu-img check`."""
    r = subprocess.run(["qemu-img", "check", "-U", "-f", fmt, path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return r.returncode, r.stdout


# ------------------------------------------------------------------ sanlock

def read_leader(path, offset=0):
    with open(path, "rb") as f:
        f.seek(offset)
        buf = f.read(512)
    if len(buf) < 200:
        return None
    magic, version, flags, sector = struct.unpack_from("<IIII", buf, 0)
    num_hosts, max_hosts, owner_id, owner_gen, lver = struct.unpack_from("<QQQQQ", buf, 16)
    return {
        "magic": magic, "version": version, "flags": flags, "sector_size": sector,
        "num_hosts": num_hosts, "max_hosts": max_hosts, "owner_id": owner_id,
        "owner_generation": owner_gen, "lver": lver,
        "lockspace": buf[56:104].rstrip(b"\0").decode("ascii", "replace"),
        "resource": buf[104:152].rstrip(b"\0").decode("ascii", "replace"),
        "timestamp": struct.unpack_from("<Q", buf, 152)[0],
        "checksum": struct.unpack_from("<I", buf, 168)[0],
        "io_timeout": struct.unpack_from("<H", buf, 174)[0],
        "checksum_ok": struct.unpack_from("<I", buf, 168)[0] == sanlock_checksum(buf),
    }


# ------------------------------------------------------------------ xleases

def xleases_index_problems(path, sd_uuid):
    problems = []
    with open(path, "rb") as f:
        f.seek(ALIGNMENT)
        idx = f.read(XLEASES_INDEX_SIZE)
    if len(idx) != XLEASES_INDEX_SIZE:
        return [f"{path}: index is {len(idx)} bytes, not {XLEASES_INDEX_SIZE}"]
    if struct.unpack_from(">I", idx, 0)[0] != XLEASES_MAGIC:
        problems.append(f"{path}: bad index magic {idx[:4].hex()}")
    if idx[4:10] != b"\x000001\x00":
        problems.append(f"{path}: bad index version field {idx[4:10]!r}")
    if idx[10:58] != sd_uuid.encode().ljust(48, b"\0"):
        problems.append(f"{path}: index lockspace {idx[10:58]!r} is not {sd_uuid}")
    if idx[58:59] != b"\0" or not idx[59:69].isdigit() or idx[69:70] != b"\0":
        problems.append(f"{path}: bad index mtime field {idx[58:70]!r}")
    if idx[70:71] != b"-":
        problems.append(f"{path}: index state is {idx[70:71]!r}, not '-'")
    if idx[71:511] != b"\0" * 440 or idx[511:512] != b"\n":
        problems.append(f"{path}: index metadata block padding is wrong")
    free = b"\0" * 49 + b"00000000000" + b"\0" + b"--\n"
    for r in range(XLEASES_RECORDS):
        rec = idx[512 + 64 * r:512 + 64 * (r + 1)]
        if rec != free:
            problems.append(f"{path}: record {r} is not free: {rec!r}")
            break
    return problems


# ------------------------------------------------------------------ journal

def journal_live_records(path):
    """Slots of the ovstore journal that are not all zero."""
    live = []
    with open(path, "rb") as f:
        data = f.read()
    for slot in range(len(data) // JOURNAL_RECORD):
        rec = data[slot * JOURNAL_RECORD:(slot + 1) * JOURNAL_RECORD]
        if rec.count(0) != len(rec):
            live.append((slot, rec[:48]))
    return live


# ------------------------------------------------------------------ domains

def find_domains(storage):
    """Domain directories (<uuid>/dom_md) directly under a storage dir."""
    found = []
    for name in sorted(os.listdir(storage)):
        p = os.path.join(storage, name)
        if UUID_RE.match(name) and os.path.isdir(os.path.join(p, "dom_md")):
            found.append(p)
    return found


def _size(path):
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _check_special_files(ddir, sd, kv, problems):
    md = os.path.join(ddir, "dom_md")
    expect = {
        "ids": ALIGNMENT,
        "leases": 2 * ALIGNMENT,
        "inbox": MAILBOX_SIZE,
        "outbox": MAILBOX_SIZE,
        "xleases": ALIGNMENT + XLEASES_INDEX_SIZE,
        JOURNAL_FILE: JOURNAL_SLOTS * JOURNAL_RECORD,
    }
    for name, size in expect.items():
        got = _size(os.path.join(md, name))
        if got is None:
            problems.append(f"{md}/{name}: missing")
        elif name in ("ids", "leases", "xleases"):
            if got < size:
                problems.append(f"{md}/{name}: {got} bytes, want >= {size}")
        elif got != size:
            problems.append(f"{md}/{name}: {got} bytes, want {size}")
    for name in os.listdir(md):
        if name.endswith(".new") or name.startswith("."):
            problems.append(f"{md}/{name}: leftover temporary file")
    ids = read_leader(os.path.join(md, "ids"), 0)
    if not ids or ids["magic"] != DELTA_MAGIC or ids["lockspace"] != sd:
        problems.append(f"{md}/ids: no lockspace {sd} at offset 0 ({ids and hex(ids['magic'])})")
    sdm = read_leader(os.path.join(md, "leases"), ALIGNMENT)
    if (not sdm or sdm["magic"] != PAXOS_MAGIC or sdm["lockspace"] != sd
            or sdm["resource"] != "SDM"):
        problems.append(f"{md}/leases: no SDM resource at 1 MiB")
    if _size(os.path.join(md, "xleases")):
        problems.extend(xleases_index_problems(os.path.join(md, "xleases"), sd))


def check_domain(ddir, problems, opts, domains_seen):
    sd = os.path.basename(ddir)
    mdp, kv = domain_metadata_problems(ddir)
    problems.extend(mdp)
    if kv is None:
        return
    domains_seen[sd] = kv
    if kv.get("SDUUID") != sd:
        problems.append(f"{ddir}: SDUUID={kv.get('SDUUID')} is not the directory name")
    if kv.get("VERSION") != "5":
        problems.append(f"{ddir}: VERSION={kv.get('VERSION')}, want 5")
    for k in DOMAIN_KEYS:
        if k not in kv:
            problems.append(f"{ddir}: metadata key {k} missing")
    if kv.get("CLASS") not in ("Data", "Iso"):
        problems.append(f"{ddir}: CLASS={kv.get('CLASS')}")
    if kv.get("BLOCK_SIZE") not in ("512", "4096"):
        problems.append(f"{ddir}: BLOCK_SIZE={kv.get('BLOCK_SIZE')}")
    if kv.get("ALIGNMENT") != str(ALIGNMENT):
        problems.append(f"{ddir}: ALIGNMENT={kv.get('ALIGNMENT')}")
    role = kv.get("ROLE")
    if role == "Master":
        for k in POOL_KEYS:
            if k not in kv:
                problems.append(f"{ddir}: master lacks pool key {k}")
        for d in ("master", "master/vms", "master/tasks"):
            if not os.path.isdir(os.path.join(ddir, d)):
                problems.append(f"{ddir}: master domain lacks {d}/")
        if kv.get("CLASS") != "Data":
            problems.append(f"{ddir}: a master domain must be a data domain")
    elif role == "Regular":
        for k in POOL_KEYS:
            if k in kv and k != "MASTER_VERSION":
                problems.append(f"{ddir}: regular domain carries pool key {k}")
    else:
        problems.append(f"{ddir}: ROLE={role}")
    _check_special_files(ddir, sd, kv, problems)
    jpath = os.path.join(ddir, "dom_md", JOURNAL_FILE)
    if opts["journal_clear"] and os.path.exists(jpath):
        for slot, head in journal_live_records(jpath):
            problems.append(f"{jpath}: live record in slot {slot}: {head!r}")
    images = os.path.join(ddir, "images")
    if not os.path.isdir(images):
        problems.append(f"{ddir}: images/ missing")
        return
    if kv.get("CLASS") == "Iso" and not os.path.isdir(os.path.join(images, ISO_IMAGE_UUID)):
        problems.append(f"{ddir}: ISO domain lacks images/{ISO_IMAGE_UUID}/")
    _check_images(ddir, sd, kv, images, problems, opts)


def _check_images(ddir, sd, kv, images, problems, opts):
    records = {}   # (img, vol) -> kv
    inodes = {}    # vol -> list of (img, inode of data)
    for img in sorted(os.listdir(images)):
        ipath = os.path.join(images, img)
        if img.startswith("_remove_me_"):
            problems.append(f"{ipath}: leftover deleted image")
            continue
        if img.startswith(".") or not os.path.isdir(ipath):
            problems.append(f"{ipath}: leftover entry in images/")
            continue
        if not NAME_RE.match(img):
            problems.append(f"{ipath}: image name is not valid")
        names = sorted(os.listdir(ipath))
        if kv.get("CLASS") == "Iso" and img == ISO_IMAGE_UUID:
            for n in names:
                if n.endswith((".meta", ".lease")) or n.startswith("."):
                    problems.append(f"{ipath}/{n}: unexpected in the ISO image")
            continue
        vols, metas, leases = set(), set(), set()
        for n in names:
            p = os.path.join(ipath, n)
            if n.startswith(".") or n.endswith(".new") or ".creating" in n:
                problems.append(f"{p}: leftover temporary entry")
            elif n.endswith(".meta"):
                metas.add(n[:-5])
            elif n.endswith(".lease"):
                leases.add(n[:-6])
            elif stat.S_ISREG(os.lstat(p).st_mode):
                vols.add(n)
            else:
                problems.append(f"{p}: not a regular file")
        for v in sorted(vols - metas):
            problems.append(f"{ipath}/{v}: volume without .meta")
        for v in sorted(vols - leases):
            problems.append(f"{ipath}/{v}: volume without .lease")
        for v in sorted(metas - vols):
            problems.append(f"{ipath}/{v}.meta: record without volume data")
        for v in sorted(leases - vols):
            problems.append(f"{ipath}/{v}.lease: lease without volume data")
        for v in sorted(vols & metas):
            mpath = os.path.join(ipath, v + ".meta")
            if v in opts["allow_corrupt"]:
                continue
            with open(mpath, "rb") as f:
                raw = f.read()
            try:
                rec = parse_volume_record(raw)
            except RecordError as e:
                problems.append(f"{mpath}: invalid record: {e}")
                continue
            for p in volume_record_layout_problems(raw):
                problems.append(f"{mpath}: {p}")
            records[(img, v)] = rec
            inodes.setdefault(v, []).append((img, os.stat(os.path.join(ipath, v)).st_ino))
            _check_record(ddir, sd, img, v, rec, problems, opts)
            if v in leases:
                _check_lease(os.path.join(ipath, v + ".lease"), sd, v, problems)
        _check_roles(ipath, img, {v: records[(img, v)] for v in vols if (img, v) in records},
                     problems)
    # A name in several images is a template: same data, SHARED everywhere.
    for v, where in inodes.items():
        if len(where) < 2:
            continue
        if len({ino for _, ino in where}) != 1:
            problems.append(f"{ddir}: volume {v} is in images {[i for i, _ in where]} "
                            "with different data files")
        recs = [records[(i, v)] for i, _ in where]
        for i, _ in where:
            if records[(i, v)]["VOLTYPE"] != "SHARED":
                problems.append(f"{ddir}: volume {v} is in several images but is "
                                f"{records[(i, v)]['VOLTYPE']} in {i}")
        homes = {r["IMAGE"] for r in recs}
        if len(homes) != 1:
            problems.append(f"{ddir}: template {v} records name different images {homes}")
        elif homes.pop() not in [i for i, _ in where]:
            problems.append(f"{ddir}: template {v} home image is not one of its images")
        if len({tuple(sorted(r.items())) for r in recs}) != 1:
            problems.append(f"{ddir}: template {v} records differ between images")


def _check_record(ddir, sd, img, v, rec, problems, opts):
    where = f"{ddir}/images/{img}/{v}"
    if rec["DOMAIN"] != sd:
        problems.append(f"{where}: DOMAIN={rec['DOMAIN']}")
    if rec["IMAGE"] != img and rec["VOLTYPE"] != "SHARED":
        problems.append(f"{where}: IMAGE={rec['IMAGE']} but it lives in {img}")
    for k, allowed in (("FORMAT", ("RAW", "COW")), ("TYPE", ("SPARSE", "PREALLOCATED")),
                       ("VOLTYPE", ("LEAF", "INTERNAL", "SHARED")),
                       ("LEGALITY", ("LEGAL", "ILLEGAL"))):
        if rec[k] not in allowed:
            problems.append(f"{where}: {k}={rec[k]}")
    if rec["LEGALITY"] != "LEGAL" and v not in opts["allow_illegal"]:
        problems.append(f"{where}: LEGALITY={rec['LEGALITY']}")
    for k in ("CAP", "CTIME", "GEN", "SEQ"):
        if not re.fullmatch(r"-?[0-9]+", rec[k]):
            problems.append(f"{where}: {k}={rec[k]!r} is not an integer")
            return
    if not 0 <= int(rec["GEN"]) <= 999:
        problems.append(f"{where}: GEN={rec['GEN']} out of 0..999")
    parent = rec["PUUID"]
    data = os.path.join(ddir, "images", img, v)
    hdr = read_qcow2_header(data)
    if rec["FORMAT"] == "RAW":
        if parent != BLANK_UUID:
            problems.append(f"{where}: RAW volume with parent {parent}")
        size = os.stat(data).st_size
        if int(rec["CAP"]) != size:
            problems.append(f"{where}: RAW CAP={rec['CAP']} but the file has {size} bytes")
        return
    if rec["FORMAT"] != "COW":
        return
    if hdr is None:
        problems.append(f"{where}: FORMAT=COW but no qcow2 header")
        return
    if int(rec["CAP"]) != hdr["size"]:
        problems.append(f"{where}: CAP={rec['CAP']} but qcow2 virtual size {hdr['size']}")
    want = None if parent == BLANK_UUID else parent
    backing = hdr["backing"]
    if backing is not None and backing == f"../{img}/{parent}":
        backing = parent
    if backing != want:
        problems.append(f"{where}: qcow2 backing {hdr['backing']!r} but PUUID={parent}")
    if opts["qemu_check"]:
        rc, out = qemu_img_check(data)
        if rc != 0 and not (rc == 3 and opts["allow_leaks"]):
            problems.append(f"{where}: qemu-img check exit {rc}: {out.strip()}")


def _check_lease(path, sd, v, problems):
    size = _size(path)
    if size is None or size < ALIGNMENT:
        problems.append(f"{path}: {size} bytes, want {ALIGNMENT}")
        return
    ld = read_leader(path, 0)
    if (ld["magic"] != PAXOS_MAGIC or ld["lockspace"] != sd
            or ld["resource"] != lease_resource_name(v) or not ld["checksum_ok"]):
        problems.append(f"{path}: not a sanlock resource {sd}:{lease_resource_name(v)} "
                        f"(magic {ld['magic']:#x}, {ld['lockspace']}:{ld['resource']}, "
                        f"checksum ok {ld['checksum_ok']})")


def _check_roles(ipath, img, recs, problems):
    named = {}
    for v, rec in recs.items():
        p = rec["PUUID"]
        if p == BLANK_UUID:
            continue
        if p == v:
            problems.append(f"{ipath}/{v}: is its own parent")
            continue
        if p not in recs:
            problems.append(f"{ipath}/{v}: parent {p} is not in the image")
            continue
        named.setdefault(p, []).append(v)
        # the parent's format must match the backing format recorded
        hdr = read_qcow2_header(os.path.join(ipath, v))
        if hdr and hdr["backing_format"]:
            want = {"RAW": "raw", "COW": "qcow2"}.get(recs[p]["FORMAT"])
            if hdr["backing_format"] != want:
                problems.append(f"{ipath}/{v}: backing format {hdr['backing_format']} but "
                                f"parent {p} is {recs[p]['FORMAT']}")
    for v, rec in recs.items():
        role = rec["VOLTYPE"]
        if v in named and role not in ("INTERNAL", "SHARED"):
            problems.append(f"{ipath}/{v}: has children {named[v]} but VOLTYPE={role}")
        if v not in named and role not in ("LEAF", "SHARED"):
            problems.append(f"{ipath}/{v}: has no child but VOLTYPE={role}")
        # chains end (no loops)
        seen = set()
        cur = v
        while cur in recs and recs[cur]["PUUID"] != BLANK_UUID:
            if cur in seen:
                problems.append(f"{ipath}/{v}: parent chain loops")
                break
            seen.add(cur)
            cur = recs[cur]["PUUID"]


def _check_pools(domains_seen, problems):
    pools = {}
    for sd, kv in domains_seen.items():
        for p in filter(None, kv.get("POOL_UUID", "").split(",")):
            if p != BLANK_UUID:
                pools.setdefault(p, []).append(sd)
    for pool, members in pools.items():
        masters = [sd for sd in members if domains_seen[sd].get("ROLE") == "Master"]
        if len(masters) > 1:
            problems.append(f"pool {pool}: several masters {masters}")
        if len(masters) != 1:
            continue
        listed = {}
        for item in filter(None, domains_seen[masters[0]].get("POOL_DOMAINS", "").split(",")):
            u, _, st = item.partition(":")
            listed[u] = st
        for sd in members:
            if sd not in listed:
                problems.append(f"pool {pool}: domain {sd} is not in the master's POOL_DOMAINS")
            elif listed[sd] not in ("Active", "Attached"):
                problems.append(f"pool {pool}: domain {sd} has status {listed[sd]}")


def check_storage(storages, journal_clear=True, allow_illegal=(), allow_corrupt=(),
                  skip_domains=(), qemu_check=True, allow_leaks=False):
    """Every broken rule found under the storage directories, as strings."""
    if isinstance(storages, (str, os.PathLike)):
        storages = [storages]
    opts = {"journal_clear": journal_clear, "allow_illegal": set(allow_illegal),
            "allow_corrupt": set(allow_corrupt), "qemu_check": qemu_check,
            "allow_leaks": allow_leaks}
    problems = []
    domains_seen = {}
    for storage in storages:
        storage = os.fspath(storage)
        for name in os.listdir(storage):
            if name.endswith(".creating"):
                problems.append(f"{storage}/{name}: leftover half-made domain")
            elif UUID_RE.match(name) and not os.path.isdir(os.path.join(storage, name, "dom_md")):
                problems.append(f"{storage}/{name}: looks like a domain but has no dom_md/")
        for ddir in find_domains(storage):
            if os.path.basename(ddir) in skip_domains:
                continue
            check_domain(ddir, problems, opts, domains_seen)
    _check_pools(domains_seen, problems)
    return problems


def assert_consistent(storages, **kw):
    problems = check_storage(storages, **kw)
    assert not problems, "on-disk check failed:\n  " + "\n  ".join(problems)
