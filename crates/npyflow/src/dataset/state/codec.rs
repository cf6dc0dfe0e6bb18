//! The state tree as bytes: little-endian and self-checking (a magic string, a format
//! version, the pipeline's [`Stamp`], the tree, and a CRC-32 of everything before it).
//! Decoding never trusts a length: each is checked against the bytes that remain.

use super::bytes::{put_str, put_u64, Cursor, MAX_DEPTH};
use super::tree::{mismatch, State};
use crate::error::{Error, Result};

const MAGIC: &[u8; 14] = b"npyflow state\n";
/// Version 1 had no notes in its stamp.
const VERSION: u32 = 2;

/// What a state records of the pipeline that saved it, so that it restores only into one
/// built alike: a hash of the structure (each node's operation, element spec and
/// cardinality), and the nodes' notes in words (a distributed batch's global batch size),
/// which name what differs when a state is refused for them. The notes are few and short,
/// so a state of a random-access pipeline stays a few dozen bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) fingerprint: u64,
    /// (the node's place in the walk, its note).
    pub(crate) notes: Vec<(u64, String)>,
}

fn encode_state(s: &State, out: &mut Vec<u8>) {
    put_str(out, &s.tag);
    put_u64(out, s.nums.len() as u64);
    for &n in &s.nums {
        put_u64(out, n);
    }
    put_u64(out, s.elems.len() as u64);
    for e in &s.elems {
        put_u64(out, e.len() as u64);
        out.extend_from_slice(e);
    }
    put_u64(out, s.kids.len() as u64);
    for k in &s.kids {
        match k {
            Some(k) => {
                out.push(1);
                encode_state(k, out);
            }
            None => out.push(0),
        }
    }
}

fn decode_state(c: &mut Cursor<'_>, depth: usize) -> Result<State> {
    if depth > MAX_DEPTH {
        return Err(Error::InvalidArgument(
            "the iterator state nests too deeply".into(),
        ));
    }
    let tag = c.string()?;
    let n = c.count(8)?;
    let nums = (0..n).map(|_| c.u64()).collect::<Result<_>>()?;
    let n = c.count(8)?;
    let elems = (0..n)
        .map(|_| c.bytes().map(<[u8]>::to_vec))
        .collect::<Result<_>>()?;
    let n = c.count(1)?;
    let mut kids = Vec::with_capacity(n);
    for _ in 0..n {
        kids.push(match c.u8()? {
            0 => None,
            1 => Some(decode_state(c, depth + 1)?),
            k => {
                return Err(Error::InvalidArgument(format!(
                    "the iterator state is damaged: input marker {k} at byte {}",
                    c.at - 1
                )))
            }
        });
    }
    Ok(State {
        tag,
        nums,
        elems,
        kids,
    })
}

