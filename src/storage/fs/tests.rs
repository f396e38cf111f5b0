use std::sync::Arc;

use futures_util::StreamExt;

use super::durable::without_file_locks;
use super::*;

/// The directories `sync_parent` flushed, in every test of the process.
pub(super) static SYNCED_DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// With fsync, the name of every object written is flushed too, so that
/// an acknowledged write survives a power loss; without, nothing is.
#[tokio::test]
async fn with_fsync_the_name_of_a_written_object_is_flushed_too() {
    for fsync in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::open(dir.path(), fsync).unwrap();
        let x = || crate::storage::once(Bytes::from_static(b"x"));
        s.put("a/put/k", x()).await.unwrap();
        s.put_if_absent("a/claimed/k", x()).await.unwrap();
        s.rename("a/put/k", "a/moved/k").await.unwrap();
        let synced: Vec<PathBuf> = SYNCED_DIRS
            .lock()
            .unwrap()
            .iter()
            .filter_map(|d| d.strip_prefix(dir.path()).ok())
            .map(Path::to_path_buf)
            .collect();
        let want: Vec<PathBuf> = if fsync {
            ["a/put", "a/claimed", "a/moved"]
                .map(PathBuf::from)
                .to_vec()
        } else {
            Vec::new()
        };
        assert_eq!(synced, want, "fsync = {fsync}");
    }
}

#[tokio::test]
async fn passes_the_storage_suite() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(FsStorage::open(dir.path(), true).unwrap());
    crate::storage::suite::run_all(s).await;
}

#[tokio::test]
async fn concurrent_put_if_absent_has_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(FsStorage::open(dir.path(), false).unwrap());
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.put_if_absent("k", crate::storage::once(Bytes::from(vec![i; 1000])))
                .await
                .is_ok()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap() as usize;
    }
    assert_eq!(wins, 1);
}

/// Writers of sibling keys while each other's deletes prune the shared
/// parent directories: every put lands (the race once surfaced as a
/// 500, ENOENT or EEXIST from `create_dir_all`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_survive_concurrent_pruning_of_their_parents() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(FsStorage::open(dir.path(), false).unwrap());
    let mut tasks = Vec::new();
    for w in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..300 {
                let key = format!("p/q{}/s/k{w}-{i}", i % 2);
                s.put(&key, crate::storage::once(Bytes::from_static(b"x")))
                    .await
                    .unwrap_or_else(|e| panic!("put {key}: {e}"));
                s.delete(&key).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// A file out of the page cache goes through the blocking pool with its
/// read-ahead; one in it is read inline; one with a hole in the cache
/// switches from one to the other and back: the same bytes every way.
#[tokio::test]
async fn file_streams_give_the_same_bytes_cached_or_not() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let data: Vec<u8> = (0..5 * READ_CHUNK + 777).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let whole = (0, 0);
    let hole = (READ_CHUNK as i64, READ_CHUNK as i64);
    for evict in [Some(whole), None, Some(hole)] {
        let file = std::fs::File::open(&path).unwrap();
        if let Some((offset, len)) = evict {
            file.sync_all().unwrap();
            // SAFETY: advice only; the kernel drops clean cached pages.
            unsafe {
                libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED)
            };
        }
        let (start, len) = (1000u64, (data.len() - 2000) as u64);
        let mut got = Vec::new();
        let mut s = file_stream(file, start, len);
        while let Some(chunk) = s.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert!(got == data[1000..data.len() - 1000], "evict={evict:?}");
    }
}

/// A pipe where an object belongs is refused, not waited on for good
/// (it would hold a worker thread: manifests are read inline).
#[tokio::test]
async fn a_pipe_in_place_of_an_object_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = FsStorage::open(dir.path(), false).unwrap();
    s.put_bytes("a/pipe", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let path = dir.path().join("a/pipe");
    std::fs::remove_file(&path).unwrap();
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_small("a/pipe", 10));
    let err = read.await.expect("no wait").unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let get = tokio::time::timeout(Duration::from_secs(5), s.get("a/pipe", None));
    assert!(get.await.expect("no wait").is_err());
}

