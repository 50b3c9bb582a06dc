"""What a user sees first in TensorBoard after a sweep, asked of TensorBoard's own server."""

import importlib.util
import urllib.parse

from tests.conftest import REPO, run_cli

# The server README's screenshots are taken from (docs/screenshots.py).
_spec = importlib.util.spec_from_file_location("screenshots", REPO / "docs" / "screenshots.py")
screenshots = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(screenshots)
_get, _serve = screenshots.get, screenshots.serve


def test_a_sweep_opens_on_its_curves_and_hparams_lists_the_swept_key_first(tmp_path):
    sweep = tmp_path / "sweep"
    # One process (hydra.launcher.workers=1): no worker processes to start for runs this small.
    proc = run_cli("-m", "model.depth=1,3", "data.limit=200", "trainer.max_epochs=2", "hydra.launcher.workers=1",
                   f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    server, base = _serve(sweep, runs=2)
    try:
        # Time Series and Scalars show one group per tag prefix, in name order.
        tags = _get(f"{base}/data/plugin/scalars/tags")
        groups = sorted({tag.split("/")[0] for run in tags.values() for tag in run})
        first = sorted({tag for run in tags.values() for tag in run if tag.split("/")[0] == groups[0]})
        assert groups[0] == "acc" and first == ["acc/best_val", "acc/train", "acc/val"]
        for run in tags:
            for tag in first:
                points = _get(f"{base}/data/plugin/scalars/scalars?run={urllib.parse.quote(run)}&tag={tag}")
                assert [step for _, step, _ in points] == [1, 2]  # a curve over the epochs
        assert not any(tag.startswith("hp/") for run in tags.values() for tag in run)

        experiment = _get(f"{base}/data/plugin/hparams/experiment", {"experimentName": ""})
        columns = [info["name"] for info in experiment["hparamInfos"]]
        assert "model.depth" in columns[:5] and columns[0] == "model.depth"  # the one key that differs
        assert len(columns) <= 15  # what matters, not every key of the config
        metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
        assert {"acc/best_val", "acc/val", "loss/val", "test/acc"} <= metrics  # the objective, the tags users know
        groups = _get(f"{base}/data/plugin/hparams/session_groups", {
            "experimentName": "", "allowedStatuses": ["STATUS_SUCCESS", "STATUS_UNKNOWN"],
            "colParams": [{"hparam": "model.depth"}], "startIndex": 0, "sliceSize": 10})
        depths = sorted(g["hparams"]["model.depth"] for g in groups["sessionGroups"])
        assert depths == [1, 3] and all(g["sessions"][0]["status"] == "STATUS_SUCCESS" for g in groups["sessionGroups"])
    finally:
        server.terminate()
        server.wait()


def test_hparams_tell_the_depth_presets_apart_by_name_and_by_their_shortcuts():
    from omegaconf import OmegaConf

    from mlpbench.hparams import run_hparams
    from tests.conftest import make_config

    shown = {}
    for preset in ("depth_relu", "depth_residual"):
        config = OmegaConf.to_container(make_config(f"experiment={preset}", "model.depth=4", "seed=1"), resolve=True)
        shown[preset] = run_hparams(config, ["model.depth=4", "seed=1"], preset)
    assert [h["experiment"] for h in shown.values()] == ["depth_relu", "depth_residual"]
    assert [h["model.residual"] for h in shown.values()] == [False, True]
    assert {key for key, a in shown["depth_relu"].items() if shown["depth_residual"][key] != a} == {"experiment",
                                                                                                 "model.residual"}


def test_hparams_write_a_list_as_the_command_line_and_the_report_write_it():
    """TensorBoard's cell for data.categorical=[zip,'Zip Code'] reads as the report's, not as
    Python's repr (['zip', 'Zip Code']); a list from the preset alike; a null is an empty cell."""
    from mlpbench.hparams import run_hparams

    config = {"data": {"categorical": ["zip", "Zip Code"], "drop": None}, "model": {"units": [256, 128]}, "seed": 1}
    shown = run_hparams(config, ["data.categorical=[zip,'Zip Code']", "data.drop=null", "seed=1"])
    assert shown["data.categorical"] == "[zip,'Zip Code']" and shown["model.units"] == "[256,128]"
    assert "data.drop" not in shown and shown["seed"] == 1
