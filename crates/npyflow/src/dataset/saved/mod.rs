//! `save` and `load` (tf.data's names): a dataset written as sharded `.npy` files, one per
//! component per shard, and a small index (`index.json`: the element spec, the shards' sizes
//! and checksums), then read back as a random-access dataset over the memory-mapped shards.
//!
//! Layout of a saved dataset at `PATH`:
//! - `PATH/index.json`: what is visible. It names one generation directory and every file
//!   in it; it is replaced atomically (a new file renamed over the old), so a reader sees the
//!   old dataset or the new one, never part of one.
//! - `PATH/g-<save id>/`: a generation: `part-<i>-of-<n>.json` (the manifest of part *i*,
//!   written atomically when the part's files are complete) and the shard files
//!   `p<i>-s<k>-c<j>-<tag>.npy` (part *i*, shard *k*, component *j*, a tag fresh for each
//!   attempt so that no file is ever overwritten).
//!
//! A save writes its part's files, then its manifest, then looks for the other parts'
//! manifests: the process that finds all `n` writes the index (and removes the generation
//! the old index named). A save that dies before that leaves the old index, so the old
//! dataset (or none); its files are left in a generation no index names.

mod store;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use self::store::{LocalDir, ObjectWriter, RemoteDir, Store};
use super::cache::rebuild;
use super::plumbing::{describe_node, own_pass, require, Dataset, Node, Pass};
use super::sources::gather_rows;
use crate::buffer::BufferPool;
use crate::dtype::{ByteOrder, DType};
use crate::element::{Element, ElementSpec, PartialShape, TensorSpec};
use crate::error::{Error, Result, ResultExt};
use crate::format::header::NpyHeader;
use crate::format::storage::{is_url, StorageOptions};
use crate::rng::mix;
use crate::tensor::Tensor;

/// The index's name in a saved dataset's directory.
const INDEX: &str = "index.json";
/// What the index says it is, and the layout's version.
const FORMAT: &str = "npyflow.saved_dataset";
const VERSION: u64 = 1;
/// Shards are cut at this size unless a `shard_func` chooses them.
const DEFAULT_MAX_SHARD_BYTES: u64 = 1 << 30;
/// The most shards one part writes: elements whose shapes change all the time (each run of
/// one shape is a shard) would otherwise make a file per element.
const MAX_SHARDS: usize = 100_000;

/// A function that picks the shard of an element (tf.data's `shard_func`).
pub type ShardFunc = dyn Fn(&Element) -> Result<u64> + Send + Sync;

/// Called with the number of elements written so far.
pub type SaveProgress = dyn Fn(u64) + Send + Sync;

/// The options of [`Dataset::save`].
#[derive(Clone)]
pub struct SaveOptions {
    shard_func: Option<Arc<ShardFunc>>,
    part: (u64, u64),
    save_id: Option<String>,
    max_shard_bytes: u64,
    progress: Option<Arc<SaveProgress>>,
    storage: StorageOptions,
}

impl Default for SaveOptions {
    fn default() -> SaveOptions {
        SaveOptions {
            shard_func: None,
            part: (0, 1),
            save_id: None,
            max_shard_bytes: DEFAULT_MAX_SHARD_BYTES,
            progress: None,
            storage: StorageOptions::new(),
        }
    }
}

impl From<()> for SaveOptions {
    fn from((): ()) -> SaveOptions {
        SaveOptions::default()
    }
}

impl SaveOptions {
    /// The defaults: one process, shards of at most 1 GiB in the order of the elements.
    pub fn new() -> SaveOptions {
        SaveOptions::default()
    }

    /// tf.data's `shard_func`: the shard each element goes to. Shards are read back in the
    /// order of their numbers, each in the order its elements were written.
    pub fn shard_func(
        self,
        f: impl Fn(&Element) -> Result<u64> + Send + Sync + 'static,
    ) -> SaveOptions {
        SaveOptions {
            shard_func: Some(Arc::new(f)),
            ..self
        }
    }

    /// This process writes part `index` of `count` of one dataset: each process of a job
    /// saves its own elements (its `shard` of the input, say) with the same path and
    /// `save_id`, and the dataset appears when the last part is written, parts in the order
    /// of their index. `save_id` names the save that the parts make together (each save of
    /// several parts needs a new one).
    pub fn part(self, index: u64, count: u64, save_id: &str) -> SaveOptions {
        SaveOptions {
            part: (index, count),
            save_id: Some(save_id.to_string()),
            ..self
        }
    }

