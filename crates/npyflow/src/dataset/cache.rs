//! `cache`: the first complete pass kept, in memory or in a file, and replayed after.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::plumbing::{
    describe_node, require, restore, BoxIter, Cardinality, Dataset, ElementIter, Node,
};
use super::state::State;
use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result, ResultExt};
use crate::format::guard::map_file;
use crate::format::npy::{read_npy_bytes, write_npy_to, WriteOptions};
use crate::tensor::Tensor;

/// What a cache file starts with, padded to 64 bytes with the rest of its first block.
const MAGIC: &[u8] = b"npyflow cache 1\n";
/// What a complete cache file ends with: this, then the number of tensors (u64, little
/// endian), in a last block of 64 bytes. A file without it was not finished.
const END: &[u8] = b"npyflow cache end\n";
const ALIGN: usize = 64;

/// A complete memory cache: the elements, and its input's state when the pass that made it
/// began (so a restore elsewhere can make it again).
type Complete = (Arc<Vec<Element>>, Option<State>);

struct MemoryCache {
    input: Dataset,
    done: Arc<Mutex<Option<Complete>>>,
}

/// A pass that replays a complete cache.
struct Replay {
    elements: Arc<Vec<Element>>,
    next: usize,
    /// The input's state when the cache's first pass began, so a restore in a process
    /// without the cache can make it again.
    input_start: Option<State>,
}

impl ElementIter for Replay {
    fn next(&mut self) -> Option<Result<Element>> {
        let e = self.elements.get(self.next)?.clone();
        self.next += 1;
        Some(Ok(e))
    }
    fn save(&self) -> Result<State> {
        Ok(State::new("Cache")
            .flag(true)
            .num(self.next as u64)
            .kid_opt(self.input_start.clone())
            .kid_opt(None))
    }
}

/// A cache's saved state.
struct Saved {
    /// Replaying a complete cache (or in the first pass).
    replaying: bool,
    /// Elements given.
    position: u64,
    /// The input's state when the first pass began.
    start: Option<State>,
    /// In the first pass: the input's state now.
    current: Option<State>,
}

fn read_cache_state(from: Option<State>) -> Result<Option<Saved>> {
    restore(from, "Cache", |r| {
        Ok(Saved {
            replaying: r.flag()?,
            position: r.num()?,
            start: r.kid_opt()?,
            current: r.kid_opt()?,
        })
    })
}

/// Where a cache pass starts: its input's state now, to save with the cache's.
fn start_of(input: &BoxIter) -> Option<State> {
    input.save().ok()
}

/// The input opened from `start`, or an error saying the state cannot be continued.
fn reopen(input: &Dataset, start: Option<State>) -> Result<BoxIter> {
    let start = start.ok_or_else(|| {
        super::state::mismatch("the cache's input could not be saved, so it cannot be made again")
    })?;
    input.open_from(Some(start))
}

/// Where a first pass keeps what it gives: in memory or in a file.
trait Keeper: Send {
    /// Keeps an element. An error stops the keeping (and stands in the element's place).
    fn keep(&mut self, e: &Element) -> Result<()>;
    /// The pass met an error: what was kept is not the data.
    fn abandon(&mut self);
    /// Puts `first`, the elements given before this pass was restored, before what was kept.
    fn prepend(&mut self, first: Vec<Element>);
    /// The pass ended: what was kept becomes the cache.
    fn finish(&mut self, input_start: &Option<State>) -> Result<()>;
}

/// A cache's first pass: the input's elements, kept as they go by.
struct Fill<K> {
    input: BoxIter,
    keeper: K,
    given: u64,
    input_start: Option<State>,
    /// Elements given before this pass was restored: not kept here, but read again from the
    /// start when the pass ends (so a restore costs nothing until then).
    prefix: u64,
    /// The input, to read the prefix again.
    source: Dataset,
}

