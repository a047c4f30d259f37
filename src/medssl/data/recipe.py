"""Database recipes: per-source, per-class quotas for each role (thesis tables 5.1-5.2).

A recipe is a YAML preset (``recipes/<name>.yaml``) or a user file (``docs/datasets.md``,
"Recipes"). A preset file holds one recipe, or several under ``databases:`` (the demo
builds US1, MG2 and USMG3 together), and beside them how its phantoms are made
(:class:`Preset`: ``phantom_scale``, and ``phantoms: true`` for a preset built from
phantoms unless told otherwise). Unknown keys are an error; ``to_dict`` of the resolved
recipe is saved in ``database.json``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medssl.config import from_dict, load_yaml
from medssl.data.manifest import ROLES, SPLITS
from medssl.data.records import CLASSES, MODALITIES, Record
from medssl.errors import ConfigError

RECIPE_DIR = Path(__file__).with_name("recipes")
TASKS = ("classification", "segmentation")
# The U-Net's encoder halves the image five times and its decoder doubles it back
# (medssl.models.unet): a segmentation image's side must be a multiple of 2**5.
UNET_MULTIPLE = 32
CROPS = ("none", "breast")
LABEL_CONFLICTS = ("exclude", "keep")


@dataclass
class Sizes:
    pretrain: int = 110  # thesis §5.1: pretraining images resized to 110 × 110
    finetune: int = 64  # thesis §5.1: finetuning images padded to square, resized to 64 × 64


@dataclass
class Recipe:
    name: str
    # quotas[role][source][class] = number of images
    quotas: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    # reader options per source, e.g. {"cbis_ddsm": {"bwc_as": "normal"}}
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    sizes: Sizes = field(default_factory=Sizes)
    pad_pretrain: bool = False  # thesis: pretraining images are resized without padding
    split_pretrain: tuple[float, ...] = (0.8, 0.2)  # thesis §5.1: 80/20 train/validation
    split_finetune: tuple[float, ...] = (0.6, 0.2, 0.2)  # thesis §5.1: 60/20/20
    # what the finetuning images serve; without segmentation they need no masks
    tasks: tuple[str, ...] = TASKS
    # mammograms cropped to the breast before padding (medssl.data.preprocess.breast_box)
    crop: str = "none"
    # duplicates whose labels differ: left out (both), or kept and reported
    label_conflicts: str = "exclude"

    def __post_init__(self) -> None:
        for role, per_source in self.quotas.items():
            if role not in ROLES:
                raise ConfigError(
                    f"recipe {self.name}: unknown role {role!r} in quotas; valid: {ROLES}"
                )
            for source, per_class in per_source.items():
                for cls, n in per_class.items():
                    if cls not in CLASSES:
                        raise ConfigError(
                            f"recipe {self.name}: quotas.{role}.{source}: unknown class {cls!r}; valid: {CLASSES}"
                        )
                    if not isinstance(n, int) or n < 0:
                        raise ConfigError(
                            f"recipe {self.name}: quotas.{role}.{source}.{cls} must be a count >= 0, got {n!r}"
                        )
        for key, value, valid in (
            ("crop", self.crop, CROPS),
            ("label_conflicts", self.label_conflicts, LABEL_CONFLICTS),
        ):
            if value not in valid:
                raise ConfigError(
                    f"recipe {self.name}: {key}: {value!r}; valid: {', '.join(valid)}"
                )
        self.tasks = tuple(self.tasks)
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise ConfigError(
                f"recipe {self.name}: tasks: {list(self.tasks)}; valid: a non-empty list of "
                f"{', '.join(TASKS)}"
            )
        for role in ROLES:
            size = getattr(self.sizes, role)
            if not isinstance(size, int) or size < 1:
                raise ConfigError(
                    f"recipe {self.name}: sizes.{role}: {size!r}; expected a side in pixels >= 1"
                )
        if "segmentation" in self.tasks and self.sizes.finetune % UNET_MULTIPLE:
            below = self.sizes.finetune // UNET_MULTIPLE * UNET_MULTIPLE
            near = [n for n in (below, below + UNET_MULTIPLE) if n > 0]
            raise ConfigError(
                f"recipe {self.name}: sizes.finetune: {self.sizes.finetune}; the U-Net of "
                f"segmentation needs a multiple of {UNET_MULTIPLE} (the nearest: "
                f"{' or '.join(map(str, near))}), or declare tasks: [classification]"
            )
        for role, fr in (("pretrain", self.split_pretrain), ("finetune", self.split_finetune)):
            if len(fr) != len(SPLITS[role]):
                raise ConfigError(
                    f"recipe {self.name}: split_{role} needs {len(SPLITS[role])} fractions {SPLITS[role]}"
                )

    def source_names(self) -> list[str]:
        return sorted({s for per_source in self.quotas.values() for s in per_source})

    def quota(self, role: str) -> dict[str, dict[str, int]]:
        return self.quotas.get(role, {})

    @property
    def finetune_requires_mask(self) -> bool:
        """Finetuning images need a mask when they serve segmentation."""
        return "segmentation" in self.tasks

    def without_sources(
        self, missing: set[str]
    ) -> tuple[Recipe, dict[str, dict[str, dict[str, int]]]]:
        """This recipe with the quotas of ``missing`` sources removed, and those quotas
        ({source: {role: {class: n}}}, only sources the recipe names)."""
        dropped: dict[str, dict[str, dict[str, int]]] = {}
        quotas: dict[str, dict[str, dict[str, int]]] = {}
        for role, per_source in self.quotas.items():
            for source, per_class in per_source.items():
                if source in missing:
                    dropped.setdefault(source, {})[role] = dict(per_class)
                else:
                    quotas.setdefault(role, {})[source] = dict(per_class)
        return dataclasses.replace(self, quotas=quotas), dict(sorted(dropped.items()))


def finetune_candidate(record: Record, recipe: Recipe) -> bool:
    """Whether ``record`` may serve finetuning: never a normal that shows a finding, and
    only with a mask when the recipe's finetuning requires one."""
    if record.normal_with_finding:
        return False
    return record.has_mask or not recipe.finetune_requires_mask


