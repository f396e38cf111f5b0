//! `--url` and NORA_URL at their edges: URLs that cannot name a server,
//! answers without end.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::run_with_env as run;

#[test]
fn urls_with_credentials_query_or_fragment_are_usage_errors() {
    for (url, says) in [
        (
            "http://ci:s3cret@127.0.0.1:1",
            "must not hold a user or password",
        ),
        ("http://ci@127.0.0.1:1", "must not hold a user or password"),
        ("http://127.0.0.1:1?x=1", "must not have a query"),
        ("http://127.0.0.1:1/#frag", "must not have a query"),
    ] {
        for (args, env) in [
            (vec!["images", "ls", "--url", url], vec![]),
            (vec!["images", "ls"], vec![("NORA_URL", url)]),
        ] {
            let (code, out, err) = run(&args, &env);
            assert_eq!(code, Some(2), "{url}: {err}");
            assert!(out.is_empty(), "{out}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(says) && !err.contains("s3cret"), "{err}");
        }
    }
    let (_, _, err) = run(
        &["images", "ls", "--url", "http://ci:s3cret@127.0.0.1:1"],
        &[],
    );
    assert!(err.contains("give a token"), "{err}");
    // A trailing slash or a path prefix is a server URL still.
    for url in ["http://127.0.0.1:1/", "http://127.0.0.1:1/nora/"] {
        let (code, _, err) = run(&["images", "ls", "--url", url], &[]);
        assert_eq!(code, Some(1), "{url}: {err}");
        assert!(err.contains("cannot reach"), "{err}");
    }
}

/// A fake server that answers every request with a body without end; the
/// command gives up at its cap instead of growing until memory runs out.
#[test]
fn an_answer_without_end_is_cut_off() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut s in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut head = [0u8; 4096];
                let _ = s.read(&mut head);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[");
                let chunk = vec![b' '; 1 << 16];
                while s.write_all(&chunk).is_ok() {}
            });
        }
    });
    let started = Instant::now();
    let (code, _, err) = run(&["images", "ls", "--url", &url], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is over 256 MiB"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
}
