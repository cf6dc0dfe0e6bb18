//! `npyflow bench`: runs a standard workload (../shared/WORKLOADS.md) or a pipeline over
//! `.npy` files, and reports rows/s, GB/s, time to the first batch and peak anonymous memory.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use npyflow::dataset::{
    AutotuneOptions, Cardinality, Dataset, InterleaveOptions, Options, Parallelism, PatchOptions,
    PipelineStats, Rng, ShuffleOptions, DEFAULT_TRACE_EVENTS,
};
use npyflow::format::header::NpyHeader;
use npyflow::format::storage::{self, StorageOptions};
use npyflow::{ops, DType, Element, ElementSpec, PartialShape, Tensor, TensorSpec, AUTOTUNE};

use npyflow_cli::spec;

/// Arguments of `npyflow bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A standard workload: w1 (50,000 generated images in memory, cast to float32, scaled
    /// and batched; the pipeline this project was started for), w2 (a
    /// 1 GiB .npy shuffled in batches), w3 (32 shard files interleaved), w5 (patches of a
    /// 1 GiB cube, shuffled), w6 (w2's file read from object storage: give its --url),
    /// slow-stage (a CPU-heavy map between two cheap ones after a shuffle, for autotuning;
    /// see --sweep). The default, with no files, is w1.
    #[arg(long, value_parser = ["w1", "w2", "w3", "w5", "w6", "slow-stage"])]
    workload: Option<String>,
    /// Run the workload with --threads 1, 2, ... up to twice the cores (at least 4), and
    /// AUTOTUNE, --rounds times in turn, and print each setting's best rows/s, the AUTOTUNE
    /// run's share of the best hand-set one and its peak buffered bytes.
    #[arg(long)]
    sweep: bool,
    /// Rounds of --sweep.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The CPU budget of autotuning, in threads (tf.data's Options.autotune.cpu_budget): the
    /// most threads an AUTOTUNE stage gets; the cores by default.
    #[arg(long)]
    cpu_budget: Option<usize>,
    /// The RAM budget of autotuning, in bytes (tf.data's Options.autotune.ram_budget): the
    /// most the tuned stages' buffers may hold together; half the memory by default.
    #[arg(long)]
    ram_budget: Option<u64>,
    /// For w6: the URL of w2's x.npy copied to object storage (s3://bucket/key; endpoint and
    /// credentials from the AWS_* environment, or --storage-option).
    #[arg(long)]
    url: Option<String>,
    /// w6's shuffle: block (block_shuffle of 4 MiB blocks, 8 to a window; the default) or
    /// global (global_shuffle).
    #[arg(long, value_parser = ["block", "global"], default_value = "block")]
    shuffle: String,
    /// w6's block shuffle: blocks to a window (the blocks are the storage option
    /// block_bytes, 4 MiB by default).
    #[arg(long, default_value_t = 4)]
    window: u64,
    /// A storage option for URLs, KEY=VALUE (repeatable): aws_endpoint_url, allow_http,
    /// block_bytes, read_ahead_bytes, max_retries, ... (see from_npy's documentation).
    #[arg(long = "storage-option", value_name = "KEY=VALUE")]
    storage_option: Vec<String>,
    /// Where w2/w3/w5 keep their files (made when missing; the benchmarks that compare
    /// npyflow with other loaders, in bench/, read the same files).
    #[arg(long)]
    data: Option<PathBuf>,
    /// A pipeline to run over FILES (or --x and --y), written as a chain of calls:
    /// `shuffle(10000, seed=0).map(cast(float32)).batch(256)`. `--help` lists the syntax
    /// and every transformation and op.
    #[arg(long, long_help = pipeline_help())]
    pipeline: Option<String>,
    #[command(flatten)]
    components: crate::source::ComponentArgs,
    /// Threads for the workloads' parallel steps (their num_parallel_calls); AUTOTUNE (tuned
    /// while the pass runs, up to --cpu-budget) when not given.
    #[arg(long)]
    threads: Option<i64>,
    /// Rows of w1's data (50,000 by default).
    #[arg(long)]
    n: Option<usize>,
    /// Print one JSON object instead of a report.
    #[arg(long)]
    json: bool,
    /// Count each stage's elements, bytes and time, and name the bottleneck. Counting every
    /// element costs time of its own (most on pipelines of many small elements), so the
    /// throughput without --stats is the pipeline's.
    #[arg(long)]
    stats: bool,
    /// Write a trace of the measured pass to FILE in the Chrome trace-event format (open it
    /// in Perfetto or chrome://tracing): a span per element or batch each stage made, on the
    /// thread that made it, and counters of parallel stages' buffers; then print a report
    /// naming the bottleneck stage and what to change. Counts the stages as --stats does (at
    /// the same cost, and more), keeping at most 1,048,576 events.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    #[command(flatten)]
    patches: crate::source::PatchArgs,
    /// .npy files whose rows the --pipeline reads (as one array when there are several), or
    /// one .npz file, whose elements are dicts of its members' rows (ops take
    /// component='member name'). For images and labels in two files, use --x and --y.
    files: Vec<PathBuf>,
}

