//! Objects by URL: the one way npyflow reads and writes bytes that are not a local path.
//!
//! `s3://bucket/key`, `gs://bucket/key`, `az://container/key` (and `abfs(s)://`),
//! `http(s)://host/path` and `file:///abs/path` are read through the
//! [`object_store`](https://docs.rs/object_store) crate. This module is the storage interface
//! the readers and writers above it use; it has five operations:
//!
//! | operation | function |
//! | --- | --- |
//! | size and ETag of an object | [`Object::open`] (one `HEAD`) |
//! | a byte range, checked against that ETag | [`Object::read_range`] |
//! | many byte ranges at once, many requests in flight | [`Object::read_ranges`], [`Object::prefetch`] |
//! | the objects matching a glob | [`list`] |
//! | write a whole object, atomically | [`put`] (and [`put_if_absent`], [`delete`]) |
//!
//! **Credentials and endpoints** come from the environment variables the clouds' own tools
//! read (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...; `GOOGLE_SERVICE_ACCOUNT`,
//! `GOOGLE_APPLICATION_CREDENTIALS`, ...; `AZURE_STORAGE_ACCOUNT_NAME`,
//! `AZURE_STORAGE_ACCOUNT_KEY`, ...), and [`StorageOptions`] overrides them key by key with the
//! same names in lower case (`aws_endpoint_url`, `allow_http`, `timeout`, ...). Credentials
//! are never shown: not in errors (their values are blanked out of every message), not in
//! `Debug` output of the options (keys only).
//!
//! **Faults.** Throttling (429, 503), server errors (5xx), timeouts and dropped connections
//! are retried with exponential backoff, at most `max_retries` times (10) and for at most
//! `retry_timeout` seconds (120) per request; both are storage options. A read that still
//! fails is an [`Error::Io`] naming the URL and the byte range. Every read after
//! [`Object::open`] asks for the ETag seen then (`If-Match`) and checks the ETag of the
//! answer: an object replaced while it is read is an error, never a mix of two versions.
//!
//! **Runtime.** The requests run on one Tokio runtime owned by npyflow (two threads named
//! `npyflow-io`, started on first use). The functions here block the calling thread until
//! their requests are done; nothing blocks inside the runtime.
//!
//! ```
//! use npyflow_format::storage::{self, Object, StorageOptions};
//! # let dir = tempfile::tempdir().unwrap();
//! let url = format!("file://{}/data/a.bin", dir.path().display());
//! let opts = StorageOptions::new();
//! storage::put(&url, (0u8..100).collect::<Vec<_>>(), &opts)?;
//! let obj = Object::open(&url, &opts)?;
//! assert_eq!(obj.size(), 100);
//! assert_eq!(&obj.read_range(10..13)?[..], &[10, 11, 12]);
//! let found = storage::list(&format!("file://{}/data/*.bin", dir.path().display()), &opts)?;
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].url, url);
//! # Ok::<(), npyflow_format::Error>(())
//! ```

mod cache;
mod options;
mod recycle;
mod runtime;

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, ObjectStoreScheme};

use crate::error::{Error, Result};
use crate::source::ReadAt;

pub use options::StorageOptions;

/// The schemes npyflow reads as URLs; anything else is a local path.
const SCHEMES: &[&str] = &[
    "s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss", "http", "https", "file",
];

/// Whether `s` is a URL npyflow reads through this module (`s3://...`, `file://...`, ...),
/// rather than a local path.
///
/// ```
/// use npyflow_format::storage::is_url;
/// assert!(is_url("s3://bucket/x.npy"));
/// assert!(is_url("https://example.com/x.npy"));
/// assert!(!is_url("data/x.npy"));
/// assert!(!is_url("C:/data/x.npy"));
/// ```
pub fn is_url(s: &str) -> bool {
    match s.split_once("://") {
        Some((scheme, _)) => SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()),
        None => false,
    }
}

/// A URL without its user information and query (where tokens may sit): what messages show.
pub fn display_url(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        }
        Err(_) => s.split(['?', '#']).next().unwrap_or(s).to_string(),
    }
}

