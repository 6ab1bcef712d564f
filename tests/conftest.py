"""Hypothesis profiles: ``ci`` (derandomised, no deadline, no example database on disk) is used
when the CI environment variable is set; ``dev`` otherwise (random, still no database on disk);
``thorough`` (1,000 examples a test, random) by ``HYPOTHESIS_PROFILE=thorough``.

Tests that use torch run with one torch thread: the models are tiny, and on a shared 2-core machine
under pytest-xdist one thread is faster than several."""

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, database=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, database=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, database=None, max_examples=1000,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    torch = sys.modules.get("torch")  # never import torch just for this
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