    /// Cuts a new shard when one reaches `bytes` per component (1 GiB by default); not used
    /// with a `shard_func`.
    pub fn max_shard_bytes(self, bytes: u64) -> SaveOptions {
        SaveOptions {
            max_shard_bytes: bytes,
            ..self
        }
    }

    /// Options for a save to a URL (`s3://...`): credentials, endpoint, ... (see
    /// [`StorageOptions`]); unused for a local path.
    pub fn storage_options(self, storage: StorageOptions) -> SaveOptions {
        SaveOptions { storage, ..self }
    }

    /// Calls `f` with the count of elements written, after each one (a progress bar).
    pub fn progress(self, f: impl Fn(u64) + Send + Sync + 'static) -> SaveOptions {
        SaveOptions {
            progress: Some(Arc::new(f)),
            ..self
        }
    }
}

/// What [`Dataset::save`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveSummary {
    /// Elements this process wrote.
    pub elements: u64,
    /// Shards this process wrote.
    pub shards: usize,
    /// Whether the saved dataset is now visible: always for a save of one part; for a save
    /// of several, whether this process wrote the last part.
    pub complete: bool,
}

/// The options of [`Dataset::load`].
#[derive(Clone, Debug)]
pub struct LoadOptions {
    verify: bool,
    element_spec: Option<ElementSpec>,
    storage: StorageOptions,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            verify: true,
            element_spec: None,
            storage: StorageOptions::new(),
        }
    }
}

impl From<()> for LoadOptions {
    fn from((): ()) -> LoadOptions {
        LoadOptions::default()
    }
}

impl LoadOptions {
    /// The defaults: every shard file's checksum verified, any element spec.
    pub fn new() -> LoadOptions {
        LoadOptions::default()
    }

    /// Whether to read every shard file through once to check its size and CRC-32 against
    /// the index (the default). Without it, loading reads the index and the files' headers
    /// only.
    pub fn verify(self, verify: bool) -> LoadOptions {
        LoadOptions { verify, ..self }
    }

    /// Options for a load from a URL (`s3://...`); unused for a local path.
    pub fn storage_options(self, storage: StorageOptions) -> LoadOptions {
        LoadOptions { storage, ..self }
    }

    /// tf.data's `element_spec`: the spec the saved dataset must have (an error otherwise).
    pub fn element_spec(self, spec: ElementSpec) -> LoadOptions {
        LoadOptions {
            element_spec: Some(spec),
            ..self
        }
    }
}

// ---- the element spec as JSON ----------------------------------------------------------

fn spec_to_json(spec: &ElementSpec) -> Result<Value> {
    Ok(match spec {
        ElementSpec::Tensor(t) => json!({
            "dtype": t.dtype.descr(ByteOrder::NATIVE),
            "shape": t.shape.dims().map(|d| d.to_vec()),
        }),
        ElementSpec::Tuple(items) => json!({
            "tuple": items.iter().map(spec_to_json).collect::<Result<Vec<_>>>()?,
        }),
        ElementSpec::Dict(items) => json!({
            "dict": items
                .iter()
                .map(|(k, s)| Ok(json!([k, spec_to_json(s)?])))
                .collect::<Result<Vec<_>>>()?,
        }),
        ElementSpec::Dataset(_) => {
            return Err(Error::InvalidArgument(
                "save: elements that hold datasets cannot be saved (flat_map them first)".into(),
            ))
        }
    })
}

fn bad_index(what: &str) -> Error {
    Error::Data(format!("the index is damaged or not npyflow's: {what}"))
}

/// The files of one shard in the index, one per component (`count` of them), each with its
/// name.
fn shard_files<'a>(
    shard: &'a Value,
    count: usize,
    show: &str,
) -> Result<Vec<(&'a str, &'a Value)>> {
    let files = shard
        .get("files")
        .and_then(Value::as_array)
        .filter(|f| f.len() == count)
        .ok_or_else(|| bad_index("a shard's files"))
        .context(show)?;
    files
        .iter()
        .map(|f| {
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_index("a file name"))
                .context(show)?;
            Ok((name, f))
        })
        .collect()
}

