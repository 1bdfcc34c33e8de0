"""A missing or unparsable kubeconfig is CniError(7) naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from jaring.cni.errors import CniError, Code
from jaring.metaplugin.kubeclient import KubeConfig


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot read kubeconfig"),
        (b'{"clusters": [', "not valid JSON"),
        (b"clusters: [unclosed\n", "not valid YAML"),
        (b"- a list\n", "not a mapping"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_unreadable_kubeconfig(tmp_path: Path, content: bytes | None, words: str) -> None:
    path = tmp_path / "kc"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CniError) as info:
        KubeConfig.load(str(path))
    assert info.value.code == Code.INVALID_CONFIG
    assert words in info.value.msg
    assert str(path) in info.value.msg