/// `--pipeline`'s long help: what it is, and the syntax with every transformation and op.
fn pipeline_help() -> String {
    format!(
        "A pipeline to run over FILES (or over --x and --y), written as a chain of calls.\n\n{}",
        spec::SYNTAX
    )
}

/// What a run measured.
struct Measure {
    rows: u64,
    batches: u64,
    bytes: u64,
    /// From building the pipeline to the end of the pass (its iterator dropped).
    seconds: f64,
    first_batch: Duration,
    /// Dropping the iterator at the end: stopping its threads, freeing its buffers.
    stop: Duration,
    rss_anon_peak_mib: f64,
    errors: u64,
    stats: Option<PipelineStats>,
    /// The most bytes the parallel stages held at once, and the tuning in words.
    peak_buffered: u64,
    tuning: Option<npyflow::dataset::TuningSummary>,
}

/// Reads the process's anonymous resident memory, cheaply enough to sample at every batch: a
/// run of W3 makes 1,024 batches in about 0.1 s, and opening and reading /proc/self/status
/// each time took about 4% of the run's CPU. This keeps /proc/self/statm open and rereads it
/// (resident minus shared pages is RssAnon: the shared ones are the file and shmem pages).
struct RssProbe {
    statm: Option<std::fs::File>,
    /// The size of a page in MiB.
    page_mib: f64,
    buf: Vec<u8>,
}

impl RssProbe {
    fn new() -> RssProbe {
        RssProbe {
            statm: std::fs::File::open("/proc/self/statm").ok(),
            page_mib: page_size() as f64 / (1u64 << 20) as f64,
            buf: vec![0; 256],
        }
    }

    /// The anonymous resident memory now, in MiB (0 where /proc is not there).
    fn anon_mib(&mut self) -> f64 {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            let Some(f) = &self.statm else { return 0.0 };
            let Ok(n) = f.read_at(&mut self.buf, 0) else {
                return 0.0;
            };
            // size resident shared text lib data dt, in pages
            let mut fields = self.buf[..n]
                .split(|b| b.is_ascii_whitespace())
                .filter(|f| !f.is_empty())
                .map(|f| std::str::from_utf8(f).ok()?.parse::<u64>().ok());
            match (fields.next(), fields.next(), fields.next()) {
                (Some(_), Some(Some(resident)), Some(Some(shared))) => {
                    resident.saturating_sub(shared) as f64 * self.page_mib
                }
                _ => 0.0,
            }
        }
        #[cfg(not(unix))]
        {
            0.0
        }
    }
}

/// The size of a memory page: the AT_PAGESZ entry of /proc/self/auxv (4096 where it cannot
/// be read).
fn page_size() -> u64 {
    const AT_PAGESZ: usize = 6;
    const WORD: usize = std::mem::size_of::<usize>();
    let auxv = std::fs::read("/proc/self/auxv").unwrap_or_default();
    let word = |b: &[u8]| usize::from_ne_bytes(b.try_into().unwrap_or([0; WORD]));
    auxv.chunks_exact(2 * WORD)
        .find_map(|e| (word(&e[..WORD]) == AT_PAGESZ).then(|| word(&e[WORD..])))
        .filter(|&p| p > 0)
        .map_or(4096, |p| p as u64)
}

