//! Token names over `--url` and on storage: the same answer both ways.

use super::common::Server;
use super::run_with_env as run;

/// `.` and `..` reach the server as names (a URL path would fold them
/// away) and get storage's answer; as new names they are refused alike.
#[test]
fn dot_token_names_get_the_same_answer_both_ways() {
    let server = Server::start();
    let data = server.data.to_str().unwrap();
    for via in [["--url", server.url.as_str()], ["--data-dir", data]] {
        for name in ["..", ".", ""] {
            let (code, _, err) = run(&["token", "revoke", name, via[0], via[1]], &[]);
            assert_eq!(code, Some(1), "{via:?} {name:?}: {err}");
            assert_eq!(
                err.trim(),
                format!("nora: no token named {name:?}"),
                "{via:?}"
            );
        }
        for name in ["..", "."] {
            let args = [
                "token", "create", "--name", name, "--role", "read", via[0], via[1],
            ];
            let (code, _, err) = run(&args, &[]);
            assert_eq!(code, Some(2), "{via:?} {name:?}: {err}");
            assert!(
                err.contains(&format!("token name {name:?}: use 1-64")),
                "{err}"
            );
        }
        // Names with characters a path would misread still reach it whole.
        let args = [
            "token", "create", "--name", "a.b@c", "--role", "read", via[0], via[1],
        ];
        assert_eq!(run(&args, &[]).0, Some(0));
        let (code, out, err) = run(&["token", "revoke", "a.b@c", via[0], via[1]], &[]);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains("Revoked token a.b@c"), "{out}");
        let (_, _, err) = run(&["token", "revoke", "a b+c/d", via[0], via[1]], &[]);
        assert_eq!(err.trim(), "nora: no token named \"a b+c/d\"", "{via:?}");
    }
}

/// `token ls -q` prints the names alone, one a line.
#[test]
fn quiet_token_listing_is_names() {
    let server = Server::start();
    let data = server.data.to_str().unwrap();
    for name in ["ci-a", "ci-b"] {
        let args = [
            "token",
            "create",
            "--name",
            name,
            "--role",
            "read",
            "--data-dir",
            data,
        ];
        assert_eq!(run(&args, &[]).0, Some(0));
    }
    for via in [["--url", server.url.as_str()], ["--data-dir", data]] {
        let (code, out, err) = run(&["token", "ls", "-q", via[0], via[1]], &[]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(out, "ci-a\nci-b\n", "{via:?}");
    }
}
