//! The seed's first example: a dataset of scalars from a 1-D array.
//!
//! ```python
//! numpy_array = np.array([1, 2, 3, 4, 5])
//! dataset = tf.data.Dataset.from_tensor_slices(numpy_array)
//! for element in dataset:
//!     print(element.numpy())
//! ```
//!
//! Prints `1` to `5`, one per line, as the Python original does under tf.data.

use npyflow::{Dataset, Tensor};

fn main() -> npyflow::Result<()> {
    let numpy_array = Tensor::from_vec(vec![1i64, 2, 3, 4, 5], &[5])?;
    let dataset = Dataset::from_tensor_slices(numpy_array)?;
    for element in &dataset {
        println!("{}", element?);
    }
    Ok(())
}
