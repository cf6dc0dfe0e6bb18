"""tf.data's constants (``npyflow.AUTOTUNE`` and the special cardinalities)."""

from __future__ import annotations

#: Let npyflow choose a parallelism or buffer size (``tf.data.AUTOTUNE``).
AUTOTUNE: int = -1
#: ``cardinality()`` of a dataset that never ends (``tf.data.INFINITE_CARDINALITY``).
INFINITE_CARDINALITY: int = -1
#: ``cardinality()`` of a dataset whose size only iterating would tell.
UNKNOWN_CARDINALITY: int = -2
