#!/usr/bin/python3
"""Writes the seed inputs of tests/unit/fuzz/corpus/<target>/.

The corpora are checked in; this script documents where the seeds came
from and recreates them (run from tests/unit/fuzz/).  Inputs found by
fuzzing are added to the corpora by hand (libFuzzer crash-* files, renamed),
so do not wipe the directories before running it.
"""

import hashlib
import os
import struct

CORPUS = "corpus"
DATA = "../data"


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def seal(d):
    h = hashlib.sha1()
    for k in sorted(d):
        h.update(("%s=%s" % (k, d[k])).encode("ascii", "xmlcharrefreplace"))
    return h.hexdigest()


def kvtext(d, with_seal=True):
    text = "".join("%s=%s\n" % (k, d[k]) for k in sorted(d))
    if with_seal:
        text += "_SHA_CKSUM=%s\n" % seal(d)
    return text


def tag(line):
    out = ""
    for c in line:
        if c.isascii() and (c.isalnum() or c in "_+.-/=!:#"):
            out += c
        else:
            out += "&%d&" % ord(c)
    return "MDT_" + out


def tags(d, extra=()):
    ts = [tag("%s=%s" % (k, d[k])) for k in sorted(d)]
    ts.append(tag("_SHA_CKSUM=%s" % seal(d)))
    ts.extend(extra)
    return "\n".join(reversed(ts))


EX5 = {
    "ALIGNMENT": "1048576", "BLOCK_SIZE": "512", "CLASS": "Data",
    "DESCRIPTION": "sample-v5", "IOOPTIMEOUTSEC": "10", "LEASERETRIES": "3",
    "LEASETIMESEC": "60", "LOCKPOLICY": "ON", "LOCKRENEWALINTERVALSEC": "5",
    "MASTER_VERSION": "1", "POOL_DESCRIPTION": "sample-pool",
    "POOL_DOMAINS": "a5a6e1f0-5b1e-4c4e-9d7c-0f0e1d2c3b4a:Active",
    "POOL_SPM_ID": "-1", "POOL_SPM_LVER": "-1",
    "POOL_UUID": "c0c0e1f0-0b1e-4c4e-9d7c-0f0e1d2c3b4c",
    "REMOTE_PATH": "server.example.com:/export/data", "ROLE": "Master",
    "SDUUID": "a5a6e1f0-5b1e-4c4e-9d7c-0f0e1d2c3b4a", "TYPE": "NFS",
    "VERSION": "5",
}
LOCAL = {
    "ALIGNMENT": "1048576", "BLOCK_SIZE": "512", "CLASS": "Data",
    "DESCRIPTION": "storage domain", "IOOPTIMEOUTSEC": "10",
    "LEASERETRIES": "3", "LEASETIMESEC": "60", "LOCKPOLICY": "",
    "LOCKRENEWALINTERVALSEC": "5", "POOL_UUID": "",
    "REMOTE_PATH": "server:/path", "ROLE": "Regular",
    "SDUUID": "275766cb-c7d8-43d6-a663-4e52160de620", "TYPE": "LOCALFS",
    "VERSION": "5",
}
BLOCK = {
    "CLASS": "Data", "DESCRIPTION": "block \u05d9 domain",
    "IOOPTIMEOUTSEC": "10", "LEASERETRIES": "3", "LEASETIMESEC": "60",
    "LOCKPOLICY": "", "LOCKRENEWALINTERVALSEC": "5", "LOGBLKSIZE": "512",
    "PHYBLKSIZE": "512",
    "PV0": "pv:3600a098038303053,uuid:abcd-efgh,pestart:0,pecount:77,mapoffset:0",
    "POOL_UUID": "", "ROLE": "Regular",
    "SDUUID": "b4b4e1f0-4b1e-4c4e-9d7c-0f0e1d2c3b4b", "TYPE": "ISCSI",
    "VERSION": "4", "VGUUID": "Qb3n2T-aAaA-1234-abcd-EFgh-IJkl-MNopQR",
}

