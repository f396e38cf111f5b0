//! `GET /metrics`: what a Prometheus scraper reads after real traffic.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

/// The value of the series `series` (its name and labels, exactly as
/// written) on the page, if there.
fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(c: &Client) -> String {
    let r = c.http.get(c.u("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    r.text().await.unwrap()
}

#[tokio::test]
async fn requests_are_counted_by_route_method_and_status() {
    let s = Server::start();
    let c = s.client();
    let layer = vec![7u8; 100_000];
    c.push_image("metrics/app", "v1", &layer).await;
    for _ in 0..3 {
        let r = c
            .http
            .get(c.u("/v2/metrics/app/manifests/v1"))
            .header("Accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let r = c
        .http
        .get(c.u("/v2/metrics/app/manifests/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    r.bytes().await.unwrap();
    let d = sha256(&layer);
    let blob = c.get_bytes(&format!("/v2/metrics/app/blobs/{d}")).await;
    assert_eq!(blob.len(), layer.len());

    // The log line (and the count) of the last answer is written once its
    // body has gone: wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = scrape(&c).await;
        if value(
            &page,
            r#"nora_http_sent_bytes_total{method="GET",route="blob"}"#,
        )
        .is_some()
            || Instant::now() > deadline
        {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let count = |method: &str, route: &str, status: u16| {
        value(
            &page,
            &format!(
                r#"nora_http_requests_total{{method="{method}",route="{route}",status="{status}"}}"#
            ),
        )
    };
    assert_eq!(count("GET", "manifest", 200), Some(3.0), "{page}");
    assert_eq!(count("GET", "manifest", 404), Some(1.0), "{page}");
    assert_eq!(count("PUT", "manifest", 201), Some(1.0), "{page}");
    assert_eq!(count("POST", "upload", 201), Some(2.0), "{page}");
    assert_eq!(
        value(
            &page,
            r#"nora_http_received_bytes_total{method="POST",route="upload"}"#
        ),
        Some((layer.len() + br#"{"architecture":"amd64","os":"linux"}"#.len()) as f64),
        "{page}"
    );
    assert_eq!(
        value(
            &page,
            r#"nora_http_sent_bytes_total{method="GET",route="blob"}"#
        ),
        Some(layer.len() as f64),
        "{page}"
    );
    assert_eq!(
        value(
            &page,
            r#"nora_http_request_duration_seconds_count{method="GET",route="manifest"}"#
        ),
        Some(4.0),
        "{page}"
    );
    // The scrape itself is the one request in flight.
    assert_eq!(
        value(&page, "nora_http_requests_in_flight"),
        Some(1.0),
        "{page}"
    );
    let rss = value(&page, "process_resident_memory_bytes").unwrap();
    assert!(rss > 1e6 && rss < 1e9, "{rss}");
    assert!(value(&page, "process_open_fds").unwrap() > 3.0);
    // No repository name in any label.
    assert!(!page.contains("metrics/app"), "{page}");
}

/// A client that gives up before its answer is still logged and counted
/// (as nginx's 499, "client closed request") and no longer in flight; the
/// gc it asked for runs on, and counts as a job.
#[tokio::test]
async fn abandoned_requests_and_jobs_are_counted() {
    let s = Server::start();
    let c = s.client();
    write_orphans(&s.data, 5000);
    let addr = c.addr();
    tokio::task::spawn_blocking(move || {
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        let body = br#"{"grace_seconds":0}"#;
        let head = format!(
            "POST /api/v1/gc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        sock.write_all(head.as_bytes()).unwrap();
        sock.write_all(body).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        let page = scrape(&c).await;
        let ok = value(&page, r#"nora_jobs_total{job="gc",result="ok"}"#);
        if ok == Some(1.0) {
            break page;
        }
        assert!(Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        value(
            &page,
            r#"nora_http_requests_total{method="POST",route="admin",status="499"}"#
        ),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        value(&page, "nora_http_requests_in_flight"),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        value(&page, "nora_gc_blobs_removed_total"),
        Some(5000.0),
        "{page}"
    );
    assert!(
        value(
            &page,
            r#"nora_job_last_success_timestamp_seconds{job="gc"}"#
        )
        .unwrap()
            > 1.7e9
    );
    assert!(s.logged("path=/api/v1/gc status=499").await);
    let log = s.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("path=/api/v1/gc status=499") && l.contains("complete=false")),
        "{log}"
    );
}

/// `server.metrics = false`: no page (a 404 like any unknown path), and the
/// rest serves as before.
#[tokio::test]
async fn the_page_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_on(&dir.path().join("data"), &[("NORA_METRICS", "false")]);
    let c = s.client();
    let r = c.http.get(c.u("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.text().await.unwrap().contains("nora_http_requests_total"));
    assert_eq!(
        c.http.get(c.u("/health")).send().await.unwrap().status(),
        200
    );
    c.push_image("m/off", "v1", b"layer").await;
}
