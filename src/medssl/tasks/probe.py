"""Frozen-encoder probes: a linear and a kNN classifier on the features of a frozen encoder.

How good a representation is, read without fine-tuning it: the protocol lightly, solo-learn
and MedMNIST+ report beside fine-tuning. The encoder (pretrained, or randomly initialised for
the baseline every probe is compared with) embeds every finetuning image once, in eval mode
(:func:`medssl.api.embed`, the kNN monitor's reading); the features are cached per encoder
and database (:func:`encoder_features`), so every split, fold, label fraction and probe of
an encoder reads the same array. Then:

- **linear** (:func:`fit_linear`): scikit-learn's ``LogisticRegression`` on standardised
  features (the scaler fitted on the train split), its inverse regularisation ``C`` chosen
  from ``c_grid`` by validation MCC;
- **knn** (:func:`fit_knn`): lightly's ``knn_predict`` (cosine similarity of L2-normalised
  features, temperature-weighted votes; Wu et al. 2018), ``k`` chosen from ``k_grid`` by
  validation MCC. Its probabilities are the one-hot top-1 vote (``knn_predict`` ranks the
  classes, it does not score them), so its ``loss`` is recorded as NaN (undefined).

The hyper-parameter is chosen on train and validation only: :func:`fit_linear` and
:func:`fit_knn` never receive the test split; the chosen probe is then applied to every split
(:func:`probe_predictions`). Ties go to the first value of the grid (``c_grid`` ascending:
the most regularised; ``k_grid`` ascending). A probe run writes what a fine-tuning run writes
for the report: ``config.yaml``, ``results.csv`` (RESULT_COLUMNS, the classification task's
metrics), ``predictions_<split>.npz`` and ``done.json`` (the chosen value and every
validation score).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from medssl.artifacts import write_bytes, write_csv, write_json, write_text
from medssl.config import to_dict
from medssl.data.database import Database
from medssl.data.labelled import finetune_splits
from medssl.data.records import CLASSES
from medssl.errors import ConfigError, DataError
from medssl.metrics.classification import DEFAULT_COST_MATRIX, confusion_matrix, log_loss, mcc
from medssl.runfiles import CONFIG, DONE, RESULT_COLUMNS, RESULTS

PROBES = ("linear", "knn")
"""The frozen-encoder probes (classification)."""


@dataclass
class ProbeConfig:
    probe: str = "linear"  # linear | knn
    seed: int = 0  # seeds the random-init encoder (the baseline) and the solver
    # linear: LogisticRegression C tried, ascending (scikit-learn's default C = 1 in the middle)
    c_grid: list[float] = field(default_factory=lambda: [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0])
    max_iter: int = 2000  # lbfgs iterations (standardised features converge well below)
    # knn: neighbours tried, ascending (lightly's knn_predict; values above the train split's
    # size are skipped); temperature of the votes (lightly's default knn_t)
    k_grid: list[int] = field(default_factory=lambda: [1, 3, 5, 10, 20, 50])
    temperature: float = 0.1
    batch_size: int = 256  # images per forward pass when embedding
    device: str = "auto"  # where the encoder embeds (auto: a GPU when there is one)
    cost_matrix: list[list[float]] = field(
        default_factory=lambda: [list(r) for r in DEFAULT_COST_MATRIX]
    )


def check_probe_config(cfg: ProbeConfig) -> ProbeConfig:
    if cfg.probe not in PROBES:
        raise ConfigError(f"probe: {cfg.probe!r} is not one of {', '.join(PROBES)}")
    if not cfg.c_grid or min(cfg.c_grid) <= 0:
        raise ConfigError(f"c_grid: expected positive values of C, got {cfg.c_grid}")
    if not cfg.k_grid or min(cfg.k_grid) < 1:
        raise ConfigError(f"k_grid: expected neighbour counts >= 1, got {cfg.k_grid}")
    return cfg


# ----------------------------------------------------------------------------- the probes


@dataclass(frozen=True)
class FittedProbe:
    """A probe chosen on validation: ``predict(x (N, D)) -> probs (N, K)``."""

    probe: str
    param: str  # "C" or "k"
    value: float
    val_scores: dict[str, float]  # grid value -> validation MCC (NaN: undefined)
    predict: Callable[[np.ndarray], np.ndarray]


def _mcc(y: np.ndarray, probs: np.ndarray) -> float:
    return float(mcc(confusion_matrix(y, probs.argmax(1), len(CLASSES))))


def _choose(scores: dict[float, float]) -> float:
    """The first grid value with the highest defined score (the first when none is defined)."""
    defined = {v: s for v, s in scores.items() if s == s}
    if not defined:
        return next(iter(scores))
    best = max(defined.values())
    return next(v for v, s in defined.items() if s == best)


def _check_train(y: np.ndarray) -> None:
    if len(np.unique(y)) < 2:
        raise DataError(
            f"the train split holds {len(y)} image(s) of {len(np.unique(y))} class: a probe "
            "needs at least two classes; use a larger label fraction or database"
        )


def fit_linear(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    cfg: ProbeConfig,
) -> FittedProbe:
    """Logistic regression on standardised features, C by validation MCC.

    x: float (N, D) features; y: int (N,) class indices in CLASSES order. The returned
    probabilities have one column per class of CLASSES (0 for a class absent from train).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _check_train(train_y)

    def fit(c: float) -> Callable[[np.ndarray], np.ndarray]:
        model = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=c, max_iter=cfg.max_iter, random_state=cfg.seed),
        ).fit(train_x, train_y)
        cols = model.classes_.astype(np.int64)

        def predict(x: np.ndarray) -> np.ndarray:
            out = np.zeros((len(x), len(CLASSES)), dtype=np.float64)
            if len(x):
                out[:, cols] = model.predict_proba(x)
            return out

        return predict

    fitted = {float(c): fit(float(c)) for c in cfg.c_grid}
    scores = {c: _mcc(val_y, f(val_x)) for c, f in fitted.items()}
    c = _choose(scores)
    return FittedProbe("linear", "C", c, {repr(k): v for k, v in scores.items()}, fitted[c])


