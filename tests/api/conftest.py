"""Fixtures for API tests: kmock's emulator by default, a real cluster on request.

`cluster` gives each test a kubeconfig and a unique namespace with helpers to
create pods and NADs. With `JARING_TEST_KUBECONFIG=/path/to/kubeconfig` the
same tests run against that cluster (needs the NAD CRD from crds/); every
namespace a test made is deleted after it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import ENV_KUBECONFIG, Cluster, KmockServer
from .scripted import Pki


@pytest.fixture(scope="session", name="api_kubeconfig")
def api_kubeconfig_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, bool]]:
    """(kubeconfig, is a real cluster) for the whole session."""
    real = os.environ.get(ENV_KUBECONFIG, "")
    if real:
        yield Path(real), True
        return
    with KmockServer() as server:
        path = server.write_kubeconfig(tmp_path_factory.mktemp("kmock") / "kubeconfig")
        yield path, False


@pytest.fixture(name="cluster")
def cluster_fixture(api_kubeconfig: tuple[Path, bool]) -> Iterator[Cluster]:
    kubeconfig, real = api_kubeconfig
    made = Cluster(kubeconfig=kubeconfig, real=real)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def kmock_only(api_kubeconfig: tuple[Path, bool]) -> None:
    """For shapes a real API server would refuse to store."""
    if api_kubeconfig[1]:
        pytest.skip("kmock only: a real API server validates this away")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is needed to make test certificates")
    return Pki.make(tmp_path_factory.mktemp("pki"))
