//! The one error type of the npyflow family.
//!
//! [`Error`] is defined here, in the lowest crate, and shared by every crate above it
//! (`npyflow` re-exports it as `npyflow::Error`), as arrow-rs keeps its `ArrowError` in a
//! low crate: an error from reading a file and one from a pipeline over it are the same
//! type, so `?` needs no conversion anywhere in the family. Some variants
//! ([`Error::Function`], [`Error::Pipeline`], [`Error::Foreign`]) are only made by the
//! layers above this crate.
//!
//! Every fallible function returns [`Result<T>`]. Errors carry enough context to act on:
//! the file, the npz member, the element index or the argument at fault. Context is added
//! from the inside out with [`Error::context`], so a message reads like
//! `data/x.npz: member 'images.npy': header: shape dimension -3 is negative`.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in npyflow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system error while reading or writing a file. Printed as the path and
    /// the system's words (`x.npy: No such file or directory`), without Rust's
    /// ` (os error 2)`.
    #[error("{}: {}", path.display(), os_words(source))]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A `.npy` header that is malformed or asks for something npyflow refuses.
    #[error("header: {0}")]
    Header(String),
    /// A dtype descriptor that NumPy may know but npyflow does not support, or that is unknown.
    #[error("dtype: {0}")]
    Dtype(String),
    /// The array data does not match its header (too short, bad checksum, wrong size).
    #[error("data: {0}")]
    Data(String),
    /// A `.npz` (zip) container that is malformed or uses a feature npyflow refuses.
    #[error("zip: {0}")]
    Zip(String),
    /// An argument outside its allowed range or of the wrong kind, refused before any work.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A tensor accessed as a Rust type that does not match its dtype.
    #[error("dtype mismatch: expected {expected}, found {found}")]
    DtypeMismatch {
        /// What the caller asked for.
        expected: String,
        /// What the tensor holds.
        found: String,
    },
    /// An index outside the bounds of a tensor or a dataset.
    #[error("index {index} is out of range for length {len}")]
    OutOfRange {
        /// The index asked for.
        index: usize,
        /// The length of the indexed axis.
        len: usize,
    },
    /// An allocation the data needs could not be made.
    #[error("cannot allocate {bytes} bytes")]
    Alloc {
        /// The size asked for.
        bytes: usize,
    },
    /// A user function (a map, filter or generator function) failed or panicked.
    #[error("{0}")]
    Function(String),
    /// A pipeline was used in a way its elements do not allow (a batch of tensors of
    /// different shapes, a filter predicate that is not a scalar bool, ...), at run time.
    #[error("{0}")]
    Pipeline(String),
    /// An error from outside npyflow that a front must get back as it was: a Python
    /// exception raised in a user function, carried through the pipeline unchanged so that
    /// the front can raise it again with its own type and traceback. Find it with
    /// [`Error::root`] and `downcast_ref`.
    #[error("{0}")]
    Foreign(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// An error with the place it happened (a file, a member, an element) in front of it.
    #[error("{context}: {source}")]
    Context {
        /// Where the error happened, for example a path or `member 'x.npy'`.
        context: String,
        /// The error itself.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Wraps this error with a description of where it happened.
    ///
    /// ```
    /// use npyflow_format::Error;
    /// let e = Error::Header("missing key 'shape'".into()).context("data/x.npy");
    /// assert_eq!(e.to_string(), "data/x.npy: header: missing key 'shape'");
    /// ```
    pub fn context(self, context: impl fmt::Display) -> Error {
        Error::Context {
            context: context.to_string(),
            source: Box::new(self),
        }
    }

    /// An error raised by a user function, with any message: what a map or filter function
    /// returns to fail on one element.
    ///
    /// ```
    /// use npyflow_format::Error;
    /// assert_eq!(Error::msg("label out of range").to_string(), "label out of range");
    /// ```
    pub fn msg(message: impl fmt::Display) -> Error {
        Error::Function(message.to_string())
    }

    /// Wraps an error from outside npyflow (see [`Error::Foreign`]).
    ///
    /// ```
    /// use npyflow_format::Error;
    /// #[derive(Debug)]
    /// struct Interrupted;
    /// impl std::fmt::Display for Interrupted {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("interrupted")
    ///     }
    /// }
    /// impl std::error::Error for Interrupted {}
    ///
    /// let e = Error::foreign(Interrupted).context("map: element 3");
    /// assert_eq!(e.to_string(), "map: element 3: interrupted");
    /// let Error::Foreign(inner) = e.root() else { unreachable!() };
    /// assert!(inner.downcast_ref::<Interrupted>().is_some());
    /// ```
    pub fn foreign(error: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Foreign(Box::new(error))
    }

    /// The innermost error, past every [`Error::Context`] layer.
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.root(),
            other => other,
        }
    }

    /// An [`Error::Io`]: `source` happened while reading or writing `path`.
    ///
    /// ```
    /// use npyflow_format::Error;
    /// let e = Error::io("data/x.npy", std::io::ErrorKind::NotFound.into());
    /// assert!(e.to_string().starts_with("data/x.npy: "));
    /// ```
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The words of an I/O error as the operating system gives them: Rust's ` (os error N)`
/// suffix is dropped (the number is no help to a reader; Python shows it as `[Errno N]`).
///
/// ```
/// use npyflow_format::Error;
/// let e = Error::io("x.npy", std::io::Error::from_raw_os_error(2));
/// assert!(!e.to_string().contains("os error"), "{e}");
/// assert!(e.to_string().starts_with("x.npy: "), "{e}");
/// ```
pub fn os_words(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text,
    }
}

/// Adds [`Error::context`] to results.
///
/// ```
/// use npyflow_format::{Error, Result, ResultExt};
/// let r: Result<()> = Err(Error::Data("too short".into()));
/// assert_eq!(r.context("x.npy").unwrap_err().to_string(), "x.npy: data: too short");
/// ```
pub trait ResultExt<T> {
    /// Wraps the error, if any, with a description of where it happened.
    fn context(self, context: impl fmt::Display) -> Result<T>;
    /// Like [`ResultExt::context`], but builds the description only on error.
    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn context(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.context(context))
    }
    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.context(context()))
    }
}
