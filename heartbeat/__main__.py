"""Command line: python -m heartbeat {predict,train,evaluate,serve} ..."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cmd_predict(args) -> int:
    from .batch import find_audio, run
    if args.out:
        import time
        t0 = time.perf_counter()
        counts = run(args.files, Path(args.out), model_path=args.model, workers=args.workers, cluster=args.cluster,
                     send_bytes=args.send_bytes)
        seconds = time.perf_counter() - t0
        print(f"{counts['judged']} files judged in {seconds:.1f} s ({counts['judged'] / max(seconds, 1e-9):.0f} files/s), "
              f"{counts['errors']} could not be judged, {counts['skipped']} already in {args.out}")
        return 0
    from threadpoolctl import threadpool_limits
    from .predict import predict_files
    from .words import one_line
    threadpool_limits(1)    # as the app and the batch workers: BLAS's thread pool doubled the CPU of an answer
    files = find_audio(args.files)
    failures = 0
    for result in predict_files(files, model_path=args.model):
        failures += "error" in result
        print(json.dumps(result) if args.json else one_line(result), flush=True)
    return 1 if failures and failures == len(files) else 0


def cmd_train(args) -> int:
    from .datasets import load_table, select
    from .recipes import RECIPES, SHIPPED_RECIPE
    from .model import save_bundle
    from .train import TrainSettings, train_model
    table = select(load_table(args.data), args.databases, ["normal", "abnormal"])
    if args.limit:   # a smoke run: a few recordings of each label
        import pandas as pd
        table = pd.concat([g.sample(min(len(g), args.limit // 2), random_state=0) for _, g in table.groupby("label")])
    args.recipe = args.recipe or SHIPPED_RECIPE
    if args.recipe not in RECIPES:
        raise SystemExit(f"unknown recipe {args.recipe!r}: choose one of {', '.join(RECIPES)}")
    cfg, settings = RECIPES[args.recipe]
    overrides = {k: v for k, v in (("epochs", args.epochs), ("windows_per_epoch", args.windows_per_epoch),
                                   ("augment_copies", args.augment_copies), ("seed", args.seed)) if v is not None}
    settings = TrainSettings(**(settings.to_dict() | overrides))
    trained = train_model(table, cfg, settings)
    trained.bundle.info["recipe"] = args.recipe
    if args.cut_from:     # the referral cut chosen for screening on unseen devices, not on the training ones
        from .screening import lodo_predictions, shipped_cut
        chosen = shipped_cut(lodo_predictions(args.cut_from))
        trained.bundle.info |= {"fitted_threshold": trained.bundle.threshold, "cut_note": chosen.pop("note"),
                                "screening_cut": chosen | {"from": str(args.cut_from)}}
        trained.bundle.threshold = chosen["cut"]
    out = save_bundle(trained.keras_model, trained.bundle, args.out)
    (out / "history.json").write_text(json.dumps(trained.history, indent=2))
    print(f"saved {out} ({(out / 'model.tflite').stat().st_size / 1024:.0f} KB)")
    return 0


def cmd_evaluate(args) -> int:
    from .datasets import load_table
    from .evaluate import cross_device, ensemble, run_all
    if args.ensemble:
        ensemble(Path(args.out), args.ensemble)
        print((Path(args.out) / "cross_device.md").read_text())
        return 0
    if args.cross_device:
        cross_device(load_table(args.data), Path(args.out), recipes=args.recipes, protocols=args.protocols,
                     folds=args.folds, seed=args.seed, held_out=args.held_out,
                     overlays=args.overlays)
        print((Path(args.out) / "cross_device.md").read_text())
        return 0
    results = run_all(load_table(args.data), Path(args.out), recipes=args.recipes, folds=args.folds,
                      epochs=args.epochs)
    print((Path(args.out) / "results.md").read_text())
    return 0 if results else 1


def cmd_report(args) -> int:
    from .report import build
    print(f"wrote {build(args.data, Path(args.out), model_path=args.model)}")
    return 0


def cmd_serve(args) -> int:
    from .serve import main as serve
    return serve(args.rest)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="heartbeat", description="Heart-sound screening: normal, abnormal "
                                     "or no heartbeat. A screening aid, not a diagnosis.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="judge recordings (files or folders); one line (or JSON object) per file")
    p.add_argument("files", nargs="+", help="audio files, or folders searched recursively")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--out", help="batch mode: write results to this .csv, .jsonl or .parquet on every core; resumable")
    p.add_argument("--cluster", help="batch mode on a Dask cluster: the scheduler's address (tcp://HOST:8786)")
    p.add_argument("--send-bytes", action="store_true", help="with --cluster: send file contents to the workers "
                   "(when they cannot read the paths)")
    p.add_argument("--workers", type=int, help="batch processes (default: one per core)")
    p.add_argument("--model", help="model bundle folder (default: the bundled model)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("train", help="train a model bundle on the labelled recordings")
    p.add_argument("--out", default="models/heartbeat")
    p.add_argument("--data", help="data root (default: $HEARTBEAT_DATA or ../shared/data)")
    p.add_argument("--databases", nargs="+", default=None, help="sub-databases to train on (default: all)")
    p.add_argument("--recipe", help="a recipe of the ablation (heartbeat.recipes.RECIPES; default: the bundled "
                   "model's, heartbeat.recipes.SHIPPED_RECIPE)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--windows-per-epoch", type=int)
    p.add_argument("--augment-copies", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--limit", type=int, help="smoke run: train on this many recordings only")
    p.add_argument("--cut-from", help="the referral cut from this recipe's leave-one-database-out predictions "
                   "(reports/runs/RECIPE): sensitivity 0.85 on unseen devices, heartbeat.screening")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="every protocol (CV, leave-one-database-out, external, leaky) -> reports/")
    p.add_argument("--out", default="reports")
    p.add_argument("--data")
    p.add_argument("--recipes", nargs="+", default=["ours", "baseline"])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--cross-device", action="store_true", help="all nine databases: leave-one-database-out and "
                   "grouped CV per recipe, resumable per fold (reports/cross_device.md)")
    p.add_argument("--protocols", nargs="+", default=["lodo", "cv"], choices=["lodo", "cv"])
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int, help="with --cross-device: the recipes with this seed, saved as RECIPE-seedN")
    p.add_argument("--held-out", nargs="+", metavar="DB", help="with --cross-device: only these databases' "
                   "leave-one-out folds (e.g. the seven audible-disease ones)")
    p.add_argument("--overlays", action="store_true", help="with --cross-device: also score each held-out database's "
                   "recordings with speech and movement laid over them (runs/RECIPE/overlay_DB.csv)")
    p.add_argument("--ensemble", nargs="+", metavar="RECIPE", help="leave-one-database-out of these finished "
                   "--cross-device runs averaged (reports/runs/<recipe>), as one more ablation row")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("report", help="dataset report: labels, durations, rates, gate pass rates (PNG + Markdown)")
    p.add_argument("data", nargs="?", help="data root (default: $HEARTBEAT_DATA or ../shared/data)")
    p.add_argument("--out", default="report")
    p.add_argument("--model", help="also score this model bundle per database")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("serve", help="start the web app (same options as app.py: --host, --port, --model, --share)")
    p.set_defaults(func=cmd_serve)

    # The app's own options pass through to it unchanged; any other command takes no unknown option.
    args, args.rest = parser.parse_known_args(argv)
    if args.rest and args.func is not cmd_serve:
        parser.error(f"unrecognized arguments: {' '.join(args.rest)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
