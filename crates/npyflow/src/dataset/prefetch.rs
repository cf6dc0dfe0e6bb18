//! `prefetch`: elements made ahead of time on a background thread.

use std::sync::mpsc::{sync_channel, Receiver};
use std::thread;

use super::{require, BoxIter, Cardinality, Dataset, Node, AUTOTUNE};
use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result};

/// The buffer `AUTOTUNE` gets until the runtime tunes it.
const AUTOTUNE_BUFFER: usize = 2;

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
        let mut input = self.input.open()?;
        if self.buffer_size == 0 {
            return Ok(input);
        }
        let (tx, rx) = sync_channel(self.buffer_size);
        thread::Builder::new()
            .name("npyflow-prefetch".into())
            .spawn(move || {
                while let Some(item) = input.next() {
                    if tx.send(item).is_err() {
                        break; // the consumer is gone
                    }
                }
            })
            .map_err(|e| Error::Pipeline(format!("prefetch: cannot start a thread: {e}")))?;
        Ok(Box::new(Prefetched { rx }))
    }
}

impl Dataset {
    /// tf.data's `prefetch(buffer_size)`: a background thread runs the input up to
    /// `buffer_size` elements ahead of the consumer. [`AUTOTUNE`] (-1) lets npyflow choose
    /// (for now, 2); 0 prefetches nothing. Other negative sizes are refused. Dropping the
    /// iterator stops the thread once its pending element is made.
    pub fn prefetch(&self, buffer_size: i64) -> Result<Dataset> {
        require(buffer_size >= 0 || buffer_size == AUTOTUNE, || {
            format!("prefetch: buffer_size must be at least 0 or AUTOTUNE (-1), got {buffer_size}")
        })?;
        let buffer_size = if buffer_size == AUTOTUNE {
            AUTOTUNE_BUFFER
        } else {
            buffer_size as usize
        };
        Ok(Dataset::from_node(Prefetch {
            input: self.clone(),
            buffer_size,
        }))
    }
}
