//! `prefetch`: elements made ahead of time on a background thread.

use std::sync::Arc;

use super::options::Parallelism;
use super::options::AUTOTUNE;
use super::plumbing::{describe_node, require, BoxIter, Dataset, Node, Pass, PassRef};
use super::runtime::parallel::{panic_error, read_parallel_state, Jobs, Lanes, ParallelIter};
use super::state::State;
use crate::buffer::BufferPool;
use crate::element::{Element, ElementSpec};
use crate::error::Result;

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

/// The input's elements, as jobs for a one-thread engine that does no work on them.
struct Ahead {
    input: BoxIter,
}

impl Jobs<Result<Element>> for Ahead {
    fn next(&mut self) -> Option<Result<Element>> {
        self.input.next()
    }
    fn save(&self) -> Result<State> {
        Ok(State::new("Prefetch").kid(self.input.save()?))
    }
}

/// `input`'s elements made ahead on a background thread, up to `buffer` of them: the
/// parallel engine with one worker, so a prefetched pass saves, restores and stops as the
/// engine does. `from` is a state saved by such a pass; `open` opens the input (from the
/// input's part of it).
/// `autotune`: the buffer is tuned while the pass runs (see `runtime/tuner.rs`), starting
/// from `buffer`.
pub(crate) fn prefetched(
    open: impl FnOnce(Option<State>) -> Result<BoxIter>,
    buffer: usize,
    autotune: bool,
    from: Option<State>,
) -> Result<BoxIter> {
    let (source, pending) = match from {
        Some(s) => {
            let (source, pending) = read_parallel_state(s)?;
            let mut r = source.reader("Prefetch")?;
            let input = r.kid()?;
            r.finish()?;
            (Some(input), pending)
        }
        None => (None, Vec::new()),
    };
    let jobs = Box::new(Ahead {
        input: open(source)?,
    });
    let work = Arc::new(|item: Result<Element>| item);
    Ok(Box::new(ParallelIter::start(
        "prefetch",
        jobs,
        work,
        Lanes {
            threads: 1,
            capacity: buffer.clamp(1, MAX_BUFFER),
            deterministic: true,
            wake: 1,
            autotune,
            buffer_only: true,
            measure_gain: false,
        },
        pending,
        panic_error,
    )?))
}

struct Prefetch {
    input: Dataset,
    buffer_size: usize,
    /// `AUTOTUNE`: `buffer_size` is where the tuner starts.
    autotune: bool,
}

impl Node for Prefetch {
    describe_node! { name: "Prefetch"; input: input; }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        if self.buffer_size == 0 {
            return self.input.open_from(from);
        }
        prefetched(
            |s| self.input.open_from(s),
            self.buffer_size,
            self.autotune,
            from,
        )
    }
    fn is_random_access(&self) -> bool {
        self.input.is_random_access()
    }
    fn read_ahead(&self) -> usize {
        self.buffer_size.min(MAX_BUFFER)
    }
    fn pass(&self) -> Option<PassRef> {
        // Over a random-access input, prefetching is reading ahead by index on a worker:
        // the pass stays random-access and its state stays a position.
        let inner = self.input.pass()?;
        if self.buffer_size == 0 {
            return Some(inner);
        }
        Some(Arc::new(PrefetchPass { inner }))
    }
}

struct PrefetchPass {
    inner: PassRef,
}

impl Pass for PrefetchPass {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn get(&self, index: u64) -> Result<Element> {
        self.inner.get(index)
    }
    fn get_range(&self, start: u64, end: u64) -> Option<Result<Element>> {
        self.inner.get_range(start, end)
    }
    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        self.inner.gather(indices, pool)
    }
    fn parallelism(&self) -> Option<Parallelism> {
        Parallelism::combine(Some(Parallelism::threads(1)), self.inner.parallelism())
    }
}

impl Dataset {
    /// tf.data's `prefetch(buffer_size)`: a background thread runs the input up to
    /// `buffer_size` elements ahead of the consumer. [`AUTOTUNE`] (-1) lets npyflow choose:
    /// it starts with as many elements as fit in 32 MiB (by the element spec), from 1 to 8,
    /// and, under an iterator's tuner, doubles the buffer while the consumer finds it empty and
    /// the input keeps up on average, within the pipeline's RAM budget (see [`AutotuneOptions`](super::AutotuneOptions));
    /// 0 prefetches nothing. A buffer holds at most 65,536 elements. Other negative sizes are
    /// refused. Dropping the iterator stops the thread once its pending element is made.
    pub fn prefetch(&self, buffer_size: i64) -> Result<Dataset> {
        require(buffer_size >= 0 || buffer_size == AUTOTUNE, || {
            format!("prefetch: buffer_size must be at least 0 or AUTOTUNE (-1), got {buffer_size}")
        })?;
        let buffer_size_arg = buffer_size;
        let buffer_size = if buffer_size == AUTOTUNE {
            autotune_buffer(self.element_spec())
        } else {
            buffer_size as usize
        };
        Ok(Dataset::from_node(Prefetch {
            input: self.clone(),
            buffer_size,
            autotune: buffer_size_arg == AUTOTUNE,
        }))
    }
}
