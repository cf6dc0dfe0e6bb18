//! The implementation of the `SIGBUS` guard of memory maps; [`crate::guard`] is its public
//! face and says what it does and its limits.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use crate::buffer::{BufferKind, BufferOwner};
use crate::error::{Error, Result};

/// How many maps can be guarded at once; a map made while this many are live is not
/// guarded (see the module's docs).
pub const MAX_GUARDED_MAPS: usize = 4096;

/// Slot states, in the low two bits of [`Slot::state`]; the bits above count the slot's
/// uses, so that a reader can tell a slot that was freed and taken again while it looked.
const FREE: usize = 0;
const BUSY: usize = 1;
const LIVE: usize = 2;
const TAG: usize = 3;

/// One registered map. Every field is an atomic so that the signal handler can read it.
struct Slot {
    state: AtomicUsize,
    /// The first address of the map.
    start: AtomicUsize,
    /// The length of the map, rounded up to whole pages.
    len: AtomicUsize,
    /// The mapped file's [`FileId`], for the handler to learn the file's length.
    path: AtomicPtr<u8>,
    dev: AtomicU64,
    ino: AtomicU64,
    /// The offset in the map from which its data is lost; `usize::MAX` while it is intact.
    lost_from: AtomicUsize,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            state: AtomicUsize::new(FREE),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            path: AtomicPtr::new(std::ptr::null_mut()),
            dev: AtomicU64::new(0),
            ino: AtomicU64::new(0),
            lost_from: AtomicUsize::new(0),
        }
    }
}

/// How the handler finds a mapped file's length without holding the file open (a map per
/// file of a dataset of thousands of shards must not cost a file descriptor each): its
/// absolute path, a NUL-terminated string that the map's owner keeps alive while the map is
/// registered (null: unknown), and its device and inode numbers, which tell the mapped file
/// from another one put at the path since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // No handler reads it there.
struct FileId {
    path: *mut u8,
    dev: u64,
    ino: u64,
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl FileId {
    const NONE: FileId = FileId {
        path: std::ptr::null_mut(),
        dev: 0,
        ino: 0,
    };
}

/// A map found by [`Table::find`], as it was when it was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct Found {
    index: usize,
    state: usize,
    start: usize,
    len: usize,
    file: FileId,
}

/// A fixed-size, lock-free table of maps: registration and removal use compare-and-swap,
/// lookups (from the signal handler) only loads.
struct Table<const N: usize> {
    slots: [Slot; N],
    /// Where the next registration starts looking for a free slot.
    hint: AtomicUsize,
}

impl<const N: usize> Table<N> {
    const fn new() -> Self {
        Table {
            slots: [const { Slot::new() }; N],
            hint: AtomicUsize::new(0),
        }
    }

    /// Registers the map `start..start + len` of `file`; `None` when the table is full.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // Nothing is registered there.
    fn register(&self, start: usize, len: usize, file: FileId) -> Option<usize> {
        let first = self.hint.load(Ordering::Relaxed);
        for k in 0..N {
            let index = (first + k) % N;
            let slot = &self.slots[index];
            let state = slot.state.load(Ordering::Relaxed);
            if state & TAG != FREE {
                continue;
            }
            let uses = (state >> 2).wrapping_add(1);
            if slot
                .state
                .compare_exchange(
                    state,
                    uses << 2 | BUSY,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_err()
            {
                continue;
            }
            slot.start.store(start, Ordering::Relaxed);
            slot.len.store(len, Ordering::Relaxed);
            slot.path.store(file.path, Ordering::Relaxed);
            slot.dev.store(file.dev, Ordering::Relaxed);
            slot.ino.store(file.ino, Ordering::Relaxed);
            slot.lost_from.store(usize::MAX, Ordering::Relaxed);
            slot.state.store(uses << 2 | LIVE, Ordering::Release);
            self.hint.store((index + 1) % N, Ordering::Relaxed);
            return Some(index);
        }
        None
    }

    /// Removes the map registered at `index`.
    fn unregister(&self, index: usize) {
        let slot = &self.slots[index];
        let state = slot.state.load(Ordering::Relaxed);
        debug_assert_eq!(state & TAG, LIVE, "unregistering a slot that is not live");
        let busy = state & !TAG | BUSY;
        slot.state.store(busy, Ordering::Relaxed);
        // The fields are cleared after the state says BUSY (a reader that sees them cleared
        // sees BUSY when it looks again).
        fence(Ordering::Release);
        slot.start.store(0, Ordering::Relaxed);
        slot.len.store(0, Ordering::Relaxed);
        slot.path.store(std::ptr::null_mut(), Ordering::Relaxed);
        slot.state.store(state & !TAG | FREE, Ordering::Release);
    }

    /// The live map that holds `addr`. Only loads: safe in a signal handler.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn find(&self, addr: usize) -> Option<Found> {
        for (index, slot) in self.slots.iter().enumerate() {
            let state = slot.state.load(Ordering::Acquire);
            if state & TAG != LIVE {
                continue;
            }
            let start = slot.start.load(Ordering::Relaxed);
            let len = slot.len.load(Ordering::Relaxed);
            let file = FileId {
                path: slot.path.load(Ordering::Relaxed),
                dev: slot.dev.load(Ordering::Relaxed),
                ino: slot.ino.load(Ordering::Relaxed),
            };
            // The fields belong to `state` only if the slot did not change while they were
            // read (a sequence lock's check).
            fence(Ordering::Acquire);
            if slot.state.load(Ordering::Relaxed) != state {
                continue;
            }
            if addr >= start && addr - start < len {
                return Some(Found {
                    index,
                    state,
                    start,
                    len,
                    file,
                });
            }
        }
        None
    }

