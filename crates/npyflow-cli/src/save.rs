//! `npyflow save`: runs a pipeline over `.npy` files and saves what it yields as a saved
//! dataset (`Dataset::save`: sharded `.npy` files and an index), with a progress bar.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use npyflow::dataset::{Cardinality, SaveOptions};

use npyflow_cli::spec;

/// Arguments of `npyflow save`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A pipeline to run over the files' rows before saving, written as a chain of calls
    /// (`map(cast(float32)).shuffle(1000, seed=0)`); none saves the rows as they are.
    #[arg(long)]
    pipeline: Option<String>,
    #[command(flatten)]
    patches: crate::source::PatchArgs,
    /// Start a new shard when one reaches this many bytes per component (1 GiB by default).
    #[arg(long, value_name = "BYTES")]
    max_shard_bytes: Option<u64>,
    /// Save part INDEX of a dataset saved in --num-parts parts by several processes (each
    /// with the same --num-parts and --save-id); it appears when the last part is written.
    #[arg(long, value_name = "INDEX", requires_all = ["num_parts", "save_id"])]
    part: Option<u64>,
    /// How many parts the dataset is saved in (with --part).
    #[arg(long, value_name = "N", requires = "part")]
    num_parts: Option<u64>,
    /// The name the parts of one save share (with --part).
    #[arg(long, value_name = "ID", requires = "part")]
    save_id: Option<String>,
    /// Print one JSON object (elements, shards, complete, seconds) instead of a line.
    #[arg(long)]
    json: bool,
    /// The .npy files to read (their rows as one array, or with --patches one file's
    /// patches), then the directory to save to.
    #[arg(required = true, num_args = 2.., value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// Runs `npyflow save`.
pub fn main(args: Args) -> Result<()> {
    let Some((out, files)) = args.paths.split_last() else {
        bail!("give the .npy files to read and the directory to save to");
    };
    let mut ds = crate::source::open(files, &args.patches)?;
    if let Some(text) = &args.pipeline {
        let calls = spec::parse(text).context("--pipeline")?;
        ds = spec::apply(ds, &calls)?;
    }
    let total = match ds.cardinality() {
        Cardinality::Finite(n) => Some(n),
        Cardinality::Infinite => bail!("the pipeline never ends (a repeat()?); it cannot be saved"),
        Cardinality::Unknown => None,
    };
    let bar = if !args.json && std::io::stderr().is_terminal() {
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::no_length(),
        };
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} elements {per_sec} {eta} -> {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(out.display().to_string());
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut options = SaveOptions::new();
    if let Some(b) = args.max_shard_bytes {
        options = options.max_shard_bytes(b);
    }
    if let (Some(i), Some(n), Some(id)) = (args.part, args.num_parts, &args.save_id) {
        options = options.part(i, n, id);
    }
    let progress = bar.clone();
    options = options.progress(move |n| progress.set_position(n));
    let start = Instant::now();
    let summary = ds.save(out, options);
    bar.finish_and_clear();
    let summary = summary.with_context(|| format!("saving to {}", out.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "path": out.display().to_string(),
                "elements": summary.elements,
                "shards": summary.shards,
                "complete": summary.complete,
                "seconds": seconds,
            })
        );
    } else {
        println!(
            "saved {} elements in {} shard(s) to {} in {seconds:.2} s{}",
            summary.elements,
            summary.shards,
            out.display(),
            if summary.complete {
                ""
            } else {
                " (this part is written; the dataset appears when the last part is)"
            }
        );
    }
    Ok(())
}
