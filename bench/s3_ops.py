#!/usr/bin/env python3
"""Operations on S3 with a round trip's latency: migrate, gc, usage, backup,
restore of one store, timed per nora build.

s3s-fs answers on loopback in well under a millisecond, where a real S3 round
trip takes 10-20 ms: what costs on S3 is the number of requests made one after
the other, which loopback hides. So s3s-fs (on disk) is reached through a
proxy that holds every request DELAY ms before passing it on.

The store: IMAGES images pushed to a nora serving a directory (a config, a
layer of 1 KiB and the manifest each, tagged), plus GARBAGE blobs no manifest
names. Then, per build given (alternating, fresh prefixes each round):
  migrate  nora migrate --from DIR --to s3://bench/<run>
  gc       nora gc --dry-run --grace 0s on that store
  usage    GET /api/v1/usage of a nora serving it
  backup   nora backup --from s3://bench/<run>
  restore  nora restore of that archive --to s3://bench/<run>-restored
Prints markdown tables: median seconds per build and the ratio to the first, and
how many requests each step sent to S3 (what a real S3 bills, and what its
round trips cost, whichever server stands in for it here).

--server moto runs moto_server instead (in memory; it answers one request at
a time). The two servers differ where real S3 does not: s3s-fs walks the
whole bucket for a listing without a delimiter (tens of times the cost of a
delimited one), moto filters every key of the bucket for any listing.

Usage: bench/s3_ops.py --nora NEW [--nora OLD ...] [--rounds 1] [--server s3s-fs|moto]
Env: BENCH_IMAGES (1000), BENCH_GARBAGE (300), BENCH_DELAY_MS (15),
     BENCH_WORK (/tmp/nora-s3-ops).
Needs s3s-fs (cargo install s3s-fs@0.14.1 --features binary), or moto[server].
"""
import argparse, asyncio, hashlib, http.client, json, os, shutil, socket, statistics
import subprocess, sys, threading, time

from ports import free_port, wait_port

WORK = os.environ.get("BENCH_WORK", "/tmp/nora-s3-ops")
IMAGES = int(os.environ.get("BENCH_IMAGES", "1000"))
GARBAGE = int(os.environ.get("BENCH_GARBAGE", "300"))
DELAY = int(os.environ.get("BENCH_DELAY_MS", "15")) / 1000.0
AK, SK, BUCKET = "bench-access", "bench-secret-key", "bench"
STEPS = ["migrate", "gc", "usage", "backup", "restore"]


class Conn:
    """Whether the next bytes from the client begin a new request: they do
    once the server has answered something since the last request."""
    def __init__(self):
        self.answered = True


REQUESTS = [0]  # requests the proxy has passed on, all servers


async def pipe(reader, writer, conn, to_server):
    try:
        while data := await reader.read(1 << 16):
            if to_server and conn.answered:
                conn.answered = False
                REQUESTS[0] += 1
                await asyncio.sleep(DELAY)
            elif not to_server:
                conn.answered = True
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def start_proxy(upstream):
    """A TCP proxy on a free port holding each request DELAY before passing it."""
    port = free_port()

    async def handle(cr, cw):
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            cw.close()
            return
        conn = Conn()
        await asyncio.gather(pipe(cr, sw, conn, True), pipe(sr, cw, conn, False))

    async def serve():
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
        async with server:
            await server.serve_forever()

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
    wait_port(port)
    return port


