# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""A stage killed (SIGKILL) in the middle of its last epoch and run again with the same command ends exactly as an
uninterrupted run: the same best epoch and model.pt, the same last-epoch weights, the same done.json."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundle" / "configs"
EPOCHS = 3
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stage (a) shrunk to seconds an epoch, on CPU, several steps an epoch, and a rate high enough that its Dice
    swings: the best epoch is not the last one, so a resume that forgot it would end with another model.pt."""
    folder = tmp_path_factory.mktemp("tiny")
    path = folder / "tiny.yaml"
    path.write_text(
        f"cache_dir: '{folder / 'cache'}'\n"
        "spatial_size: [64, 32]\nsegmenter_depth: 18\nsegmenter_output_stride: 16\npyramid_channels: 8\n"
        "num_phantoms: 12\nphantom_scale: 0.25\nnum_workers: 0\nbatch_size: 2\nprogress_bar: false\n"
        f"epochs: {{a: {EPOCHS}}}\nlr_segmenter: 0.01\ndevice: \"$torch.device('cpu')\"\n"
    )
    return path


def _command(tiny: Path, out: Path) -> list[str]:
    config = str([str(CONFIGS / "train.yaml"), str(CONFIGS / "stage_a.yaml"), str(tiny)])
    return [sys.executable, "-m", "monai.bundle", "run", "--config_file", config, "--ckpt_dir", str(out / "models"),
            "--output_dir", str(out / "eval")]  # fmt: skip


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="")


def _run(tiny: Path, out: Path) -> str:
    result = subprocess.run(_command(tiny, out), capture_output=True, text=True, env=_env(), timeout=900, check=False)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    return log


def _run_killed_at(tiny: Path, out: Path, epoch: int, iteration: int) -> str:
    """Run the stage and SIGKILL it as soon as it logs the end of step ``iteration`` of ``epoch``."""
    marker = re.compile(rf"Epoch: {epoch}/{EPOCHS}, Iter: {iteration}/")
    process = subprocess.Popen(_command(tiny, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=_env())  # fmt: skip
    lines = []
    for line in process.stdout:
        lines.append(line)
        if marker.search(line):
            process.send_signal(signal.SIGKILL)
            break
    process.stdout.close()
    process.wait(timeout=60)
    return "".join(lines)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)  # model.pt: the bare state dict


def _same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def _done(stage: Path) -> dict:
    record = json.loads((stage / "done.json").read_text())
    record.pop("seconds")  # wall time
    record["best_model"] = Path(record["best_model"]).name  # the runs write to different folders
    return record


def test_a_stage_killed_in_its_last_epoch_resumes_to_the_uninterrupted_result(tiny, tmp_path):
    _run(tiny, tmp_path / "whole")
    whole = tmp_path / "whole" / "models" / "stage_a"
    expected = _done(whole)
    assert expected["best_epoch"] < EPOCHS, f"the settings no longer make an earlier epoch the best: {expected}"

    killed_log = _run_killed_at(tiny, tmp_path / "killed", epoch=EPOCHS, iteration=1)
    killed = tmp_path / "killed" / "models" / "stage_a"
    assert f"Epoch[{EPOCHS - 1}] Complete" in killed_log and f"Epoch[{EPOCHS}] Complete" not in killed_log
    # the kill came in the middle of the last epoch: the previous epoch's file is all there is to resume from
    assert not (killed / "done.json").exists()
    assert sorted(p.name for p in killed.glob("checkpoint_epoch=*.pt")) == [f"checkpoint_epoch={EPOCHS - 1}.pt"]

    resumed_log = _run(tiny, tmp_path / "killed")  # the same command again
    assert "resuming from" in resumed_log and f"Epoch[{EPOCHS - 1}] Complete" not in resumed_log
    assert _done(killed) == expected  # best epoch and every metric of it
    assert _same_tensors(_weights(killed / "model.pt"), _weights(whole / "model.pt"))
    # the resumed epoch drew the uninterrupted run's shuffling and augmentation: its weights and optimiser are the same
    last = f"checkpoint_epoch={EPOCHS}.pt"
    resumed_state = torch.load(killed / last, map_location="cpu", weights_only=True)
    whole_state = torch.load(whole / last, map_location="cpu", weights_only=True)
    assert _same_tensors(resumed_state["model"], whole_state["model"])
    assert resumed_state["best_metrics"] == whole_state["best_metrics"]
    assert resumed_state["validator"] == whole_state["validator"]
