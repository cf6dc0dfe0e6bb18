"""The seed's three examples, written the NumPy way for npyflow (`import npyflow as tfd`,
printing the elements themselves, the cast NumPy's), print what they print under tf.data.
The examples exactly as the seed writes them, with only `import tensorflow as tf` replaced by
`import npyflow as tf`, are test_tf_names.py's (against stdout recorded from TensorFlow)."""

from python_child import run_python


def run(code: str) -> str:
    return run_python(code, timeout=120)


def test_example_1_scalars():
    stdout = run(
        """
        import numpy as np
        import npyflow as tfd

        numpy_array = np.array([1, 2, 3, 4, 5])
        dataset = tfd.Dataset.from_tensor_slices(numpy_array)
        for element in dataset:
          print(element)
        """
    )
    assert stdout == "1\n2\n3\n4\n5\n"


def test_example_2_vectors_and_batches():
    stdout = run(
        """
        import numpy as np
        import npyflow as tfd

        numpy_array = np.array([[1, 2], [3, 4], [5, 6]])
        dataset = tfd.Dataset.from_tensor_slices(numpy_array)
        for element in dataset:
          print(element)

        batched_dataset = dataset.batch(2)
        for batch in batched_dataset:
          print(batch)
        """
    )
    assert stdout == "[1 2]\n[3 4]\n[5 6]\n[[1 2]\n [3 4]]\n[[5 6]]\n"


def test_example_3_images_with_channels():
    stdout = run(
        """
        import numpy as np
        import npyflow as tfd

        numpy_images = np.random.rand(10, 3, 3, 3)
        dataset = tfd.Dataset.from_tensor_slices(numpy_images)

        def preprocess_image(image):
          return image.astype(np.float32) / 255.0

        preprocessed_dataset = dataset.map(preprocess_image)
        batched_dataset = preprocessed_dataset.batch(2)
        for batch in batched_dataset:
          print(batch.shape)
        """
    )
    assert stdout == "(2, 3, 3, 3)\n" * 5


def test_example_3_with_the_built_in_ops_and_tf_data_names():
    # The same pipeline with the cast and the division run in Rust, written with
    # `tf.data.Dataset` as the seed writes it.
    stdout = run(
        """
        import numpy as np
        import npyflow as tf
        from npyflow import ops

        numpy_images = np.random.rand(10, 3, 3, 3)
        dataset = tf.data.Dataset.from_tensor_slices(numpy_images)
        preprocessed_dataset = dataset.map(ops.cast(np.float32)).map(ops.scale(1 / 255.0))
        batched_dataset = preprocessed_dataset.batch(2)
        for batch in batched_dataset:
          print(batch.shape, batch.dtype)
        """
    )
    assert stdout == "(2, 3, 3, 3) float32\n" * 5