/// One store (a bucket, a container, a host, the local file system) with the options it was
/// made with. Stores are shared: one per root and options, so connections are reused.
#[derive(Clone)]
struct Store {
    store: Arc<dyn ObjectStore>,
    /// What URLs of this store start with, for example `s3://bucket`.
    root: String,
    /// Whether paths are local file-system paths (`file://`), which have no leading `/` in
    /// `object_store`'s paths.
    local: bool,
    secrets: Arc<Vec<String>>,
    max_in_flight: usize,
    /// The local cache directory (storage option `cache_dir`), if any.
    cache: Option<Arc<cache::DiskCache>>,
}

impl Store {
    fn url_of(&self, path: &ObjPath) -> String {
        if self.local {
            format!("file:///{path}")
        } else {
            format!("{}/{path}", self.root)
        }
    }

    /// An error about `url` (with `what`, say `bytes 0..10`), credentials blanked out.
    fn error(&self, url: &str, what: Option<String>, e: object_store::Error) -> Error {
        use object_store::Error as E;
        let kind = match &e {
            E::NotFound { .. } => io::ErrorKind::NotFound,
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
                io::ErrorKind::PermissionDenied
            }
            E::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
            E::NotSupported { .. } | E::NotImplemented { .. } => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::Other,
        };
        let mut message = match &e {
            E::Precondition { .. } => {
                "the object changed while it was read (its ETag is not the one seen when it \
                 was opened); open it again to read the new version"
                    .to_string()
            }
            _ => chain(&e),
        };
        for s in self.secrets.iter() {
            message = message.replace(s.as_str(), "***");
        }
        let at = match what {
            Some(w) => format!("{}: {w}", display_url(url)),
            None => display_url(url),
        };
        Error::io(at, io::Error::new(kind, message))
    }
}

/// An error's message with its sources, `a: b: c`, without repeats.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        cur = s.source();
    }
    out
}

/// The stores made so far, by root and options.
fn stores() -> &'static Mutex<HashMap<(String, StorageOptions), Store>> {
    static STORES: OnceLock<Mutex<HashMap<(String, StorageOptions), Store>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

/// The store of `url` and the object's path in it.
fn resolve(url: &str, options: &StorageOptions) -> Result<(Store, ObjPath)> {
    let bad = |why: String| Error::InvalidArgument(format!("{}: {why}", display_url(url)));
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
    let (scheme, path) = ObjectStoreScheme::parse(&parsed).map_err(|_| {
        bad("npyflow reads s3://, gs://, az://, http(s):// and file:// URLs".into())
    })?;
    let path = ObjPath::from_url_path(path).map_err(|e| bad(format!("bad object path: {e}")))?;
    // Everything in front of the object's path names the store.
    let full = display_url(url);
    let root = match scheme {
        ObjectStoreScheme::Local => "file://".to_string(),
        _ => {
            let p = path.as_ref();
            let trimmed = full.trim_end_matches('/');
            let cut = if p.is_empty() {
                trimmed
            } else {
                trimmed
                    .rfind(p)
                    .map_or(trimmed, |i| trimmed[..i].trim_end_matches('/'))
            };
            cut.to_string()
        }
    };
    let key = (format!("{scheme:?} {root}"), options.clone());
    if let Some(s) = stores().lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok((s.clone(), path));
    }
    let local = matches!(scheme, ObjectStoreScheme::Local);
    let store = options::build(scheme, &parsed, options).map_err(|e| match e {
        options::BuildError::Option(m) => bad(m),
        options::BuildError::Store(e) => {
            let mut m = chain(&e);
            for s in options::secrets(options) {
                m = m.replace(s.as_str(), "***");
            }
            bad(format!("cannot set up its store: {m}"))
        }
    })?;
    let max_bytes = cache::parse_max_bytes(options.get("cache_max_bytes")).map_err(bad)?;
    let cache = match options.get("cache_dir") {
        Some(dir) => Some(cache::open(dir, max_bytes)?),
        None if options.get("cache_max_bytes").is_some() => {
            return Err(bad(
                "the storage option cache_max_bytes needs cache_dir (the directory to keep \
                 blocks in)"
                    .into(),
            ))
        }
        None => None,
    };
    let store = Store {
        store,
        root,
        local,
        secrets: Arc::new(options::secrets(options)),
        max_in_flight: options.max_in_flight(),
        cache,
    };
    stores()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, store.clone());
    Ok((store, path))
}