    /// Whether the slot still holds the map `found` describes.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn still(&self, found: &Found) -> bool {
        self.slots[found.index].state.load(Ordering::Acquire) == found.state
    }

    /// Records that the data of the map at `index` is lost from offset `from` on.
    fn mark_lost(&self, index: usize, from: usize) {
        self.slots[index]
            .lost_from
            .fetch_min(from, Ordering::AcqRel);
    }

    /// The offset from which the data of the map at `index` is lost (`usize::MAX`: none).
    fn lost_from(&self, index: usize) -> usize {
        self.slots[index].lost_from.load(Ordering::Acquire)
    }

    /// How many maps are registered.
    fn live(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state.load(Ordering::Relaxed) & TAG == LIVE)
            .count()
    }
}

/// Every map npyflow guards.
static TABLE: Table<MAX_GUARDED_MAPS> = Table::new();

/// How many maps are guarded now (at most [`MAX_GUARDED_MAPS`]).
pub fn guarded_maps() -> usize {
    TABLE.live()
}

/// Puts npyflow's `SIGBUS` handler back in front when other code installed its own since
/// (npyflow's then chains to it); does nothing before npyflow has mapped a file. One system
/// call.
///
/// npyflow calls it each time it maps a file. A front that runs code which may install
/// handlers (Python's `faulthandler.enable()`) calls it before it reads: the Python package
/// does when a pass starts.
pub fn restore_handler() {
    #[cfg(target_os = "linux")]
    handler::restore();
}

/// A read-only map of a whole file, registered with the `SIGBUS` guard while it lives.
pub(crate) struct MappedFile {
    map: memmap2::Mmap,
    /// The path the file was opened with, for errors.
    path: PathBuf,
    /// The file's absolute path, NUL-terminated, where [`FileId::path`] points; and the
    /// file's device and inode numbers. `None` off Unix, or for a path with a NUL.
    #[cfg_attr(not(unix), allow(dead_code))]
    id: Option<(std::ffi::CString, u64, u64)>,
    /// The table slot; `None` when the map is not guarded (table full, or not Linux).
    slot: Option<usize>,
}

impl MappedFile {
    /// Maps `file` (opened from `path`, which errors name) read-only and guards the map.
    pub(crate) fn map(file: &File, path: &Path) -> io::Result<MappedFile> {
        // SAFETY: the map is read-only and private to this process; npyflow never writes
        // to files it maps and treats them as immutable while mapped. memmap2 requires
        // that the file is not changed while mapped: if another process truncates it
        // anyway, the pages past the new end are replaced by zero pages in the SIGBUS
        // handler below (the bytes behind our slices change from file data to zeros, which
        // is plain data to every reader) and the map is marked so that readers report an
        // error. Tested by `truncated_file_reads_as_an_error` here and by
        // tests/mapped_faults.rs.
        let map = unsafe { memmap2::Mmap::map(file)? };
        let mut mapped = MappedFile {
            map,
            path: path.to_owned(),
            id: file_id(file, path),
            slot: None,
        };
        mapped.slot = register(&mapped);
        Ok(mapped)
    }

