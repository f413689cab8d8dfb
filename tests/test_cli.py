"""The commands: --help, domain create (and its failures, fault points
included), mount (foreground, daemonized, refusals), status."""

import errno
import json
import os
import signal
import subprocess
import uuid

import pytest

import ondisk
from util import ovs
from util.ovs import Domain, assert_one_line_error, ovstore, xget

LOCK = ".ovstore-create.lock"   # the create lock file may stay in PATH


def listing(d):
    return sorted(n for n in os.listdir(d) if n != LOCK)


def metadata_bytes(domain):
    with open(os.path.join(domain.path, "dom_md", "metadata"), "rb") as f:
        return f.read()


def pool_domains(domain):
    kv, _, _ = ondisk.read_domain_metadata(domain.path)
    return dict(item.split(":", 1) for item in kv["POOL_DOMAINS"].split(",") if item)


# ------------------------------------------------------------------- help

@pytest.mark.parametrize("args", [
    ["--help"],
    ["domain", "create", "--help"],
    ["mount", "--help"],
    ["status", "--help"],
], ids=lambda a: " ".join(a))
def test_help(product, args):
    r = ovstore(*args)
    assert r.returncode == 0, r.stderr
    assert "usage" in r.stdout.lower(), r.stdout
    assert not ovs.suspicious_lines(r.stderr)


def test_list_fault_points(product):
    r = ovstore("--list-fault-points")
    assert r.returncode == 0, r.stderr
    names = r.stdout.splitlines()
    assert names, "no fault points listed"
    assert len(names) == len(set(names))
    for n in names:
        assert ovs.re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", n), n
    src = ovs.fault_points_from_source()
    if src:
        assert names == src


def test_unknown_command(product):
    assert_one_line_error(ovstore("frobnicate"), "unknown command")


# ---------------------------------------------------------- domain create

def test_create_prints_uuid(storage, pool):
    r = ovstore("domain", "create", "--pool", pool, "--dir", storage)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and ovs.UUID_RE.match(lines[0]), r.stdout
    sd = lines[0]
    assert listing(storage) == [sd]
    kv, _, _ = ondisk.read_domain_metadata(os.path.join(storage, sd))
    assert kv["SDUUID"] == sd
    assert kv["POOL_UUID"] == pool
    assert kv["ROLE"] == "Master"
    assert kv["CLASS"] == "Data"
    ondisk.assert_consistent([storage])


def test_create_with_uuid(storage, pool):
    sd = str(uuid.uuid4())
    r = ovstore("domain", "create", "--pool", pool, "--dir", storage, "--uuid", sd)
    assert r.returncode == 0, r.stderr
    assert r.stdout == sd + "\n"
    assert listing(storage) == [sd]
    ondisk.assert_consistent([storage])


def test_create_description(storage, pool, make_tree):
    d = Domain.create(storage, pool, "--description", "my first domain")
    kv, _, _ = ondisk.read_domain_metadata(d.path)
    assert kv["DESCRIPTION"] == "my first domain"
    t = make_tree([d])
    assert xget(t.dom(), "description") == "my first domain"


def _bad_create_cases():
    # name -> function(storage, pool, workdir) returning the arguments
    return {
        "bad-pool-uuid": lambda s, p, w: ["--pool", "not-a-uuid", "--dir", s],
        "short-pool-uuid": lambda s, p, w: ["--pool", p[:-1], "--dir", s],
        "dir-missing": lambda s, p, w: ["--pool", p, "--dir", os.path.join(s, "nope")],
        "dir-is-file": lambda s, p, w: ["--pool", p, "--dir", os.path.join(w, "afile")],
        "bad-domain-uuid": lambda s, p, w: ["--pool", p, "--dir", s, "--uuid", "xyz"],
        "unknown-flag": lambda s, p, w: ["--pool", p, "--dir", s, "--frobnicate"],
        "iso-first-domain": lambda s, p, w: ["--pool", p, "--dir", s, "--class", "iso"],
        "bad-class": lambda s, p, w: ["--pool", p, "--dir", s, "--class", "bogus"],
        "io-timeout-zero": lambda s, p, w: ["--pool", p, "--dir", s, "--io-timeout", "0"],
        "io-timeout-text": lambda s, p, w: ["--pool", p, "--dir", s, "--io-timeout", "ten"],
        "no-pool": lambda s, p, w: ["--dir", s],
        "no-dir": lambda s, p, w: ["--pool", p],
    }


