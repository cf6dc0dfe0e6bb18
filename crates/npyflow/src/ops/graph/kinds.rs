//! The ops of a graph's steps: unary, binary and reductions.

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
