//! Restores iterator states that a forger made: a real state of a pipeline with every kind
//! of part, edited by the fuzzer's bytes (pairs of offset and value), its checksum mended so
//! that the decoder and every iterator's restore see the damage. A restore must be refused
//! or give a pass that reads without a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use npyflow::dataset::{InterleaveOptions, Parallelism, ShuffleOptions};
use npyflow::{Dataset, Element, Tensor};
use std::sync::OnceLock;

fn add(e: Element, k: i64) -> npyflow::Result<Element> {
    e.map_tensors(&mut |t| {
        let v: Vec<i64> = t.view::<i64>()?.iter().map(|x| x + k).collect();
        Tensor::from_vec(v, t.shape())
    })
}

fn pipeline() -> Dataset {
    let base = Dataset::range(0, 120, 1).unwrap();
    let streamed = base
        .filter(|e| Ok(e.tensors()[0].as_bytes()[0] % 7 != 0))
        .shuffle(5, ShuffleOptions::new().seed(2))
        .unwrap()
        .map(|e| add(e, 3), Parallelism::threads(2))
        .unwrap()
        .interleave(
            |e| Ok(Dataset::from_tensors(e).repeat(Some(2))),
            InterleaveOptions::new().cycle_length(2),
        )
        .unwrap()
        .window(3, Some(2), 1, false)
        .unwrap()
        .flat_map(|w| w.into_dataset()?.batch(3, ()), None)
        .unwrap()
        .unbatch()
        .unwrap();
    let shuffled = base
        .global_shuffle(ShuffleOptions::new().seed(4))
        .unwrap()
        .batch(3, ())
        .unwrap()
        .unbatch()
        .unwrap();
    Dataset::sample_from_datasets(vec![streamed, shuffled], None, Some(1), false)
        .unwrap()
        .prefetch(2)
        .unwrap()
}

/// States saved at a few points, made once.
fn states() -> &'static Vec<Vec<u8>> {
    static STATES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    STATES.get_or_init(|| {
        [0, 7, 40, 150]
            .iter()
            .map(|&at| {
                let ds = pipeline();
                let mut it = ds.iter();
                for _ in 0..at {
                    it.next();
                }
                it.get_state().unwrap()
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, edits)) = data.split_first() else {
        return;
    };
    let mut state = states()[usize::from(which) % states().len()].clone();
    // The mark, version and fingerprint stay; the body is edited; the checksum is mended.
    let body = 14 + 4 + 8..state.len() - 4;
    for pair in edits.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([pair[0], pair[1]]));
        state[body.start + at % body.len()] = pair[2];
    }
    let n = state.len() - 4;
    let crc = crc32fast::hash(&state[..n]).to_le_bytes();
    state[n..].copy_from_slice(&crc);
    let ds = pipeline();
    let mut it = ds.iter();
    if it.set_state(&state).is_ok() {
        for _ in 0..200 {
            if it.next().is_none() {
                break;
            }
        }
    }
});
