//! The seed's three examples, built by `cargo test` as examples, print what their Python
//! originals print under tf.data.

use std::path::PathBuf;
use std::process::Command;

/// The compiled example `name`, next to this test's own binary (`target/<profile>/examples`).
/// Plain `cargo test` builds the examples; `cargo test --tests` does not, so build them then.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-q", "-p", "npyflow", "--examples"]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo");
        assert!(status.success(), "cargo build --examples failed");
    }
    path
}

fn stdout_of(name: &str) -> String {
    let out = Command::new(example(name))
        .output()
        .unwrap_or_else(|e| panic!("run example {name}: {e}"));
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn seed_1_prints_the_scalars() {
    assert_eq!(stdout_of("seed_1"), "1\n2\n3\n4\n5\n");
}

#[test]
fn seed_2_prints_rows_then_batches() {
    assert_eq!(
        stdout_of("seed_2"),
        "[1 2]\n[3 4]\n[5 6]\n[[1 2]\n [3 4]]\n[[5 6]]\n"
    );
}

#[test]
fn seed_3_prints_five_batch_shapes() {
    assert_eq!(stdout_of("seed_3"), "(2, 3, 3, 3)\n".repeat(5));
}
