# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The bundle in MONAI Label 0.8.5 for real: BundleInferTask loads it, Seg4RegInferTask answers with the spine mask and
the angles and writes it as a PNG of the radiograph's size, stage (a) trains through BundleTrainTask on
{image, label} pairs, and (slow) a real ``monailabel start_server`` serves the bundle's app over HTTP.

STAND-INS, said plainly: monailabel imports ``torchvision.utils`` and ``pydicom_seg`` at module import, and no wheel of
either works here (docs/monai_label.md quotes the errors). Where one is absent, the stand-in of ``tests/ecosystem/
standins/`` (the only place that has them) is put on the path: at the end of ``sys.path`` in this process, and through
``PYTHONPATH`` (only the missing ones) for the server. Their functions raise if called; nothing tested here calls them.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_bundle import CONFIGS, REPO, build_network, write_checkpoint, write_tiny_overlay

from scripts.data.aasce import load_datalist
from scripts.data.spine_mask import render_spine_mask
from scripts.networks.seg4reg import split_output

__all__: list[str] = []

STANDINS = Path(__file__).resolve().parent / "standins"
STOOD_IN = ("torchvision", "pydicom_seg")  # modules monailabel imports that have no working wheel here


def _missing_modules() -> list[str]:
    """The modules of :data:`STOOD_IN` that are not installed (absent, or found only in the stand-ins folder)."""
    missing = []
    for name in STOOD_IN:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None or STANDINS in Path(spec.origin).resolve().parents:
            missing.append(name)
    return missing


@pytest.fixture(scope="module")
def monailabel():
    """monailabel's bundle tasks, with the stand-ins of ``standins/`` where torchvision / pydicom_seg are absent."""
    # scripts/setup_env.sh installs monailabel: its absence is a broken environment, not a reason to skip
    added = bool(_missing_modules()) and str(STANDINS) not in sys.path
    if added:
        sys.path.append(str(STANDINS))  # last: a real module, where installed, still wins
    patch = pytest.MonkeyPatch()
    # MONAI Label reloads the bundle's `scripts` package on every call; here it is already imported from bundle/
    patch.setenv("MONAI_LABEL_RELOAD_APP_LIB", "false")
    try:
        infer = importlib.import_module("scripts.monailabel.infer")
        train = importlib.import_module("scripts.monailabel.train")
        bundle_infer = importlib.import_module("monailabel.tasks.infer.bundle")
    except ModuleNotFoundError as error:
        pytest.fail(f"monailabel needs {error.name!r}: see the install lines of docs/monai_label.md")
    yield types.SimpleNamespace(infer=infer, train=train, BundleInferTask=bundle_infer.BundleInferTask)
    patch.undo()
    if added:
        sys.path.remove(str(STANDINS))


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


def test_infer_task_writes_a_png_label_of_the_radiographs_height_and_width(monailabel, bundle, pairs):
    task = monailabel.infer.Seg4RegInferTask(str(bundle), {}, overlays=["tiny.yaml"])
    image = pairs[0]["image"]  # a .jpg: monailabel alone would write a lossy .jpg label, transposed
    array, _ = task({"image": image, "device": "cpu", "result_write_to_file": False})
    label_file, result = task({"image": image, "device": "cpu"})
    try:
        with Image.open(label_file) as label:
            assert label.format == "PNG" and label.mode == "L"
            assert label.size == Image.open(image).size  # (width, height): the radiograph's
            written = np.asarray(label)
    finally:
        Path(label_file).unlink()
    assert set(np.unique(written)) <= {0, 1} and np.array_equal(written, array)
    assert result["image_size"] == {"height": written.shape[0], "width": written.shape[1]}


def test_another_label_format_goes_through_monailabels_writer_in_monai_order(monailabel, bundle, pairs):
    import itk  # monailabel's writer (monailabel.transform.writer imports it: the fixture fails without it)

    task = monailabel.infer.Seg4RegInferTask(str(bundle), {}, overlays=["tiny.yaml"])
    image = pairs[0]["image"]
    array, _ = task({"image": image, "device": "cpu", "result_write_to_file": False})
    label_file, _ = task({"image": image, "device": "cpu", "result_extension": ".nrrd"})
    try:
        label = itk.imread(label_file)
        assert tuple(itk.size(label)) == Image.open(image).size  # ITK's (x, y) = (width, height)
        assert np.array_equal(itk.array_from_image(label), array)
    finally:
        Path(label_file).unlink()


def test_label_file_boundary_orders_and_refuses_what_is_not_a_2d_label(tmp_path):
    from scripts.monailabel.label_file import to_monai_order, write_png_label

    mask = np.zeros((5, 3), dtype=np.uint8)
    mask[1:4, 1] = 1
    assert to_monai_order(mask).shape == (3, 5) and np.array_equal(to_monai_order(mask[None]).T, mask)
    path = write_png_label(mask[None], tmp_path)
    assert path.parent == tmp_path and np.array_equal(np.asarray(Image.open(path)), mask)
    assert write_png_label(mask, tmp_path) != path  # a fresh file each time: nothing is overwritten
    with pytest.raises(ValueError, match=r"must be \(H, W\) or \(1, H, W\), got shape \(2, 5, 3\)"):
        write_png_label(np.zeros((2, 5, 3)), tmp_path)
    with pytest.raises(ValueError, match=r"label indices 0\.\.255"):
        write_png_label(np.full((5, 3), 300), tmp_path)


