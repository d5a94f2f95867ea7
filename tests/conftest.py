"""Shared fixtures: tiny hand-made models with known structure (no downloads)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch import nn
import pytest

# The bench/ scripts (bench/load.py serves the app for the browser tests) are not part of the
# installed package: the checkout's root is put on the path so tests import them as ``bench.*``.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Exact-value comparisons across the suite (a page's map against the library's) are made in
# fp32; the device's own precision choice (bf16 on AMX/AVX-512-BF16 CPUs and CUDA, where it
# agrees with fp32) is tested on its own in tests/test_precision.py, which unsets this.
os.environ.setdefault("RRS_PRECISION", "fp32")


class TinyConvNet(nn.Module):
    """A small ReLU conv net on (C, S, S) inputs; fixed random init from ``seed``."""

    def __init__(self, channels=3, classes=3, width=6, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.fc = nn.Linear(width, classes)
        for p in self.parameters():
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.cam_layer = self.conv2

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h))
        return self.fc(h.mean((2, 3)))


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    """The CPU, and a CUDA device when one is present: device-agnostic tests run on both."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    return torch.device(request.param)


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return TinyConvNet().eval()


@pytest.fixture
def tiny_model64():
    return TinyConvNet().double().eval()


@pytest.fixture
def tiny_input():
    g = torch.Generator().manual_seed(1)
    return torch.rand(3, 8, 8, generator=g)


@pytest.fixture(scope="module")
def tiny():
    """The bundled tiny shapes CNN (loaded once and shared, frozen by rrs.models: never mutate it)."""
    from rrs.models import load_tiny
    return load_tiny()


@pytest.fixture(scope="module")
def x32():
    """The coffee sample as a 32-px model input."""
    from rrs.images import load_sample, to_tensor
    return to_tensor(load_sample("coffee"), 32)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    tiny models gain nothing from intra-op threads, and on a shared 2-core machine OpenMP
    spinning made the attack tests up to 10× slower with 2 threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def net():
    """A :class:`TinyConvNet` (3 channels, 3 classes, width 6, seed 0), shared by a module."""
    return TinyConvNet(channels=3, classes=3, width=6, seed=0).eval()


@pytest.fixture(scope="module")
def img():
    """A random 3 × 8 × 8 image in [0, 1) (seed 1), shared by a module."""
    return torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1))
