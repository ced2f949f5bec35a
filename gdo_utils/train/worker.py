"""Entry point of one training process: `accelerate launch ... -m gdo_utils.train.worker --params P --subset S`."""
from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gdo_utils.train.worker")
    ap.add_argument("--params", required=True)
    ap.add_argument("--subset", required=True)
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format=f"[rank {os.environ.get('RANK', '0')}] %(levelname)s %(name)s: %(message)s")
    from ..config import load_params
    from ..shards import close_process_group
    from .run import run_worker

    try:
        run_worker(load_params(args.params, args.set), args.subset)
    except BaseException:
        close_process_group(meet=False)   # the other ranks may never reach a barrier
        raise
    close_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