/// Reads a file through once so the timed run finds it in the page cache, as anchors.py
/// warms it for every engine.
fn warm(path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    std::io::copy(&mut f, &mut std::io::sink()).with_context(|| path.display().to_string())?;
    Ok(())
}

/// Writes a float32 .npy of `rows` x `cols` pseudo-random values, streaming, unless it
/// exists.
fn ensure_npy(path: &Path, rows: usize, cols: usize, seed: u64) -> Result<()> {
    ensure_npy_shaped(path, &[rows, cols], seed)
}

/// Writes a float32 .npy of `shape` of pseudo-random values, streaming, unless it exists.
fn ensure_npy_shaped(path: &Path, shape: &[usize], seed: u64) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    eprintln!("npyflow bench: writing {}", path.display());
    let tmp = path.with_extension("npy.tmp");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| tmp.display().to_string())?,
    );
    out.write_all(&NpyHeader::new(DType::Float32, shape).encode(None)?)?;
    let mut rng = Rng::keyed(seed, &[]);
    let mut chunk = vec![0f32; 65536];
    let mut left: usize = shape.iter().product();
    while left > 0 {
        let n = left.min(chunk.len());
        for v in &mut chunk[..n] {
            *v = (rng.next_f64() * 2.0 - 1.0) as f32;
        }
        out.write_all(bytemuck::cast_slice(&chunk[..n]))?;
        left -= n;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, path).with_context(|| path.display().to_string())?;
    Ok(())
}

/// A pipeline to measure: how to build it (timed: opening files is part of the run), and
/// what it is, in words.
struct Workload {
    name: String,
    describe: String,
    build: Box<dyn Fn() -> Result<Dataset>>,
}

fn w1(n: usize, threads: i64) -> Result<Workload> {
    // 50,000 images 32x32x3 uint8 and int64 labels, in memory, as anchors.py makes them.
    let mut rng = Rng::keyed(0, &[]);
    let x: Vec<u8> = (0..n * 32 * 32 * 3).map(|_| rng.below(256) as u8).collect();
    let y: Vec<i64> = (0..n).map(|_| rng.below(10) as i64).collect();
    let x = Tensor::from_vec(x, &[n, 32, 32, 3])?;
    let y = Tensor::from_vec(y, &[n])?;
    Ok(Workload {
        name: "w1".into(),
        describe: format!(
            "w1, images in memory cast and batched: from_tensor_slices((x, y)).map(cast(float32), \
             scale(1/255) on x, num_parallel_calls={}).batch(256).prefetch(AUTOTUNE) over {n} \
             uint8 images 32x32x3 in memory",
            show_threads(threads)
        ),
        build: Box::new(move || {
            Ok(
                Dataset::from_tensor_slices(Element::tuple([x.clone(), y.clone()]))?
                    .map(
                        ops::cast(DType::Float32).component(0),
                        parallelism(threads)?,
                    )?
                    .map(ops::scale(1.0 / 255.0).component(0), ())?
                    .batch(256, ())?
                    .prefetch(AUTOTUNE)?,
            )
        }),
    })
}

fn w2(data: &Path, threads: i64) -> Result<Workload> {
    let n = 1 << 20;
    let px = data.join(format!("w2_x_{n}x256.npy"));
    let py = data.join(format!("w2_y_{n}.npy"));
    ensure_npy(&px, n, 256, 2)?;
    if !py.exists() {
        let y = Tensor::from_vec((0..n as i64).map(|i| i % 1000).collect(), &[n])?;
        npyflow::format::npy::write_npy(&py, &y)?;
    }
    warm(&px)?;
    warm(&py)?;
    Ok(Workload {
        name: "w2".into(),
        describe: format!(
            "w2, a 1 GiB .npy shuffled: zip(from_npy(x), from_npy(y)).global_shuffle(seed=0)\
             .batch(1024, BatchOptions::new().drop_remainder(num_parallel_calls={})).prefetch(AUTOTUNE), x {n} x 256 float32 \
             (page cache warm)",
            show_threads(threads)
        ),
        build: Box::new(move || {
            let x = Dataset::from_npy(&px)?;
            let y = Dataset::from_npy(&py)?;
            Ok(Dataset::zip(vec![x, y])?
                .global_shuffle(ShuffleOptions::new().seed(0))?
                .batch(1024, parallelism(threads)?)?
                .prefetch(AUTOTUNE)?)
        }),
    })
}

