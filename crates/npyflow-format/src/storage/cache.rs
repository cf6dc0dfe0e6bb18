//! A local cache directory for bytes read from object storage (the storage options
//! `cache_dir` and `cache_max_bytes`): ranges read once are kept as files and read from
//! there by later reads of the same range of the same object version.
//!
//! - **What is kept:** every range an [`Object`](super::Object) with an ETag reads, keyed by
//!   the object's URL, ETag, size and the byte range. The readers above read in fixed pieces
//!   (a remote `.npy`'s blocks of `block_bytes`, its header, an `.npz`'s directory and
//!   members), so the next pass asks for the same ranges and finds them here. An object
//!   without an ETag is not cached (nothing would tell a new version from the old).
//! - **Bounded:** the files in the directory never hold more than `cache_max_bytes` bytes
//!   together (10 GiB by default). A write takes the directory's lock file, removes the
//!   least recently used files (by modification time; a hit touches its file) until the new
//!   file fits, writes it and releases the lock; every process sharing the directory does
//!   the same, so the bound holds for all of them together.
//! - **Safe:** a file is written under a temporary name and renamed into place, so readers
//!   see a whole file or none. Each file holds its key, its length and a CRC-32 of its bytes,
//!   checked on every read: a damaged, truncated or foreign file is removed and its range
//!   read from the store again. Temporary files left by a process that died while writing
//!   are removed by the next writer. Writing errors (a full disk) leave the read as it was,
//!   uncached.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"NPYFLOWC";
/// Magic, key length (u32), payload length (u64), payload CRC-32 (u32).
const FIXED: usize = 8 + 4 + 8 + 4;
const SUFFIX: &str = ".range";
const TMP_PREFIX: &str = ".tmp-";
const LOCK_NAME: &str = ".lock";
/// The default bound, when `cache_dir` is given without `cache_max_bytes`.
pub(crate) const DEFAULT_MAX_BYTES: u64 = 10 << 30;

/// One cache directory, shared by every store of this process that names it.
pub(crate) struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
    warned: AtomicBool,
    /// The keys being read in this process, each with a lock its readers take in turn: the
    /// second reader of a range finds the file the first one wrote, instead of making a
    /// second request.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A reader's turn at one key ([`DiskCache::turn`]); the next reader's starts when it drops.
pub(crate) struct Turn {
    cache: Arc<DiskCache>,
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.guard.take();
        let mut turns = self.cache.turns.lock().unwrap_or_else(|p| p.into_inner());
        // Nobody else waits (the map's and this one's are the only references): forgotten.
        if Arc::strong_count(&self.lock) <= 2 {
            turns.remove(&self.key);
        }
    }
}

/// The cache for `dir` bounded by `max_bytes` (made if missing): one per directory and bound.
pub(crate) fn open(dir: &str, max_bytes: u64) -> Result<Arc<DiskCache>> {
    static CACHES: OnceLock<Registry> = OnceLock::new();
    let root = PathBuf::from(dir).join("npyflow-ranges-v1");
    let mut all = CACHES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(c) = all.get(&(root.clone(), max_bytes)) {
        return Ok(c.clone());
    }
    let c = Arc::new(DiskCache::new(root.clone(), max_bytes).map_err(|e| {
        Error::io(
            dir.to_string(),
            std::io::Error::new(
                e.kind(),
                format!("cannot make the cache directory (storage option cache_dir): {e}"),
            ),
        )
    })?);
    all.insert((root, max_bytes), c.clone());
    Ok(c)
}

/// The caches opened in this process, by directory and bound.
type Registry = Mutex<HashMap<(PathBuf, u64), Arc<DiskCache>>>;

