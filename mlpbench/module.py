"""The training module: loss, metrics and optimizer around the MLP, as Lightning hooks.

Epoch metrics are sums kept on the device and read once per epoch, so training steps
never wait for the host. Per-epoch scalars go to TensorBoard with the epoch number as
the step, so runs with different batch sizes line up in one chart.
"""

from __future__ import annotations

import logging
import math
import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.plugins.precision import Precision

from mlpbench.model import MLP
from mlpbench.optim import build_optimizer
from mlpbench.schema import Loss

log = logging.getLogger("mlpbench")


def score_name(regression: bool) -> str:
    """The metric a run is scored by besides its loss: accuracy, or a regression's r2 (both
    higher is better); history, result.json and TensorBoard name it so (val_acc, val_r2)."""
    return "r2" if regression else "acc"


def history_keys(score: str) -> tuple[str, ...]:
    return ("train_loss", f"train_{score}", "val_loss", f"val_{score}", "epoch_seconds")


class _Sums:
    """Running loss*rows, the score's terms and rows for one pass over a split: correct
    predictions, or (regression) the targets' sum and sum of squares, r2's denominator."""

    def __init__(self, device: torch.device, shape: tuple[int, ...] = (), regression: bool = False):
        # shape (K,): one count per stacked replica (mlpbench/stacked.py)
        self.loss = torch.zeros(shape, dtype=torch.float64, device=device)
        self.terms = (torch.zeros((*shape, 2), dtype=torch.float64, device=device) if regression
                      else torch.zeros(shape, dtype=torch.int64, device=device))
        self.regression = regression
        self.rows = 0

    def add(self, loss: torch.Tensor, terms: torch.Tensor, rows: int) -> None:
        torch.add(self.loss, loss.detach(), alpha=rows, out=self.loss)  # one kernel: it runs every step
        self.terms.add_(terms)
        self.rows += rows

    def scores(self, loss: torch.Tensor, terms: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Accuracy, or r2 = 1 - SSE / SST (the loss sum is the SSE of a one-output MSE). Targets
        all of one value (SST 0, to rounding) score as scikit-learn's r2_score does: 1 where
        every prediction is exact, else 0 (not a division by zero)."""
        if not self.regression:
            return terms.to(torch.float64) / rows
        total, squares = terms.unbind(-1)
        sst = squares - total * total / rows
        return torch.where(sst <= 1e-12 * squares, (loss == 0).to(loss.dtype), 1 - loss / sst)

    def means(self, reduce=None) -> tuple[float, float]:
        """Means over the pass; `reduce` sums the counts over DDP processes."""
        rows = torch.tensor([float(self.rows)], dtype=torch.float64, device=self.loss.device)
        totals = torch.cat([self.loss.reshape(1), self.terms.to(torch.float64).reshape(-1), rows])
        if reduce is not None:
            totals = reduce(totals)
        if totals[-1] == 0:
            return math.nan, math.nan
        loss, terms, rows = totals[0], totals[1:-1].reshape(self.terms.shape), totals[-1]
        return (loss / rows).item(), self.scores(loss, terms, rows).item()


def epoch_scalars(history: dict[str, list[float]], score: str = "acc") -> dict[str, float]:
    """A run's TensorBoard scalars for its latest epoch, named metric/split: TensorBoard shows tag
    groups in name order, so acc/ (per epoch; r2/ for a regression) comes first, and step/ (per
    logging step) and test/ (one point) after loss/. acc/best_val is the best val_acc so far:
    its last value is the report's best_val_acc (its objective unless report.objective says
    otherwise), so that HParams has it as a metric column to sort by. Values not finite are left out."""
    seen = [a for a in history[f"val_{score}"] if math.isfinite(a)]
    scalars = {f"{score}/best_val": max(seen) if seen else math.nan, f"{score}/train": history[f"train_{score}"][-1],
               f"{score}/val": history[f"val_{score}"][-1], "loss/train": history["train_loss"][-1],
               "loss/val": history["val_loss"][-1]}
    return {tag: value for tag, value in scalars.items() if math.isfinite(value)}


def restore_cuda_rng(states: list | None) -> None:
    """Each GPU's RNG state as a checkpoint saved it, on as many GPUs as this machine has: a
    checkpoint from a machine with more GPUs (torch.cuda.set_rng_state_all raised IndexError)
    or none (a CPU machine: nothing to restore) resumes too."""
    if not states or not torch.cuda.is_available():
        return
    for device, state in enumerate(states[: torch.cuda.device_count()]):
        torch.cuda.set_rng_state(state, device)


def regression_terms(y: torch.Tensor) -> torch.Tensor:
    """The targets' sum and sum of squares over the rows (the last index), in float64: with the
    squared errors they give r2 over any number of batches."""
    y = y.to(torch.float64)
    return torch.stack([y.sum(-1), (y * y).sum(-1)], -1)


def epoch_line(history: dict[str, list[float]], epoch: int, score: str) -> str:
    """Keras' verbose=2 metrics of one epoch: loss 0.3 - acc 0.9 - val_loss ... (r2 for a regression)."""
    return " - ".join(f"{name} {history[key][epoch - 1]:.4f}" for name, key in
                      (("loss", "train_loss"), (score, f"train_{score}"), ("val_loss", "val_loss"),
                       (f"val_{score}", f"val_{score}")))


