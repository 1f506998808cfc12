"""Fine-tuning: start from another run's model at a given step and train on a new task."""

from __future__ import annotations

from taskspace.methods._checkpoint import RunCheckpoints
from taskspace.methods.config import FinetuneConfig
from taskspace.methods.supervised import Supervised


class Finetune(Supervised):
    """Supervised training of a network that starts from a parent run's model.

    The parent is a run of the same store, trained by any method, and the step one of its record
    steps whose model was kept (``keep_models``; `taskspace.methods._checkpoint`). The parent's
    network (architecture and options) is rebuilt, loaded with the weights saved at that step, and
    its head replaced by a fresh one over the new task's classes (``replace_head``); then every
    layer is trained with cross-entropy as in `Supervised` — or only the head with
    ``head_only=True``, the body frozen in eval mode (batch-norm statistics included). The store
    records the parent run and step with the run; the run's first record (step 0) is the parent's
    representation imprinted again, so the two trajectories join.
    """

    name = "finetune"
    config_class = FinetuneConfig
    needs_parent = True

    def attach_parent(
        self, store, checkpoints_root, parent: str | None, parent_step: int | None
    ) -> tuple[str, int]:
        """Check the parent run and step and load its model; returns ``(parent, step)``."""
        if parent is None:
            raise ValueError(
                "method 'finetune' needs a parent run: train_run(..., "
                "parent=<run id>, parent_step=<step>)"
            )
        if parent not in store.run_ids:
            runs = store.run_ids
            listing = ", ".join(runs[:20]) + (" ..." if len(runs) > 20 else "")
            raise ValueError(
                f"fine-tuning parent run {parent!r} does not exist in store "
                f"{store.path}; its runs are: {listing or 'none'}"
            )
        steps = store.steps(parent)
        if parent_step is None:
            if len(steps) == 0:
                raise ValueError(f"fine-tuning parent run {parent!r} has no record yet")
            parent_step = steps[-1]
        elif int(parent_step) not in steps:
            raise ValueError(
                f"fine-tuning parent run {parent!r} has no record at step "
                f"{parent_step}; its record steps are {steps}"
            )
        self.parent_model = RunCheckpoints(checkpoints_root, parent).load_model(int(parent_step))
        return parent, int(parent_step)

    @property
    def parent_network(self) -> str:
        return self.parent_model["network_name"]

    def init_network(self, build):
        payload = self.parent_model
        net = build(
            int(payload["n_outputs"]), payload["network_name"], dict(payload["network_options"])
        )
        try:
            net.load_state_dict(payload["network"])
        except RuntimeError as exc:
            raise ValueError(
                f"the parent's weights do not fit its network rebuilt for these "
                f"data (channels, image size): {exc}"
            ) from None
        net.replace_head(self.n_outputs())
        if self.config.head_only:
            for p in net.parameters():
                p.requires_grad_(False)
            for p in net.head.parameters():
                p.requires_grad_(True)
        return net

    def train_mode(self, net, extra):
        if self.config.head_only:
            net.eval()
            net.head.train()
        else:
            net.train()

    def parameters(self, net, extra):
        return list(net.head.parameters()) if self.config.head_only else list(net.parameters())