@pytest.mark.parametrize("case", list(_bad_create_cases()))
def test_create_bad_input(workdir, storage, pool, case):
    (workdir / "afile").write_text("x")
    args = _bad_create_cases()[case](str(storage), pool, str(workdir))
    before = listing(storage)
    r = ovstore("domain", "create", *args)
    assert_one_line_error(r, case)
    assert r.stdout == ""
    assert listing(storage) == before, "a failed create left something behind"
    assert (workdir / "afile").read_text() == "x"


def test_create_uuid_already_present(storage, pool):
    sd = str(uuid.uuid4())
    assert ovs.create_domain(storage, pool, "--uuid", sd) == sd
    md = metadata_bytes(Domain(sd, pool, storage))
    before = listing(storage)
    # same pool, and another pool: the UUID is taken either way
    for p in (pool, str(uuid.uuid4())):
        r = ovstore("domain", "create", "--pool", p, "--dir", storage, "--uuid", sd)
        assert_one_line_error(r, "uuid already present")
        assert listing(storage) == before
    assert metadata_bytes(Domain(sd, pool, storage)) == md
    ondisk.assert_consistent([storage])


def test_join_pool_via_dir(storage, pool):
    master = Domain.create(storage, pool)
    regular = Domain.create(storage, pool, "--description", "second")
    kv, _, _ = ondisk.read_domain_metadata(regular.path)
    assert kv["ROLE"] == "Regular"
    assert kv["POOL_UUID"] == pool
    assert not os.path.exists(os.path.join(regular.path, "master"))
    doms = pool_domains(master)
    assert set(doms) == {master.uuid, regular.uuid}
    assert doms[regular.uuid] == "Active"
    mkv, _, _ = ondisk.read_domain_metadata(master.path)
    assert mkv["ROLE"] == "Master"
    ondisk.assert_consistent([storage])


def test_join_pool_via_storage(workdir, storage, pool, make_tree):
    master = Domain.create(storage, pool)
    storage2 = workdir / "storage2"
    storage2.mkdir()
    r = ovstore("domain", "create", "--pool", pool, "--dir", storage2, "--storage", storage)
    assert r.returncode == 0, r.stderr
    regular = Domain(r.stdout.strip(), pool, storage2)
    assert listing(storage2) == [regular.uuid]
    kv, _, _ = ondisk.read_domain_metadata(regular.path)
    assert kv["ROLE"] == "Regular"
    assert kv["POOL_UUID"] == pool
    assert set(pool_domains(master)) == {master.uuid, regular.uuid}
    ondisk.assert_consistent([storage, storage2])
    t = make_tree([master, regular], storages=[storage, storage2])
    assert os.listdir(t.root) == [pool]
    assert sorted(os.listdir(t.pool_dir)) == sorted([master.uuid, regular.uuid])
    assert xget(t.dom(master), "role") == "master"
    assert xget(t.dom(regular), "role") == "regular"


def test_other_pool_in_same_dir_is_new_master(storage, make_tree):
    p1, p2 = sorted(str(uuid.uuid4()) for _ in range(2))
    d1 = Domain.create(storage, p1)
    d2 = Domain.create(storage, p2)
    for d in (d1, d2):
        kv, _, _ = ondisk.read_domain_metadata(d.path)
        assert kv["ROLE"] == "Master"
        assert pool_domains(d) == {d.uuid: "Active"}
    t = make_tree([d1, d2])
    assert sorted(os.listdir(t.root)) == [p1, p2]
    assert os.listdir(os.path.join(t.root, p1)) == [d1.uuid]
    assert os.listdir(os.path.join(t.root, p2)) == [d2.uuid]


def test_create_iso_domain(storage, pool, make_tree):
    master = Domain.create(storage, pool)
    iso = Domain.create(storage, pool, klass="iso")
    kv, _, _ = ondisk.read_domain_metadata(iso.path)
    assert kv["CLASS"] == "Iso"
    assert kv["ROLE"] == "Regular"
    assert os.path.isdir(iso.images(ovs.ISO_IMAGE_UUID))
    assert iso.uuid in pool_domains(master)
    t = make_tree([master, iso])
    assert xget(t.dom(iso), "class") == "iso"
    assert xget(t.dom(master), "class") == "data"


