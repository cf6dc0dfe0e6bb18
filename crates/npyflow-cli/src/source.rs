//! What a command that reads `.npy`/`.npz` files makes of them: the rows of the files (one
//! array when there are several), the members of one `.npz`, or the patches of one `.npy`
//! (`--patches`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use npyflow::dataset::{Dataset, PatchOptions};

/// The options that choose patches instead of rows.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PatchArgs {
    /// Read the patches of one .npy instead of its rows: the window over its leading axes,
    /// as comma-separated sizes (`32,32` cuts a cube (H, W, bands) into (32, 32, bands)).
    #[arg(long, value_name = "SIZES")]
    pub patches: Option<String>,
    /// The step between patches along each windowed axis, comma-separated; the window
    /// itself when not given.
    #[arg(long, value_name = "SIZES", requires = "patches")]
    pub patch_strides: Option<String>,
}

/// Comma-separated integers, as `--patches` takes them.
fn sizes(flag: &str, text: &str) -> Result<Vec<i64>> {
    text.split(',')
        .map(|s| {
            s.trim()
                .parse::<i64>()
                .with_context(|| format!("{flag}: {s:?} is not an integer (give sizes as 32,32)"))
        })
        .collect()
}

/// Images and labels in two files, as the components of a tuple.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ComponentArgs {
    /// The first component of each element, as tf.data's `from_tensor_slices((x, y))`:
    /// the rows of this .npy file (several --x files are read as one array). With --y, the
    /// element is the tuple (x, y): ops take component=0 or component=1.
    #[arg(long, value_name = "FILE")]
    pub x: Vec<PathBuf>,
    /// The second component of each element (labels, say): the rows of this .npy file,
    /// as many as --x has.
    #[arg(long, value_name = "FILE", requires = "x")]
    pub y: Vec<PathBuf>,
}

impl ComponentArgs {
    /// The files named, --x's then --y's.
    pub fn files(&self) -> Vec<PathBuf> {
        self.x.iter().chain(&self.y).cloned().collect()
    }

    /// The rows of --x, or (x, y) pairs of rows with --y; --x and --y must have as many
    /// rows as each other.
    pub fn open(&self) -> Result<Dataset> {
        let xs = Dataset::from_npy_files(&self.x)?;
        if self.y.is_empty() {
            return Ok(xs);
        }
        let ys = Dataset::from_npy_files(&self.y)?;
        let (n, m) = (xs.cardinality(), ys.cardinality());
        if n != m {
            bail!(
                "--x has {} rows and --y has {}: each x needs its y (as in tf.data's \
                 from_tensor_slices((x, y)))",
                n.as_i64(),
                m.as_i64()
            );
        }
        Ok(Dataset::zip(vec![xs, ys])?)
    }

    /// What the elements are, for a report.
    pub fn describe(&self) -> String {
        let names = |files: &[PathBuf]| {
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" + ")
        };
        if self.y.is_empty() {
            format!("the rows of {}", names(&self.x))
        } else {
            format!("(x, y) rows of {} and {}", names(&self.x), names(&self.y))
        }
    }
}

/// The dataset the files give: patches with `--patches`, else rows.
pub fn open(files: &[PathBuf], patches: &PatchArgs) -> Result<Dataset> {
    if let Some(size) = &patches.patches {
        if files.len() != 1 {
            bail!("--patches reads one .npy file, {} were given", files.len());
        }
        let size = sizes("--patches", size)?;
        let strides = patches
            .patch_strides
            .as_deref()
            .map(|s| sizes("--patch-strides", s))
            .transpose()?;
        let threads = npyflow::dataset::cores() as i64;
        let options = PatchOptions::from_tf(&size, strides.as_deref(), Some(threads))?;
        return Ok(Dataset::from_npy_patches(&files[0], options)?);
    }
    if files.len() == 1 && files[0].extension().is_some_and(|e| e == "npz") {
        return Ok(Dataset::from_npz(&files[0], None)?);
    }
    Ok(Dataset::from_npy_files(files)?)
}
