//! Any bytes as a whole .npy file in memory: no panic, no allocation beyond what the bytes
//! hold, and a tensor that is read is as large as its header says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use npyflow_format::npy::read_npy_bytes;
use npyflow_format::Buffer;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = read_npy_bytes(&Buffer::from_vec(data.to_vec())) {
        assert!(t.nbytes() <= data.len());
    }
});
