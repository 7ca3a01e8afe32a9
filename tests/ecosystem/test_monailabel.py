# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The bundle in MONAI Label 0.8.5 for real: BundleInferTask loads it, Seg4RegInferTask answers with the spine mask and
the angles, and stage (a) trains through BundleTrainTask on {image, label} pairs. Skipped where monailabel is absent.

STAND-INS, said plainly: monailabel imports ``torchvision.utils`` (image grids for TensorBoard) and ``itk`` (its label
file writer) at module import. No torchvision wheel works with this project's CPU torch, and itk is not installed
here, so where either is absent these tests put a minimal fake module in ``sys.modules`` (``make_grid`` and
``save_image`` raise if called; ``itk`` is empty). Nothing tested here calls them: the label comes back as an array
(``result_write_to_file: false``) instead of being written through itk. Where the real modules exist they are used.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_bundle import CONFIGS, build_network, write_checkpoint, write_tiny_overlay

from scripts.data.aasce import load_datalist
from scripts.data.spine_mask import render_spine_mask
from scripts.networks.seg4reg import split_output

__all__: list[str] = []


def _stand_in(name: str, **attributes: object) -> list[str]:
    """Put a fake module ``name`` (and its parent) in ``sys.modules`` when the real one is absent; the names added."""
    if importlib.util.find_spec(name.split(".")[0]) is not None:
        return []
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module
    if "." in name:
        parent_name, child = name.rsplit(".", 1)
        parent = sys.modules.setdefault(parent_name, types.ModuleType(parent_name))
        setattr(parent, child, module)
        return [name, parent_name]
    return [name]


def _not_here(*args: object, **kwargs: object) -> None:
    raise RuntimeError("stand-in for torchvision.utils (no CPU torchvision wheel): not callable in these tests")


