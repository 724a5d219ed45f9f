"""The method presets: each builds its loss, its LightningCLI form instantiates the same loss, the documented
tables list exactly the presets with their values, and the older spellings resolve."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonargparse import ArgumentParser
from torch import nn

import lightning_kd
from lightning_kd import presets
from lightning_kd.losses import DIVERGENCES
from lightning_kd.objective import DistillationLoss
from lightning_kd.presets import ALIASES, PRESETS, Preset, create_loss, get_preset
from lightning_kd.temperature import CurriculumTemperature, FixedTemperature, MaxLogitTemperature
from lightning_kd.weighting import LossWeights

CONCEPTS = Path(__file__).resolve().parents[1] / "docs" / "concepts.md"
POLICIES = {"curriculum": CurriculumTemperature, "max_logit": MaxLogitTemperature}


def _settings(module: nn.Module) -> dict[str, Any]:
    """A module's class, the constructor arguments it keeps under their own names, and its tensors."""
    names = [name for name in inspect.signature(type(module).__init__).parameters if name != "self"]
    kept = {name: getattr(module, name) for name in names if hasattr(module, name)}
    tensors = {key: value.tolist() for key, value in module.state_dict().items()}
    return {"class": type(module), **kept, "tensors": tensors}


def describe(loss: DistillationLoss) -> dict[str, Any]:
    """Everything that makes two losses compute the same: divergence, pre-process, temperature, weights."""
    return {
        "divergence": _settings(loss.divergence),
        "preprocess": loss.preprocess_name,
        "temperature": None if loss.temperature is None else _settings(loss.temperature),
        "weights": loss.weights,
    }


# --------------------------------------------------------------------------------------------------------
# Every preset builds its loss, and its LightningCLI form builds the same one.
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_builds_the_loss_it_describes(name: str) -> None:
    preset = PRESETS[name]
    loss = preset.loss()
    assert isinstance(loss, DistillationLoss)
    assert type(loss.divergence).__name__ == DIVERGENCES[preset.divergence].__name__
    for key, value in preset.divergence_kwargs.items():
        assert getattr(loss.divergence, key) == value, key
    assert loss.preprocess_name == preset.preprocess
    if preset.temperature is None:
        assert loss.temperature is None
    elif isinstance(preset.temperature, str):
        assert type(loss.temperature) is POLICIES[preset.temperature]
        for key, value in preset.temperature_kwargs.items():
            assert getattr(loss.temperature, key) == value, key
        assert preset.loss().temperature is not loss.temperature  # a fresh policy (and parameters) per loss
    else:
        assert isinstance(loss.temperature, FixedTemperature) and loss.temperature.value == preset.temperature
    assert loss.weights == LossWeights(
        ce_weight=preset.ce_weight, kd_weight=preset.kd_weight, kd_warmup_epochs=preset.kd_warmup_epochs
    )
    assert loss.needs_views == preset.needs_views


