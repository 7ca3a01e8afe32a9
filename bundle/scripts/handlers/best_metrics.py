# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Keep every validation metric of the epoch where the key metric was best, not only the key metric itself."""

from __future__ import annotations

from ignite.engine import Engine, Events

__all__ = ["BestMetricsRecorder"]


class BestMetricsRecorder:
    """Records ``engine.state.metrics`` whenever the evaluator's key metric reaches a new best.

    Attach it to a MONAI evaluator (a ``validate#handlers`` entry); after training, :attr:`metrics` holds the metrics of
    the best epoch and :attr:`epoch` that epoch, which is what a results table should report. Its state travels in the
    stage's epoch checkpoint (:meth:`state_dict`), so a resumed stage keeps the record of the epochs before the kill.
    """

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.epoch: int = -1

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        # MONAI's workflow updates best_metric_epoch in its own EPOCH_COMPLETED handler, registered before this one
        if engine.state.best_metric_epoch == engine.state.epoch:
            self.metrics = {name: float(value) for name, value in engine.state.metrics.items()}
            self.epoch = int(engine.state.epoch)

    def state_dict(self) -> dict:
        """``{"metrics": {name: value}, "epoch": int}``: the record so far, of plain types (``weights_only`` loads it)."""
        return {"metrics": dict(self.metrics), "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        """Continue the record of a resumed stage (what :meth:`state_dict` returned)."""
        self.metrics = {name: float(value) for name, value in state["metrics"].items()}
        self.epoch = int(state["epoch"])