V4 = (
    "CTIME=1795500815\nDESCRIPTION=v4 qcow2\nDISKTYPE=DATA\n"
    "DOMAIN=b4b4e1f0-4b1e-4c4e-9d7c-0f0e1d2c3b4b\nFORMAT=COW\nGEN=0\n"
    "IMAGE=11111111-aaaa-4aaa-8aaa-000000000001\nLEGALITY=LEGAL\nMTIME=0\n"
    "PUUID=00000000-0000-0000-0000-000000000000\nSIZE=2097152\nTYPE=SPARSE\n"
    "VOLTYPE=LEAF\nEOF\n"
)
V5 = (
    "CAP=8388608\nCTIME=1795500814\nDESCRIPTION=snapshot\nDISKTYPE=DATA\n"
    "DOMAIN=a5a6e1f0-5b1e-4c4e-9d7c-0f0e1d2c3b4a\nFORMAT=COW\nGEN=0\n"
    "IMAGE=11111111-aaaa-4aaa-8aaa-000000000001\nLEGALITY=LEGAL\n"
    "PUUID=11111111-bbbb-4bbb-8bbb-000000000001\nSEQ=0\nTYPE=SPARSE\n"
    "VOLTYPE=LEAF\nEOF\n"
)


def changed(d, **kw):
    d = dict(d)
    for k, v in kw.items():
        if v is None:
            del d[k]
        else:
            d[k] = v
    return d


def kv_seeds():
    t = kvtext(EX5)
    assert "893d60a73eff0605cbbf45853462ad12875d6281" in t
    assert "9336f77705ff9e3d5faf65c4d0dc818a29de458d" in kvtext(LOCAL)
    write("kv", "example-v5.txt", t)
    write("kv", "example-localfs.txt", kvtext(LOCAL))
    write("kv", "no-seal.txt", kvtext(EX5, False))
    write("kv", "broken-seal.txt", t.replace("sample-v5", "sample-v6"))
    write("kv", "non-ascii.txt", kvtext(BLOCK))
    write("kv", "nul-padded.txt", t.encode() + b"\0" * 512)
    write("kv", "truncated.txt", t[:200])
    write("kv", "whitespace.txt",
          " KEY = value \r\nno equals\nEQ=a=b\n=empty key\nDUP=1\nDUP=2\n"
          "\u00a0X\u00a0=\u2028y\n")
    write("kv", "invalid-utf8.txt", b"A=\xff\xfe\nB=\xc3\n")
    write("kv", "only-seal.txt", "_SHA_CKSUM=da39a3ee5e6b4b0d3255bfef95601890afd80709\n")
    write("kv", "empty.txt", b"")


def kv_tags_seeds():
    write("kv-tags", "block-v4.tags", tags(BLOCK, ["RHAT_storage_domain"]))
    write("kv-tags", "example-v5.tags", tags(EX5))
    write("kv-tags", "escapes.tags",
          "MDT_A=x&y\nMDT_B=&&32&\nMDT_C=&32\nMDT_D=&0065&\n"
          "MDT_E=&1497&&44&&38&\nOTHER_TAG")
    write("kv-tags", "bad-codepoint.tags", "MDT_A=&1114112&\nMDT_B=&55296&\nMDT_C=&0&")
    write("kv-tags", "newline-escape.tags", "MDT_A=&10&")
    write("kv-tags", "broken-seal.tags", tags(EX5).replace("sample-v5", "sample-v6"))
    write("kv-tags", "big-number.tags", "MDT_A=&99999999999999999999999&")


def domain_seeds():
    write("domain", "example-v5.txt", kvtext(EX5))
    write("domain", "localfs.txt", kvtext(LOCAL))
    write("domain", "block-v4.txt", kvtext(BLOCK))
    write("domain", "iso-two-pools.txt", kvtext(changed(
        LOCAL, CLASS="Iso", TYPE="NFS",
        POOL_UUID="c0c0e1f0-0b1e-4c4e-9d7c-0f0e1d2c3b4c,"
                  "00000000-0000-0000-0000-000000000000,"
                  "d0d0e1f0-0b1e-4c4e-9d7c-0f0e1d2c3b4c"), False))
    write("domain", "4k-8m.txt", kvtext(changed(LOCAL, BLOCK_SIZE="4096",
                                                ALIGNMENT="8388608"), False))
    write("domain", "version-7.txt", kvtext(changed(EX5, VERSION="7"), False))
    write("domain", "two-domains.txt", kvtext(changed(
        EX5, POOL_DOMAINS="a5a6e1f0-5b1e-4c4e-9d7c-0f0e1d2c3b4a:Active,,"
                          "b4b4e1f0-4b1e-4c4e-9d7c-0f0e1d2c3b4b:Attached,"), False))
    write("domain", "512-2m.txt", kvtext(changed(EX5, ALIGNMENT="2097152"), False))
    write("domain", "no-role.txt", kvtext(changed(EX5, ROLE=None), False))
    write("domain", "upper-uuid.txt",
          kvtext(changed(EX5, SDUUID=EX5["SDUUID"].upper()), False))


