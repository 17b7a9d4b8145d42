#!/usr/bin/env python3
"""Unseen's horizontal statistics workloads run on SecretFlow SPU 0.9.5, for comparison.

Not part of the Rust build or CI. See README.md next to this file for the setup
(a virtualenv with spu==0.9.5 and numpy<2) and how to read the output.

Real multi-process SPU: one OS process per party (multiprocessing, spawn), the parties
connected by SPU's brpc link (spu.libspu.link.create_brpc) on 127.0.0.1 only. There is no
fallback to the single-process simulator: if the brpc run fails, the script fails.

Workloads (3 parties, every party inputs a private array, the result is revealed to party 0
only, and checked against numpy computed in the clear):
  sum     element-wise sum of one 2^20-element int64 vector per party
  hist-a  10^6 rows per party (group id 0..99, value): each party computes its 100 counts and
          100 sums with numpy in the clear, SPU adds the 200-element vectors (Unseen's design)
  hist-b  the rows themselves are secret; SPU builds the one-hot matrix (100 secret equality
          tests per row) and computes counts = column sums, sums = values @ one-hot. Run for
          growing row counts; a size whose one run is predicted (linearly from the previous
          size) to exceed --mpc-run-limit-s is not run, and the table says so.

How a party inputs and how party 0 learns the result (the same for every workload):
  1. owner r: io.make_shares(x, VIS_SECRET) -> one share per party; sends share j to party j
     over the same brpc link (lctx.send), keeps share r.                        [1 round]
  2. every party: set_var, Runtime.run(executable)                     [SPU's own rounds]
  3. parties 1..N-1 send their output share to party 0; party 0 reconstructs.   [1 round]
Wall time is measured on party 0 from a barrier (data in memory, runtime up) to the result
reconstructed on party 0, so it includes 1-3 (and, for hist-a, the local numpy aggregation).
Bytes: payload bytes of the messages of steps 1 and 3 (counted by this script) plus the
"Link details: total send bytes" SPU logs for step 2 when enable_pphlo_profile is on (SPU
0.9.5's Python link.Context has no get_stats(); that log line is the only link counter).
"""

import argparse
import json
import multiprocessing as mp
import os
import pickle
import platform
import queue
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

WORLD = 3
LOOPBACK = "127.0.0.1"
GROUPS = 100
VALUE_MAX = 10**6  # row values are drawn from [0, VALUE_MAX)
SUM_ELEM_MAX = 2**40  # sum workload elements are drawn from [0, 2^40)
# Hard bounds so that nothing can be asked to run unbounded.
MAX_SUM_LOG2 = 22
MAX_ROWS = 10**6
MAX_BUDGET_S = 1800

LINK_RE = re.compile(
    r"Link details: total send bytes (\d+), recv bytes (\d+), send actions (\d+), recv actions (\d+)"
)
EXEC_RE = re.compile(r"\[Profiling\] SPU execution .* execution took ([0-9.e+-]+)s")


# --------------------------------------------------------------------------- data


def party_rng(seed, tag, rank):
    return np.random.default_rng([seed, tag, rank])


def gen_sum_input(seed, n, rank):
    return party_rng(seed, 1, rank).integers(0, SUM_ELEM_MAX, size=n, dtype=np.int64)


def gen_rows(seed, n, rank):
    rng = party_rng(seed, 2_000_000 + n, rank)
    g = rng.integers(0, GROUPS, size=n, dtype=np.int64)
    v = rng.integers(0, VALUE_MAX, size=n, dtype=np.int64)
    return g, v


def local_agg(g, v):
    """What an Unseen party does in the clear: per-group counts and sums, as int64."""
    assert len(g) * VALUE_MAX < 2**53  # bincount's float64 weights stay exact
    counts = np.bincount(g, minlength=GROUPS).astype(np.int64)
    sums = np.rint(np.bincount(g, weights=v, minlength=GROUPS)).astype(np.int64)
    return np.concatenate([counts, sums])


