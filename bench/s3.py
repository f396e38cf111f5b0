#!/usr/bin/env python3
"""nora on S3 against the direct S3 path, same S3 server, same run.

Starts s3s-fs (on disk) on a scratch dir, then a release nora on it, and per
round (alternating, so machine noise hits both):
  push  256 MiB: nora   POST + one PATCH streaming the file + PUT ?digest=
                        (what skopeo and podman send for a layer)
                 direct boto3 upload_file to the same server (multipart)
  pull  256 MiB: nora   GET of the blob; direct boto3 download_fileobj
Then one 1 GiB blob pushed through a fresh nora, with its peak RSS (VmHWM);
the peak RSS of the rounds' process and its RSS idle after them are printed
too; then 8 pulls of the 256 MiB blob at once on a fresh nora: wall time, peak
RSS and RSS idle after.
Prints a markdown table: medians, the median of per-round ratios, targets.

Usage: bench/s3.py --nora target/release/nora [--rounds 3]
Env: BENCH_BIG (MiB, 256), BENCH_HUGE (MiB, 1024), BENCH_PARALLEL (8), BENCH_WORK (/tmp/nora-s3-bench).
Needs s3s-fs (cargo install s3s-fs@0.14.1 --features binary) and boto3.
"""
import argparse, hashlib, http.client, os, shutil, socket, statistics, subprocess, sys, threading, time

from ports import free_port, wait_port

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

WORK = os.environ.get("BENCH_WORK", "/tmp/nora-s3-bench")
BIG = int(os.environ.get("BENCH_BIG", "256"))
HUGE = int(os.environ.get("BENCH_HUGE", "1024"))
PARALLEL = int(os.environ.get("BENCH_PARALLEL", "8"))
AK, SK = "bench-access", "bench-secret-key"


