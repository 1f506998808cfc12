"""Reading a study: TOML text or a dict → a validated, cross-checked `StudyConfig`.

The ``[quick]`` overrides (and a caller's ``overrides``) are merged over the document first; then
the schema (`taskspace.study.config`) validates each key and `taskspace.study.plan.check_study`
the relations between keys.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

from pydantic import ValidationError

from taskspace.study.config import StudyConfig, pydantic_error, study_error
from taskspace.study.plan import check_study


def _merge(base: dict, over: dict) -> dict:
    """``over`` merged into a copy of ``base``, tables recursively; ``steps``/``epochs`` in a
    ``config`` table replace each other (a run has one length)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
        if key in ("steps", "epochs"):
            out.pop("epochs" if key == "steps" else "steps", None)
    return out


def _overlay(raw: dict, quick, where: str) -> dict:
    """A partial study merged over ``raw``; its ``all_runs`` table goes into every run."""
    if not isinstance(quick, dict):
        raise study_error(where, f"must be a table, got {type(quick).__name__}")
    quick = dict(quick)
    every = quick.pop("all_runs", {})
    if not isinstance(every, dict):
        raise study_error(f"{where}.all_runs", f"must be a table, got {type(every).__name__}")
    runs = raw.get("runs")
    if isinstance(runs, dict):
        for name in quick.get("runs", {}):
            if name not in runs:
                raise study_error(
                    f"{where}.runs.{name}", f"no such run spec; run specs: {', '.join(runs)}"
                )
    merged = _merge(raw, quick)
    if isinstance(merged.get("runs"), dict):
        for name, spec in merged["runs"].items():
            if isinstance(spec, dict):
                merged["runs"][name] = _merge(spec, every)
    return merged


def parse_study(
    raw: dict, *, quick: bool = False, overrides: dict | None = None, source: str = ""
) -> StudyConfig:
    """Validate a study given as a dict (a parsed TOML document).

    Parameters
    ----------
    raw : dict
    quick : bool
        Apply the ``[quick]`` overrides.
    overrides : dict, optional
        A partial study merged over the result (after ``[quick]``), e.g. tiny sizes for a test;
        like ``[quick]``, its ``all_runs`` table is merged into every run.
    source : str
        The TOML text, kept in ``StudyConfig.source``.
    """
    if not isinstance(raw, dict):
        raise ValueError(f"a study config must be a table, got {type(raw).__name__}")
    original, raw_quick = raw, raw.get("quick")
    raw = _overlay(raw, raw_quick or {}, "quick") if quick else dict(raw)
    raw.pop("quick", None)
    if overrides:
        raw = _overlay(raw, overrides, "overrides")
    try:
        study = StudyConfig(**raw, source=source, quick=quick)
    except ValidationError as exc:
        raise pydantic_error(exc) from None
    check_study(study)
    if not quick and raw_quick is not None:
        # The [quick] overrides are checked always: a typo there must not wait for the day
        # someone passes --quick.
        try:
            parse_study(original, quick=True, overrides=overrides, source=source)
        except ValueError as exc:
            raise ValueError(
                f"{exc} (with the study's [quick] overrides applied; they are "
                "checked even without --quick)"
            ) from None
    return study


def load_study(path, *, quick: bool = False, overrides: dict | None = None) -> StudyConfig:
    """Read and validate a study TOML file (see `parse_study`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"study config {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    return parse_study(raw, quick=quick, overrides=overrides, source=text)
