use std::sync::Arc;

use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use bytes::BytesMut;
use futures_util::StreamExt;

use super::test_server::{ACCESS_KEY, BUCKET, Kind, S3Server, SECRET_KEY};
use super::write::{Chunker, encode_key, upload_id, upload_part};
use super::*;
use crate::storage::suite;

#[test]
fn an_upload_without_an_id_is_a_named_error() {
    let none = CreateMultipartUploadOutput::builder().build();
    let empty = CreateMultipartUploadOutput::builder().upload_id("").build();
    for answer in [none, empty] {
        let err = upload_id(&answer, "blobs/x").unwrap_err().to_string();
        assert!(err.contains("holds no UploadId"), "{err}");
    }
    let good = CreateMultipartUploadOutput::builder()
        .upload_id("u1")
        .build();
    assert_eq!(upload_id(&good, "blobs/x").unwrap(), "u1");
}

fn storage(server: &S3Server, prefix: &str) -> S3Storage {
    S3Storage::new(&config::S3 {
        endpoint: Some(server.endpoint.clone()),
        region: Some("us-east-1".into()),
        bucket: BUCKET.into(),
        prefix: prefix.into(),
        path_style: true,
        access_key: Some(ACCESS_KEY.into()),
        secret_key: Some(SECRET_KEY.into()),
    })
}