fn w3(data: &Path, threads: i64) -> Result<Workload> {
    let dir = data.join("w3_32x32768x256");
    for i in 0..32 {
        let p = dir.join(format!("part-{i:05}.npy"));
        ensure_npy(&p, 32768, 256, 3 + i as u64)?;
        warm(&p)?;
    }
    let pattern = format!("{}/part-*.npy", dir.display());
    Ok(Workload {
        name: "w3".into(),
        describe: format!(
            "w3, 32 shard files: list_files().interleave(from_npy, cycle_length=4)\
             .map(scale(2)).batch(1024, BatchOptions::new().drop_remainder(num_parallel_calls={})).prefetch(AUTOTUNE), \
             32 x 32768 x 256 float32 (page cache warm)",
            show_threads(threads)
        ),
        build: Box::new(move || {
            let files = Dataset::list_files(&pattern, false, None)?;
            let row = ElementSpec::Tensor(TensorSpec {
                dtype: DType::Float32,
                shape: PartialShape::known(&[256]),
            });
            let rows = files.interleave(
                |path| {
                    let t = path.into_tensor()?;
                    let end = t
                        .as_bytes()
                        .iter()
                        .position(|&b| b == 0)
                        .unwrap_or(t.nbytes());
                    let p = String::from_utf8_lossy(&t.as_bytes()[..end]).into_owned();
                    Dataset::from_npy(p)
                },
                InterleaveOptions::new().cycle_length(4).output_spec(row),
            )?;
            Ok(rows
                .map(ops::scale(2.0), ())?
                .batch(1024, parallelism(threads)?)?
                .prefetch(AUTOTUNE)?)
        }),
    })
}

fn w6(url: &str, threads: i64, shuffle: &str, window: u64, extra: &[String]) -> Result<Workload> {
    // 4 MiB blocks (large requests: a server's cost is per request), `window` (4) to a
    // window (16 MiB: the first batch waits for its window), 8 requests in flight, and a
    // budget of 64 MiB: half for the window in use, half fetched ahead.
    let mut so = StorageOptions::new()
        .with("block_bytes", (4u64 << 20).to_string())
        .with("read_ahead_bytes", (64u64 << 20).to_string())
        .with("max_in_flight", "8");
    for kv in extra {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--storage-option takes KEY=VALUE, got {kv:?}");
        };
        so.insert(k, v);
    }
    let block_bytes: u64 = so
        .get("block_bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(4 << 20);
    let url = url.to_string();
    let global = shuffle == "global";
    Ok(Workload {
        name: "w6".into(),
        describe: format!(
            "W6, a 1 GiB .npy on object storage: from_npy({}).{}.batch(1024, \
             num_parallel_calls={}).prefetch(AUTOTUNE)",
            storage::display_url(&url),
            if global {
                "global_shuffle(seed=0)".to_string()
            } else {
                format!("block_shuffle(block_bytes / row bytes, window={window}, seed=0)")
            },
            show_threads(threads)
        ),
        build: Box::new(move || {
            let x = Dataset::from_npy_with(&url, &so)?;
            let row = match x.element_spec() {
                ElementSpec::Tensor(t) => {
                    t.shape
                        .dims()
                        .unwrap_or(&[])
                        .iter()
                        .map(|d| d.unwrap_or(1))
                        .product::<usize>()
                        * t.dtype.itemsize()
                }
                _ => 1,
            };
            let block = (block_bytes / row.max(1) as u64).max(1);
            let shuffled = if global {
                x.global_shuffle(ShuffleOptions::new().seed(0))?
            } else {
                x.block_shuffle(block, window, Some(0), true)?
            };
            Ok(shuffled
                .batch(1024, parallelism(threads)?)?
                .prefetch(AUTOTUNE)?)
        }),
    })
}

