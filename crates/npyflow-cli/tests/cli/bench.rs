//! `npyflow bench` end to end: the JSON it prints, pipelines over files, and bad input.

use std::process::{Command, Output};

use npyflow::format::npy::write_npy;
use npyflow::Tensor;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_npyflow"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn w1_reports_every_figure() {
    let v = json(&bench(&["--n", "1000", "--json", "--threads", "2"]));
    assert_eq!(v["workload"], "w1");
    assert_eq!(v["rows"], 1000);
    assert_eq!(v["batches"], 4); // 256, 256, 256, 232
                                 // x as float32 (1000 * 3072 * 4 bytes) and y as int64.
    let bytes = 1000.0 * (3072.0 * 4.0 + 8.0);
    let seconds = v["seconds"].as_f64().unwrap();
    let gb = v["gb_per_s"].as_f64().unwrap();
    assert!((gb * seconds * 1e9 - bytes).abs() < 1.0, "{v}");
    for key in [
        "rows_per_s",
        "first_batch_ms",
        "rss_anon_peak_mib",
        "stop_ms",
    ] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {v}");
    }
    // The pass is timed to its end, the iterator dropped: stopping it is part of it.
    let stop = v["stop_ms"].as_f64().unwrap() / 1e3;
    let first = v["first_batch_ms"].as_f64().unwrap() / 1e3;
    assert!(first + stop <= seconds, "{v}");
    // The human report names the pipeline and its figures.
    let out = bench(&["--n", "600"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("rows/s") && text.contains("600 rows in 3 batches"),
        "{text}"
    );
}

