//! Storage options: what overrides the environment, and how a store is built from them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreScheme, RetryConfig};

/// Options of the store a URL is read from: credentials, endpoint, region, timeouts, each
/// overriding the environment variable of the same name (`aws_endpoint_url` overrides
/// `AWS_ENDPOINT_URL`). The keys are `object_store`'s (`AmazonS3ConfigKey`,
/// `GoogleConfigKey`, `AzureConfigKey`, `ClientConfigKey`), plus npyflow's own:
///
/// - `max_retries`: how many times a request that failed in a way worth retrying (429, 5xx,
///   timeout, dropped connection) is tried again (10);
/// - `retry_timeout`: for how many seconds after its first try a request is retried (120);
/// - `max_in_flight`: how many range requests one read keeps in flight (16);
/// - `cache_dir`: a local directory where every range read from an object (with an ETag) is
///   kept as a file, so that later passes, other datasets and other processes sharing the
///   directory read it from disk instead of the store; `cache_max_bytes` bounds the bytes of
///   its files (10 GiB), the least recently used going first. Files are keyed by URL, ETag,
///   size and byte range, written under a temporary name and renamed (never read half
///   written), checked by length and CRC-32 when read (a damaged file is read from the store
///   again). A source that reads from the cache checks the object's ETag (one `HEAD`) once
///   per pass: a replaced object is an error, never its old bytes. tf.data has no such cache
///   for remote files; its `cache(filename)` keeps a pipeline's *elements* after one
///   complete pass, for that pipeline alone, where this keeps *bytes of objects* as they
///   are read, for any pipeline or process that reads them.
///
/// A key the URL's store does not know is an error naming it. `Debug` shows the keys only,
/// never the values.
///
/// ```
/// use npyflow_format::storage::StorageOptions;
/// let o = StorageOptions::new()
///     .with("aws_secret_access_key", "hush")
///     .with("aws_endpoint_url", "http://127.0.0.1:9000");
/// assert_eq!(o.get("aws_endpoint_url"), Some("http://127.0.0.1:9000"));
/// assert!(!format!("{o:?}").contains("hush"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct StorageOptions {
    entries: BTreeMap<String, String>,
}

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageOptions")
            .field("keys", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl StorageOptions {
    /// No options: everything from the environment.
    pub fn new() -> StorageOptions {
        StorageOptions::default()
    }

    /// These options with `key` set to `value` (keys are case-insensitive).
    pub fn with(mut self, key: impl AsRef<str>, value: impl Into<String>) -> StorageOptions {
        self.insert(key, value);
        self
    }

    /// Sets `key` to `value` (keys are case-insensitive).
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl Into<String>) {
        self.entries
            .insert(key.as_ref().to_ascii_lowercase(), value.into());
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The keys set, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn max_in_flight(&self) -> usize {
        self.get("max_in_flight")
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(16)
    }
}

impl<K: AsRef<str>, V: Into<String>> FromIterator<(K, V)> for StorageOptions {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut o = StorageOptions::new();
        for (k, v) in iter {
            o.insert(k, v);
        }
        o
    }
}

/// The options npyflow reads itself and does not hand to the store.
const OWN_KEYS: &[&str] = &[
    "max_retries",
    "retry_timeout",
    "max_in_flight",
    "block_bytes",
    "read_ahead_bytes",
    "cache_dir",
    "cache_max_bytes",
];

/// Whether a variable or option of this name may hold a credential.
fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "key",
        "secret",
        "token",
        "password",
        "sas",
        "credential",
        "service_account",
        "signature",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// The values that must never appear in a message: secret-looking options and environment
/// variables of the three clouds.
pub(crate) fn secrets(options: &StorageOptions) -> Vec<String> {
    let mut out: Vec<String> = options
        .entries
        .iter()
        .filter(|(k, _)| is_secret_name(k))
        .map(|(_, v)| v.clone())
        .collect();
    for (k, v) in std::env::vars() {
        let cloud = ["AWS_", "GOOGLE_", "AZURE_"]
            .iter()
            .any(|p| k.starts_with(p));
        if cloud && is_secret_name(&k) {
            out.push(v);
        }
    }
    // Longest first, so a secret that contains another is blanked whole.
    out.retain(|v| v.len() >= 4);
    out.sort_by_key(|v| std::cmp::Reverse(v.len()));
    out.dedup();
    out
}

