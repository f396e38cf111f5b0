//! `cargo bench --bench rules`: one permission check against a principal
//! whose rules hold 1,000 permissions, as nora runs it once the principal's
//! grants are compiled and cached (one glob-set match per request). Target:
//! under 1 microsecond. Prints nanoseconds per check; a benchmark, not a test.

#[path = "../src/auth/perms.rs"]
#[allow(dead_code)]
mod perms;

use std::hint::black_box;
use std::time::Instant;

use perms::{Action, Grants, Permission};

const TARGET_NS: f64 = 1000.0;

fn main() {
    // 1,000 permissions of the shapes teams write.
    let mut perms = Vec::new();
    for i in 0..500 {
        perms.push(format!("push:team-{i}/*"));
    }
    for i in 0..300 {
        perms.push(format!("pull:org-{i}/**"));
    }
    for i in 0..200 {
        perms.push(format!("delete:team-{i}/dev-*"));
    }
    let perms: Vec<Permission> = perms
        .iter()
        .map(|p| Permission::parse(p).expect("valid permission"))
        .collect();

    let started = Instant::now();
    let grants = Grants::new(&perms);
    let compile = started.elapsed();
    println!(
        "compile 1,000 permissions (once per principal, then cached): {:.2} ms",
        compile.as_secs_f64() * 1e3
    );

    let cases: [(&str, Action, &str, bool); 5] = [
        ("push, first rule", Action::Push, "team-0/app", true),
        ("push, last rule", Action::Push, "team-499/app", true),
        ("pull via ** deep", Action::Pull, "org-299/a/b/c", true),
        (
            "delete, glob in tag part",
            Action::Delete,
            "team-199/dev-x",
            true,
        ),
        ("miss (worst case)", Action::Push, "nobody/app", false),
    ];
    let mut worst = 0.0f64;
    println!("{:<28} {:>10} {:>8}", "check", "ns/check", "allowed");
    for (what, action, repo, expect) in cases {
        assert_eq!(grants.allows(action, repo), expect, "{what}");
        let rounds = 200_000u32;
        // Warm up, then the best of 5 runs (least disturbed by the machine).
        let mut best = f64::MAX;
        for _ in 0..6 {
            let t = Instant::now();
            for _ in 0..rounds {
                black_box(grants.allows(black_box(action), black_box(repo)));
            }
            best = best.min(t.elapsed().as_nanos() as f64 / rounds as f64);
        }
        worst = worst.max(best);
        println!("{what:<28} {best:>10.1} {expect:>8}");
    }
    println!(
        "worst case {worst:.1} ns per check: {} the {TARGET_NS:.0} ns target (ratio {:.3})",
        if worst < TARGET_NS { "under" } else { "OVER" },
        worst / TARGET_NS
    );
}