@pytest.fixture(scope="module")
def monailabel():
    """monailabel's bundle tasks; the stand-ins above where torchvision / itk are absent."""
    # scripts/setup_env.sh installs monailabel: its absence is a broken environment, not a reason to skip
    fakes = _stand_in("torchvision.utils", make_grid=_not_here, save_image=_not_here) + _stand_in("itk")
    patch = pytest.MonkeyPatch()
    # MONAI Label reloads the bundle's `scripts` package on every call; here it is already imported from bundle/
    patch.setenv("MONAI_LABEL_RELOAD_APP_LIB", "false")
    try:
        infer = importlib.import_module("scripts.monailabel.infer")
        train = importlib.import_module("scripts.monailabel.train")
        bundle_infer = importlib.import_module("monailabel.tasks.infer.bundle")
    except ModuleNotFoundError as error:
        patch.undo()
        for name in fakes:
            sys.modules.pop(name, None)
        pytest.fail(f"monailabel needs {error.name!r}: see the install lines of docs/monai_label.md")
    yield types.SimpleNamespace(infer=infer, train=train, BundleInferTask=bundle_infer.BundleInferTask)
    patch.undo()
    for name in fakes:
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle folder as MONAI Label sees one: the real configs, a tiny recipe overlay and a tiny model.pt."""
    root = tmp_path_factory.mktemp("bundle") / "seg4reg_spine"
    shutil.copytree(CONFIGS, root / "configs")
    write_tiny_overlay(root / "configs")
    (root / "configs" / "tiny_train.yaml").write_text(
        "batch_size: 2\nnum_workers: 0\nprogress_bar: false\namp: false\nrotate_deg: 10.0\n"
    )
    write_checkpoint(
        [root / "configs" / "inference.yaml", root / "configs" / "tiny.yaml"], root / "models" / "model.pt"
    )
    return root


@pytest.fixture(scope="module")
def pairs(phantom_root: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    """{image, label} file pairs as a MONAI Label datastore lists them: radiographs and 0/1 spine masks (png)."""
    folder = tmp_path_factory.mktemp("labels")
    records = []
    for record in load_datalist(phantom_root, "training")[:6]:
        mask = render_spine_mask(record["landmarks"], record["size"])
        label = folder / (Path(record["image"]).stem + ".png")
        Image.fromarray(mask).save(label)
        records.append({"image": str(record["image"]), "label": str(label)})
    return records


def test_bundle_infer_task_loads_the_bundle_as_2d(monailabel, bundle):
    task = monailabel.BundleInferTask(str(bundle), {})
    assert task.is_valid() and task.dimension == 2
    assert task.labels["spine"] == 1 and "background" not in task.labels
    assert task.info()["version"] == json.loads((CONFIGS / "metadata.json").read_text())["version"]


def test_seg4reg_infer_task_gives_the_mask_and_the_angles(monailabel, bundle, pairs):
    task = monailabel.infer.Seg4RegInferTask(str(bundle), {}, overlays=["tiny.yaml"])
    assert task.is_valid() and task.dimension == 2 and task.labels == {"spine": 1}
    image = pairs[0]["image"]
    label, result = task({"image": image, "device": "cpu", "result_write_to_file": False})

    height, width = Image.open(image).size[::-1]
    assert label.shape == (height, width) and label.dtype == np.uint8 and set(np.unique(label)) <= {0, 1}
    assert result["label_names"] == {"spine": 1}
    assert result["image_size"] == {"height": height, "width": width} and result["name"] == Path(image).name
    assert set(result["angles_deg"]) == {"angle1", "angle2", "angle3"} and "curve_type" in result

    # the same angles as the bundle's own preprocessing and the eager network with the same weights
    configs = [bundle / "configs" / "inference.yaml", bundle / "configs" / "tiny.yaml"]
    network = build_network(configs, bundle / "models").eval()
    network.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(p) for p in configs])
    parser["ckpt_dir"] = str(bundle / "models")  # the settings recorded beside this bundle's model
    x = parser.get_parsed_content("preprocessing")({"image": image})["image"]
    with torch.no_grad():
        expected = split_output(network(torch.as_tensor(x)[None].float()))["angles"][0]
    got = torch.tensor([result["angles_deg"][k] for k in ("angle1", "angle2", "angle3")], dtype=torch.float32)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-3)


class ListDatastore:
    """The one datastore method BundleTrainTask calls: the labelled {image, label} pairs."""

    def __init__(self, records: list[dict[str, str]]) -> None:
        self.records = records

    def datalist(self) -> list[dict[str, str]]:
        return list(self.records)


@pytest.mark.slow
def test_stage_a_trains_through_bundle_train_task(monailabel, bundle, pairs):
    before = torch.load(bundle / "models" / "model.pt", weights_only=True)
    task = monailabel.train.Seg4RegSegmentationTrainTask(str(bundle), {}, overlays=["tiny.yaml", "tiny_train.yaml"])
    assert task.is_valid()
    request = {"model": "seg4reg", "device": "cpu", "max_epochs": 1, "val_split": 0.5, "multi_gpu": False}
    assert task(request, ListDatastore(pairs)) == {}

    done = json.loads((bundle / "models" / "stage_a" / "done.json").read_text())
    assert done["stage"] == "a"
    after = torch.load(bundle / "models" / "model.pt", weights_only=True)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("segmenter.") for k in changed)  # stage (a) trains N_S, keeps N_R
    # the published model travels with the settings of the network that trained it, which inference builds from
    published = json.loads((bundle / "models" / "network.json").read_text())
    assert published == json.loads((bundle / "models" / "stage_a" / "network.json").read_text())
    assert (published["segmenter_depth"], published["spatial_size"]) == (18, [64, 32])

    with pytest.raises(ValueError, match="val_split must be > 0"):
        task({**request, "val_split": 0.0}, ListDatastore(pairs))


def test_pair_preprocessing_makes_stage_a_records_and_names_a_mismatched_label(pairs, tmp_path):
    from scripts.monailabel.pairs import pair_preprocessing

    record = pair_preprocessing([64, 32])(pairs[0])
    assert set(record) == {"image", "label", "angles"}
    assert tuple(record["image"].shape) == (1, 64, 32) and tuple(record["label"].shape) == (1, 64, 32)
    assert set(torch.unique(record["label"]).tolist()) == {0.0, 1.0} and torch.isnan(record["angles"]).all()

    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((40, 20), dtype=np.uint8)).save(small)
    with pytest.raises(RuntimeError) as failure:  # MONAI wraps a transform's error in "applying transform ..."
        pair_preprocessing([64, 32])({"image": pairs[0]["image"], "label": str(small)})
    assert "small.png" in str(failure.value.__cause__) and "must have its radiograph's size" in str(
        failure.value.__cause__
    )
