"""The vendors' own client libraries for proving the cloud stand-ins, installed with `npm ci`
from the lock files under tests/integration/npm/<name>/ into a cache directory outside the
tree (SECRETSYNCD_NODE_CACHE, default /var/cache/secretsyncd-tests/node/<name>). Reinstalled
only when the lock file changes."""
import filecmp
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("SECRETSYNCD_NODE_CACHE", "/var/cache/secretsyncd-tests/node")


def install(name):
    """(directory with node_modules, None) or (None, why not)."""
    if not shutil.which("node") or not shutil.which("npm"):
        return None, "node or npm is not installed (apt-get install nodejs npm)"
    src = os.path.join(HERE, "npm", name)
    dst = os.path.join(CACHE, name)
    lock = os.path.join(dst, "package-lock.json")
    if os.path.isdir(os.path.join(dst, "node_modules")) and os.path.exists(lock) and \
            filecmp.cmp(lock, os.path.join(src, "package-lock.json"), shallow=False):
        return dst, None
    try:
        os.makedirs(dst, exist_ok=True)
        for f in ("package.json", "package-lock.json"):
            shutil.copyfile(os.path.join(src, f), os.path.join(dst, f))
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=dst,
                           capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "npm ci in %s failed: %s" % (dst, e)
    if r.returncode != 0:
        return None, "npm ci in %s failed: %s" % (dst, r.stderr.strip()[-300:])
    return dst, None


def unreachable(why):
    """Whether npm failed because it cannot reach its registry (the one allowed skip)."""
    return any(s in why for s in ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET",
                                  "network", "getaddrinfo"))
