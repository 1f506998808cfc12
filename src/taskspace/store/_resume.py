"""Where an importer resumes a run that an earlier, interrupted import began."""

from __future__ import annotations

from collections.abc import Sequence


def records_done(
    store,
    run_id: str,
    steps: Sequence[int],
    source,
    info: dict | None = None,
) -> int:
    """How many of a run's records ``store`` already holds (0 for a run it does not have).

    Parameters
    ----------
    store : Store
    run_id : str
    steps : sequence of int
        Every step the import will give the run, in order.
    source : str or path
        What the records come from, for error messages.
    info : dict, optional
        Run metadata (task, method, seed, ...) the import gives the run; each must equal the
        stored run's.

    Returns
    -------
    int
        k such that the run's committed records are the first k of ``steps``: the import appends
        the rest. A run whose committed steps are not such a prefix (or whose metadata differ) is
        another run of the same id, and a ValueError: it is never appended to.
    """
    if run_id not in store.run_ids:
        return 0
    have = store.steps(run_id)
    steps = [int(s) for s in steps]
    if have != steps[: len(have)]:
        raise ValueError(
            f"run {run_id!r} is already in store {store.path} with steps {_short(have)}, which "
            f"are not the first steps of {source} ({_short(steps)}): a different run of the same "
            "id; remove one of them or give it another id"
        )
    stored = store.run_info(run_id)
    for key, value in (info or {}).items():
        if stored.get(key) != value:
            raise ValueError(
                f"run {run_id!r} is already in store {store.path} with {key}={stored.get(key)!r}, "
                f"but {source} gives {key}={value!r}: a different run of the same id"
            )
    return len(have)


def _short(steps: list[int]) -> str:
    return (
        str(steps)
        if len(steps) <= 8
        else f"[{', '.join(map(str, steps[:6]))}, ...] ({len(steps)} steps)"
    )
