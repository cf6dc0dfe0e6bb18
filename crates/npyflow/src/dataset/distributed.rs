//! `distributed_batch`: the batches of one worker of several in data-parallel training,
//! every worker getting the same number of steps.

use std::sync::Arc;

use super::batch::{check_batch_size, Assembler};
use super::parallelism::Parallelism;
use super::plumbing::{describe_node, require, Cardinality, Dataset, Node, Pass, PassRef};
use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The batches of one worker of several in data-parallel training (see
/// [`Dataset::distributed_batch`]).
struct DistributedBatch {
    input: Dataset,
    split: Split,
    spec: ElementSpec,
}

/// How [`DistributedBatch`] splits elements among workers.
#[derive(Clone, Copy)]
struct Split {
    batch_size: u64,
    workers: u64,
    worker: u64,
}

impl Split {
    /// Global steps for `n` elements: each gives every worker one batch.
    fn steps(&self, n: u64) -> u64 {
        n.div_ceil(self.batch_size.saturating_mul(self.workers))
    }

    /// The input positions of this worker's batch at `step`, for `n` elements.
    fn span(&self, n: u64, step: u64) -> (u64, u64) {
        let per_step = self.batch_size.saturating_mul(self.workers);
        let base = step.saturating_mul(per_step);
        let left = n.saturating_sub(base);
        if left >= per_step {
            let start = base + self.worker * self.batch_size;
            return (start, start + self.batch_size);
        }
        // The last step: what is left, split as evenly as can be (sizes differ by at most
        // one, and a worker gets none only when fewer are left than there are workers).
        let cut =
            |k: u64| base + (u128::from(left) * u128::from(k) / u128::from(self.workers)) as u64;
        (cut(self.worker), cut(self.worker + 1))
    }
}

impl Node for DistributedBatch {
    describe_node! { name: "DistributedBatch"; input: input; spec: spec; }
    fn cardinality(&self) -> Cardinality {
        self.input.cardinality().map(|n| self.split.steps(n))
    }
    fn is_random_access(&self) -> bool {
        true
    }
    fn resume_note(&self) -> Option<String> {
        // A state saves the step, so it means the same elements at the same global batch
        // size whatever the number of workers, and other elements at another.
        Some(format!(
            "global batch size {} (num_workers x batch_size)",
            self.split.batch_size.saturating_mul(self.split.workers)
        ))
    }
    fn pass(&self) -> Option<PassRef> {
        let inner = self.input.pass()?;
        let parallel = inner.parallelism();
        Some(Arc::new(DistributedPass {
            split: self.split,
            inner,
            asm: Arc::new(Assembler::stacking(parallel)),
            spec: self.input.element_spec().clone(),
        }))
    }
}

struct DistributedPass {
    inner: PassRef,
    split: Split,
    asm: Arc<Assembler>,
    /// The input's element spec, for an empty batch.
    spec: ElementSpec,
}

impl Pass for DistributedPass {
    fn len(&self) -> u64 {
        self.split.steps(self.inner.len())
    }
    fn get(&self, index: u64) -> Result<Element> {
        let (start, end) = self.split.span(self.inner.len(), index);
        if start == end {
            return empty_batch(&self.spec);
        }
        self.asm.range(&*self.inner, start, end)
    }
    fn parallelism(&self) -> Option<Parallelism> {
        self.inner.parallelism()
    }
}

/// A batch of no rows of `spec` (dimensions not known are 0).
pub(crate) fn empty_batch(spec: &ElementSpec) -> Result<Element> {
    Ok(match spec {
        ElementSpec::Tensor(s) => {
            let mut dims = vec![0];
            dims.extend(s.shape.dims().unwrap_or(&[]).iter().map(|d| d.unwrap_or(0)));
            Element::Tensor(Tensor::zeros(s.dtype, &dims)?)
        }
        ElementSpec::Tuple(items) => {
            Element::Tuple(items.iter().map(empty_batch).collect::<Result<_>>()?)
        }
        ElementSpec::Dict(items) => Element::Dict(
            items
                .iter()
                .map(|(k, s)| Ok((k.clone(), empty_batch(s)?)))
                .collect::<Result<_>>()?,
        ),
        ElementSpec::Dataset(_) => {
            return Err(Error::Pipeline(
                "elements holding datasets cannot be batched".into(),
            ))
        }
    })
}

impl Dataset {
    /// The batches of worker `worker_index` of `num_workers` in data-parallel training, from
    /// a random-access dataset that every worker builds alike (with the same
    /// [`global_shuffle`](Dataset::global_shuffle) seed): together the workers read every
    /// element exactly once per epoch, and every worker gets the same number of batches, so
    /// no worker waits at the last step for a batch that never comes.
    ///
    /// The rule: the elements are taken in global steps of `num_workers × batch_size`; in
    /// each full step worker *i* gets positions `i × batch_size ..` of it. The last step has
    /// the remainder *r* (fewer than a full step): it is split as evenly as it can be, worker
    /// *i* getting positions `⌊r·i/W⌋ .. ⌊r·(i+1)/W⌋` of it, so the last batches differ in
    /// size by at most one. When fewer elements remain than there are workers, some workers'
    /// last batch has no rows: it is still a batch (of shape `[0, ...]`), so the count of
    /// steps stays equal.
    ///
    /// An iterator's state is the same on every worker at the same step, and restores on any
    /// number of workers with the same global batch size `num_workers × batch_size`; with
    /// another global batch size it is refused ([`Error::InvalidArgument`] naming both).
    ///
    /// Not in tf.data, where `shard(n, i).batch(b)` gives workers batch counts that can
    /// differ by one, and `drop_remainder` loses elements to keep them equal. The batch
    /// spec's first dimension is unknown (the last batches are smaller).
    ///
    /// ```
    /// use npyflow::Dataset;
    /// // 10 elements, 2 workers, batches of 3: steps of 6, then 4 left (2 each).
    /// let ds = Dataset::range(0, 10, 1)?;
    /// let w0: Vec<String> = ds.distributed_batch(3, 2, 0)?.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// let w1: Vec<String> = ds.distributed_batch(3, 2, 1)?.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(w0, ["[0 1 2]", "[6 7]"]);
    /// assert_eq!(w1, ["[3 4 5]", "[8 9]"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn distributed_batch(
        &self,
        batch_size: usize,
        num_workers: u64,
        worker_index: u64,
    ) -> Result<Dataset> {
        check_batch_size("distributed_batch", batch_size)?;
        require(num_workers > 0, || {
            format!("distributed_batch: num_workers must be positive, got {num_workers}")
        })?;
        require(worker_index < num_workers, || {
            format!(
                "distributed_batch: worker_index must be in [0, {num_workers}), got {worker_index}"
            )
        })?;
        require(self.is_random_access(), || {
            format!(
                "distributed_batch needs a random-access dataset (its last step is split by the \
                 count of elements), and a {} dataset is not one",
                self.node().name()
            )
        })?;
        require(!self.element_spec().has_dataset(), || {
            "elements holding datasets cannot be batched".to_string()
        })?;
        Ok(Dataset::from_node(DistributedBatch {
            input: self.clone(),
            split: Split {
                batch_size: batch_size as u64,
                workers: num_workers,
                worker: worker_index,
            },
            spec: self.element_spec().batched(None),
        }))
    }
}
