#!/usr/bin/env python3
"""Unseen's vertical statistics (issue 8) the SecretFlow way: PSI, then SPU, for comparison.

Not part of the Rust build or CI. See README.md next to this file for the setup (a virtualenv
with spu==0.9.5 and numpy<2) and how to read the output.

Two parties, one OS process each (multiprocessing, spawn), connected by SPU's brpc link on
127.0.0.1 only; no simulator, no fallback. Party 0 is the bank (id, balance, age band 0..7),
party 1 the retailer (id, spend). Per size (rows per party, --common-frac of them common):

  1. PSI   spu.psi.psi_execute on each party's CSV, ECDH-PSI (curve25519) and/or RR22, inner
           join, result broadcast: both parties get their own rows of the intersection, sorted
           by id, so the two outputs are aligned row by row. Both learn the intersection.
  2. load  each party reads its PSI output CSV into numpy (local).
  3. SPU   on the aligned rows, per protocol (SEMI2K with a chosen Beaver source, CHEETAH):
           input   the bank shares balance and the one-hot (n x 8) of its band, the retailer
                   shares spend (Io.make_shares, VIS_SECRET; share j sent to party j)  [1 round]
           compute counts per band = sum(one-hot), sums per band = spend @ one-hot,
                   means = sums / max(counts, 1) (fixed-point division in MPC), and
                   sum x, sum y, sum x^2, sum y^2, sum xy (x = balance, y = spend)
           reveal  each party sends its output shares to the other; both reconstruct  [1 round]
           The correlation is computed in the clear from the opened sums and the public count;
           sum y is the intersection-sum.
Every result is checked against numpy on the plain join (exact for ids and counts, within the
tolerances of check_stats for fixed point). Bytes: TCP payload bytes each party's link sockets
sent (from `ss -tinp`, per phase), plus SPU's own "Link details" payload count for `Runtime.run`.
"""

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import pickle
import platform
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

from spu_stats import fmt_bytes_list, free_ports, machine_info

WORLD = 2
BANK, RETAILER = 0, 1
LOOPBACK = "127.0.0.1"
BANDS = 8
MAX_ROWS = 1 << 21  # per party
MAX_LIMIT_S = 1800
PSI_PROTOCOLS = ("ECDH", "RR22")
# SEMI2K's BeaverType.MultiParty is in the enum but 0.9.5 refuses it ("unsupported beaver type
# 2"); TrustedThirdParty needs a separate beaver server. So SEMI2K runs with TrustedFirstParty.
SPU_PROTOCOLS = ("SEMI2K-TFP", "CHEETAH")
DEFAULT_FXP_BITS = {"FM64": 18, "FM128": 26}  # SPU's own defaults for these fields
FIELD_BITS = {"FM64": 64, "FM128": 128}

LINK_RE = re.compile(
    r"Link details: total send bytes (\d+), recv bytes (\d+), send actions (\d+), recv actions (\d+)"
)
TRACE_RE = re.compile(r"Trace has been written to (/tmp/psi_[A-Za-z0-9_-]+\.trace)")
SS_PORTS_RE = re.compile(r"\s(\S+):(\d+)\s+(\S+):(\d+)\s")
SS_SENT_RE = re.compile(r"\bbytes_sent:(\d+)")


# --------------------------------------------------------------------------- data


