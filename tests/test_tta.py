"""Test-time augmentation: the views it averages and the shipped model's use of them."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgefer.cli import app
from edgefer.runtime import DEFAULT_MODEL, load_classifier, tta_views


def test_views_are_mirror_and_edge_repeating_shifts():
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    assert [v.shape for v in tta_views(faces)] == [faces.shape] * 2
    views = tta_views(faces, shift=2)
    assert len(views) == 10
    np.testing.assert_array_equal(views[0], faces)
    np.testing.assert_array_equal(views[5], faces[:, :, ::-1])
    down, right = views[1], views[3]                     # offsets (2, 0) and (0, 2)
    np.testing.assert_array_equal(down[:, 2:], faces[:, :-2])
    np.testing.assert_array_equal(down[:, :2], np.repeat(faces[:, :1], 2, axis=1))
    np.testing.assert_array_equal(right[:, :, 2:], faces[:, :, :-2])
    # a channel axis is not what gets mirrored
    np.testing.assert_array_equal(tta_views(faces[..., None])[1][..., 0], faces[:, :, ::-1])
    with pytest.raises(ValueError, match="shift must be >= 0"):
        tta_views(faces, shift=-1)


def test_shipped_model_averages_its_views(fer_val):
    model = load_classifier(DEFAULT_MODEL, threads=1)
    faces = fer_val.images[:32]
    expected = np.mean([model.predict(view) for view in tta_views(faces, shift=2)], axis=0)
    averaged = model.predict_tta(faces, shift=2)
    assert averaged.shape == (32, 7)
    np.testing.assert_allclose(averaged, expected, atol=1e-6)
    np.testing.assert_allclose(model.predict_tta(faces[0]), model.predict_tta(faces[:1]), atol=1e-6)


def test_evaluate_with_shifted_views(fer_csv, tmp_path):
    runner = CliRunner()
    out = tmp_path / "eval"
    common = [str(DEFAULT_MODEL), "--data", str(fer_csv), "--limit", "600", "--out", str(out)]
    plain = runner.invoke(app, ["evaluate", *common])
    shifted = runner.invoke(app, ["evaluate", *common, "--tta-shift", "2"])
    assert plain.exit_code == 0 and shifted.exit_code == 0, plain.output + shifted.output
    assert "10 views" in shifted.output
    report = json.loads(next(out.glob("*_tta_shift2/metrics.json")).read_text())
    assert report["tta"] is True and report["tta_shift"] == 2 and report["samples"] == 600
    plain_report = json.loads((out / f"{DEFAULT_MODEL.stem}_PublicTest" / "metrics.json").read_text())
    assert report["accuracy"] > plain_report["accuracy"] - 0.02   # the same model, averaged views
    bad = runner.invoke(app, ["evaluate", *common, "--tta-shift", "-1"])
    assert bad.exit_code != 0 and "Invalid value for '--tta-shift'" in bad.output


def test_live_loop_averages_shifted_views(tmp_path):
    """`edgefer run --tta-shift` on the shipped photo: the same face, different (averaged) probabilities."""
    runner = CliRunner()
    faces = {}
    for name, extra in (("plain", []), ("shifted", ["--tta-shift", "2"])):
        out = tmp_path / f"{name}.jsonl"
        result = runner.invoke(app, ["run", "--source", "demo", "--json", str(out), "--no-show", "-q", *extra])
        assert result.exit_code == 0, result.output
        faces[name] = json.loads(out.read_text().splitlines()[0])["faces"]
    assert len(faces["plain"]) == len(faces["shifted"]) >= 1
    plain, shifted = faces["plain"][0], faces["shifted"][0]
    assert plain["box"] == shifted["box"]
    assert abs(sum(shifted["probabilities"].values()) - 1) < 0.01
    assert max(abs(plain["probabilities"][k] - shifted["probabilities"][k]) for k in plain["probabilities"]) > 1e-3
