//! Fusion of built-in ops into batching, as a narrow interface between `map` and `batch`.
//!
//! An op `map` is an [`OpChain`]: its input and the ops it applies, consecutive op maps
//! being one chain. The [`Dataset`] handle of such a map carries its chain, and a `batch`
//! right after it reads the chain there ([`Dataset::op_chain`]): when every op is
//! elementwise (cast, scale, normalize), the batch reads the chain's input itself and writes
//! each op's result straight into its batch buffer, so no element is made on its own. No
//! node knows about any other kind of node for this.

use super::context::current_tuner;
use super::options::Parallelism;
use super::plumbing::Dataset;
use crate::buffer::BufferPool;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::ops::elementwise::apply_elementwise_into;
use crate::ops::{Component, Op, OpKind};
use crate::tensor::Tensor;

/// Idle batch buffers a pass keeps for reuse.
pub(crate) const POOLED_BATCHES: usize = 4;

/// A chain of built-in ops over an input dataset.
pub(crate) struct OpChain {
    /// What the ops read.
    pub(crate) input: Dataset,
    /// The ops, applied in order.
    pub(crate) ops: Vec<Op>,
    /// The threads the maps of the chain asked for.
    pub(crate) parallel: Option<Parallelism>,
}

impl OpChain {
    /// Whether every op is elementwise, so a batch can apply them to its rows as it writes
    /// them.
    pub(crate) fn is_elementwise(&self) -> bool {
        self.ops.iter().all(Op::is_elementwise)
    }

    /// The threads that make the batches of a `batch` given `batch` threads that runs this
    /// chain: those the batch and the maps asked for, or, where neither asked for any and
    /// the pass parallelizes maps (tf.data's `map_parallelization`, on by default and
    /// outside an iterator), `AUTOTUNE` ones with the output in order. The ops have no state
    /// and give each element the same values on any thread, so only the speed changes.
    pub(crate) fn batch_parallelism(&self, batch: Option<Parallelism>) -> Option<Parallelism> {
        Parallelism::combine(batch, self.parallel).or_else(|| {
            current_tuner()
                .is_none_or(|t| t.parallelizes_maps())
                .then(Parallelism::autotune)
        })
    }
}

/// The ops that apply to top-level part `part` (`None`: the element is a single tensor).
pub(crate) fn ops_for(ops: &[Op], part: Option<Component>) -> Vec<&Op> {
    ops.iter()
        .filter(|op| *op.target() == Component::All || Some(op.target()) == part.as_ref())
        .collect()
}