fn spec_from_json(v: &Value) -> Result<ElementSpec> {
    if let Some(items) = v.get("tuple").and_then(Value::as_array) {
        return Ok(ElementSpec::Tuple(
            items.iter().map(spec_from_json).collect::<Result<_>>()?,
        ));
    }
    if let Some(items) = v.get("dict").and_then(Value::as_array) {
        let mut out = indexmap::IndexMap::new();
        for item in items {
            let key = item
                .get(0)
                .and_then(Value::as_str)
                .ok_or_else(|| bad_index("a dict key"))?;
            out.insert(
                key.to_string(),
                spec_from_json(item.get(1).ok_or_else(|| bad_index("a dict value"))?)?,
            );
        }
        return Ok(ElementSpec::Dict(out));
    }
    let descr = v
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_index("a tensor's dtype"))?;
    let dtype = TensorSpec::dtype_from_descr(descr)?;
    let shape = match v.get("shape") {
        Some(Value::Null) => PartialShape::unknown(),
        Some(Value::Array(dims)) => PartialShape::new(
            &dims
                .iter()
                .map(|d| match d {
                    Value::Null => Ok(None),
                    d => d
                        .as_u64()
                        .map(|n| Some(n as usize))
                        .ok_or_else(|| bad_index("a dimension")),
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        _ => return Err(bad_index("a tensor's shape")),
    };
    Ok(ElementSpec::Tensor(TensorSpec { dtype, shape }))
}

/// A component's rows: dtype and the shape after the first axis.
#[derive(Clone, Debug, PartialEq)]
struct RowSpec {
    dtype: DType,
    shape: Vec<usize>,
}

impl RowSpec {
    fn of(t: &Tensor) -> RowSpec {
        RowSpec {
            dtype: t.dtype(),
            shape: t.shape().to_vec(),
        }
    }
    fn to_json(&self) -> Value {
        json!({"dtype": self.dtype.descr(ByteOrder::NATIVE), "shape": self.shape})
    }
    fn from_json(v: &Value) -> Result<RowSpec> {
        let descr = v
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_index("a component's dtype"))?;
        let shape = v
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| bad_index("a component's shape"))?
            .iter()
            .map(|d| {
                d.as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| bad_index("a component's shape"))
            })
            .collect::<Result<_>>()?;
        Ok(RowSpec {
            dtype: DType::parse_descr(descr)?.0,
            shape,
        })
    }
    fn nbytes(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.itemsize()
    }
}

// ---- writing ---------------------------------------------------------------------------

/// A fresh, random hex tag (for save ids and attempt tags).
fn fresh_tag() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let v = mix(nanos ^ mix(u64::from(std::process::id()) << 20 ^ n));
    format!("{v:016x}")
}

/// One component of one shard being written.
struct ComponentWriter {
    name: String,
    out: Box<dyn ObjectWriter>,
    header_len: usize,
    crc: crc32fast::Hasher,
    data_bytes: u64,
}

/// One shard being written: a file per component.
struct ShardWriter {
    components: Vec<ComponentWriter>,
    /// What each component's rows are (every row of a shard alike).
    specs: Vec<RowSpec>,
    rows: u64,
    bytes: u64,
}

impl ShardWriter {
    fn create(
        store: &dyn Store,
        names: impl Fn(usize) -> String,
        rows: &[RowSpec],
    ) -> Result<ShardWriter> {
        let mut components = Vec::with_capacity(rows.len());
        for (j, r) in rows.iter().enumerate() {
            let name = names(j);
            let header_len = npy_header(r, 0)?.len();
            let out = store.create(&name, header_len)?;
            components.push(ComponentWriter {
                name,
                out,
                header_len,
                crc: crc32fast::Hasher::new(),
                data_bytes: 0,
            });
        }
        Ok(ShardWriter {
            components,
            specs: rows.to_vec(),
            rows: 0,
            bytes: 0,
        })
    }

    fn append(&mut self, tensors: &[&Tensor]) -> Result<()> {
        for (c, t) in self.components.iter_mut().zip(tensors) {
            let b = t.as_bytes();
            c.crc.update(b);
            c.out.write(b)?;
            c.data_bytes += b.len() as u64;
        }
        self.rows += 1;
        self.bytes += tensors.iter().map(|t| t.nbytes() as u64).sum::<u64>();
        Ok(())
    }

