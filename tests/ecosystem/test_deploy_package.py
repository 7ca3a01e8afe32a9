# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""What ``monai-deploy package`` reads from the application folder, checked without Docker or the SDK.

The packager (the Holoscan CLI's ``package`` command) needs ``app.yaml`` (``application`` with a title and version,
``resources``) and takes ``requirements.txt`` from the application folder. In the image it lays the application folder
out at ``/opt/holoscan/app`` (run as ``python3 /opt/holoscan/app``), a model file given with ``-m`` at
``/opt/holoscan/models/<file stem>/<file>`` (``$HOLOSCAN_MODEL_PATH`` is ``/opt/holoscan/models``), and the contents of
each ``--add`` folder at ``/opt/holoscan/lib``, which it puts on ``PYTHONPATH`` with every folder below it (the
bundle's ``scripts`` and ``configs`` go there). The last test builds that layout in a temporary folder and runs the
application from it, as the image would.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml
from monai.bundle import ckpt_export
from tiny_bundle import CONFIGS, META, REPO, write_checkpoint, write_tiny_overlay

from scripts.deploy.app import Seg4RegDeployApp

__all__: list[str] = []

APP_DIR = REPO / "bundle" / "scripts" / "deploy"
BUNDLE = REPO / "bundle"
MODEL_NAME = "seg4reg_plus.ts"
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)==(?P<version>\S+)$")


def _pins(path: Path) -> dict[str, str]:
    """``{normalised name: version}`` of a requirements file; any line that is not ``name==version`` fails."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        assert match, f"{path}: {line!r} is not pinned as name==version"
        pins[re.sub(r"[-_.]+", "-", match["name"]).lower()] = match["version"]
    return pins


def test_app_yaml_has_what_the_packager_reads():
    config = yaml.safe_load((APP_DIR / "app.yaml").read_text())
    application, resources = config["application"], config["resources"]
    assert application["title"].strip()
    assert str(application["version"]) == Seg4RegDeployApp.version
    assert application["inputFormats"] == ["file"] and application["outputFormats"] == ["file"]
    assert {"cpu", "gpu", "memory", "gpuMemory"} <= set(resources)
    assert all(re.fullmatch(r"\d+(\.\d+)?[MG]i", str(resources[key])) for key in ("memory", "gpuMemory"))


def test_app_requirements_are_pinned_as_the_repository_pins_them():
    app, repo = _pins(APP_DIR / "requirements.txt"), _pins(REPO / "requirements.txt")
    shared = set(app) & set(repo)
    assert {"torch", "monai", "pytorch-ignite", "pydicom", "python-gdcm"} <= shared  # gdcm: compressed DICOM
    assert {name: app[name] for name in shared} == {name: repo[name] for name in shared}
    assert set(app) - shared == {"highdicom"}  # the SDK's import of monai.deploy needs it (docs/monai_deploy.md)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory, phantom_root: Path) -> Path:
    """The image's layout under a temporary folder: app/, lib/ (``--add``), models/ (``-m``), input/."""
    root = tmp_path_factory.mktemp("opt_holoscan")
    work = tmp_path_factory.mktemp("export")
    configs = [CONFIGS / "inference.yaml", write_tiny_overlay(work)]
    ckpt = work / "models" / "model.pt"
    write_checkpoint(configs, ckpt)
    model = work / MODEL_NAME
    ckpt_export(
        net_id="network_def",
        filepath=str(model),
        ckpt_file=str(ckpt),
        meta_file=str(META),
        config_file=[str(p) for p in configs],
        ckpt_dir=str(ckpt.parent),
    )
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(APP_DIR, root / "app", ignore=skip)
    for folder in ("scripts", "configs"):  # the --add folder: the bundle's code and configs (train.yaml: defaults)
        shutil.copytree(BUNDLE / folder, root / "lib" / folder, ignore=skip)
    (root / "models" / model.stem).mkdir(parents=True)
    shutil.copy(model, root / "models" / model.stem / model.name)
    (root / "input").mkdir()
    for path in sorted((phantom_root / "data" / "training").glob("*.jpg"))[:2]:
        shutil.copy(path, root / "input" / path.name)
    return root


def _third_party_imports(module_files: list[Path]) -> set[str]:
    """Top-level names imported by the given source files that are neither the standard library nor ``scripts``."""
    names = set()
    for path in module_files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__", "scripts"}


def test_the_application_runs_from_the_packaged_layout(packaged):
    lib = packaged / "lib"
    python_path = [str(lib), *(str(p) for p in sorted(lib.rglob("*")) if p.is_dir())]  # as the packager sets it
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(python_path),
        HOLOSCAN_INPUT_PATH=str(packaged / "input"),
        HOLOSCAN_OUTPUT_PATH=str(packaged / "output"),
        HOLOSCAN_MODEL_PATH=str(packaged / "models"),
    )
    loaded = packaged / "loaded_modules.json"
    # `python3 /opt/holoscan/app` (runpy runs a folder's __main__.py as that command does), then the bundle modules
    # it loaded, the embedded config's included
    run = (
        "import json, runpy, sys\n"
        "try:\n"
        f"    runpy.run_path({str(packaged / 'app')!r}, run_name='__main__')\n"
        "finally:\n"
        "    files = [m.__file__ for n, m in list(sys.modules.items()) if n.split('.')[0] == 'scripts' and m.__file__]\n"
        f"    open({str(loaded)!r}, 'w').write(json.dumps(files))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", run], cwd=packaged, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    with open(packaged / "output" / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert sorted(r["name"] for r in rows) == sorted(p.name for p in (packaged / "input").iterdir())
    record = json.loads((packaged / "output" / f"{Path(rows[0]['name']).stem}.json").read_text())
    assert record["checkpoint"].endswith(MODEL_NAME)
    # every bundle module came from the packaged lib/, and each package it imports is in the app's requirements
    files = [Path(f) for f in json.loads(loaded.read_text())]
    assert files and all(lib in f.parents for f in files), [f for f in files if lib not in f.parents]
    distributions = packages_distributions()
    needed = {
        re.sub(r"[-_.]+", "-", dist).lower()
        for name in _third_party_imports(files)
        for dist in distributions.get(name, [name])
    }
    needed -= {"monai-deploy-app-sdk"}  # installs into the monai package; the packager installs it itself
    assert needed <= set(_pins(APP_DIR / "requirements.txt")), needed - set(_pins(APP_DIR / "requirements.txt"))
