//! Any bytes given to the header parser: no panic, and a header that parses re-encodes to
//! itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use npyflow_format::header::parse_header;

fuzz_target!(|data: &[u8]| {
    if let Ok((h, offset)) = parse_header(data, 10_000) {
        assert!(offset <= data.len());
        let again = h.encode(None).expect("a parsed header can be written");
        let (back, _) = parse_header(&again, usize::MAX).expect("a written header parses");
        assert_eq!(back, h);
    }
});
