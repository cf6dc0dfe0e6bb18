//! `npyflow inspect`: what NumPy would see in each file.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use npyflow::format::header::{NpyHeader, Version};
use npyflow::format::npy::{NpyFile, ReadOptions};
use npyflow::format::npz::{NpzArchive, NpzEntry};
use npyflow::format::stats::{Scalar, Stats, StatsAccumulator};
use npyflow::format::FileKind;

use crate::ReadArgs;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Files to inspect (.npy or .npz, told apart by their contents).
    #[arg(required_unless_present = "sample")]
    paths: Vec<PathBuf>,
    /// Print one JSON object per array, one per line.
    #[arg(long)]
    json: bool,
    /// Also read the data: min, max, sum, mean and standard deviation (as float64; the
    /// deviation of the population, NumPy's a.std()) and the first 8 elements.
    #[arg(long)]
    stats: bool,
    /// With --stats (which it implies): also the mean and standard deviation of each
    /// channel, the values to give `normalize(mean, std)`. Channels are along the last axis
    /// ((N, H, W, C) images) unless --channel-axis says otherwise.
    #[arg(long)]
    per_channel: bool,
    /// The axis of the channels for --per-channel (negative counts from the end; 1 for
    /// (N, C, H, W) images).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true, requires = "per_channel")]
    channel_axis: i64,
    /// Write a small sample of .npy and .npz files to a temporary directory and inspect them.
    #[arg(long)]
    sample: bool,
    #[command(flatten)]
    read: ReadArgs,
}

/// What is reported for one array.
struct Record {
    path: String,
    name: Option<String>,
    header: NpyHeader,
    version: Version,
    stats: Option<Stats>,
}

/// Bytes read per chunk when streaming data for --stats.
const CHUNK: usize = 4 << 20;