fn w5(data: &Path, threads: i64) -> Result<Workload> {
    let (h, w, bands) = (2048, 2048, 64);
    let cube = data.join(format!("w5_cube_{h}x{w}x{bands}.npy"));
    ensure_npy_shaped(&cube, &[h, w, bands], 5)?;
    warm(&cube)?;
    let reads = if threads == AUTOTUNE {
        npyflow::dataset::cores()
    } else {
        threads as usize
    };
    Ok(Workload {
        name: "w5".into(),
        describe: format!(
            "w5, patches of a 1 GiB cube: from_npy_patches(cube, size=[32, 32], \
             strides=[16, 16], num_parallel_reads={}).global_shuffle(seed=0).batch(64), cube \
             {h} x {w} x {bands} float32 (page cache warm), patches 32 x 32 x {bands}",
            show_threads(threads)
        ),
        build: Box::new(move || {
            let options = PatchOptions::new(&[32, 32])
                .strides(&[16, 16])
                .num_parallel_reads(reads);
            Ok(Dataset::from_npy_patches(&cube, options)?
                .global_shuffle(ShuffleOptions::new().seed(0))?
                .batch(64, ())?)
        }),
    })
}

/// A map that costs CPU: 64 rounds of a sine on each of an element's floats (~60 us an
/// element of 64 floats).
fn heavy(e: Element) -> npyflow::Result<Element> {
    let t = e.into_tensor()?;
    let mut v: Vec<f32> = t.view::<f32>()?.to_vec();
    for x in &mut v {
        let mut y = *x;
        for _ in 0..64 {
            y = (y * 1.0001).sin() + 0.5;
        }
        *x = y;
    }
    Ok(Tensor::from_vec(v, t.shape())?.into())
}

/// A map that costs little: the element doubled.
fn cheap(e: Element) -> npyflow::Result<Element> {
    let t = e.into_tensor()?;
    let v: Vec<f32> = t.view::<f32>()?.iter().map(|x| x * 2.0).collect();
    Ok(Tensor::from_vec(v, t.shape())?.into())
}

fn slow_stage(n: usize, threads: i64) -> Result<Workload> {
    let mut rng = Rng::keyed(4, &[]);
    let x: Vec<f32> = (0..n * 64).map(|_| rng.next_f64() as f32).collect();
    let x = Tensor::from_vec(x, &[n, 64])?;
    Ok(Workload {
        name: "slow-stage".into(),
        describe: format!(
            "slow-stage, one CPU-heavy map among cheap ones: from_tensor_slices(x).shuffle(1000, \
             seed=0).map(cheap).map(heavy).map(cheap).batch(64).prefetch(AUTOTUNE), each map \
             with num_parallel_calls={}, x {n} x 64 float32 in memory, heavy ~60 us an element",
            show_threads(threads)
        ),
        build: Box::new(move || {
            let p = parallelism(threads)?;
            Ok(Dataset::from_tensor_slices(x.clone())?
                .shuffle(1000, ShuffleOptions::new().seed(0))?
                .map(cheap, p)?
                .map(heavy, p)?
                .map(cheap, p)?
                .batch(64, ())?
                .prefetch(AUTOTUNE)?)
        }),
    })
}

/// `--threads` (a count or AUTOTUNE) as the core's parallelism.
fn parallelism(threads: i64) -> Result<Parallelism> {
    Ok(Parallelism::from_tf("--threads", Some(threads), None)?
        .unwrap_or_else(Parallelism::autotune))
}

fn show_threads(threads: i64) -> String {
    if threads == AUTOTUNE {
        "AUTOTUNE".into()
    } else {
        threads.to_string()
    }
}

fn files_workload(
    files: Vec<PathBuf>,
    patches: crate::source::PatchArgs,
    components: crate::source::ComponentArgs,
    pipeline: Option<String>,
) -> Result<Workload> {
    let text = pipeline.unwrap_or_else(|| "batch(256).prefetch(AUTOTUNE)".into());
    let calls = spec::parse(&text).context("--pipeline")?;
    if !components.x.is_empty() {
        if !files.is_empty() || patches.patches.is_some() {
            bail!("give the data either as FILES or as --x (and --y), not both");
        }
        for f in components.files() {
            warm(&f)?;
        }
        return Ok(Workload {
            name: "pipeline".into(),
            describe: format!("{text} over {}", components.describe()),
            build: Box::new(move || spec::apply(components.open()?, &calls)),
        });
    }
    if files.len() > 1
        && files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "npz"))
    {
        bail!("give one .npz file alone (its members are the components), or .npy files");
    }
    for f in &files {
        warm(f)?;
    }
    Ok(Workload {
        name: "pipeline".into(),
        describe: match &patches.patches {
            Some(size) => format!(
                "{text} over the patches {size} (strides {}) of {}",
                patches.patch_strides.as_deref().unwrap_or(size),
                files
                    .first()
                    .map_or(String::new(), |f| f.display().to_string())
            ),
            None if files.len() == 1 && files[0].extension().is_some_and(|e| e == "npz") => {
                format!("{text} over dicts of the members of {}", files[0].display())
            }
            None => format!("{text} over the rows of {} file(s)", files.len()),
        },
        build: Box::new(move || {
            let src = crate::source::open(&files, &patches)?;
            spec::apply(src, &calls)
        }),
    })
}