/// The directory's lock file, held locked (`flock`, exclusive) until dropped; the system
/// releases it when the process dies. Locks of two opens conflict even in one process.
struct DirLock(#[allow(dead_code)] fs::File);

impl DirLock {
    // One `flock` call: the standard library's `File::lock` is newer than the MSRV (1.85).
    #[allow(unsafe_code)]
    fn take(path: &Path) -> std::io::Result<DirLock> {
        let f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        #[cfg(unix)]
        loop {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock on a descriptor that `f` owns and keeps open.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(DirLock(f))
    }
}

/// FNV-1a, 64 bits, from `seed`.
fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl DiskCache {
    /// A cache in `dir` (made if missing). Two of them on one directory behave as two
    /// processes sharing it.
    fn new(dir: PathBuf, max_bytes: u64) -> std::io::Result<DiskCache> {
        fs::create_dir_all(&dir)?;
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(LOCK_NAME))?;
        Ok(DiskCache {
            dir,
            max_bytes,
            warned: AtomicBool::new(false),
            turns: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for this process's other readers of `key` to finish (one reads from the store
    /// and keeps the range; the others then find it here).
    pub(crate) async fn turn(self: &Arc<Self>, key: &str) -> Turn {
        let lock = self
            .turns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        let mut turn = Turn {
            cache: self.clone(),
            key: key.to_string(),
            lock,
            guard: None,
        };
        turn.guard = Some(turn.lock.clone().lock_owned().await);
        turn
    }

    fn path_of(&self, key: &str) -> PathBuf {
        let a = fnv(0xcbf2_9ce4_8422_2325, key.as_bytes());
        let b = fnv(0x6c62_272e_07bb_0142, key.as_bytes());
        self.dir.join(format!("{a:016x}{b:016x}{SUFFIX}"))
    }

    /// The bytes kept for `key`, if a whole, undamaged file holds them (`len` bytes). A file
    /// that fails its checks is removed.
    pub(crate) fn get(&self, key: &str, len: u64) -> Option<Bytes> {
        let path = self.path_of(key);
        let want = (FIXED + key.len()) as u64 + len;
        let size = fs::metadata(&path).ok()?.len();
        // A file of another length is not read (nor is its size allocated).
        let data = if size == want {
            fs::read(&path).ok()?
        } else {
            Vec::new()
        };
        match check(&data, key, len) {
            Some(at) => {
                // Recently used: eviction goes by modification time.
                if let Ok(f) = fs::File::options().append(true).open(&path) {
                    let _ = f.set_modified(SystemTime::now());
                }
                Some(Bytes::from(data).slice(at..))
            }
            None => {
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Keeps `bytes` for `key` (errors leave the cache as it was; the first is reported).
    pub(crate) fn put(&self, key: &str, bytes: &[u8]) {
        let size = (FIXED + key.len() + bytes.len()) as u64;
        if size > self.max_bytes {
            return;
        }
        if let Err(e) = self.write(key, bytes, size) {
            if !self.warned.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "npyflow: cannot write to the cache directory {}: {e}; reading on without \
                     keeping what is read",
                    self.dir.display()
                );
            }
        }
    }

    /// Under the directory's lock: makes room for `size` bytes, then writes the file under a
    /// temporary name and renames it into place.
    fn write(&self, key: &str, bytes: &[u8], size: u64) -> std::io::Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let lock = DirLock::take(&self.dir.join(LOCK_NAME))?;
        let path = self.path_of(key);
        if fs::metadata(&path).is_ok_and(|m| m.len() == size) {
            // Another process wrote it meanwhile (the same key is the same bytes).
            return Ok(());
        }
        self.make_room(size, &path)?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("x");
        let tmp = self.dir.join(format!(
            "{TMP_PREFIX}{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut f = fs::File::create(&tmp)?;
            let mut head = Vec::with_capacity(FIXED + key.len());
            head.extend_from_slice(MAGIC);
            head.extend_from_slice(&(key.len() as u32).to_le_bytes());
            head.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            head.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
            head.extend_from_slice(key.as_bytes());
            f.write_all(&head)?;
            f.write_all(bytes)?;
            drop(f);
            fs::rename(&tmp, &path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        drop(lock);
        result
    }

    /// With the lock held: removes temporary files (left by a process that died while
    /// writing: writers hold the lock) and `replacing`, then the least recently used files
    /// until `size` more bytes fit within the bound.
    fn make_room(&self, size: u64, replacing: &Path) -> std::io::Result<()> {
        let mut files: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        for e in fs::read_dir(&self.dir)?.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TMP_PREFIX) || e.path() == replacing {
                let _ = fs::remove_file(e.path());
                continue;
            }
            if !name.ends_with(SUFFIX) {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            files.push((modified, meta.len(), e.path()));
        }
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        if total + size > self.max_bytes {
            files.sort();
            for (_, len, path) in files {
                if total + size <= self.max_bytes {
                    break;
                }
                match fs::remove_file(&path) {
                    Ok(()) => total -= len,
                    // Removed by a reader that found it damaged.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= len,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

/// Where the payload starts, if `data` is a whole file for `key` holding `len` bytes whose
/// CRC matches.
fn check(data: &[u8], key: &str, len: u64) -> Option<usize> {
    if data.len() < FIXED || &data[..8] != MAGIC {
        return None;
    }
    let key_len = u32::from_le_bytes(data[8..12].try_into().ok()?) as usize;
    let payload_len = u64::from_le_bytes(data[12..20].try_into().ok()?);
    let crc = u32::from_le_bytes(data[20..24].try_into().ok()?);
    let at = FIXED.checked_add(key_len)?;
    if payload_len != len || data.len() as u64 != at as u64 + payload_len {
        return None;
    }
    if &data[FIXED..at] != key.as_bytes() || crc32fast::hash(&data[at..]) != crc {
        return None;
    }
    Some(at)
}

/// The bound from the option's text: a whole number of bytes.
pub(crate) fn parse_max_bytes(v: Option<&str>) -> std::result::Result<u64, String> {
    match v {
        None => Ok(DEFAULT_MAX_BYTES),
        Some(t) => t
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                format!(
                    "storage option cache_max_bytes={t:?} is not a positive whole number of bytes"
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The bytes of the files in `dir` (what the bound is about).
    fn dir_bytes(dir: &Path) -> u64 {
        fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    #[test]
    fn kept_ranges_come_back_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path().to_str().unwrap(), 1 << 20).unwrap();
        let key = "s3://b/x.npy\n\"etag\"\n0-100";
        assert!(c.get(key, 100).is_none());
        let data: Vec<u8> = (0..100u8).collect();
        c.put(key, &data);
        assert_eq!(&c.get(key, 100).unwrap()[..], &data[..]);
        // Another length or key: not this file.
        assert!(c.get(key, 99).is_none());
        c.put(key, &data);
        assert!(c.get("s3://b/x.npy\n\"other\"\n0-100", 100).is_none());
        // A flipped byte: detected, the file removed.
        let path = c.path_of(key);
        let mut raw = fs::read(&path).unwrap();
        let n = raw.len();
        raw[n - 3] ^= 1;
        fs::write(&path, &raw).unwrap();
        assert!(c.get(key, 100).is_none());
        assert!(!path.exists());
        // A truncated file too, and one grown past its length.
        c.put(key, &data);
        fs::write(&path, &fs::read(&path).unwrap()[..50]).unwrap();
        assert!(c.get(key, 100).is_none());
        assert!(!path.exists());
        c.put(key, &data);
        let mut long = fs::read(&path).unwrap();
        long.extend_from_slice(&[0; 7]);
        fs::write(&path, &long).unwrap();
        assert!(c.get(key, 100).is_none());
        // Put back after damage: read again.
        c.put(key, &data);
        assert_eq!(&c.get(key, 100).unwrap()[..], &data[..]);
    }

    #[test]
    fn the_bound_is_kept_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let entry = (FIXED + 8 + 1000) as u64;
        let c = open(dir.path().to_str().unwrap(), 5 * entry).unwrap();
        let keys: Vec<String> = (0..12).map(|i| format!("key{i:05}")).collect();
        for (i, k) in keys.iter().enumerate() {
            c.put(k, &vec![i as u8; 1000]);
            // Distinct modification times, then key 0 used again (kept).
            std::thread::sleep(Duration::from_millis(15));
            assert_eq!(&c.get(&keys[0], 1000).unwrap()[..], &[0u8; 1000][..]);
            assert!(dir_bytes(&c.dir) <= 5 * entry, "{}", dir_bytes(&c.dir));
        }
        // Key 0 (used after every write) and the last four written are kept; the rest went.
        for (i, k) in keys.iter().enumerate() {
            let kept = i == 0 || i >= 8;
            assert_eq!(c.get(k, 1000).is_some(), kept, "key {i}");
        }
        // A range larger than the bound is not kept, and removes nothing.
        c.put("huge", &vec![1; 6 * 1000]);
        assert!(c.get("huge", 6000).is_none());
        assert!(c.get(&keys[0], 1000).is_some());
    }

    #[test]
    fn writers_sharing_a_directory_keep_the_bound_and_leave_no_temporary_files() {
        // Four caches on one directory (as four processes would be), writing and reading at
        // once, while the directory's size is watched.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("c");
        let entry = (FIXED + 6 + 3000) as u64;
        let bound = 7 * entry + 100;
        let caches: Vec<Arc<DiskCache>> = (0..4)
            .map(|_| Arc::new(DiskCache::new(root.clone(), bound).unwrap()))
            .collect();
        // A temporary file left by a writer that died: removed by the next write.
        let stale = root.join(format!("{TMP_PREFIX}1-2-x{SUFFIX}"));
        fs::write(&stale, [0u8; 10]).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (root, done) = (root.clone(), done.clone());
            std::thread::spawn(move || {
                let mut most = 0;
                while !done.load(Ordering::Relaxed) {
                    // Listed first, then measured: a file counted existed when the listing
                    // ended (files are only made and removed, one writer at a time).
                    let names: Vec<PathBuf> = fs::read_dir(&root)
                        .unwrap()
                        .flatten()
                        .map(|e| e.path())
                        .collect();
                    let now: u64 = names
                        .iter()
                        .filter_map(|p| fs::metadata(p).ok())
                        .map(|m| m.len())
                        .sum();
                    most = most.max(now);
                }
                most
            })
        };
        let writers: Vec<_> = caches
            .iter()
            .enumerate()
            .map(|(w, c)| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..200u32 {
                        let k = format!("k{:04}", (i * 7 + w as u32 * 13) % 40);
                        let payload = vec![(i % 251) as u8; 3000];
                        if let Some(got) = c.get(&k, 3000) {
                            // Whatever writer kept it, it holds this key's bytes.
                            assert!(got.iter().all(|&b| b == got[0]), "{k}");
                        } else {
                            c.put(&k, &vec![payload[0]; 3000]);
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        let most = watcher.join().unwrap();
        assert!(most <= bound, "{most} > {bound}");
        assert!(!stale.exists());
        let left: Vec<String> = fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.iter().all(|n| !n.starts_with(TMP_PREFIX)), "{left:?}");
        assert!(left.iter().filter(|n| n.ends_with(SUFFIX)).count() >= 1);
        assert!(dir_bytes(&root) <= bound);
    }

    #[test]
    fn an_uncreatable_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        let err = open(file.join("sub").to_str().unwrap(), 100).err().unwrap();
        assert!(err.to_string().contains("cache_dir"), "{err}");
    }
}
