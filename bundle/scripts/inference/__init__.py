# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Inference on folders of radiographs and evaluation on labelled splits (configs/inference.yaml, evaluate.yaml)."""