/// An object opened for reading: its size and ETag were read once, by [`Object::open`], and
/// every read checks that the object is still that version.
#[derive(Clone)]
pub struct Object {
    store: Store,
    path: ObjPath,
    url: String,
    size: u64,
    etag: Option<String>,
    /// Set when [`Object::check_unchanged`] found another version: nothing is read from the
    /// cache directory any more.
    changed: Arc<AtomicBool>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("url", &display_url(&self.url))
            .field("size", &self.size)
            .field("etag", &self.etag)
            .finish()
    }
}

/// One ranged GET of `path`, checked to be of the version `etag` and of the length asked.
async fn get_range(
    store: Arc<dyn ObjectStore>,
    path: ObjPath,
    range: Range<u64>,
    etag: Option<String>,
) -> std::result::Result<Bytes, object_store::Error> {
    let options = GetOptions {
        range: Some(GetRange::Bounded(range.clone())),
        if_match: etag.clone(),
        ..Default::default()
    };
    let got = store.get_opts(&path, options).await?;
    if let (Some(want), Some(seen)) = (&etag, &got.meta.e_tag) {
        if want != seen {
            return Err(object_store::Error::Precondition {
                path: path.to_string(),
                source: format!("ETag {seen:?}, expected {want:?}").into(),
            });
        }
    }
    // The body goes into a recycled buffer of the range's length (see `recycle`); a server
    // that sends more than that is an error before anything past the range is kept.
    let want = range.end - range.start;
    let wrong_length = |sent: u64| object_store::Error::Generic {
        store: "npyflow",
        source: format!("the server sent {sent} bytes for a range of {want}").into(),
    };
    let mut buffer = recycle::POOL.buffer(usize::try_from(want).map_err(|_| wrong_length(0))?);
    let mut body = got.into_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        let sent = (buffer.len() + chunk.len()) as u64;
        if sent > want {
            return Err(wrong_length(sent));
        }
        buffer.extend_from_slice(&chunk);
    }
    if buffer.len() as u64 != want {
        return Err(wrong_length(buffer.len() as u64));
    }
    Ok(recycle::POOL.freeze(buffer))
}

