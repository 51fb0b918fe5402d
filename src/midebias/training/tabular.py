"""`midebias train --benchmark adult|german ...`: one tabular run, written as a run folder.

    midebias train --benchmark adult --sensitive sex --method mi --set lambda=10 \\
        --epochs 20 --seed 0 --out runs/adult-mi-10

The run folder (:class:`midebias.training.run.RunDir`) holds config.json (every resolved
setting), metrics.jsonl (one line per epoch: mean training losses, validation accuracy
and demographic parity difference, seconds), metrics.json (final validation and test
metrics, :func:`midebias.evaluation.fairness.fairness_report`) and checkpoint.pt (state dicts
of encoder, head and adversary, with the settings needed to rebuild them).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from midebias.sklearn import MIFairClassifier, auto_epochs

__all__ = ["TABULAR_BENCHMARKS", "run_tabular", "summary_line"]

TABULAR_BENCHMARKS = ("adult", "german")

#: --set keys: "lambda" plus these MIFairClassifier settings.
SETTABLE = (
    "estimator",
    "conditional",
    "clip",
    "z_dim",
    "hidden",
    "weight_decay",
    "critic_steps",
    "critic_lr",
    "critic_hidden",
)


def _value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """MIFairClassifier settings from the parsed options; TrainingError on a bad one."""
    from midebias.training import TrainingError

    params: dict[str, Any] = {"method": args.method, "random_state": args.seed}
    params["include_sensitive"] = bool(getattr(args, "include_sensitive", False))
    for name in ("batch_size", "lr", "epochs", "device"):
        value = getattr(args, name, None)
        if value is not None:
            params[name] = value
    for key, text in getattr(args, "hparams", []) or []:
        value = _value(text)
        if key in ("lambda", "lambda_"):
            params["lambda_"] = float(value) if isinstance(value, int | float) else value
        elif key in SETTABLE:
            params[key] = value
        else:
            raise TrainingError(
                f"unknown setting --set {key}=...; tabular runs take "
                f"{', '.join(('lambda',) + SETTABLE)}"
            )
    if params["method"] == "vanilla":
        params.setdefault("lambda_", 0.0)
    try:
        MIFairClassifier(**params)._check_params()
    except ValueError as e:
        raise TrainingError(f"bad setting: {e}") from None
    return params


def run_tabular(args: argparse.Namespace) -> dict[str, Any]:
    """Train one method on Adult or German and write the run folder ``args.out``.

    Reads from ``args``: benchmark, sensitive, method, epochs, seed, hparams (KEY, VALUE
    pairs from --set), out; optional: include_sensitive, split_seed, batch_size, lr,
    data_dir, device, overwrite, no_audit. Returns the final metrics (also metrics.json).

    Raises:
        midebias.training.TrainingError: a bad setting (before anything is written) or a
            diverged training run.
        midebias.data.DataError: the UCI files are missing or corrupt.
        FileExistsError: ``args.out`` holds a run and ``overwrite`` is off.
    """
    from midebias.training import TrainingError
    from midebias.training.run import RunDir

    try:  # the fair extra; imported here so that the options load without it
        from midebias.datasets.tabular import SENSITIVE, load_tabular
        from midebias.evaluation.fairness import fairness_report, group_metrics
    except ImportError as e:
        raise TrainingError(
            f"tabular benchmarks need pandas and fairlearn ({e}): pip install 'midebias[fair]'"
        ) from None

    benchmark = args.benchmark
    if benchmark not in TABULAR_BENCHMARKS:
        raise TrainingError(f"{benchmark!r} is not a tabular benchmark {TABULAR_BENCHMARKS}")
    sensitive = getattr(args, "sensitive", None) or ("sex" if benchmark == "adult" else "age")
    if sensitive not in SENSITIVE[benchmark]:
        raise TrainingError(f"--sensitive {sensitive} is not available for {benchmark}")
    params = _settings(args)
    overwrite = bool(getattr(args, "overwrite", False))
    RunDir.check_free(args.out, overwrite)

    split_seed = getattr(args, "split_seed", 0) or 0
    data = load_tabular(
        benchmark,
        sensitive,
        seed=split_seed,
        data_dir=getattr(args, "data_dir", None),
        include_sensitive=params["include_sensitive"],
    )
    clf = MIFairClassifier(**params)
    epochs = clf.epochs or auto_epochs(len(data.X_train), clf.batch_size)
    clf.set_params(epochs=epochs)
    run = RunDir(args.out, overwrite=overwrite)
    config = {
        "benchmark": benchmark,
        "sensitive": sensitive,
        "split_seed": split_seed,
        "rows": {
            k: int(len(v))
            for k, v in (("train", data.X_train), ("val", data.X_val), ("test", data.X_test))
        },
        "n_features": int(data.X_train.shape[1]),
        "data_info": data.info,
        **clf.get_params(),
    }
    run.write_json("config.json", config)
    run.commit()  # only now is an earlier run in --out replaced

    start = time.perf_counter()

    def log_epoch(epoch: int, model: MIFairClassifier, record: dict) -> None:
        val = group_metrics(data.y_val, model.predict(data.X_val), data.s_val)
        run.log_epoch(
            {
                **record,
                "val_accuracy": val["accuracy"],
                "val_demographic_parity_difference": val["demographic_parity_difference"],
                "seconds": time.perf_counter() - start,
            }
        )

    try:
        clf.fit(data.X_train, data.y_train, sensitive_features=data.s_train, callback=log_epoch)
    except FloatingPointError as e:
        raise TrainingError(str(e)) from None
    train_seconds = time.perf_counter() - start

    audit = not getattr(args, "no_audit", False)
    val = fairness_report(clf, data, "val", seed=args.seed, probe=False, mi=False)
    test = fairness_report(clf, data, "test", seed=args.seed, probe=audit, mi=audit)
    metrics = {
        "benchmark": benchmark,
        "sensitive": sensitive,
        "method": clf.method,
        "lambda": clf.lambda_,
        "seed": args.seed,
        "epochs": epochs,
        "seconds_per_epoch": train_seconds / epochs,
        # The headline numbers are the test set's, under their plain names (issue 6);
        # every number is also kept with its split's prefix.
        **test,
        **{f"val_{k}": v for k, v in val.items()},
        **{f"test_{k}": v for k, v in test.items()},
    }
    run.write_json("metrics.json", metrics)
    run.save_checkpoint(
        {
            "encoder": clf.encoder_.state_dict(),
            "head": clf.head_.state_dict(),
            "adversary": {k: m.state_dict() for k, m in clf.adversary_.items()},
            "params": clf.get_params(),
            "classes": clf.classes_.tolist(),
            "sensitive_groups": clf.sensitive_groups_.tolist(),
            "feature_names": data.feature_names,
            "n_features": int(data.X_train.shape[1]),
        }
    )
    run.finish()
    return metrics


def summary_line(m: dict[str, Any]) -> str:
    """One line for the terminal from run_tabular's metrics."""
    parts = [
        f"{m['method']} (lambda {m['lambda']:g}) on {m['benchmark']}/{m['sensitive']}",
        f"(seed {m['seed']}, {m['epochs']} epochs): test accuracy {m['test_accuracy']:.3f}",
        f"DP diff {m['test_demographic_parity_difference']:.3f}",
        f"EO diff {m['test_equalized_odds_difference']:.3f}",
    ]
    if "test_sensitive_probe_accuracy" in m:
        parts.append(
            f"s-probe {m['test_sensitive_probe_accuracy']:.3f} "
            f"(majority {m['test_sensitive_majority_rate']:.3f}) MI {m['test_mi_posthoc']:.3f}"
        )
    parts.append(f"{m['seconds_per_epoch']:.1f} s/epoch")
    return " ".join(parts)
