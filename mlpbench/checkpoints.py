"""A run's checkpoints: written (checkpoints/last.ckpt and best.ckpt) and read back, checked,
for resume=true."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mlpbench")


def checkpoint_callback(run_dir: Path, score: str = "acc"):
    """A run's checkpoints: checkpoints/last.ckpt after every epoch (what resume continues
    from), checkpoints/best.ckpt at the best val_acc (a regression's val_r2) so far."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    class RunCheckpoint(ModelCheckpoint):
        """Lightning (2.6) writes last.ckpt only along with a new best.ckpt: after an epoch that
        did not improve, last.ckpt was an earlier epoch's, not the weights the run's test metrics
        were measured with (nor the newest a resume could continue from). A diverged run's epoch
        is not saved at all: its NaN weights could score a finite val_acc (every row class 0) and
        become best.ckpt; it keeps its last finite checkpoint, as a stacked replica does."""

        def on_validation_end(self, trainer, pl_module) -> None:
            self._saving(super().on_validation_end, trainer, pl_module, at_epoch_end=False)

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self._saving(super().on_train_epoch_end, trainer, pl_module, at_epoch_end=True)

        def on_train_end(self, trainer, pl_module) -> None:
            if pl_module.diverged_at is None:  # (Lightning's: last.ckpt if none was written)
                super().on_train_end(trainer, pl_module)

        def _saving(self, lightnings_hook, trainer, pl_module, at_epoch_end: bool) -> None:
            """Lightning's saving at this hook, then last.ckpt where it left it unwritten."""
            if pl_module.diverged_at is not None:
                return
            saved = self._last_global_step_saved
            lightnings_hook(trainer, pl_module)
            if (self._should_save_on_train_epoch_end(trainer) == at_epoch_end and self._last_global_step_saved == saved
                    and not self._should_skip_saving_checkpoint(trainer)):
                self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

        @property
        def state_key(self) -> str:  # as ModelCheckpoint's: checkpoints of earlier versions resume
            return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    return RunCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=f"val_{score}", mode="max",
                         save_last=True, save_top_k=1)


def usable_checkpoint(path: Path, model_cfg) -> tuple[Path, dict[str, int]] | None:
    """The checkpoint a run continues from and where it stands: `path` (last.ckpt), else the
    best.ckpt beside it (an earlier epoch, but not lost); None if neither can be used."""
    for candidate in (Path(path), Path(path).with_name("best.ckpt")):
        if candidate.is_file():
            position = checkpoint_position(candidate, model_cfg)
            if position is not None:
                return candidate, position
    return None


def checkpoint_position(path: Path, model_cfg) -> dict[str, int] | None:
    """Where a checkpoint stands: epochs finished and optimizer steps taken; None, said in the
    log naming the file, when it cannot be used: cut short, corrupt, holding more than tensors
    and data, or another model's weights than `model_cfg`'s."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        history = checkpoint.get("mlpbench", {}).get("history", {})
        position = {"epoch": len(history.get("train_loss", [])), "step": int(checkpoint["global_step"])}
        other = _other_model(checkpoint["state_dict"], model_cfg)
        if other:
            raise ValueError(other)
        # Bytes overwritten inside the file load as numbers still: NaN or inf where a run that
        # kept this checkpoint had none (a diverged run keeps its last finite one).
        tensors = [*checkpoint["state_dict"].values(), *_tensors(checkpoint.get("optimizer_states"))]
        if not all(torch.isfinite(t).all() for t in tensors if t.is_floating_point()):
            raise ValueError("it holds weights or optimizer state that are not finite (damaged)")
        return position
    except Exception as e:
        first_line = re.sub(r"\x1b\[[0-9;]*m", "", (str(e).strip().splitlines() or [""])[0])[:200]
        log.warning("Run %s: its checkpoint %s cannot be used (%s: %s); %s", path.parent.parent.name, path,
                    type(e).__name__, first_line,
                    "trying best.ckpt" if path.name == "last.ckpt" else "the run starts over")
        return None


def _tensors(node: Any) -> list:
    """The tensors in nested dicts and lists (an optimizer's state)."""
    import torch

    if isinstance(node, torch.Tensor):
        return [node]
    items = node.values() if isinstance(node, dict) else node if isinstance(node, (list, tuple)) else ()
    return [t for item in items for t in _tensors(item)]


def _other_model(state: dict, model_cfg) -> str | None:
    """Why a checkpoint's weights are not those of a model_cfg network (a checkpoint copied in
    from another run), or None: its tensors' shapes against the network's, built without memory
    (torch's meta device) for the inputs and outputs the checkpoint has."""
    import torch

    from mlpbench.model import MLP

    shapes = {k.removeprefix("model."): tuple(v.shape) for k, v in state.items()}
    dense = [s for s in shapes.values() if len(s) == 2]
    if not dense:
        return "it holds no layer's weights"
    outputs = dense[-1][0]
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in MLP(model_cfg, dense[0][1], 2 if outputs == 1 else outputs)
                    .state_dict().items()}
    if shapes == expected:
        return None

    def widths(layers: list[tuple]) -> str:
        return " -> ".join(str(w) for w in [layers[0][1], *(s[0] for s in layers)])

    theirs, ours = widths(dense), widths([s for s in expected.values() if len(s) == 2])
    if theirs == ours:
        return f"it holds another network: widths {ours} as this run's, other BatchNorm or residual layers"
    return f"it holds another network: widths {theirs}, this run's {ours}"
