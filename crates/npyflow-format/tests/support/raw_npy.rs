//! The bytes of a `.npy` file with any header text, valid or not, padded as NumPy pads it:
//! for the tests of what readers make of odd headers, in npyflow-format's
//! tests/format/malformed.rs and npyflow-cli's tests/cli/inspect.rs (which includes this
//! file with `#[path]`).

/// A `.npy` file of format version `major`.0 (1: a 2-byte header length, 2 and 3: a 4-byte
/// one) whose header is `header`, padded with spaces and a newline to a multiple of 64 bytes,
/// and `data` after it.
pub fn npy_bytes(major: u8, header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = b"\x93NUMPY".to_vec();
    bytes.extend([major, 0]);
    let prefix = if major == 1 { 10 } else { 12 };
    let len = (prefix + header.len() + 1).next_multiple_of(64) - prefix;
    if major == 1 {
        bytes.extend_from_slice(&(len as u16).to_le_bytes());
    } else {
        bytes.extend_from_slice(&(len as u32).to_le_bytes());
    }
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(prefix + len - 1, b' ');
    bytes.push(b'\n');
    bytes.extend_from_slice(data);
    bytes
}