    /// The mapped file's length now, when it is still at its path.
    fn current_len(&self) -> Option<u64> {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            use std::os::unix::fs::MetadataExt;
            let (c_path, dev, ino) = self.id.as_ref()?;
            let at = Path::new(std::ffi::OsStr::from_bytes(c_path.as_bytes()));
            let m = std::fs::metadata(at).ok()?;
            (m.dev() == *dev && m.ino() == *ino).then_some(m.len())
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    fn lost_error(&self) -> Error {
        let mapped = self.map.len();
        let message = match self.current_len() {
            Some(len) if len < mapped as u64 => format!(
                "the file was truncated while memory-mapped (from {mapped} to {len} bytes); \
                 elements read from it since may be zeros"
            ),
            _ => "part of the file was lost while memory-mapped (it was truncated, or could \
                  not be read); elements read from it since may be zeros"
                .to_string(),
        };
        Error::io(
            &self.path,
            io::Error::new(io::ErrorKind::UnexpectedEof, message),
        )
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // Before the map goes (its fields drop after this).
        if let Some(index) = self.slot {
            TABLE.unregister(index);
        }
    }
}

impl BufferOwner for MappedFile {
    fn bytes(&self) -> &[u8] {
        &self.map
    }

    fn kind(&self) -> BufferKind {
        BufferKind::Mapped
    }

    fn check_intact(&self, range: Range<usize>) -> Result<()> {
        let Some(index) = self.slot else {
            return Ok(());
        };
        if range.end > range.start && range.end <= self.map.len() {
            // Touch the window's last byte, so that a window reaching past the file's new
            // end faults now, in the guard, rather than later in whoever reads it.
            // SAFETY: `range.end - 1` is inside the map, which lives as long as `self`; the
            // map is registered (`slot`), so if its page is lost the handler maps a zero
            // page over it and the read completes.
            unsafe { std::ptr::read_volatile(self.map.as_ptr().add(range.end - 1)) };
        }
        if range.end <= TABLE.lost_from(index) {
            Ok(())
        } else {
            Err(self.lost_error())
        }
    }

