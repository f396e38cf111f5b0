#!/usr/bin/env python3
"""Operations benchmark (issue: ops toolkit): a store of 10,000 blobs and
1,000 tagged manifests, then
  - `nora images ls` wall time, on storage and through --url (target < 300 ms);
  - `nora gc` wall time with garbage to collect (target < 10 s);
  - manifest GET p99 under wrk while gc runs in a loop, versus without
    (target: at most 2x).
Usage: bench/ops.py [--nora PATH] [--images 1000] [--layers 9]
Needs python3 and wrk. Prints a markdown table; --json FILE writes the figures.
"""
import argparse, hashlib, http.client, json, os, re, shutil, socket, subprocess, sys, tempfile, threading, time

from ports import free_port

class Registry:
    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def req(self, method, path, body=None, headers=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse(); data = r.read()
        return r.status, data, r

    def push_blob(self, repo, data):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        st, body, _ = self.req("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", data,
                               {"Content-Type": "application/octet-stream"})
        assert st == 201, (st, body)
        return d, len(data)

    def push_image(self, repo, tag, seed, layers):
        config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
        cd, cs = self.push_blob(repo, config)
        ls = [self.push_blob(repo, os.urandom(1024)) for _ in range(layers)]
        m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s} for d, s in ls]}).encode()
        st, body, _ = self.req("PUT", f"/v2/{repo}/manifests/{tag}", m,
                               {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert st == 201, (st, body)
        return "sha256:" + hashlib.sha256(m).hexdigest()

def timed(cmd, runs=3):
    best = None
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        dt = time.perf_counter() - t
        if out.returncode != 0:
            sys.exit(f"{cmd}: {out.stderr}")
        best = dt if best is None else min(best, dt)
    return best, out.stdout

def wrk_p99(port, path, seconds):
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency",
                          "-H", "Accept: application/vnd.oci.image.manifest.v1+json",
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True).stdout
    def ms(v, unit):
        return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return ms(*m.groups()), float(rps.group(1))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nora", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "nora"))
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--layers", type=int, default=9)
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--json")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="nora-ops-bench.")
    data = os.path.join(work, "data")
    port = free_port()
    env = dict(os.environ, NORA_HOST="127.0.0.1", NORA_PORT=str(port), NORA_STORAGE_PATH=data,
               NORA_LOG_LEVEL="warn", NORA_STORAGE_FSYNC="false")
    env.pop("NORA_CONFIG", None)
    server = subprocess.Popen([a.nora, "serve"], env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close(); break
            except OSError:
                time.sleep(0.05)
        reg = Registry(port)
        t = time.perf_counter()
        digests = []
        for i in range(a.images):
            digests.append((f"bench/r{i % 50}", reg.push_image(f"bench/r{i % 50}", f"t{i}", i, a.layers)))
        build = time.perf_counter() - t
        blobs = a.images * (1 + a.layers)
        print(f"store: {a.images} manifests, {blobs} blobs, built in {build:.1f} s", file=sys.stderr)
        # A tenth of the images become garbage.
        for repo, d in digests[::10]:
            st, body, _ = reg.req("DELETE", f"/v2/{repo}/manifests/{d}")
            assert st == 202, (st, body)
        cli = [a.nora, "--data-dir", data]
        url = [a.nora, "--url", f"http://127.0.0.1:{port}"]
        ls_local, out = timed(cli + ["images", "ls", "-o", "json"])
        rows = len(json.loads(out))
        ls_url, _ = timed(url + ["images", "ls", "-o", "json"])
        ls_table, _ = timed(cli + ["images", "ls"])
        base_p99, base_rps = wrk_p99(port, "/v2/bench/r1/manifests/t1", a.wrk_seconds)
        # gc with garbage to collect (the first run), then gc runs in a loop under load.
        t = time.perf_counter()
        first = json.loads(subprocess.run(url + ["gc", "--yes", "--grace", "0s", "-o", "json"],
                                          capture_output=True, text=True, check=True).stdout)
        gc_wall = time.perf_counter() - t
        stop = threading.Event(); runs = [0]
        def gc_loop():
            while not stop.is_set():
                subprocess.run(url + ["gc", "--yes", "--grace", "0s", "-q"], capture_output=True)
                runs[0] += 1
        th = threading.Thread(target=gc_loop); th.start()
        gc_p99, gc_rps = wrk_p99(port, "/v2/bench/r1/manifests/t1", a.wrk_seconds)
        stop.set(); th.join()
    finally:
        server.terminate(); server.wait()
        shutil.rmtree(work, ignore_errors=True)
    res = {
        "manifests": a.images, "blobs": blobs, "rows": rows,
        "images_ls_local_ms": ls_local * 1000, "images_ls_url_ms": ls_url * 1000, "images_ls_table_ms": ls_table * 1000,
        "gc_wall_s": gc_wall, "gc_blobs_scanned": first["blobs_scanned"], "gc_blobs_removed": first["blobs_removed"],
        "manifest_get_p99_ms": base_p99, "manifest_get_rps": base_rps,
        "manifest_get_p99_during_gc_ms": gc_p99, "manifest_get_rps_during_gc": gc_rps, "gc_runs_during_wrk": runs[0],
    }
    print(f"| figure | value | target |\n|---|---|---|")
    print(f"| store | {a.images} manifests, {blobs} blobs | 1,000 / 10,000 |")
    print(f"| `images ls` on storage ({rows} tags, JSON) | {ls_local*1000:.0f} ms | < 300 ms |")
    print(f"| `images ls` on storage (table) | {ls_table*1000:.0f} ms | < 300 ms |")
    print(f"| `images ls --url` | {ls_url*1000:.0f} ms | < 300 ms |")
    print(f"| `gc` wall (scanned {first['blobs_scanned']}, removed {first['blobs_removed']}) | {gc_wall:.2f} s | < 10 s |")
    print(f"| manifest GET p99 without / during gc | {base_p99:.2f} / {gc_p99:.2f} ms ({gc_p99/base_p99:.2f}x; {runs[0]} gc runs) | <= 2x |")
    print(f"| manifest GET req/s without / during gc | {base_rps:,.0f} / {gc_rps:,.0f} | |")
    if a.json:
        with open(a.json, "w") as f: json.dump(res, f, indent=2)

if __name__ == "__main__":
    main()