def test_create_removes_leftover_creating(storage, pool):
    leftover = storage / f".{uuid.uuid4()}.creating"
    (leftover / "dom_md").mkdir(parents=True)
    (leftover / "dom_md" / "metadata").write_text("half\n")
    Domain.create(storage, pool)
    assert not leftover.exists()
    ondisk.assert_consistent([storage])


# ------------------------------------------------ domain create fault points

CREATE_POINTS = [p for p in ovs.fault_points() if p.startswith("domain_create.")]


@pytest.mark.parametrize("point", CREATE_POINTS or ["none"])
def test_create_fault_crash(storage, pool, make_tree, point):
    """kill -9 at each step of a create joining a pool: nothing half made."""
    if point == "none":
        pytest.skip("no domain_create fault points")
    master = Domain.create(storage, pool)
    before = listing(storage)
    r = ovstore("domain", "create", "--pool", pool, "--dir", storage,
                env={"OVSTORE_TEST_FAULT": f"{point}:crash"})
    assert r.returncode == -signal.SIGKILL, (
        f"create did not die at {point}: exit {r.returncode}, {r.stderr}")
    new = [n for n in listing(storage) if n not in before]
    # at most the published domain (crash after the rename), or a .creating dir
    for n in new:
        assert n.endswith(".creating") or ovs.UUID_RE.match(n), new
    published = [n for n in new if ovs.UUID_RE.match(n)]
    assert len(published) <= 1
    # the next create cleans up and works
    third = Domain.create(storage, pool)
    assert not [n for n in listing(storage) if n.endswith(".creating")]
    doms = [master, third] + [Domain(n, pool, storage) for n in published]
    t = make_tree([master, third])
    shown = set(os.listdir(t.pool_dir))
    on_disk = {d.uuid for d in doms if os.path.isdir(d.path)}
    assert shown == on_disk
    # after the SPM started, a published domain is either finished (in
    # POOL_DOMAINS: checked by the on-disk check at the end) or gone
    t.mount.stop()
    ondisk.assert_consistent([storage])


@pytest.mark.parametrize("point", CREATE_POINTS or ["none"])
def test_create_fault_eio(storage, pool, point):
    """EIO at each step: one line on stderr, nothing left, the pool unchanged."""
    if point == "none":
        pytest.skip("no domain_create fault points")
    master = Domain.create(storage, pool)
    md = metadata_bytes(master)
    before = listing(storage)
    r = ovstore("domain", "create", "--pool", pool, "--dir", storage,
                env={"OVSTORE_TEST_FAULT": f"{point}:EIO"})
    assert_one_line_error(r, point)
    assert r.stdout == ""
    assert listing(storage) == before
    assert metadata_bytes(master) == md
    ondisk.assert_consistent([storage])


# ------------------------------------------------------------------ mount