    /// Writes the headers and returns the shard's entry for the manifest.
    fn finish(self) -> Result<Value> {
        let mut files = Vec::with_capacity(self.components.len());
        for (c, r) in self.components.into_iter().zip(&self.specs) {
            let header = npy_header(r, self.rows)?;
            if header.len() != c.header_len {
                return Err(Error::Pipeline(format!(
                    "{}: the .npy header grew from {} to {} bytes",
                    c.name,
                    c.header_len,
                    header.len()
                )));
            }
            let mut crc = crc32fast::Hasher::new();
            crc.update(&header);
            crc.combine(&c.crc);
            c.out.finish(&header)?;
            files.push(json!({
                "name": c.name,
                "bytes": header.len() as u64 + c.data_bytes,
                "crc32": crc.finalize(),
            }));
        }
        Ok(json!({
            "rows": self.rows,
            "components": self.specs.iter().map(RowSpec::to_json).collect::<Vec<_>>(),
            "files": files,
        }))
    }
}

/// The `.npy` header of `rows` rows of `r` (as long for any row count: NumPy's headers leave
/// room for the first axis to grow).
fn npy_header(r: &RowSpec, rows: u64) -> Result<Vec<u8>> {
    let mut shape = vec![rows as usize];
    shape.extend_from_slice(&r.shape);
    NpyHeader::new(r.dtype, &shape).encode(None)
}

fn part_manifest_name(generation: &str, part: u64, parts: u64) -> String {
    format!("{generation}/part-{part:05}-of-{parts:05}.json")
}

fn read_json(store: &dyn Store, name: &str) -> Result<Option<Value>> {
    let Some(bytes) = store.read_small(name)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| bad_index(&e.to_string()))
        .context(store.show(name))
}

fn check_save_id(id: &str) -> Result<()> {
    require(
        !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'),
        || {
            format!(
                "save: save_id {id:?} must be 1 to 64 letters, digits, '-', '_' or '.' (it \
                 names a directory)"
            )
        },
    )
}

