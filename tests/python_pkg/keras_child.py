"""Keras 3 on an npyflow dataset, in a Python of its own (KERAS_BACKEND is read when keras is
imported; test_keras.py runs this once per backend). Prints one JSON line of what it saw."""

import json

import keras
import numpy as np

import npyflow

rng = np.random.default_rng(0)
x = rng.normal(size=(200, 4)).astype("float32")
w = np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")
y = x @ w


def make_train():
    # Built anew for each use: a dataset's shuffle counts its own passes.
    return npyflow.Dataset.from_tensor_slices((x[:160], y[:160])).global_shuffle(seed=1).batch(32)


train = make_train()
val = npyflow.Dataset.from_tensor_slices((x[160:], y[160:])).batch(16)


class Steps(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.steps.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.steps[-1] += 1


steps = Steps()
steps.steps = []
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
history = model.fit(train.to_keras(), validation_data=val.to_keras(), epochs=4, verbose=0, callbacks=[steps])
# The validation loss of the last epoch, computed by Keras on the arrays themselves.
direct = model.evaluate(x[160:], y[160:], batch_size=16, verbose=0)

# What the adapter hands Keras, asked as Keras asks (indices shuffled, epochs begun).
adapter = make_train().to_keras()
seen = []
for epoch in range(3):
    adapter.on_epoch_begin()
    order = rng.permutation(len(adapter))
    seen.append([np.asarray(adapter[int(i)][1]).ravel().tolist() for i in order])
    adapter.on_epoch_end()
fresh = make_train()
passes = [[np.asarray(b[1]).ravel().tolist() for b in fresh] for _ in range(3)]

# A state saved after two batches goes on in a new adapter: the rest of that pass, then new
# passes.
first = make_train().to_keras()
first.on_epoch_begin()
head = [np.asarray(first[i][1]).ravel().tolist() for i in range(2)]
state = first.get_state()
second = make_train().to_keras()
second.set_state(state)
second.on_epoch_begin()
tail = [np.asarray(second[i][1]).ravel().tolist() for i in range(len(second))]

errors = {}
try:
    npyflow.Dataset.range(10).filter(lambda v: v > 2).batch(2).to_keras()
except ValueError as e:
    errors["unknown"] = str(e)

print(json.dumps({
    "backend": keras.backend.backend(),
    "loss": history.history["loss"],
    "val_loss": history.history["val_loss"],
    "direct_val_loss": float(direct),
    "steps": steps.steps,
    "len": len(train.to_keras()),
    "seen": seen, "passes": passes,
    "head": head, "tail": tail,
    "errors": errors,
}))