impl<K: Keeper> Fill<K> {
    /// The first `prefix` elements of the pass, read again from the input's start.
    fn read_prefix(&self) -> Result<Vec<Element>> {
        let mut input = reopen(&self.source, self.input_start.clone())?;
        let mut out = Vec::with_capacity(usize::try_from(self.prefix).unwrap_or(0).min(1 << 16));
        for _ in 0..self.prefix {
            match input.next() {
                Some(item) => out.push(item?),
                None => {
                    return Err(Error::Pipeline(
                        "cache: the input ended before the restored position".into(),
                    ))
                }
            }
        }
        Ok(out)
    }
}

impl<K: Keeper> Fill<K> {
    /// The pass has given every element: what was kept becomes the cache (once; later
    /// calls find nothing left to keep).
    fn complete(&mut self) -> Result<()> {
        if self.prefix > 0 {
            match self.read_prefix() {
                Ok(first) => self.keeper.prepend(first),
                // Not the data after all: nothing is kept, the next pass reads it.
                Err(_) => self.keeper.abandon(),
            }
            self.prefix = 0;
        }
        self.keeper.finish(&self.input_start).context("cache")
    }
}

impl<K: Keeper> ElementIter for Fill<K> {
    fn next(&mut self) -> Option<Result<Element>> {
        match self.input.next() {
            Some(Ok(e)) => {
                self.given += 1;
                if let Err(err) = self.keeper.keep(&e) {
                    self.keeper.abandon();
                    return Some(Err(err.context("cache")));
                }
                // An input of known cardinality is complete at its last element, so a pass
                // that reads every element but stops before asking for more still makes the
                // cache (as tf.data's does).
                if Cardinality::Finite(self.given) == self.source.cardinality() {
                    if let Err(err) = self.complete() {
                        return Some(Err(err));
                    }
                }
                Some(Ok(e))
            }
            Some(Err(e)) => {
                self.given += 1;
                self.keeper.abandon();
                Some(Err(e))
            }
            None => match self.complete() {
                Ok(()) => None,
                Err(err) => Some(Err(err)),
            },
        }
    }
    fn save(&self) -> Result<State> {
        Ok(State::new("Cache")
            .flag(false)
            .num(self.given)
            .kid_opt(self.input_start.clone())
            .kid_opt(self.input.save().ok()))
    }
}

/// Keeps a first pass in memory, for the node's later passes.
struct InMemory {
    recorded: Option<Vec<Element>>,
    done: Arc<Mutex<Option<Complete>>>,
}

impl Keeper for InMemory {
    fn keep(&mut self, e: &Element) -> Result<()> {
        if let Some(r) = self.recorded.as_mut() {
            r.push(e.clone());
        }
        Ok(())
    }
    fn abandon(&mut self) {
        self.recorded = None;
    }
    fn prepend(&mut self, mut first: Vec<Element>) {
        if let Some(r) = self.recorded.as_mut() {
            first.append(r);
            *r = first;
        }
    }
    fn finish(&mut self, input_start: &Option<State>) -> Result<()> {
        if let Some(r) = self.recorded.take() {
            let mut slot = self.done.lock().unwrap_or_else(PoisonError::into_inner);
            slot.get_or_insert_with(|| (Arc::new(r), input_start.clone()));
        }
        Ok(())
    }
}

