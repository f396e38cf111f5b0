mod common;

use common::*;

#[tokio::test]
async fn push_and_pull_an_image() {
    let s = Server::start();
    let c = s.client();
    let (digest, manifest) = c.push_image("smoke/app", "v1", b"layer bytes").await;
    let r = c
        .http
        .get(c.u("/v2/smoke/app/manifests/v1"))
        .header("Accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(r.headers()["content-type"], OCI_MANIFEST);
    assert_eq!(r.bytes().await.unwrap().as_ref(), manifest.as_slice());
}

/// Started with a low soft limit on open files (as services often are), the
/// server raises it to the hard limit: every connection and every blob read
/// holds one.
#[test]
fn the_open_files_limit_is_raised_to_the_hard_one() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a local struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    assert!(
        lim.rlim_max > 256,
        "hard limit {} leaves nothing to show",
        lim.rlim_max
    );
    let saved = lim;
    lim.rlim_cur = 256;
    // The child inherits the lowered limit; ours is restored right after.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let s = Server::start();
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &saved) }, 0);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", s.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let soft: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(
        soft,
        [saved.rlim_max.to_string(), saved.rlim_max.to_string()],
        "{line}"
    );
}
