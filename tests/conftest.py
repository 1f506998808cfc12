"""Shared test set-up."""

import sys

import pytest


@pytest.fixture(autouse=True)
def _fresh_wandb_process_state():
    """wandb keeps one settings singleton a process, read from the environment the first time
    (offline mode, its directory): a test that used wandb would leave the next one another's
    settings (it then asked for an API key in the full suite). Tear it down after each test."""
    yield
    wandb = sys.modules.get("wandb")
    if wandb is not None and hasattr(wandb, "teardown"):
        wandb.teardown()