impl Object {
    /// Opens the object at `url`: one `HEAD` request for its size and ETag. A missing
    /// object is an [`Error::Io`] of kind `NotFound` naming the URL.
    pub fn open(url: &str, options: &StorageOptions) -> Result<Object> {
        let (store, path) = resolve(url, options)?;
        let s = store.store.clone();
        let p = path.clone();
        let meta = runtime::block_on(async move { s.head(&p).await })?
            .map_err(|e| store.error(url, None, e))?;
        Ok(Object {
            url: store.url_of(&path),
            store,
            path,
            size: meta.size,
            etag: meta.e_tag,
            changed: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The object's URL (credentials and query removed).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The size in bytes, when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The ETag when it was opened, if the store gives one.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// How many range requests a reader of this object should keep in flight at once (the
    /// storage option `max_in_flight`, 16 by default).
    pub fn max_in_flight(&self) -> usize {
        self.store.max_in_flight
    }

    fn check(&self, range: &Range<u64>) -> Result<()> {
        if range.start > range.end || range.end > self.size {
            return Err(Error::InvalidArgument(format!(
                "{}: bytes {}..{} are not within the object's {} bytes",
                self.url, range.start, range.end, self.size
            )));
        }
        Ok(())
    }

    fn range_error(&self, range: &Range<u64>, e: object_store::Error) -> Error {
        self.store.error(
            &self.url,
            Some(format!("bytes {}..{}", range.start, range.end)),
            e,
        )
    }

    /// One range: from the cache directory when the object is cached there (see
    /// [`Object::is_cached`]) and the directory holds it, else by a ranged GET (then kept in
    /// the directory).
    fn fetch(&self, range: Range<u64>) -> impl std::future::Future<Output = Result<Bytes>> {
        let this = self.clone();
        async move {
            if range.start == range.end {
                return Ok(Bytes::new());
            }
            let cached = match (&this.store.cache, &this.etag) {
                (Some(c), Some(etag)) if !this.changed.load(Ordering::Relaxed) => Some((
                    c.clone(),
                    format!(
                        "{}\n{etag}\n{}\n{}-{}",
                        this.url, this.size, range.start, range.end
                    ),
                )),
                _ => None,
            };
            // Readers of one range in this process take turns: one request, not several.
            let _turn = match &cached {
                Some((c, key)) => Some(c.turn(key).await),
                None => None,
            };
            if let Some((c, key)) = cached.clone() {
                let len = range.end - range.start;
                if let Ok(Some(bytes)) = tokio::task::spawn_blocking(move || c.get(&key, len)).await
                {
                    return Ok(bytes);
                }
            }
            let bytes = get_range(
                this.store.store.clone(),
                this.path.clone(),
                range.clone(),
                this.etag.clone(),
            )
            .await
            .map_err(|e| this.range_error(&range, e))?;
            if let Some((c, key)) = cached {
                let b = bytes.clone();
                let _ = tokio::task::spawn_blocking(move || c.put(&key, &b)).await;
            }
            Ok(bytes)
        }
    }

    /// Whether reads of this object go through a local cache directory (the storage option
    /// `cache_dir`): it has one, the object has an ETag to key it by, and no change of the
    /// object was seen by [`Object::check_unchanged`].
    ///
    /// ```
    /// use npyflow_format::storage::{self, Object, StorageOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let url = format!("file://{}/a.bin", dir.path().display());
    /// storage::put(&url, vec![7u8; 10], &StorageOptions::new())?;
    /// assert!(!Object::open(&url, &StorageOptions::new())?.is_cached());
    /// let opts = StorageOptions::new().with("cache_dir", dir.path().join("c").display().to_string());
    /// let o = Object::open(&url, &opts)?;
    /// assert!(o.is_cached());
    /// assert_eq!(&o.read_range(0..3)?[..], &[7, 7, 7]); // read, and kept in the directory
    /// assert_eq!(&o.read_range(0..3)?[..], &[7, 7, 7]); // from the directory
    /// # Ok::<(), npyflow_format::Error>(())
    /// ```
    pub fn is_cached(&self) -> bool {
        self.store.cache.is_some() && self.etag.is_some() && !self.changed.load(Ordering::Relaxed)
    }

    /// Checks, by one `HEAD` request, that the object is still the version [`Object::open`]
    /// saw (same ETag and size). Readers that serve bytes from a cache directory call it
    /// once per pass, so that a replaced object is never read from the copies of its old
    /// version. A replaced object is an [`Error::Io`] naming it; from then on this object
    /// (and its clones) read nothing from the cache, so every read of it fails the same way,
    /// as reads of a replaced object do without a cache.
    ///
    /// ```
    /// use npyflow_format::storage::{self, Object, StorageOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let url = format!("file://{}/a.bin", dir.path().display());
    /// let opts = StorageOptions::new();
    /// storage::put(&url, vec![1u8; 10], &opts)?;
    /// let o = Object::open(&url, &opts)?;
    /// o.check_unchanged()?;
    /// storage::put(&url, vec![2u8; 12], &opts)?;
    /// let err = o.check_unchanged().unwrap_err();
    /// assert!(err.to_string().contains("changed since it was opened"), "{err}");
    /// # Ok::<(), npyflow_format::Error>(())
    /// ```
    pub fn check_unchanged(&self) -> Result<()> {
        let s = self.store.store.clone();
        let p = self.path.clone();
        let meta = runtime::block_on(async move { s.head(&p).await })?
            .map_err(|e| self.store.error(&self.url, None, e))?;
        if meta.e_tag == self.etag && meta.size == self.size {
            return Ok(());
        }
        self.changed.store(true, Ordering::Relaxed);
        Err(Error::io(
            display_url(&self.url),
            io::Error::other(
                "the object changed since it was opened (its ETag or size is not the one seen \
                 then); open it again to read the new version",
            ),
        ))
    }

    /// Bytes `range` of the object: one ranged GET (retried as the module docs say).
    pub fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        self.check(&range)?;
        runtime::block_on(self.fetch(range))?
    }

    /// Several ranges, fetched concurrently (at most `max_in_flight` requests at once, a
    /// storage option, 16 by default) and returned in the order asked. The first range that
    /// cannot be read is the error.
    pub fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        for r in ranges {
            self.check(r)?;
        }
        let futures: Vec<_> = ranges.iter().map(|r| self.fetch(r.clone())).collect();
        let n = self.store.max_in_flight;
        runtime::block_on(async move {
            futures::stream::iter(futures)
                .buffered(n)
                .try_collect::<Vec<_>>()
                .await
        })?
    }

    /// Starts reading `range` in the background and returns at once; [`Pending::wait`] gives
    /// the bytes. Dropping the [`Pending`] cancels the request.
    pub fn prefetch(&self, range: Range<u64>) -> Result<Pending> {
        self.check(&range)?;
        let handle = runtime::spawn(self.fetch(range))?;
        Ok(Pending {
            handle: Some(handle),
        })
    }
}

/// A read started by [`Object::prefetch`].
pub struct Pending {
    handle: Option<tokio::task::JoinHandle<Result<Bytes>>>,
}

impl Pending {
    /// Waits for the bytes (blocking this thread; call it outside async code).
    pub fn wait(mut self) -> Result<Bytes> {
        let Some(h) = self.handle.take() else {
            return Err(Error::Pipeline("a prefetch was waited for twice".into()));
        };
        match runtime::block_on(h)? {
            Ok(r) => r,
            Err(e) => Err(Error::Pipeline(format!(
                "a background read did not finish: {e}"
            ))),
        }
    }