def preset_names() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def load_recipes(preset_or_path: str | Path) -> list[Recipe]:
    """Recipes of a preset name (``us1``, ``mg2``, ``usmg3``, ``demo``) or of a YAML file."""
    return list(load_preset(preset_or_path).recipes)


Scale = float | Mapping[str, float]
"""Phantom image-size factor: one for every source, or one per modality (``{us: .., mg: ..}``)."""


@dataclass(frozen=True)
class Preset:
    """A preset file: its recipes, and how the phantoms of its sources are made."""

    recipes: tuple[Recipe, ...]
    # key phantom_scale, a number or {us: .., mg: ..}: 1.0 writes images as large as real
    # ones, mammograms thousands of pixels tall; the demo shrinks them
    phantom_scale: Scale = 1.0
    # key phantoms: the sources without a folder are generated as phantoms by default
    # (demo, smoke: presets of synthetic data); otherwise only with --phantoms
    phantoms: bool = False


PRESET_KEYS = ("phantom_scale", "phantoms")
"""The keys of a preset file beside its recipes."""


def load_preset(preset_or_path: str | Path) -> Preset:
    """The preset of a name (``recipes/<name>.yaml``) or of a YAML file."""
    path = Path(preset_or_path)
    if not path.suffix:
        path = RECIPE_DIR / f"{preset_or_path}.yaml"
        if not path.is_file():
            raise ConfigError(
                f"unknown database preset {str(preset_or_path)!r}; valid: {preset_names()} or a .yaml file"
            )
    elif not path.is_file():
        raise ConfigError(f"recipe file {path} does not exist")
    data = load_yaml(path)
    items = data.pop("databases", None)
    scale = check_scale(data.pop("phantom_scale", 1.0), f"{path}: phantom_scale")
    phantoms = data.pop("phantoms", False)
    if not isinstance(phantoms, bool):
        raise ConfigError(f"{path}: phantoms: expected true or false, not {phantoms!r}")
    if items is None:
        return Preset((_recipe_from(data, str(path)),), scale, phantoms)
    if data:
        raise ConfigError(
            f"{path}: beside `databases:` only {' and '.join(PRESET_KEYS)} may stand, found "
            f"{sorted(data)}"
        )
    recipes = tuple(_recipe_from(item, f"{path}:databases[{i}]") for i, item in enumerate(items))
    return Preset(recipes, scale, phantoms)


def check_scale(value: Any, where: str) -> Scale:
    """A valid :data:`Scale` from config ``value`` (a number, or a mapping with exactly the
    keys ``us`` and ``mg``), each in (0, 1]; a :class:`ConfigError` naming ``where`` otherwise."""
    modalities = sorted(MODALITIES)
    if isinstance(value, Mapping):
        if sorted(value) != modalities:
            raise ConfigError(
                f"{where}: a per-modality phantom scale needs exactly the keys {modalities}, "
                f"not {sorted(value)}"
            )
        return {m: _one_scale(value[m], f"{where}: {m}") for m in modalities}
    return _one_scale(value, where)


def _one_scale(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"{where}: the phantom scale must be a number in (0, 1], not {value!r}")
    return float(value)


def describe_scale(scale: Scale) -> str:
    """``0.4`` or ``us 0.4, mg 0.3``."""
    if isinstance(scale, Mapping):
        return ", ".join(f"{m} {v:g}" for m, v in sorted(scale.items(), reverse=True))
    return f"{scale:g}"


def _recipe_from(data: dict[str, Any], where: str) -> Recipe:
    """The recipe of one YAML mapping; every error it raises names ``where`` (the file)."""
    try:
        return from_dict(Recipe, data, where=where)
    except ConfigError as e:
        if str(e).startswith(where):  # from_dict's own errors (unknown keys, types) name it
            raise
        raise ConfigError(f"{where}: {e}") from None


def demand(recipes: list[Recipe], margin: float = 0.4) -> dict[str, dict[str, int]]:
    """Images per source and class that the recipes need: the largest need of any one recipe
    (each database is built on its own), plus ``margin`` for duplicates, bad items and the
    images of patients already used in the other role (a patient never spans two roles)."""
    need: dict[str, dict[str, int]] = {}
    for recipe in recipes:
        per: dict[str, dict[str, int]] = {}
        for per_source in recipe.quotas.values():
            for source, per_class in per_source.items():
                for cls, n in per_class.items():
                    per.setdefault(source, {}).setdefault(cls, 0)
                    per[source][cls] += n
        for source, per_class in per.items():
            for cls, n in per_class.items():
                cur = need.setdefault(source, {}).get(cls, 0)
                need[source][cls] = max(cur, n)
    return {
        s: {c: int(n + max(2, round(n * margin))) for c, n in sorted(pc.items())}
        for s, pc in sorted(need.items())
    }
