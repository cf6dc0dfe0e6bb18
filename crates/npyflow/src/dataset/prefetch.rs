//! `prefetch`: elements made ahead of time on a background thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread;

use super::{require, BoxIter, Cardinality, Dataset, Node, AUTOTUNE};
use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result};

/// The memory an `AUTOTUNE` prefetch buffer may hold.
const AUTOTUNE_RAM_BUDGET: usize = 32 << 20;
/// The most elements an `AUTOTUNE` prefetch buffer holds.
const AUTOTUNE_MAX_BUFFER: usize = 8;

/// The buffer `AUTOTUNE` picks for elements of `spec`: as many as fit the RAM budget, from 1
/// to 8 (2 when the size of an element is not known from the spec).
fn autotune_buffer(spec: &ElementSpec) -> usize {
    let mut bytes = 0usize;
    for s in spec.tensor_specs() {
        let Some(dims) = s.shape.dims() else { return 2 };
        let mut n = s.dtype.itemsize();
        for d in dims {
            let Some(d) = d else { return 2 };
            n = n.saturating_mul(*d);
        }
        bytes = bytes.saturating_add(n);
    }
    (AUTOTUNE_RAM_BUDGET / bytes.max(1)).clamp(1, AUTOTUNE_MAX_BUFFER)
}

/// The most elements a prefetch buffer holds, whatever is asked: the channel reserves its
/// slots up front.
const MAX_BUFFER: usize = 1 << 16;

/// `input` run ahead by a background thread, `buffer` elements at most.
pub(crate) fn prefetched(mut input: BoxIter, buffer: usize) -> Result<BoxIter> {
    let (tx, rx) = sync_channel(buffer.clamp(1, MAX_BUFFER));
    thread::Builder::new()
        .name("npyflow-prefetch".into())
        .spawn(move || {
            loop {
                // A panic below is an error in its place, then the end (the input may be
                // broken), not a silent end of the data.
                let (item, stop) = match catch_unwind(AssertUnwindSafe(|| input.next())) {
                    Ok(Some(item)) => (item, false),
                    Ok(None) => break,
                    Err(_) => (
                        Err(Error::Pipeline("prefetch: the input panicked".into())),
                        true,
                    ),
                };
                if tx.send(item).is_err() || stop {
                    break; // the consumer is gone, or the input cannot go on
                }
            }
        })
        .map_err(|e| Error::Pipeline(format!("prefetch: cannot start a thread: {e}")))?;
    Ok(Box::new(Prefetched { rx }))
}

struct Prefetch {
    input: Dataset,
    buffer_size: usize,
}

/// Receives what the producer thread makes. Dropping it disconnects the channel, and the
/// producer stops at its next send.
struct Prefetched {
    rx: Receiver<Result<Element>>,
}

impl super::ElementIter for Prefetched {
    fn next(&mut self) -> Option<Result<Element>> {
        self.rx.recv().ok()
    }
}

impl Node for Prefetch {
    fn name(&self) -> &'static str {
        "Prefetch"
    }
    fn spec(&self) -> &ElementSpec {
        self.input.element_spec()
    }
    fn cardinality(&self) -> Cardinality {
        self.input.cardinality()
    }
    fn open(&self) -> Result<BoxIter> {
        let input = self.input.open()?;
        if self.buffer_size == 0 {
            return Ok(input);
        }
        prefetched(input, self.buffer_size)
    }
}

impl Dataset {
    /// tf.data's `prefetch(buffer_size)`: a background thread runs the input up to
    /// `buffer_size` elements ahead of the consumer. [`AUTOTUNE`] (-1) lets npyflow choose:
    /// as many elements as fit in 32 MiB (by the element spec), from 1 to 8; 0 prefetches
    /// nothing. Unlike tf.data, the choice is made once, when the dataset is built, not
    /// tuned while it runs, and a buffer holds at most 65,536 elements. Other negative sizes are refused. Dropping the
    /// iterator stops the thread once its pending element is made.
    pub fn prefetch(&self, buffer_size: i64) -> Result<Dataset> {
        require(buffer_size >= 0 || buffer_size == AUTOTUNE, || {
            format!("prefetch: buffer_size must be at least 0 or AUTOTUNE (-1), got {buffer_size}")
        })?;
        let buffer_size = if buffer_size == AUTOTUNE {
            autotune_buffer(self.element_spec())
        } else {
            buffer_size as usize
        };
        Ok(Dataset::from_node(Prefetch {
            input: self.clone(),
            buffer_size,
        }))
    }
}
