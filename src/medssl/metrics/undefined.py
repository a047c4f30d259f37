"""Why a metric has no value: one sentence per metric, for every place a report says
"undefined" (tables, verdicts, figure legends).

The conventions themselves live with the metrics (``metrics/classification.py``: a 0/0 is
NaN, never 0; ``metrics/segmentation.py``: the miss policy and the scaled distances); this
module only words them for a reader, so a table cell "2 undef." or a verdict "undefined"
says what happened to those runs.
"""

from __future__ import annotations

from medssl.data.records import CLASSES

_EXACT = {
    "mcc": "the split is empty",
    "accuracy": "the split is empty",
    "f1_weighted": "the split is empty",
    "loss": "the split is empty",
    "balanced_accuracy": "a class has no image in the split, so its sensitivity is 0/0",
    "f1_macro": "a class is neither in the split nor predicted, so its F1 is 0/0",
    "auroc_macro": "a class has no positive or no negative image in the split",
    "ap_macro": "a class has no image in the split",
    "expected_cost": "a class with a non-zero cost weight has no image in the split",
    "expected_cost_normalized": "a class with a non-zero cost weight has no image in the split",
    "dice": "the split holds no lesion image (the score is averaged over lesion images)",
    "iou": "the split holds no lesion image (the score is averaged over lesion images)",
    "pixel_accuracy": "the split holds no lesion image",
    "precision": "no lesion image in the split (with miss policy 'undefined': every "
    "prediction empty)",
    "recall": "the split holds no lesion image",
    "hd": "no lesion image in the split (with miss policy 'undefined': a prediction empty)",
    "hd95": "no lesion image in the split (with miss policy 'undefined': a prediction empty)",
    "hd_orig_px": "the original image size is not in the manifest",
    "hd95_orig_px": "the original image size is not in the manifest",
    "hd_mm": "the manifest has no pixel spacing (not a DICOM source) or rows and columns "
    "differ by more than 1%",
    "hd95_mm": "the manifest has no pixel spacing (not a DICOM source) or rows and columns "
    "differ by more than 1%",
}

_PER_CLASS = {
    "sensitivity": "no image of class {c} in the split (0/0)",
    "specificity": "every image of the split is of class {c} (0/0)",
    "f1": "class {c} is neither in the split nor predicted (0/0)",
    "auroc": "class {c} has no positive or no negative image in the split",
    "ap": "class {c} has no image in the split",
}


def why_undefined(metric: str) -> str:
    """The reason ``metric`` (a results.csv name: ``mcc``, ``sensitivity_benign``, ``hd_mm``,
    ...) can be undefined on a split; a generic sentence for a name not listed here."""
    if metric in _EXACT:
        return _EXACT[metric]
    prefix, _, cls = metric.rpartition("_")
    if prefix in _PER_CLASS and cls in CLASSES:
        return _PER_CLASS[prefix].format(c=cls)
    return "the metric has no value on this split (a 0/0)"


def undefined_note(metrics: list[str] | tuple[str, ...]) -> str:
    """One note for a table: "undefined: <metric>: <why>; ..." over ``metrics`` (in order,
    each once); empty when none is given."""
    seen = list(dict.fromkeys(metrics))
    return "; ".join(f"{m}: {why_undefined(m)}" for m in seen)
