#!/usr/bin/env python3
"""HTTPS: nora against CNCF distribution, both terminating TLS themselves,
and nora over plain HTTP beside them for what TLS costs.

For each round the three servers run in turn (the order rotates), each on
fresh storage with the same self-signed ECDSA P-256 certificate:
  push / pull  skopeo copy of the 1 x 256 MiB image (BENCH_BIG) up, then
               down into a fresh dir: (median of 3)
  manifest GET wrk -t2 -c32 -d10s over https:// (req/s, p99)
  blob GET     the same load on one 4 MiB layer (MiB/s)
  peak RSS     over all of it
Prints the medians over the rounds and the per-round ratios nora/peer.

Usage: tls.py --nora BIN [--peer BIN] [--peer-config YML] [--rounds N]
Env: as bench.py (BENCH_BIG, BENCH_MULTI, BENCH_WRK_SECONDS, BENCH_WORK).
"""
import argparse, os, shutil, statistics, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def certificate(work):
    cert, key = os.path.join(work, "tls.crt"), os.path.join(work, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def one_run(server, images):
    server.start()
    server.phase()
    m = {"push_s": bench.push(images["big"], server, "big")}
    bench.push(images["multi"], server, "multi")
    pulls = []
    for _ in range(3):
        dst = os.path.join(bench.WORK, "pull"); shutil.rmtree(dst, ignore_errors=True)
        pulls.append(bench.skopeo(f"docker://{server.url()}/bench/big:v1", f"dir:{dst}"))
    m["pull_s"] = statistics.median(pulls)
    m["manifest_rps"], m["manifest_p99_ms"], _ = bench.wrk(server.base("/v2/bench/multi/manifests/v1"))
    layers, _ = bench.image_layers(images["multi"])
    _, _, m["blob_mib_s"] = bench.wrk(server.base(f"/v2/bench/multi/blobs/{layers[0]['digest']}"))
    m["peak_rss_mib"] = server.status("VmHWM") / 1024
    server.stop()
    shutil.rmtree(server.data, ignore_errors=True)
    return m


ROWS = [("push 1 x 256 MiB (s)", "push_s"), ("pull 1 x 256 MiB (s)", "pull_s"),
        ("manifest GET (req/s)", "manifest_rps"), ("manifest GET p99 (ms)", "manifest_p99_ms"),
        ("4 MiB blob GET (MiB/s)", "blob_mib_s"), ("peak RSS (MiB)", "peak_rss_mib")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nora", required=True)
    ap.add_argument("--peer", default="/usr/bin/docker-registry")
    ap.add_argument("--peer-config", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                          "distribution.yml"))
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    os.makedirs(bench.WORK, exist_ok=True)
    images = {"big": os.path.join(bench.WORK, f"img-big-{bench.BIG_MIB}"),
              "multi": os.path.join(bench.WORK, f"img-multi-{bench.MULTI}")}
    print("building test images ...", file=sys.stderr)
    bench.make_image(images["big"], 1, bench.BIG_MIB << 20)
    bench.make_image(images["multi"], bench.MULTI, 4 << 20)
    tls = certificate(bench.WORK)
    servers = {
        "nora": bench.Server("nora", [a.nora, "serve"], os.path.join(bench.WORK, "data-nora"), tls),
        "peer": bench.Server("peer", [a.peer, "serve", a.peer_config], os.path.join(bench.WORK, "data-peer"), tls),
        "plain": bench.Server("nora", [a.nora, "serve"], os.path.join(bench.WORK, "data-plain")),
    }
    names = list(servers)
    runs = []
    for rnd in range(a.rounds):
        r = {}
        for name in names[rnd % 3:] + names[:rnd % 3]:
            print(f"round {rnd + 1}/{a.rounds}: {name} ...", file=sys.stderr)
            try:
                r[name] = one_run(servers[name], images)
            finally:
                servers[name].stop()
        runs.append(r)

    med = lambda name, key: statistics.median(r[name][key] for r in runs)
    ratio = lambda key: statistics.median(r["nora"][key] / r["peer"][key] for r in runs)
    print(f"\n{a.rounds} rounds, medians; ratio = nora / distribution, median of the rounds' ratios\n")
    print("| metric | nora https | distribution https | ratio | nora http |")
    print("|---|---|---|---|---|")
    for label, key in ROWS:
        print(f"| {label} | {med('nora', key):,.2f} | {med('peer', key):,.2f} | {ratio(key):.2f} | "
              f"{med('plain', key):,.2f} |")


if __name__ == "__main__":
    main()
