#!/usr/bin/env python3
"""Registry benchmark: nora against CNCF distribution, same machine, same run.

For each round, each server (alternating, so machine noise hits both) starts
on fresh storage and is measured:
  startup      spawn -> first `GET /v2/` answered (median of 5 starts)
  idle RSS     VmRSS 2 s after startup
  push         skopeo copy of a 1 x 256 MiB image and of a 20 x 4 MiB image
               (server CPU and peak RSS over the phase; its wall times are
               shown as "runs apart", without a target)
  pull         the same images into a fresh dir: target, median of 5 (server
               CPU and peak RSS over the phase; wall times "runs apart" too)
  in turn      after both runs: each image pushed to the two servers in turn
               (A B B A ..., PAIRS times each, each push onto empty storage),
               then pulled from them in turn: the push and pull wall figures
               and their ratio, the median of the per-pair ratios
  manifest GET wrk -t2 -c32 -d10s (req/s, p99)
  blob GET     the same load on one 4 MiB layer (MiB/s)
  1 GiB push   one 1 GiB blob streamed in a single POST (peak RSS of the server)
Peak RSS is VmHWM, reset at each phase start through /proc/PID/clear_refs.
Prints a markdown table: medians of each server, the median of the per-round
ratios nora/peer, the target, and whether it holds.

Usage: bench.py --nora BIN --peer BIN --peer-config YML [--rounds N] [--json OUT]
Env: BENCH_BIG (MiB, 256), BENCH_MULTI (layers, 20), BENCH_WRK_SECONDS (10),
     BENCH_HUGE (MiB, 1024), BENCH_PAIRS (6), BENCH_WORK (scratch dir,
     /tmp/nora-bench).
"""
import argparse, gzip, hashlib, http.client, io, json, os, re, shutil, signal
import ssl, statistics, subprocess, sys, tarfile, time

from ports import free_port

WORK = os.environ.get("BENCH_WORK", "/tmp/nora-bench")
BIG_MIB = int(os.environ.get("BENCH_BIG", "256"))
MULTI = int(os.environ.get("BENCH_MULTI", "20"))
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "10"))
HUGE_MIB = int(os.environ.get("BENCH_HUGE", "1024"))
PAIRS = int(os.environ.get("BENCH_PAIRS", "6"))
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
TICK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- test images

class Hashing(io.RawIOBase):
    """A file wrapper that hashes and counts what is written through it."""
    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0
    def writable(self):
        return True
    def write(self, b):
        self.f.write(b); self.h.update(b); self.n += len(b); return len(b)


def make_layer(blobs, size):
    """A gzip (level 0: no client-side compression cost) tar of one random file."""
    tmp = os.path.join(blobs, ".layer")
    with open(tmp, "wb") as raw:
        outer = Hashing(raw)
        with gzip.GzipFile(fileobj=outer, mode="wb", compresslevel=0, mtime=0) as gz:
            inner = Hashing(gz)
            with tarfile.open(fileobj=inner, mode="w|") as tar:
                info = tarfile.TarInfo("data.bin"); info.size = size
                r, w = os.pipe()
                # Feed random bytes through a pipe so nothing is held whole.
                pid = os.fork()
                if pid == 0:
                    os.close(r); left = size
                    while left:
                        n = min(left, 1 << 20); os.write(w, os.urandom(n)); left -= n
                    os._exit(0)
                os.close(w)
                with os.fdopen(r, "rb") as src:
                    tar.addfile(info, src)
                os.waitpid(pid, 0)
    digest = outer.h.hexdigest()
    os.rename(tmp, os.path.join(blobs, digest))
    return {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": "sha256:" + digest, "size": outer.n}, "sha256:" + inner.h.hexdigest()


def write_blob(blobs, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def make_image(path, layers, size):
    if os.path.exists(os.path.join(path, "index.json")):
        return
    shutil.rmtree(path, ignore_errors=True)
    blobs = os.path.join(path, "blobs", "sha256"); os.makedirs(blobs)
    descs, diff_ids = zip(*[make_layer(blobs, size) for _ in range(layers)])
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": list(diff_ids)}}).encode()
    cd, cs = write_blob(blobs, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                           "layers": list(descs)}).encode()
    md, ms = write_blob(blobs, manifest)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, f)


def image_layers(path):
    idx = json.load(open(os.path.join(path, "index.json")))
    md = idx["manifests"][0]["digest"].split(":")[1]
    return json.load(open(os.path.join(path, "blobs", "sha256", md)))["layers"], "sha256:" + md


# ---------------------------------------------------------------- the server


