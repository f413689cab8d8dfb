"""Running ovstore for the tests: the CLI, the daemon, mounts, qemu tools.

Modelled on sshfs test/util.py: poll for the mount with a deadline and fail at
once when the daemon exits; unmount with `fusermount3 -u` and require exit 0;
the daemon's stderr goes to a file that is checked for suspicious lines when
the test ends (conftest.py).
"""

import errno
import json
import mmap
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent.parent
REPO = TESTS_DIR.parent
sys.path.insert(0, str(TESTS_DIR))

import ondisk  # noqa: E402

BIN = os.environ.get("OVSTORE_BIN") or str(REPO / "build" / "cli" / "ovstore")
HELPER = (os.environ.get("OVSTORE_MOUNT_HELPER")
          or str(REPO / "build" / "mount-helper" / "mount.ovstore"))
PASSTHROUGH = os.environ.get("OVSTORE_TEST_PASSTHROUGH", "off")
# "on" or "off": the suite sets the kernel's fuse.enable_uring to match while it
# runs (mounts take requests over io_uring where it is on); unset: as it is.
URING = os.environ.get("OVSTORE_TEST_URING", "")
URING_KNOB = "/sys/module/fuse/parameters/enable_uring"


def set_uring_knob(on):
    """Sets fuse.enable_uring; returns the old value, or None without the knob."""
    try:
        with open(URING_KNOB) as f:
            old = f.read().strip()
        with open(URING_KNOB, "w") as f:
            f.write("Y" if on else "N")
    except OSError:
        return None
    return old == "Y"
WORK_ROOT = os.environ.get("OVSTORE_TEST_WORKDIR", "/var/tmp")
# How long the daemon may take to come up or go away (not a pass/fail timing:
# only a bound so a hung daemon fails the test instead of hanging the suite).
DEADLINE = float(os.environ.get("OVSTORE_TEST_DEADLINE", "60"))

UUID_RE = ondisk.UUID_RE
BLANK_UUID = ondisk.BLANK_UUID
ISO_IMAGE_UUID = ondisk.ISO_IMAGE_UUID
XATTR = "user.ovstore."
MiB = 1024 * 1024
GiB = 1024 * MiB

# A daemon stderr line is suspicious when it says one of these...
SUSPICIOUS = re.compile(r"error|warning|crash|fatal|critical|abort|AddressSanitizer|"
                        r"LeakSanitizer|runtime error|^==\d+==", re.IGNORECASE)
# ...unless it is a debug line (those name errno values returned on purpose).
DEBUG_LINE = re.compile(r"^ovstore(\[\d+\])?: debug: ")
# A fault point announcing itself (notice level) is expected where armed.
FAULT_LINE = re.compile(r"fault point '[^']*' fired")

_processes = []   # every Popen started, for cleanup


# ------------------------------------------------------------- environment

def base_env(extra=None, debug=True):
    env = dict(os.environ)
    env.pop("OVSTORE_TEST_FAULT", None)
    if debug:
        env.setdefault("OVSTORE_DEBUG", "all")
    else:
        env.pop("OVSTORE_DEBUG", None)
    env["G_DEBUG"] = "fatal-warnings"
    env["LC_ALL"] = "C.UTF-8"
    if extra:
        env.update(extra)
    return env


def direct_io_works(directory):
    path = os.path.join(directory, ".odirect-probe")
    buf = mmap.mmap(-1, 4096)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    try:
        os.pwritev(fd, [buf], 0)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        os.unlink(path)


def missing_requirements():
    """Why the suite cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as e:
        return f"/dev/fuse not usable: {e}"
    for tool in ("fusermount3", "qemu-img", "qemu-io"):
        if not shutil.which(tool):
            return f"{tool} not installed"
    if not os.access(BIN, os.X_OK):
        return f"ovstore binary not built: {BIN} (set OVSTORE_BIN)"
    if not direct_io_works(WORK_ROOT):
        return f"{WORK_ROOT} does not support O_DIRECT (set OVSTORE_TEST_WORKDIR)"
    return None


# ----------------------------------------------------------------- mounts

def _unescape(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mount_table():
    """[(mountpoint, fstype, source)] from /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            r = right.split()
            out.append((_unescape(fields[4]), r[0] if r else "", _unescape(r[1]) if len(r) > 1 else ""))
    return out


