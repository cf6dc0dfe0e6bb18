//! The `npyflow` command.

#![deny(unsafe_code)]

mod bench;
mod inspect;
mod sample;
mod save;
mod source;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// NumPy data pipelines: inspect .npy/.npz files, run and benchmark pipelines.
#[derive(Parser)]
#[command(name = "npyflow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the dtype, shape, order and size of every array in .npy and .npz files.
    ///
    /// Opening a file reads its header only; --stats streams through the data in chunks.
    /// Exits 1 if any file or member could not be read (the others are still reported).
    Inspect(inspect::Args),
    /// Measure a pipeline: a standard workload (w1, the default: 50,000 generated images in
    /// memory, cast to float32 and batched; w2, w3, w5, w6: see its --help) or --pipeline over .npy files (their
    /// rows, or with --patches the patches of one) or over --x and --y (images and labels).
    ///
    /// Reports rows/s, GB/s delivered, the time to the first batch (opening included) and the
    /// peak anonymous memory; --json prints them as one JSON object.
    Bench(Box<bench::Args>),
    /// Save what a pipeline over .npy files yields as a dataset that `Dataset.load` reads:
    /// sharded .npy files (one per component per shard) and an index with checksums.
    ///
    /// The save is atomic: killed midway, it leaves the dataset that was there before (or
    /// nothing). Shows a progress bar on a terminal.
    Save(Box<save::Args>),
}

/// Arguments shared by subcommands that read files.
#[derive(clap::Args, Clone, Debug)]
struct ReadArgs {
    /// The longest .npy header accepted, in bytes (NumPy's max_header_size).
    #[arg(long, default_value_t = npyflow::format::header::DEFAULT_MAX_HEADER_SIZE)]
    max_header_size: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Save(args) => match save::main(*args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("npyflow save: {}", report(&e));
                ExitCode::FAILURE
            }
        },
        Command::Bench(args) => match bench::main(*args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("npyflow bench: {}", report(&e));
                ExitCode::FAILURE
            }
        },
    }
}

/// An error and its causes on one line, each said once, in plain words. anyhow's `{:#}` writes every cause
/// after its context, but npyflow's own errors already end with their cause (`x.npy: No
/// such file or directory` has the I/O error as its source too), which `{:#}` would repeat.
fn report(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        // The system's words for an I/O error, without Rust's " (os error 2)".
        let part = match cause.downcast_ref::<std::io::Error>() {
            Some(io) => npyflow::error::os_words(io),
            None => cause.to_string(),
        };
        if text.ends_with(&part) {
            continue; // said by the message before it
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