def _instantiate(config: dict[str, Any]) -> DistillationLoss:
    """Parse a loss config as a recipe's YAML and instantiate it, the way LightningCLI resolves an argument."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--loss", type=DistillationLoss)
    namespace = parser.parse_string(yaml.safe_dump({"loss": config}))
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # renamed in jsonargparse 4.49
    loss = instantiate(namespace).loss
    assert isinstance(loss, DistillationLoss)
    return loss


@pytest.mark.parametrize("name", list(PRESETS))
def test_loss_config_instantiates_an_equal_loss(name: str) -> None:
    preset = PRESETS[name]
    config = preset.loss_config()
    assert config["class_path"] == "lightning_kd.DistillationLoss"
    assert describe(_instantiate(config)) == describe(preset.loss())
    # recipes put the warm-up on the module instead: then the loss has none, and nothing else changes
    without = describe(_instantiate(preset.loss_config(warmup=False)))
    assert without["weights"].kd_warmup_epochs == 0
    assert {**without, "weights": None} == {**describe(preset.loss()), "weights": None}


def test_replace_changes_a_copy() -> None:
    ctkd = PRESETS["ctkd_z"]
    shorter = ctkd.replace(temperature_kwargs={**ctkd.temperature_kwargs, "decay_epochs": 3})
    assert shorter.loss().temperature.decay_epochs == 3  # type: ignore[union-attr]
    assert ctkd.temperature_kwargs["decay_epochs"] == 10 and ctkd.loss().temperature.decay_epochs == 10  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        ctkd.temperature_kwargs["decay_epochs"] = 3  # type: ignore[index]  # read-only: shared by every caller


# --------------------------------------------------------------------------------------------------------
# Names: one spelling per method, the older ones accepted.
# --------------------------------------------------------------------------------------------------------
def test_names_and_display_names() -> None:
    assert list(PRESETS) == [
        "kd",
        "kd_z",
        "ctkd",
        "ctkd_z",
        "dkd",
        "dkd_z",
        "mlkd",
        "mlkd_z",
        "maxlogit_z",
        "dist",
        "dist_z",
        "ttm",
        "wttm",
    ]
    assert all(preset.name == name for name, preset in PRESETS.items())
    displays = [preset.display_name for preset in PRESETS.values()]
    assert len(set(displays)) == len(displays)
    for name, preset in PRESETS.items():  # "+Z" exactly for the Z-score presets, named "<method>_z"
        assert name.endswith("_z") == preset.display_name.endswith("+Z") == (preset.preprocess == "zscore"), name


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("kd_zscore", "kd_z"),
        ("ctkd_zscore", "ctkd_z"),
        ("dkd_zscore", "dkd_z"),
        ("mlkd_zscore", "mlkd_z"),
        ("dist_zscore", "dist_z"),
        ("max_logit", "maxlogit_z"),
        ("maxlogit", "maxlogit_z"),
    ],
)
def test_older_spellings_resolve(old: str, new: str) -> None:
    assert get_preset(old) is PRESETS[new]
    assert describe(create_loss(old)) == describe(PRESETS[new].loss())


def test_aliases_point_at_presets_and_unknown_names_are_refused() -> None:
    assert not set(ALIASES) & set(PRESETS)  # an alias never hides a preset
    assert set(ALIASES.values()) <= set(PRESETS)
    assert all(get_preset(name) is preset for name, preset in PRESETS.items())
    with pytest.raises(ValueError, match=r"Expected argument `preset` to be one of .*, but got 'kd_zz'. Did you mean"):
        get_preset("kd_zz")
    with pytest.raises(ValueError, match="Expected argument `temperature`"):
        Preset("x", "X", "kd", temperature="curricullum")


# --------------------------------------------------------------------------------------------------------
# The documented tables: exactly the presets, with their values.
# --------------------------------------------------------------------------------------------------------
def _rst_table(text: str) -> list[list[str]]:
    """The body rows of the first reStructuredText simple table in ``text``, cells stripped of ``literals``."""
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if re.fullmatch(r"=+( +=+)+", line.strip())]
    assert len(rules) >= 3, "no simple table found"
    rule = lines[rules[0]]
    spans = [(m.start(), m.end()) for m in re.finditer(r"=+", rule)]
    spans[-1] = (spans[-1][0], max(len(line) for line in lines))  # the last column may overrun its rule
    rows = []
    for line in lines[rules[1] + 1 : rules[2]]:
        rows.append([line[start:end].strip().strip("`") for start, end in spans])
    return rows


def _stated(text: str) -> dict[str, Any]:
    """The values a settings cell states, e.g. ``"Z-score, base T 2, CE 0.1, KD 9"``."""
    values: dict[str, Any] = {"preprocess": "none", "kd_warmup_epochs": 0, "needs_views": False}
    for note in re.findall(r"\(([^)]*)\)", text):
        if note == "no temperature":
            values["temperature"] = None
        elif note == "needs weak and strong views":
            values["needs_views"] = True
        else:
            raise AssertionError(f"unexpected note {note!r} in {text!r}")
    for part in re.sub(r"\s*\([^)]*\)", "", text).split(", "):
        if part == "Z-score":
            values["preprocess"] = "zscore"
        elif part == "curriculum temperature":
            values["temperature"] = "curriculum"
        elif part == "max-logit temperature":
            values["temperature"] = "max_logit"
        elif part == "weighted":
            values["weighted"] = True
        elif match := re.fullmatch(r"(?:base )?T ([\d.]+)", part):
            values["temperature"] = float(match[1])
        elif match := re.fullmatch(r"(CE|KD) ([\d.]+)", part):
            values[f"{match[1].lower()}_weight"] = float(match[2])
        elif match := re.fullmatch(r"warm-up (\d+) epochs", part):
            values["kd_warmup_epochs"] = int(match[1])
        elif match := re.fullmatch(r"(alpha|beta|gamma) ([\d.]+)", part):
            values[match[1]] = float(match[2])
        else:
            raise AssertionError(f"unexpected setting {part!r} in {text!r}")
    return values


def _values(preset: Preset) -> dict[str, Any]:
    """What the docstring's table states of a preset (MLKD's default ``official=True`` goes unsaid)."""
    values = {
        "preprocess": preset.preprocess,
        "temperature": preset.temperature,
        "ce_weight": preset.ce_weight,
        "kd_weight": preset.kd_weight,
        "kd_warmup_epochs": preset.kd_warmup_epochs,
        "needs_views": preset.needs_views,
    }
    for key, value in preset.divergence_kwargs.items():
        if (key == "official" and value is True) or (key == "weighted" and value is False):
            continue
        values[key] = value
    return values


def test_module_docstring_table_lists_the_presets() -> None:
    assert presets.__doc__ is not None
    rows = _rst_table(presets.__doc__)
    assert [row[0] for row in rows] == list(PRESETS)
    for name, display, settings in rows:
        assert display == PRESETS[name].display_name, name
        assert _stated(settings) == _values(PRESETS[name]), name


def _markdown_table(text: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _written_out(code: str) -> DistillationLoss:
    """Evaluate a ``DistillationLoss(...)`` call of the docs with the package's public classes only."""
    tree = ast.parse(code, mode="eval")
    assert isinstance(tree.body, ast.Call) and ast.unparse(tree.body.func) == "DistillationLoss", code
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    namespace = {name: getattr(lightning_kd, name) for name in names - {"None", "True", "False"}}
    loss = eval(compile(tree, "<docs/concepts.md>", "eval"), {"__builtins__": {}}, namespace)
    assert isinstance(loss, DistillationLoss)
    return loss


def test_concepts_table_lists_the_presets_with_their_losses() -> None:
    rows = _markdown_table(CONCEPTS.read_text(encoding="utf-8"), "| Method | Preset |")
    assert [row[1].strip("`") for row in rows] == list(PRESETS)
    for method, name, code, _notes in rows:
        preset = PRESETS[name.strip("`")]
        assert method == preset.display_name, name
        assert describe(_written_out(code.strip("`"))) == describe(preset.loss()), name
