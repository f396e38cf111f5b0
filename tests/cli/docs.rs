//! The checked-in completions and man pages are what the binary generates
//! (regenerate with scripts/gen-docs), and the bash completion loads.

use std::path::Path;

use super::nora;

/// The checkout under test. Read when the test runs (cargo and nextest set
/// it), not baked in when it was built: a target directory shared by two
/// clones can hold a test binary built from the other one.
fn repo() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

fn assert_same_dir(checked_in: &Path, generated: &Path) {
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(checked_in), names(generated), "run scripts/gen-docs");
    for name in names(generated) {
        let a = std::fs::read(checked_in.join(&name)).unwrap();
        let b = std::fs::read(generated.join(&name)).unwrap();
        assert!(
            a == b,
            "{} is stale: run scripts/gen-docs",
            checked_in.join(&name).display()
        );
    }
}

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let repo = &repo();
    let tmp = tempfile::tempdir().unwrap();
    let comp = tmp.path().join("completions");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        nora()
            .args(["completions", shell, "--dir"])
            .arg(&comp)
            .assert()
            .success();
    }
    assert_same_dir(&repo.join("completions"), &comp);
    let man = tmp.path().join("man");
    nora()
        .args(["completions", "man", "--dir"])
        .arg(&man)
        .assert()
        .success();
    assert_same_dir(&repo.join("man"), &man);
    // Printing to stdout gives the same script.
    let out = nora().args(["completions", "bash"]).output().unwrap();
    assert_eq!(out.stdout, std::fs::read(comp.join("nora.bash")).unwrap());
    // man without --dir is a usage error.
    let out = nora().args(["completions", "man"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bash_completion_loads_and_completes() {
    let repo = &repo();
    let script = repo.join("completions/nora.bash");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -e; source '{}'; COMP_WORDS=(nora ima); COMP_CWORD=1; COMP_LINE='nora ima'; COMP_POINT=8; _nora nora ima nora; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("images"));
}
