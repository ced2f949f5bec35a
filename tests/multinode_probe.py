"""Run under `torchrun --nproc_per_node 2`: each process plays one node of a multi-node run (node rank = RANK).

Node 1 must only wait for node 0's marker (it may neither delete nor prepare); then both train, and the model
must be loaded after the process group exists. Writes <report_dir>/rank<R>.json with what each process saw.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(params_file: str, subset: str, report_dir: str) -> None:
    import torch.distributed as dist

    from gdo_utils.config import load_params
    from gdo_utils.train import run

    rank = int(os.environ["RANK"])
    seen: dict = {"rank": rank}
    if rank != 0:
        def refuse(*a, **k):
            raise AssertionError("a node other than 0 deleted or prepared the run folder")
        run.shutil.rmtree = refuse
        run.prepare = refuse
    else:
        time.sleep(3)   # node 1 starts first and has to wait
    params = load_params(params_file)
    plan = run.plan_run(params, subset, check_launch=False)
    t0 = time.time()
    info = run.prepare_shared(plan, run.run_status(plan), node_rank=rank, poll_s=0.2)
    seen.update(waited_s=time.time() - t0, n_train=info["n_train"])
    load = run.load_model

    def load_and_record(p):
        seen["group_at_load"] = dist.is_available() and dist.is_initialized()
        seen["world_at_load"] = dist.get_world_size() if seen["group_at_load"] else 1
        return load(p)

    run.load_model = load_and_record
    run.run_worker(params, subset)
    Path(report_dir, f"rank{rank}.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    main(*sys.argv[1:4])
