//! The steps of a graph and their ops: unary, binary and reductions, indexes, paths.

use crate::tensor::Tensor;
use crate::DType;

/// A unary op, as the NumPy ufunc of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-x` (integers wrap).
    Negative,
    /// `abs(x)` (integers wrap: `abs(-128)` is -128 in int8).
    Abs,
    /// `x * x`.
    Square,
    /// `sqrt(x)`, for floats.
    Sqrt,
    /// `floor(x)`, for floats.
    Floor,
    /// `ceil(x)`, for floats.
    Ceil,
    /// `trunc(x)`, for floats.
    Trunc,
    /// `rint(x)`: to the nearest integer, halves to even; for floats.
    Rint,
    /// `1 / x`, for floats.
    Reciprocal,
    /// -1, 0 or 1 (NaN stays NaN).
    Sign,
    /// `isnan(x)` (bool).
    IsNan,
    /// `isinf(x)` (bool).
    IsInf,
    /// `isfinite(x)` (bool).
    IsFinite,
    /// `logical_not(x)` (bool).
    LogicalNot,
    /// `~x`, for integers and bools.
    Invert,
}

/// A binary op on two tensors of one dtype, broadcast as NumPy does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b` (integers wrap); not for bools.
    Add,
    /// `a - b`; not for bools.
    Subtract,
    /// `a * b`; not for bools.
    Multiply,
    /// `a / b`, for floats.
    Divide,
    /// `a // b` (integer division by zero gives 0).
    FloorDivide,
    /// `a % b`, with the divisor's sign (integer remainder by zero gives 0).
    Remainder,
    /// `maximum(a, b)`: NaN propagates.
    Maximum,
    /// `minimum(a, b)`: NaN propagates.
    Minimum,
    /// `a & b`, for integers and bools.
    BitwiseAnd,
    /// `a | b`, for integers and bools.
    BitwiseOr,
    /// `a ^ b`, for integers and bools.
    BitwiseXor,
    /// `logical_and(a, b)` (bool).
    LogicalAnd,
    /// `logical_or(a, b)` (bool).
    LogicalOr,
    /// `logical_xor(a, b)` (bool).
    LogicalXor,
    /// `a == b` (bool).
    Equal,
    /// `a != b` (bool).
    NotEqual,
    /// `a < b` (bool).
    Less,
    /// `a <= b` (bool).
    LessEqual,
    /// `a > b` (bool).
    Greater,
    /// `a >= b` (bool).
    GreaterEqual,
}

impl BinaryOp {
    /// Whether the result is bool.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Equal
                | BinaryOp::NotEqual
                | BinaryOp::Less
                | BinaryOp::LessEqual
                | BinaryOp::Greater
                | BinaryOp::GreaterEqual
                | BinaryOp::LogicalAnd
                | BinaryOp::LogicalOr
                | BinaryOp::LogicalXor
        )
    }
}

/// A reduction over axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// The sum, for integers (wrapping; cast to the accumulator's dtype first, as NumPy's
    /// `sum` of int8 is int64). Float sums are not here: NumPy's pairwise order is not
    /// reproduced.
    Sum,
    /// The product, for integers (wrapping).
    Prod,
    /// The largest value (NaN propagates); an empty reduction is an error.
    Max,
    /// The smallest value (NaN propagates); an empty reduction is an error.
    Min,
    /// Whether any value is non-zero (bool).
    Any,
    /// Whether every value is non-zero (bool).
    All,
}

/// One axis of a basic index, as Python's `x[...]` takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Index {
    /// `start:stop:step`, each bound optional and negative from the end, as Python slices.
    Range {
        /// The first index (None: from the start, or the end for a negative step).
        start: Option<i64>,
        /// The index to stop before (None: to the end, or the start for a negative step).
        stop: Option<i64>,
        /// The step, not 0.
        step: i64,
    },
    /// One position (negative from the end); the axis goes away.
    At(i64),
    /// `np.newaxis`: a new axis of length 1.
    NewAxis,
}

/// A step on the path to one tensor of an element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Part `i` of a tuple.
    Index(usize),
    /// Value `k` of a dict.
    Key(String),
}

/// A value of a graph under construction (a node's result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value(pub(super) usize);

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Node {
    Input(Vec<Part>),
    Const(Tensor),
    Cast(Value, DType),
    Unary(UnaryOp, Value),
    Binary(BinaryOp, Value, Value),
    Select(Value, Value, Value),
    Slice(Value, Vec<Index>),
    Reshape(Value, Vec<i64>),
    Transpose(Value, Vec<usize>),
    Concat(Vec<Value>, usize),
    Reduce(ReduceOp, Value, Vec<usize>, bool),
}

impl Node {
    /// The values the step reads.
    pub(super) fn operands(&self) -> Vec<Value> {
        match self {
            Node::Input(_) | Node::Const(_) => Vec::new(),
            Node::Cast(x, _)
            | Node::Unary(_, x)
            | Node::Slice(x, _)
            | Node::Reshape(x, _)
            | Node::Transpose(x, _)
            | Node::Reduce(_, x, _, _) => vec![*x],
            Node::Binary(_, a, b) => vec![*a, *b],
            Node::Select(c, a, b) => vec![*c, *a, *b],
            Node::Concat(xs, _) => xs.clone(),
        }
    }
}