fn save_to(store: &dyn Store, ds: &Dataset, options: SaveOptions) -> Result<SaveSummary> {
    let SaveOptions {
        shard_func,
        part: (part, parts),
        save_id,
        max_shard_bytes,
        progress,
        storage: _,
    } = options;
    require(parts >= 1 && part < parts, || {
        format!("save: part {part} of {parts}: the part's index must be below the count of parts")
    })?;
    require(max_shard_bytes > 0, || {
        "save: max_shard_bytes must be positive".into()
    })?;
    let id = save_id.unwrap_or_else(fresh_tag);
    check_save_id(&id)?;
    let generation = format!("g-{id}");
    if let Some(index) = read_json(store, INDEX)? {
        require(
            index.get("generation").and_then(Value::as_str) != Some(generation.as_str()),
            || {
                format!(
                    "save: {} is already the finished save {id:?}; give this save a new \
                     save_id",
                    store.show("")
                )
            },
        )?;
    }
    let spec = ds.element_spec().clone();
    let spec_json = spec_to_json(&spec)?;
    let count = spec.tensor_specs().len();
    require(count > 0, || {
        "save: the elements have no tensors to save".into()
    })?;
    let tag = fresh_tag();
    // Shards by (number, kind of rows): a shard holds rows of one dtype and shape per
    // component, so rows of another shape that go to the same shard number start a shard of
    // their own, read after it (without a shard_func a new shape starts the next shard, so
    // the order is kept).
    let mut kinds: Vec<Vec<RowSpec>> = Vec::new();
    let mut shards: BTreeMap<(u64, usize), ShardWriter> = BTreeMap::new();
    let mut current = 0u64;
    let mut written = 0u64;
    let mut files_made = 0usize;
    let result = (|| -> Result<()> {
        for (i, item) in ds.iter().enumerate() {
            let e = item.with_context(|| format!("save: element {i}"))?;
            let tensors = e.tensors();
            require(
                spec.is_compatible_with(&e) && tensors.len() == count,
                || format!("save: element {i} is {}, not {spec}", e.spec()),
            )?;
            let these: Vec<RowSpec> = tensors.iter().map(|t| RowSpec::of(t)).collect();
            let kind = match kinds.iter().position(|k| *k == these) {
                Some(k) => k,
                None => {
                    kinds.push(these);
                    kinds.len() - 1
                }
            };
            let key = match &shard_func {
                Some(f) => (
                    f(&e).with_context(|| format!("save: shard_func of element {i}"))?,
                    kind,
                ),
                None => {
                    let full = shards
                        .get(&(current, kind))
                        .is_some_and(|s| s.rows > 0 && s.bytes >= max_shard_bytes);
                    let other_kind = shards
                        .range((current, 0)..=(current, usize::MAX))
                        .any(|(k, _)| k.1 != kind);
                    if full || other_kind {
                        current += 1;
                    }
                    (current, kind)
                }
            };
            let writer = match shards.entry(key) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    require(files_made < MAX_SHARDS, || {
                        format!(
                            "save: element {i} would start shard {MAX_SHARDS}: a shard holds \
                             rows of one shape, and the elements' shapes change too often \
                             (pad, bucket or batch them to fewer shapes first)"
                        )
                    })?;
                    let n = files_made;
                    files_made += 1;
                    let names =
                        |j: usize| format!("{generation}/p{part:05}-s{n:05}-c{j:03}-{tag}.npy");
                    v.insert(ShardWriter::create(store, names, &kinds[kind])?)
                }
            };
            writer.append(&tensors)?;
            written += 1;
            if let Some(p) = &progress {
                p(written);
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        // This attempt's files are named by its tag and no manifest names them: remove
        // them (the generation itself may hold other parts).
        drop(shards);
        remove_attempt(store, &generation, &tag);
        return Err(e);
    }
    let nshards = shards.len();
    let entries = shards
        .into_values()
        .map(ShardWriter::finish)
        .collect::<Result<Vec<_>>>()?;
    let manifest = json!({
        "format": FORMAT,
        "version": VERSION,
        "part": part,
        "num_parts": parts,
        "element_spec": spec_json,
        "shards": entries,
    });
    store.put_atomic(
        &part_manifest_name(&generation, part, parts),
        manifest.to_string().as_bytes(),
    )?;
    let complete = finish_if_last(store, &generation, parts)?;
    Ok(SaveSummary {
        elements: written,
        shards: nshards,
        complete,
    })
}

/// Removes the files of one attempt (best effort: they are invisible anyway).
fn remove_attempt(store: &dyn Store, generation: &str, tag: &str) {
    if let Ok(names) = store.list(generation) {
        let ours: Vec<String> = names
            .into_iter()
            .filter(|n| n.ends_with(&format!("-{tag}.npy")))
            .collect();
        for n in ours {
            let _ = store.remove_all(&format!("{generation}/{n}"));
        }
    }
}

/// Writes the index when every part's manifest is there; whether it did.
fn finish_if_last(store: &dyn Store, generation: &str, parts: u64) -> Result<bool> {
    let suffix = format!("-of-{parts:05}.json");
    let present: Vec<String> = store
        .list(generation)?
        .into_iter()
        .filter(|n| n.starts_with("part-") && n.ends_with(&suffix))
        .collect();
    if (present.len() as u64) < parts {
        return Ok(false);
    }
    let mut spec: Option<Value> = None;
    let mut shards = Vec::new();
    let mut total = 0u64;
    for p in 0..parts {
        let name = part_manifest_name(generation, p, parts);
        let m = read_json(store, &name)?.ok_or_else(|| {
            Error::Data(format!(
                "{}: the part's manifest is gone",
                store.show(&name)
            ))
        })?;
        let this_spec = m.get("element_spec").cloned().unwrap_or(Value::Null);
        match &spec {
            Some(s) if *s != this_spec => {
                return Err(Error::InvalidArgument(format!(
                    "save: part {p} has elements of another spec than part 0 ({} and {})",
                    spec_from_json(&this_spec).map_or("?".into(), |s| s.to_string()),
                    spec_from_json(s).map_or("?".into(), |s| s.to_string()),
                )))
            }
            None => spec = Some(this_spec),
            _ => {}
        }
        for s in m
            .get("shards")
            .and_then(Value::as_array)
            .ok_or_else(|| bad_index("a part's shards"))?
        {
            total += s.get("rows").and_then(Value::as_u64).unwrap_or(0);
            shards.push(s.clone());
        }
    }
    let previous = read_json(store, INDEX)?.and_then(|i| {
        i.get("generation")
            .and_then(Value::as_str)
            .map(String::from)
    });
    let index = json!({
        "format": FORMAT,
        "version": VERSION,
        "generation": generation,
        "element_spec": spec.unwrap_or(Value::Null),
        "num_elements": total,
        "shards": shards,
    });
    store.put_atomic(INDEX, index.to_string().as_bytes())?;
    if let Some(old) = previous.filter(|g| g != generation) {
        // The old files are no longer named by any index. A reader that opened them keeps
        // its maps (local files stay readable until closed).
        let _ = store.remove_all(&old);
    }
    Ok(true)
}

// ---- reading ---------------------------------------------------------------------------

/// A loaded dataset: per component, one mapped array per shard.
#[derive(Clone)]
struct Loaded {
    /// `components[j][k]`: component `j` of shard `k`.
    components: Vec<Vec<Tensor>>,
    /// The first row of each shard, and the total at the end.
    starts: Vec<u64>,
    /// Per component: its rows' spec when every shard has the same (rows from any shards
    /// can then be copied into one batch), `None` when shards differ.
    uniform: Vec<Option<RowSpec>>,
    spec: ElementSpec,
}

impl Loaded {
    fn shard_of(&self, index: u64) -> usize {
        self.starts.partition_point(|&s| s <= index) - 1
    }

    fn build(&self, tensors: Vec<Tensor>) -> Result<Element> {
        rebuild(&self.spec, &mut tensors.into_iter())
            .ok_or_else(|| Error::Pipeline("load: the element spec and the files disagree".into()))
    }
}

impl Node for Loaded {
    describe_node! { name: "Load"; spec: spec; }
    own_pass!();
}

impl Pass for Loaded {
    fn len(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }

    fn get(&self, index: u64) -> Result<Element> {
        if index >= self.len() {
            return Err(Error::OutOfRange {
                index: usize::try_from(index).unwrap_or(usize::MAX),
                len: usize::try_from(self.len()).unwrap_or(usize::MAX),
            });
        }
        let k = self.shard_of(index);
        let row = (index - self.starts[k]) as usize;
        let tensors = self
            .components
            .iter()
            .map(|c| c[k].row_view(row))
            .collect::<Result<Vec<_>>>()?;
        self.build(tensors)
    }

    fn get_range(&self, start: u64, end: u64) -> Option<Result<Element>> {
        if start >= end || end > self.len() {
            return None;
        }
        let k = self.shard_of(start);
        (end <= self.starts[k + 1]).then(|| {
            let range = (start - self.starts[k]) as usize..(end - self.starts[k]) as usize;
            let tensors = self
                .components
                .iter()
                .map(|c| c[k].rows_view(range.clone()))
                .collect::<Result<Vec<_>>>()?;
            self.build(tensors)
        })
    }

    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        if self.uniform.iter().any(Option::is_none) {
            return None;
        }
        Some((|| {
            let mut out = Vec::with_capacity(self.components.len());
            for (c, r) in self.components.iter().zip(&self.uniform) {
                // Shards of different shapes: rows are stacked one by one (and a batch of
                // two shapes is an error, as for any batch).
                let Some(r) = r else { continue };
                if c.len() == 1 {
                    out.push(gather_rows(&c[0], indices, pool)?);
                    continue;
                }
                let row = r.nbytes();
                let mut shape = vec![indices.len()];
                shape.extend_from_slice(&r.shape);
                let mut buf = pool.take(row * indices.len())?;
                let dst = buf.as_mut_slice();
                for (at, &i) in indices.iter().enumerate() {
                    if i >= self.len() {
                        return Err(Error::OutOfRange {
                            index: usize::try_from(i).unwrap_or(usize::MAX),
                            len: usize::try_from(self.len()).unwrap_or(usize::MAX),
                        });
                    }
                    let k = self.shard_of(i);
                    let from = (i - self.starts[k]) as usize * row;
                    dst[at * row..(at + 1) * row]
                        .copy_from_slice(&c[k].as_bytes()[from..from + row]);
                }
                c.iter().try_for_each(Tensor::check_intact)?;
                out.push(Tensor::new(r.dtype, &shape, buf.freeze())?);
            }
            self.build(out)
        })())
    }
}