def make_file(path, mib):
    """Incompressible bytes; returns the sha256 digest."""
    if not os.path.exists(path):
        with open(path, "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def vm(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def nora_push(port, repo, path, digest):
    size = os.path.getsize(path)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", f"/v2/{repo}/blobs/uploads/")
    r = c.getresponse(); r.read()
    assert r.status == 202, r.status
    loc = r.getheader("Location")
    with open(path, "rb") as f:
        c.request("PATCH", loc, body=f, headers={"Content-Length": str(size),
                  "Content-Type": "application/octet-stream"})
        r = c.getresponse(); r.read()
    assert r.status == 202, r.status
    sep = "&" if "?" in loc else "?"
    c.request("PUT", f"{loc}{sep}digest={digest}", headers={"Content-Length": "0"})
    r = c.getresponse(); r.read()
    assert r.status == 201, (r.status)
    c.close()


def nora_pull(port, repo, digest, size):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("GET", f"/v2/{repo}/blobs/{digest}")
    r = c.getresponse()
    n = 0
    while chunk := r.read(1 << 20):
        n += len(chunk)
    assert r.status == 200 and n == size, (r.status, n)
    c.close()


class Sink:
    def __init__(self):
        self.n = 0
    def write(self, b):
        self.n += len(b)
        return len(b)


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nora", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    shutil.rmtree(f"{WORK}/s3", ignore_errors=True)
    os.makedirs(f"{WORK}/s3/bench", exist_ok=True)
    big = f"{WORK}/big.bin"
    digest = make_file(big, BIG)
    size = os.path.getsize(big)
    s3port, nport = free_port(), free_port()
    s3 = subprocess.Popen(["s3s-fs", "--host", "127.0.0.1", "--port", str(s3port),
                           "--access-key", AK, "--secret-key", SK, f"{WORK}/s3"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(s3port)
    env = dict(os.environ, NORA_PORT=str(nport), NORA_STORAGE_MODE="s3",
               NORA_S3_ENDPOINT=f"http://127.0.0.1:{s3port}", NORA_S3_BUCKET="bench",
               NORA_S3_PREFIX="nora", NORA_S3_PATH_STYLE="true", NORA_S3_ACCESS_KEY=AK,
               NORA_S3_SECRET_KEY=SK, NORA_LOG_LEVEL="warn")
    nora = subprocess.Popen([a.nora, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(nport)
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3port}",
                          aws_access_key_id=AK, aws_secret_access_key=SK,
                          region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
    cfg = TransferConfig()  # boto3's defaults: 8 MiB parts, 10 threads
    rows = {"push": [], "pull": []}
    try:
        for rnd in range(a.rounds):
            key = f"direct/{rnd}"
            d_push = timed(lambda: client.upload_file(big, "bench", key, Config=cfg))
            n_push = timed(lambda: nora_push(nport, f"bench/r{rnd}", big, digest))
            sink = Sink()
            d_pull = timed(lambda: client.download_fileobj("bench", key, sink, Config=cfg))
            assert sink.n == size
            n_pull = timed(lambda: nora_pull(nport, f"bench/r{rnd}", digest, size))
            rows["push"].append((n_push, d_push))
            rows["pull"].append((n_pull, d_pull))
            print(f"round {rnd + 1}: push nora {n_push:.2f} s direct {d_push:.2f} s; "
                  f"pull nora {n_pull:.2f} s direct {d_pull:.2f} s", file=sys.stderr)
        time.sleep(1)  # idle again: what the server keeps, not a transfer's tail
        after_pulls = vm(nora.pid, "VmRSS")
        pulls_peak = vm(nora.pid, "VmHWM")
        # The big push on a fresh process: its own peak, not the pulls'.
        nora.terminate(); nora.wait()
        nora = subprocess.Popen([a.nora, "serve"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        wait_port(nport)
        huge = f"{WORK}/huge-{HUGE}.bin"
        hd = make_file(huge, HUGE)
        hw = timed(lambda: nora_push(nport, "bench/huge", huge, hd))
        peak = vm(nora.pid, "VmHWM")
        # Many pulls at once, on a fresh process: read-ahead memory is shared
        # (storage/s3/mod.rs SPARE_PARTS), so this stays bounded.
        nora.terminate(); nora.wait()
        nora = subprocess.Popen([a.nora, "serve"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        wait_port(nport)
        failed = []
        def pull_one():
            try:
                nora_pull(nport, "bench/r0", digest, size)
            except Exception as e:  # a thread's exception would only be printed
                failed.append(e)
        pulls = [threading.Thread(target=pull_one) for _ in range(PARALLEL)]
        t = time.perf_counter()
        for th in pulls:
            th.start()
        for th in pulls:
            th.join()
        par_wall = time.perf_counter() - t
        if failed:
            sys.exit(f"parallel pulls failed: {failed[0]!r}")
        par_peak = vm(nora.pid, "VmHWM")
        time.sleep(1)
        par_idle = vm(nora.pid, "VmRSS")
    finally:
        nora.terminate(); nora.wait()
        s3.terminate(); s3.wait()
    print(f"| figure | nora on S3 | direct S3 (boto3) | ratio | target |")
    print(f"|---|---|---|---|---|")
    for name in ("push", "pull"):
        n = statistics.median(r[0] for r in rows[name])
        d = statistics.median(r[1] for r in rows[name])
        ratio = statistics.median(r[0] / r[1] for r in rows[name])
        print(f"| {name} {BIG} MiB (s) | {n:.2f} | {d:.2f} | {ratio:.2f} | <= 1.3 "
              f"{'ok' if ratio <= 1.3 else 'MISSED'} |")
    print(f"| push {HUGE} MiB blob (s) | {hw:.2f} | | | |")
    print(f"| peak RSS, {HUGE} MiB push (MiB) | {peak:.1f} | | | < 96 "
          f"{'ok' if peak < 96 else 'MISSED'} |")
    print(f"| peak RSS over the push and pull rounds / RSS idle after them (MiB) | {pulls_peak:.1f} / {after_pulls:.1f} | | | |")
    print(f"| {PARALLEL} pulls of {BIG} MiB at once: wall (s) / peak RSS / idle after (MiB) | {par_wall:.2f} / {par_peak:.1f} / {par_idle:.1f} | | | |")


if __name__ == "__main__":
    main()
