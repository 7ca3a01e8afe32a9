# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The real configs, run the way a person runs them, on tiny phantoms (64x32 input, one epoch a stage)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigWorkflow
from tiny_bundle import write_tiny_training_overlay

from scripts.engines.checkpoints import load_weights
from scripts.networks.definition import NETWORK_SETTINGS, build_seg4reg, read_settings

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundle" / "configs"
STAGES = "abcde"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An overlay that shrinks every stage to seconds; phantoms cached once for the module."""
    # one random epoch rarely beats the starting model; the hand-over checks below need each stage's own weights
    return write_tiny_training_overlay(
        tmp_path_factory.mktemp("tiny"), "score_starting_model: {a: false, b: false, c: false, d: false, e: false}"
    )


def _bundle(*args: str, torchrun: int = 0, **env_vars: str) -> subprocess.CompletedProcess:
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={torchrun}"]
        if torchrun
        else [sys.executable]
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1", **env_vars)
    result = subprocess.run(
        [*launcher, "-m", "monai.bundle", "run", *args], capture_output=True, text=True, env=env, timeout=900
    )
    result.log = result.stdout + result.stderr
    return result


def _files(*names: str | Path) -> str:
    return str([str(CONFIGS / n) if isinstance(n, str) else str(n) for n in names])


def _stage(stage: str, tiny: Path, out: Path, *extra: str, **env_vars: str) -> subprocess.CompletedProcess:
    config = _files("train.yaml", f"stage_{stage}.yaml", tiny)
    return _bundle(
        "--config_file",
        config,
        "--ckpt_dir",
        str(out / "models"),
        "--output_dir",
        str(out / "eval"),
        *extra,
        **env_vars,
    )


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_keeps_monai_property_ids(stage, tiny, tmp_path):
    workflow = ConfigWorkflow(
        config_file=[str(CONFIGS / "train.yaml"), str(CONFIGS / f"stage_{stage}.yaml"), str(tiny)],
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=False,
        workflow_type="train",
        ckpt_dir=str(tmp_path / "models"),
        output_dir=str(tmp_path / "eval"),
        previous_ckpt="",  # checking ids builds the objects; no previous stage is needed for that
    )
    workflow.initialize()
    assert workflow.check_properties() == []


def test_pipeline_trains_five_stages_hands_over_and_skips_finished(tiny, tmp_path):
    command = ("training", "--config_file", _files("train.yaml", tiny), "--ckpt_dir", str(tmp_path / "models"))
    command += ("--lambda_ar", "0.5")  # the command line, like the overlay, reaches every stage
    result = _bundle(*command, "--output_dir", str(tmp_path / "eval"))
    assert result.returncode == 0, result.log[-3000:]
    assert "| stage | SMAPE (%)" in result.stdout and "| e |" in result.stdout
    for s in STAGES:
        run = json.loads((tmp_path / "models" / f"stage_{s}" / "run.json").read_text())
        assert (run["lambda_ar"], run["segmenter_depth"], run["spatial_size"]) == (0.5, 18, [64, 32]), s
    # the final model travels with the settings of its network (inference builds it from them)
    network = json.loads((tmp_path / "models" / "network.json").read_text())
    assert network == json.loads((tmp_path / "models" / "stage_e" / "network.json").read_text())
    assert (network["segmenter_depth"], network["pyramid_channels"]) == (18, 8)
    results = json.loads((tmp_path / "models" / "results.json").read_text())
    assert list(results) == list(STAGES)
    assert "val_dice" in results["a"]["metrics"] and "val_smape" not in results["a"]["metrics"]
    assert all("val_smape" in results[s]["metrics"] for s in "bcde")

    stage = {s: _weights(tmp_path / "models" / f"stage_{s}" / "model.pt") for s in STAGES}
    assert torch.equal(
        _weights(tmp_path / "models" / "model.pt")["regressor.fc.weight"], stage["e"]["regressor.fc.weight"]
    )

    def same(a: str, b: str, prefix: str) -> bool:
        return all(torch.equal(stage[a][k], stage[b][k]) for k in stage[a] if k.startswith(prefix))

    # each stage starts from the previous one and changes only what it trains
    assert same("a", "b", "segmenter.") and not same("a", "b", "regressor.")
    # (whether alpha itself moves in one tiny epoch depends on the CAM; tests/engines covers the gate's training)
    assert same("b", "c", "regressor.") and not same("b", "c", "segmenter.")
    assert same("c", "d", "regressor.") and not same("c", "d", "segmenter.")
    assert same("d", "e", "segmenter.") and not same("d", "e", "regressor.")
    assert torch.all(stage["a"]["segmenter.gate.alpha"] == 0)  # the gate is frozen until stage c

    again = _bundle(*command, "--output_dir", str(tmp_path / "eval"))
    assert again.returncode == 0 and again.log.count("finished earlier") == 5
    assert "Epoch[1]" not in again.log

    # another run (here another validation fold) must not pass off these results as its own
    other = _bundle(*command, "--output_dir", str(tmp_path / "eval"), "--fold", "1")
    assert other.returncode != 0 and "holds checkpoints of another run" in other.log


def test_a_stage_alone_needs_the_previous_checkpoint(tiny, tmp_path):
    result = _stage("c", tiny, tmp_path)
    assert result.returncode != 0
    assert "stage_b/model.pt, which does not exist: train the previous stage first" in result.log
    assert "Epoch[1]" not in result.log


def test_resume_and_refusals(tiny, tmp_path):
    assert _stage("a", tiny, tmp_path).returncode == 0
    folder = tmp_path / "models" / "stage_a"
    finished = _stage("a", tiny, tmp_path)
    assert finished.returncode != 0 and "holds a finished stage" in finished.log

    # a killed stage: its last epoch checkpoint is there, done.json is not; the rerun continues at epoch 2
    (folder / "done.json").unlink()
    resumed = _stage("a", tiny, tmp_path, "--epochs", "{a: 2}")
    assert resumed.returncode == 0, resumed.log[-3000:]
    assert "resuming from" in resumed.log and "epoch 1 until 2 epochs" in resumed.log
    assert (folder / "checkpoint_epoch=2.pt").is_file() and not (folder / "checkpoint_epoch=1.pt").exists()

    other = _stage("a", tiny, tmp_path, "--fold", "1")
    assert other.returncode != 0 and "holds checkpoints of another run" in other.log
    assert (folder / "checkpoint_epoch=2.pt").is_file() and (folder / "done.json").is_file()


def test_the_seed_decides_the_weights(tiny, tmp_path):
    runs = {"first": "0", "second": "0", "other": "1"}
    for run, seed in runs.items():
        result = _stage("a", tiny, tmp_path / run, "--epochs", "{a: 2}", "--seed", seed)
        assert result.returncode == 0, result.log[-3000:]
    first, second, other = (_weights(tmp_path / run / "models" / "stage_a" / "model.pt") for run in runs)
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not all(torch.equal(first[key], other[key]) for key in first)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (("--dataset_dir", "/nowhere/boostnet"), "dataset root /nowhere/boostnet does not exist"),
        (("--regressor_backbone", "resnet99"), "backbone must be one of"),
    ],
)
def test_bad_input_stops_before_training(tiny, tmp_path, override, message):
    result = _stage("a", tiny, tmp_path, *override)
    assert result.returncode != 0 and message in result.log
    assert "Epoch[1]" not in result.log
    # the message alone ends the command; the traceback only when asked for
    last = result.stderr.rstrip().splitlines()[-1]
    assert "Traceback" not in result.log and last.startswith("ERROR: ") and message in last
    debug = _stage("a", tiny, tmp_path, *override, SEG4REG_DEBUG="1")
    assert debug.returncode != 0 and "Traceback" in debug.log and message in debug.log
    # nothing claims the stage folder, so the corrected command is not refused as another run's
    folder = tmp_path / "models" / "stage_a"
    assert not folder.exists() or not any(folder.iterdir())


def test_a_corrected_start_runs_where_a_failed_one_stopped(tiny, tmp_path):
    assert _stage("a", tiny, tmp_path, "--regressor_backbone", "resnet99").returncode != 0
    result = _stage("a", tiny, tmp_path)
    assert result.returncode == 0, result.log[-3000:]
    assert (tmp_path / "models" / "stage_a" / "network.json").is_file()


def test_retrain_trains_this_run_again_but_never_clears_another_run(tiny, tmp_path):
    models = tmp_path / "models"
    command = ("training", "--config_file", _files("train.yaml", tiny), "--ckpt_dir", str(models), "--stages", "[a]")
    assert _bundle(*command, "--output_dir", str(tmp_path / "eval")).returncode == 0
    written = (models / "stage_a" / "model.pt").read_bytes()
    other = _bundle(*command, "--output_dir", str(tmp_path / "eval"), "--fold", "1", "--retrain", "true")
    assert other.returncode != 0 and "holds checkpoints of another run" in other.log
    assert (models / "stage_a" / "model.pt").read_bytes() == written and (models / "stage_a" / "done.json").is_file()
    again = _bundle(*command, "--output_dir", str(tmp_path / "eval"), "--retrain", "true")
    assert again.returncode == 0 and "Epoch[1]" in again.log


def test_the_pipeline_never_replaces_a_model_it_did_not_write(tiny, tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.pt").write_bytes(b"someone's model")
    command = ("training", "--config_file", _files("train.yaml", tiny), "--ckpt_dir", str(tmp_path / "models"))
    result = _bundle(*command, "--output_dir", str(tmp_path / "eval"), "--stages", "[a]")
    assert result.returncode != 0 and "was not written by a training run of this bundle" in result.log
    assert (tmp_path / "models" / "model.pt").read_bytes() == b"someone's model"
    assert not (tmp_path / "models" / "stage_a").exists()


def test_mlflow_records_one_run_per_stage(tiny, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    command = ("training", "--config_file", _files("train.yaml", tiny), "--ckpt_dir", str(tmp_path / "models"))
    result = _bundle(*command, "--output_dir", str(tmp_path / "eval"), "--tracking", "mlflow")
    assert result.returncode == 0, result.log[-3000:]
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'eval' / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("seg4reg_plus")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == [f"stage_{s}" for s in STAGES]
    for stage, run in runs.items():
        assert "val_dice" in run.data.metrics and "train_loss" in run.data.metrics
        assert run.data.params["stage"] == stage[-1] and run.data.params["seed"] == "0"
        artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
        assert any(p.endswith(".png") for p in artifacts) and {"model.pt", "network.json"} <= set(artifacts)
    assert all("val_smape" in runs[f"stage_{s}"].data.metrics for s in "bcde")


def test_a_stage_alone_tracks_to_the_given_tracking_uri(tiny, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'elsewhere' / 'tracking.db'}"
    (tmp_path / "elsewhere").mkdir()
    # MONAI resolves output_dir for --tracking before `run` puts the bundle on sys.path: a stage alone needs PYTHONPATH
    tracking = ("--tracking", str(CONFIGS / "mlflow.yaml"), "--tracking_uri", uri, "--save_execute_config", "True")
    result = _stage("a", tiny, tmp_path, *tracking, PYTHONPATH=str(REPO / "bundle"))
    assert result.returncode == 0, result.log[-3000:]
    assert not (tmp_path / "eval" / "mlruns.db").exists()
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("seg4reg_plus").experiment_id])
    assert run.info.run_name == "stage_a" and "val_dice" in run.data.metrics
    # with a plain --output_dir the executed config is still found and logged
    assert any(a.path.startswith("config_") for a in client.list_artifacts(run.info.run_id))
    # every network setting is a parameter, lists included, as written beside the model
    stage_dir = tmp_path / "models" / "stage_a"
    settings = read_settings(stage_dir)
    assert {name: run.data.params.get(name) for name in NETWORK_SETTINGS} == {n: str(settings[n]) for n in settings}
    assert run.data.params["spatial_size"] == "[64, 32]" and run.data.params["segmenter_depth"] == "18"
    # the best model and its network.json are artifacts, and they build and load the network as they are
    served = tmp_path / "served"
    for name in ("model.pt", "network.json"):
        client.download_artifacts(run.info.run_id, name, str(served))
    assert (served / "model.pt").read_bytes() == (stage_dir / "model.pt").read_bytes()
    network = load_weights(build_seg4reg(read_settings(served)), served / "model.pt", "served")
    trained = _weights(stage_dir / "model.pt")
    assert all(torch.equal(value, trained[key]) for key, value in network.state_dict().items())


def test_two_processes_train_a_stage_with_ddp(tiny, tmp_path):
    config = _files("train.yaml", "stage_a.yaml", "multi_gpu.yaml", tiny)
    result = _bundle("--config_file", config, "--ckpt_dir", str(tmp_path / "models"), torchrun=2)
    assert result.returncode == 0, result.log[-3000:]
    done = json.loads((tmp_path / "models" / "stage_a" / "done.json").read_text())
    assert "val_dice" in done["metrics"]
