//! `npyflow save` end to end: a pipeline over files saved, then loaded by the library.

use std::process::{Command, Output};

use npyflow::format::npy::write_npy;
use npyflow::{Dataset, Tensor};

fn save(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_npyflow"))
        .arg("save")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_pipeline_is_saved_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.npy");
    let values: Vec<f32> = (0..300).map(|v| v as f32).collect();
    write_npy(&x, &Tensor::from_vec(values.clone(), &[100, 3]).unwrap()).unwrap();
    let out = dir.path().join("saved");
    let (xs, outs) = (x.to_str().unwrap(), out.to_str().unwrap());
    let done = save(&["--json", "--pipeline", "map(scale(2)).batch(8)", xs, outs]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(v["elements"], 13);
    assert_eq!(v["complete"], true);
    let back = Dataset::load(&out, ()).unwrap();
    assert_eq!(back.len().unwrap(), 13);
    let last = back.get(12).unwrap().into_tensor().unwrap();
    assert_eq!(last.shape(), &[4, 3]);
    let want: Vec<f32> = values[96 * 3..].iter().map(|v| v * 2.0).collect();
    assert_eq!(last.view::<f32>().unwrap(), &want[..]);
    // Patches of one file, saved in two parts by two runs.
    let cube = dir.path().join("cube.npy");
    write_npy(
        &cube,
        &Tensor::from_vec((0..8 * 6 * 2).map(|v| v as i16).collect(), &[8, 6, 2]).unwrap(),
    )
    .unwrap();
    let parts = dir.path().join("parts");
    let (c, p) = (cube.to_str().unwrap(), parts.to_str().unwrap());
    for (i, shard) in ["shard(2, 0)", "shard(2, 1)"].iter().enumerate() {
        let i = i.to_string();
        let done = save(&[
            "--patches",
            "4,3",
            "--pipeline",
            shard,
            "--part",
            &i,
            "--num-parts",
            "2",
            "--save-id",
            "cli",
            c,
            p,
        ]);
        let text = String::from_utf8_lossy(&done.stdout).into_owned();
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        assert_eq!(
            text.contains("appears when the last part"),
            i == "0",
            "{text}"
        );
    }
    let patches = Dataset::load(&parts, ()).unwrap();
    // 2 x 2 patches of 4 x 3 x 2: part 0 has patches 0 and 2, part 1 has 1 and 3.
    assert_eq!(patches.len().unwrap(), 4);
    let first = patches.get(1).unwrap().into_tensor().unwrap();
    assert_eq!(first.shape(), &[4, 3, 2]);
    assert_eq!(first.view::<i16>().unwrap()[0], 4 * 12); // patch 2 starts at row 4
}

#[test]
fn bad_arguments_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.npy");
    write_npy(&x, &Tensor::from_vec(vec![1u8, 2, 3], &[3]).unwrap()).unwrap();
    let xs = x.to_str().unwrap();
    let out = dir.path().join("o");
    let os = out.to_str().unwrap();
    let err = |o: Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err(save(&[xs])).contains("2 values required"));
    assert!(err(save(&["--pipeline", "repeat()", xs, os])).contains("never ends"));
    assert!(err(save(&["--part", "0", xs, os])).contains("--num-parts"));
    let missing = dir.path().join("missing.npy");
    assert!(err(save(&[missing.to_str().unwrap(), os])).contains("missing.npy"));
    // Saving onto a file is refused.
    assert!(err(save(&[xs, xs])).contains("is a file"));
}