    /// Whether the bytes are there (`wait` will not block).
    pub fn is_ready(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

/// One object found by [`list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its URL.
    pub url: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, if the store gives one.
    pub etag: Option<String>,
}

/// The objects whose URLs match `pattern`, sorted by URL: a URL whose path may hold the glob
/// characters `*`, `?` and `[...]` (`*` does not cross `/`; `**` does). A URL without them
/// lists that one object, if it exists. An `http(s)://` server cannot list (HTTP has no
/// listing); that is an error saying so.
///
/// ```
/// use npyflow_format::storage::{self, StorageOptions};
/// # let dir = tempfile::tempdir().unwrap();
/// let root = format!("file://{}", dir.path().display());
/// let opts = StorageOptions::new();
/// for name in ["a.npy", "b.npy", "c.txt", "sub/d.npy"] {
///     storage::put(&format!("{root}/{name}"), vec![0u8; 4], &opts)?;
/// }
/// let urls: Vec<_> = storage::list(&format!("{root}/*.npy"), &opts)?
///     .into_iter().map(|o| o.url).collect();
/// assert_eq!(urls, [format!("{root}/a.npy"), format!("{root}/b.npy")]);
/// assert_eq!(storage::list(&format!("{root}/**/*.npy"), &opts)?.len(), 3);
/// # Ok::<(), npyflow_format::Error>(())
/// ```
pub fn list(pattern: &str, options: &StorageOptions) -> Result<Vec<ObjectInfo>> {
    let glob_at = pattern
        .find(['*', '?', '['])
        .filter(|&i| !pattern[..i].contains('?') && pattern[..i].contains("://"));
    let Some(at) = glob_at else {
        let o = Object::open(pattern, options)?;
        return Ok(vec![ObjectInfo {
            url: o.url.clone(),
            size: o.size,
            etag: o.etag.clone(),
        }]);
    };
    // The directory in front of the first glob character is listed; the rest is matched.
    let dir_end = pattern[..at].rfind('/').map_or(0, |i| i + 1);
    let dir_url = &pattern[..dir_end];
    let (store, dir) = resolve(dir_url, options)?;
    let mut pattern_url = store.url_of(&dir);
    if !pattern_url.ends_with('/') {
        pattern_url.push('/');
    }
    let glob_text = format!("{pattern_url}{}", &pattern[dir_end..]);
    let matcher = glob::Pattern::new(&glob_text).map_err(|e| {
        Error::InvalidArgument(format!("list: pattern {:?}: {e}", display_url(pattern)))
    })?;
    let match_options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let s = store.store.clone();
    let prefix = (!dir.as_ref().is_empty()).then(|| dir.clone());
    let metas =
        runtime::block_on(async move { s.list(prefix.as_ref()).try_collect::<Vec<_>>().await })?
            .map_err(|e| store.error(dir_url, Some("listing".into()), e))?;
    let mut out: Vec<ObjectInfo> = metas
        .into_iter()
        .map(|m| ObjectInfo {
            url: store.url_of(&m.location),
            size: m.size,
            etag: m.e_tag,
        })
        .filter(|o| matcher.matches_with(&o.url, match_options))
        .collect();
    out.sort_by(|a, b| a.url.cmp(&b.url));
    Ok(out)
}

/// Writes `data` as the object at `url`, atomically: readers see the old object (or none)
/// until the new one is whole. Object stores' `PUT` is atomic; on `file://` the data is
/// written to a temporary file beside the target and renamed over it.
pub fn put(url: &str, data: impl Into<Bytes>, options: &StorageOptions) -> Result<()> {
    put_with(url, data.into(), options, object_store::PutMode::Overwrite)
}

/// Like [`put`], but fails with an [`Error::Io`] of kind `AlreadyExists` when an object is
/// already at `url` (where the store supports it: S3, GCS, Azure and local files do).
pub fn put_if_absent(url: &str, data: impl Into<Bytes>, options: &StorageOptions) -> Result<()> {
    put_with(url, data.into(), options, object_store::PutMode::Create)
}

fn put_with(
    url: &str,
    data: Bytes,
    options: &StorageOptions,
    mode: object_store::PutMode,
) -> Result<()> {
    let (store, path) = resolve(url, options)?;
    let s = store.store.clone();
    let opts = object_store::PutOptions {
        mode,
        ..Default::default()
    };
    runtime::block_on(async move { s.put_opts(&path, data.into(), opts).await.map(|_| ()) })?
        .map_err(|e| store.error(url, Some("writing".into()), e))
}

/// Deletes the object at `url` (no error when it is already gone).
pub fn delete(url: &str, options: &StorageOptions) -> Result<()> {
    let (store, path) = resolve(url, options)?;
    let s = store.store.clone();
    match runtime::block_on(async move { s.delete(&path).await })? {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(store.error(url, Some("deleting".into()), e)),
    }
}

// ---- positioned reads for the format's parsers (headers, zip directories, deflated members),
// with a read-ahead block so that their many small reads become few requests.

/// The first request's size: a `.npy` header (at most 64 KiB before NumPy's
/// `max_header_size` is raised) or the end of a zip archive, in one GET.
const FIRST_BLOCK: u64 = 64 << 10;
/// The largest read-ahead block, reached by doubling while reads go forward.
const MAX_BLOCK: u64 = 8 << 20;

/// An [`Object`] read at offsets: each read that misses the block held fetches at least a
/// block from its offset on (twice the last block when reads go forward, up to 8 MiB).
pub(crate) struct RemoteFile {
    object: Object,
    /// The block held: its offset and bytes; the next block's size.
    block: Mutex<(u64, Bytes, u64)>,
}

impl RemoteFile {
    pub(crate) fn new(object: Object) -> RemoteFile {
        RemoteFile {
            object,
            block: Mutex::new((0, Bytes::new(), FIRST_BLOCK)),
        }
    }

    pub(crate) fn object(&self) -> &Object {
        &self.object
    }
}

impl ReadAt for RemoteFile {
    fn size(&self) -> u64 {
        self.object.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.object.size())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        let mut held = self.block.lock().unwrap_or_else(|p| p.into_inner());
        let (start, bytes, next) = &mut *held;
        if offset >= *start && end <= *start + bytes.len() as u64 {
            let at = (offset - *start) as usize;
            buf.copy_from_slice(&bytes[at..at + buf.len()]);
            return Ok(());
        }
        let forward = offset >= *start + bytes.len() as u64 && !bytes.is_empty();
        let size = if forward {
            (*next * 2).min(MAX_BLOCK)
        } else {
            *next
        };
        let fetch_end = end.max(offset + size).min(self.object.size());
        let got = self
            .object
            .read_range(offset..fetch_end)
            .map_err(|e| io::Error::other(e.to_string()))?;
        buf.copy_from_slice(&got[..buf.len()]);
        *held = (offset, got, size);
        Ok(())
    }
}
