"""One worker of a data-parallel job (run by test_distributed.py, several at once): builds
the shared pipeline, takes its part with distributed_batch (the world found by
npyflow.worker_info), reads, and prints what it read as one JSON line.

argv: n global_batch epochs steps [state_in_hex|-] [jax|torch PORT PROCESS_ID COUNT]
  jax: jax.distributed.initialize with a coordinator on 127.0.0.1:PORT; torch:
  torch.distributed's gloo group at tcp://127.0.0.1:PORT, read through to_torch() and a
  DataLoader
  steps: batches to read in the first epoch before saving the state (-1: to the end)
"""

import json
import sys

import numpy as np

n, global_batch, epochs, steps = (int(a) for a in sys.argv[1:5])
state_in = sys.argv[5] if len(sys.argv) > 5 else "-"
if len(sys.argv) > 6 and sys.argv[6] == "jax":
    import jax

    port, pid, count = (int(a) for a in sys.argv[7:10])
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}", num_processes=count, process_id=pid,
        initialization_timeout=60,
    )

if len(sys.argv) > 6 and sys.argv[6] == "torch":
    import torch.distributed as dist

    port, pid, count = (int(a) for a in sys.argv[7:10])
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=pid, world_size=count)

import npyflow  # noqa: E402

info = npyflow.worker_info()
assert global_batch % info.num_workers == 0, "the test gives a global batch the world divides"
ds = (
    npyflow.Dataset.range(n)
    .global_shuffle(seed=7)
    .map(lambda x: x * 10, num_parallel_calls=2)
    .distributed_batch(global_batch // info.num_workers)
)
it = iter(ds)
if state_in != "-":
    it.set_state(bytes.fromhex(state_in))
batches = []
state = None
source = it
if len(sys.argv) > 6 and sys.argv[6] == "torch":
    import torch.utils.data

    tds = ds.to_torch()
    if state_in != "-":
        tds.set_state(bytes.fromhex(state_in))
    source = iter(torch.utils.data.DataLoader(tds, batch_size=None))
for b in source:
    batches.append(np.asarray(b).tolist())
    if len(batches) == steps:
        state = it.get_state().hex()
        break
epochs_out = [batches]
for _ in range(epochs - 1):
    epochs_out.append([np.asarray(b).tolist() for b in ds])
print(json.dumps({"rank": info.worker_index, "world": info.num_workers, "source": info.source,
                  "epochs": epochs_out, "state": state, "len": len(ds)}))
