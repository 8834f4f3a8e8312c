"""The shipped systemd units (``deploy/systemd``), rendered for a test and run as systemd runs
them: the environment file, ``StateDirectory=``, ``ExecCondition=`` / ``ExecStartPre=`` /
``ExecStart=`` / ``ExecStartPost=`` in order, and (for ``serve``) the sandbox of its
hardening options, rebuilt with ``unshare`` and ``setpriv`` since no systemd runs here.
"""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
BIN = Path(sys.executable).parent / "drip-loader"

INSTALLED_BIN = "/opt/drip-loader/.venv/bin/drip-loader"
ENV_FILE = "/etc/drip-loader/drip-loader.env"
STATE = "/var/lib/"

SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The PATH systemd gives a service."""

_PREFIXES = "@-:+!"
"""ExecStart= prefixes (the units use none; a test asserts so)."""


@dataclass(frozen=True)
class Unit:
    """One unit file: its name and ``(section, key, value)`` lines in order."""

    name: str
    text: str

    @property
    def lines(self) -> list[tuple[str, str, str]]:
        found: list[tuple[str, str, str]] = []
        section = ""
        for raw in self.text.splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            assert not line.endswith("\\"), f"{self.name}: continuation lines are not read here"
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            found.append((section, key.strip(), value.strip()))
        return found

    def values(self, section: str, key: str) -> list[str]:
        return [v for s, k, v in self.lines if (s, k) == (section, key)]

    def value(self, section: str, key: str) -> str:
        (found,) = self.values(section, key)
        return found


def shipped() -> list[Unit]:
    """Every ``.service`` and ``.timer`` of ``deploy/systemd``."""
    return [
        Unit(p.name, p.read_text())
        for p in sorted(UNITS.iterdir())
        if p.suffix in (".service", ".timer")
    ]


def shipped_unit(name: str) -> Unit:
    return Unit(name, (UNITS / name).read_text())


def render(unit: Unit, *, root: Path, env_file: Path, port: int | None = None) -> Unit:
    """``unit`` with this test's paths: the venv's drip-loader, ``env_file``, state under
    ``root``, and ``serve --port port`` when given."""
    text = unit.text.replace(INSTALLED_BIN, str(BIN)).replace(ENV_FILE, str(env_file))
    text = text.replace(STATE, f"{root}{STATE}")
    if port is not None:
        text = text.replace("--port 8000", f"--port {port}")
    return Unit(unit.name, text)


def argv(value: str) -> list[str]:
    """An ``Exec*=`` value split as systemd splits it (``$$`` is a literal ``$``)."""
    assert value[0] not in _PREFIXES, value
    assert "\\" not in value, "backslash escapes are not read here"
    return [word.replace("$$", "$") for word in shlex.split(value)]


def read_env_file(path: Path) -> dict[str, str]:
    """``EnvironmentFile=`` as systemd reads it: ``NAME=value`` lines, ``#``/``;`` comments."""
    env: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        name, _, value = line.partition("=")
        env[name.strip()] = value.strip()
    return env


def service_environment(unit: Unit) -> dict[str, str]:
    """The environment systemd starts the service with: its PATH and the environment file."""
    env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8"}
    for name in unit.values("Service", "EnvironmentFile"):
        env.update(read_env_file(Path(name)))
    return env


@dataclass(frozen=True)
class Outcome:
    """How a oneshot service ended: ``skipped`` (ExecCondition), ``failed`` or ``succeeded``."""

    result: str
    output: str


def run_oneshot(unit: Unit, *, root: Path, timeout: float = 120) -> Outcome:
    """Start ``unit`` (rendered, ``Type=oneshot``) the way systemd does and wait for it."""
    assert unit.value("Service", "Type") == "oneshot"
    for names in unit.values("Service", "StateDirectory"):
        for name in names.split():
            (root / STATE.strip("/") / name).mkdir(parents=True, exist_ok=True)
    env = service_environment(unit)
    output: list[str] = []

    def run(value: str) -> int:
        done = subprocess.run(
            argv(value), env=env, capture_output=True, text=True, timeout=timeout, cwd="/"
        )
        output.append(f"$ {value}\n{done.stdout}{done.stderr}")
        return done.returncode

    for value in unit.values("Service", "ExecCondition"):
        code = run(value)
        if 1 <= code <= 254:
            return Outcome("skipped", "".join(output))
        if code != 0:
            return Outcome("failed", "".join(output))
    for key in ("ExecStartPre", "ExecStart", "ExecStartPost"):
        for value in unit.values("Service", key):
            if run(value) != 0:
                return Outcome("failed", "".join(output))
    return Outcome("succeeded", "".join(output))


SANDBOX = r"""
set -eu
user=$1; shift
keep=""
while [ "$1" != -- ]; do keep="$keep $1"; shift; done
shift
# The program under test stays visible where it lies (as /opt/drip-loader and
# /usr/bin/python3 are in production), even under /tmp or a home that the sandbox hides
# (a checkout in /tmp, a Python in /root): bind it aside first, on a tmpfs of our own.
mount -t tmpfs -o mode=0700 tmpfs /mnt
n=0
for path in $keep; do
    n=$((n + 1)); mkdir "/mnt/.keep$n" && mount --bind "$path" "/mnt/.keep$n"
done
# ProtectSystem=strict: every file system read-only, the API file systems aside.
findmnt -rn -o TARGET | while read -r target; do
    case "$target" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|/mnt|/mnt/*) continue ;; esac
    mount -o remount,bind,ro "$target" 2>/dev/null || true
done
# PrivateTmp=yes: a /tmp and /var/tmp of its own. ProtectHome=yes: /home, /root and
# /run/user empty and read-only.
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
homes=""
for home in /home /root /run/user; do
    [ -d "$home" ] || continue
    mount -t tmpfs -o mode=0755 tmpfs "$home"
    homes="$homes $home"
done
n=0
for path in $keep; do
    n=$((n + 1))
    case "$path/" in
        /tmp/*|/var/tmp/*|/home/*|/root/*|/run/user/*)
            mkdir -p "$path" && mount --bind "/mnt/.keep$n" "$path"
            mount -o remount,bind,ro "$path" 2>/dev/null || true ;;
    esac
done
for home in $homes; do mount -o remount,ro,bind "$home"; done
umount -l /mnt
# PrivateDevices=yes: a /dev with the pseudo devices only.
mount -t tmpfs -o mode=0755,nosuid tmpfs /dev
for device in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
    read -r name major minor <<< "$device"
    mknod -m 0666 "/dev/$name" c "$major" "$minor"
done
mkdir /dev/shm && mount -t tmpfs -o mode=1777 tmpfs /dev/shm
ln -s /proc/self/fd /dev/fd
# User=, NoNewPrivileges=yes, CapabilityBoundingSet= (empty).
exec setpriv --reuid="$user" --regid="$user" --clear-groups --no-new-privs \
    --inh-caps=-all --bounding-set=-all -- "$@"
"""


def sandboxed(command: list[str], *, user: str = "nobody") -> list[str]:
    """``command`` under serve's hardening: a mount namespace of its own with the file system
    read-only, private /tmp and /dev, no home, as ``user`` without privileges."""
    assert os.geteuid() == 0, "the sandbox of the units' hardening is built as root"
    uid = str(pwd.getpwnam(user).pw_uid)
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "bash",
        "-c",
        SANDBOX,
        "sandbox",
        uid,
        str(REPO),
        str(Path(sys.base_prefix).resolve()),
        "--",
        *command,
    ]