def reference_hist(seed, n):
    """Independent clear-text check: np.add.at over all parties' rows together."""
    counts = np.zeros(GROUPS, np.int64)
    sums = np.zeros(GROUPS, np.int64)
    for r in range(WORLD):
        g, v = gen_rows(seed, n, r)
        np.add.at(counts, g, 1)
        np.add.at(sums, g, v)
    return np.concatenate([counts, sums])


# --------------------------------------------------------------------------- SPU programs


def compile_programs(jobs):
    """Compile each job's JAX function to SPU bytecode once, in the parent."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import spu.libspu as L
    from spu.utils import frontend as fe

    def add3(a, b, c):
        return a + b + c

    def group_in_mpc_fn(block):
        def group_in_mpc(a, b, c):
            # each input is (2, n): row 0 group ids, row 1 values, all secret
            x = jnp.concatenate([a, b, c], axis=1)
            groups = jnp.arange(GROUPS, dtype=jnp.int64)[None, :]

            def block_stats(xb):
                onehot = (xb[0][:, None] == groups).astype(jnp.int64)  # secret equality tests
                return jnp.sum(onehot, axis=0), jnp.matmul(xb[1], onehot)

            total = x.shape[1]
            if total == block:
                counts, sums = block_stats(x)
            else:
                # bounded memory: a loop over row blocks, public index, secret accumulators
                def body(i, carry):
                    xb = jax.lax.dynamic_slice(x, (0, i * block), (2, block))
                    c, s = block_stats(xb)
                    return carry[0] + c, carry[1] + s

                zero = jnp.zeros(GROUPS, jnp.int64)
                counts, sums = jax.lax.fori_loop(0, total // block, body, (zero, zero))
            return jnp.concatenate([counts, sums])

        return group_in_mpc

    out = {}
    for job in jobs:
        shape = job["shape"]
        fn = add3 if job["program"] == "add3" else group_in_mpc_fn(job["block"])
        args = [np.zeros(shape, np.int64) for _ in range(WORLD)]
        exe, _ = fe.compile(
            fe.Kind.JAX,
            fn,
            args,
            {},
            [f"in{i}" for i in range(WORLD)],
            [L.Visibility.VIS_SECRET] * WORLD,
            lambda outs: [f"out{i}" for i in range(len(outs))],
        )
        out[job["key"]] = exe.SerializeToString()
    return out


# --------------------------------------------------------------------------- party process


def party_main(rank, protocol, ports, jobs, exes, opts, logdir, q):
    """One SPU party. All SPU/brpc logging goes to logdir/party<rank>-<protocol>.log."""
    logpath = os.path.join(logdir, f"party{rank}-{protocol}.log")
    fd = os.open(logpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        _party(rank, protocol, ports, jobs, exes, opts, logpath, q)
    except BaseException:
        q.put(("error", rank, traceback.format_exc()))
        q.close()
        q.join_thread()  # make sure the message left before the hard exit
        sys.stdout.flush()
        os._exit(3)


def _party(rank, protocol, ports, jobs, exes, opts, logpath, q):
    import spu
    import spu.libspu as L

    desc = L.link.Desc()
    for r, p in enumerate(ports):
        desc.add_party(f"party{r}", f"{LOOPBACK}:{p}")
    desc.recv_timeout_ms = int(opts["budget_s"] * 1000) + 120_000  # bounded: no eternal wait
    desc.http_timeout_ms = 120_000
    desc.connect_retry_times = 60
    desc.connect_retry_interval_ms = 1000
    lctx = L.link.create_brpc(desc, rank)

    cfg = L.RuntimeConfig(protocol=getattr(L.ProtocolKind, protocol), field=L.FieldType.FM64)
    cfg.enable_pphlo_profile = True  # makes SPU log the link counters of each Run
    rt = spu.Runtime(lctx, cfg)
    io = spu.Io(WORLD, cfg)
    log = open(logpath, "r", errors="replace")

    def log_since():
        sys.stdout.flush()
        time.sleep(0.01)
        return log.read()

    def send_share(dst, share):
        payload = pickle.dumps((share.meta, list(share.share_chunks)), protocol=5)
        lctx.send(dst, payload)
        return len(payload)

    def recv_share(src):
        meta, chunks = pickle.loads(lctx.recv(src))
        s = L.Share()
        s.meta = meta
        s.share_chunks = chunks
        return s

    def one_run(exe, local_input_fn):
        """Returns (wall_s on this party, result on party 0 or None, stats dict)."""
        lctx.barrier()
        log_since()
        t0 = time.perf_counter()
        x = local_input_fn()  # hist-a: the local aggregation, timed
        t_local = time.perf_counter()
        shares = io.make_shares(x, L.Visibility.VIS_SECRET)
        in_bytes = 0
        for j in range(WORLD):
            if j != rank:
                in_bytes += send_share(j, shares[j])
        for i in range(WORLD):
            rt.set_var(f"in{i}", shares[rank] if i == rank else recv_share(i))
        del shares
        t_in = time.perf_counter()
        rt.run(exe)
        t_run = time.perf_counter()
        out = rt.get_var("out0")
        out_bytes = 0
        result = None
        if rank == 0:
            parts = [out] + [recv_share(i) for i in range(1, WORLD)]
            result = np.asarray(io.reconstruct(parts))
        else:
            out_bytes = send_share(0, out)
        t_end = time.perf_counter()
        text = log_since()
        m = LINK_RE.findall(text)
        if not m:
            raise RuntimeError("SPU did not log 'Link details' for this run")
        run_sent, run_recv, run_sends, run_recvs = map(int, m[-1])
        e = EXEC_RE.findall(text)
        stats = {
            "local_s": t_local - t0,
            "share_in_s": t_in - t_local,
            "run_s": t_run - t_in,
            "reveal_s": t_end - t_run,
            "spu_exec_s": float(e[-1]) if e else None,
            "input_bytes_sent": in_bytes,
            "run_bytes_sent": run_sent,
            "run_bytes_recv": run_recv,
            "run_send_actions": run_sends,
            "output_bytes_sent": out_bytes,
            "bytes_sent": in_bytes + run_sent + out_bytes,
            "io_messages_sent": (WORLD - 1) + (0 if rank == 0 else 1),
        }
        return t_end - t0, result, stats

    for job in jobs:
        exe = L.Executable()
        exe.ParseFromString(exes[job["key"]])
        kind, seed = job["kind"], opts["seed"]
        if kind == "sum":
            data = gen_sum_input(seed, job["n"], rank)
            fn = lambda: data
        elif kind == "hist-a":
            g, v = gen_rows(seed, job["n"], rank)
            fn = lambda: local_agg(g, v)
        else:
            g, v = gen_rows(seed, job["n"], rank)
            data = np.stack([g, v])
            fn = lambda: data

        # Skip decision (hist-b) is made by party 0 and broadcast, so all parties agree.
        if job.get("skippable"):
            msg = job_decision(job, opts) if rank == 0 else ""
            decision = lctx.broadcast(msg, 0)
            decision = decision.decode() if isinstance(decision, bytes) else decision
            if decision != "run":
                if rank == 0:
                    q.put(("skipped", rank, job["key"], decision))
                continue

        walls, per_run = [], []
        wall, result, st = one_run(exe, fn)  # warm-up (or the only run when it is long)
        if rank == 0:
            check(job, result)
        runs = opts["reps"]
        if job["kind"] == "hist-b":
            # party 0's wall time decides, broadcast so that every party runs the same count
            long_run = "1" if rank == 0 and wall > opts["single_run_above_s"] else "0"
            long_run = lctx.broadcast(long_run, 0)
            long_run = long_run.decode() if isinstance(long_run, bytes) else long_run
        else:
            long_run = "0"
        if long_run == "1":
            runs = 0
            walls.append(wall)
            per_run.append(st)
        for _ in range(runs):
            wall, result, st = one_run(exe, fn)
            if rank == 0:
                check(job, result)
            walls.append(wall)
            per_run.append(st)
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        q.put(("result", rank, job["key"], walls, per_run, rss_mib))
        lctx.barrier()
        if rank == 0:  # for the next hist-b size's decision
            opts["history"].append((job["n"], statistics.median(walls), len(walls)))

    lctx.barrier()
    try:
        lctx.stop_link()
    except Exception:
        pass
    q.put(("done", rank))


def job_decision(job, opts):
    """hist-b: run the next size only if one run, grown linearly from the last size, fits the limit."""
    hist = opts["history"]
    if not hist:
        return "run"
    n_prev, t_prev, _ = hist[-1]
    predicted = t_prev * job["n"] / n_prev
    if predicted > opts["budget_s"]:
        return (
            f"not run: predicted {predicted:.0f} s for one run (linear from {n_prev:,} rows/party "
            f"in {t_prev:.1f} s), over the {opts['budget_s']:.0f} s limit"
        )
    return "run"


def check(job, result):
    exp = job["expected"]
    got = np.asarray(result).reshape(-1).astype(np.int64)
    if got.shape != exp.shape:
        raise AssertionError(f"MISMATCH in {job['key']}: shape {got.shape}, numpy {exp.shape}")
    if not np.array_equal(got, exp):
        bad = np.nonzero(got != exp)[0]
        i = bad[0]
        raise AssertionError(
            f"MISMATCH in {job['key']}: SPU differs from numpy in the clear at {len(bad)} of "
            f"{len(exp)} positions, first [{i}]: SPU {got[i]}, numpy {exp[i]}"
        )


# --------------------------------------------------------------------------- parent


def free_ports(k):
    socks, ports = [], []
    for _ in range(k):
        s = socket.socket()
        s.bind((LOOPBACK, 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def run_protocol(protocol, jobs, exes, opts, logdir, deadline_s):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    ports = free_ports(WORLD)
    # party 0 keeps the hist-b history in its own copy of opts
    popts = dict(opts, history=[])
    procs = [
        ctx.Process(
            target=party_main,
            args=(r, protocol, ports, jobs, exes, popts, logdir, q),
            name=f"spu-{protocol}-party{r}",
        )
        for r in range(WORLD)
    ]
    for p in procs:
        p.start()
    results, skipped, done = {}, {}, set()
    t_end = time.monotonic() + deadline_s
    error = None
    while len(done) < WORLD and error is None:
        left = t_end - time.monotonic()
        if left <= 0:
            error = f"{protocol}: over the {deadline_s:.0f} s deadline"
            break
        try:
            msg = q.get(timeout=min(5.0, left))
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                error = f"{protocol}: party process {dead[0].name} died (exit {dead[0].exitcode})"
                try:  # its own report, if it got one out
                    while True:
                        msg = q.get(timeout=1.0)
                        if msg[0] == "error":
                            error = f"{protocol}: party {msg[1]} failed:\n{msg[2]}"
                            break
                except queue.Empty:
                    pass
            continue
        if msg[0] == "error":
            error = f"{protocol}: party {msg[1]} failed:\n{msg[2]}"
        elif msg[0] == "result":
            _, rank, key, walls, per_run, rss = msg
            results.setdefault(key, {})[rank] = (walls, per_run, rss)
        elif msg[0] == "skipped":
            skipped[msg[2]] = msg[3]
        elif msg[0] == "done":
            done.add(msg[1])
    for p in procs:
        p.join(timeout=10 if error is None else 0.5)
    for p in procs:  # only our own children, by object
        if p.is_alive():
            p.terminate()
            p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join(timeout=5)
    if error:
        raise RuntimeError(error + f"\n(party logs in {logdir})")
    return results, skipped


def machine_info():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            mem_gib = int(f.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {"nproc": nproc, "cpu": cpu, "mem_gib": round(mem_gib, 1) if mem_gib else None}


def fmt_bytes_list(bs):
    return " / ".join(f"{b / 2**20:.2f}" if b >= 2**16 else f"{b} B" for b in bs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocols", default="SEMI2K,ABY3")
    ap.add_argument("--sum-log2", type=int, default=20)
    ap.add_argument("--hist-rows", type=int, default=10**6, help="rows per party, hist-a")
    ap.add_argument(
        "--mpc-rows",
        default="1000,10000,100000,1000000",
        help="rows per party for hist-b, increasing; a size is not run when its predicted time is over --mpc-run-limit-s",
    )
    ap.add_argument("--mpc-run-limit-s", type=float, default=600,
                    help="hist-b: a size whose one run is predicted (linearly from the previous size) to take longer is not run")
    ap.add_argument("--mpc-block-rows", type=int, default=15000,
                    help="hist-b: rows (all parties together) per block of the in-MPC loop, bounds memory")
    ap.add_argument("--reps", type=int, default=3, help="timed runs after one warm-up (median reported)")
    ap.add_argument(
        "--single-run-above-s", type=float, default=30,
        help="hist-b: a run longer than this is reported on its own, without warm-up or repeats",
    )
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--only", default="sum,hist-a,hist-b")
    ap.add_argument("--keep-logs", action="store_true")
    a = ap.parse_args()

    if not (10 <= a.sum_log2 <= MAX_SUM_LOG2):
        sys.exit(f"--sum-log2 must be in 10..{MAX_SUM_LOG2}")
    mpc_rows = [int(x) for x in a.mpc_rows.split(",") if x]
    if a.hist_rows > MAX_ROWS or any(n > MAX_ROWS or n < 1 for n in mpc_rows) or mpc_rows != sorted(mpc_rows):
        sys.exit(f"row counts must be increasing and at most {MAX_ROWS}")
    if a.mpc_run_limit_s > MAX_BUDGET_S or not (1 <= a.reps <= 10) or not (100 <= a.mpc_block_rows <= 100000):
        sys.exit("budget or reps out of bounds")
    protocols = [p.strip().upper() for p in a.protocols.split(",") if p.strip()]
    for p in protocols:
        if p not in ("SEMI2K", "ABY3"):
            sys.exit(f"unsupported protocol {p} (SEMI2K or ABY3, both 3 parties here)")
    only = set(a.only.split(","))

    import spu

    info = machine_info()
    info["spu"] = spu.__version__
    info["numpy"] = np.__version__
    info["python"] = platform.python_version()
    print("# SPU comparison: Unseen horizontal statistics workloads")
    print()
    print(f"- machine: nproc={info['nproc']}, CPU: {info['cpu']}, RAM {info['mem_gib']} GiB")
    print(f"- SPU {info['spu']} (numpy {info['numpy']}, Python {info['python']})")
    print(
        f"- mode: REAL multi-process SPU, {WORLD} OS processes per protocol, brpc link on "
        f"{LOOPBACK} only, field FM64, {a.reps} timed runs after 1 warm-up (median)"
    )
    print(json.dumps({"machine": info}))
    sys.stdout.flush()

    jobs = []
    if "sum" in only:
        n = 2**a.sum_log2
        exp = sum(gen_sum_input(a.seed, n, r) for r in range(WORLD))
        jobs.append(dict(key=f"sum-2^{a.sum_log2}", kind="sum", n=n, program="add3", shape=(n,), expected=exp))
    if "hist-a" in only:
        jobs.append(dict(key=f"hist-a-{a.hist_rows}", kind="hist-a", n=a.hist_rows, program="add3",
                         shape=(2 * GROUPS,), expected=reference_hist(a.seed, a.hist_rows)))
    if "hist-b" in only:
        for n in mpc_rows:
            total = WORLD * n
            block = max(d for d in range(1, min(total, a.mpc_block_rows) + 1) if total % d == 0)
            jobs.append(dict(key=f"hist-b-{n}", kind="hist-b", n=n, program="group", shape=(2, n),
                             block=block, expected=reference_hist(a.seed, n), skippable=True))

    t = time.perf_counter()
    exes = compile_programs(jobs)
    print(f"- compiled {len(exes)} SPU programs in {time.perf_counter() - t:.1f} s (not timed below)")
    sys.stdout.flush()

    logdir = tempfile.mkdtemp(prefix="spu-stats-")
    opts = dict(seed=a.seed, reps=a.reps, budget_s=a.mpc_run_limit_s, single_run_above_s=a.single_run_above_s)
    rows, ok = [], False
    try:
        for proto in protocols:
            # bounded: every hist-b size that runs is predicted under the limit; the rest is small
            deadline = 3 * a.mpc_run_limit_s + 600
            t = time.perf_counter()
            results, skipped = run_protocol(proto, jobs, exes, opts, logdir, deadline)
            print(f"- {proto}: all parties finished in {time.perf_counter() - t:.1f} s (incl. start-up)")
            sys.stdout.flush()
            for job in jobs:
                if job["key"] in skipped:
                    rec = dict(workload=job["kind"], key=job["key"], protocol=proto, parties=WORLD,
                               rows_or_elems_per_party=job["n"], skipped=skipped[job["key"]])
                    rows.append(rec)
                    print(json.dumps(rec))
                    continue
                per = results[job["key"]]
                walls0, runs0, _ = per[0]
                # bytes/actions are identical across repeats; take them from the last run
                sent = [per[r][1][-1]["bytes_sent"] for r in range(WORLD)]
                run_actions = [per[r][1][-1]["run_send_actions"] for r in range(WORLD)]
                rec = dict(
                    workload=job["kind"], key=job["key"], protocol=proto, parties=WORLD, field="FM64",
                    rows_or_elems_per_party=job["n"],
                    mpc_block_rows=job.get("block"),
                    wall_s_median=statistics.median(walls0), wall_s_runs=walls0, timed_runs=len(walls0),
                    warmup_excluded=len(walls0) > 1 or job["kind"] != "hist-b",
                    bytes_sent_per_party=sent,
                    bytes_breakdown_per_party=[
                        {k: per[r][1][-1][k] for k in ("input_bytes_sent", "run_bytes_sent", "output_bytes_sent")}
                        for r in range(WORLD)
                    ],
                    spu_run_send_actions_per_party=run_actions,
                    io_rounds=2,  # shares in, shares out; rounds inside Runtime.run are not reported by SPU
                    phases_party0_median_s={
                        k: statistics.median([s[k] for s in runs0])
                        for k in ("local_s", "share_in_s", "run_s", "reveal_s")
                    },
                    peak_rss_mib_per_party=[round(per[r][2]) for r in range(WORLD)],
                    verified_against_numpy=True,
                )
                rows.append(rec)
                print(json.dumps(rec))
        ok = True
    finally:
        if ok and not a.keep_logs:
            shutil.rmtree(logdir, ignore_errors=True)
        elif not ok:
            print(f"!! FAILED; party logs kept in {logdir}", file=sys.stderr)

    print()
    print("| workload | protocol | parties | size per party | wall s (median) | MiB sent p0 / p1 / p2 | rounds | SPU send actions/party |")
    print("|---|---|---|---|---|---|---|---|")
    names = {"sum": "secure sum", "hist-a": "histogram, local agg + secure sum", "hist-b": "histogram, grouping in MPC"}
    for r in rows:
        size = f"2^{a.sum_log2} int64" if r["workload"] == "sum" else f"{r['rows_or_elems_per_party']:,} rows"
        if "skipped" in r:
            print(f"| {names[r['workload']]} | {r['protocol']} | {r['parties']} | {size} | {r['skipped']} | | | |")
            continue
        acts = r["spu_run_send_actions_per_party"]
        rounds = "2" if max(acts) == 0 else "2 + n/a"  # SPU reports messages, not rounds
        if not r["warmup_excluded"]:
            note = " (1 run, no warm-up)"
        else:
            note = f" (median of {r['timed_runs']})" if r["timed_runs"] > 1 else " (1 run after warm-up)"
        wall = f"{r['wall_s_median']:.3f}{note}"
        print(
            f"| {names[r['workload']]} | {r['protocol']} | {r['parties']} | {size} | {wall} | "
            f"{fmt_bytes_list(r['bytes_sent_per_party'])} | {rounds} | {' / '.join(map(str, acts))} |"
        )
    print()
    print("All results matched numpy computed in the clear.")


if __name__ == "__main__":
    main()