/// How a run counts its stages.
#[derive(Clone, Copy, PartialEq)]
enum Counting {
    Off,
    Stats,
    Trace,
}

fn run(w: &Workload, show_progress: bool, counting: Counting, options: Options) -> Result<Measure> {
    let mut rss = RssProbe::new();
    let mut rss_peak = rss.anon_mib();
    let start = Instant::now();
    let ds = (w.build)()?;
    let ds = if options == Options::default() {
        ds
    } else {
        ds.with_options(options)?
    };
    let total = match ds.cardinality() {
        Cardinality::Finite(n) => Some(n),
        _ => None,
    };
    let bar = if show_progress {
        let bar = ProgressBar::new(total.unwrap_or(0));
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} batches {per_sec} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let (it, stats) = match counting {
        Counting::Off => (ds.iter(), None),
        Counting::Stats => {
            let (it, stats) = ds.iter_with_stats();
            (it, Some(stats))
        }
        Counting::Trace => {
            let (it, stats) = ds.iter_with_trace(DEFAULT_TRACE_EVENTS);
            (it, Some(stats))
        }
    };
    let mut m = Measure {
        rows: 0,
        batches: 0,
        bytes: 0,
        seconds: 0.0,
        first_batch: Duration::ZERO,
        stop: Duration::ZERO,
        rss_anon_peak_mib: 0.0,
        errors: 0,
        stats,
        peak_buffered: 0,
        tuning: None,
    };
    let mut it = it;
    for batch in it.by_ref() {
        if m.batches == 0 && m.errors == 0 {
            m.first_batch = start.elapsed();
        }
        match batch {
            Ok(b) => {
                let tensors = b.tensors();
                m.rows += tensors.first().and_then(|t| t.rows()).unwrap_or(1) as u64;
                m.bytes += tensors.iter().map(|t| t.nbytes() as u64).sum::<u64>();
                m.batches += 1;
                // Sampled while the batch is held, as a consumer holds it.
                rss_peak = rss_peak.max(rss.anon_mib());
            }
            Err(e) => {
                m.errors += 1;
                if m.errors == 1 {
                    eprintln!("npyflow bench: {e}");
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let looped = start.elapsed();
    m.tuning = it.tuning();
    // The pass ends when its iterator is dropped (its threads stopped, its buffers freed), as
    // a `for` loop over `ds.iter()` in Rust or over the dataset in Python ends it: timed too.
    let stopping = Instant::now();
    drop(it);
    m.stop = stopping.elapsed();
    m.seconds = (looped + m.stop).as_secs_f64();
    m.rss_anon_peak_mib = rss_peak;
    m.peak_buffered = m.tuning.as_ref().map_or(0, |t| t.peak_buffered_bytes);
    Ok(m)
}

/// `--sweep`: the workload at each hand-set parallelism and at AUTOTUNE, in turn, `rounds`
/// times; the best rows/s of each.
fn sweep(args: &Args, data: &Path, options: Options) -> Result<()> {
    let most = (2 * npyflow::dataset::cores()).max(4) as i64;
    let settings: Vec<i64> = (1..=most).chain([AUTOTUNE]).collect();
    let make = |threads: i64| -> Result<Workload> {
        match args.workload.as_deref().unwrap_or("slow-stage") {
            "w1" => w1(args.n.unwrap_or(50_000), threads),
            "w2" => w2(data, threads),
            "w3" => w3(data, threads),
            "w5" => w5(data, threads),
            "slow-stage" => slow_stage(args.n.unwrap_or(20_000), threads),
            other => bail!("--sweep runs w1, w2, w3, w5 or slow-stage, not {other}"),
        }
    };
    let workloads = settings
        .iter()
        .map(|&t| make(t))
        .collect::<Result<Vec<_>>>()?;
    let mut rates = vec![Vec::new(); settings.len()];
    let mut peaks = vec![0u64; settings.len()];
    let mut tuned_threads = String::new();
    for _ in 0..args.rounds.max(1) {
        for (i, w) in workloads.iter().enumerate() {
            let m = run(w, false, Counting::Off, options)?;
            if m.errors > 0 {
                bail!("{}: {} batches failed", w.describe, m.errors);
            }
            rates[i].push(m.rows as f64 / m.seconds);
            peaks[i] = peaks[i].max(m.peak_buffered);
            if settings[i] == AUTOTUNE {
                if let Some(t) = &m.tuning {
                    tuned_threads = t
                        .stages
                        .iter()
                        .map(|s| format!("{} {}x{}", s.stage, s.threads, s.buffer))
                        .collect::<Vec<_>>()
                        .join(", ");
                }
            }
        }
    }
    let best = |v: &Vec<f64>| v.iter().copied().fold(0.0, f64::max);
    let best_fixed = rates[..rates.len() - 1]
        .iter()
        .map(best)
        .fold(0.0, f64::max);
    let tuned = best(&rates[rates.len() - 1]);
    let ram = options.autotune.ram_budget;
    if args.json {
        let rows: Vec<_> = settings
            .iter()
            .zip(&rates)
            .zip(&peaks)
            .map(|((t, r), p)| {
                serde_json::json!({
                    "threads": show_threads(*t),
                    "rows_per_s": r,
                    "best_rows_per_s": best(r),
                    "peak_buffered_bytes": p,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "workload": workloads[0].name,
                "pipeline": workloads[settings.len() - 1].describe,
                "cores": npyflow::dataset::cores(),
                "cpu_budget": options.autotune.cpu_budget,
                "ram_budget": ram,
                "settings": rows,
                "autotune_share_of_best": tuned / best_fixed,
                "autotune_settings": tuned_threads,
            })
        );
        return Ok(());
    }
    println!("{}", workloads[settings.len() - 1].describe);
    println!(
        "{:>10} {:>14} {:>20}",
        "threads", "best rows/s", "peak buffered MB"
    );
    for ((t, r), p) in settings.iter().zip(&rates).zip(&peaks) {
        println!(
            "{:>10} {:>14.0} {:>20.2}",
            show_threads(*t),
            best(r),
            *p as f64 / 1e6
        );
    }
    println!(
        "AUTOTUNE: {:.2} of the best hand-set parallelism; its stages at the end: {tuned_threads}",
        tuned / best_fixed
    );
    Ok(())
}

/// Runs `npyflow bench`.
pub fn main(args: Args) -> Result<()> {
    let threads = args.threads.unwrap_or(AUTOTUNE);
    if threads != AUTOTUNE && threads < 1 {
        bail!("--threads must be positive");
    }
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| std::env::var_os("TMPDIR").map_or_else(|| "/tmp".into(), PathBuf::from));
    let no_files = args.files.is_empty() && args.components.x.is_empty();
    let options = Options::new().autotune(AutotuneOptions {
        enabled: None,
        cpu_budget: args.cpu_budget,
        ram_budget: args.ram_budget,
    });
    if args.sweep {
        if !no_files {
            bail!("--sweep runs a standard workload (--workload), not files");
        }
        return sweep(&args, &data, options);
    }
    let workload = match (&args.workload, no_files) {
        (Some(_), false) => bail!("give either --workload or files, not both"),
        (None, false) => files_workload(args.files, args.patches, args.components, args.pipeline)?,
        (w, true) => {
            if args.pipeline.is_some() {
                bail!("--pipeline needs .npy files to read (FILES, or --x and --y)");
            }
            if args.patches.patches.is_some() {
                bail!("--patches needs the .npy file to cut into patches");
            }
            match w.as_deref().unwrap_or("w1") {
                "w1" => w1(args.n.unwrap_or(50_000), threads)?,
                "w2" => w2(&data, threads)?,
                "w5" => w5(&data, threads)?,
                "slow-stage" => slow_stage(args.n.unwrap_or(20_000), threads)?,
                "w6" => {
                    let Some(url) = args.url.as_deref() else {
                        bail!("--workload w6 needs --url s3://bucket/key of w2's x.npy");
                    };
                    w6(
                        url,
                        threads,
                        &args.shuffle,
                        args.window,
                        &args.storage_option,
                    )?
                }
                _ => w3(&data, threads)?,
            }
        }
    };
    let progress = !args.json && std::io::stderr().is_terminal();
    let counting = match (&args.trace, args.stats) {
        (Some(_), _) => Counting::Trace,
        (None, true) => Counting::Stats,
        (None, false) => Counting::Off,
    };
    // Made before the run, so that a path that cannot be written fails at once.
    let trace_file = match &args.trace {
        Some(path) => {
            Some(std::fs::File::create(path).with_context(|| path.display().to_string())?)
        }
        None => None,
    };
    let m = run(&workload, progress, counting, options)?;
    let report = match (trace_file, &m.stats) {
        (Some(mut file), Some(stats)) => {
            let path = args.trace.as_deref().unwrap_or(Path::new(""));
            stats
                .write_trace(&mut file)
                .with_context(|| path.display().to_string())?;
            Some(stats.report())
        }
        _ => None,
    };
    let rows_per_s = m.rows as f64 / m.seconds;
    let gb_per_s = m.bytes as f64 / m.seconds / 1e9;
    if args.json {
        let out = serde_json::json!({
            "workload": workload.name,
            "pipeline": workload.describe,
            "rows": m.rows,
            "batches": m.batches,
            "errors": m.errors,
            "seconds": m.seconds,
            "rows_per_s": rows_per_s,
            "gb_per_s": gb_per_s,
            "first_batch_ms": m.first_batch.as_secs_f64() * 1e3,
            "stop_ms": m.stop.as_secs_f64() * 1e3,
            "rss_anon_peak_mib": m.rss_anon_peak_mib,
            "threads": if threads == AUTOTUNE { npyflow::dataset::cores() as i64 } else { threads },
            "peak_buffered_bytes": m.peak_buffered,
        });
        let mut out = out;
        if let Some(stats) = &m.stats {
            out["stages"] = stats
                .stages()
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "stage": s.name,
                        "depth": s.depth,
                        "elements": s.elements,
                        "bytes": s.bytes,
                        "busy_ms": s.busy.as_secs_f64() * 1e3,
                        "own_ms": s.own.as_secs_f64() * 1e3,
                    })
                })
                .collect();
            out["bottleneck"] = stats.bottleneck().map(|b| b.name).into();
        }
        if let Some(report) = &report {
            out["report"] = report.to_string().into();
            out["trace_events"] = report.trace_events.kept.into();
            out["trace_dropped"] = report.trace_events.dropped.into();
        }
        println!("{out}");
    } else {
        println!("{}", workload.describe);
        println!(
            "{:.0} rows/s, {gb_per_s:.2} GB/s delivered, first batch after {:.2} ms, peak \
             anonymous memory {:.0} MiB ({} rows in {} batches, {:.3} s{})",
            rows_per_s,
            m.first_batch.as_secs_f64() * 1e3,
            m.rss_anon_peak_mib,
            m.rows,
            m.batches,
            m.seconds,
            if m.errors > 0 {
                format!(", {} errors", m.errors)
            } else {
                String::new()
            }
        );
        match (&report, &m.stats) {
            (Some(report), _) => {
                if args.stats {
                    if let Some(stats) = &m.stats {
                        println!("\n{stats}");
                    }
                }
                let path = args.trace.as_deref().unwrap_or(Path::new(""));
                println!("\ntrace written to {}\n{report}", path.display());
            }
            (None, Some(stats)) => println!("\n{stats}"),
            (None, None) => {
                if let Some(t) = m.tuning.as_ref().filter(|t| !t.stages.is_empty()) {
                    println!("{t}");
                }
            }
        }
    }
    if m.errors > 0 {
        let batches = if m.errors == 1 { "batch" } else { "batches" };
        bail!("{} {batches} failed (the first error is above)", m.errors);
    }
    Ok(())
}
