"""Simulated cluster hosts for the tests: one sanlock daemon per host.

Each host is a real `sanlock daemon` of its own (STYLE.md 9), found by its
clients through its own SANLOCK_RUN_DIR under the test's workdir, with its
own host name (-e), no watchdog (-w 0), no mlockall (-l 0), no real-time
scheduling (-h 0), running as root (-U root -G root: the test storage is
owned by 36:36 and root, and the host has no sanlock user in those groups)
and logging to a file in the workdir (-D, stderr).  The daemons get the
test shim LD_PRELOADed (tests/util/sanlock-shim.c): sanlock refuses to start
where raising RLIMIT_MEMLOCK/RLIMIT_RTPRIO is not allowed (root without
CAP_SYS_RESOURCE, as in containers).

Fixtures (import them into the test module):

    sanlock_daemons  factory: sanlock_daemons(n) -> [SanlockDaemon] for hosts
                     1..n, each started and answering; at the end each one's
                     lockspaces are removed and it is killed (with its helper,
                     by process group), also when the test failed
    cluster          a Cluster: cluster.hosts(n) -> [Host] (daemons as above);
                     host.mount(storages, **Mount kwargs) -> a started
                     `ovstore mount -f --lease sanlock --host-id K
                     --io-timeout 1` of that host (an ovs.Mount, unmounted and
                     stderr-checked at the end, before the daemons go)

The domains a cluster test mounts must be created with `--io-timeout 1`:
sanlock takes the io_timeout from the lockspace on disk, and joining takes
about 3 s at 1 s against about 21 s at the default 10 s.
"""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from util import ovs

IO_TIMEOUT = 1
SHIM = os.environ.get("OVSTORE_SANLOCK_SHIM") or str(
    Path(ovs.BIN).resolve().parent.parent / "tests" / "libovstore-sanlock-shim.so")


def missing():
    """Why sanlock daemons cannot run here, or None."""
    if not ovs.shutil.which("sanlock"):
        return "sanlock not installed"
    if not os.path.exists(SHIM):
        return f"sanlock test shim not built: {SHIM} (set OVSTORE_SANLOCK_SHIM)"
    return None