def fit_knn(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    cfg: ProbeConfig,
) -> FittedProbe:
    """Cosine kNN (lightly's ``knn_predict`` on L2-normalised features), k by validation MCC.

    x: float (N, D); y: int (N,). Probabilities: the one-hot top-1 class (module docstring).
    """
    import torch
    import torch.nn.functional as F
    from lightly.utils.benchmarking import knn_predict

    _check_train(train_y)
    bank = F.normalize(torch.as_tensor(train_x, dtype=torch.float32), dim=1).T  # (D, N)
    bank_y = torch.as_tensor(train_y, dtype=torch.int64)
    ks = [int(k) for k in cfg.k_grid if k <= len(train_y)] or [len(train_y)]

    def predictor(k: int) -> Callable[[np.ndarray], np.ndarray]:
        def predict(x: np.ndarray) -> np.ndarray:
            out = np.zeros((len(x), len(CLASSES)), dtype=np.float64)
            if len(x):
                q = F.normalize(torch.as_tensor(x, dtype=torch.float32), dim=1)
                top = knn_predict(q, bank, bank_y, len(CLASSES), k, cfg.temperature)[:, 0]
                out[np.arange(len(x)), top.numpy()] = 1.0
            return out

        return predict

    scores = {float(k): _mcc(val_y, predictor(k)(val_x)) for k in ks}
    k = int(_choose(scores))
    return FittedProbe("knn", "k", k, {str(int(v)): s for v, s in scores.items()}, predictor(k))


FIT = {"linear": fit_linear, "knn": fit_knn}


def probe_predictions(
    cfg: ProbeConfig, features: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]
) -> tuple[FittedProbe, dict[str, np.ndarray]]:
    """Choose the probe on train and val, then predict every split of ``features``.

    features / labels: split name -> (N, D) / (N,). The test split (and any other but train
    and val) is read only after the probe is chosen. Returns the probe and split -> probs.
    """
    fitted = FIT[cfg.probe](features["train"], labels["train"], features["val"], labels["val"], cfg)
    return fitted, {s: fitted.predict(features[s]) for s in features}


# ----------------------------------------------------------------------------- features


