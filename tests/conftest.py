"""Hypothesis profiles: ``ci`` (derandomized, small), ``dev`` (default) and ``nightly`` (long).

Pick one with ``HYPOTHESIS_PROFILE=ci pytest``.
"""

import os

import torch
from hypothesis import settings

settings.register_profile("ci", derandomize=True, max_examples=25, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("nightly", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# The tests push many tiny tensors: intra-op threads only add contention (3x slower on a busy box).
torch.set_num_threads(1)