def run_mount(args, workdir, timeout=ovs.DEADLINE, env=None):
    """Runs `ovstore mount ...` expected to fail; a mount it makes is cleared."""
    mp = os.path.join(workdir, "mp-fail")
    os.makedirs(mp, exist_ok=True)
    try:
        r = ovstore("mount", *args(mp), timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        ovs.clean_dead_mount(mp)
        pytest.fail("ovstore mount did not exit")
    mounted = ovs.is_mounted(mp)
    if mounted:
        subprocess.run(["fusermount3", "-u", mp])
        ovs.wait_pids_gone(ovs.pids_with_arg(mp))
    assert not mounted, "the failing mount left a mount behind"
    return r


def test_mount_daemonizes(domain, workdir):
    mp = os.path.join(workdir, "mp")
    os.mkdir(mp)
    r = ovstore("mount", "--lease", "local", "--storage", domain.storage, mp)
    try:
        assert r.returncode == 0, r.stderr
        # up when the command returns: no polling
        assert ovs.is_mounted(mp)
        assert os.listdir(mp) == [domain.pool]
        pids = ovs.pids_with_arg(mp)
        assert pids, "no daemon process found"
    finally:
        u = subprocess.run(["fusermount3", "-u", mp], capture_output=True, text=True)
    assert u.returncode == 0, u.stderr
    assert ovs.wait_pids_gone(pids), "daemon did not exit after unmount"


def test_umount_is_clean_shutdown(mnt):
    r = subprocess.run(["umount", mnt.root], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert mnt.mount.proc.wait(ovs.DEADLINE) == 0
    mnt.mount.proc = None
    assert not ovs.is_mounted(mnt.root)


def test_second_mount_refused(mnt, workdir):
    r = run_mount(lambda mp: ["-f", "--lease", "local", "--storage", mnt.domain.storage, mp],
                  workdir)
    assert_one_line_error(r, "second mount")
    # the first one is unharmed
    assert os.listdir(mnt.root) == [mnt.pool]


@pytest.mark.parametrize("lease_args", [[], ["--lease", "sanlock"]], ids=["default", "sanlock"])
def test_sanlock_without_daemon(domain, workdir, lease_args):
    run_dir = workdir / "sanlock-run"
    run_dir.mkdir()
    r = run_mount(lambda mp: ["-f", *lease_args, "--storage", domain.storage, mp], workdir,
                  env={"SANLOCK_RUN_DIR": str(run_dir)})
    assert_one_line_error(r, "sanlock without a daemon")


@pytest.mark.parametrize("case", [
    "passthrough-bogus", "uring-bogus", "unknown-o-option", "host-id-zero", "host-id-too-big",
    "lease-bogus",
    "storage-missing", "storage-is-file", "no-mountpoint", "mountpoint-missing",
])
def test_mount_bad_input(domain, workdir, case):
    (workdir / "afile").write_text("x")
    s = domain.storage
    cases = {
        "passthrough-bogus": lambda mp: ["-f", "--lease", "local", "--storage", s,
                                         "-o", "passthrough=bogus", mp],
        "uring-bogus": lambda mp: ["-f", "--lease", "local", "--storage", s,
                                   "-o", "uring=maybe", mp],
        "unknown-o-option": lambda mp: ["-f", "--lease", "local", "--storage", s,
                                        "-o", "no_such_option_xyz", mp],
        "host-id-zero": lambda mp: ["-f", "--lease", "local", "--host-id", "0", "--storage", s,
                                    mp],
        "host-id-too-big": lambda mp: ["-f", "--lease", "local", "--host-id", "2001",
                                       "--storage", s, mp],
        "lease-bogus": lambda mp: ["-f", "--lease", "bogus", "--storage", s, mp],
        "storage-missing": lambda mp: ["-f", "--lease", "local", "--storage",
                                       os.path.join(s, "nope"), mp],
        "storage-is-file": lambda mp: ["-f", "--lease", "local", "--storage",
                                       str(workdir / "afile"), mp],
        "no-mountpoint": lambda mp: ["-f", "--lease", "local", "--storage", s],
        "mountpoint-missing": lambda mp: ["-f", "--lease", "local", "--storage", s,
                                          os.path.join(mp, "nope")],
    }
    r = run_mount(cases[case], workdir)
    assert_one_line_error(r, case)


def test_host_id(domain, make_tree):
    t = make_tree([domain], host_id=7)
    st = t.mount.status()
    assert st["host_id"] == 7
    assert xget(t.pool_dir, "host_id") == "7"
    assert xget(t.pool_dir, "spm") == "7"
    assert st["pools"][0]["spm"] == 7
    assert st["pools"][0]["is_spm"] is True


# ----------------------------------------------------------------- status

def test_status_json(mnt):
    for name in ("a", "b"):
        mnt.mkimg(name)
    mnt.raw("a", "v1")
    mnt.raw("a", "v2")
    mnt.raw("b", "v3")
    st = mnt.mount.status()
    assert st["host_id"] == 1
    assert isinstance(st["passthrough"], bool)
    if ovs.PASSTHROUGH == "off":
        assert st["passthrough"] is False
    assert isinstance(st["requests"]["read"], int)
    assert isinstance(st["requests"]["write"], int)
    assert st["problems"] == []
    assert len(st["pools"]) == 1
    p = st["pools"][0]
    assert p["uuid"] == mnt.pool
    assert p["spm"] == 1
    assert p["is_spm"] is True
    assert len(p["domains"]) == 1
    d = p["domains"][0]
    assert d["uuid"] == mnt.sd
    assert d["type"] == "file"
    assert d["class"] == "data"
    assert d["role"] == "master"
    assert isinstance(d["state"], str) and d["state"]
    sv = os.statvfs(mnt.domain.path)
    assert d["size"] == sv.f_blocks * sv.f_frsize
    # free space moves with whatever else runs on this disk: same order only
    assert abs(d["free"] - sv.f_bavail * sv.f_frsize) < 512 * ovs.MiB
    assert d["images"] == 2
    assert d["volumes"] == 3
    assert d["corrupt"] == []


def test_status_text(mnt):
    r = ovstore("status", mnt.root)
    assert r.returncode == 0, r.stderr
    assert mnt.pool in r.stdout
    assert mnt.sd in r.stdout
    assert not ovs.suspicious_lines(r.stderr)


def test_status_is_root_xattr(mnt):
    st = json.loads(os.getxattr(mnt.root, "user.ovstore.status"))
    cli = mnt.mount.status()
    assert st["host_id"] == cli["host_id"]
    assert [p["uuid"] for p in st["pools"]] == [p["uuid"] for p in cli["pools"]]


def test_status_log(mnt):
    r = ovstore("status", mnt.root, "--log")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "empty debug ring"


def test_status_not_a_mount(workdir, product):
    d = workdir / "plain"
    d.mkdir()
    assert_one_line_error(ovstore("status", d, "--json"), "status of a plain dir")
    assert_one_line_error(ovstore("status", workdir / "missing"), "status of a missing dir")


def test_status_counts_daemon_requests(domain, make_tree):
    t = make_tree([domain], opts=["passthrough=off"])
    assert t.mount.status()["passthrough"] is False
    t.mkimg("img")
    v = t.raw("img", "v", size=ovs.MiB)
    before = t.mount.status()["requests"]
    ovs.write_at(v, 0, b"x" * 65536)
    with open(v, "rb", buffering=0) as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    fd = os.open(v, os.O_RDONLY | os.O_DIRECT)
    try:
        import mmap
        buf = mmap.mmap(-1, 65536)
        assert os.preadv(fd, [buf], 0) == 65536
        assert bytes(buf) == b"x" * 65536
    finally:
        os.close(fd)
    after = t.mount.status()["requests"]
    assert after["write"] > before["write"]
    assert after["read"] > before["read"]


def kernel_has_passthrough():
    """FUSE passthrough came with Linux 6.9 and needs CAP_SYS_ADMIN (root here)."""
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    return (major, minor) >= (6, 9) and os.geteuid() == 0


def test_passthrough_tier(domain, make_tree):
    t = make_tree([domain], opts=["passthrough=auto"])
    st = t.mount.status()
    if not kernel_has_passthrough():
        assert st["passthrough"] is False
        pytest.skip("kernel without FUSE passthrough: auto falls back to the daemon")
    assert st["passthrough"] is True
    t.mkimg("img")
    v = t.raw("img", "v", size=ovs.MiB)
    # An empty raw volume may turn qcow2: the daemon watches its writes.
    empty = t.raw("img", "e")
    assert xget(empty, "io") == "daemon"
    assert xget(v, "io") == "passthrough"
    before = t.mount.status()["requests"]
    data = os.urandom(4 * ovs.MiB)
    ovs.write_at(v, 0, data)
    assert ovs.read_at(v, 0, len(data)) == data
    after = t.mount.status()["requests"]
    assert (after["read"], after["write"]) == (before["read"], before["write"]), \
        "passthrough I/O reached the daemon"
    assert ovs.read_at(t.backing("img", "v"), 0, len(data)) == data
    # Writes the daemon did not see are learnt at close: the raw size.
    assert xget(v, "capacity") == str(len(data))


def test_passthrough_learns_qcow2_header(domain, make_tree):
    """qemu-img resize through a passed-through qcow2 volume updates the record."""
    if not kernel_has_passthrough():
        pytest.skip("kernel without FUSE passthrough")
    t = make_tree([domain], opts=["passthrough=auto"])
    t.mkimg("img")
    q = t.vol("img", "q")
    r = subprocess.run(["qemu-img", "create", "-f", "qcow2", q, "64M"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert xget(q, "format") == "qcow2"
    assert xget(q, "io") == "passthrough"
    r = subprocess.run(["qemu-img", "resize", q, "128M"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert xget(q, "capacity") == str(128 * ovs.MiB)