def encoder_features(
    db: Database,
    init: str | os.PathLike,
    *,
    seed: int,
    cache: str | os.PathLike | None = None,
    batch_size: int = 256,
    device: str = "auto",
) -> np.ndarray:
    """float32 features (N, 512) of every finetuning image (``finetune.npy`` row order).

    ``init``: an ``encoder.pt`` or ``"random"`` (a ResNet-18 initialised under
    ``torch.manual_seed(seed)``). With ``cache`` (a folder), the features are read from or
    written to ``<cache>/<key>.npy``, key = the encoder (its file's content hash, or random
    and the seed) and the database checksum, so they are computed once per encoder.
    """
    import torch

    from medssl.api import embed
    from medssl.models.encoder import build_encoder
    from medssl.models.weights import load_weights

    if str(init) == "random":
        who = f"random-s{seed}"
    else:
        who = hashlib.sha1(Path(init).read_bytes()).hexdigest()[:16]
    key = hashlib.sha1(f"{who}|{db.checksum}".encode()).hexdigest()[:16]
    file = Path(cache) / f"{key}.npy" if cache is not None else None
    if file is not None and file.is_file():
        return np.load(file)
    torch.manual_seed(seed)
    encoder = build_encoder()
    if str(init) != "random":
        load_weights(init, encoder)
    use_cuda = device != "cpu" and torch.cuda.is_available()
    encoder = encoder.to("cuda" if use_cuda else "cpu").eval()
    images = db.arrays["finetune"]
    feats = embed(encoder, np.array(images), size=images.shape[-1], batch_size=batch_size)
    if file is not None:
        buf = io.BytesIO()
        np.save(buf, feats)
        write_bytes(file, buf.getvalue())
    return feats


# ----------------------------------------------------------------------------- the run


def run_probe(
    database: Database | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    config: ProbeConfig,
    init: str | os.PathLike = "random",
    init_name: str | None = None,
    fold: int | None = None,
    split_override: Any = None,
    run_id: str | None = None,
    cache: str | os.PathLike | None = None,
    device: str = "auto",
) -> Path:
    """Probe one encoder on a database's classification splits; return the run folder.

    ``split_override`` as :func:`medssl.data.labelled.finetune_splits` (folds, label
    fractions); ``cache``: the features folder (:func:`encoder_features`).
    """
    from medssl.tasks.classify import ClassificationTask
    from medssl.tasks.finetune import FinetuneConfig

    cfg = check_probe_config(config)
    db = database if isinstance(database, Database) else Database.load(database)
    out = Path(out_dir)
    if (out / DONE).is_file():
        raise ConfigError(
            f"{out} already holds a finished probe run ({DONE}); choose another --out"
        )
    splits, _ = finetune_splits(
        db, needs_masks=False, split_override=split_override, task=f"the {cfg.probe} probe"
    )
    name = init_name or ("random" if str(init) == "random" else str(init))
    run_id = run_id or f"{cfg.probe}-{db.name}-{name}-s{cfg.seed}"
    facts = {
        "run_id": run_id, "task": "classification", "evaluation": cfg.probe,
        "database": db.name, "database_checksum": db.checksum, "init": str(init),
        "init_name": name, "seed": cfg.seed, "fold": fold,
        "split_sizes": {s: len(d) for s, d in splits.items()},
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    resolved = {"run": facts, "probe": to_dict(cfg)}
    write_text(out / CONFIG, yaml.safe_dump(resolved, sort_keys=False))
    feats = encoder_features(
        db, init, seed=cfg.seed, cache=cache, batch_size=cfg.batch_size, device=device
    )
    present = {s: d for s, d in splits.items() if len(d)}
    fitted, probs = probe_predictions(
        cfg,
        {s: feats[d.rows] for s, d in present.items()},
        {s: d.labels for s, d in present.items()},
    )
    task = ClassificationTask(FinetuneConfig(cost_matrix=cfg.cost_matrix))
    keys = {"run_id": run_id, "task": "classification", "database": db.name, "init": name}
    keys.update(seed=cfg.seed, fold="" if fold is None else fold)
    rows = []
    for s, split in present.items():
        metrics = task.metrics(split, probs[s], float("nan"))
        if cfg.probe == "linear":  # the probe's own cross-entropy; hard kNN votes have none
            metrics["loss"] = log_loss(split.labels, probs[s])
        rows += [{**keys, "split": s, "metric": k, "value": float(v)} for k, v in metrics.items()]
        task.save_predictions(out, s, split, probs[s])
    write_csv(out / RESULTS, rows, RESULT_COLUMNS)
    write_json(
        out / DONE,
        {
            "run_id": run_id, "probe": cfg.probe, "param": fitted.param, "value": fitted.value,
            "val_mcc": fitted.val_scores, "split_sizes": facts["split_sizes"],
        },
    )  # fmt: skip
    return out