pub(crate) enum BuildError {
    /// A bad option: the message says which.
    Option(String),
    /// The store refused its configuration.
    Store(object_store::Error),
}

impl From<object_store::Error> for BuildError {
    fn from(e: object_store::Error) -> Self {
        BuildError::Store(e)
    }
}

fn seconds(options: &StorageOptions, key: &str, default: u64) -> Result<Duration, BuildError> {
    match options.get(key) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .trim_end_matches('s')
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                BuildError::Option(format!(
                    "storage option {key}={v:?} is not a number of seconds"
                ))
            }),
    }
}

fn retry_config(options: &StorageOptions) -> Result<RetryConfig, BuildError> {
    let max_retries = match options.get("max_retries") {
        None => 10,
        Some(v) => v.parse().map_err(|_| {
            BuildError::Option(format!(
                "storage option max_retries={v:?} is not a whole number"
            ))
        })?,
    };
    let backoff = object_store::BackoffConfig {
        init_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(5),
        ..Default::default()
    };
    Ok(RetryConfig {
        backoff,
        max_retries,
        retry_timeout: seconds(options, "retry_timeout", 120)?,
    })
}

/// The keys the user gave that npyflow hands to the store.
fn store_keys(options: &StorageOptions) -> impl Iterator<Item = (&str, &str)> {
    options
        .entries
        .iter()
        .filter(|(k, _)| !OWN_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

fn unknown(key: &str, scheme: &str) -> BuildError {
    BuildError::Option(format!(
        "unknown storage option {key:?} for {scheme} URLs (options are object_store's \
         configuration keys, such as aws_endpoint_url, aws_region, allow_http, timeout, or \
         npyflow's max_retries, retry_timeout, max_in_flight, block_bytes, read_ahead_bytes, \
         cache_dir, cache_max_bytes)"
    ))
}

/// Makes TLS use ring (installed once, as the process's default, unless one already is).
fn install_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // ring rather than aws-lc: no CMake build. rustls marks ring's provider deprecated for
        // lacking post-quantum key exchange, which S3, GCS and Azure do not require.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The store of `url`'s scheme, configured from the environment, then `options`.
pub(crate) fn build(
    scheme: ObjectStoreScheme,
    url: &url::Url,
    options: &StorageOptions,
) -> Result<Arc<dyn ObjectStore>, BuildError> {
    install_tls();
    let retry = retry_config(options)?;
    Ok(match scheme {
        ObjectStoreScheme::Local => {
            if let Some((k, _)) = store_keys(options).next() {
                return Err(unknown(k, "file://"));
            }
            Arc::new(LocalFileSystem::new())
        }
        ObjectStoreScheme::AmazonS3 => {
            let mut b = AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .with_retry(retry);
            for (k, v) in store_keys(options) {
                b = b.with_config(k.parse().map_err(|_| unknown(k, "s3://"))?, v);
            }
            Arc::new(b.build()?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut b = GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry);
            for (k, v) in store_keys(options) {
                b = b.with_config(k.parse().map_err(|_| unknown(k, "gs://"))?, v);
            }
            Arc::new(b.build()?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut b = MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry);
            for (k, v) in store_keys(options) {
                b = b.with_config(k.parse().map_err(|_| unknown(k, "az://"))?, v);
            }
            Arc::new(b.build()?)
        }
        ObjectStoreScheme::Http => {
            let base = &url[..url::Position::BeforePath];
            let mut b = HttpBuilder::new().with_url(base).with_retry(retry);
            if url.scheme() == "http" {
                // The user asked for plain HTTP by writing http://.
                b = b.with_config(ClientConfigKey::AllowHttp, "true");
            }
            for (k, v) in store_keys(options) {
                b = b.with_config(k.parse().map_err(|_| unknown(k, "http(s)://"))?, v);
            }
            Arc::new(b.build()?)
        }
        other => {
            return Err(BuildError::Option(format!(
                "npyflow does not read {other:?} URLs"
            )))
        }
    })
}
