//! A local cache directory for bytes read from object storage (the storage options
//! `cache_dir` and `cache_max_bytes`): ranges read once are kept as files and read from
//! there by later reads of the same range of the same object version.
//!
//! - **What is kept:** the ranges npyflow reads in whole blocks (a remote `.npy`'s blocks of
//!   `block_bytes`, its header, an `.npz`'s directory and members), keyed by the object's URL,
//!   its ETag and the byte range. An object without an ETag is not cached (nothing would tell
//!   a new version from the old). A batch of scattered rows (after `global_shuffle`) is read
//!   by its own small ranges, which are not kept.
//! - **Bounded:** after writes, the directory's files are kept within `cache_max_bytes`
//!   (10 GiB by default), the least recently used (by modification time; a hit touches it)
//!   removed first. Processes sharing the directory each keep the bound; it can be passed by
//!   the files being written at that moment.
//! - **Safe:** a file is written under a temporary name and renamed into place, so readers
//!   see a whole file or none; each file holds its key and a CRC-32 of its bytes, checked on
//!   every read: a damaged, truncated or foreign file is removed and its range read from the
//!   store again. Writing errors (a full disk) leave the read as it was, uncached.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"NPYFLOWC";
/// Magic, key length (u32), payload length (u64), payload CRC-32 (u32).
const FIXED: usize = 8 + 4 + 8 + 4;
const SUFFIX: &str = ".range";
/// Writes between two scans of the directory (other processes write there too).
const SCAN_EVERY: u32 = 8;
/// Temporary files older than this are left over by a process that died: removed.
const STALE_TMP: Duration = Duration::from_secs(3600);
/// The default bound, when `cache_dir` is given without `cache_max_bytes`.
pub(crate) const DEFAULT_MAX_BYTES: u64 = 10 << 30;

/// One cache directory, shared by every store of this process that names it.
pub(crate) struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    warned: AtomicBool,
}

struct State {
    /// The directory's bytes as last scanned, plus what this process wrote since.
    total: Option<u64>,
    writes_since_scan: u32,
}

/// The cache for `dir` bounded by `max_bytes` (made if missing): one per directory and bound.
pub(crate) fn open(dir: &str, max_bytes: u64) -> Result<Arc<DiskCache>> {
    static CACHES: OnceLock<Mutex<HashMap<(PathBuf, u64), Arc<DiskCache>>>> = OnceLock::new();
    let root = PathBuf::from(dir).join("npyflow-ranges-v1");
    fs::create_dir_all(&root).map_err(|e| {
        Error::io(
            dir.to_string(),
            std::io::Error::new(
                e.kind(),
                format!("cannot make the cache directory (storage option cache_dir): {e}"),
            ),
        )
    })?;
    let mut all = CACHES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    Ok(all
        .entry((root.clone(), max_bytes))
        .or_insert_with(|| {
            Arc::new(DiskCache {
                dir: root,
                max_bytes,
                state: Mutex::new(State {
                    total: None,
                    writes_since_scan: 0,
                }),
                warned: AtomicBool::new(false),
            })
        })
        .clone())
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
    fn path_of(&self, key: &str) -> PathBuf {
        let a = fnv(0xcbf2_9ce4_8422_2325, key.as_bytes());
        let b = fnv(0x6c62_272e_07bb_0142, key.as_bytes());
        self.dir.join(format!("{a:016x}{b:016x}{SUFFIX}"))
    }

    /// The bytes kept for `key`, if a whole, undamaged file holds them (`len` bytes). A file
    /// that fails its checks is removed.
    pub(crate) fn get(&self, key: &str, len: u64) -> Option<Bytes> {
        let path = self.path_of(key);
        let data = fs::read(&path).ok()?;
        match check(&data, key, len) {
            Some(at) => {
                // Recently used: eviction goes by modification time.
                if let Ok(f) = fs::File::options().write(true).open(&path) {
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
        if let Err(e) = self.write(key, bytes) {
            if !self.warned.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "npyflow: cannot write to the cache directory {}: {e}; reading on without \
                     keeping what is read",
                    self.dir.display()
                );
            }
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.writes_since_scan += 1;
        let total = st.total.map(|t| t + size);
        st.total = total;
        if total.is_none_or(|t| t > self.max_bytes) || st.writes_since_scan >= SCAN_EVERY {
            st.total = Some(self.evict());
            st.writes_since_scan = 0;
        }
    }

    fn write(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = self.path_of(key);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("x");
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}-{name}",
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
        result
    }

    /// Scans the directory, removes stale temporary files and the least recently used files
    /// past the bound; returns the bytes left.
    fn evict(&self) -> u64 {
        let mut files: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        let now = SystemTime::now();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            let modified = meta.modified().unwrap_or(now);
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".tmp-") {
                if now.duration_since(modified).unwrap_or_default() > STALE_TMP {
                    let _ = fs::remove_file(e.path());
                }
                continue;
            }
            if name.ends_with(SUFFIX) {
                files.push((modified, meta.len(), e.path()));
            }
        }
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        if total > self.max_bytes {
            files.sort();
            for (_, len, path) in files {
                if total <= self.max_bytes {
                    break;
                }
                if fs::remove_file(&path).is_ok() {
                    total -= len;
                }
            }
        }
        total
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
        // A truncated file too.
        c.put(key, &data);
        fs::write(&path, &fs::read(&path).unwrap()[..50]).unwrap();
        assert!(c.get(key, 100).is_none());
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
            if c.get(&keys[0], 1000).is_none() && i < 5 {
                panic!("key 0 lost early");
            }
            let size: u64 = fs::read_dir(&c.dir)
                .unwrap()
                .flatten()
                .map(|e| e.metadata().unwrap().len())
                .sum();
            assert!(size <= 5 * entry, "{size} > {}", 5 * entry);
        }
        assert!(c.get(&keys[0], 1000).is_some());
        assert!(c.get(&keys[11], 1000).is_some());
        assert!(c.get(&keys[1], 1000).is_none());
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