fn load_from(store: &dyn Store, options: LoadOptions) -> Result<Dataset> {
    let index = read_json(store, INDEX)?.ok_or_else(|| {
        Error::io(
            store.show(INDEX),
            std::io::Error::from_raw_os_error(2), // ENOENT: Python's FileNotFoundError
        )
        .context(format!(
            "load: no saved dataset at {} (it was never saved there, or no save of it has \
             finished)",
            store.show("")
        ))
    })?;
    let show = store.show(INDEX);
    if index.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(bad_index("it does not say it is an npyflow saved dataset").context(show));
    }
    let version = index.get("version").and_then(Value::as_u64).unwrap_or(0);
    if version != VERSION {
        return Err(Error::Data(format!(
            "the saved dataset's layout is version {version}; this npyflow reads version \
             {VERSION}"
        ))
        .context(show));
    }
    let spec = spec_from_json(index.get("element_spec").unwrap_or(&Value::Null)).context(&show)?;
    if let Some(want) = &options.element_spec {
        require(*want == spec, || {
            format!(
                "load: the saved dataset's elements are {spec}, not the element_spec given, \
                 {want}"
            )
        })?;
    }
    let count = spec.tensor_specs().len();
    let shards = index
        .get("shards")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_index("no shards"))
        .context(&show)?;
    if store.remote("").is_some() && !shards.is_empty() {
        return load_remote(store, &options, spec, shards, count);
    }
    let mut components: Vec<Vec<Tensor>> = vec![Vec::with_capacity(shards.len()); count];
    let mut starts = vec![0u64];
    let mut uniform: Vec<Option<RowSpec>> = vec![None; count];
    for (k, s) in shards.iter().enumerate() {
        let rows: Vec<RowSpec> = s
            .get("components")
            .and_then(Value::as_array)
            .filter(|c| c.len() == count)
            .ok_or_else(|| bad_index("a shard's components"))
            .context(&show)?
            .iter()
            .map(RowSpec::from_json)
            .collect::<Result<_>>()?;
        for (u, r) in uniform.iter_mut().zip(&rows) {
            match u {
                _ if k == 0 => *u = Some(r.clone()),
                Some(same) if same == r => {}
                _ => *u = None,
            }
        }
        let n = s
            .get("rows")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad_index("a shard's rows"))
            .context(&show)?;
        for (j, (name, f)) in shard_files(s, count, &show)?.into_iter().enumerate() {
            let file = store.show(name);
            if options.verify {
                verify_file(store, name, f)?;
            }
            let t = store.open_npy(name).context(&file)?;
            let r = &rows[j];
            if t.dtype() != r.dtype
                || t.shape().first() != Some(&(n as usize))
                || t.shape()[1..] != r.shape[..]
            {
                return Err(Error::Data(format!(
                    "{file}: the array is {} {:?}, the index says {} rows of {} {:?}",
                    t.dtype(),
                    t.shape(),
                    n,
                    r.dtype,
                    r.shape
                )));
            }
            components[j].push(t);
        }
        starts.push(starts.last().unwrap_or(&0) + n);
    }
    Ok(Dataset::from_node(Loaded {
        components,
        starts,
        uniform,
        spec,
    }))
}

