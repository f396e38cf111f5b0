//! The S3 backend against an S3 whose answers are cut off: a proxy between
//! the two closes the connection after a set number of answer bytes, as a
//! reset or a dead load balancer would.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::S3Storage;
use crate::config;
use crate::storage::{Storage, StorageError, once, unique_claim};

use super::test_server::{ACCESS_KEY, BUCKET, Kind, S3Server, SECRET_KEY};

/// Cuts to make, in turn: how many more answer bytes go through (on
/// whichever connection carries them) before that connection is closed.
#[derive(Clone, Default)]
struct Cuts(Arc<Mutex<VecDeque<usize>>>);

impl Cuts {
    fn set(&self, cuts: &[usize]) {
        *self.0.lock().unwrap() = cuts.iter().copied().collect();
    }

    /// Of `n` answer bytes, how many go through before a cut, if one comes.
    fn take(&self, n: usize) -> Option<usize> {
        let mut cuts = self.0.lock().unwrap();
        let left = cuts.front_mut()?;
        if *left < n {
            let through = *left;
            cuts.pop_front();
            Some(through)
        } else {
            *left -= n;
            None
        }
    }
}

async fn proxy(upstream: String, cuts: Cuts) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            tokio::spawn(relay(client, server, cuts.clone()));
        }
    });
    format!("http://{addr}")
}

async fn relay(client: TcpStream, server: TcpStream, cuts: Cuts) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let requests =
        tokio::spawn(async move { tokio::io::copy(&mut from_client, &mut to_server).await });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from_server.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(through) = cuts.take(n) {
            let _ = to_client.write_all(&buf[..through]).await;
            break;
        }
        if to_client.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    requests.abort();
}

async fn storage_behind_a_proxy() -> (S3Server, S3Storage, Cuts) {
    let server = S3Server::start(Kind::S3sFs);
    let cuts = Cuts::default();
    let upstream = server.endpoint.trim_start_matches("http://").to_string();
    let endpoint = proxy(upstream, cuts.clone()).await;
    let s = S3Storage::new(&config::S3 {
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        bucket: BUCKET.into(),
        prefix: String::new(),
        path_style: true,
        access_key: Some(ACCESS_KEY.into()),
        secret_key: Some(SECRET_KEY.into()),
    });
    (server, s, cuts)
}

async fn read_all(s: &S3Storage, key: &str) -> Result<Vec<u8>, String> {
    let got = s.get(key, None).await.map_err(|e| e.to_string())?;
    let mut body = got.body;
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// A read cut off mid-body goes on from where it stopped, with the same
/// bytes as an uncut one; one cut more often than it retries fails, and
/// never ends as if the object were shorter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_reads_go_on_where_they_stopped() {
    let (_server, s, cuts) = storage_behind_a_proxy().await;
    let big: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    s.put("big", once(Bytes::from(big.clone()))).await.unwrap();
    cuts.set(&[1 << 20, 3 << 20]);
    assert!(read_all(&s, "big").await.unwrap() == big, "wrong bytes");

    let small: Vec<u8> = (0..1u32 << 20).map(|i| (i % 241) as u8).collect();
    s.put("small", once(Bytes::from(small.clone())))
        .await
        .unwrap();
    cuts.set(&[100_000, 100_000]);
    assert!(read_all(&s, "small").await.unwrap() == small, "wrong bytes");
    cuts.set(&[100_000; 5]);
    let err = read_all(&s, "small").await.unwrap_err();
    assert!(err.contains("S3 stopped sending"), "{err}");
}

/// A conditional write whose answer is lost is sent again by the SDK, and
/// refused because the first one stored it: that is the request's own
/// write, not another's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_answer_was_lost_is_ours() {
    let (_server, s, cuts) = storage_behind_a_proxy().await;
    cuts.set(&[0]);
    s.put_if_absent("claims/a", unique_claim()).await.unwrap();
    assert!(cuts.0.lock().unwrap().is_empty(), "the answer was not cut");
    assert!(matches!(
        s.put_if_absent("claims/a", unique_claim()).await,
        Err(StorageError::AlreadyExists(_))
    ));
}