impl MemoryCache {
    fn complete(&self) -> Option<Complete> {
        self.done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn fill(&self, input: BoxIter, input_start: Option<State>) -> Fill<InMemory> {
        Fill {
            input,
            keeper: InMemory {
                recorded: Some(Vec::new()),
                done: Arc::clone(&self.done),
            },
            given: 0,
            input_start,
            prefix: 0,
            source: self.input.clone(),
        }
    }

    /// The elements of the first pass that began at `start`: this node's cache when that
    /// is the pass it holds, else the pass read again (a restore in a process whose cache
    /// came from another pass, or that has none), which then becomes the cache.
    fn pass_from(&self, start: Option<State>) -> Result<Arc<Vec<Element>>> {
        if let Some((all, made_from)) = self.complete() {
            if made_from.is_some() && made_from == start {
                return Ok(all);
            }
        }
        if self.input.cardinality() == Cardinality::Infinite {
            return Err(super::state::mismatch(
                "the cache of an endless input is never complete, so it cannot be replaying",
            ));
        }
        let mut fill = self.fill(reopen(&self.input, start.clone())?, start.clone());
        let mut all = Vec::new();
        while let Some(item) = fill.next() {
            all.push(item?);
        }
        let all = Arc::new(all);
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = Some((Arc::clone(&all), start));
        Ok(all)
    }
}

impl Node for MemoryCache {
    describe_node! { name: "Cache"; input: input; }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let Some(saved) = read_cache_state(from)? else {
            if let Some((elements, input_start)) = self.complete() {
                return Ok(Box::new(Replay {
                    elements,
                    next: 0,
                    input_start,
                }));
            }
            let input = self.input.open()?;
            let start = start_of(&input);
            return Ok(Box::new(self.fill(input, start)));
        };
        if saved.replaying {
            return Ok(Box::new(Replay {
                elements: self.pass_from(saved.start.clone())?,
                next: usize::try_from(saved.position).unwrap_or(usize::MAX),
                input_start: saved.start,
            }));
        }
        // Restored inside the first pass: the input goes on from where it was; the elements
        // given before are read again from the start when the pass ends, to complete the
        // cache.
        let Some(current) = saved.current else {
            return Err(super::state::mismatch(
                "the cache's input could not be saved, so its pass cannot go on",
            ));
        };
        let mut fill = self.fill(self.input.open_from(Some(current))?, saved.start);
        fill.given = saved.position;
        fill.prefix = saved.position;
        Ok(Box::new(fill))
    }
}

struct FileCache {
    input: Dataset,
    path: PathBuf,
    /// Whether a pass that finds another pass of this process writing the file passes its
    /// elements through without writing (a snapshot), rather than failing (a cache).
    shared: bool,
}

/// Rebuilds an element of `spec` from its tensors in [`Element::tensors`] order.
pub(super) fn rebuild(
    spec: &ElementSpec,
    tensors: &mut impl Iterator<Item = Tensor>,
) -> Option<Element> {
    Some(match spec {
        ElementSpec::Tensor(_) => Element::Tensor(tensors.next()?),
        ElementSpec::Tuple(items) => Element::Tuple(
            items
                .iter()
                .map(|s| rebuild(s, tensors))
                .collect::<Option<_>>()?,
        ),
        ElementSpec::Dict(items) => Element::Dict(
            items
                .iter()
                .map(|(k, s)| Some((k.clone(), rebuild(s, tensors)?)))
                .collect::<Option<_>>()?,
        ),
        ElementSpec::Dataset(_) => return None,
    })
}

fn pad_to_align(w: &mut impl Write, written: &mut usize) -> std::io::Result<()> {
    let pad = written.next_multiple_of(ALIGN) - *written;
    w.write_all(&[0u8; ALIGN][..pad])?;
    *written += pad;
    Ok(())
}