/// Opening and reading a store writes nothing into it (a migrate's or
/// backup's source, a dry run); the first write makes the temp directory.
#[tokio::test]
async fn only_a_write_makes_the_temp_directory() {
    let dir = tempfile::tempdir().unwrap();
    let s = FsStorage::open(dir.path(), false).unwrap();
    s.ping().await.unwrap();
    assert!(matches!(s.list("").await, Ok(v) if v.is_empty()));
    assert_eq!(clean_tmp_in(dir.path(), Duration::ZERO).unwrap(), 0);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    s.put_bytes("a/b", Bytes::from_static(b"x")).await.unwrap();
    assert!(dir.path().join(TMP_DIR).is_dir());
    assert_eq!(std::fs::read(dir.path().join("a/b")).unwrap(), b"x");
}

#[tokio::test]
async fn the_sweep_removes_only_old_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = FsStorage::open(dir.path(), false).unwrap();
    std::fs::create_dir(dir.path().join(TMP_DIR)).unwrap();
    std::fs::write(dir.path().join(TMP_DIR).join("leftover"), b"x").unwrap();
    assert_eq!(s.sweep_abandoned().await.unwrap(), 0);
    assert_eq!(clean_tmp_in(dir.path(), Duration::ZERO).unwrap(), 1);
    s.put_bytes("k", Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(clean_tmp_in(dir.path(), Duration::ZERO).unwrap(), 0);
    assert!(dir.path().join(TMP_DIR).join(LOCK_FILE).exists());
}

/// Filesystems without locks (NFS without its lock service) are written to without
/// them; other failures to lock stay errors.
#[test]
fn a_filesystem_without_locks_is_written_without() {
    for errno in [libc::ENOLCK, libc::EOPNOTSUPP, libc::ENOSYS] {
        assert!(without_file_locks(&io::Error::from_raw_os_error(errno)));
    }
    for errno in [libc::EBADF, libc::EINTR, libc::EIO] {
        assert!(!without_file_locks(&io::Error::from_raw_os_error(errno)));
    }
}

/// Another process replacing the object holds the lock: the delete
/// waits for it, then judges the new bytes and keeps them.
#[tokio::test]
async fn a_conditional_delete_waits_for_a_replacement_under_way() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(FsStorage::open(dir.path(), false).unwrap());
    let old = Bytes::from_static(b"sha256:old");
    s.put_bytes("tag", old.clone()).await.unwrap();
    let held = lock_replacements(dir.path()).unwrap();
    let deleting = tokio::spawn({
        let s = s.clone();
        async move { s.delete_if("tag", &old).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!deleting.is_finished(), "the delete did not wait");
    let new = dir.path().join(TMP_DIR).join("new");
    std::fs::write(&new, b"sha256:new").unwrap();
    std::fs::rename(&new, dir.path().join("tag")).unwrap();
    drop(held);
    assert!(!deleting.await.unwrap());
    assert_eq!(
        std::fs::read(dir.path().join("tag")).unwrap(),
        b"sha256:new"
    );
}

/// An object a conditional delete judges and keeps is there for every
/// read meanwhile (it used to be moved aside for the look: a GET of the
/// tag could answer 404).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_judged_and_kept_never_goes_missing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(FsStorage::open(dir.path(), false).unwrap());
    s.put_bytes("tag", Bytes::from_static(b"sha256:new"))
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = tokio::spawn({
        let (s, stop) = (s.clone(), stop.clone());
        async move {
            let mut missed = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if s.read_small("tag", 64).await.is_err() {
                    missed += 1;
                }
                tokio::task::yield_now().await;
            }
            missed
        }
    });
    let stale = Bytes::from_static(b"sha256:old");
    for _ in 0..2000 {
        assert!(!s.delete_if("tag", &stale).await.unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(reader.await.unwrap(), 0, "reads missed the object");
}