/// Checks a file against its index entry.
fn verify_file(store: &dyn Store, name: &str, entry: &Value) -> Result<()> {
    let want = (
        entry
            .get("bytes")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX),
        entry
            .get("crc32")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX),
    );
    let (bytes, crc) = store.checksum(name)?;
    if (bytes, u64::from(crc)) != want {
        return Err(Error::Data(format!(
            "{}: the shard file does not match the index (size {bytes} and CRC-32 {crc:08x}; \
             the index says {} and {:08x}): it was changed or damaged after it was saved; \
             save the dataset again",
            store.show(name),
            want.0,
            want.1
        )));
    }
    Ok(())
}

/// A saved dataset on object storage: each component's shards read by range as one array
/// (`from_npy_files_with`), the components zipped and put back in the saved structure.
fn load_remote(
    store: &dyn Store,
    options: &LoadOptions,
    spec: ElementSpec,
    shards: &[Value],
    count: usize,
) -> Result<Dataset> {
    let show = store.show(INDEX);
    let mut urls: Vec<Vec<String>> = vec![Vec::with_capacity(shards.len()); count];
    let mut first: Option<Value> = None;
    for s in shards {
        let comps = s.get("components").cloned().unwrap_or(Value::Null);
        match &first {
            Some(f) if *f != comps => {
                return Err(Error::InvalidArgument(format!(
                    "load: {show}: its shards hold rows of different shapes, which npyflow \
                     reads from object storage only as one array per component; copy it to a \
                     local directory to load it"
                )))
            }
            None => first = Some(comps),
            _ => {}
        }
        for (j, (name, f)) in shard_files(s, count, &show)?.into_iter().enumerate() {
            if options.verify {
                verify_file(store, name, f)?;
            }
            let (url, _) = store
                .remote(name)
                .ok_or_else(|| Error::Pipeline("load: not a remote store".into()))?;
            urls[j].push(url);
        }
    }
    let parts = urls
        .iter()
        .map(|u| Dataset::from_npy_files_with(u, &options.storage))
        .collect::<Result<Vec<_>>>()?;
    if let (ElementSpec::Tensor(_), [one]) = (&spec, &parts[..]) {
        return Ok(one.clone());
    }
    let structure = spec.clone();
    Dataset::zip(parts)?.map(
        move |e: Element| {
            let tensors: Vec<Tensor> = e.tensors().into_iter().cloned().collect();
            rebuild(&structure, &mut tensors.into_iter()).ok_or_else(|| {
                Error::Pipeline("load: the element spec and the files disagree".into())
            })
        },
        super::options::MapOptions::new().output_spec(spec),
    )
}