def is_mounted(path):
    path = os.path.realpath(path)
    return any(mp == path for mp, _, _ in mount_table())


def mount_entry(path):
    path = os.path.realpath(path)
    for mp, fstype, source in mount_table():
        if mp == path:
            return fstype, source
    return None


def clean_dead_mount(path):
    """After the daemon died: `fusermount3 -u -z`, then `umount -l`."""
    if is_mounted(path):
        subprocess.run(["fusermount3", "-u", "-z", path], capture_output=True)
    if is_mounted(path):
        subprocess.run(["umount", "-l", path], capture_output=True)
    assert not is_mounted(path), f"{path} is still mounted"


def unmount_everything_under(directory):
    """Last-resort cleanup: lazy-unmounts every mount below directory."""
    directory = os.path.realpath(directory)
    for mp, fstype, _ in sorted(mount_table(), key=lambda m: -len(m[0])):
        if mp.startswith(directory + "/"):
            if fstype.startswith("fuse"):
                subprocess.run(["fusermount3", "-u", "-z", mp], capture_output=True)
            if is_mounted(mp):
                subprocess.run(["umount", "-l", mp], capture_output=True)


def pids_with_arg(arg):
    """Processes whose command line contains arg (our unique mount points)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if arg.encode() in argv:
            pids.append(int(d))
    return pids


def wait_pids_gone(pids, timeout=DEADLINE):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [p for p in pids if os.path.exists(f"/proc/{p}")]:
            return True
        time.sleep(0.05)
    return False


def kill_leftovers(directory):
    """Kills (by pid) what the tests started that still runs below directory."""
    for p in _processes:
        if p.poll() is None and getattr(p, "ovs_dir", None) == directory:
            p.kill()
            p.wait()
    for pid in pids_with_arg_prefix(directory):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def pids_with_arg_prefix(prefix):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            exe = os.readlink(f"/proc/{d}/exe")
        except OSError:
            continue
        if os.path.basename(exe).startswith("ovstore") and any(
                a.startswith(prefix.encode() + b"/") for a in argv):
            pids.append(int(d))
    return pids


def spawn(cmd, env, stdout, stderr, owner_dir):
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env)
    p.ovs_dir = owner_dir
    _processes.append(p)
    return p


def suspicious_lines(text, allowed=()):
    bad = []
    for line in text.splitlines():
        if DEBUG_LINE.match(line) or FAULT_LINE.search(line):
            continue
        if not SUSPICIOUS.search(line):
            continue
        if any(a.search(line) for a in allowed):
            continue
        bad.append(line)
    return bad


class Mount:
    """One mount point served by `ovstore mount -f`, restartable."""

    def __init__(self, workdir, storages, name="mnt", opts=(), host_id=None, lease="local",
                 args=(), daemon_env=None):
        self.workdir = os.fspath(workdir)
        self.name = name
        self.path = os.path.join(self.workdir, name)
        os.makedirs(self.path, exist_ok=True)
        self.storages = [os.fspath(s) for s in storages]
        self.opts = list(opts)
        self.host_id = host_id
        self.lease = lease
        self.args = list(args)
        # environment of every start (e.g. the SANLOCK_RUN_DIR of a simulated host)
        self.daemon_env = dict(daemon_env or {})
        self.proc = None
        self.logs = []
        self.allowed = []
        self.runs = 0
        self.closed = False

    # -- command line
    def command(self):
        cmd = [BIN, "mount", "-f", "--lease", self.lease]
        if self.host_id is not None:
            cmd += ["--host-id", str(self.host_id)]
        for s in self.storages:
            cmd += ["--storage", s]
        cmd += self.args
        opts = list(self.opts)
        if not any(o.startswith("passthrough=") for o in opts):
            opts.insert(0, f"passthrough={PASSTHROUGH}")
        cmd += ["-o", ",".join(opts), self.path]
        return cmd

    def allow_stderr(self, regex):
        """Allow daemon stderr lines matching regex (re.search) in this test."""
        self.allowed.append(re.compile(regex))

    @property
    def log(self):
        return self.logs[-1] if self.logs else None

    def stderr(self):
        return "".join(Path(p).read_text(errors="replace") for p in self.logs)

    def last_stderr(self):
        return Path(self.log).read_text(errors="replace") if self.log else ""

    # -- life cycle
    def start(self, env=None):
        assert self.proc is None, "daemon already running"
        self.runs += 1
        log = os.path.join(self.workdir, f"{self.name}.daemon{self.runs}.stderr")
        out = os.path.join(self.workdir, f"{self.name}.daemon{self.runs}.stdout")
        self.logs.append(log)
        with open(log, "w") as ferr, open(out, "w") as fout:
            self.proc = spawn(self.command(), base_env({**self.daemon_env, **(env or {})}),
                              fout, ferr, self.workdir)
        deadline = time.monotonic() + DEADLINE
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                pytest.fail(f"ovstore mount exited with {rc} before the mount came up:\n"
                            + self.last_stderr()[-4000:])
            if is_mounted(self.path):
                try:
                    os.lstat(self.path)
                    return self
                except OSError:
                    pass
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                self.proc = None
                clean_dead_mount(self.path)
                pytest.fail(f"mount did not come up in {DEADLINE} s:\n"
                            + self.last_stderr()[-4000:])
            time.sleep(0.02)

    def stop(self):
        """Clean unmount: `fusermount3 -u` exits 0, then the daemon exits 0."""
        if self.proc is None:
            return
        r = subprocess.run(["fusermount3", "-u", self.path], capture_output=True, text=True)
        if r.returncode != 0:
            self._force()
            raise AssertionError(f"fusermount3 -u {self.path} exited {r.returncode}: "
                                 f"{r.stderr.strip()}")
        try:
            rc = self.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self._force()
            raise AssertionError(f"daemon still running {DEADLINE} s after unmount")
        self.proc = None
        assert rc == 0, (f"daemon exited with {rc} after a clean unmount:\n"
                         + self.last_stderr()[-4000:])

    def _force(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None
        clean_dead_mount(self.path)

    def kill9(self):
        """kill -9 the daemon and clear the dead mount."""
        assert self.proc is not None and self.proc.poll() is None, "daemon not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        clean_dead_mount(self.path)

    def wait_exit(self, timeout=10):
        """The daemon's exit status once it exits by itself, None if it runs on."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def reap_dead(self):
        """After the daemon died by itself: forget it and clear the mount."""
        assert self.proc is not None and self.proc.poll() is not None
        self.proc = None
        clean_dead_mount(self.path)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def remount(self, env=None):
        self.stop()
        return self.start(env)

    def kill_and_remount(self, env=None):
        self.kill9()
        return self.start(env)

    def close(self):
        """Teardown: clean unmount if running, then the stderr check (once)."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.proc is not None:
                if self.proc.poll() is None:
                    self.stop()
                else:
                    rc = self.proc.returncode
                    self.proc = None
                    clean_dead_mount(self.path)
                    raise AssertionError(f"daemon died unexpectedly with status {rc}:\n"
                                         + self.last_stderr()[-4000:])
        finally:
            if self.proc is not None:
                self._force()
        self.check_stderr()

    def check_stderr(self):
        bad = []
        for p in self.logs:
            bad += suspicious_lines(Path(p).read_text(errors="replace"), self.allowed)
        assert not bad, "suspicious daemon stderr:\n  " + "\n  ".join(bad)

    # -- queries
    def status(self, *extra):
        r = ovstore("status", self.path, "--json", *extra)
        assert r.returncode == 0, f"ovstore status failed: {r.stderr}"
        return json.loads(r.stdout)


# -------------------------------------------------------------------- CLI

def ovstore(*args, env=None, timeout=120, debug=False):
    """Runs the CLI (no debug output unless asked); returns CompletedProcess."""
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True,
                          env=base_env(env, debug=debug), timeout=timeout,
                          stdin=subprocess.DEVNULL)


def error_lines(stderr):
    """stderr lines that are not a fault point announcing itself."""
    return [l for l in stderr.splitlines() if l.strip() and not FAULT_LINE.search(l)]


def assert_one_line_error(r, what=""):
    assert r.returncode != 0, f"{what}: expected failure, got exit 0; stdout={r.stdout!r}"
    assert r.returncode > 0, f"{what}: died by signal {-r.returncode}: {r.stderr}"
    lines = error_lines(r.stderr)
    assert len(lines) == 1, f"{what}: want one stderr line, got {lines!r}"
    return lines[0]


def create_domain(storage, pool, *args, env=None):
    r = ovstore("domain", "create", "--pool", pool, "--dir", storage, *args, env=env)
    assert r.returncode == 0, f"domain create failed ({r.returncode}): {r.stderr}"
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and UUID_RE.match(lines[0]), f"domain create printed {r.stdout!r}"
    bad = suspicious_lines(r.stderr)
    assert not bad, f"domain create stderr: {bad}"
    return lines[0]


# ------------------------------------------------------------------- qemu

def qemu_img(*args, check=True):
    r = subprocess.run(["qemu-img", *map(str, args)], capture_output=True, text=True,
                       env=base_env(debug=False), stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, f"qemu-img {' '.join(map(str, args))}: {r.stdout}{r.stderr}"
    return r


def qemu_img_info(path, chain=False):
    args = ["info", "-U", "--output", "json"]
    if chain:
        args.append("--backing-chain")
    return json.loads(qemu_img(*args, path).stdout)


def qemu_io(path, *cmds, fmt="raw", cache=None, readonly=False, check=True):
    args = ["qemu-io", "-f", fmt]
    if cache:
        args += ["-t", cache]
    if readonly:
        args.append("-r")
    for c in cmds:
        args += ["-c", c]
    args.append(os.fspath(path))
    r = subprocess.run(args, capture_output=True, text=True, env=base_env(debug=False),
                       stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    if check:
        assert r.returncode == 0 and not re.search(r"fail|error|verification", out, re.I), \
            f"{' '.join(args)}:\n{out}"
    return r


# ------------------------------------------------------------------ files

def xget(path, key):
    return os.getxattr(path, XATTR + key).decode()


def xset(path, key, value):
    os.setxattr(path, XATTR + key, value.encode() if isinstance(value, str) else value)


def create_volume(path):
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o660)
    os.close(fd)
    return path


def write_at(path, offset, data, fsync=True):
    fd = os.open(path, os.O_WRONLY)
    try:
        n = os.pwrite(fd, data, offset)
        assert n == len(data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_at(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def errno_of(fn, *args, **kw):
    """The errno fn raises (OSError), or None when it succeeds."""
    try:
        fn(*args, **kw)
    except OSError as e:
        return e.errno
    return None


def errname(e):
    return errno.errorcode.get(e, str(e)) if e is not None else "success"


def mode(path):
    return os.stat(path).st_mode & 0o7777


def make_workdir():
    d = tempfile.mkdtemp(prefix="ovstore-test-", dir=WORK_ROOT)
    os.chmod(d, 0o755)   # other users reach the mounts below (permission tests)
    return d


def run_as(uid, gid, code):
    """Runs Python code as another user; returns (returncode, stdout)."""
    r = subprocess.run([sys.executable, "-c", code], user=uid, group=gid, extra_groups=[],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.strip() + r.stderr.strip()


# ------------------------------------------------------------------- tree

class Domain:
    """A domain made by `ovstore domain create` (on-disk view)."""

    def __init__(self, uuid, pool, storage, cls="data"):
        self.uuid = uuid
        self.pool = pool
        self.storage = os.fspath(storage)
        self.cls = cls

    @property
    def path(self):
        return os.path.join(self.storage, self.uuid)

    def images(self, *parts):
        return os.path.join(self.path, "images", *parts)

    @classmethod
    def create(cls, storage, pool, *args, klass="data"):
        extra = list(args)
        if klass != "data":
            extra += ["--class", klass]
        return cls(create_domain(storage, pool, *extra), pool, storage, klass)

    def __repr__(self):
        return f"Domain({self.uuid} in {self.storage})"


class Tree:
    """A running mount plus the domains it shows; path helpers for tests."""

    def __init__(self, mount, domains):
        self.mount = mount
        self.domains = list(domains)
        # options for the on-disk check run when the test ends
        self.ondisk = {"allow_illegal": set(), "allow_corrupt": set(), "skip_domains": set()}
        self.check_ondisk = True

    @property
    def root(self):
        return self.mount.path

    @property
    def domain(self):
        return self.domains[0]

    @property
    def pool(self):
        return self.domains[0].pool

    @property
    def sd(self):
        return self.domains[0].uuid

    @property
    def pool_dir(self):
        return os.path.join(self.root, self.pool)

    @property
    def storages(self):
        seen = []
        for s in [d.storage for d in self.domains] + self.mount.storages:
            if s not in seen:
                seen.append(s)
        return seen

    def dom(self, d=None):
        d = d or self.domains[0]
        return os.path.join(self.root, d.pool, d.uuid)

    def img(self, name, d=None):
        return os.path.join(self.dom(d), name)

    def vol(self, img, name, d=None):
        return os.path.join(self.dom(d), img, name)

    def mkimg(self, name, d=None):
        p = self.img(name, d)
        os.mkdir(p)
        return p

    def backing(self, *parts, d=None):
        return (d or self.domains[0]).images(*parts)

    def raw(self, img, name, size=None, d=None, data=None):
        """A new raw volume, optionally truncated and written (fsynced)."""
        p = create_volume(self.vol(img, name, d))
        if size is not None:
            os.truncate(p, size)
        if data is not None:
            write_at(p, 0, data)
        return p

    def qcow2(self, img, name, size="64M", backing=None, backing_fmt=None, d=None, check=True):
        """qemu-img create -f qcow2 [-b BACKING -F FMT] through the mount."""
        p = self.vol(img, name, d)
        args = ["create", "-f", "qcow2"]
        if backing is not None:
            args += ["-b", backing, "-F", backing_fmt or "raw"]
        args += [p, size]
        r = qemu_img(*args, check=check)
        return p if check else r

    def remount(self, env=None):
        self.mount.remount(env)

    def kill_and_remount(self, env=None):
        self.mount.kill_and_remount(env)

    def check(self, **kw):
        opts = dict(self.ondisk)
        opts.update(kw)
        ondisk.assert_consistent(self.storages, **opts)


# ------------------------------------------------------------ fault points

def fault_points():
    """`ovstore --list-fault-points`, or the table in common/fault.c when the
    binary is not built (so collection works everywhere)."""
    if os.access(BIN, os.X_OK):
        try:
            r = subprocess.run([BIN, "--list-fault-points"], capture_output=True, text=True,
                               timeout=30)
            if r.returncode == 0 and r.stdout.strip():
                return [l.strip() for l in r.stdout.splitlines() if l.strip()]
        except (OSError, subprocess.TimeoutExpired):
            pass
    return fault_points_from_source()


def fault_points_from_source():
    src = REPO / "common" / "fault.c"
    try:
        text = src.read_text()
    except OSError:
        return []
    m = re.search(r"points\[\]\s*=\s*\{(.*?)\};", text, re.S)
    if not m:
        return []
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    return re.findall(r'"([^"]+)"', body)


# The contract lets a change show through the kernel's attribute cache
# within 2 s ("Attribute and lookup caches ... within 2 s"); a mode that
# follows a role change is read with that bound.
VISIBILITY = 2.0


def mode_within_cache(path, want):
    """The mode of path once it equals want, or whatever it is after the
    contract's visibility bound."""
    deadline = time.monotonic() + VISIBILITY + 0.5
    while True:
        m = mode(path)
        if m == want or time.monotonic() > deadline:
            return m
        time.sleep(0.05)