/// The state as bytes, stamped with the pipeline's [`Stamp`].
pub(crate) fn to_bytes(s: &State, stamp: &Stamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    put_u64(&mut out, stamp.fingerprint);
    put_u64(&mut out, stamp.notes.len() as u64);
    for (at, note) in &stamp.notes {
        put_u64(&mut out, *at);
        put_str(&mut out, note);
    }
    encode_state(s, &mut out);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes bytes from [`to_bytes`], checking that they are whole and were saved from a
/// pipeline of this `stamp`.
pub(crate) fn from_bytes(bytes: &[u8], stamp: &Stamp) -> Result<State> {
    let bad = |why: &str| Error::InvalidArgument(format!("not an npyflow iterator state: {why}"));
    if bytes.len() < MAGIC.len() + 4 + 8 + 4 || !bytes.starts_with(MAGIC) {
        return Err(bad("it does not start with npyflow's mark"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(bad("its checksum does not match (damaged or cut short)"));
    }
    let mut c = Cursor {
        data: body,
        at: MAGIC.len(),
    };
    let version = u32::from_le_bytes(c.take(4)?.try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(bad(&format!(
            "format version {version}, and this npyflow reads version {VERSION}"
        )));
    }
    let fingerprint = c.u64()?;
    let n = c.count(16)?;
    let notes = (0..n)
        .map(|_| Ok((c.u64()?, c.string()?)))
        .collect::<Result<Vec<_>>>()?;
    check_stamp(&Stamp { fingerprint, notes }, stamp)?;
    let s = decode_state(&mut c, 0)?;
    if c.at != body.len() {
        return Err(bad("bytes follow its end"));
    }
    Ok(s)
}

/// Refuses a state `saved` from a pipeline that is not built as this one (stamped `now`),
/// naming the note that differs where one does.
fn check_stamp(saved: &Stamp, now: &Stamp) -> Result<()> {
    for (at, note) in &saved.notes {
        if let Some((_, here)) = now.notes.iter().find(|(k, n)| k == at && n != note) {
            return Err(mismatch(format!(
                "it was saved with {note} and this pipeline has {here}"
            )));
        }
    }
    if saved != now {
        return Err(mismatch(
            "it was saved from a pipeline of another structure (other transformations, \
             element specs or sizes): restore a state into a pipeline built as the one that \
             saved it",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::Element;
    use crate::tensor::Tensor;

    fn sample() -> State {
        let e = Element::Tuple(vec![
            Tensor::from_vec(vec![1.5f32, 2.5], &[2]).unwrap().into(),
            Element::Dict(
                [("k".to_string(), Tensor::scalar(7i64).into())]
                    .into_iter()
                    .collect(),
            ),
        ]);
        State::new("Outer")
            .num(3)
            .flag(true)
            .item(&Ok(e))
            .unwrap()
            .item(&Err(Error::Pipeline("bad row".into())))
            .unwrap()
            .kid(State::new("Inner").num(u64::MAX))
            .kid_opt(None)
    }

    fn stamp(fingerprint: u64, note: Option<&str>) -> Stamp {
        Stamp {
            fingerprint,
            notes: note.map(|n| (2, n.to_string())).into_iter().collect(),
        }
    }

    #[test]
    fn round_trips() {
        let bytes = to_bytes(&sample(), &stamp(42, None));
        let s = from_bytes(&bytes, &stamp(42, None)).unwrap();
        let mut r = s.reader("Outer").unwrap();
        assert_eq!(r.num().unwrap(), 3);
        assert!(r.flag().unwrap());
        let e = r.item().unwrap().unwrap();
        assert_eq!(e.to_string(), "([1.5 2.5], {'k': 7})");
        assert_eq!(e.tensors()[0].dtype(), crate::dtype::DType::Float32);
        assert!(r
            .item()
            .unwrap()
            .unwrap_err()
            .to_string()
            .contains("bad row"));
        let mut inner = r.kid().unwrap().reader("Inner").unwrap();
        assert_eq!(inner.num().unwrap(), u64::MAX);
        inner.finish().unwrap();
        assert!(r.kid_opt().unwrap().is_none());
        r.finish().unwrap();
    }

    #[test]
    fn refuses_other_pipelines_and_damage() {
        let bytes = to_bytes(&sample(), &stamp(42, None));
        let e = from_bytes(&bytes, &stamp(43, None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("another structure"), "{e}");
        let noted = to_bytes(&sample(), &stamp(42, Some("global batch size 10")));
        let e = from_bytes(&noted, &stamp(43, Some("global batch size 11")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "saved with global batch size 10 and this pipeline has global batch size 11"
            ),
            "{e}"
        );
        assert!(from_bytes(&noted, &stamp(42, Some("global batch size 10"))).is_ok());
        assert!(from_bytes(&noted, &stamp(42, None)).is_err());
        assert!(sample().reader("Other").is_err());
        for cut in [0, 5, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                from_bytes(&bytes[..cut], &stamp(42, None)).is_err(),
                "cut at {cut}"
            );
        }
        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        assert!(from_bytes(&flipped, &stamp(42, None))
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        let r = sample().reader("Outer").unwrap();
        assert!(r.finish().unwrap_err().to_string().contains("more than"));
    }

    #[test]
    fn forged_counts_do_not_allocate() {
        // A valid frame around a body whose count claims 2^60 numbers.
        let mut body = Vec::new();
        body.extend_from_slice(MAGIC);
        body.extend_from_slice(&VERSION.to_le_bytes());
        put_u64(&mut body, 1);
        put_u64(&mut body, 0);
        put_str(&mut body, "X");
        put_u64(&mut body, 1 << 60);
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        let e = from_bytes(&body, &stamp(1, None)).unwrap_err().to_string();
        assert!(e.contains("damaged"), "{e}");
    }
}