def test_train_task_fits_a_small_label_set_and_defaults_to_one_device(monailabel, bundle, pairs):
    train = monailabel.train
    assert train.small_set_batch_size(16, 1) == 1 and train.small_set_batch_size(2, 5) == 2
    with pytest.raises(ValueError, match="at least one training pair"):
        train.small_set_batch_size(16, 0)

    task = train.Seg4RegSegmentationTrainTask(str(bundle), {}, overlays=["tiny.yaml", "tiny_train.yaml"])
    assert task.config()["multi_gpu"] is False
    fit, val = task._partition_datalist(pairs[:2], {"val_split": 0.2})  # 0.2 of 2 leaves no validation image
    assert (len(fit), len(val)) == (1, 1) and {r["image"] for r in fit + val} == {r["image"] for r in pairs[:2]}
    with pytest.raises(ValueError, match=r"needs at least 2 labelled images .* the datastore has 1: label 1 more"):
        task._partition_datalist(pairs[:1], {"val_split": 0.2})
    overrides = task._update_overrides({"train#dataset#data": fit, "validate#dataset#data": val})
    assert overrides["batch_size"] == 1  # tiny_train.yaml asks for 2; one pair makes one full batch per epoch


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_bundle(root: Path) -> Path:
    """A copy of the bundle (configs, scripts, tiny model) for the server: it writes there, never into bundle/."""
    folder = root / "seg4reg_spine"
    shutil.copytree(CONFIGS, folder / "configs")
    shutil.copytree(REPO / "bundle" / "scripts", folder / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    write_tiny_overlay(folder / "configs")
    (folder / "configs" / "tiny_train.yaml").write_text("batch_size: 4\nnum_workers: 0\namp: false\n")
    write_checkpoint(
        [folder / "configs" / "inference.yaml", folder / "configs" / "tiny.yaml"], folder / "models" / "model.pt"
    )
    return folder


def _wait_until_up(url: str, server: subprocess.Popen, log: Path, timeout_s: float) -> None:
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"monailabel start_server exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if requests.get(f"{url}/info/", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    pytest.fail(f"monailabel start_server did not answer within {timeout_s} s:\n{log.read_text()[-4000:]}")


@pytest.mark.slow
def test_monailabel_server_infers_a_png_label_and_trains_on_two_labels(monailabel, phantom_root, tmp_path):
    import requests

    folder = _server_bundle(tmp_path)
    studies = tmp_path / "studies"
    studies.mkdir()
    records = load_datalist(phantom_root, "training")[:3]
    for index, record in enumerate(records):
        shutil.copy(record["image"], studies / f"case{index}.jpg")
    standins = tmp_path / "standins"  # only the missing modules' stand-ins: a real module, where installed, wins
    standins.mkdir()
    for name in _missing_modules():
        (standins / name).symlink_to(STANDINS / name, target_is_directory=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(standins),
        "CUDA_VISIBLE_DEVICES": "",
        "MONAI_LABEL_AUTO_UPDATE_SCORING": "false",
    }
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "monailabel.main",
        "start_server",
        "--app",
        str(folder / "scripts" / "monailabel" / "app"),
    ]
    command += ["--studies", str(studies), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--conf", "overlays", "tiny.yaml,tiny_train.yaml"]
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_up(url, server, log, timeout_s=180)

        params = {"params": json.dumps({"device": "cpu"})}
        answer = requests.post(
            f"{url}/infer/seg4reg_spine", params={"image": "case0", "output": "image"}, data=params, timeout=180
        )
        assert answer.status_code == 200, answer.text
        label_file = tmp_path / "case0_label.png"
        label_file.write_bytes(answer.content)
        with Image.open(label_file) as label:
            assert label.format == "PNG"
            assert label.size == Image.open(studies / "case0.jpg").size  # (width, height) of the radiograph
            assert set(np.unique(np.asarray(label))) <= {0, 1}
        answer = requests.post(
            f"{url}/infer/seg4reg_spine", params={"image": "case0", "output": "json"}, data=params, timeout=180
        )
        assert answer.status_code == 200 and set(answer.json()["angles_deg"]) == {"angle1", "angle2", "angle3"}

        for index, record in enumerate(records[:2]):  # two labelled images: the smallest set training takes
            mask = tmp_path / f"mask{index}.png"
            Image.fromarray(render_spine_mask(record["landmarks"], record["size"])).save(mask)
            with mask.open("rb") as handle:
                answer = requests.put(
                    f"{url}/datastore/label",
                    params={"image": f"case{index}", "tag": "final"},
                    files={"label": (mask.name, handle, "image/png")},
                    timeout=60,
                )
            assert answer.status_code == 200, answer.text
        request = {"device": "cpu", "max_epochs": 1}
        answer = requests.post(f"{url}/train/seg4reg_spine", params={"run_sync": "true"}, json=request, timeout=400)
        assert answer.status_code == 200, f"{answer.status_code} {answer.text}\n{log.read_text()[-4000:]}"
        assert json.loads((folder / "models" / "stage_a" / "done.json").read_text())["stage"] == "a"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server's own process group (start_new_session)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
