"""`gdo-repro`: one subcommand per stage, plus `run` (the papermill chain of numbered notebooks).

Every subcommand takes `--params FILE` and any number of `--set key.sub=value` overrides, and calls
the same gdo_utils function the notebook calls. GPU stages run under `torchrun`/`accelerate launch`.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Callable

from .config import ParamsError, load_params, params_hash


def _params(args: argparse.Namespace):
    return load_params(args.params, args.set)


def _print(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def cmd_run(args):
    from .chain import run_chain

    only = [x for part in (args.only or []) for x in part.split(",") if x]
    recs = run_chain(args.params, overrides=args.set, only=only or None, force=args.force)
    for r in recs:
        state = "skipped" if r.get("skipped") else f"ok {r.get('seconds', 0):.1f}s"
        print(f"{r['notebook']}: {state}")


def cmd_validate(args):
    p = _params(args)
    _print({"params_file": args.params, "params_hash": params_hash(p), "run_dir": str(p.run_dir),
            "params": p.model_dump(mode="json")})


def cmd_toyworld(args):
    from .toyworld import generate_toyworld

    p = _params(args)
    _print(generate_toyworld(p.toyworld, p.toyworld_dir, force=args.force))


def cmd_models(args):
    from .models import ensure_models

    _print(ensure_models(_params(args)))


def cmd_pool(args):
    from .pool import run_pool_stage

    reports = run_pool_stage(_params(args), force=args.force, only=args.pool)
    _print({k: {x: v[x] for x in ("records", "qa_rows", "quarantined", "quarantine_by_reason")} for k, v in reports.items()})


def cmd_embed(args):
    from .embed import ensure_embeddings
    from .pool import GDO_POOL_NAME

    _print(ensure_embeddings(_params(args), args.pool or GDO_POOL_NAME, force=args.force))


def cmd_descriptors(args):
    from .descriptors import runner

    p = _params(args)
    if args.merge_only:
        _print(runner.merge_descriptors(p))
    elif args.extract_only:
        _print(runner.run_descriptors(p, force=args.force))
    else:
        _print(runner.run_stage(p, force=args.force))


def cmd_ofa(args):
    from . import ofa

    p = _params(args)
    if args.action == "fit":
        _print(ofa.fit(p, force=args.force))
    elif args.action == "score":
        pools = args.pool or _ofa_pools(p)
        for name in pools:
            df = ofa.score_pool(p, name, force=args.force)
            print(f"{name}: scored {int(df['scored'].sum()) if 'scored' in df else len(df)} of {len(df)}")
    elif args.action == "select":
        for name in args.pool or _ofa_pools(p):
            _print(ofa.select_pool(p, name, force=args.force))
    else:
        _print(ofa.run_all(p, force=args.force))


def _ofa_pools(p) -> list[str]:
    names = [p.pools.ofa_source.name] if p.pools.ofa_source else []
    return names + [t.name for t in p.pools.ofa_transfer]


def cmd_subsets(args):
    from . import subsets

    p = _params(args)
    if args.profile:
        for name in args.profile:
            rep = subsets.build_profile(p, name, force=args.force)
            print(f"{name}: {rep.get('size', rep.get('n_selected', '?'))} selected -> {p.stage_dir('subsets', name)}")
    else:
        reps = subsets.build_all(p, force=args.force)
        print("\n".join(f"{k}: {v.get('size', v.get('n_selected', '?'))}" for k, v in reps.items()))


def cmd_train(args):
    from . import train

    sets = list(args.set) + ([f"train.launch.config={args.launch_config}"] if args.launch_config else [])
    p = load_params(args.params, sets)
    subsets = args.subset or p.train.runs
    if args.print_launch:
        if not subsets:
            raise ParamsError(f"{args.params}: name a subset (--subset) or list train.runs")
        for s in subsets:
            print(train.print_launch(p, s, args.params, sets))
        return
    infos = train.train_runs(p, subsets, force=args.force, overrides=sets, params_file=args.params,
                             skip_missing=args.skip_missing)
    _print({k: {x: v.get(x) for x in ("finished", "n_train", "global_batch", "missing") if x in v}
            | {"checkpoints": [c["name"] for c in v.get("checkpoints", [])]} for k, v in infos.items()})


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gdo-repro", description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable, help_: str, force: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--params", required=True, help="params YAML (e.g. params/demo.yaml)")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a param, e.g. --set descriptors.batch_size=16 (repeatable)")
        if force:
            sp.add_argument("--force", action="store_true", help="recompute even when outputs match the params hash")
        sp.set_defaults(func=fn)
        return sp

    sp = add("run", cmd_run, "execute the numbered notebooks with papermill")
    sp.add_argument("--only", action="append", help="notebook numbers, e.g. --only 00,03")
    add("validate", cmd_validate, "load and print the params with their hash", force=False)
    add("toyworld", cmd_toyworld, "generate the demo toy world")
    add("models", cmd_models, "build the tiny offline models (demo) / resolve model paths", force=False)
    sp = add("pool", cmd_pool, "build the QA tables of every pool")
    sp.add_argument("--pool", action="append", help="only these pool names")
    sp = add("embed", cmd_embed, "CLIP embeddings of a pool (sharded, resumable)")
    sp.add_argument("--pool", help="pool name (default: the GDO pool)")
    sp = add("descriptors", cmd_descriptors, "GDO descriptors (run under torchrun for several ranks)")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--merge-only", action="store_true", help="only merge the ranks' parts")
    g.add_argument("--extract-only", action="store_true", help="only this rank's extraction (torchrun)")
    sp = add("ofa", cmd_ofa, "OFA selector: fit, score, select (or all)")
    sp.add_argument("action", choices=["fit", "score", "select", "all"])
    sp.add_argument("--pool", action="append", help="pool names (default: source + transfer pools)")
    sp = add("subsets", cmd_subsets, "GDO goal-preset subsets and the uniform baseline")
    sp.add_argument("--profile", action="append", help="profile name(s); default: all in params")
    sp = add("train", cmd_train, "fine-tune on subsets (train.runs), one run each; accelerate launch for >1 process")
    sp.add_argument("--subset", action="append", help="subset name(s) (default: train.runs)")
    sp.add_argument("--launch-config", help="accelerate config in params/accelerate/ (sets train.launch.config)")
    sp.add_argument("--print-launch", action="store_true", help="print the accelerate launch command and exit")
    sp.add_argument("--skip-missing", action="store_true", help="skip (with a warning) subsets whose file is absent")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from .chain import NotebookFailed
    from .pool import PoolFormatError
    from .train.families import UnknownFamilyError
    from .train.launch import LaunchError
    from .train.records import EmptySubsetError, TrainFileError

    try:
        args.func(args)
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (NotebookFailed, PoolFormatError, FileNotFoundError, UnknownFamilyError, LaunchError, TrainFileError,
            EmptySubsetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
