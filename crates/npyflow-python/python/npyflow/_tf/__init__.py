"""tf's names for input pipelines, on NumPy values (``import npyflow as tf``): dtypes, array
ops, ``tf.math``, ``tf.image`` and ``tf.random``. Each works eagerly on NumPy arrays (so also
inside ``map`` and ``filter`` functions) and returns ``npyflow.Tensor`` values (NumPy arrays
with ``.numpy()``). Nothing here imports TensorFlow."""
