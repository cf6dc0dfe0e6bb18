//! The seed's third example: images with channels, normalized by a map, in batches of two.
//!
//! ```python
//! numpy_images = np.random.rand(10, 3, 3, 3)
//! dataset = tf.data.Dataset.from_tensor_slices(numpy_images)
//! def preprocess_image(image):
//!     return tf.cast(image, tf.float32) / 255.0
//! preprocessed_dataset = dataset.map(preprocess_image)
//! batched_dataset = preprocessed_dataset.batch(2)
//! for batch in batched_dataset:
//!     print(batch.shape)
//! ```
//!
//! Prints `(2, 3, 3, 3)` five times.

use npyflow::dataset::Rng;
use npyflow::{DType, Dataset, PartialShape, Tensor};

fn main() -> npyflow::Result<()> {
    // np.random.rand: uniform float64 in [0, 1).
    let mut rng = Rng::keyed(0, &[]);
    let values: Vec<f64> = (0..10 * 3 * 3 * 3).map(|_| rng.next_f64()).collect();
    let numpy_images = Tensor::from_vec(values, &[10, 3, 3, 3])?;

    let dataset = Dataset::from_tensor_slices(numpy_images)?;
    let preprocess_image = |image: npyflow::Element| {
        Ok(image
            .into_tensor()?
            .cast(DType::Float32)?
            .scale(1.0 / 255.0, 0.0)?
            .into())
    };
    let preprocessed_dataset = dataset.map(preprocess_image, ())?;
    let batched_dataset = preprocessed_dataset.batch(2, ())?;
    for batch in &batched_dataset {
        println!("{}", PartialShape::known(batch?.into_tensor()?.shape()));
    }
    Ok(())
}