def gen_data(seed, n, common):
    """Bank rows (id, balance in k EUR, band) and retailer rows (id, spend in 100 EUR).

    Ids are distinct 12-digit integers (same width, so text and numeric order agree). Values
    are whole cents / 100, so what the CSV holds ("%.2f") parses back to the same doubles.
    Spend of common customers depends on balance and band, so the statistics are not noise.
    """
    rng = np.random.default_rng([seed, n, common])
    need = 2 * n - common
    ids = np.unique(rng.integers(10**11, 10**12, size=need + need // 8 + 64))
    ids = rng.permutation(ids)[:need]
    if len(ids) < need:
        raise RuntimeError("id draw collided too often")
    bank_id = ids[:n]
    ret_id = np.concatenate([ids[:common], ids[n:]])
    band = rng.integers(0, BANDS, size=n)
    bal_c = np.clip(rng.gamma(2.0, 1500.0, size=n), 0, 19999).astype(np.int64)  # cents of k EUR
    balance = bal_c / 100.0
    spend_c = np.empty(n, np.int64)
    noise = rng.normal(0, 600, size=n)
    spend_c[:common] = 0.3 * bal_c[:common] + 150 * band[:common] + noise[:common]
    spend_c[common:] = rng.gamma(2.0, 900.0, size=n - common)
    spend_c = np.clip(spend_c, 0, 9999)
    spend = spend_c / 100.0
    order = rng.permutation(n)  # the retailer's file is not in the bank's order
    return dict(bank_id=bank_id, balance=balance, band=band,
                ret_id=ret_id[order], spend=spend[order])


def write_csvs(d, workdir):
    bank = os.path.join(workdir, "bank.csv")
    ret = os.path.join(workdir, "retailer.csv")
    np.savetxt(bank, np.column_stack([d["bank_id"], d["balance"], d["band"]]),
               fmt=["%d", "%.2f", "%d"], delimiter=",", header="id,balance,band", comments="")
    np.savetxt(ret, np.column_stack([d["ret_id"], d["spend"]]),
               fmt=["%d", "%.2f"], delimiter=",", header="id,spend", comments="")
    return [bank, ret]


def plain_join_stats(d):
    """The reference: the join in the clear and every statistic in float64 numpy."""
    ids, ib, ir = np.intersect1d(d["bank_id"], d["ret_id"], assume_unique=True, return_indices=True)
    x, band, y = d["balance"][ib], d["band"][ib], d["spend"][ir]
    counts = np.bincount(band, minlength=BANDS).astype(np.int64)
    sums = np.bincount(band, weights=y, minlength=BANDS)
    means = np.divide(sums, np.maximum(counts, 1))
    moments = np.array([x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum()])
    max_product = max(float(np.max(x * x, initial=0)), float(np.max(y * y, initial=0)))
    return dict(ids=ids, count=len(ids), counts=counts, sums=sums, means=means, max_product=max_product,
                moments=moments, corr=float(np.corrcoef(x, y)[0, 1]), isum=float(y.sum()))


def corr_from_moments(n, m):
    sx, sy, sxx, syy, sxy = (float(v) for v in m)
    return (n * sxy - sx * sy) / np.sqrt((n * sxx - sx * sx) * (n * syy - sy * sy))


def field_fits(ref, field, fxp_bits):
    """Fixed point must not wrap: a secret product x*y exists at scale 2^(2f) before SPU
    truncates it, every result at scale 2^f; both must stay below 2^(k-2). (Probed on SPU's
    simulator: sum(x * y) is truncated per element, and spend @ one-hot with an integer one-hot
    did not wrap with the whole sum beyond 2^63 at scale 2^36, so per-row bounds suffice.)"""
    results = float(np.max(np.abs(np.concatenate([ref["moments"], ref["sums"], ref["means"]]))))
    limit = 2.0 ** (FIELD_BITS[field] - 2)
    return ref["max_product"] * 2.0 ** (2 * fxp_bits) < limit and results * 2.0**fxp_bits < limit


# --------------------------------------------------------------------------- SPU program


def compile_program(n_common):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import spu.libspu as L
    from spu.utils import frontend as fe

    def vertical_stats(balance, onehot, spend):
        counts = jnp.sum(onehot, axis=0)
        sums = jnp.matmul(spend, onehot.astype(jnp.float64))
        means = sums / jnp.maximum(counts, 1).astype(jnp.float64)
        x, y = balance, spend
        moments = jnp.stack([jnp.sum(x), jnp.sum(y), jnp.sum(x * x), jnp.sum(y * y), jnp.sum(x * y)])
        return counts, sums, means, moments

    def one(n):
        args = [np.zeros(n), np.zeros((n, BANDS), np.int64), np.zeros(n)]
        exe, _ = fe.compile(fe.Kind.JAX, vertical_stats, args, {}, ["balance", "onehot", "spend"],
                            [L.Visibility.VIS_SECRET] * 3, lambda outs: [f"out{i}" for i in range(len(outs))])
        return exe.SerializeToString()

    # the same program on WARMUP_ROWS rows: its run pays the protocol's one-time set-up
    return one(n_common), one(WARMUP_ROWS)


OUTPUTS = ("counts", "sums", "means", "moments")
WARMUP_ROWS = 16
PHASES = ("setup", "input", "compute", "reveal")
INPUTS = {BANK: ("balance", "onehot"), RETAILER: ("spend",)}


# --------------------------------------------------------------------------- party process


class TcpMeter:
    """Bytes this process's link sockets sent (TCP payload, brpc framing included), from ss."""

    def __init__(self, ports):
        self.ports = {str(p) for p in ports}
        self.tag = f"pid={os.getpid()},"

    def sent(self):
        out = subprocess.run(["ss", "-tinpOH"], capture_output=True, text=True, timeout=30).stdout
        total = 0
        for line in out.splitlines():
            if self.tag not in line:
                continue
            m = SS_PORTS_RE.search(line)
            if not m or not ({m.group(2), m.group(4)} & self.ports):
                continue
            b = SS_SENT_RE.search(line)
            total += int(b.group(1)) if b else 0
        return total


def make_link(L, ports, rank, timeout_s):
    desc = L.link.Desc()
    for r, p in enumerate(ports):
        desc.add_party(f"party{r}", f"{LOOPBACK}:{p}")
    desc.recv_timeout_ms = int(timeout_s * 1000)  # bounded: no eternal wait on a dead peer
    desc.http_timeout_ms = 120_000
    desc.connect_retry_times = 60
    desc.connect_retry_interval_ms = 1000
    return L.link.create_brpc(desc, rank)


def party_main(rank, plan, q, logpath):
    """One party. All SPU/PSI/brpc logging goes to logpath (fds 1 and 2)."""
    fd = os.open(logpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ["TMPDIR"] = plan["workdir"]  # PSI's scratch files go under our own work dir
    try:
        q.put(("result", rank, _party(rank, plan, logpath)))
    except BaseException:
        q.put(("error", rank, traceback.format_exc()))
    q.close()
    q.join_thread()  # make sure the message left before the hard exit
    sys.stdout.flush()
    os._exit(0)


def psi_config(P, proto, in_path, out_path):
    pc = P.PsiProtocolConfig()
    if proto == "ECDH":
        pc.protocol = P.PsiProtocol.PROTOCOL_ECDH
        ecdh = P.EcdhParams()
        ecdh.curve = P.EllipticCurveType.CURVE_25519
        pc.ecdh_params = ecdh
    else:
        pc.protocol = P.PsiProtocol.PROTOCOL_RR22
    pc.receiver_rank = BANK
    pc.broadcast_result = True
    ip = P.InputParams()
    ip.type = P.SourceType.SOURCE_TYPE_FILE_CSV
    ip.path = in_path
    ip.selected_keys = ["id"]
    ip.keys_unique = True  # ids are distinct by construction; skips PSI's own dedup pass
    op = P.OutputParams()
    op.type = P.SourceType.SOURCE_TYPE_FILE_CSV
    op.path = out_path
    op.disable_alignment = False  # sorted by id on both sides, so rows line up
    jc = P.ResultJoinConfig()
    jc.type = P.ResultJoinType.JOIN_TYPE_INNER_JOIN
    cfg = P.PsiExecuteConfig()
    cfg.protocol_conf, cfg.input_params, cfg.output_params, cfg.join_conf = pc, ip, op, jc
    return cfg


def read_psi_output(path):
    with open(path) as f:
        header = [h.strip().strip('"') for h in f.readline().split(",")]
    body = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    cols = {h: body[:, i] for i, h in enumerate(header)}
    out = {"id": cols["id"].astype(np.int64)}
    for k in ("balance", "spend"):
        if k in cols:
            out[k] = cols[k]
    if "band" in cols:
        out["band"] = cols["band"].astype(np.int64)
    return out


def run_psi(P, lctx, meter, rank, proto, plan):
    out_path = os.path.join(plan["workdir"], f"psi-{proto}-party{rank}.csv")
    cfg = psi_config(P, proto, plan["inputs"][rank], out_path)
    lctx.barrier()
    b0 = meter.sent()
    t0 = time.perf_counter()
    rep = P.psi_execute(cfg, lctx)
    wall = time.perf_counter() - t0
    lctx.barrier()
    b1 = meter.sent()
    ids = read_psi_output(out_path)["id"]
    return out_path, dict(
        wall_s=wall, tcp_bytes_sent=b1 - b0, ids=ids,
        report=dict(original_count=rep.original_count, intersection_count=rep.intersection_count,
                    original_unique_count=rep.original_unique_count,
                    intersection_unique_count=rep.intersection_unique_count))


def runtime_config(L, sproto, plan):
    kind = "CHEETAH" if sproto == "CHEETAH" else "SEMI2K"
    cfg = L.RuntimeConfig(protocol=getattr(L.ProtocolKind, kind), field=getattr(L.FieldType, plan["field"]))
    cfg.fxp_fraction_bits = plan["fxp_bits"]
    if sproto == "SEMI2K-TFP":
        cfg.beaver_type = L.RuntimeConfig.BeaverType.TrustedFirstParty  # party 0 is the dealer
    cfg.enable_pphlo_profile = True  # makes SPU log the link counters of each Run
    return cfg


def run_spu(spu, L, rank, sproto, ports, rows, plan, meter, log):
    """One protocol: input, compute, reveal. Returns per-phase stats and the opened results."""
    lctx = make_link(L, ports, rank, plan["link_timeout_s"])
    cfg = runtime_config(L, sproto, plan)
    rt = spu.Runtime(lctx, cfg)
    io = spu.Io(WORLD, cfg)
    exe, warm = L.Executable(), L.Executable()
    exe.ParseFromString(plan["exe"])
    warm.ParseFromString(plan["exe_warmup"])
    peer = 1 - rank
    snaps, times = [], []

    def mark():
        lctx.barrier()
        snaps.append(meter.sent())
        times.append(time.perf_counter())

    def send_share(share):
        payload = pickle.dumps((share.meta, list(share.share_chunks)), protocol=5)
        lctx.send(peer, payload)
        return len(payload)

    def recv_share():
        meta, chunks = pickle.loads(lctx.recv(peer))
        s = L.Share()
        s.meta, s.share_chunks = meta, chunks
        return s

    def feed(balance, band, spend):
        # the one-hot is the bank's local preparation, inside the timed phase
        if rank == BANK:
            mine = {"balance": balance, "onehot": np.eye(BANDS, dtype=np.int64)[band]}
        else:
            mine = {"spend": spend}
        payload = 0
        for name, arr in mine.items():
            shares = io.make_shares(arr, L.Visibility.VIS_SECRET)
            payload += send_share(shares[peer])
            rt.set_var(name, shares[rank])
        for name in INPUTS[peer]:
            rt.set_var(name, recv_share())
        return payload

    def run_logged(program):
        log.read()
        rt.run(program)
        sys.stdout.flush()
        m = LINK_RE.findall(log.read())
        if not m:
            raise RuntimeError("SPU did not log 'Link details' for this run")
        sent, _, sends, _ = map(int, m[-1])
        return sent, sends

    # setup: the first Run on a runtime pays one-time costs (CHEETAH: OT and HE set-up), so a
    # WARMUP_ROWS-row run of the same program goes first and is reported on its own
    mark()
    z = np.zeros(WARMUP_ROWS)
    warm_in = feed(z, np.arange(WARMUP_ROWS) % BANDS, z)
    warm_sent, warm_sends = run_logged(warm)
    t_setup = time.perf_counter()
    mark()
    in_payload = feed(rows.get("balance"), rows.get("band"), rows.get("spend"))
    t_in = time.perf_counter()
    mark()
    run_sent, run_sends = run_logged(exe)
    t_run = time.perf_counter()
    mark()
    outs = [rt.get_var(f"out{i}") for i in range(len(OUTPUTS))]
    out_payload = sum(send_share(s) for s in outs)
    opened = {k: np.asarray(io.reconstruct([s, recv_share()] if rank == 0 else [recv_share(), s]))
              for k, s in zip(OUTPUTS, outs)}
    t_rev = time.perf_counter()
    mark()
    try:
        lctx.stop_link()
    except Exception:
        pass
    ends = [t_setup, t_in, t_run, t_rev]
    phases = {}
    for i, ph in enumerate(PHASES):
        phases[ph] = dict(wall_s=ends[i] - times[i], tcp_bytes_sent=snaps[i + 1] - snaps[i])
    phases["setup"]["spu_payload_bytes_sent"] = warm_sent + warm_in
    phases["setup"]["spu_send_actions"] = warm_sends
    phases["input"]["payload_bytes_sent"] = in_payload
    phases["compute"]["spu_payload_bytes_sent"] = run_sent
    phases["compute"]["spu_send_actions"] = run_sends
    phases["reveal"]["payload_bytes_sent"] = out_payload
    return dict(phases=phases, opened=opened)


def _party(rank, plan, logpath):
    import spu
    import spu.libspu as L
    import spu.psi as P

    all_ports = list(plan["psi_ports"]) + [p for ps in plan["spu_ports"].values() for p in ps]
    meter = TcpMeter(all_ports)
    log = open(logpath, "r", errors="replace")
    res = {"psi": {}, "spu": {}}
    out_path = None
    if plan["psi"]:
        lctx = make_link(L, plan["psi_ports"], rank, plan["link_timeout_s"])
        for proto in plan["psi"]:
            path, st = run_psi(P, lctx, meter, rank, proto, plan)
            res["psi"][proto] = st
            out_path = out_path or path
        try:
            lctx.stop_link()
        except Exception:
            pass
    if not plan["spu"] or out_path is None:
        return res
    t0 = time.perf_counter()
    rows = read_psi_output(out_path)
    res["load_s"] = time.perf_counter() - t0
    res["n_common"] = len(rows["id"])
    for sproto in plan["spu"]:
        res["spu"][sproto] = run_spu(spu, L, rank, sproto, plan["spu_ports"][sproto], rows, plan, meter, log)
    return res


# --------------------------------------------------------------------------- checks


def check_psi(proto, per, ref):
    ids0, ids1 = per[BANK]["psi"][proto]["ids"], per[RETAILER]["psi"][proto]["ids"]
    if not np.array_equal(ids0, ids1):
        raise AssertionError(f"MISMATCH {proto}: the two parties' PSI outputs are not aligned row by row")
    if not np.array_equal(np.sort(ids0), ref["ids"]):
        raise AssertionError(f"MISMATCH {proto}: PSI gave {len(ids0)} ids, the plain join {ref['count']}; "
                             "or the sets differ")


def check_stats(label, opened, n, ref, fxp_bits):
    """Tolerances (stated in README): counts exact; per-band sums and the five sums within
    1e-6 relative + n * 2^-(f-1) absolute (one truncation error per row); means within 1e-3
    relative + 2^-(f-8) absolute (SPU's approximate division: about 4e-5 relative seen, the
    same on FM64 and FM128); correlation within 1e-6."""
    errs = {}
    counts = np.rint(opened["counts"]).astype(np.int64).reshape(-1)
    if not np.array_equal(counts, ref["counts"]):
        raise AssertionError(f"MISMATCH {label}: counts per band {counts.tolist()}, numpy {ref['counts'].tolist()}")
    sum_tol = lambda r: 1e-6 * np.abs(r) + n * 2.0 ** -(fxp_bits - 1)
    mean_tol = lambda r: 1e-3 * np.abs(r) + 2.0 ** -(fxp_bits - 8)
    for key, tol in (("sums", sum_tol), ("moments", sum_tol), ("means", mean_tol)):
        got, exp = np.asarray(opened[key], np.float64).reshape(-1), ref[key]
        err = np.abs(got - exp)
        errs[key] = float(err.max())
        if np.any(err > tol(exp)):
            i = int(np.argmax(err - tol(exp)))
            raise AssertionError(f"MISMATCH {label}: {key}[{i}] SPU {got[i]!r}, numpy {exp[i]!r}")
    corr = corr_from_moments(n, opened["moments"])
    errs["corr"] = abs(corr - ref["corr"])
    if not errs["corr"] <= 1e-6:
        raise AssertionError(f"MISMATCH {label}: correlation {corr!r}, numpy {ref['corr']!r}")
    return corr, errs


# --------------------------------------------------------------------------- parent


def run_size(plan, logdir, deadline_s):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=party_main, name=f"spu-vertical-party{r}",
                         args=(r, plan, q, os.path.join(logdir, f"n{plan['n']}-party{r}.log")))
             for r in range(WORLD)]
    for p in procs:
        p.start()
    per, error = {}, None
    t_end = time.monotonic() + deadline_s
    while len(per) < WORLD and error is None:
        left = t_end - time.monotonic()
        if left <= 0:
            error = f"{plan['n']} rows: over the {deadline_s:.0f} s deadline"
            break
        try:
            msg = q.get(timeout=min(5.0, left))
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                error = f"party process {dead[0].name} died (exit {dead[0].exitcode})"
            continue
        if msg[0] == "error":
            error = f"party {msg[1]} failed:\n{msg[2]}"
        else:
            per[msg[1]] = msg[2]
    for p in procs:
        p.join(timeout=10 if error is None else 0.5)
    for p in procs:  # only our own children, by object
        if p.is_alive():
            p.terminate()
            p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join(timeout=5)
    remove_psi_traces(logdir)
    if error:
        raise RuntimeError(error + f"\n(party logs in {logdir})")
    return per


def remove_psi_traces(logdir):
    """PSI 0.9.5 writes a perfetto trace to /tmp/psi_<random>.trace (TMPDIR is ignored for it)
    and names it in the log; remove exactly the ones our parties wrote."""
    for name in os.listdir(logdir):
        if not name.endswith(".log"):
            continue
        with open(os.path.join(logdir, name), errors="replace") as f:
            for path in TRACE_RE.findall(f.read()):
                try:
                    os.remove(path)
                except OSError:
                    pass


def plan_size(n, a, history, ref):
    """Which PSI and SPU runs fit the limit at this size (linear from the last size run)."""
    todo, skipped = {"psi": [], "spu": []}, {}
    for kind, protos in (("psi", a.psi), ("spu", a.spu)):
        for proto in protos:
            if kind == "spu" and not field_fits(ref, a.field, a.fxp_bits):
                skipped[proto] = f"not run: {a.field} with f={a.fxp_bits} could wrap (see field_fits)"
                continue
            prev = history.get(proto)
            if prev:
                predicted = prev[1] * n / prev[0]
                if predicted > a.run_limit_s:
                    skipped[proto] = (f"not run: predicted {predicted:.0f} s (linear from {prev[0]:,} rows "
                                      f"in {prev[1]:.1f} s), over the {a.run_limit_s:.0f} s limit")
                    continue
            todo[kind].append(proto)
    if not todo["psi"]:
        for proto in todo["spu"]:
            skipped[proto] = "not run: no PSI ran at this size"
        todo["spu"] = []
    return todo, skipped


def records_for_size(n, common, per, ref, plan, skipped, history):
    recs = []
    for proto in plan["psi"]:
        check_psi(proto, per, ref)
        st = [per[r]["psi"][proto] for r in range(WORLD)]
        wall = st[BANK]["wall_s"]
        history[proto] = (n, wall)
        recs.append(dict(phase="psi", protocol=proto, rows_per_party=n, common=common, wall_s=wall,
                         tcp_bytes_sent_per_party=[s["tcp_bytes_sent"] for s in st],
                         psi_report_bank=st[BANK]["report"], psi_report_retailer=st[RETAILER]["report"],
                         rounds=None, verified_against_numpy=True))
    for sproto in plan["spu"]:
        label = f"{sproto} at {n} rows"
        corrs = []
        for r in range(WORLD):
            corr, errs = check_stats(label, per[r]["spu"][sproto]["opened"], ref["count"], ref, plan["fxp_bits"])
            corrs.append(corr)
        phases = [per[r]["spu"][sproto]["phases"] for r in range(WORLD)]
        # the set-up does not grow with n: predict from the rest
        history[sproto] = (n, sum(phases[BANK][ph]["wall_s"] for ph in PHASES[1:]))
        rec = dict(phase="spu", protocol=sproto, field=plan["field"], fxp_bits=plan["fxp_bits"],
                   rows_per_party=n, common=common, load_s_bank=per[BANK]["load_s"],
                   correlation=corrs[BANK], correlation_numpy=ref["corr"],
                   intersection_sum=float(per[BANK]["spu"][sproto]["opened"]["moments"][1]),
                   intersection_sum_numpy=ref["isum"], max_abs_error=errs, verified_against_numpy=True)
        for ph in PHASES:
            rec[ph] = dict(wall_s=phases[BANK][ph]["wall_s"],
                           tcp_bytes_sent_per_party=[phases[r][ph]["tcp_bytes_sent"] for r in range(WORLD)])
            for k in ("payload_bytes_sent", "spu_payload_bytes_sent", "spu_send_actions"):
                if k in phases[BANK][ph]:
                    rec[ph][k + "_per_party"] = [phases[r][ph][k] for r in range(WORLD)]
        rec["input"]["rounds"] = 1
        rec["reveal"]["rounds"] = 1
        rec["compute"]["rounds"] = None
        rec["setup"]["rounds"] = None
        recs.append(rec)
    for proto, why in skipped.items():
        recs.append(dict(phase="psi" if proto in PSI_PROTOCOLS else "spu", protocol=proto,
                         rows_per_party=n, common=common, skipped=why))
    return recs


def table(recs):
    lines = [
        "| rows/party | common | phase | protocol | wall s | sent bank / retailer (MiB or B, TCP) | rounds | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    psi = {}
    for r in recs:
        head = f"| {r['rows_per_party']:,} | {r['common']:,} |"
        if "skipped" in r:
            lines.append(f"{head} {r['phase'].upper()} | {r['protocol']} | {r['skipped']} | | | |")
            continue
        if r["phase"] == "psi":
            psi.setdefault(r["rows_per_party"], []).append(r)
            lines.append(f"{head} PSI | {r['protocol']} | {r['wall_s']:.3f} | "
                         f"{fmt_bytes_list(r['tcp_bytes_sent_per_party'])} | n/a | "
                         f"{r['psi_report_bank']['intersection_count']:,} ids, both learn them |")
            continue
        lines.append(f"{head} load PSI output | local | {r['load_s_bank']:.3f} | 0 / 0 | 0 | CSV to numpy |")
        for ph in PHASES:
            p = r[ph]
            rounds = str(p["rounds"]) if p["rounds"] is not None else "n/a"
            note = ""
            if ph == "setup":
                note = f"first Run, {WARMUP_ROWS} rows, same program"
            if ph == "compute":
                note = (f"SPU payload {fmt_bytes_list(p['spu_payload_bytes_sent_per_party'])}, "
                        f"{' / '.join(map(str, p['spu_send_actions_per_party']))} send actions")
            lines.append(f"{head} SPU {ph} | {r['protocol']} {r['field']} | {p['wall_s']:.3f} | "
                         f"{fmt_bytes_list(p['tcp_bytes_sent_per_party'])} | {rounds} | {note} |")
        spu_wall = sum(r[ph]["wall_s"] for ph in PHASES)
        spu_bytes = [sum(r[ph]["tcp_bytes_sent_per_party"][i] for ph in PHASES)
                     for i in range(WORLD)]
        for pr in psi.get(r["rows_per_party"], []):
            wall = pr["wall_s"] + r["load_s_bank"] + spu_wall
            sent = [pr["tcp_bytes_sent_per_party"][i] + spu_bytes[i] for i in range(WORLD)]
            lines.append(f"{head} **total** | {pr['protocol']} + {r['protocol']} | **{wall:.3f}** | "
                         f"{fmt_bytes_list(sent)} | n/a | r = {r['correlation']:.6f} "
                         f"(numpy {r['correlation_numpy']:.6f}) |")
    return "\n".join(lines)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="1000,65536,1048576", help="rows per party, increasing")
    ap.add_argument("--common-frac", type=float, default=0.5, help="fraction of each party's rows that are common")
    ap.add_argument("--psi", default="ECDH,RR22", help="PSI protocols, from " + ",".join(PSI_PROTOCOLS))
    ap.add_argument("--spu", default="SEMI2K-TFP,CHEETAH", help="SPU protocols, from " + ",".join(SPU_PROTOCOLS))
    ap.add_argument("--field", default="FM128", choices=sorted(FIELD_BITS))
    ap.add_argument("--fxp-bits", type=int, default=None, help="fixed-point fraction bits (SPU's default for the field)")
    ap.add_argument("--run-limit-s", type=float, default=600,
                    help="a protocol whose run at the next size is predicted (linearly) over this is not run")
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--keep-logs", action="store_true")
    a = ap.parse_args()
    a.rows = [int(x) for x in a.rows.split(",") if x]
    a.psi = [p.strip().upper() for p in a.psi.split(",") if p.strip()]
    a.spu = [p.strip().upper() for p in a.spu.split(",") if p.strip()]
    if a.rows != sorted(a.rows) or any(not (16 <= n <= MAX_ROWS) for n in a.rows):
        sys.exit(f"--rows must be increasing, each in 16..{MAX_ROWS}")
    if not (0 < a.common_frac <= 1) or not (1 <= a.run_limit_s <= MAX_LIMIT_S):
        sys.exit(f"--common-frac in (0, 1], --run-limit-s in [1, {MAX_LIMIT_S}]")
    if any(p not in PSI_PROTOCOLS for p in a.psi) or any(p not in SPU_PROTOCOLS for p in a.spu):
        sys.exit(f"--psi from {PSI_PROTOCOLS}, --spu from {SPU_PROTOCOLS}")
    if any(int(round(n * a.common_frac)) < 2 * BANDS for n in a.rows):
        sys.exit(f"every size needs at least {2 * BANDS} common rows")
    a.fxp_bits = DEFAULT_FXP_BITS[a.field] if a.fxp_bits is None else a.fxp_bits
    if not (8 <= a.fxp_bits <= FIELD_BITS[a.field] // 2 - 8):
        sys.exit("--fxp-bits out of range for the field")
    return a


def main():
    a = parse_args()
    import spu

    info = machine_info()
    info.update(spu=spu.__version__, numpy=np.__version__, python=platform.python_version())
    print("# SPU comparison: Unseen vertical statistics (PSI, then SPU)")
    print()
    print(f"- machine: nproc={info['nproc']}, CPU: {info['cpu']}, RAM {info['mem_gib']} GiB")
    print(f"- SPU {info['spu']} (numpy {info['numpy']}, Python {info['python']})")
    print(f"- mode: REAL 2-process PSI and SPU, brpc link on {LOOPBACK} only; field {a.field}, "
          f"{a.fxp_bits} fraction bits; one run per measurement; SPU one-time set-up is its own phase")
    print(json.dumps({"machine": info, "args": {k: v for k, v in vars(a).items()}}))
    sys.stdout.flush()

    workroot = tempfile.mkdtemp(prefix="spu-vertical-")
    history, recs, ok = {}, [], False
    try:
        for n in a.rows:
            common = int(round(n * a.common_frac))
            t = time.perf_counter()
            data = gen_data(a.seed, n, common)
            ref = plain_join_stats(data)
            todo, skipped = plan_size(n, a, history, ref)
            workdir = os.path.join(workroot, f"n{n}")
            os.makedirs(workdir)
            plan = dict(n=n, workdir=workdir, inputs=write_csvs(data, workdir), field=a.field,
                        fxp_bits=a.fxp_bits, psi=todo["psi"], spu=todo["spu"],
                        link_timeout_s=a.run_limit_s + 120, psi_ports=free_ports(WORLD),
                        spu_ports={p: free_ports(WORLD) for p in todo["spu"]},
                        exe=b"", exe_warmup=b"")
            if todo["spu"]:
                plan["exe"], plan["exe_warmup"] = compile_program(ref["count"])
            del data
            print(f"- {n:,} rows/party, {common:,} common: data, CSVs, plain join and compile "
                  f"{time.perf_counter() - t:.1f} s (not timed below)")
            sys.stdout.flush()
            per = {}
            if todo["psi"]:
                # every run is predicted under the limit (or is the first size)
                deadline = (len(todo["psi"]) + len(todo["spu"])) * (a.run_limit_s + 60) + 300
                t = time.perf_counter()
                per = run_size(plan, workroot, deadline)
                print(f"- {n:,} rows/party: both parties finished in {time.perf_counter() - t:.1f} s (incl. start-up)")
            for rec in records_for_size(n, common, per, ref, plan, skipped, history):
                recs.append(rec)
                print(json.dumps(rec))
            sys.stdout.flush()
            shutil.rmtree(workdir, ignore_errors=True)
        ok = True
    finally:
        if ok and not a.keep_logs:
            shutil.rmtree(workroot, ignore_errors=True)
        elif not ok:
            print(f"!! FAILED; party logs kept in {workroot}", file=sys.stderr)

    print()
    print(table(recs))
    print()
    print("All results matched numpy on the plain join (tolerances in README).")


if __name__ == "__main__":
    main()
