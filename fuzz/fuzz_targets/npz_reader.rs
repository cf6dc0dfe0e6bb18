//! Any bytes as an .npz archive in memory: no panic, and every array that loads is exactly
//! the size its header promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use npyflow_format::npy::ReadOptions;
use npyflow_format::npz::NpzArchive;
use npyflow_format::Buffer;

fuzz_target!(|data: &[u8]| {
    let options = ReadOptions::default();
    let Ok(npz) = NpzArchive::from_buffer(Buffer::from_vec(data.to_vec()), &options) else {
        return;
    };
    let keys: Vec<String> = npz.keys().map(str::to_owned).collect();
    for key in keys {
        let expected = npz.member(&key).expect("listed").header.nbytes();
        if let Ok(t) = npz.load(&key) {
            assert_eq!(t.nbytes(), expected);
        }
        if let Ok(m) = npz.member(&key) {
            if let Ok(mut r) = npz.data_reader(m) {
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
            }
        }
    }
});
