#!/usr/bin/env python3
"""Large stores: nora and CNCF distribution (Debian's docker-registry) each hold
REPOS repositories (org-N/app-M, one tag each) and one repository of TAGS tags;
then, per server, the time of
  - a catalog page (`n=100`) from the start and from the middle (`last=`),
  - the whole catalog, paged by 1,000 as clients page it,
  - a tags page (`n=100`) of the repository of TAGS tags (distribution 2.8
    ignores `n` there and answers them all),
and, for nora alone, `nora images ls` of the whole store and of one glob, and
`nora gc --dry-run`. Each time is the best of 3. Prints a markdown table with the
ratio nora / distribution (lower is better).
Usage: bench/scale.py [--nora PATH] [--peer /usr/bin/docker-registry]
                      [--repos 3000] [--tags 5000]
"""
import argparse, hashlib, http.client, json, os, shutil, subprocess, sys, tempfile, time, urllib.parse

from ports import free_port

MT = "application/vnd.oci.image.manifest.v1+json"
CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": MT,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": CONFIG_DIGEST, "size": len(CONFIG)},
    "layers": []}).encode()



class Conn:
    def __init__(self, port):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def req(self, method, path, body=None, headers=None):
        self.c.request(method, path, body=body, headers=headers or {})
        r = self.c.getresponse(); data = r.read()
        if r.status >= 300:
            sys.exit(f"{method} {path}: {r.status} {data[:200]!r}")
        return r, data

    def seed(self, repos, tags):
        def image(name, tag_names):
            # POST then PUT: distribution 2.8 has no single-POST upload.
            r, _ = self.req("POST", f"/v2/{name}/blobs/uploads/")
            loc = r.headers["Location"]
            loc = urllib.parse.urlsplit(loc)
            path = loc.path + ("?" + loc.query + "&" if loc.query else "?") + "digest=" + CONFIG_DIGEST
            self.req("PUT", path, CONFIG, {"Content-Type": "application/octet-stream"})
            for t in tag_names:
                self.req("PUT", f"/v2/{name}/manifests/{t}", MANIFEST, {"Content-Type": MT})
        for i in range(repos):
            image(f"org-{i // 100}/app-{i % 100}", ["v1"])
        image("many/tags", [f"t{i:06d}" for i in range(tags)])

    def get(self, path):
        r, data = self.req("GET", path)
        return r, json.loads(data)

    def catalog_all(self):
        path, names = "/v2/_catalog?n=1000", []
        while path:
            r, body = self.get(path)
            names += body.get("repositories") or []
            link = r.headers.get("Link")
            path = link.split(">")[0].lstrip("<") if link else None
        return names


def best(f, runs=3):
    times = []
    for _ in range(runs):
        t = time.perf_counter(); out = f(); times.append(time.perf_counter() - t)
    return min(times), out


def start(cmd, env, port):
    p = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1); c.request("GET", "/v2/")
            c.getresponse().read(); return p
        except OSError:
            time.sleep(0.02)
    p.kill(); sys.exit(f"{cmd[0]} did not start")


def measure(conn, repos):
    middle = f"org-{repos // 200}/app-{repos % 100}"
    out = {}
    out["catalog page, first 100 (ms)"], first = best(lambda: conn.get("/v2/_catalog?n=100")[1])
    out["catalog page, 100 from the middle (ms)"], _ = best(
        lambda: conn.get("/v2/_catalog?n=100&last=" + urllib.parse.quote(middle, safe=""))[1])
    out["whole catalog, pages of 1000 (ms)"], names = best(conn.catalog_all)
    # (distribution 2.8 ignores n here and answers every tag)
    out["tags list with n=100 (ms)"], tags = best(lambda: conn.get("/v2/many/tags/tags/list?n=100")[1])
    if len(names) != repos + 1 or names != sorted(names) or len(first["repositories"]) != 100 \
            or len(tags["tags"]) < 100:
        sys.exit(f"wrong answers: {len(names)} names (sorted: {names == sorted(names)}), "
                 f"first page {len(first['repositories'])}, tags page {len(tags['tags'])}")
    return {k: v * 1000 for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nora", default=os.path.expanduser("~/.cache/nora-target/release/nora"))
    ap.add_argument("--peer", default="/usr/bin/docker-registry")
    ap.add_argument("--peer-config", default=os.path.join(os.path.dirname(__file__), "distribution.yml"))
    ap.add_argument("--repos", type=int, default=3000)
    ap.add_argument("--tags", type=int, default=5000)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="nora-scale.")
    results, extra = {}, {}
    try:
        for who in ("nora", "distribution"):
            port, data = free_port(), os.path.join(work, who)
            if who == "nora":
                cmd, env = [a.nora, "serve"], {"NORA_PORT": str(port), "NORA_STORAGE_PATH": data,
                                               "NORA_LOG_LEVEL": "warn", "NORA_STORAGE_FSYNC": "false"}
            else:
                cmd, env = [a.peer, "serve", a.peer_config], {
                    "REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}",
                    "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": data}
            p = start(cmd, env, port)
            try:
                conn = Conn(port)
                t = time.perf_counter(); conn.seed(a.repos, a.tags)
                print(f"{who}: seeded {a.repos} repositories and {a.tags} tags in {time.perf_counter() - t:.1f} s",
                      file=sys.stderr)
                results[who] = measure(conn, a.repos)
            finally:
                p.terminate(); p.wait()
            if who == "nora":
                def run(*args):
                    return subprocess.run([a.nora, *args, "--data-dir", data, "-o", "json"],
                                          stdout=subprocess.PIPE, check=True).stdout
                extra["nora images ls, whole store (ms)"], rows = best(lambda: run("images", "ls"))
                extra["nora images ls 'org-1/**' (ms)"], _ = best(lambda: run("images", "ls", "org-1/**"))
                extra["nora gc --dry-run (ms)"], _ = best(lambda: run("gc", "--dry-run"))
                if len(json.loads(rows)) != a.repos + a.tags:
                    sys.exit("images ls: wrong row count")
        print(f"\n{a.repos} repositories (one tag each) and one repository of {a.tags} tags, on disk\n")
        print("| figure | nora | distribution | ratio |\n|---|---|---|---|")
        for k, v in results["nora"].items():
            peer = results["distribution"][k]
            print(f"| {k} | {v:,.1f} | {peer:,.1f} | {v / peer:.3f} |")
        for k, v in extra.items():
            print(f"| {k} | {v * 1000:,.1f} | | |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