pub fn run(args: Args) -> ExitCode {
    let _sample_dir;
    let mut paths = args.paths.clone();
    if args.sample {
        match crate::sample::write_sample() {
            Ok((dir, files)) => {
                eprintln!("npyflow: wrote a sample to {}", dir.path().display());
                paths.extend(files);
                _sample_dir = dir;
            }
            Err(e) => {
                eprintln!("npyflow: cannot write the sample: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let options = ReadOptions {
        max_header_size: args.read.max_header_size,
        ..ReadOptions::default()
    };
    let mut ok = true;
    let mut rows = Vec::new();
    let stdout = std::io::stdout();
    for path in &paths {
        let mut report = |r: Record| {
            if args.json {
                let mut out = stdout.lock();
                let _ = writeln!(out, "{}", to_json(&r));
            } else {
                rows.push(r);
            }
        };
        let mut fail = |msg: String| {
            ok = false;
            eprintln!("npyflow: {msg}");
        };
        let wanted = (args.stats || args.per_channel).then_some(Wanted {
            channel_axis: args.per_channel.then_some(args.channel_axis),
        });
        inspect_path(path, &options, wanted, &mut report, &mut fail);
    }
    if !args.json {
        print_table(&rows, args.stats || args.per_channel);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What --stats asks for.
#[derive(Clone, Copy)]
struct Wanted {
    /// The channel axis, for per-channel statistics.
    channel_axis: Option<i64>,
}

fn inspect_path(
    path: &Path,
    options: &ReadOptions,
    stats: Option<Wanted>,
    report: &mut dyn FnMut(Record),
    fail: &mut dyn FnMut(String),
) {
    let shown = path.display().to_string();
    let kind = match FileKind::detect(path) {
        Ok(k) => k,
        Err(e) => return fail(e.to_string()),
    };
    match kind {
        FileKind::Npy => {
            let f = match NpyFile::open_with(path, options) {
                Ok(f) => f,
                Err(e) => return fail(e.to_string()),
            };
            let s = if let Some(wanted) = stats {
                let total = f.header().nbytes() as u64;
                let mut offset = 0u64;
                let result = stream_stats(f.header(), total, &shown, wanted, |buf| {
                    f.read_raw_at(buf, offset)?;
                    offset += buf.len() as u64;
                    Ok(buf.len())
                });
                match result {
                    Ok(s) => Some(s),
                    Err(e) => return fail(format!("{shown}: {e}")),
                }
            } else {
                None
            };
            report(Record {
                path: shown,
                name: None,
                header: f.header().clone(),
                version: f.version(),
                stats: s,
            });
        }
        FileKind::Npz => {
            let npz = match NpzArchive::open_with(path, options) {
                Ok(a) => a,
                Err(e) => return fail(e.to_string()),
            };
            for entry in npz.entries() {
                let m = match entry {
                    NpzEntry::Array(m) => m,
                    NpzEntry::Other { .. } => continue,
                    NpzEntry::Bad { name, error } => {
                        fail(format!("{shown}: member {name:?}: {error}"));
                        continue;
                    }
                };
                let s = if let Some(wanted) = stats {
                    let result = npz.data_reader(m).and_then(|mut reader| {
                        let total = m.header.nbytes() as u64;
                        let label = format!("{shown}:{}", m.key);
                        let s = stream_stats(&m.header, total, &label, wanted, |buf| {
                            reader.read_exact(buf)?;
                            Ok(buf.len())
                        })?;
                        // Read what follows the data too, so the CRC covers the whole member.
                        let mut rest = vec![0u8; 64 << 10];
                        while reader.read(&mut rest)? > 0 {}
                        Ok(s)
                    });
                    match result {
                        Ok(s) => Some(s),
                        Err(e) => {
                            fail(format!("{shown}: member {:?}: {e}", m.name));
                            continue;
                        }
                    }
                } else {
                    None
                };
                report(Record {
                    path: shown.clone(),
                    name: Some(m.key.clone()),
                    header: m.header.clone(),
                    version: m.version,
                    stats: s,
                });
            }
        }
    }
}

/// Streams `total` bytes of data through a [`StatsAccumulator`], `read` filling each chunk,
/// with a progress bar on a terminal for large arrays.
fn stream_stats(
    header: &NpyHeader,
    total: u64,
    label: &str,
    wanted: Wanted,
    mut read: impl FnMut(&mut [u8]) -> npyflow::Result<usize>,
) -> npyflow::Result<Stats> {
    let mut acc = StatsAccumulator::new(header);
    if let Some(axis) = wanted.channel_axis {
        acc = acc.per_channel(axis)?;
    }
    let bar = (std::io::stderr().is_terminal() && total > (256 << 20)).then(|| {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(label.to_owned());
        bar
    });
    let mut buf = vec![0u8; CHUNK.min(total as usize)];
    let mut done = 0u64;
    while done < total {
        let n = ((total - done) as usize).min(buf.len());
        read(&mut buf[..n])?;
        acc.feed(&buf[..n]);
        done += n as u64;
        if let Some(b) = &bar {
            b.set_position(done);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    acc.finish()
}

/// A float as Python's `json` module writes it: NaN and infinities as bare words.
fn json_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        serde_json::to_string(&v).unwrap_or_else(|_| "null".into())
    }
}

fn json_scalar(s: &Scalar) -> String {
    match *s {
        Scalar::Bool(b) => b.to_string(),
        Scalar::Int(i) => i.to_string(),
        Scalar::UInt(u) => u.to_string(),
        Scalar::Float(f) => json_f64(f),
        Scalar::Complex(re, im) => format!("[{}, {}]", json_f64(re), json_f64(im)),
    }
}

fn json_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "null".into(), json_f64)
}

fn to_json(r: &Record) -> String {
    let h = &r.header;
    let s = |v: &str| serde_json::to_string(v).unwrap_or_default();
    let shape: Vec<String> = h.shape.iter().map(|d| d.to_string()).collect();
    let mut out = format!(
        "{{\"path\": {}, \"name\": {}, \"dtype\": {}, \"shape\": [{}], \"fortran_order\": {}, \
         \"format_version\": \"{}\", \"nbytes\": {}",
        s(&r.path),
        r.name.as_deref().map_or_else(|| "null".into(), s),
        s(&h.descr()),
        shape.join(", "),
        h.fortran_order,
        r.version.as_str(),
        h.nbytes()
    );
    if let Some(st) = &r.stats {
        if h.dtype.is_real_number() {
            out += &format!(
                ", \"min\": {}, \"max\": {}, \"sum\": {}, \"mean\": {}, \"std\": {}",
                json_opt(st.min),
                json_opt(st.max),
                json_opt(st.sum),
                json_opt(st.mean),
                json_opt(st.std)
            );
            if !st.channels.is_empty() {
                let list = |f: fn(&(f64, f64)) -> f64| {
                    st.channels
                        .iter()
                        .map(|c| json_f64(f(c)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                out += &format!(
                    ", \"channel_mean\": [{}], \"channel_std\": [{}]",
                    list(|c| c.0),
                    list(|c| c.1)
                );
            }
        }
        if h.dtype.is_real_number() || h.dtype.kind() == 'c' {
            let head: Vec<String> = st.head.iter().map(json_scalar).collect();
            out += &format!(", \"head\": [{}]", head.join(", "));
        }
    }
    out.push('}');
    out
}

fn human_bytes(n: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn fmt_num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.is_nan() => "nan".into(),
        Some(v) if v.is_infinite() => if v > 0.0 { "inf" } else { "-inf" }.into(),
        Some(v) if v == v.trunc() && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) if (1e-4..1e15).contains(&v.abs()) => format!("{}", (v * 1e6).round() / 1e6),
        Some(v) => format!("{v:.6e}"),
    }
}

fn print_table(rows: &[Record], stats: bool) {
    if rows.is_empty() {
        return;
    }
    let mut table: Vec<Vec<String>> = vec![[
        "file", "array", "dtype", "shape", "order", "version", "size",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()];
    if stats {
        table[0].extend(["min", "max", "sum", "mean", "std"].map(String::from));
    }
    for r in rows {
        let h = &r.header;
        let shape = format!(
            "({}{})",
            h.shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if h.shape.len() == 1 { "," } else { "" }
        );
        let mut row = vec![
            r.path.clone(),
            r.name.clone().unwrap_or_else(|| "-".into()),
            h.descr(),
            shape,
            if h.fortran_order { "F" } else { "C" }.into(),
            r.version.as_str().into(),
            human_bytes(h.nbytes()),
        ];
        if stats {
            let st = r.stats.as_ref();
            row.push(fmt_num(st.and_then(|s| s.min)));
            row.push(fmt_num(st.and_then(|s| s.max)));
            row.push(fmt_num(st.and_then(|s| s.sum)));
            row.push(fmt_num(st.and_then(|s| s.mean)));
            row.push(fmt_num(st.and_then(|s| s.std)));
        }
        table.push(row);
    }
    // Per-channel figures under the table, as `normalize` takes them.
    let mut channels = Vec::new();
    for r in rows {
        let Some(st) = r.stats.as_ref().filter(|s| !s.channels.is_empty()) else {
            continue;
        };
        let list = |f: fn(&(f64, f64)) -> f64| {
            st.channels
                .iter()
                .map(|c| fmt_num(Some(f(c))))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let name = r.name.as_deref().map_or(String::new(), |n| format!(" {n}"));
        channels.push(format!(
            "{}{name}: per channel: mean [{}], std [{}]",
            r.path,
            list(|c| c.0),
            list(|c| c.1)
        ));
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    for line in channels {
        let _ = writeln!(out, "{line}");
    }
}
