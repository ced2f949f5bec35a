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
import traceback
from typing import Callable

from .config import ParamsError, load_params, params_hash
from .logconf import configure_logging


def _params(args: argparse.Namespace):
    return load_params(args.params, args.set)


def _print(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def cmd_run(args):
    from .chain import run_chain

    only = [x for part in (args.only or []) for x in part.split(",") if x]
    from .registry import notebooks_dir

    recs = run_chain(args.params, overrides=args.set, only=only or None, force=args.force,
                     notebooks_dir=notebooks_dir(args.notebooks))
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
    from .ofa.training import training_sets_table as ofa_training_table
    from .ofa.training import write_all_training_sets, write_training_sets

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
            print(ofa_training_table({name: write_training_sets(p, name, force=args.force)}).to_string())
    else:
        _print(ofa.run_all(p, force=args.force))
        print(ofa_training_table(write_all_training_sets(p, force=args.force)).to_string())


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


def cmd_import_metrics(args):
    from .descriptors.release_metrics import import_metrics
    from .pool import GDO_POOL_NAME, run_pool_stage

    p = _params(args)
    run_pool_stage(p, only=[GDO_POOL_NAME])          # the GDO pool the metrics are joined to (skipped when current)
    rep = import_metrics(p, args.file)
    _print({k: v for k, v in rep.items() if not k.endswith("_listed")})


def cmd_export(args):
    from .subsets.export import export_subset

    p = _params(args)
    d = p.stage_dir("subsets", args.subset)
    if not (d / "train.jsonl").is_file():
        from .catalog import subset_catalog

        known = [r["subset"] for r in subset_catalog(p) if r["built"]]
        raise FileNotFoundError(f"subset {args.subset!r} has no {d / 'train.jsonl'}; built subsets: {known}")
    out = export_subset(d, args.format, extract=args.extract_frames, frames_root=p.stage_dir("frames"),
                        out_path=args.out, force=args.force)
    recipe = _export_recipe(p, args, out)
    if recipe:
        print(f"trainer recipe: {recipe.resolve()}", file=sys.stderr)
    print(out.resolve())


def _export_recipe(p, args, out):
    """The trainer's recipe beside an ms-swift / LLaMA-Factory export (gdo_utils.export_recipes)."""
    from .export_recipes import write_recipe
    from .subsets.export import llamafactory_dataset_name, normalise_format
    from .train.run import base_model_of, run_config

    cfg = run_config(p, args.subset)
    name = llamafactory_dataset_name(p.stage_dir("subsets", args.subset), args.out)
    return write_recipe(normalise_format(args.format), out, cfg, base_model_of(p, cfg), name,
                        p.stage_dir("external_train", name))


def cmd_list(args):
    from . import registry

    if args.what == "profiles":
        from .subsets.profiles import available_profiles, profiles_dir

        d = profiles_dir(_params(args)) if args.params else registry.default_profiles_dir()
        for name in available_profiles(d):
            print(f"{name}\t{d / (name + '.yaml')}")
    elif args.what == "notebooks":
        for nb in registry.list_notebooks(args.notebooks):
            print(nb)
    elif args.what == "recipes":
        from .train.recipes import recipe_file, recipe_names

        for name in recipe_names():
            print(f"{name}\t{recipe_file(name)}")
    else:
        if not args.params:
            raise FileNotFoundError("gdo-repro list subsets needs --params (the run whose subsets to list)")
        from .catalog import subset_catalog

        for r in subset_catalog(_params(args)):
            print(f"{r['subset']}\t{r['kind']}\t{'built' if r['built'] else 'not built'}\t{r['rows'] if r['built'] else ''}\t{r['path']}")


def cmd_evaluate(args):
    from .evaluate import run_stage

    p = _params(args)
    if args.write_lmms_tasks:
        from .evaluate.lmms.tasks import write_lmms_tasks

        _print(write_lmms_tasks(p, args.write_lmms_tasks))
        return
    if args.ingest:
        from .evaluate.lmms.ingest import ingest_folder

        _print(ingest_folder(p, args.ingest, args.subset, args.checkpoint, global_batch=args.global_batch))
        return
    if args.engine == "lmms-eval":
        from .evaluate.lmms.run import run_lmms_engine

        _print(run_lmms_engine(p, args.run_dir, dry_run=args.dry_run))
        return
    report = run_stage(p, run_dirs=args.run_dir, force=args.force)
    if p.evaluate.image.benchmarks:
        from .evaluate.image.stage import run_image_stage

        report["image_suite"] = run_image_stage(p, run_dirs=args.run_dir)
    _print(report)


def cmd_report(args):
    from .report import build_report

    rep = build_report(_params(args), mode=args.mode, sweep=args.sweep, force=args.force)
    print(f"{rep.mode} mode: {len(rep.tables)} tables, {len(rep.figures)} figures -> {rep.path}")
    for name, (filled, total) in rep.filled.items():
        print(f"  {name}: run fills {filled} of {total} cells")
    for n in rep.notes:
        print(f"  note: {n}")


def cmd_assemble_llava(args):
    from .train.llava import assemble_stage

    _print(assemble_stage(_params(args), force=args.force))


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


def _verbose(sp: argparse.ArgumentParser) -> None:
    """`-v` after the subcommand too (SUPPRESS: an absent subcommand flag keeps the top-level value)."""
    sp.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gdo-repro", description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging (also accepted after the subcommand)")
    sub = ap.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable, help_: str, force: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        _verbose(sp)
        sp.add_argument("--params", required=True, help="params YAML (e.g. params/demo.yaml)")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a param, e.g. --set descriptors.batch_size=16 (repeatable)")
        if force:
            sp.add_argument("--force", action="store_true", help="recompute even when outputs match the params hash")
        sp.set_defaults(func=fn)
        return sp

    sp = add("run", cmd_run, "execute the numbered notebooks with papermill")
    sp.add_argument("--only", action="append", help="notebook numbers, e.g. --only 00,03")
    sp.add_argument("--notebooks", help="folder of the numbered notebooks (default: ./notebooks in a checkout, "
                                        "else the copies installed with the package)")
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
    sp = add("import-metrics", cmd_import_metrics, "import the GDO release's metrics.jsonl as the run's descriptors",
             force=False)
    sp.add_argument("file", help="the release's merged metrics JSONL (e.g. outputs/metrics/sixd_metrics_merged.jsonl)")
    sp = add("export", cmd_export, "write a built subset for a trainer (kit, ms-swift, llama-factory, llava)",
             force=False)
    sp.add_argument("--subset", required=True, help="subset name, e.g. temp_plus, uniform, ofa_llava665k "
                                                   "(see `gdo-repro list subsets`)")
    sp.add_argument("--format", required=True, choices=["kit", "ms-swift", "llama-factory", "llava"])
    sp.add_argument("--extract-frames", action="store_true",
                    help="decode the chosen frames of mp4 rows to PNG files under outputs/<run>/frames/")
    sp.add_argument("--out", help="output file (default: beside the subset's train.jsonl); llama-factory: its "
                                  "stem names the dataset_info.json entry")
    sp.add_argument("--force", action="store_true", help="llama-factory: replace a dataset_info.json entry of the same name")
    sp = sub.add_parser("list", help="list goal profiles, training recipes, subsets of a run, or the notebooks `run` executes")
    _verbose(sp)
    sp.add_argument("what", choices=["profiles", "recipes", "subsets", "notebooks"])
    sp.add_argument("--params", help="params YAML (needed for subsets; for profiles: its subsets.profiles_dir)")
    sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    sp.add_argument("--notebooks", help="notebook folder (for `list notebooks`)")
    sp.set_defaults(func=cmd_list)
    sp = add("evaluate", cmd_evaluate, "every checkpoint of training runs on the video benchmarks (torchrun for ranks)")
    sp.add_argument("--run-dir", action="append", metavar="outputs/<run>/train/<subset>",
                    help="a training-run folder (repeatable); default: the runs in evaluate.runs, else all found")
    sp.add_argument("--engine", choices=["kit", "lmms-eval"], default="kit",
                    help="kit: the built-in engine; lmms-eval: write (and, when installed, run) its launch commands")
    sp.add_argument("--dry-run", action="store_true", help="lmms-eval engine: only write the commands")
    sp.add_argument("--write-lmms-tasks", metavar="DIR",
                    help="write the benchmarks as lmms-eval task folders (YAML + utils.py + docs) for --include_path")
    sp.add_argument("--ingest", metavar="LMMS_OUTPUT_DIR", help="ingest an lmms-eval output folder into eval/ (C3)")
    sp.add_argument("--subset", help="--ingest: the subset (training run) the folder belongs to")
    sp.add_argument("--checkpoint", help="--ingest: checkpoint name (default: from the model name, else base)")
    sp.add_argument("--global-batch", type=int, help="--ingest: the run's global batch (checkpoint-N is an optimizer "
                    "step: samples seen = N x this), when no args.json of the run is found")
    sp = add("report", cmd_report, "paper tables and figures (reference: published numbers; run: this run beside them)")
    sp.add_argument("--mode", choices=["auto", "reference", "run"], default=None,
                    help="default: params report.mode (auto: run when the trajectory exists, else reference)")
    sp.add_argument("--sweep", action="store_true", help="run the OFA selection over report.sweep's K x budget grid")
    add("assemble-llava", cmd_assemble_llava, "assemble the OFA starting model (LLaVA-1.5 stage 2: CLIP ViT-L/14-336 "
        "+ Vicuna-7B-v1.5 + the stage-1 projector) from params assemble_llava")
    sp = add("train", cmd_train, "fine-tune on subsets (train.runs), one run each; accelerate launch for >1 process")
    sp.add_argument("--subset", action="append", help="subset name(s) (default: train.runs)")
    sp.add_argument("--launch-config", help="accelerate config in params/accelerate/ (sets train.launch.config)")
    sp.add_argument("--print-launch", action="store_true", help="print the accelerate launch command and exit")
    sp.add_argument("--skip-missing", action="store_true", help="skip (with a warning) subsets whose file is absent")
    return ap


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that mean bad input, printed as one line (imported only when a command fails: the report
    and train packages pull in matplotlib, seaborn and torch, seconds of start-up for every command)."""
    from .chain import NotebookFailed
    from .descriptors.release_metrics import MetricsImportError
    from .evaluate.types import BenchmarkFormatError, UnknownBenchmarkError
    from .evaluate.lmms.folder import LmmsFolderError
    from .pool import PoolFormatError
    from .report.trajectory import TrajectoryError
    from .score import ScoreInputError
    from .subsets.context import SubsetInputError
    from .train.families import UnknownFamilyError
    from .train.launch import LaunchError
    from .train.data import BadRowError
    from .train.llava import AssemblyError
    from .train.recipes import RecipeError
    from .train.records import EmptySubsetError, TrainFileError
    from .trainfile import ContractError, ExportError

    return (NotebookFailed, PoolFormatError, FileNotFoundError, MetricsImportError, ScoreInputError,
            SubsetInputError, ContractError, ExportError, TrajectoryError, UnknownFamilyError, LaunchError,
            TrainFileError, EmptySubsetError, BenchmarkFormatError, UnknownBenchmarkError, BadRowError,
            RecipeError, AssemblyError, LmmsFolderError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from .shards import close_process_group

    done = False
    try:
        args.func(args)
        done = True
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - user errors print one line, everything else raises
        if not isinstance(exc, _user_errors()):
            raise
        if args.verbose:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        # under torchrun every rank that finished meets here, then the gloo / NCCL group is closed (a failed
        # rank closes without waiting: the others may never arrive)
        close_process_group(meet=done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