def volume_seeds():
    write("volume", "example-v4.meta", V4)
    write("volume", "example-v5.meta", V5)
    write("volume", "block-slot.meta", V5.encode() + b"\0" * (512 - len(V5)))
    write("volume", "cleared-none.meta", "NONE=" + "#" * 502 + "\nEOF\n")
    write("volume", "zero-slot.meta", b"\0" * 512)
    write("volume", "missing-cap.meta", V5.replace("CAP=8388608\n", ""))
    write("volume", "json-description.meta", V5.replace(
        "DESCRIPTION=snapshot",
        'DESCRIPTION={"DiskAlias":"vm_Disk1","DiskDescription":"\u05d9"}').replace(
        "GEN=0", "GEN=999"))
    write("volume", "bad-utf8.meta", V5.encode().replace(b"snapshot", b"snap\xffshot"))
    write("volume", "garbage-after-eof.meta", V4.encode() + b"VOLTYPE=SHARED\n\xff\n")
    write("volume", "whitespace.meta",
          "  " + V4.replace("=", " = ").replace("\n", " \r\n"))
    write("volume", "max-description.meta", V5.replace(
        "DESCRIPTION=snapshot", "DESCRIPTION=" + "d" * (512 - len(V5) + 8)))


def qcow2_seeds():
    # The first 2 KiB of the real images in tests/unit/data.
    for f in sorted(os.listdir(DATA)):
        if f.endswith(".qcow2-head"):
            with open(os.path.join(DATA, f), "rb") as src:
                write("qcow2", f.replace(".qcow2-head", ".qcow2"), src.read()[:2048])
    with open(os.path.join(DATA, "v3-plain.qcow2-head"), "rb") as src:
        b = src.read()[:2048]
    write("qcow2", "truncated-100.qcow2", b[:100])
    bb = bytearray(b)
    bb[4:8] = struct.pack(">I", 4)
    write("qcow2", "version-4.qcow2", bytes(bb))
    bb = bytearray(b)
    bb[116:120] = struct.pack(">I", 0xfffffff0)
    write("qcow2", "ext-too-long.qcow2", bytes(bb))


def crc32c(data, crc=0):
    crc ^= 0xffffffff
    for x in data:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff


def record(op, seq, t, step, payload, version=1, magic=b"OVSJRNL1"):
    h = bytearray(magic + struct.pack("<IIQqII", version, op, seq, t, step, len(payload))
                  + b"\0" * 8)
    h[40:44] = struct.pack("<I", crc32c(bytes(h) + payload))
    return bytes(h) + payload


def journal_seeds():
    # First byte: odd = the target recomputes the CRC (see fuzz-journal.c).
    assert crc32c(b"123456789") == 0xe3069283
    p = (b"img=11111111-aaaa-4aaa-8aaa-000000000001\n"
         b"parent=11111111-bbbb-4bbb-8bbb-000000000001\n"
         b"vol=11111111-bbbb-4bbb-8bbb-000000000002\n")
    write("journal", "vol-create.bin", b"\0" + record(1, 1, 1795500815, 2, p))
    write("journal", "vol-create-reseal.bin", b"\1" + record(1, 1, 1795500815, 2, p))
    write("journal", "img-rename-empty.bin", b"\0" + record(5, 7, 0, 0, b""))
    write("journal", "vol-header.bin", b"\0" + record(
        6, 2**64 - 1, -1, 4294967295, "desc= \u05d9 x\nname=v\n".encode()))
    write("journal", "free.bin", b"\0" * 64)
    write("journal", "unknown-op.bin", b"\0" + record(42, 1, 1, 1, p))
    write("journal", "version-2.bin", b"\0" + record(1, 1, 1, 1, p, version=2))
    write("journal", "unsorted-reseal.bin", b"\1" + record(1, 1, 1, 1, b"vol=1\nimg=2\n"))
    write("journal", "bad-crc.bin", b"\0" + record(1, 1, 1, 1, p)[:-1] + b"X")