class SanlockDaemon:
    """One host's sanlock daemon."""

    def __init__(self, workdir, host_id):
        self.host_id = host_id
        self.name = f"ovstore-test-host{host_id}"
        self.run_dir = os.path.join(os.fspath(workdir), f"sanlock{host_id}")
        self.log = os.path.join(os.fspath(workdir), f"sanlock{host_id}.stderr")
        self.proc = None

    @property
    def env(self):
        return {"SANLOCK_RUN_DIR": self.run_dir}

    def start(self):
        os.makedirs(self.run_dir, exist_ok=True)
        env = dict(os.environ, SANLOCK_RUN_DIR=self.run_dir, LD_PRELOAD=SHIM)
        with open(self.log, "w") as err:
            # its own session: the helper it forks is killed with it
            self.proc = subprocess.Popen(
                ["sanlock", "daemon", "-D", "-w", "0", "-l", "0", "-h", "0", "-U", "root",
                 "-G", "root", "-L", "-1", "-S", "-1", "-e", self.name],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env,
                start_new_session=True)
        deadline = time.monotonic() + ovs.DEADLINE
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                pytest.fail(f"sanlock daemon of host {self.host_id} exited with {rc}:\n"
                            + Path(self.log).read_text(errors="replace")[-3000:])
            if self.client("status", check=False).returncode == 0:
                return self
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"sanlock daemon of host {self.host_id} did not answer")
            time.sleep(0.05)

    def client(self, *args, check=True, timeout=60):
        """`sanlock client ARGS` against this daemon."""
        r = subprocess.run(["sanlock", "client", *args], capture_output=True, text=True,
                           env=dict(os.environ, SANLOCK_RUN_DIR=self.run_dir),
                           stdin=subprocess.DEVNULL, timeout=timeout)
        if check:
            assert r.returncode == 0, f"sanlock client {args}: {r.stdout}{r.stderr}"
        return r

    def status(self):
        """(lockspaces, resources) of `sanlock client status`: lockspace strings
        "NAME:HOST_ID:PATH:OFFSET" (with a trailing " ADD"/" REM" while that
        runs) and the resources held as (lockspace, name, path, offset, lver,
        pid).  A resource sanlock is still acquiring (" ADD": its paxos round
        may yet lose) is not held and not listed; one being released
        (" REM") or orphaned (" ORPHAN") still is."""
        out = self.client("status").stdout
        spaces, resources = [], []
        for line in out.splitlines():
            if line.startswith("s "):
                spaces.append(line[2:])
            elif line.startswith("r "):
                m = re.fullmatch(r"r ([^:]+):([^:]+):(.+):(\d+):(\d+) p (\d+)( ADD| REM| ORPHAN)?",
                                 line)
                assert m, f"cannot parse {line!r}"
                ls, name, path, off, lver, pid, state = m.groups()
                if state != " ADD":
                    resources.append((ls, name, path, int(off), int(lver), int(pid)))
        return spaces, resources

    def resources(self, name=None):
        return [r for r in self.status()[1] if name is None or r[1] == name]

    def lockspaces(self):
        return [s.split(":")[0] for s in self.status()[0]]

    def wait_lockspaces(self, want, timeout=None):
        """The daemon's lockspace names once they equal want (a set); one
        being added or removed still counts."""
        deadline = time.monotonic() + (timeout or ovs.DEADLINE)
        while True:
            got = set(self.lockspaces())
            if got == set(want) or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    def kill(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def stop(self):
        """Lockspaces removed (what is left after the mounts went), then killed."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                for ls in self.status()[0]:
                    ls = ls.split()[0]
                    self.client("rem_lockspace", "-s", ls, check=False,
                                timeout=10 + 20 * IO_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass  # a lockspace that does not go: killed with the daemon
        finally:
            self.kill()


@pytest.fixture
def sanlock_daemons(workdir):
    why = missing()
    if why:
        pytest.skip(why)
    made = []

    def make(n):
        out = []
        for _ in range(n):
            d = SanlockDaemon(workdir, len(made) + 1)
            made.append(d)
            out.append(d.start())
        return out

    yield make
    errors = []
    for d in reversed(made):
        try:
            d.stop()
        except Exception as e:  # every daemon goes, whatever one of them did
            errors.append(f"sanlock daemon of host {d.host_id}: {e!r}")
            d.kill()
    assert not errors, "\n".join(errors)


class Host:
    """A simulated host: its sanlock daemon and the mounts it runs."""

    def __init__(self, cluster, daemon):
        self.cluster = cluster
        self.daemon = daemon
        self.host_id = daemon.host_id

    @property
    def env(self):
        return self.daemon.env

    def mount(self, storages, name=None, args=(), **kw):
        return self.cluster.mounts(
            storages, name=name or f"host{self.host_id}-mnt{len(self.cluster.mounts_made)}",
            lease="sanlock", host_id=self.host_id,
            args=["--io-timeout", str(IO_TIMEOUT), *args], daemon_env=self.env, **kw)

    def ovstore(self, *args, **kw):
        """The CLI with this host's SANLOCK_RUN_DIR."""
        return ovs.ovstore(*args, env=self.env, **kw)


class Cluster:
    def __init__(self, sanlock_daemons, mounts):
        self._daemons = sanlock_daemons
        self._mounts = mounts
        self.mounts_made = []

    def mounts(self, *args, **kw):
        m = self._mounts(*args, **kw)
        self.mounts_made.append(m)
        return m

    def hosts(self, n):
        return [Host(self, d) for d in self._daemons(n)]


@pytest.fixture
def cluster(sanlock_daemons, mounts):
    """Daemons are set up before the mounts fixture, so torn down after it."""
    return Cluster(sanlock_daemons, mounts)