/// Reads a cache file: every tensor a `.npy` record, mapped and sliced without a copy.
/// `Ok(None)` for a cache file that was never finished (a crash while it was written): it is
/// made again. A file that is not a cache, or holds another pipeline's elements, is an error.
fn read_cache(path: &Path, spec: &ElementSpec) -> Result<Option<Vec<Element>>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // Guarded like a data file: a cache truncated under a pass is an error, not a crash.
    let bytes = map_file(&file, path).map_err(|e| Error::io(path, e))?;
    let data = bytes.as_slice();
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        return Err(Error::Data("not an npyflow cache file".into()).context(path.display()));
    }
    let Some(body_end) = data
        .len()
        .checked_sub(ALIGN)
        .filter(|&e| e >= ALIGN && e % ALIGN == 0 && data[e..].starts_with(END))
    else {
        return Ok(None);
    };
    let count_at = body_end + END.len();
    let expected = data
        .get(count_at..count_at + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes);
    let per_element = spec.tensor_specs().len();
    let mut at = ALIGN;
    let mut tensors = Vec::new();
    let data = &data[..body_end];
    while at < data.len() {
        let bad = || Error::Data(format!("cache record at byte {at} is cut short"));
        let len_bytes: [u8; 8] = data
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        let len = usize::try_from(u64::from_le_bytes(len_bytes)).map_err(|_| bad())?;
        let start = at + ALIGN;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= data.len())
            .ok_or_else(bad)?;
        tensors.push(read_npy_bytes(&bytes.slice(start..end)?)?);
        at = end.next_multiple_of(ALIGN);
    }
    if expected != Some(tensors.len() as u64) {
        return Err(Error::Data(format!(
            "the cache's end says {expected:?} tensors, it holds {}",
            tensors.len()
        )));
    }
    if per_element == 0 || tensors.len() % per_element != 0 {
        return Err(Error::Data(format!(
            "the cache holds {} tensors, not a whole number of elements of {spec}",
            tensors.len()
        )));
    }
    let mut it = tensors.into_iter();
    let mut out = Vec::new();
    while let Some(e) = rebuild(spec, &mut it) {
        if !spec.is_compatible_with(&e) {
            return Err(Error::Data(format!(
                "the cache holds {}, not elements of {spec}: was it written by another \
                 pipeline?",
                e.spec()
            )));
        }
        out.push(e);
    }
    Ok(Some(out))
}

/// Writes the elements of a first pass to a temporary file that becomes the cache only when
/// the pass completes; dropped before that, it is deleted.
struct CacheWriter {
    tmp: BufWriter<tempfile::NamedTempFile>,
    written: usize,
    tensors: u64,
    _claim: Claim,
}

/// The cache files being written by this process, so that a second pass writing the same
/// file while the first still does is refused (tf.data's `AlreadyExistsError`). Writers in
/// other processes are not seen, and need not be: each writes its own temporary file and
/// renames it, so the cache is always one complete pass.
static WRITING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A path claimed in [`WRITING`], released when dropped.
struct Claim(PathBuf);

impl Claim {
    fn take(path: &Path) -> Result<Claim> {
        let key = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut writing = WRITING.lock().unwrap_or_else(PoisonError::into_inner);
        if writing.contains(&key) {
            // EEXIST, so that Python raises FileExistsError.
            return Err(
                Error::io(path, std::io::Error::from_raw_os_error(17)).context(
                    "cache: another iterator is writing this cache file now (tf.data's \
                 AlreadyExistsError); let it finish its pass, or give this cache another \
                 filename",
                ),
            );
        }
        writing.push(key.clone());
        Ok(Claim(key))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut writing = WRITING.lock().unwrap_or_else(PoisonError::into_inner);
        writing.retain(|p| *p != self.0);
    }
}

/// The system's "Not a directory" error.
fn not_a_directory() -> std::io::Error {
    #[cfg(unix)]
    return std::io::Error::from_raw_os_error(libc::ENOTDIR);
    #[cfg(not(unix))]
    return std::io::ErrorKind::NotADirectory.into();
}