/// Elementwise `ops` applied to every targeted tensor of `e`, each result written once into
/// a buffer from `pool`.
pub(crate) fn apply_elementwise_pooled(
    e: Element,
    ops: &[Op],
    pool: &BufferPool,
) -> Result<Element> {
    // An op graph maps the whole batch: the ops before it, the graph, then those after.
    if let Some(pos) = ops.iter().position(|op| op.as_graph().is_some()) {
        let e = apply_elementwise_pooled(e, &ops[..pos], pool)?;
        let graph = ops[pos].as_graph().expect("found above");
        let e = graph
            .apply_batch(e, Some(pool))
            .map_err(|err| err.context(format!("map: {graph}")))?;
        return apply_elementwise_pooled(e, &ops[pos + 1..], pool);
    }
    if ops.is_empty() {
        return Ok(e);
    }
    let run = |part: Element, ops: Vec<&Op>| -> Result<Element> {
        if ops.is_empty() {
            return Ok(part);
        }
        part.map_tensors(&mut |t| {
            let mut dtype = t.dtype();
            for op in &ops {
                if let OpKind::Cast(d) = op.kind() {
                    dtype = *d;
                }
            }
            let mut out = pool.take(t.size() * dtype.itemsize())?;
            apply_elementwise_into(&ops, t, dtype, out.as_mut_slice())?;
            Tensor::new(dtype, t.shape(), out.freeze())
        })
    };
    match e {
        Element::Tuple(items) => Ok(Element::Tuple(
            items
                .into_iter()
                .enumerate()
                .map(|(i, p)| run(p, ops_for(ops, Some(Component::Index(i)))))
                .collect::<Result<_>>()?,
        )),
        Element::Dict(items) => Ok(Element::Dict(
            items
                .into_iter()
                .map(|(k, p)| {
                    let these = ops_for(ops, Some(Component::Key(k.clone())));
                    Ok((k, run(p, these)?))
                })
                .collect::<Result<_>>()?,
        )),
        other => {
            if let Some(op) = ops.iter().find(|op| *op.target() != Component::All) {
                return Err(Error::Pipeline(format!(
                    "{op}: the element has no such component"
                )));
            }
            run(other, ops.iter().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::map::op_chain;
    use crate::dataset::{BatchOptions, Parallelism, ShuffleOptions};
    use crate::dtype::DType;
    use crate::element::Element;
    use crate::ops;
    use crate::tensor::Tensor;
    use crate::Dataset;

    fn source() -> Dataset {
        let x = Tensor::from_vec((0..24u8).collect(), &[6, 4]).unwrap();
        Dataset::from_tensor_slices(x).unwrap()
    }

    #[test]
    fn consecutive_op_maps_are_one_chain_over_the_source() {
        let src = source();
        let ds = src
            .map(ops::cast(DType::Float32), ())
            .unwrap()
            .map(ops::scale(0.5), Parallelism::threads(2))
            .unwrap();
        let chain = op_chain(&ds).expect("an op map carries its chain");
        assert_eq!(chain.ops.len(), 2);
        assert!(
            chain.input.same_node(&src),
            "the chain reads the source itself"
        );
        assert!(chain.is_elementwise());
        assert_eq!(chain.parallel.map(|p| p.num_threads()), Some(2));
    }

    /// `(img[:, ::-1, :].astype(np.float32) + 8.0) / 255.0` on the first part of a pair,
    /// the second passed through.
    fn flip_graph(dtype: DType) -> ops::graph::Graph {
        use crate::element::{ElementSpec, PartialShape, TensorSpec};
        use ops::graph::{BinaryOp, GraphBuilder, Index, Output, Part};
        let spec = ElementSpec::Tuple(vec![
            ElementSpec::Tensor(TensorSpec {
                dtype,
                shape: PartialShape::known(&[5, 6, 3]),
            }),
            ElementSpec::Tensor(TensorSpec {
                dtype: DType::Int64,
                shape: PartialShape::known(&[]),
            }),
        ]);
        let mut g = GraphBuilder::new(&spec);
        let img = g.input(&[Part::Index(0)]).unwrap();
        let label = g.input(&[Part::Index(1)]).unwrap();
        let range = |step| Index::Range {
            start: None,
            stop: None,
            step,
        };
        let flipped = g.slice(img, &[range(1), range(-1), range(1)]).unwrap();
        let f = g.cast(flipped, DType::Float32).unwrap();
        let eight = g.constant(Tensor::scalar(8.0f32)).unwrap();
        let shifted = g.binary(BinaryOp::Add, f, eight).unwrap();
        let k = g.constant(Tensor::scalar(255.0f32)).unwrap();
        let scaled = g.binary(BinaryOp::Divide, shifted, k).unwrap();
        g.build(Output::Tuple(vec![
            Output::Value(scaled),
            Output::Value(label),
        ]))
        .unwrap()
    }

    #[test]
    fn a_graph_batch_read_in_place_equals_batching_the_mapped_elements() {
        // Batches of rows read as one run (a graph reads them in place), of rows stacked
        // first (after a shuffle) and of rows mapped one by one, for 8-bit images (a table
        // of results) and 16-bit ones (computed block by block), with every size of last
        // batch.
        for dtype in [DType::UInt8, DType::Int8, DType::UInt16] {
            let rows = 700;
            let width = dtype.itemsize();
            let bytes: Vec<u8> = (0..rows * 90 * width)
                .map(|i| ((i * 2_654_435_761) >> 11) as u8)
                .collect();
            let x = Tensor::new(
                dtype,
                &[rows, 5, 6, 3],
                crate::buffer::Buffer::from_vec(bytes),
            )
            .unwrap();
            let y = Tensor::from_vec((0..rows as i64).collect(), &[rows]).unwrap();
            let src = Dataset::from_tensor_slices(Element::tuple([x, y])).unwrap();
            let graph = flip_graph(dtype);
            for (batch, drop) in [(256, false), (300, true), (700, false), (1, false)] {
                let batched = |d: Dataset| {
                    d.batch(batch, BatchOptions::new().drop_remainder(drop))
                        .unwrap()
                        .to_vec()
                        .unwrap()
                };
                let one_by_one = |d: Dataset| d.map(|x: Element| Ok(x), ()).unwrap();
                let mapped = src.map(ops::graph(graph.clone()), ()).unwrap();
                let in_place = batched(mapped.clone());
                assert_eq!(
                    in_place,
                    batched(one_by_one(mapped)),
                    "{dtype} batch {batch}"
                );
                // Each pass of a dataset shuffles anew: two datasets, one pass each.
                let shuffled_mapped = || {
                    src.shuffle(64, ShuffleOptions::new().seed(3))
                        .unwrap()
                        .map(ops::graph(graph.clone()), ())
                        .unwrap()
                };
                let stacked = batched(shuffled_mapped());
                let mapped_first = batched(one_by_one(shuffled_mapped()));
                assert_eq!(stacked, mapped_first, "{dtype} batch {batch}, shuffled");
            }
        }
    }

    #[test]
    fn closures_and_other_nodes_are_not_chains() {
        let src = source();
        assert!(op_chain(&src).is_none());
        assert!(op_chain(&src.map(|x: Element| Ok(x), ()).unwrap()).is_none());
        let flipped = src.map(ops::random_flip(0, 1), ()).unwrap();
        assert!(!op_chain(&flipped).unwrap().is_elementwise());
    }

    #[test]
    fn a_fused_batch_equals_batching_the_mapped_elements() {
        let mapped = source()
            .map(ops::cast(DType::Float32), ())
            .unwrap()
            .map(ops::scale(0.5), ())
            .unwrap();
        let fused = mapped.batch(4, ()).unwrap().to_vec().unwrap();
        // The same map through a closure in between, which no batch can fuse.
        let unfused = mapped
            .map(|x: Element| Ok(x), ())
            .unwrap()
            .batch(4, ())
            .unwrap()
            .to_vec()
            .unwrap();
        assert_eq!(fused, unfused);
        // As NumPy prints `np.arange(16, dtype=np.float32).reshape(4, 4) * 0.5`.
        assert_eq!(
            fused[0].to_string(),
            "[[0.  0.5 1.  1.5]\n [2.  2.5 3.  3.5]\n [4.  4.5 5.  5.5]\n [6.  6.5 7.  7.5]]"
        );
    }
}