def xleases_seeds():
    md = bytearray(512)
    md[0:4] = struct.pack(">I", 0x12152016)
    md[5:9] = b"0001"
    sd = b"a5a6e1f0-5b1e-4c4e-9d7c-0f0e1d2c3b4a"
    md[10:10 + len(sd)] = sd
    md[59:69] = b"1795500815"
    md[70] = ord("-")
    md[511] = ord("\n")
    write("xleases", "metadata.bin", bytes(md))
    rec = bytearray(64)
    lease = b"11111111-cccc-4ccc-8ccc-000000000001"
    rec[0:len(lease)] = lease
    rec[49:60] = b"00010485760"
    rec[61:64] = b"--\n"
    write("xleases", "used-last-record.bin", bytes(md) + bytes(rec))
    for name, off, val in (("version-2.bin", 5, b"0002"), ("updating.bin", 70, b"u"),
                           ("other-domain.bin", 10, b"ffff")):
        m = bytearray(md)
        m[off:off + len(val)] = val
        write("xleases", name, bytes(m))
    bad = bytearray(rec)
    bad[50] = ord("x")
    write("xleases", "bad-record.bin", bytes(md) + bytes(bad))
    write("xleases", "short.bin", bytes(md[:20]))


BLANK = "00000000-0000-0000-0000-000000000000"
IMG = "11111111-aaaa-4aaa-8aaa-000000000001"
PARENT = "11111111-bbbb-4bbb-8bbb-000000000001"
PVMAP = ("pv:360014051f5d6c8b2c6a4c8ab2ea8e3c6,uuid:yW2FpO-mnUq-dGTO-d0nI-Q08Y-nLDQ-I5mFYB,"
         "pestart:0,pecount:77,mapoffset:0")


def block_seeds():
    # LV tag lists (reference 6.3), PVn values (section 4), and a v5 slot.
    write("block", "volume.tags", "IU_%s\nPU_%s\nMD_4\n" % (IMG, BLANK))
    write("block", "snapshot.tags", "MD_1947\nIU_%s\nPU_%s\nother_tag" % (IMG, PARENT))
    write("block", "initializing.tags", "OVIRT_VOL_INITIALIZING")
    write("block", "removing.tags", "IU__remove_me_%s\nPU_%s\nMD_5" % (IMG, BLANK))
    write("block", "removing-zero.tags", "IU__remove_me_ZERO_%s\nPU_%s\nMD_5" % (IMG, BLANK))
    write("block", "duplicate.tags", "IU_a\nIU_b\nMD_1")
    write("block", "bad-slot.tags", "IU_a\nPU_b\nMD_1948\nMD_x")
    write("block", "vg-update.tags",
          "RHAT_storage_domain\nMDT_A=1\nMDT_B=2\nMDT_A=1\nMDT_B=3\nRHAT_storage_domain")
    write("block", "pv-mapping.txt", PVMAP + "\n" + PVMAP.replace("pv:3600", "pv:a:b,x:y,pv3600"))
    write("block", "pv-mapping-missing.txt", "pv:a,uuid:U,pestart:0,pecount:1\npv:,uuid:U")
    write("block", "slot-v5.meta", V5.encode() + b"\0" * (512 - len(V5)))
    write("block", "slot-zero.meta", b"\0" * 512)


def lvm_report_seeds():
    # The recorded lvm reports of ../data (see its README.md), and variants.
    for f in ("lvm-pvs.json", "lvm-vgs.json", "lvm-lvs.json"):
        with open(os.path.join(DATA, f), "rb") as src:
            write("lvm-report", f[len("lvm-"):], src.read())
    write("lvm-report", "empty-seg.json", '{"report":[{"seg":[]}]}')
    write("lvm-report", "json-std.json",
          '{"report":[{"vg":[{"vg_name":"v","vg_uuid":"u","vg_size":8388608,"vg_free":0,'
          '"vg_extent_size":4194304,"vg_extent_count":2,"vg_free_count":0,'
          '"vg_tags":["a","b"],"vg_mda_size":1044480,"vg_mda_free":1000,"vg_seqno":3,'
          '"pv_count":1,"lv_count":0}]}]}')
    write("lvm-report", "bad-devices.json",
          '{"report":[{"seg":[{"vg_name":"v", "lv_name":"l", "lv_uuid":"U", '
          '"lv_size":"8388608", "lv_tags":"", "vg_extent_size":"4194304", '
          '"segtype":"striped", "seg_start_pe":"0", "seg_size_pe":"2", "stripes":"2", '
          '"stripe_size":"65536", "devices":"/dev/a(0),(1)"}]}]}')
    write("lvm-report", "log-report.json",
          '{"report":[{"lv":[]}],"log":[{"log_seq_num":"1","log_type":"status",'
          '"log_context":"shell","log_object_type":"cmd","log_object_name":"",'
          '"log_object_id":"","log_object_group":"","log_object_group_id":"",'
          '"log_message":"","log_errno":"0","log_ret_code":"1"}]}')


