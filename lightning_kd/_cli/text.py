"""The text of ``lightning-kd --help`` and the name of the traceback switch (light: no Lightning import)."""

from __future__ import annotations

__all__ = ["DESCRIPTION", "TRACEBACK_ENV"]

#: Environment variable that turns the one-line config errors into full tracebacks (like ``--traceback``).
TRACEBACK_ENV = "LIGHTNING_KD_TRACEBACK"

#: The description of ``lightning-kd --help``.
DESCRIPTION = (
    "Logit-based knowledge distillation with PyTorch Lightning. Run a recipe with"
    " `lightning-kd fit --config <recipe id or file>`. More commands: `lightning-kd recipes [FILTER ...]` lists"
    " the shipped recipes, `lightning-kd recipes show ID` prints one, `lightning-kd recipes cp ID [DEST]` copies"
    " one out; `lightning-kd check-teacher --help`, `lightning-kd demo --help`, `lightning-kd analyze --help`,"
    " `lightning-kd report --help` and `lightning-kd cache fill --help`."
    f" A config error is one line; add --traceback (or set {TRACEBACK_ENV}=1) for the full traceback."
)
