//! SIGTERM: stop accepting, let in-flight requests finish, exit 0.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;

/// Starts an upload in `repo` and a PATCH streaming `chunks` into it.
fn slow_patch(
    c: &Client,
    repo: &str,
    chunks: impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>>
    + Send
    + Sync
    + 'static,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let (c, repo) = (c.clone(), repo.to_string());
    tokio::spawn(async move {
        let r = c
            .http
            .post(c.u(&format!("/v2/{repo}/blobs/uploads/")))
            .send()
            .await?;
        assert_eq!(r.status(), 202);
        let loc = c.loc(r.headers()["location"].to_str().unwrap_or_default());
        c.http
            .patch(loc)
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_upload_finish() {
    let mut s = Server::start();
    let c = s.client();
    // 20 chunks, 100 ms apart: the upload is in flight for about 2 s.
    let chunks = futures_util::stream::iter(0..20).then(|_| async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![7u8; 4096]))
    });
    let patch = slow_patch(&c, "slow", chunks);
    tokio::time::sleep(Duration::from_millis(400)).await;

    let status = tokio::task::spawn_blocking(move || {
        let st = s.terminate(Duration::from_secs(20));
        (st, s)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New connections are refused once shutdown has begun.
    assert!(
        c.http.get(c.u("/v2/")).send().await.is_err(),
        "listener must be closed"
    );

    let r = patch.await.unwrap().expect("the in-flight PATCH completes");
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.headers()["range"],
        format!("0-{}", 20 * 4096 - 1).as_str()
    );
    let (st, _s) = status.await.unwrap();
    let st = st.expect("nora exits within the timeout");
    assert!(st.success(), "exit status {st}");
}

/// Connections that have begun no request (clients open spares ahead of
/// need) do not hold the shutdown for their 30 s header timeout: each gets a
/// second for a request on its way, then is closed. A request sent in that
/// second is served; a connection between requests is closed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_a_request_do_not_hold_the_shutdown() {
    use std::io::{Read, Write};
    let mut s = Server::start();
    let c = s.client();
    let addr = c.addr();
    // Between requests: the client keeps it in its pool.
    assert_eq!(c.http.get(c.u("/v2/")).send().await.unwrap().status(), 200);
    // Spares: one silent, one with half a request head.
    let _silent = std::net::TcpStream::connect(&addr).unwrap();
    let mut half = std::net::TcpStream::connect(&addr).unwrap();
    half.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n").unwrap();
    // One whose request comes just after the signal.
    let mut late = std::net::TcpStream::connect(&addr).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let st = s.terminate(Duration::from_secs(20));
        (st, s)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    late.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    late.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    let _ = late.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer:?}");

    let (st, _s) = status.await.unwrap();
    let st = st.expect("nora exits");
    assert!(st.success(), "exit status {st}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
}

/// A second signal while shutdown waits for a request stops the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_waiting() {
    let mut s = Server::start();
    let c = s.client();
    // A PATCH that sends a little, then nothing for a long while.
    let chunks = futures_util::stream::iter(0..2).then(|i| async move {
        if i == 1 {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![7u8; 4096]))
    });
    let _patch = slow_patch(&c, "stuck", chunks);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = tokio::task::spawn_blocking(move || {
        assert!(
            s.terminate(Duration::from_secs(1)).is_none(),
            "waits for the PATCH"
        );
        s.terminate(Duration::from_secs(5))
    })
    .await
    .unwrap();
    let st = st.expect("the second SIGTERM ends the wait");
    assert!(st.success(), "exit status {st}");
}

/// Under systemd (`Type=notify`), the unit is ready when nora listens and
/// is told when the graceful stop begins; both socket kinds systemd uses.
#[test]
fn systemd_hears_ready_and_stopping() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let abstract_name = format!("nora-test-{}", std::process::id());
    let sockets = [
        (
            UnixDatagram::bind(&path).unwrap(),
            path.display().to_string(),
        ),
        (
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&abstract_name).unwrap())
                .unwrap(),
            format!("@{abstract_name}"),
        ),
    ];
    for (socket, name) in sockets {
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut s = Server::start_on(&dir.path().join("data"), &[("NOTIFY_SOCKET", &name)]);
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).unwrap();
        let ready = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(ready.starts_with("READY=1\n"), "{ready}");
        assert!(
            ready.contains(&format!("STATUS=listening on {}", s.url)),
            "{ready}"
        );
        assert_eq!(
            s.terminate(Duration::from_secs(20)).map(|st| st.code()),
            Some(Some(0))
        );
        let n = socket.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("STOPPING=1\n"));
    }
}