impl CacheWriter {
    fn create_claimed(path: &Path, claim: Claim) -> std::io::Result<CacheWriter> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // The file is written under a temporary name in its directory and renamed when
        // complete. A directory that is missing or not a directory is reported as the
        // system reports it (the errno kept, for Python's FileNotFoundError and the like);
        // tempfile's own error would name its temporary file, which the user never asked for.
        match std::fs::metadata(dir) {
            Err(e) => return Err(e),
            Ok(m) if !m.is_dir() => return Err(not_a_directory()),
            Ok(_) => {}
        }
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| {
            let text = e.to_string();
            let text = text.split(" at path ").next().unwrap_or(&text);
            std::io::Error::new(
                e.kind(),
                crate::error::os_words(&std::io::Error::other(text)),
            )
        })?;
        let mut w = CacheWriter {
            tmp: BufWriter::with_capacity(1 << 20, tmp),
            written: 0,
            tensors: 0,
            _claim: claim,
        };
        w.tmp.write_all(MAGIC)?;
        w.written = MAGIC.len();
        pad_to_align(&mut w.tmp, &mut w.written)?;
        Ok(w)
    }

    fn add(&mut self, e: &Element) -> Result<()> {
        for t in e.tensors() {
            let mut record = Vec::with_capacity(t.nbytes() + 128);
            write_npy_to(&mut record, t, &WriteOptions::default())?;
            let io = |w: &mut CacheWriter| -> std::io::Result<()> {
                w.tmp.write_all(&(record.len() as u64).to_le_bytes())?;
                w.written += 8;
                pad_to_align(&mut w.tmp, &mut w.written)?;
                w.tmp.write_all(&record)?;
                w.written += record.len();
                pad_to_align(&mut w.tmp, &mut w.written)
            };
            io(self).map_err(|e| Error::io(self.tmp.get_ref().path(), e))?;
            self.tensors += 1;
        }
        Ok(())
    }

    fn finish(mut self, path: &Path) -> Result<()> {
        let mut end = [0u8; ALIGN];
        end[..END.len()].copy_from_slice(END);
        end[END.len()..END.len() + 8].copy_from_slice(&self.tensors.to_le_bytes());
        self.tmp.write_all(&end).map_err(|e| Error::io(path, e))?;
        let tmp = self
            .tmp
            .into_inner()
            .map_err(|e| Error::io(path, e.into_error()))?;
        // On disk before it takes the cache's name, so a crash never leaves a short cache.
        tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
        tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
        Ok(())
    }
}

impl Node for FileCache {
    describe_node! { name: "Cache"; input: input; }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let (replaying, position, start) = match read_cache_state(from)? {
            Some(saved) => (Some(saved.replaying), saved.position, saved.start),
            None => (None, 0, None),
        };
        if replaying != Some(false) {
            if let Some(all) = self.read()? {
                return Ok(Box::new(Replay {
                    elements: Arc::new(all),
                    next: usize::try_from(position).unwrap_or(usize::MAX),
                    input_start: start,
                }));
            }
        }
        if replaying.is_some() {
            // A position past the input's end is not a position of this pipeline.
            if let Cardinality::Finite(n) = self.input.cardinality() {
                if position > n {
                    return Err(super::state::mismatch(format!(
                        "the cache was at element {position} of an input of {n}"
                    )));
                }
            }
        }
        let input = match replaying {
            Some(_) => reopen(&self.input, start.clone())?,
            None => self.input.open()?,
        };
        let start = start.or_else(|| start_of(&input));
        let writer = match Claim::take(&self.path) {
            Ok(claim) => Some(
                CacheWriter::create_claimed(&self.path, claim)
                    .map_err(|e| Error::io(&self.path, e))?,
            ),
            // Another pass writes the same elements: this one reads its input and keeps
            // nothing; the file is the other's.
            Err(_) if self.shared => None,
            Err(e) => return Err(e),
        };
        let mut it = Fill {
            input,
            keeper: InFile {
                writer,
                path: self.path.clone(),
            },
            given: 0,
            input_start: start,
            prefix: 0,
            source: self.input.clone(),
        };
        match replaying {
            // Restored inside the first pass: write the elements before the position again
            // (a file is written in order).
            Some(false) => {
                while it.given < position {
                    if it.next().is_none() {
                        break;
                    }
                }
            }
            // Restored while replaying, and the file is gone: write it all, then replay.
            Some(true) => {
                while let Some(item) = it.next() {
                    item?;
                }
                let all = self.read()?.ok_or_else(|| {
                    Error::Pipeline(format!(
                        "cache: {} could not be written",
                        self.path.display()
                    ))
                })?;
                return Ok(Box::new(Replay {
                    elements: Arc::new(all),
                    next: usize::try_from(position).unwrap_or(usize::MAX),
                    input_start: it.input_start.take(),
                }));
            }
            None => {}
        }
        Ok(Box::new(it))
    }
}