    fn verify_intact(&self, range: Range<usize>) -> Result<()> {
        match self.current_len() {
            Some(len) if len < range.end as u64 => {
                if let Some(index) = self.slot {
                    TABLE.mark_lost(index, len as usize);
                }
                Err(self.lost_error())
            }
            _ => self.check_intact(range),
        }
    }
}

/// The absolute path (NUL-terminated), device and inode numbers of `file`, opened at `path`.
#[cfg(unix)]
fn file_id(file: &File, path: &Path) -> Option<(std::ffi::CString, u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata().ok()?;
    let absolute = std::path::absolute(path).ok()?;
    let c_path = std::ffi::CString::new(absolute.as_os_str().as_bytes()).ok()?;
    Some((c_path, m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_file: &File, _path: &Path) -> Option<(std::ffi::CString, u64, u64)> {
    None
}

#[cfg(target_os = "linux")]
fn register(mapped: &MappedFile) -> Option<usize> {
    if mapped.map.is_empty() || !handler::ensure_installed() {
        return None;
    }
    let page = handler::page_size();
    let len = mapped.map.len().div_ceil(page) * page;
    let file = match &mapped.id {
        Some((c_path, dev, ino)) => FileId {
            // The string lives in `mapped.id` until `mapped` is dropped, which unregisters
            // the map first; the handler only reads it.
            path: c_path.as_ptr().cast_mut().cast(),
            dev: *dev,
            ino: *ino,
        },
        None => FileId::NONE,
    };
    TABLE.register(mapped.map.as_ptr() as usize, len, file)
}

#[cfg(not(target_os = "linux"))]
fn register(_mapped: &MappedFile) -> Option<usize> {
    None
}

/// The `SIGBUS` handler and its installation.
#[cfg(target_os = "linux")]
mod handler;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::Buffer;

    fn id(ino: u64) -> FileId {
        FileId {
            ino,
            ..FileId::NONE
        }
    }

    #[test]
    fn the_table_registers_finds_and_removes() {
        let t: Table<3> = Table::new();
        let a = t.register(0x1000, 0x2000, id(5)).unwrap();
        let b = t.register(0x8000, 0x1000, id(6)).unwrap();
        assert_ne!(a, b);
        assert_eq!(t.live(), 2);
        let found = t.find(0x2fff).unwrap();
        assert_eq!(
            (found.index, found.start, found.len, found.file),
            (a, 0x1000, 0x2000, id(5))
        );
        assert_eq!(t.find(0x8000).unwrap().index, b);
        assert_eq!(t.find(0x3000), None, "one past the end of a");
        assert_eq!(t.find(0xfff), None);
        assert_eq!(t.lost_from(a), usize::MAX);
        t.mark_lost(a, 0x1800);
        t.mark_lost(a, 0x1900); // the lowest stays
        assert_eq!(t.lost_from(a), 0x1800);
        assert!(t.still(&found));
        t.unregister(a);
        assert!(!t.still(&found));
        assert_eq!(t.find(0x1000), None);
        assert_eq!(t.live(), 1);
        // With the other slots taken, a's is taken again: intact, and with a new state.
        t.register(0x20000, 0x1000, id(8)).unwrap();
        let c = t.register(0x1000, 0x1000, id(7)).unwrap();
        assert_eq!(c, a);
        assert_eq!(t.lost_from(c), usize::MAX);
        let again = t.find(0x1000).unwrap();
        assert_eq!(again.index, a);
        assert_ne!(again.state, found.state);
        assert!(!t.still(&found));
    }

    #[test]
    fn a_full_table_refuses_and_frees() {
        let t: Table<2> = Table::new();
        let a = t.register(0x1000, 0x1000, id(1)).unwrap();
        t.register(0x2000, 0x1000, id(2)).unwrap();
        assert_eq!(t.register(0x3000, 0x1000, id(3)), None);
        t.unregister(a);
        assert!(t.register(0x3000, 0x1000, id(3)).is_some());
        assert_eq!(t.find(0x3000).unwrap().file, id(3));
    }

    #[test]
    fn registration_from_many_threads_never_shares_a_slot() {
        let t: Table<64> = Table::new();
        let got: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|k| {
                    let t = &t;
                    s.spawn(move || {
                        (0..8)
                            .map(|i| {
                                t.register((k * 8 + i + 1) * 0x1000, 0x1000, FileId::NONE)
                                    .unwrap()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 64);
        assert_eq!(t.register(0x100000, 0x1000, FileId::NONE), None);
        for addr in 1..=64 {
            assert_eq!(t.find(addr * 0x1000 + 5).unwrap().start, addr * 0x1000);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn maps_are_guarded_while_they_live() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bin");
        std::fs::write(&path, vec![7u8; 10_000]).unwrap();
        let file = File::open(&path).unwrap();
        let map = MappedFile::map(&file, &path).unwrap();
        assert!(handler::is_installed());
        assert!(map.slot.is_some());
        let index = map.slot.unwrap();
        let found = TABLE.find(map.map.as_ptr() as usize + 9_999).unwrap();
        assert_eq!(found.index, index);
        drop(map);
        assert!(!TABLE.still(&found), "dropping the map unregisters it");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn truncated_file_reads_as_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        let page = handler::page_size().max(4096);
        std::fs::write(&path, vec![1u8; 8 * page]).unwrap();
        let file = File::open(&path).unwrap();
        let buf = Buffer::from_owner(MappedFile::map(&file, &path).unwrap());
        let head = buf.slice(0..page).unwrap();
        let tail = buf.slice(5 * page..6 * page).unwrap();
        assert!(tail.check_intact().is_ok());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(2 * page as u64 + 10)
            .unwrap();
        // Reading a lost page completes, with zeros, and the window reports it.
        assert_eq!(tail.as_slice()[0], 0);
        let e = tail.check_intact().unwrap_err().to_string();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        assert!(e.contains("truncated while memory-mapped"), "{e}");
        // The handler learnt the new length: the zeroed tail of the last page counts as lost
        // too, the bytes before it do not.
        assert!(buf
            .slice(2 * page..2 * page + 10)
            .unwrap()
            .check_intact()
            .is_ok());
        assert!(buf
            .slice(2 * page..2 * page + 11)
            .unwrap()
            .check_intact()
            .is_err());
        assert_eq!(head.as_slice(), &vec![1u8; page][..]);
        assert!(head.check_intact().is_ok() && head.verify_intact().is_ok());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn verify_finds_a_truncation_before_any_fault() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.bin");
        std::fs::write(&path, vec![3u8; 3 * 4096]).unwrap();
        let file = File::open(&path).unwrap();
        let buf = Buffer::from_owner(MappedFile::map(&file, &path).unwrap());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(100)
            .unwrap();
        // Bytes 100.. of the first page read as zeros without a fault: only stat knows.
        let first_page = buf.slice(0..4096).unwrap();
        let e = first_page.verify_intact().unwrap_err().to_string();
        assert!(e.contains("from 12288 to 100 bytes"), "{e}");
        // Recorded: the cheap check knows from now on.
        assert!(first_page.check_intact().is_err());
        assert!(buf.slice(0..100).unwrap().check_intact().is_ok());
    }
}