#[test]
fn pipelines_over_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.npy");
    let b = dir.path().join("b.npy");
    write_npy(
        &a,
        &Tensor::from_vec((0..300u16).collect(), &[100, 3]).unwrap(),
    )
    .unwrap();
    write_npy(
        &b,
        &Tensor::from_vec((0..30u16).collect(), &[10, 3]).unwrap(),
    )
    .unwrap();
    let (sa, sb) = (a.to_str().unwrap(), b.to_str().unwrap());
    let v = json(&bench(&[
        "--json",
        "--pipeline",
        "global_shuffle(seed=1).map(cast(float32), scale(0.5)).batch(32, drop_remainder=True)",
        sa,
        sb,
    ]));
    assert_eq!(v["rows"], 96);
    assert_eq!(v["batches"], 3);
    // Errors: a bad pipeline, an unknown op, a missing file: exit 1 with the reason.
    for (pipeline, file, needle) in [
        ("batch(", sa, "--pipeline"),
        ("map(frob(1))", sa, "unknown op"),
        ("batch(0)", sa, "batch_size"),
        ("batch(4)", "/nonexistent/x.npy", "/nonexistent/x.npy"),
    ] {
        let out = bench(&["--pipeline", pipeline, file]);
        assert_eq!(out.status.code(), Some(1), "{pipeline}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{pipeline}: {err}");
    }
    // An error with a cause says the cause once: npyflow's errors end with it already.
    let out = bench(&["--pipeline", "batch(4)", "/nonexistent/x.npy"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert_eq!(err.matches("/nonexistent/x.npy").count(), 1, "{err}");
    let damaged = dir.path().join("damaged.npy");
    std::fs::write(&damaged, b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'}   \n").unwrap();
    let out = bench(&["--pipeline", "batch(4)", damaged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let first_line = err.lines().next().unwrap_or_default();
    let parts: Vec<&str> = first_line.split(": ").collect();
    for w in 1..=parts.len() / 2 {
        let n = parts.len();
        assert!(
            parts[n - w..] != parts[n - 2 * w..n - w],
            "said twice: {err}"
        );
    }
}

#[test]
fn patches_of_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let cube = dir.path().join("cube.npy");
    write_npy(
        &cube,
        &Tensor::from_vec((0..20 * 12 * 3).map(|v| v as f32).collect(), &[20, 12, 3]).unwrap(),
    )
    .unwrap();
    let c = cube.to_str().unwrap();
    // Windows of 8 x 4 on a 4 x 4 grid: 4 x 3 = 12 patches, batches of 5.
    let v = json(&bench(&[
        "--json",
        "--patches",
        "8,4",
        "--patch-strides",
        "4,4",
        "--pipeline",
        "batch(5)",
        c,
    ]));
    assert_eq!(v["rows"], 12);
    assert_eq!(v["batches"], 3);
    let seconds = v["seconds"].as_f64().unwrap();
    let bytes = v["gb_per_s"].as_f64().unwrap() * seconds * 1e9;
    assert!((bytes - 12.0 * 8.0 * 4.0 * 3.0 * 4.0).abs() < 1.0, "{v}");
    // Bad sizes and file counts are errors naming the option.
    let out = bench(&["--patches", "8,x", c]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--patches"));
    let out = bench(&["--patches", "8", c, c]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("one .npy file"));
    let out = bench(&["--patches", "30", c]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not fit"));
}

#[test]
fn w6_reads_an_object_by_url_block_and_global_shuffled() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.npy");
    let t =
        npyflow::Tensor::from_vec((0..5000 * 8).map(|i| i as f32).collect(), &[5000, 8]).unwrap();
    npyflow::format::npy::write_npy(&p, &t).unwrap();
    let url = format!("file://{}", p.canonicalize().unwrap().display());
    for shuffle in ["block", "global"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_npyflow"))
            .args([
                "bench",
                "--workload",
                "w6",
                "--json",
                "--url",
                &url,
                "--shuffle",
                shuffle,
            ])
            .args(["--storage-option", "block_bytes=4096"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        assert_eq!(j["rows"], 5000, "{j}");
        assert_eq!(j["errors"], 0, "{j}");
        assert!(j["pipeline"].as_str().unwrap().contains(shuffle), "{j}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_npyflow"))
        .args(["bench", "--workload", "w6"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url"));
}

/// Issue 17: images and labels from two files are the components of a tuple (as tf.data's
/// `from_tensor_slices((x, y))`); an `.npz` gives dicts of its members; a tuple argument is a
/// list; a syntax error points at the character; `--help` shows the syntax and every op.
#[test]
fn components_tuples_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.npy");
    let y = dir.path().join("y.npy");
    let short = dir.path().join("short.npy");
    write_npy(
        &x,
        &Tensor::from_vec(vec![7u8; 10 * 12], &[10, 2, 2, 3]).unwrap(),
    )
    .unwrap();
    write_npy(&y, &Tensor::from_vec((0..10i64).collect(), &[10]).unwrap()).unwrap();
    write_npy(
        &short,
        &Tensor::from_vec((0..9i64).collect(), &[9]).unwrap(),
    )
    .unwrap();
    let (sx, sy) = (x.to_str().unwrap(), y.to_str().unwrap());
    let pipeline = "map(cast(float32, component=0), normalize((0.5, 0.5, 0.5), (2, 2, 2), \
                    component=0)).batch(4)";
    let v = json(&bench(&[
        "--json",
        "--pipeline",
        pipeline,
        "--x",
        sx,
        "--y",
        sy,
    ]));
    assert_eq!(v["rows"], 10);
    assert_eq!(v["batches"], 3);
    // x as float32 (12 * 4 bytes a row) and y as int64: the components were both read.
    let bytes = 10.0 * (12.0 * 4.0 + 8.0);
    let seconds = v["seconds"].as_f64().unwrap();
    assert!(
        (v["gb_per_s"].as_f64().unwrap() * seconds * 1e9 - bytes).abs() < 1.0,
        "{v}"
    );
    assert!(v["pipeline"].as_str().unwrap().contains("(x, y)"), "{v}");

    let out = bench(&[
        "--pipeline",
        "batch(2)",
        "--x",
        sx,
        "--y",
        short.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--x has 10 rows and --y has 9"), "{err}");
    let out = bench(&["--pipeline", "batch(2)", "--x", sx, sy]);
    assert_eq!(out.status.code(), Some(1));

    // A syntax error: the text with a caret under the bad character.
    let bad = "batch(4).map(cast(float32), ?)";
    let out = bench(&["--pipeline", bad, sx]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .position(|l| l == format!("  {bad}"))
        .expect(&err);
    let caret = err.lines().nth(line + 1).unwrap();
    assert_eq!(caret.find('^'), Some(2 + bad.find('?').unwrap()), "{err}");

    let help = Command::new(env!("CARGO_BIN_EXE_npyflow"))
        .args(["bench", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for name in [
        "map(",
        "batch(",
        "shuffle(",
        "global_shuffle(",
        "prefetch(",
        "take(",
        "skip(",
        "repeat(",
        "shard(",
        "unbatch(",
        "rebatch(",
        "cache(",
        "enumerate(",
        "assert_cardinality(",
        "cast(",
        "scale(",
        "affine(",
        "normalize(",
        "one_hot(",
        "reshape(",
        "transpose(",
        "random_flip(",
        "random_crop(",
        "component=",
        "--x",
        "--y",
    ] {
        assert!(help.contains(name), "--help lacks {name}:\n{help}");
    }
    let top = Command::new(env!("CARGO_BIN_EXE_npyflow"))
        .arg("--help")
        .output()
        .unwrap();
    let top = String::from_utf8_lossy(&top.stdout);
    assert!(top.contains("bench") && top.contains("inspect"), "{top}");
    for text in [&help, &top] {
        for shorthand in ["W1", "W2", "anchors", "seed's", "::"] {
            assert!(
                !text.contains(shorthand),
                "--help says {shorthand}:\n{text}"
            );
        }
    }
}

/// stderr of a failed run: exit status 1 (2 for clap's own usage errors), and no line nor
/// `a: b` part said twice in a row.
fn failed(out: &Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    for (i, l) in lines.iter().enumerate() {
        assert!(!lines[..i].contains(l), "said twice: {err}");
        let parts: Vec<&str> = l.split(": ").collect();
        for w in 1..=parts.len() / 2 {
            for at in 0..=parts.len() - 2 * w {
                assert!(
                    parts[at..at + w] != parts[at + w..at + 2 * w],
                    "said twice: {err}"
                );
            }
        }
    }
    assert!(!err.contains("os error"), "Rust's shorthand: {err}");
    err
}

/// Issue 17: each error of `npyflow bench` is said once, in plain words, naming the file or
/// the argument, with a caret under a syntax error, and the exit status is not 0.
#[test]
fn errors_are_said_once_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.npy");
    write_npy(
        &x,
        &Tensor::from_vec((0..20i64).collect(), &[10, 2]).unwrap(),
    )
    .unwrap();
    let sx = x.to_str().unwrap();
    let missing = dir.path().join("missing.npy");
    let sm = missing.to_str().unwrap();

    // Syntax errors: once, and the caret under the character.
    for (bad, at) in [
        ("batch(", 6),
        ("batch(4).map(cast(float32), ?)", 28),
        ("batch(4))", 8),
    ] {
        let err = failed(&bench(&["--pipeline", bad, sx]), 1);
        assert_eq!(err.matches("--pipeline:").count(), 1, "{err}");
        let line = err
            .lines()
            .position(|l| l == format!("  {bad}"))
            .expect(&err);
        let caret = err.lines().nth(line + 1).unwrap();
        assert_eq!(caret.find('^'), Some(2 + at), "{bad}: {err}");
    }
    // An unknown op or transformation: its name and the ones there are.
    let err = failed(&bench(&["--pipeline", "map(frob(1))", sx]), 1);
    assert!(
        err.contains("unknown op frob") && err.contains("normalize"),
        "{err}"
    );
    let err = failed(&bench(&["--pipeline", "batch(4).frob()", sx]), 1);
    assert!(err.contains("unknown transformation \"frob\""), "{err}");
    // A bad value names its argument; npyflow's own check names the call once.
    let err = failed(
        &bench(&["--pipeline", "batch(2, drop_remainder=maybe)", sx]),
        1,
    );
    assert!(
        err.contains("argument drop_remainder: expected True or False, got maybe"),
        "{err}"
    );
    let err = failed(&bench(&["--pipeline", "batch(0)", sx]), 1);
    assert_eq!(err.matches("batch").count(), 2, "{err}"); // batch: batch_size ...
    assert!(
        err.contains("batch_size must be greater than zero, got 0"),
        "{err}"
    );
    // An integer past int64 is refused (it used to saturate to 2^63 - 1, quietly).
    let err = failed(
        &bench(&["--pipeline", "shuffle(9223372036854775808)", sx]),
        1,
    );
    assert!(
        err.contains("argument buffer_size") && err.contains("int64"),
        "{err}"
    );
    // Files: a missing one and a directory, named once, in the system's words.
    let err = failed(&bench(&["--pipeline", "batch(4)", sm]), 1);
    assert_eq!(
        err.trim_end(),
        format!("npyflow bench: {sm}: No such file or directory")
    );
    let d = dir.path().to_str().unwrap();
    let err = failed(&bench(&["--pipeline", "batch(4)", d]), 1);
    assert_eq!(
        err.trim_end(),
        format!("npyflow bench: {d}: Is a directory")
    );
    let err = failed(&bench(&["--pipeline", "batch(4)", "--x", sx, "--y", sm]), 1);
    assert_eq!(err.matches(sm).count(), 1, "{err}");
    // A cache in a directory that is not there: the cache file named, not tempfile's own.
    let cache = dir.path().join("no/such/dir/c");
    let pipeline = format!("cache({:?}).batch(2)", cache.to_str().unwrap());
    let err = failed(&bench(&["--pipeline", &pipeline, sx]), 1);
    assert_eq!(
        err.lines().next().unwrap(),
        format!(
            "npyflow bench: {}: No such file or directory",
            cache.display()
        ),
        "{err}"
    );
    assert!(
        err.contains("1 batch failed (the first error is above)"),
        "{err}"
    );
    // A workload that is not one: clap's usage error, once, exit status 2.
    let err = failed(&bench(&["--workload", "w9"]), 2);
    assert_eq!(err.matches("'w9'").count(), 1, "{err}");
    // inspect and save say the same errors the same way.
    let out = Command::new(env!("CARGO_BIN_EXE_npyflow"))
        .args(["inspect", sm, d])
        .output()
        .unwrap();
    let err = failed(&out, 1);
    assert!(
        err.contains(&format!("{sm}: No such file or directory")),
        "{err}"
    );
    assert!(err.contains(&format!("{d}: Is a directory")), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_npyflow"))
        .args(["save", sm, dir.path().join("saved").to_str().unwrap()])
        .output()
        .unwrap();
    let err = failed(&out, 1);
    assert_eq!(err.matches(sm).count(), 1, "{err}");
}

/// Issue 17: an `.npz` is read as dicts of all its members (it used to be read as one member,
/// silently); ops pick a member with component='name', and a name it lacks is an error
/// naming it.
#[test]
fn an_npz_gives_dicts_of_its_members() {
    use npyflow::format::npz::{Compression, NpzWriter};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.npz");
    let mut w = NpzWriter::create(&p).unwrap();
    let image = Tensor::from_vec(vec![3u8; 10 * 12], &[10, 2, 2, 3]).unwrap();
    w.add("image", &image, Compression::Stored).unwrap();
    let label = Tensor::from_vec((0..10i64).collect(), &[10]).unwrap();
    w.add("label", &label, Compression::Deflated).unwrap();
    w.finish().unwrap();
    let sp = p.to_str().unwrap();
    let v = json(&bench(&[
        "--json",
        "--pipeline",
        "map(cast(float32, component='image')).batch(4)",
        sp,
    ]));
    assert_eq!(v["rows"], 10);
    assert_eq!(v["batches"], 3);
    // image as float32 (12 * 4 bytes a row), label still int64: both members were read,
    // and the cast reached the image only.
    let bytes = 10.0 * (12.0 * 4.0 + 8.0);
    let seconds = v["seconds"].as_f64().unwrap();
    assert!(
        (v["gb_per_s"].as_f64().unwrap() * seconds * 1e9 - bytes).abs() < 1.0,
        "{v}"
    );
    assert!(
        v["pipeline"]
            .as_str()
            .unwrap()
            .contains("dicts of the members"),
        "{v}"
    );
    let err = failed(
        &bench(&["--pipeline", "map(cast(float32, component='img'))", sp]),
        1,
    );
    assert!(
        err.contains("no component 'img' (a dict key)") && err.contains("'label'"),
        "{err}"
    );
}