MBOX_DOM = "00010203-0405-4607-8001-020304050607"
MBOX_VOL = "11111111-bbbb-4bbb-8bbb-000000000002"


def xtnd(dom, vol, size_mib):
    import uuid
    return (b"1xtnd" + uuid.UUID(dom).int.to_bytes(16, "little")
            + uuid.UUID(vol).int.to_bytes(16, "little")
            + b"%016x" % size_mib + b"0" * 11)


def host_mailbox(msgs, seal=True):
    mb = bytearray(4096)
    for slot, m in msgs.items():
        mb[slot * 64:slot * 64 + 64] = m
    if seal:
        mb[4092:4096] = struct.pack("<I", sum(mb[:4092]) & 0xffffffff)
    return bytes(mb)


def mbox_record(magic, host, seq, op, tlvs, state=0, result=0, lver=0, version=1):
    payload = b"".join(struct.pack("<HH", t, len(v)) + v for t, v in tlvs)
    rec = bytearray(magic + struct.pack("<IIQII", version, host, seq, op, len(payload))
                    + b"\0" * 4 + struct.pack("<IiIQ", state, result, 0, lver) + payload)
    rec += b"\0" * (4096 - len(rec))
    rec[32:36] = struct.pack("<I", crc32c(bytes(rec)))
    return bytes(rec)


def changes_record(host, lver, entries, version=1):
    import uuid
    seq = entries[-1][0] if entries else 0
    rec = bytearray(b"OVSMBCL1" + struct.pack("<IIQQI", version, host, lver, seq, len(entries))
                    + b"\0" * 12)
    for s, dom, img in entries:
        rec += struct.pack("<Q", s) + uuid.UUID(dom).bytes + img.encode().ljust(64, b"\0")
    rec += b"\0" * (4096 - len(rec))
    rec[36:40] = struct.pack("<I", crc32c(bytes(rec)))
    return bytes(rec)


