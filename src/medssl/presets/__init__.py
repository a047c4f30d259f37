"""Presets: the YAML files of this folder, one loader for every stage.

``<stage>_<name>.yaml`` holds a preset of stage ``pretrain``, ``finetune`` or ``benchmark``
(partial values laid over the stage's typed defaults by the stage itself). A name may also be
the path of a YAML file. Torch-free, so the command line can check a preset name before it
imports the training stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medssl.config import load_yaml
from medssl.errors import ConfigError

FOLDER = Path(__file__).resolve().parent
STAGES = ("pretrain", "finetune", "benchmark")
DEFAULT = "medssl"
"""The pretraining and fine-tuning preset when none is named (``medssl pretrain``,
``medssl finetune`` and their functions): settings measured and sourced for ~300-1,000
images. The benchmark's presets name theirs (the thesis benchmark keeps the thesis's)."""


def preset_names(stage: str) -> list[str]:
    """The names of ``stage``'s presets, sorted."""
    _check_stage(stage)
    return sorted(p.stem.removeprefix(f"{stage}_") for p in FOLDER.glob(f"{stage}_*.yaml"))


def preset_path(stage: str, name: str | Path) -> Path:
    """The file of preset ``name`` of ``stage`` (or ``name`` itself when it is a YAML path);
    an unknown name is a ConfigError that lists the valid ones."""
    _check_stage(stage)
    text = str(name)
    if text.endswith((".yaml", ".yml")):
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigError(f"{stage} preset file {path} does not exist")
        return path
    path = FOLDER / f"{stage}_{text}.yaml"
    if not path.is_file():
        kind = {"pretrain": "pretraining", "finetune": "fine-tuning"}.get(stage, stage)
        raise ConfigError(
            f"unknown {kind} preset {text!r}; valid names: {', '.join(preset_names(stage))} "
            "(or the path of a .yaml file)"
        )
    return path


def load_preset(stage: str, name: str | Path) -> dict[str, Any]:
    """The preset's values as a dict (validated by the stage's ``from_dict``/``merge``)."""
    return load_yaml(preset_path(stage, name))


def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise ConfigError(f"preset stage {stage!r}; valid: {', '.join(STAGES)}")