class Server:
    """One registry process. `tls`: (certificate, key) files to serve HTTPS with."""
    def __init__(self, kind, args, data, tls=None):
        self.kind, self.args, self.data, self.port, self.proc = kind, args, data, free_port(), None
        self.tls = tls

    def env(self):
        e = dict(os.environ)
        e.pop("NORA_CONFIG", None)
        if self.kind == "nora":
            e.update(NORA_HOST="127.0.0.1", NORA_PORT=str(self.port), NORA_STORAGE_PATH=self.data,
                     NORA_LOG_LEVEL="warn")
            if self.tls:
                e.update(NORA_TLS_CERT=self.tls[0], NORA_TLS_KEY=self.tls[1])
        else:
            e.update(REGISTRY_HTTP_ADDR=f"127.0.0.1:{self.port}",
                     REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=self.data)
            if self.tls:
                e.update(REGISTRY_HTTP_TLS_CERTIFICATE=self.tls[0], REGISTRY_HTTP_TLS_KEY=self.tls[1])
        return e

    def connection(self, timeout):
        if self.tls:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=ssl._create_unverified_context())
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def base(self, path=""):
        """The URL of `path`, with its scheme (url() is host:port for image references)."""
        return ("https://" if self.tls else "http://") + self.url(path)

    def start(self):
        shutil.rmtree(self.data, ignore_errors=True); os.makedirs(self.data)
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.args, env=self.env(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        while True:
            try:
                c = self.connection(1)
                c.request("GET", "/v2/"); st = c.getresponse().status; c.close()
                if st in (200, 401):
                    return (time.perf_counter() - t0) * 1000
            except OSError:
                pass
            if self.proc.poll() is not None:
                sys.exit(f"{self.kind} exited at startup")
            if time.perf_counter() - t0 > 20:
                sys.exit(f"{self.kind} did not answer in 20 s")
            time.sleep(0.001)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill(); self.proc.wait()

    def status(self, key):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def cpu(self):
        f = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK

    def phase(self):
        """Starts a phase: resets the peak RSS; returns the CPU seconds so far."""
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5")
        return self.cpu()

    def url(self, path=""):
        return f"127.0.0.1:{self.port}{path}"


# ---------------------------------------------------------------- measurements

def push(image, server, name):
    return skopeo(f"oci:{image}:v1", f"docker://{server.url()}/bench/{name}:v1")


def skopeo(src, dst):
    t = time.perf_counter()
    subprocess.run(["skopeo", "copy", "-q", "--insecure-policy", "--src-tls-verify=false",
                    "--dest-tls-verify=false", src, dst], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def wrk(url):
    """req/s, p99 (ms) and MiB/s of wrk's load on `url` (host:port/path, or with its scheme)."""
    if "://" not in url:
        url = "http://" + url
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{WRK_SECONDS}s", "--latency", "-H", f"Accept: {ACCEPT}",
                          url], capture_output=True, text=True, check=True).stdout
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    tr = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", out)
    mib = float(tr.group(1)) * {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1, "GB": 1024}[tr.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        sys.exit(f"wrk on {url}: {non2xx.group(1)} error responses")
    return rps, float(p99.group(1)) * unit[p99.group(2)], mib


def push_huge(server, path, digest):
    """One blob of BENCH_HUGE MiB in a single streamed POST ?digest=."""
    c = server.connection(600)
    size = os.path.getsize(path)
    if server.kind == "nora":
        target = f"/v2/bench/huge/blobs/uploads/?digest={digest}"
        method = "POST"
    else:  # distribution 2.8 has no single-POST upload: open a session, then PUT.
        c.request("POST", "/v2/bench/huge/blobs/uploads/", headers={"Content-Length": "0"})
        r = c.getresponse(); r.read()
        loc = r.getheader("Location"); loc = loc[loc.index("/v2/"):]
        target = f"{loc}{'&' if '?' in loc else '?'}digest={digest}"
        method = "PUT"
    t = time.perf_counter()
    with open(path, "rb") as f:
        c.request(method, target, body=f, headers={"Content-Length": str(size),
                                                   "Content-Type": "application/octet-stream"})
        r = c.getresponse(); r.read()
    if r.status != 201:
        sys.exit(f"{server.kind}: 1 GiB push answered {r.status}")
    return time.perf_counter() - t


def one_run(server, images, huge):
    # Flush dirty pages first: a backlog of writeback (the test images, the
    # previous server's data) would throttle this server's writes.
    os.sync()
    m = {}
    starts = [server.start()]
    for _ in range(4):
        server.stop(); starts.append(server.start())
    m["startup_ms"] = statistics.median(starts)
    time.sleep(2)
    m["idle_rss_mib"] = server.status("VmRSS") / 1024
    peaks = []

    cpu = server.phase()
    for name in ("big", "multi"):
        m[f"push_{name}_solo_s"] = push(images[name], server, name)
    m["push_cpu_s"] = server.cpu() - cpu
    peaks.append(server.status("VmHWM"))

    cpu = server.phase()
    for name in ("big", "multi"):
        runs = []
        for i in range(5):
            dst = os.path.join(WORK, "pull"); shutil.rmtree(dst, ignore_errors=True)
            runs.append(skopeo(f"docker://{server.url()}/bench/{name}:v1", f"dir:{dst}"))
        m[f"pull_{name}_solo_s"] = statistics.median(runs)
    m["pull_cpu_s"] = server.cpu() - cpu
    peaks.append(server.status("VmHWM"))

    server.phase()
    m["manifest_rps"], m["manifest_p99_ms"], _ = wrk(server.url("/v2/bench/multi/manifests/v1"))
    peaks.append(server.status("VmHWM"))
    layers, _ = image_layers(images["multi"])
    server.phase()
    _, _, m["blob_mib_s"] = wrk(server.url(f"/v2/bench/multi/blobs/{layers[0]['digest']}"))
    peaks.append(server.status("VmHWM"))

    server.phase()
    m["huge_push_s"] = push_huge(server, *huge)
    m["huge_push_peak_rss_mib"] = server.status("VmHWM") / 1024
    peaks.append(server.status("VmHWM"))
    m["peak_rss_mib"] = max(peaks) / 1024
    server.stop()
    shutil.rmtree(server.data, ignore_errors=True)
    return m


def turns():
    """A B B A ...: PAIRS turns each, every pair in the same seconds."""
    for i in range(PAIRS):
        yield from (("nora", "peer") if i % 2 == 0 else ("peer", "nora"))


def paired(servers, images):
    """Push and pull wall times taken in turn from the two servers.

    A push or a pull is mostly skopeo's work (hashing, writing and, for a
    pull, fsyncing what it reads; the server's share is a tenth of its CPU),
    so two good servers are a few percent apart, while this host drifts by
    20-30% between the minutes one server's run and the other's take. Taking
    the two in turn puts every pair in the same seconds, and the ratio of
    each pair cancels the drift. Each push goes to its server restarted on
    empty storage (so every byte is uploaded), after a sync (so neither
    inherits the other's writeback). Returns ({kind: {metric: median}},
    {metric: median of the per-pair ratios nora/peer},
    {metric: {kind: [every wall time, in pair order]}})."""
    raw = {}
    try:
        for name in ("big", "multi"):
            times = raw[f"push_{name}_s"] = {"nora": [], "peer": []}
            for kind in turns():
                s = servers[kind]
                s.stop(); s.start(); os.sync()
                times[kind].append(push(images[name], s, name))
        for s in servers.values():
            s.stop(); s.start()
            for name in ("big", "multi"):
                push(images[name], s, name)
        os.sync()
        for name in ("big", "multi"):
            times = raw[f"pull_{name}_s"] = {"nora": [], "peer": []}
            for kind in turns():
                dst = os.path.join(WORK, "pull"); shutil.rmtree(dst, ignore_errors=True)
                times[kind].append(skopeo(f"docker://{servers[kind].url()}/bench/{name}:v1", f"dir:{dst}"))
    finally:
        for s in servers.values():
            s.stop()
            shutil.rmtree(s.data, ignore_errors=True)
    medians = {kind: {key: statistics.median(t[kind]) for key, t in raw.items()} for kind in ("nora", "peer")}
    ratios = {key: statistics.median(pair_ratios(t)) for key, t in raw.items()}
    return medians, ratios, raw


# ---------------------------------------------------------------- report

# (metric, label, target ratio or absolute check, lower is better)
ROWS = [
    ("startup_ms", "startup (ms)", ("ratio<=", 0.7)),
    ("idle_rss_mib", "idle RSS (MiB)", ("abs<", 12)),
    ("manifest_rps", "manifest GET (req/s)", ("ratio>=", 10)),
    ("manifest_p99_ms", "manifest GET p99 (ms)", ("abs<", 8)),
    ("blob_mib_s", "4 MiB blob GET (MiB/s)", ("ratio>=", 1)),
    ("push_cpu_s", "server CPU, push (s)", ("ratio<=", 0.5)),
    ("pull_cpu_s", "server CPU, pull (s)", ("ratio<=", 1)),
    ("push_big_s", f"push 1 x {BIG_MIB} MiB (s)", ("ratio<=", 1)),
    ("push_multi_s", f"push {MULTI} x 4 MiB (s)", ("ratio<=", 1)),
    ("pull_big_s", f"pull 1 x {BIG_MIB} MiB (s)", ("ratio<=", 1)),
    ("pull_multi_s", f"pull {MULTI} x 4 MiB (s)", ("ratio<=", 1)),
    ("peak_rss_mib", "peak RSS, all phases (MiB)", ("abs<", 40)),
    ("huge_push_peak_rss_mib", f"peak RSS, {HUGE_MIB} MiB blob push (MiB)", ("abs<", 40)),
    ("huge_push_s", f"push 1 blob of {HUGE_MIB} MiB (s)", None),
    ("push_big_solo_s", f"push 1 x {BIG_MIB} MiB, runs apart (s)", None),
    ("push_multi_solo_s", f"push {MULTI} x 4 MiB, runs apart (s)", None),
    ("pull_big_solo_s", f"pull 1 x {BIG_MIB} MiB, runs apart (s)", None),
    ("pull_multi_solo_s", f"pull {MULTI} x 4 MiB, runs apart (s)", None),
]


def round_ratio(run, key):
    """nora/peer inside one round: the pairs' own ratio where there is one."""
    if key in run.get("pair_ratio", {}):
        return run["pair_ratio"][key]
    return run["nora"][key] / run["peer"][key] if run["peer"][key] else None


def report(runs):
    print("| metric | nora | distribution | ratio | target | |")
    print("|---|---|---|---|---|---|")
    ok_all = True
    for key, label, target in ROWS:
        ours = statistics.median(r["nora"][key] for r in runs)
        peer = statistics.median(r["peer"][key] for r in runs)
        ratio = statistics.median(x for x in (round_ratio(r, key) for r in runs) if x is not None)
        verdict, tdesc = "", ""
        if target:
            kind, v = target
            if kind == "ratio<=":
                ok, tdesc = ratio <= v, f"<= {v}x"
            elif kind == "ratio>=":
                ok, tdesc = ratio >= v, f">= {v}x"
            else:
                ok, tdesc = ours < v, f"< {v}"
            verdict = "ok" if ok else "**missed**"
            ok_all &= ok
        fmt = (lambda x: f"{x:,.0f}") if ours >= 100 else (lambda x: f"{x:.2f}")
        print(f"| {label} | {fmt(ours)} | {fmt(peer)} | {ratio:.2f} | {tdesc} | {verdict} |")
    pooled_pairs(runs)
    return ok_all


def pair_ratios(times):
    """nora/peer of each pair, from {kind: [wall times in pair order]}."""
    return [a / b for a, b in zip(times["nora"], times["peer"])]


def pooled_pairs(runs):
    """Every pair of every round together: one pair varies by about 10%, so a
    difference of a few percent shows only in the mean over many pairs, with
    its standard error."""
    for key in runs[0].get("pairs", {}) if runs else ():
        ratios = [x for r in runs for x in pair_ratios(r["pairs"][key])]
        if len(ratios) < 2:
            continue
        mean, sd = statistics.mean(ratios), statistics.stdev(ratios)
        print(f"\n{key}: {len(ratios)} pairs, ratio median {statistics.median(ratios):.3f}, "
              f"mean {mean:.3f} +- {sd / len(ratios) ** 0.5:.3f} (standard error; sd {sd:.3f})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nora", required=True)
    ap.add_argument("--peer", required=True)
    ap.add_argument("--peer-config", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    images = {"big": os.path.join(WORK, f"img-big-{BIG_MIB}"), "multi": os.path.join(WORK, f"img-multi-{MULTI}")}
    print("building test images ...", file=sys.stderr)
    make_image(images["big"], 1, BIG_MIB << 20)
    make_image(images["multi"], MULTI, 4 << 20)
    huge_path = os.path.join(WORK, f"huge-{HUGE_MIB}.bin")
    if not os.path.exists(huge_path):
        with open(huge_path + ".tmp", "wb") as f:
            for _ in range(HUGE_MIB):
                f.write(os.urandom(1 << 20))
        os.rename(huge_path + ".tmp", huge_path)
    h = hashlib.sha256()
    with open(huge_path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    huge = (huge_path, "sha256:" + h.hexdigest())

    servers = {"nora": Server("nora", [a.nora, "serve"], os.path.join(WORK, "data-nora")),
               "peer": Server("peer", [a.peer, "serve", a.peer_config], os.path.join(WORK, "data-peer"))}
    runs = []
    for rnd in range(a.rounds):
        order = ["nora", "peer"] if rnd % 2 == 0 else ["peer", "nora"]
        r = {}
        for name in order:
            print(f"round {rnd + 1}/{a.rounds}: {name} ...", file=sys.stderr)
            try:
                r[name] = one_run(servers[name], images, huge)
            finally:
                servers[name].stop()
        print(f"round {rnd + 1}/{a.rounds}: pushes and pulls in turn ...", file=sys.stderr)
        medians, r["pair_ratio"], r["pairs"] = paired(servers, images)
        for name in ("nora", "peer"):
            r[name].update(medians[name])
        runs.append(r)
    ok = report(runs)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(runs, f, indent=2)
    sys.exit(0 if ok else 3)


if __name__ == "__main__":
    main()
