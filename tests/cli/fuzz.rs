//! Random command lines from the real command tree, with odd values: on
//! storage and against a server. Whatever they ask, nora exits 0, 1 or 2,
//! never panics, and a failure is one line on stderr. Seeded like
//! tests/fuzz.rs: `NORA_FUZZ_SEED` replays a run, `NORA_FUZZ_N` sets the
//! count (default 300).

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::common::Server;
use super::ops::rt;

/// A command: its words, a pool for each positional argument, flags it
/// always gets, and flags it may get, each with a pool of values (empty: a
/// switch).
type Command = (
    &'static [&'static str],
    &'static [&'static [&'static str]],
    &'static [Flag],
    &'static [Flag],
);
type Flag = (&'static str, &'static [&'static str]);

const COMMON: &[Flag] = &[
    ("-o", &["json", "table", "wide"]),
    ("-q", &[]),
    ("-v", &[]),
    ("--no-color", &[]),
];
const REFS: &[&str] = &[
    "fuzz/app:v1",
    "fuzz/app:v2",
    "fuzz/app",
    "fuzz/app:nope",
    "fuzz/app@sha256:zz",
];

const COMMANDS: &[Command] = &[
    (
        &["images", "ls"],
        &[&["fuzz/*", "fuzz/app:v*", "[", "**"]],
        &[],
        &[],
    ),
    (&["images", "inspect"], &[REFS], &[], &[]),
    (
        &["tag"],
        &[
            REFS,
            &["fuzz/app:v3", "fuzz/other:v1", "FUZZ:x", "fuzz/app"],
        ],
        &[],
        &[],
    ),
    (
        &["delete"],
        &[REFS],
        &[],
        &[("--dry-run", &[]), ("--yes", &[])],
    ),
    (
        &["gc"],
        &[],
        &[],
        &[
            ("--dry-run", &[]),
            ("--yes", &[]),
            ("--grace", &["0s", "1h", "10000000000d", "x"]),
        ],
    ),
    (
        &["retention"],
        &[],
        &[],
        &[("--dry-run", &[]), ("--yes", &[])],
    ),
    (
        &["token", "create"],
        &[],
        &[("--name", &["ci", "ci2", "a b", "x@y", ""])],
        &[
            ("--role", &["read", "write", "admin", "root"]),
            ("--scope", &["push:fuzz/*", "pull:**", "frob:x", "pull:["]),
            ("--expires", &["1h", "0s", "10000000000d", "never"]),
        ],
    ),
    (&["token", "ls"], &[], &[], &[]),
    (&["token", "revoke"], &[&["ci", "nope", ""]], &[], &[]),
    (
        &["backup"],
        &[],
        &[("--file", &["b.tar.gz", "/dev/null", "no/such/dir/b.tar.gz"])],
        &[],
    ),
    (
        &["restore"],
        &[],
        &[("-i", &["b.tar.gz", "/dev/null", "missing.tar.gz"])],
        &[
            ("--to", &["copy", "s3://", "local"]),
            ("--dry-run", &[]),
            ("--yes", &[]),
        ],
    ),
    (
        &["migrate"],
        &[],
        &[
            ("--from", &["local", "copy", "s3://"]),
            ("--to", &["copy", "copy2", "local"]),
        ],
        &[("--dry-run", &[])],
    ),
    (
        &["completions"],
        &[&["bash", "zsh", "fish", "cmd"]],
        &[],
        &[],
    ),
];

/// Values any argument may get instead.
const VALUES: &[&str] = &[
    "",
    "FUZZ/App:v1",
    "a//b:c",
    "0",
    "99999999999999999999",
    "s3://bucket/../x",
    "../../x",
    "é",
    "x\ny",
];

fn value(rng: &mut StdRng, pool: &[&str]) -> String {
    if rng.random_bool(0.03) {
        return "v".repeat(5000);
    }
    let pool = if pool.is_empty() || rng.random_bool(0.2) {
        VALUES
    } else {
        pool
    };
    pool.choose(rng).copied().unwrap_or("").to_string()
}

fn command_line(rng: &mut StdRng, target: &[String]) -> Vec<String> {
    let (words, positionals, always, optional) =
        COMMANDS.choose(rng).copied().unwrap_or(COMMANDS[0]);
    let mut args: Vec<String> = words.iter().map(|s| s.to_string()).collect();
    let mut flags: Vec<&Flag> = always.iter().collect();
    // Each optional flag at most once (clap refuses repeats, rightly).
    for flag in optional.iter().chain(COMMON) {
        if rng.random_bool(0.3) {
            flags.push(flag);
        }
    }
    for pool in positionals {
        if rng.random_bool(0.95) {
            args.push(value(rng, pool));
        }
    }
    for (flag, pool) in flags {
        args.push(flag.to_string());
        if !pool.is_empty() {
            args.push(value(rng, pool));
        }
    }
    if rng.random_bool(0.05) {
        args.push(value(rng, &[]));
    }
    args.extend(target.iter().cloned());
    args
}

#[test]
fn random_command_lines_exit_cleanly_with_one_line_errors() {
    let seed: u64 = std::env::var("NORA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let count: usize = std::env::var("NORA_FUZZ_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    eprintln!("cli fuzz: NORA_FUZZ_SEED={seed} NORA_FUZZ_N={count}");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let c = server.client();
    rt().block_on(async {
        c.push_image("fuzz/app", "v1", b"layer one").await;
        c.push_image("fuzz/app", "v2", b"layer two").await;
    });
    let data = server.data.to_string_lossy().into_owned();
    let targets = [
        vec!["--url".to_string(), server.url.clone()],
        vec!["--data-dir".to_string(), data],
        vec!["--url".to_string(), "http://127.0.0.1:1".into()],
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..count {
        let target = targets.choose(&mut rng).unwrap_or(&targets[0]);
        let args = command_line(&mut rng, target);
        let out = assert_cmd::Command::cargo_bin("nora")
            .unwrap()
            .args(&args)
            .current_dir(dir.path())
            .env_remove("NORA_CONFIG")
            .env_remove("NORA_URL")
            .env_remove("NORA_TOKEN")
            .env("NORA_CREDENTIALS", dir.path().join("credentials"))
            .env("NO_COLOR", "1")
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let shown = format!("run {i} (seed {seed}): nora {args:?}\nstderr: {err}");
        assert!(!err.contains("panicked"), "{shown}");
        let code = out.status.code();
        assert!(matches!(code, Some(0..=2)), "exit {code:?}: {shown}");
        // (-v adds log lines before it.)
        if code != Some(0) {
            let lines: Vec<&str> = err.trim().lines().collect();
            assert!(
                lines.last().is_some_and(|l| l.starts_with("nora: ")),
                "{shown}"
            );
            if !args.iter().any(|a| a == "-v") {
                assert_eq!(lines.len(), 1, "{shown}");
            }
        }
    }
    // The server still serves what it held (a run may have retagged or
    // deleted, never damaged).
    let r = rt().block_on(c.http.get(c.u("/v2/")).send()).unwrap();
    assert_eq!(r.status(), 200);
}