def mbox_seeds():
    # oVirt host mailboxes (first byte odd: the target reseals the checksum).
    x = xtnd(MBOX_DOM, MBOX_VOL, 5120)
    assert x[5:21].hex() == "07060504030201800746050403020100"
    write("mbox-xtnd", "request.bin", b"\0" + host_mailbox({0: x, 7: b"\1" * 64}))
    write("mbox-xtnd", "reply-failed.bin", b"\0" + host_mailbox({62: xtnd(MBOX_DOM, MBOX_VOL, 0)}))
    write("mbox-xtnd", "max-size.bin", b"\1" + host_mailbox({1: xtnd(MBOX_DOM, MBOX_VOL, 2**32 - 1)}))
    write("mbox-xtnd", "too-big-reseal.bin",
          b"\1" + host_mailbox({1: x[:37] + b"0000000100000000" + x[53:]}))
    write("mbox-xtnd", "bad-hex-reseal.bin",
          b"\1" + host_mailbox({2: x[:40] + b"A" + x[41:], 3: x[:60] + b"x" + x[61:]}))
    write("mbox-xtnd", "bad-checksum.bin", b"\0" + host_mailbox({0: x})[:-1] + b"\x7f")
    write("mbox-xtnd", "empty.bin", b"\0" + bytes(4096))
    write("mbox-event", "event.bin", b"\0evt" + bytes(range(16)) + bytes(4076))
    write("mbox-event", "short.bin", b"\0evt" + bytes(range(16)))
    write("mbox-event", "trailing.bin", b"\0evt" + bytes(range(16)) + b"x")
    write("mbox-event", "bad-magic.bin", b"\0EVT" + bytes(range(16)))

    dom = MBOX_DOM.encode()
    create = [(1, dom), (2, b"img"), (3, b"vol-1"), (7, "d \u05d9".encode()),
              (13, struct.pack("<Q", 1 << 30))]
    rq = b"OVSMBRQ1"
    write("mbox-request", "vol-create.bin", b"\0" + mbox_record(rq, 7, 1, 5, create))
    write("mbox-request", "ping.bin", b"\0" + mbox_record(rq, 2000, 2**64 - 1, 1, []))
    write("mbox-request", "qcow2-header.bin", b"\0" + mbox_record(
        rq, 1, 5, 18, [(1, dom), (2, b"i"), (3, b"v"), (12, b"QFI\xfb" + bytes(3068))]))
    write("mbox-request", "setxattr.bin", b"\0" + mbox_record(
        rq, 1, 5, 20, [(1, dom), (2, b"i"), (3, b"v"), (10, b"user.ovstore.legality"),
                       (11, b"illegal")]))
    write("mbox-request", "utimens.bin", b"\0" + mbox_record(
        rq, 1, 5, 16, [(1, dom), (2, b"i"), (20, struct.pack("<q", -1)),
                       (21, struct.pack("<Q", (1 << 30) - 2))]))
    write("mbox-request", "unsorted-reseal.bin", b"\1" + mbox_record(rq, 7, 1, 5, create[::-1]))
    write("mbox-request", "truncated-tlv-reseal.bin",
          b"\1" + mbox_record(rq, 7, 1, 5, create)[:56 + 60])
    write("mbox-request", "missing-field.bin", b"\0" + mbox_record(rq, 7, 1, 9, create[:3]))
    write("mbox-request", "unknown-op.bin", b"\0" + mbox_record(rq, 7, 1, 77, []))
    write("mbox-request", "version-2.bin", b"\0" + mbox_record(rq, 7, 1, 1, [], version=2))
    write("mbox-request", "bad-crc.bin", b"\0" + mbox_record(rq, 7, 1, 5, create)[:-1] + b"X")
    rp = b"OVSMBRP1"
    write("mbox-reply", "done.bin", b"\0" + mbox_record(
        rp, 7, 1, 9, [(13, struct.pack("<Q", 4096))], state=2, result=-28, lver=3))
    write("mbox-reply", "accepted.bin", b"\0" + mbox_record(rp, 7, 1, 9, [], state=1, lver=3))
    write("mbox-reply", "withdrawn.bin", b"\0" + mbox_record(rp, 7, 1, 9, [], state=3, lver=3))
    write("mbox-reply", "accepted-result.bin",
          b"\0" + mbox_record(rp, 7, 1, 9, [], state=1, result=-1))
    write("mbox-reply", "positive-result.bin",
          b"\0" + mbox_record(rp, 7, 1, 9, [], state=2, result=1))
    write("mbox-reply", "request.bin", b"\0" + mbox_record(rq, 7, 1, 5, create))
    img = "11111111-aaaa-4aaa-8aaa-000000000001"
    write("mbox-changes", "empty-log.bin", b"\0" + changes_record(3, 17, []))
    write("mbox-changes", "two.bin", b"\0" + changes_record(3, 17, [(1, MBOX_DOM, img),
                                                                 (2, MBOX_DOM, "")]))
    write("mbox-changes", "full.bin", b"\0" + changes_record(
        1, 1, [(100 + i, MBOX_DOM, "img-%d" % i) for i in range(46)]))
    write("mbox-changes", "gap-reseal.bin", b"\1" + changes_record(
        3, 17, [(1, MBOX_DOM, img), (3, MBOX_DOM, img)]))
    write("mbox-changes", "bad-name.bin", b"\0" + changes_record(3, 17, [(1, MBOX_DOM, "a/b")]))


def sanlock_leader_seeds():
    # the SDM leader sanlock wrote (tests/unit/data/README.md)
    with open(os.path.join(DATA, "sanlock-sdm-released.leader"), "rb") as f:
        leader = f.read()
    write("sanlock-leader", "released.bin", leader)
    write("sanlock-leader", "short.bin", leader[:100])


if __name__ == "__main__":
    kv_seeds()
    kv_tags_seeds()
    domain_seeds()
    volume_seeds()
    qcow2_seeds()
    journal_seeds()
    xleases_seeds()
    block_seeds()
    lvm_report_seeds()
    mbox_seeds()
    sanlock_leader_seeds()
