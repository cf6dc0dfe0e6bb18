//! The seed's second example: a dataset of vectors from a 2-D array, then batches of two.
//!
//! ```python
//! numpy_array = np.array([[1, 2], [3, 4], [5, 6]])
//! dataset = tf.data.Dataset.from_tensor_slices(numpy_array)
//! for element in dataset:
//!     print(element.numpy())
//! batched_dataset = dataset.batch(2)
//! for batch in batched_dataset:
//!     print(batch.numpy())
//! ```
//!
//! Prints `[1 2]`, `[3 4]`, `[5 6]`, then `[[1 2]` / ` [3 4]]` and `[[5 6]]`.

use npyflow::{Dataset, Tensor};

fn main() -> npyflow::Result<()> {
    let numpy_array = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6], &[3, 2])?;
    let dataset = Dataset::from_tensor_slices(numpy_array)?;
    for element in &dataset {
        println!("{}", element?);
    }
    let batched_dataset = dataset.batch(2, ())?;
    for batch in &batched_dataset {
        println!("{}", batch?);
    }
    Ok(())
}
