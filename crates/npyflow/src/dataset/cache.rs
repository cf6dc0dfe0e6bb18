//! `cache`: the first complete pass kept, in memory or in a file, and replayed after.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::{require, BoxIter, Cardinality, Dataset, Node};
use crate::buffer::Buffer;
use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result, ResultExt};
use crate::format::npy::{map_file, read_npy_bytes, write_npy_to, WriteOptions};
use crate::tensor::Tensor;

/// What a cache file starts with, padded to 64 bytes with the rest of its first block.
const MAGIC: &[u8] = b"npyflow cache 1\n";
const ALIGN: usize = 64;

struct MemoryCache {
    input: Dataset,
    done: Arc<Mutex<Option<Arc<Vec<Element>>>>>,
}

fn replay(elements: Arc<Vec<Element>>) -> BoxIter {
    let mut next = 0;
    Box::new(move || {
        let e = elements.get(next)?.clone();
        next += 1;
        Some(Ok(e))
    })
}

impl Node for MemoryCache {
    fn name(&self) -> &'static str {
        "Cache"
    }
    fn spec(&self) -> &ElementSpec {
        self.input.element_spec()
    }
    fn cardinality(&self) -> Cardinality {
        self.input.cardinality()
    }
    fn open(&self) -> Result<BoxIter> {
        if let Some(all) = self
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(replay(all));
        }
        let mut input = self.input.open()?;
        let done = Arc::clone(&self.done);
        let mut recorded: Option<Vec<Element>> = Some(Vec::new());
        Ok(Box::new(move || match input.next() {
            Some(Ok(e)) => {
                if let Some(r) = recorded.as_mut() {
                    r.push(e.clone());
                }
                Some(Ok(e))
            }
            Some(Err(e)) => {
                // A pass with an error in it is not the data: do not keep it.
                recorded = None;
                Some(Err(e))
            }
            None => {
                if let Some(r) = recorded.take() {
                    let mut slot = done.lock().unwrap_or_else(PoisonError::into_inner);
                    slot.get_or_insert_with(|| Arc::new(r));
                }
                None
            }
        }))
    }
}

struct FileCache {
    input: Dataset,
    path: PathBuf,
}

/// Rebuilds an element of `spec` from its tensors in [`Element::tensors`] order.
fn rebuild(spec: &ElementSpec, tensors: &mut impl Iterator<Item = Tensor>) -> Option<Element> {
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
fn read_cache(path: &Path, spec: &ElementSpec) -> Result<Vec<Element>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let map = map_file(&file).map_err(|e| Error::io(path, e))?;
    let bytes = Buffer::from_owner(map);
    let data = bytes.as_slice();
    if data.len() < ALIGN || &data[..MAGIC.len()] != MAGIC {
        return Err(Error::Data("not an npyflow cache file".into()).context(path.display()));
    }
    let per_element = spec.tensor_specs().len();
    let mut at = ALIGN;
    let mut tensors = Vec::new();
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
    Ok(out)
}

/// Writes the elements of a first pass to a temporary file that becomes the cache only when
/// the pass completes; dropped before that, it is deleted.
struct CacheWriter {
    tmp: BufWriter<tempfile::NamedTempFile>,
    written: usize,
}

impl CacheWriter {
    fn create(path: &Path) -> std::io::Result<CacheWriter> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut w = CacheWriter {
            tmp: BufWriter::with_capacity(1 << 20, tempfile::NamedTempFile::new_in(dir)?),
            written: 0,
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
        }
        Ok(())
    }

    fn finish(self, path: &Path) -> Result<()> {
        let tmp = self
            .tmp
            .into_inner()
            .map_err(|e| Error::io(path, e.into_error()))?;
        tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
        Ok(())
    }
}

impl Node for FileCache {
    fn name(&self) -> &'static str {
        "Cache"
    }
    fn spec(&self) -> &ElementSpec {
        self.input.element_spec()
    }
    fn cardinality(&self) -> Cardinality {
        self.input.cardinality()
    }
    fn open(&self) -> Result<BoxIter> {
        if self.path.exists() {
            let all =
                read_cache(&self.path, self.input.element_spec()).context(self.path.display())?;
            return Ok(replay(Arc::new(all)));
        }
        let mut input = self.input.open()?;
        let path = self.path.clone();
        let mut writer = Some(CacheWriter::create(&path).map_err(|e| Error::io(&path, e))?);
        Ok(Box::new(move || match input.next() {
            Some(Ok(e)) => {
                if let Some(w) = writer.as_mut() {
                    if let Err(err) = w.add(&e) {
                        writer = None;
                        return Some(Err(err.context("cache")));
                    }
                }
                Some(Ok(e))
            }
            Some(Err(e)) => {
                writer = None;
                Some(Err(e))
            }
            None => {
                if let Some(w) = writer.take() {
                    // Another pass may have completed first; either file is the same data.
                    if let Err(err) = w.finish(&path) {
                        return Some(Err(err.context("cache")));
                    }
                }
                None
            }
        }))
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
            Some(p) => {
                require(!self.element_spec().has_dataset(), || {
                    "cache: elements holding datasets cannot be written to a file".to_string()
                })?;
                Ok(Dataset::from_node(FileCache {
                    input: self.clone(),
                    path: p.as_ref().to_path_buf(),
                }))
            }
        }
    }
}
