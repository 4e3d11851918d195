"""faults.py — the faults the suite injects into a running private stack, each bounded in time.

Every injector returns (t_inject, t_lift, notes): monotonic times of when the fault began and
when it was lifted (equal for a kill: what follows is the system's own recovery), and a few
facts for the report. Only processes of the suite's own stack are touched (by pid)."""
import errno
import json
import os
import resource
import signal
import time
import urllib.request

from stack import alive, children


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children(p):
            out.append(c)
            todo.append(c)
    return out


def state(pid):
    """The process state letter from /proc (R, S, T, Z ...), or "" once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def wait_for(predicate, timeout_s, step_s=0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def kill9(stack, name):
    """kill -9 the daemon; tools/supervise starts it again (1 s backoff, then doubling)."""
    daemon = stack.by_name[name]
    pid = daemon.pid()
    if pid is None:
        raise RuntimeError(f"{name} is not running")
    t = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    died = wait_for(lambda: not alive(pid), 10, 0.01)
    restarted = wait_for(lambda: daemon.pid() not in (None, pid), 40)
    t_pid = time.monotonic()
    healthy = wait_for(daemon.healthy, 60, 0.05)
    t_healthy = time.monotonic()
    return t, t, {"took_effect": died and restarted,
                  "effect": f"pid {pid} died, the supervisor started pid {daemon.pid()} after {t_pid - t:.2f} s"
                  if died and restarted else f"pid {pid} died: {died}, restarted: {restarted}",
                  "killed_pid": pid, "new_pid": daemon.pid() if restarted else None,
                  "restarted_s": round(t_pid - t, 2) if restarted else None,
                  "healthy_s": round(t_healthy - t, 2) if healthy else None}


def pause(stack, name, seconds):
    """SIGSTOP the daemon and every process it forked (PostgreSQL: the postmaster first, so it
    forks no new backend, then its backends and helpers), then SIGCONT them all."""
    daemon = stack.by_name[name]
    pid = daemon.pid()
    if pid is None:
        raise RuntimeError(f"{name} is not running")
    t = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    stopped = [pid]
    for child in descendants(pid):
        try:
            os.kill(child, signal.SIGSTOP)
            stopped.append(child)
        except OSError:
            pass
    # The fault is real only if the kernel has the processes stopped (state T), not merely signalled.
    frozen = wait_for(lambda: all(state(p) in ("T", "") for p in stopped) and state(pid) == "T", 2, 0.01)
    time.sleep(max(0.0, seconds - (time.monotonic() - t)))
    for p in reversed(stopped):
        try:
            os.kill(p, signal.SIGCONT)
        except OSError:
            pass
    t_lift = time.monotonic()
    return t, t_lift, {"took_effect": frozen, "effect": f"{len(stopped)} processes stopped (state T) for "
                       f"{t_lift - t:.1f} s" if frozen else f"pid {pid} was not stopped (state {state(pid)!r})",
                       "paused_processes": len(stopped), "paused_s": round(t_lift - t, 2)}


def gateway_knobs(stack, knobs=None):
    """Sets the simulator's fault knobs (a partial update), or only reads them (knobs None)."""
    if knobs is None:
        request = urllib.request.Request(f"{stack.gateway_url}/v1/_sim/faults")
    else:
        request = urllib.request.Request(f"{stack.gateway_url}/v1/_sim/faults", data=json.dumps(knobs).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        if response.status != 200:
            raise RuntimeError(f"gateway-sim refused {knobs}: {response.status}")
        return json.loads(response.read() or b"{}")


GATEWAY_CLEAR = {"latency_ms": 0, "error_rate": 0, "hang": False, "drop": 0}


# The simulator's counter that a knob moves when it actually hits a request.
GATEWAY_COUNTER = {"latency_ms": "delayed", "error_rate": "errors", "hang": "hangs", "drop": "drops"}


def gateway(stack, knobs, seconds):
    """Turns the simulator's knobs on for `seconds`, then clears them. The fault took effect when
    the simulator's injected counters moved (a knob that no request met proves nothing)."""
    before = gateway_knobs(stack)["injected"]
    t = time.monotonic()
    gateway_knobs(stack, knobs)
    try:
        time.sleep(seconds)
    finally:
        after = gateway_knobs(stack, GATEWAY_CLEAR)["injected"]
    t_lift = time.monotonic()
    moved = {k: after[k] - before.get(k, 0) for k in after}
    hit = all(moved.get(GATEWAY_COUNTER[k], 0) > 0 for k in knobs)
    return t, t_lift, {"took_effect": hit, "effect": f"requests hit by the fault: {moved}",
                       "knobs": knobs, "window_s": round(t_lift - t, 2), "injected": moved}


def metric(url, name):
    """The value of an unlabelled metric, or None."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
    except Exception:
        return None
    return None


def fill_disk(path):
    """Writes path until the filesystem is full (ENOSPC), down to 4 KiB pieces. Returns bytes."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 64 << 10, 4 << 10, 512):
            block = b"\xa5" * chunk
            while True:
                try:
                    n = f.write(block)
                    written += n
                    if n < chunk:
                        break
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
        try:
            os.fsync(f.fileno())
        except OSError:
            pass
    return written


def engine_refused_writes(stack, shard, pid):
    """The shard stopped taking writes: its health gauge says so, or the process is gone."""
    return metric(stack.shard_metrics_url(shard), "tiketi_engine_healthy") == 0.0 or \
        stack.by_name[f"seatcored-{shard}"].pid() != pid


def wal_disk_full(stack, shard, seconds):
    """The WAL's disk refuses writes for `seconds` (at least until the engine noticed), then
    takes them again: a full tmpfs when we could mount one, else a file size limit."""
    if stack.wal_tmpfs:
        return wal_tmpfs_full(stack, shard, seconds)
    return wal_size_limit(stack, shard, seconds)


def wal_size_limit(stack, shard, seconds):
    """Without root there is no filesystem of our own to fill: lower the shard's RLIMIT_FSIZE
    (soft; an unprivileged process may raise it back up to the hard limit) to the size of its
    newest WAL segment, so the next append past it fails with EFBIG (io_uring returns it; the
    pwritev backend also raises SIGXFSZ, whose default action ends the process). A restart
    under the supervisor gets the same limit as soon as it is seen, until the window is over.
    Weaker than a full disk: a new segment file may again grow to that size
    (docs/reliability.md). The daemons' logs go through pipes (stack.py), so the limit does not
    also cut their log files."""
    daemon = stack.by_name[f"seatcored-{shard}"]
    pid = daemon.pid()
    data = stack.shard_data_dir(shard)
    segments = sorted(f for f in os.listdir(data) if f.startswith("wal-"))
    if pid is None or not segments:
        raise RuntimeError(f"seatcored-{shard}: no process or no WAL segment in {data}")
    limit = max(1, os.path.getsize(os.path.join(data, segments[-1])))
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    limited, t_noticed = set(), None
    t = time.monotonic()
    while time.monotonic() - t < max(seconds, 15) and (t_noticed is None or time.monotonic() - t < seconds):
        current = daemon.pid()
        if current is not None and current not in limited:
            try:
                resource.prlimit(current, resource.RLIMIT_FSIZE, (limit, hard))
                limited.add(current)
            except ProcessLookupError:
                pass
        if t_noticed is None and engine_refused_writes(stack, shard, pid):
            t_noticed = time.monotonic()
        time.sleep(0.01)
    for p in limited:
        try:
            resource.prlimit(p, resource.RLIMIT_FSIZE, (soft, hard))
        except ProcessLookupError:
            pass
    t_lift = time.monotonic()
    noticed = t_noticed is not None
    return t, t_lift, {"took_effect": noticed,
                       "effect": f"the shard refused writes {t_noticed - t:.2f} s after its file size limit "
                       f"fell to {limit} bytes" if noticed else "the shard never noticed its file size limit",
                       "method": "RLIMIT_FSIZE", "limit_bytes": limit, "limited_processes": len(limited),
                       "engine_failed_after_s": round(t_noticed - t, 2) if noticed else None,
                       "full_for_s": round(t_lift - t, 2)}


def wal_tmpfs_full(stack, shard, seconds):
    """Fills the filesystem of the shard's data directory (its own tmpfs) while purchases go on,
    keeps it full for `seconds` (at least until the engine noticed), then frees the space."""
    pid = stack.by_name[f"seatcored-{shard}"].pid()
    filler = os.path.join(stack.shard_data_dir(shard), "filler.bin")
    t = time.monotonic()
    size = fill_disk(filler)
    # Writes go on under the load: the next WAL write needs a page the tmpfs does not have.
    noticed = wait_for(lambda: engine_refused_writes(stack, shard, pid), max(seconds, 15), 0.05)
    t_noticed = time.monotonic()
    remaining = seconds - (t_noticed - t)
    if remaining > 0:
        time.sleep(remaining)
    os.unlink(filler)
    t_lift = time.monotonic()
    st = os.statvfs(stack.shard_data_dir(shard))
    return t, t_lift, {"took_effect": noticed,
                       "effect": f"the engine refused writes {t_noticed - t:.2f} s after the disk filled" if noticed
                       else "the engine never noticed the full disk",
                       "method": "tmpfs", "filler_bytes": size,
                       "engine_failed_after_s": round(t_noticed - t, 2) if noticed else None,
                       "full_for_s": round(t_lift - t, 2), "free_after_bytes": st.f_bavail * st.f_frsize}