class Registry:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def req(self, method, path, body=None, headers=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        return r.status, r.read()

    def push_blob(self, repo, data):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        st, body = self.req("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", data,
                            {"Content-Type": "application/octet-stream"})
        assert st == 201, (st, body)
        return d, len(data)

    def push_image(self, repo, tag, seed):
        config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
        cd, cs = self.push_blob(repo, config)
        ld, ls = self.push_blob(repo, os.urandom(1024))
        m = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": cd, "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": ld, "size": ls}]}).encode()
        st, body = self.req("PUT", f"/v2/{repo}/manifests/{tag}", m,
                            {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert st == 201, (st, body)


def build_store(nora, data):
    port = free_port()
    env = dict(os.environ, NORA_PORT=str(port), NORA_STORAGE_PATH=data, NORA_LOG_LEVEL="warn")
    p = subprocess.Popen([nora, "serve"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        reg = Registry(port)
        for i in range(IMAGES):
            reg.push_image(f"team-{i % 50}/app-{i}", "v1", i)
        for i in range(GARBAGE):
            reg.push_blob("garbage", os.urandom(512))
    finally:
        p.terminate()
        p.wait()


def run(cmd, env):
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {out.returncode}: {out.stderr.strip()}")
    return dt


def usage_time(nora, env):
    port = free_port()
    p = subprocess.Popen([nora, "serve"], env=dict(env, NORA_PORT=str(port)),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        t = time.perf_counter()
        c.request("GET", "/api/v1/usage")
        r = c.getresponse()
        body = r.read()
        dt = time.perf_counter() - t
        assert r.status == 200, (r.status, body)
        return dt, json.loads(body)
    finally:
        p.terminate()
        p.wait()


def one_round(nora, run_id, data, proxy):
    env = dict(os.environ, NORA_S3_ENDPOINT=f"http://127.0.0.1:{proxy}", NORA_S3_BUCKET=BUCKET,
               NORA_S3_PATH_STYLE="true", NORA_S3_ACCESS_KEY=AK, NORA_S3_SECRET_KEY=SK,
               NORA_LOG_LEVEL="warn", NO_COLOR="1")
    on_s3 = dict(env, NORA_STORAGE_MODE="s3", NORA_S3_PREFIX=run_id)
    archive = f"{WORK}/{run_id}.tar.gz"
    got, requests, mark = {}, {}, [REQUESTS[0]]

    def counted(step):
        requests[step] = REQUESTS[0] - mark[0]
        mark[0] = REQUESTS[0]

    got["migrate"] = run([nora, "migrate", "--from", data, "--to", f"s3://{BUCKET}/{run_id}",
                          "--output", "json"], env)
    counted("migrate")
    got["gc"] = run([nora, "gc", "--dry-run", "--grace", "0s", "--output", "json"], on_s3)
    counted("gc")
    got["usage"], usage = usage_time(nora, on_s3)
    counted("usage")
    got["backup"] = run([nora, "backup", "--from", f"s3://{BUCKET}/{run_id}",
                         "--file", archive, "--output", "json"], env)
    counted("backup")
    got["restore"] = run([nora, "restore", "--input", archive, "--to",
                          f"s3://{BUCKET}/{run_id}-restored", "--yes"], env)
    counted("restore")
    os.remove(archive)
    return got, requests, usage


def start_server(kind, root):
    """A fresh S3 server and a delaying proxy in front of it: (process, proxy port)."""
    port = free_port()
    if kind == "moto":
        cmd = ["moto_server", "-H", "127.0.0.1", "-p", str(port)]
    else:
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(f"{root}/{BUCKET}")
        cmd = ["s3s-fs", "--host", "127.0.0.1", "--port", str(port),
               "--access-key", AK, "--secret-key", SK, root]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    if kind == "moto":
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("PUT", f"/{BUCKET}")
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
    return server, start_proxy(port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nora", action="append", required=True,
                    help="a nora binary; give several to compare builds")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--server", choices=["s3s-fs", "moto"], default="s3s-fs")
    a = ap.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    data = f"{WORK}/data"
    build_store(a.nora[0], data)
    times = {n: {s: [] for s in STEPS} for n in a.nora}
    asked = {n: {} for n in a.nora}
    for r in range(a.rounds):
        for i, nora in enumerate(a.nora):
            # A fresh server each time: both servers slow down as the bucket grows.
            server, proxy = start_server(a.server, f"{WORK}/s3")
            try:
                got, requests, usage = one_round(nora, f"r{r}-b{i}", data, proxy)
            finally:
                server.terminate()
                server.wait()
            print(f"round {r + 1}, {nora}: " +
                  ", ".join(f"{s} {got[s]:.2f} s ({requests[s]} requests)" for s in STEPS) +
                  f" (usage: {usage.get('blobs')} blobs)", file=sys.stderr)
            for s in STEPS:
                times[nora][s].append(got[s])
                asked[nora][s] = requests[s]
    first = a.nora[0]
    print(f"\n{IMAGES} images, {GARBAGE} unreferenced blobs, S3 ({a.server}) behind "
          f"{DELAY * 1000:.0f} ms a request, median of {a.rounds} round(s), seconds; "
          f"ratio: each build's time over {first}'s\n")
    print("| step | " + " | ".join(a.nora) + " |" + (" ratio |" * (len(a.nora) - 1)))
    print("|---" * (1 + 2 * len(a.nora) - 1) + "|")
    for s in STEPS:
        med = [statistics.median(times[n][s]) for n in a.nora]
        ratios = [f" {m / med[0]:.2f} |" for m in med[1:]]
        print(f"| {s} | " + " | ".join(f"{m:.2f}" for m in med) + " |" + "".join(ratios))
    print("\nRequests to S3 (last round):\n")
    print("| step | " + " | ".join(a.nora) + " |")
    print("|---" * (1 + len(a.nora)) + "|")
    for s in STEPS:
        print(f"| {s} | " + " | ".join(f"{asked[n][s]:,}" for n in a.nora) + " |")


if __name__ == "__main__":
    main()