#[test]
fn copy_sources_are_encoded() {
    assert_eq!(encode_key("a/b c+d:e"), "a/b%20c%2Bd%3Ae");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_suite_on_s3s_fs() {
    let server = S3Server::start(Kind::S3sFs);
    suite::run_all(Arc::new(storage(&server, "reg"))).await;
    large_objects(&storage(&server, "")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_suite_on_moto() {
    let server = S3Server::start(Kind::Moto);
    suite::run_all(Arc::new(storage(&server, ""))).await;
    large_objects(&storage(&server, "a/b")).await;
}

/// A proxy to `server` that mends moto's ListParts answers: their root
/// is `ListPartsResponse` where S3's is `ListPartsResult` (renamed in
/// place, padded with blanks a tag may hold, so no length changes).
async fn moto_mended(server: &S3Server) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = server.endpoint.trim_start_matches("http://").to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_server, mut to_server) = upstream.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = from_server.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let (from, to) = (b"ListPartsResponse", b"ListPartsResult  ");
                    let mut at = 0;
                    while at + from.len() <= n {
                        if &buf[at..at + from.len()] == from {
                            buf[at..at + from.len()].copy_from_slice(to);
                        }
                        at += 1;
                    }
                    if to_client.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

/// A push cut off by kill -9 leaves its multipart upload unfinished,
/// billed by S3 until aborted: once it is old and has had no part for
/// as long, the sweep aborts it, never another application's in the
/// same bucket, nor one still given parts, nor one it cannot judge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_uploads_of_ours_are_aborted_once_abandoned() {
    let server = S3Server::start(Kind::Moto);
    let s = storage(&server, "reg");
    let blob = "reg/blobs/sha256/ab/abcd/data";
    let keys = [blob, "reg/notes/big.bin", "other/blobs/x", "regx/blobs/y"];
    for k in keys {
        let up = s
            .client
            .create_multipart_upload()
            .bucket(BUCKET)
            .key(k)
            .send()
            .await
            .unwrap();
        s.client
            .upload_part()
            .bucket(BUCKET)
            .key(k)
            .upload_id(up.upload_id().unwrap())
            .part_number(1)
            .body(S3Body::from(vec![7u8; 1024]))
            .send()
            .await
            .unwrap();
    }
    let unfinished = || async {
        let page = s
            .client
            .list_multipart_uploads()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        let mut keys: Vec<String> = page
            .uploads()
            .iter()
            .filter_map(|u| u.key().map(str::to_string))
            .collect();
        keys.sort();
        keys
    };
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // moto says every upload began in 2010, and its parts cannot be read.
    assert_eq!(s.abort_abandoned(Duration::from_secs(1)).await.unwrap(), 0);
    let cfg = config::S3 {
        endpoint: Some(moto_mended(&server).await),
        region: Some("us-east-1".into()),
        bucket: BUCKET.into(),
        prefix: "reg".into(),
        path_style: true,
        access_key: Some(ACCESS_KEY.into()),
        secret_key: Some(SECRET_KEY.into()),
    };
    let mended = S3Storage::new(&cfg);
    assert_eq!(
        mended.sweep_abandoned().await.unwrap(),
        0,
        "a part came a moment ago"
    );
    assert_eq!(unfinished().await.len(), 4);
    assert_eq!(
        mended
            .abort_abandoned(Duration::from_secs(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        unfinished().await,
        ["other/blobs/x", "reg/notes/big.bin", "regx/blobs/y"]
    );
}

/// s3s-fs does not list unfinished uploads: nothing to sweep, no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_lists_no_uploads_has_nothing_to_sweep() {
    let server = S3Server::start(Kind::S3sFs);
    let s = storage(&server, "reg");
    assert_eq!(s.abort_abandoned(Duration::ZERO).await.unwrap(), 0);
}

fn uneven_chunks(data: &[u8]) -> ByteStream {
    let mut items = Vec::new();
    let mut at = 0;
    let mut n = 1;
    while at < data.len() {
        let len = (n * 97_003).min(data.len() - at);
        items.push(Ok(Bytes::copy_from_slice(&data[at..at + len])));
        at += len;
        n = n % 40 + 1;
    }
    Box::pin(futures_util::stream::iter(items))
}

async fn read(s: &S3Storage, key: &str, range: Option<ByteRange>) -> Vec<u8> {
    let mut body = s.get(key, range).await.unwrap().body;
    let mut out = Vec::new();
    while let Some(c) = body.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// Multipart puts (several parts, the last short), ranges across part
/// boundaries, a body failing half way leaving nothing, and a rename.
async fn large_objects(s: &S3Storage) {
    let data: Vec<u8> = (0..(PART * 2 + 12_345) as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(
        s.put("big/one", uneven_chunks(&data)).await.unwrap(),
        data.len() as u64
    );
    assert_eq!(read(s, "big/one", None).await, data);
    let r = ByteRange {
        start: PART as u64 - 10,
        end: PART as u64 + 10,
    };
    assert_eq!(
        read(s, "big/one", Some(r)).await,
        &data[r.start as usize..=r.end as usize]
    );
    assert_eq!(
        s.get("big/one", Some(r)).await.unwrap().size,
        data.len() as u64
    );

    let mut items: Vec<std::io::Result<Bytes>> = data
        .chunks(1 << 20)
        .take(12)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    items.push(Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone")));
    let failing: ByteStream = Box::pin(futures_util::stream::iter(items));
    assert!(s.put("big/two", failing).await.is_err());
    assert!(
        s.stat("big/two").await.unwrap().is_none(),
        "nothing visible"
    );

    s.rename("big/one", "big/three").await.unwrap();
    assert!(s.stat("big/one").await.unwrap().is_none());
    assert_eq!(read(s, "big/three", None).await, data);
    assert!(matches!(
        s.put_if_absent("big/three", crate::storage::once(Bytes::from_static(b"x")))
            .await,
        Err(StorageError::AlreadyExists(_))
    ));
    // The multipart form of put_if_absent (a chunk of an upload larger
    // than a part): it lands once, and never replaces what is there.
    assert_eq!(
        s.put_if_absent("big/four", uneven_chunks(&data))
            .await
            .unwrap(),
        data.len() as u64
    );
    let other: Vec<u8> = data.iter().map(|b| b ^ 0xff).collect();
    assert!(matches!(
        s.put_if_absent("big/four", uneven_chunks(&other)).await,
        Err(StorageError::AlreadyExists(_))
    ));
    assert_eq!(read(s, "big/four", None).await, data);
    s.delete_prefix("big").await.unwrap();
    assert!(s.list("big").await.unwrap().is_empty());
}

/// Transfers beyond the spare parts go one part at a time (uploads) or
/// stream (reads, spare 0 here), whole and right, and give back every
/// part they borrowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_transfers_share_the_spare_parts() {
    let server = S3Server::start(Kind::S3sFs);
    let data: Arc<Vec<u8>> = Arc::new(
        (0..(PART * 3 + 777) as u32)
            .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
            .collect(),
    );
    for spare in [0, 1, 3] {
        let s = Arc::new(storage(&server, &format!("spare{spare}")).with_spare_parts(spare));
        let puts = (0..3).map(|i| {
            let (s, d) = (s.clone(), data.clone());
            async move { s.put(&format!("o{i}"), uneven_chunks(&d)).await.unwrap() }
        });
        futures_util::future::join_all(puts).await;
        let reads = (0..4).map(|i| {
            let s = s.clone();
            async move { read(&s, &format!("o{}", i % 3), None).await }
        });
        for got in futures_util::future::join_all(reads).await {
            assert!(got == *data, "spare {spare}: bytes differ");
        }
        let r = ByteRange {
            start: 5,
            end: (PART * 3) as u64,
        };
        assert_eq!(read(&s, "o1", Some(r)).await, &data[5..=PART * 3]);
        assert_eq!(s.spare.available_permits(), spare, "all given back");
    }
}

/// A part of several chunks is copied into the spare buffer handed in
/// (not a new one); a spare too small for a part is not used.
#[tokio::test]
async fn parts_fill_the_spare_buffer() {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut chunks = Chunker::new(uneven_chunks(&data));
    let spare = BytesMut::with_capacity(200_000);
    let at = spare.as_ptr();
    let mut slot = Some(spare);
    let part = chunks.next(200_000, &mut slot).await.unwrap();
    assert!(slot.is_none(), "the spare was taken");
    assert_eq!(part.as_ptr(), at, "filled in place");
    assert_eq!(part, &data[..200_000]);
    let mut small = Some(BytesMut::with_capacity(10));
    let rest = chunks.next(200_000, &mut small).await.unwrap();
    assert_eq!(rest, &data[200_000..]);
    assert!(chunks.ended());
}

/// The SDK lets go of a part's bytes once UploadPart is done: without
/// that, no buffer could be filled again and every part would be a
/// fresh 8 MiB of zeroed pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_part_gives_its_buffer_back() {
    let server = S3Server::start(Kind::S3sFs);
    let s = storage(&server, "");
    let k = s.key("recycled");
    let upload = s
        .client
        .create_multipart_upload()
        .bucket(&s.bucket)
        .key(&k)
        .send()
        .await
        .unwrap();
    let id = upload_id(&upload, &k).unwrap();
    let mut buf = BytesMut::with_capacity(PART);
    buf.resize(PART, 7);
    let up = upload_part(s.client.clone(), s.bucket.clone(), k, id, 1, buf.freeze())
        .await
        .unwrap();
    assert!(up.part.e_tag().is_some());
    let back = up.bytes.try_into_mut().expect("no one else holds the part");
    assert!(back.capacity() >= PART);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_buckets_say_why() {
    let server = S3Server::start(Kind::S3sFs);
    let mut cfg = config::S3 {
        endpoint: Some(server.endpoint.clone()),
        region: Some("us-east-1".into()),
        bucket: "missing".into(),
        prefix: String::new(),
        path_style: true,
        access_key: Some(ACCESS_KEY.into()),
        secret_key: Some(SECRET_KEY.into()),
    };
    let e = S3Storage::new(&cfg).ping().await.unwrap_err().to_string();
    assert!(e.contains("no such bucket"), "{e}");
    cfg.bucket = BUCKET.into();
    cfg.secret_key = Some("wrong".into());
    let e = S3Storage::new(&cfg).ping().await.unwrap_err().to_string();
    assert!(e.contains("access denied"), "{e}");
    cfg.endpoint = Some("http://127.0.0.1:1".into());
    let e = S3Storage::new(&cfg).ping().await.unwrap_err().to_string();
    assert!(e.contains("S3 bucket nora"), "{e}");
}