/// The store of `path`: a URL's, or a local directory's.
fn store_of(path: &Path, storage: &StorageOptions) -> Box<dyn Store> {
    match path.to_str().filter(|p| is_url(p)) {
        Some(url) => Box::new(RemoteDir::new(url, storage)),
        None => Box::new(LocalDir::new(path)),
    }
}

impl Dataset {
    /// tf.data's `save`: writes the elements to the directory `path` as sharded `.npy`
    /// files (one per component per shard) and a small index (`index.json`: the element
    /// spec, each shard's row count, each file's size and CRC-32), for
    /// [`Dataset::load`] to read back.
    ///
    /// The save is atomic: the index is replaced in one step when every file is written,
    /// so a save that fails or is killed midway leaves the dataset that was there before (or
    /// nothing), never part of the new one. Several processes can each save a part of one
    /// dataset ([`SaveOptions::part`]); it appears when the last part is written.
    ///
    /// A component of a shard is one `.npy` array of its rows, so a shard holds rows of one
    /// shape: an element of another shape (a short last batch, ragged data) starts a new
    /// shard (at most 100,000 shards a part). Where npyflow differs from tf.data: the files
    /// are NumPy's (any tool reads them; TensorFlow's snapshot format is not used), they are
    /// not compressed (so they can be mapped: tf.data's `compression` is refused), there is
    /// no `checkpoint_args` (a save restarts; parts are the unit to redo), and without a
    /// `shard_func` elements go to shards of at most 1 GiB in order, so a loaded dataset has
    /// the saved order (tf.data's load interleaves its shards).
    ///
    /// `path` may be a URL (`s3://bucket/prefix`, `gs://`, `az://`, `file://`, with
    /// [`SaveOptions::storage_options`]): each shard object is then held in memory until it
    /// is put whole (so `max_shard_bytes` bounds that memory), and the index is put last.
    ///
    /// ```
    /// use npyflow::{Dataset, Element, Tensor};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("saved");
    /// let x = Tensor::from_vec((0..12i32).collect(), &[6, 2])?;
    /// let y = Tensor::from_vec((0..6i64).collect(), &[6])?;
    /// let ds = Dataset::from_tensor_slices(Element::tuple([x, y]))?;
    /// let summary = ds.save(&path, ())?;
    /// assert!(summary.complete);
    /// let back = Dataset::load(&path, ())?;
    /// assert_eq!(back.to_vec()?, ds.to_vec()?);
    /// assert_eq!(back.get(4)?.to_string(), "([8 9], 4)");
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn save(
        &self,
        path: impl AsRef<Path>,
        options: impl Into<SaveOptions>,
    ) -> Result<SaveSummary> {
        let path = path.as_ref();
        require(!path.is_file(), || {
            format!(
                "save: {} is a file; a saved dataset is a directory",
                path.display()
            )
        })?;
        let options = options.into();
        save_to(&*store_of(path, &options.storage), self, options)
    }

    /// tf.data's `load`: the dataset [`Dataset::save`] wrote at `path`, random-access over
    /// its memory-mapped shard files (global shuffle, `get`, `shard` and small iterator
    /// states work as for `from_npy`). Every file's size and CRC-32 are checked against the
    /// index first ([`LoadOptions::verify`]); a file that differs is an error naming it.
    /// Elements come in the saved order, shard by shard.
    ///
    /// Unlike tf.data there is no `reader_func`: the dataset is random-access, so shuffle
    /// or interleave it with the usual transformations.
    ///
    /// From a URL ([`LoadOptions::storage_options`]) the rows are read by range, as
    /// [`Dataset::from_npy_files_with`] reads them; each component's shards must then share
    /// one row shape.
    pub fn load(path: impl AsRef<Path>, options: impl Into<LoadOptions>) -> Result<Dataset> {
        let options = options.into();
        load_from(&*store_of(path.as_ref(), &options.storage), options)
    }
}
