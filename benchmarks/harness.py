"""What every benchmark case shares: where things are, running commands and psql, and
measuring a command (wall, client CPU and peak RSS of its process tree, server CPU and the
busiest backend's private memory). `run` and `cases.py` import it."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/ferry-target"))
DATA = Path(os.environ.get("FERRY_BENCH_DATA", "/var/tmp/ferry-bench-data"))
VENV = Path(os.environ.get("FERRY_BENCH_VENV", Path.home() / ".cache/ferry-bench-venv"))
PG_PORT = int(os.environ.get("FERRY_BENCH_PG_PORT", "54359"))
PG_DIR = Path(f"/var/tmp/ferry-bench-pg-{PG_PORT}")
PG_URL = f"postgres://postgres@127.0.0.1:{PG_PORT}/postgres?sslmode=disable"
PEERS = ["duckdb==2.0.1", "pyarrow==26.0.1", "polars==2.1.0", "psycopg[binary]==3.3.9"]
CLOCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

def say(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def psql(sql, db_url=PG_URL, check=True):
    return run(["psql", db_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
               capture_output=True, text=True, check=check)


# ---------------------------------------------------------------- measurement

def proc_stat(pid):
    """(utime+stime, cutime+cstime) in seconds, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / CLOCK, (int(parts[13]) + int(parts[14])) / CLOCK
    except (OSError, IndexError, ValueError):
        return None


def children(pid):
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def rss_anon(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Server:
    """CPU of the postmaster and all its children (reaped backends count through
    the postmaster's cutime), and the busiest backend's private memory."""

    def __init__(self):
        with open(PG_DIR / "postmaster.pid") as f:
            self.pid = int(f.readline())

    def cpu(self):
        own, reaped = proc_stat(self.pid) or (0, 0)
        total = own + reaped
        for c in children(self.pid):
            s = proc_stat(c)
            if s:
                total += s[0]
        return total

    def sample_peak(self, stop, out):
        peak = 0
        while not stop.is_set():
            for c in children(self.pid):
                peak = max(peak, rss_anon(c))
            stop.wait(0.05)
        out.append(peak)


def measure(cmd, server=None, env=None, cwd=None):
    """Runs cmd; returns wall, client CPU and peak RSS (the process tree, via
    wait4), server CPU and peak backend private memory, and the exit status."""
    stop, peaks = threading.Event(), []
    sampler = None
    cpu0 = server.cpu() if server else 0
    if server:
        sampler = threading.Thread(target=server.sample_peak, args=(stop, peaks))
        sampler.start()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    # communicate() has waited; the rusage of the tree is in RUSAGE_CHILDREN deltas.
    wall = time.perf_counter() - t0
    res = {"wall": wall, "exit": p.returncode, "stderr": err.decode(errors="replace")[-2000:]}
    if server:
        time.sleep(0.2)  # let the backend exit and be reaped
        stop.set()
        sampler.join()
        res["server_cpu"] = server.cpu() - cpu0
        res["server_peak_backend_bytes"] = peaks[0] if peaks else 0
    return res


def wrap(cmd):
    """Runs cmd under a small Python wrapper that reports its tree's rusage and
    its wall time, so peak RSS is per command rather than the largest child of
    this process, and the wrapper's own start-up is not timed."""
    code = ("import resource,subprocess,sys,json,time;"
            "t=time.perf_counter();"
            "r=subprocess.run(sys.argv[1:]).returncode;"
            "w=time.perf_counter()-t;"
            "u=resource.getrusage(resource.RUSAGE_CHILDREN);"
            "sys.stderr.write('\\nFERRY_BENCH_RUSAGE '+json.dumps([u.ru_utime+u.ru_stime,u.ru_maxrss*1024,w])+'\\n');"
            "sys.exit(r)")
    return [sys.executable, "-c", code] + cmd


def measure_case(cmd, server=None, env=None, cwd=None):
    res = measure(wrap(cmd), server, env, cwd)
    for line in res["stderr"].splitlines():
        if line.startswith("FERRY_BENCH_RUSAGE "):
            cpu, peak, wall = json.loads(line.split(" ", 1)[1])
            res["client_cpu"], res["client_peak_bytes"] = cpu, peak
            # The command's own wall time, without the wrapper's start-up
            # (~30 ms of Python, which would blur the sub-second cases).
            res["wall"] = wall
    res["stderr"] = "\n".join(l for l in res["stderr"].splitlines() if not l.startswith("FERRY_BENCH_RUSAGE"))
    return res
