//! The storage trait's behaviour, as one test suite every backend must pass.
//! Each backend's tests call `run_all` on a fresh, empty store.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;

use super::{ByteRange, ByteStream, Entry, Storage, StorageError, once};

async fn read_all(s: &dyn Storage, key: &str, range: Option<ByteRange>) -> Vec<u8> {
    let obj = s.get(key, range).await.expect("get");
    let mut out = Vec::new();
    let mut body = obj.body;
    while let Some(c) = body.next().await {
        out.extend_from_slice(&c.expect("chunk"));
    }
    out
}

fn chunks(parts: &[&'static [u8]]) -> ByteStream {
    let items: Vec<std::io::Result<Bytes>> =
        parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
    Box::pin(futures_util::stream::iter(items))
}

fn failing_after(first: &'static [u8]) -> ByteStream {
    let items: Vec<std::io::Result<Bytes>> = vec![
        Ok(Bytes::from_static(first)),
        Err(super::BodyError::io("client went away")),
    ];
    Box::pin(futures_util::stream::iter(items))
}

pub async fn run_all(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    put_get_stat(s).await;
    failed_put_leaves_old_object(s).await;
    put_if_absent_refuses_existing(s).await;
    ranges(s).await;
    listing(s).await;
    deep_listing(s).await;
    conditional_delete(s).await;
    delete_and_rename(s).await;
    keys_are_checked(s).await;
    s.ping().await.expect("ping");
}

async fn put_get_stat(s: &dyn Storage) {
    assert!(s.stat("t/a").await.unwrap().is_none());
    assert_eq!(
        s.put("t/a", chunks(&[b"hello ", b"world"])).await.unwrap(),
        11
    );
    assert_eq!(s.stat("t/a").await.unwrap().unwrap().size, 11);
    assert_eq!(read_all(s, "t/a", None).await, b"hello world");
    assert_eq!(
        s.read_small("t/a", 100).await.unwrap().as_ref(),
        b"hello world"
    );
    assert!(s.read_small("t/a", 5).await.is_err(), "over the limit");
    s.put("t/a", once(Bytes::from_static(b"new")))
        .await
        .unwrap();
    assert_eq!(read_all(s, "t/a", None).await, b"new", "put replaces");
    assert!(matches!(
        s.get("t/missing", None).await,
        Err(StorageError::NotFound(_))
    ));
    s.put("t/empty", chunks(&[])).await.unwrap();
    assert_eq!(s.stat("t/empty").await.unwrap().unwrap().size, 0);
}

async fn failed_put_leaves_old_object(s: &dyn Storage) {
    s.put("f/x", once(Bytes::from_static(b"old")))
        .await
        .unwrap();
    let failed = s.put("f/x", failing_after(b"partial")).await;
    assert!(
        failed.as_ref().is_err_and(StorageError::is_body),
        "the body's own error comes back, not one of the store: {failed:?}"
    );
    assert_eq!(read_all(s, "f/x", None).await, b"old");
    assert!(s.put("f/new", failing_after(b"partial")).await.is_err());
    assert!(
        s.stat("f/new").await.unwrap().is_none(),
        "nothing half-written is visible"
    );
}

async fn put_if_absent_refuses_existing(s: &dyn Storage) {
    s.put_if_absent("c/k", once(Bytes::from_static(b"first")))
        .await
        .unwrap();
    let again = s
        .put_if_absent("c/k", once(Bytes::from_static(b"second")))
        .await;
    assert!(matches!(again, Err(StorageError::AlreadyExists(_))));
    assert_eq!(read_all(s, "c/k", None).await, b"first");
}

async fn ranges(s: &dyn Storage) {
    s.put("r/x", once(Bytes::from_static(b"0123456789")))
        .await
        .unwrap();
    let r = |start, end| Some(ByteRange { start, end });
    assert_eq!(read_all(s, "r/x", r(2, 4)).await, b"234");
    assert_eq!(read_all(s, "r/x", r(9, 9)).await, b"9");
    assert_eq!(s.get("r/x", r(0, 9)).await.unwrap().size, 10);
    assert!(matches!(
        s.get("r/x", r(5, 10)).await,
        Err(StorageError::InvalidRange)
    ));
}

async fn listing(s: &dyn Storage) {
    for k in ["l/b", "l/a", "l/d/x", "l/d/y/z", "l/c"] {
        s.put(k, once(Bytes::from_static(b"."))).await.unwrap();
    }
    let got = s.list("l").await.unwrap();
    let want = vec![
        Entry::Object("a".into()),
        Entry::Object("b".into()),
        Entry::Object("c".into()),
        Entry::Prefix("d".into()),
    ];
    assert_eq!(got, want);
    assert_eq!(
        s.list("l/").await.unwrap(),
        want,
        "trailing slash is the same prefix"
    );
    assert!(s.list("nothing/here").await.unwrap().is_empty());
    assert!(
        s.list("")
            .await
            .unwrap()
            .contains(&Entry::Prefix("l".into()))
    );

    // A page: what `list` gives, after a name, cut at a length. "d" is a
    // prefix (keys "l/d/…" sort after the key "l/d").
    for after in ["", "a", "b", "bb", "c", "d", "e"] {
        for limit in [0, 1, 2, 3, 10] {
            let mut page: Vec<Entry> = want.iter().filter(|e| e.name() > after).cloned().collect();
            page.truncate(limit);
            assert_eq!(
                s.list_after("l", after, limit).await.unwrap(),
                page,
                "after {after:?}, limit {limit}"
            );
        }
    }
    assert!(s.list_after("nothing", "", 5).await.unwrap().is_empty());
}

async fn deep_listing(s: &dyn Storage) {
    let keys = [
        "dl/b",
        "dl/a/x",
        "dl/a/y/z",
        "dl/c/d/e/f",
        "dlx/other",
        "dl-other",
    ];
    for (i, k) in keys.iter().enumerate() {
        s.put(k, once(Bytes::from(vec![b'.'; i + 1])))
            .await
            .unwrap();
    }
    for prefix in ["dl", "dl/"] {
        let got = s.list_deep(prefix).await.unwrap();
        let names: Vec<&str> = got.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(
            names,
            ["dl/a/x", "dl/a/y/z", "dl/b", "dl/c/d/e/f"],
            "{prefix:?}: whole keys, sorted, nothing of dlx or dl-other"
        );
        for l in &got {
            let stat = s.stat(&l.key).await.unwrap().expect("listed, so there");
            assert_eq!(l.meta.size, stat.size, "{}", l.key);
            let apart = match l.meta.modified.duration_since(stat.modified) {
                Ok(d) => d,
                Err(e) => e.duration(),
            };
            assert!(apart.as_secs() < 2, "{}: {apart:?}", l.key);
        }
    }
    let sizes: Vec<u64> = s
        .list_deep("dl/a")
        .await
        .unwrap()
        .iter()
        .map(|l| l.meta.size)
        .collect();
    assert_eq!(sizes, [2, 3]);
    assert!(
        s.list_deep("dl/b").await.unwrap().is_empty(),
        "an object is no prefix"
    );
    assert!(s.list_deep("nothing/here").await.unwrap().is_empty());
    let all = s.list_deep("").await.unwrap();
    for k in keys {
        assert!(all.iter().any(|l| l.key == k), "{k} in the whole store");
    }
    assert!(
        all.iter().all(|l| !l.key.starts_with('_')),
        "no temporary files"
    );
    for k in keys {
        s.delete(k).await.unwrap();
    }
    assert!(s.list_deep("dl").await.unwrap().is_empty());
}

async fn conditional_delete(s: &dyn Storage) {
    let (v1, v2) = (
        Bytes::from_static(b"sha256:1\n"),
        Bytes::from_static(b"sha256:2\n"),
    );
    s.put_bytes("cd/tag", v1.clone()).await.unwrap();
    // Written again since it was read: kept, as written.
    assert!(!s.delete_if("cd/tag", &v2).await.unwrap());
    assert_eq!(read_all(s, "cd/tag", None).await, v1.to_vec());
    let longer = Bytes::from_static(b"sha256:1\nmore");
    assert!(!s.delete_if("cd/tag", &longer).await.unwrap());
    assert!(s.delete_if("cd/tag", &v1).await.unwrap());
    assert!(s.stat("cd/tag").await.unwrap().is_none());
    assert!(!s.delete_if("cd/tag", &v1).await.unwrap(), "gone already");
    assert!(!s.delete_if("cd/never", &v1).await.unwrap());
    assert!(s.list_deep("cd").await.unwrap().is_empty());
}

async fn delete_and_rename(s: &dyn Storage) {
    s.put("d/one/a", once(Bytes::from_static(b"a")))
        .await
        .unwrap();
    s.delete("d/one/a").await.unwrap();
    s.delete("d/one/a").await.unwrap(); // absent: still fine
    assert!(
        s.list("d").await.unwrap().is_empty(),
        "emptied prefixes disappear"
    );
    for k in ["d/p/1", "d/p/q/2", "d/keep"] {
        s.put(k, once(Bytes::from_static(b"x"))).await.unwrap();
    }
    s.delete_prefix("d/p").await.unwrap();
    assert!(s.stat("d/p/q/2").await.unwrap().is_none());
    assert!(s.stat("d/keep").await.unwrap().is_some());
    s.rename("d/keep", "d/moved/here").await.unwrap();
    assert!(s.stat("d/keep").await.unwrap().is_none());
    assert_eq!(read_all(s, "d/moved/here", None).await, b"x");
    s.put("d/other", once(Bytes::from_static(b"y")))
        .await
        .unwrap();
    s.rename("d/other", "d/moved/here").await.unwrap();
    assert_eq!(
        read_all(s, "d/moved/here", None).await,
        b"y",
        "rename replaces"
    );
    assert!(matches!(
        s.rename("d/none", "d/x").await,
        Err(StorageError::NotFound(_))
    ));
}

async fn keys_are_checked(s: &dyn Storage) {
    for bad in ["../escape", "a//b", "/abs", "a/./b"] {
        assert!(
            matches!(
                s.put(bad, once(Bytes::new())).await,
                Err(StorageError::InvalidKey(_))
            ),
            "{bad}"
        );
        assert!(s.get(bad, None).await.is_err());
    }
}