impl FileCache {
    /// The cache file's elements, if it exists and is complete (an unfinished one is made
    /// again).
    fn read(&self) -> Result<Option<Vec<Element>>> {
        if !self.path.exists() {
            return Ok(None);
        }
        read_cache(&self.path, self.input.element_spec()).context(self.path.display())
    }
}

/// Keeps a first pass in a cache file, written under a temporary name.
struct InFile {
    writer: Option<CacheWriter>,
    path: PathBuf,
}

impl Keeper for InFile {
    fn keep(&mut self, e: &Element) -> Result<()> {
        match self.writer.as_mut() {
            Some(w) => w.add(e),
            None => Ok(()),
        }
    }
    fn abandon(&mut self) {
        self.writer = None;
    }
    fn prepend(&mut self, _first: Vec<Element>) {
        // A file is written in order: a restored file pass writes its first elements again
        // when it opens (see FileCache::open), and never has a prefix.
        self.writer = None;
    }
    fn finish(&mut self, _input_start: &Option<State>) -> Result<()> {
        // Another pass may have completed first; either file is the same data.
        match self.writer.take() {
            Some(w) => w.finish(&self.path),
            None => Ok(()),
        }
    }
}

impl Dataset {
    /// tf.data's `cache(filename)`: the first pass that runs to its end is kept, and later
    /// passes replay it instead of running the input again. With `filename` `None` it is kept
    /// in memory; otherwise in that file, which later passes (and later programs) map and
    /// read without a copy. A pass that stops early, or meets an error, is not kept: the next
    /// pass reads the input again.
    ///
    /// Differs from tf.data: the cache is the one file `filename` (tf.data writes
    /// `filename.index` and data shards), written under a temporary name and renamed when
    /// complete. Elements holding datasets cannot be cached to a file.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 5, 1)?.cache(None::<&str>)?;
    /// assert_eq!(ds.to_vec()?, ds.to_vec()?); // the second pass replays the first
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn cache(&self, filename: Option<impl AsRef<Path>>) -> Result<Dataset> {
        match filename {
            None => Ok(Dataset::from_node(MemoryCache {
                input: self.clone(),
                done: Arc::new(Mutex::new(None)),
            })),
            Some(p) => self.file_cache(p.as_ref(), false),
        }
    }

    /// [`cache`](Dataset::cache) to the file `filename`, for a file that several pipelines
    /// of this process may fill at once (Python's `snapshot` keeps a snapshot so): a pass
    /// that finds another pass writing the file reads its input and passes the elements
    /// through without writing, where `cache` refuses it (tf.data's `AlreadyExistsError`).
    /// Whichever pass completes first leaves the file; later passes replay it.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("elements.npyflow-cache");
    /// let (a, b) = (
    ///     Dataset::range(0, 4, 1)?.cache_shared(&path)?,
    ///     Dataset::range(0, 4, 1)?.cache_shared(&path)?,
    /// );
    /// let (mut first, mut second) = (a.iter(), b.iter());
    /// first.next(); // the first pass is writing the file...
    /// assert_eq!(second.count(), 4); // ...and the second passes its elements through
    /// assert_eq!(first.count(), 3);
    /// assert_eq!(b.to_vec()?, a.to_vec()?); // later passes replay the file
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cache_shared(&self, filename: impl AsRef<Path>) -> Result<Dataset> {
        self.file_cache(filename.as_ref(), true)
    }

    /// A [`FileCache`] of this dataset at `path`, `shared` or not.
    fn file_cache(&self, path: &Path, shared: bool) -> Result<Dataset> {
        require(!self.element_spec().has_dataset(), || {
            "cache: elements holding datasets cannot be written to a file".to_string()
        })?;
        Ok(Dataset::from_node(FileCache {
            input: self.clone(),
            path: path.to_path_buf(),
            shared,
        }))
    }
}
