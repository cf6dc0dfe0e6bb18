//! The table of guarded maps: a fixed-size, lock-free registry that the `SIGBUS` handler
//! reads (loads only) to tell a fault in a guarded map from any other.

use std::sync::atomic::{fence, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

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
pub(super) struct FileId {
    pub(super) path: *mut u8,
    pub(super) dev: u64,
    pub(super) ino: u64,
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl FileId {
    pub(super) const NONE: FileId = FileId {
        path: std::ptr::null_mut(),
        dev: 0,
        ino: 0,
    };
}

/// A map found by [`Table::find`], as it was when it was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(super) struct Found {
    pub(super) index: usize,
    state: usize,
    pub(super) start: usize,
    pub(super) len: usize,
    pub(super) file: FileId,
}

/// A fixed-size, lock-free table of maps: registration and removal use compare-and-swap,
/// lookups (from the signal handler) only loads.
pub(super) struct Table<const N: usize> {
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
    pub(super) fn register(&self, start: usize, len: usize, file: FileId) -> Option<usize> {
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
    pub(super) fn unregister(&self, index: usize) {
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
    pub(super) fn find(&self, addr: usize) -> Option<Found> {
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
    pub(super) fn still(&self, found: &Found) -> bool {
        self.slots[found.index].state.load(Ordering::Acquire) == found.state
    }

    /// Records that the data of the map at `index` is lost from offset `from` on.
    pub(super) fn mark_lost(&self, index: usize, from: usize) {
        self.slots[index]
            .lost_from
            .fetch_min(from, Ordering::AcqRel);
    }

    /// The offset from which the data of the map at `index` is lost (`usize::MAX`: none).
    pub(super) fn lost_from(&self, index: usize) -> usize {
        self.slots[index].lost_from.load(Ordering::Acquire)
    }

    /// How many maps are registered.
    pub(super) fn live(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state.load(Ordering::Relaxed) & TAG == LIVE)
            .count()
    }
}

/// Every map npyflow guards.
pub(super) static TABLE: Table<MAX_GUARDED_MAPS> = Table::new();

#[cfg(test)]
mod tests {
    use super::*;

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
}