class MLPModule(pl.LightningModule):
    def __init__(self, model_cfg, optim_cfg, num_features: int, num_classes: int,
                 gradient_clip_val: float | None = None, log_every_n_epochs: int = 1, model=None,
                 regression: bool = False):
        super().__init__()
        self.model = MLP(model_cfg, num_features, num_classes) if model is None else model
        self.loss_kind = Loss(model_cfg.loss)
        self.regression = regression
        self.score = score_name(regression)
        self.optim_cfg = optim_cfg
        self.history: dict[str, list[float]] = {k: [] for k in history_keys(self.score)}
        self.test_metrics: dict[str, float] = {}
        self.diverged_at: dict[str, int] | None = None
        self._sums: _Sums | None = None  # training pass
        self._eval_sums: _Sums | None = None  # validation or test pass
        self._epoch_start = 0.0
        # Steps are taken by hand (several per Lightning step), so clipping is done here too.
        self.automatic_optimization = False
        self.gradient_clip_val = gradient_clip_val
        self.log_every_n_epochs = log_every_n_epochs
        self._logged_epoch = 0
        self._lean_steps = False
        self._divergence_check_every = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    @property
    def _reduce(self):
        if self._trainer is None or self.trainer.world_size == 1:
            return None
        return lambda totals: self.trainer.strategy.reduce(totals, reduce_op="sum")

    def loss_and_correct(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The mean of the rows' losses as its own reduction, not the loss kernel's: its sum runs
        # in another order, and stacked replicas' (K, rows).mean(1) gives each run's mean only
        # as this one computes it (the gradients are the same either way).
        if self.regression:  # one linear output, MSE on the standardised target
            return F.mse_loss(logits[:, 0], y, reduction="none").mean(), regression_terms(y)
        if self.loss_kind is Loss.cross_entropy:
            return F.cross_entropy(logits, y, reduction="none").mean(), (logits.argmax(1) == y).sum()
        probs = torch.sigmoid(logits)
        if probs.shape[1] == 1:  # one 0/1 output unit (XOR)
            loss = F.mse_loss(probs[:, 0], y.to(probs.dtype), reduction="none").mean()
            return loss, ((probs[:, 0] > 0.5).long() == y).sum()
        target = F.one_hot(y, probs.shape[1]).to(probs.dtype)
        return F.mse_loss(probs, target, reduction="none").mean(), (probs.argmax(1) == y).sum()

    def new_sums(self, shape: tuple[int, ...] = ()) -> _Sums:
        return _Sums(self.device, shape, self.regression)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return build_optimizer(self.optim_cfg, self.parameters())

    # ------------------------------------------------------------------ training
    def on_train_epoch_start(self) -> None:
        self._epoch_start = time.perf_counter()
        self._sums = self.new_sums()

    def on_train_start(self) -> None:
        # Lightning's optimizer and backward wrappers run every callback's hooks around each
        # step, about 60 us a step: a third of a small MLP's step at batch 32. Where nothing
        # needs them (plain precision, one process, no callback with such hooks) steps are
        # taken directly on the torch optimizer, and Lightning's step counter kept by hand.
        hooks = ("on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad")
        hooked = [cb for cb in self.trainer.callbacks
                  if any(getattr(type(cb), h) is not getattr(pl.Callback, h) for h in hooks)]
        self._lean_steps = (type(self.trainer.precision_plugin) is Precision and self.trainer.world_size == 1
                            and not hooked)
        # Steps between checks for a NaN/inf loss: every step on one CPU, where reading the loss
        # costs nothing; elsewhere only where the step loss is read for logging anyway.
        single_cpu = self.device.type == "cpu" and self.trainer.world_size == 1
        self._divergence_check_every = 1 if single_cpu else self.trainer.log_every_n_steps

    def training_step(self, chunk, chunk_idx):
        """Several optimizer steps, one per `batch_size` rows of the chunk (data.TensorBatches):
        Lightning's fixed cost per training step is paid once per chunk, not once per batch.
        Each step is the one Lightning's automatic optimization would take."""
        x, y, batch_size = chunk
        optimizer = self.optimizers()
        raw = optimizer.optimizer
        progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        log_every = self.trainer.log_every_n_steps
        for lo in range(0, y.shape[-1], batch_size):  # rows are the last index of y (stacked: (K, rows))
            xb, yb = x[..., lo:lo + batch_size, :], y[..., lo:lo + batch_size]
            loss, correct = self.loss_and_correct(self.model(xb), yb)
            step = self.global_step
            if self._lean_steps:
                raw.zero_grad()
                self.objective(loss).backward()
                if self.gradient_clip_val:
                    torch.nn.utils.clip_grad_norm_(self.parameters(), self.gradient_clip_val)
                progress.increment_ready()
                raw.step()
                progress.increment_completed()
            else:  # clipping, if any, in on_before_optimizer_step
                optimizer.zero_grad()
                self.manual_backward(self.objective(loss))
                optimizer.step()
            self._sums.add(loss, correct, yb.shape[-1])
            if step % log_every == 0:
                self.log_step_loss(loss, step)
            if step % self._divergence_check_every == 0 and self._diverged(loss):  # the step logged, off one CPU
                self._stop_diverged(step + 1)
                break

    def on_before_optimizer_step(self, optimizer) -> None:
        """trainer.gradient_clip_val outside the lean path: here, where Lightning has unscaled a
        16-mixed run's gradients (Lightning's own clip_gradients refuses a fused optimizer under
        any *-mixed precision, and clipping in training_step clipped the still-scaled ones). A
        fused optimizer unscales inside its step: its gradients are unscaled here first, which
        its step then knows (GradScaler's per-optimizer stage)."""
        if not self.gradient_clip_val:
            return
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if scaler is not None and getattr(optimizer, "_step_supports_amp_scaling", False):
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(self.parameters(), self.gradient_clip_val)

    def objective(self, loss: torch.Tensor) -> torch.Tensor:
        """What backward() differentiates: the loss (stacked replicas: the sum of theirs)."""
        return loss

    def log_step_loss(self, loss: torch.Tensor, step: int) -> None:
        if self.logger is not None:
            self.logger.log_metrics({"step/train_loss": loss.item()}, step=step)

    def running_means(self) -> tuple[float, float]:
        """This epoch's loss and score (accuracy or r2) so far, for the progress bar."""
        return self._sums.means()

    def _stop_diverged(self, step: int) -> None:
        # No later step can recover from a NaN/inf loss: stop now and record where.
        self.diverged_at = {"epoch": self.current_epoch + 1, "step": step}
        self.trainer.should_stop = True

    def _diverged(self, loss: torch.Tensor) -> bool:
        # The first NaN/inf step loss; .item() is free on the CPU, where this runs every step.
        diverged = not math.isfinite(loss.item())
        if self.trainer.world_size > 1:  # every DDP process must stop at the same step
            diverged = self.trainer.strategy.reduce_boolean_decision(diverged, all=False)
        return bool(diverged)

    def on_train_epoch_end(self) -> None:
        train_loss, train_score = self._sums.means(self._reduce)
        epoch = self.current_epoch + 1
        h = self.history
        h["train_loss"].append(train_loss)
        h[f"train_{self.score}"].append(train_score)
        h["epoch_seconds"].append(time.perf_counter() - self._epoch_start)
        # Validation ran inside this epoch; pad if it did not.
        for key in ("val_loss", f"val_{self.score}"):
            if len(h[key]) < epoch:
                h[key].append(math.nan)
        if self.logger is not None:
            self.logger.log_metrics(epoch_scalars(h, self.score), step=epoch)
        self.log("train_loss", train_loss, logger=False)  # for callbacks.* that monitor it (EarlyStopping)
        # The last epoch's line, if this rule skips it, comes from on_train_end.
        if epoch == 1 or epoch % self.log_every_n_epochs == 0 or not math.isfinite(train_loss):
            self._log_epoch(epoch)
        if not math.isfinite(train_loss) and self.diverged_at is None:
            self._stop_diverged(self.global_step)  # a NaN between the sparser checks off the CPU

    def _log_epoch(self, epoch: int) -> None:
        """Keras' verbose=2 line: also the record of the run in its log file (once under DDP)."""
        self._logged_epoch = epoch
        if self.trainer.is_global_zero:
            log.info("Epoch %d/%d - %.2fs - %s", epoch, self.trainer.max_epochs,
                     self.history["epoch_seconds"][epoch - 1], epoch_line(self.history, epoch, self.score))

    def on_train_end(self) -> None:
        # The last epoch, whether max_epochs, a divergence or a callback (EarlyStopping) ended it.
        epochs = len(self.history["train_loss"])
        if epochs and self._logged_epoch != epochs:
            self._log_epoch(epochs)

    # ------------------------------------------------------------------ resuming
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # What Lightning does not keep: the per-epoch history (so a resumed run's history is
        # continuous) and the RNG states that draw dropout masks.
        checkpoint["mlpbench"] = {
            "history": {k: list(v) for k, v in self.history.items()},
            "diverged_at": self.diverged_at,
            "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("mlpbench")
        if saved is None:
            return
        self.history = {k: list(v) for k, v in saved["history"].items()}
        self.diverged_at = saved["diverged_at"]
        torch.set_rng_state(saved["cpu_rng"])
        restore_cuda_rng(saved["cuda_rng"])

    # ------------------------------------------------------------------ evaluation
    def on_validation_epoch_start(self) -> None:
        self._eval_sums = self.new_sums()

    def validation_step(self, batch, batch_idx):
        x, y = batch
        loss, correct = self.loss_and_correct(self.model(x), y)
        self._eval_sums.add(loss, correct, y.shape[-1])

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        val_loss, val_score = self._eval_sums.means(self._reduce)
        self.history["val_loss"].append(val_loss)
        self.history[f"val_{self.score}"].append(val_score)
        # For the progress bar and ModelCheckpoint's monitor; TensorBoard gets them per epoch.
        self.log_dict({"val_loss": val_loss, f"val_{self.score}": val_score}, prog_bar=True, logger=False)

    def on_test_epoch_start(self) -> None:
        self._eval_sums = self.new_sums()

    def test_step(self, batch, batch_idx):
        self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        test_loss, test_score = self._eval_sums.means(self._reduce)
        self.test_metrics = {"test_loss": test_loss, f"test_{self.score}": test_score}
        if self.logger is not None:
            self.logger.log_metrics({"test/loss": test_loss, f"test/{self.score}": test_score},
                                    step=len(self.history["train_loss"]))


class AfterEpochMetrics(pl.callbacks.Checkpoint):
    """Calls `fn` at the end of every training epoch, once that epoch's metrics are final.

    A Checkpoint subclass because Lightning runs checkpoint callbacks' on_train_epoch_end
    after the LightningModule's, which is where the epoch's metrics are computed.
    """

    def __init__(self, fn):
        self.fn = fn

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.fn()
