"""What `edgefer bulk` reads, planned without Ray: sources resolved so a file named two ways is one file, list
files that name themselves refused in one line, file ids that follow the file's content."""

from __future__ import annotations

import os
import time

import pytest
from typer.testing import CliRunner

from edgefer.bulk.sources import expand_sources, file_id
from edgefer.cli import app


def test_sources_resolve_to_one_path_per_file(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    photo = tmp_path / "a" / "p.jpg"
    photo.write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    found = expand_sources(["a/p.jpg", str(photo), "a/../a/p.jpg", "a", "a/*.jpg"])
    assert found == [str(photo.resolve())]


def test_a_list_that_names_itself_is_refused(tmp_path):
    first, second = tmp_path / "one.txt", tmp_path / "two.txt"
    first.write_text(f"{second}\n")
    second.write_text(f"# loops back\n{first}\n")
    with pytest.raises(ValueError, match="one.txt: this list file names itself"):
        expand_sources([str(first)])
    pytest.importorskip("ray")
    result = CliRunner().invoke(app, ["bulk", str(first), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "names itself" in result.output and "Traceback" not in result.output


def test_file_ids_follow_the_file_not_its_spelling(tmp_path, monkeypatch):
    video = tmp_path / "v.avi"
    video.write_bytes(b"1234")
    monkeypatch.chdir(tmp_path)
    assert file_id("v.avi") == file_id(str(video)) == file_id(str(tmp_path / "." / "v.avi"))
    before = file_id(str(video))
    time.sleep(0.01)
    video.write_bytes(b"12345")           # replaced by another file: a new id, so old results are not reused
    os.utime(video, None)
    assert file_id(str(video)) != before
    assert file_id("s3://bucket/v.avi") == file_id("s3://bucket/v.avi")
