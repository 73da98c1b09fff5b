"""The study across seeds (hand-computed mean ± sd and paired t-intervals), and `focalscope study` then
`focalscope report` end to end on two tiny corpora: ce, and rho1 against the ce run."""

from __future__ import annotations

import math

import pytest

from app.analytics.study import mean_spread, paired_difference, summarise_study


def test_mean_spread_and_paired_difference_by_hand():
    assert mean_spread([1.0, 2.0, 3.0, None]) == {"mean": 2.0, "sd": 1.0, "n": 3}
    assert mean_spread([4.0]) == {"mean": 4.0, "sd": None, "n": 1}
    assert mean_spread([None]) == {"mean": None, "sd": None, "n": 0}
    # d = (0.2, 0.4, 0.3): mean 0.3, sd 0.1, half-width 4.303 · 0.1 / √3 = 0.2484 < 0.3 → resolved.
    resolved = paired_difference({0: 3.2, 1: 3.4, 2: 3.3}, {0: 3.0, 1: 3.0, 2: 3.0})
    assert resolved["mean"] == pytest.approx(0.3) and resolved["sd"] == pytest.approx(0.1)
    assert resolved["half_width"] == pytest.approx(4.303 * 0.1 / math.sqrt(3)) and resolved["resolved"]
    # d = (0.1, −0.1, 0.3): mean 0.1, sd 0.2, half-width 0.497 → within the seed noise.
    noise = paired_difference({0: 3.1, 1: 2.9, 2: 3.3}, {0: 3.0, 1: 3.0, 2: 3.0, 3: 9.0})
    assert noise["n"] == 3 and noise["mean"] == pytest.approx(0.1) and not noise["resolved"]
    one = paired_difference({0: 3.5}, {0: 3.0})
    assert one == {"mean": pytest.approx(0.5), "sd": None, "n": 1, "half_width": None, "resolved": False}
    table = summarise_study({"ce": {0: {"x": 1.0}, 1: {"x": 2.0}}, "f": {0: {"x": 1.5}, 1: {"x": 2.5}}}, ["x"])
    assert "vs_baseline" not in table["ce"]["x"]
    assert table["f"]["x"]["vs_baseline"]["mean"] == pytest.approx(0.5)
    assert table["f"]["x"]["vs_baseline"]["sd"] == pytest.approx(0.0) and table["f"]["x"]["vs_baseline"]["resolved"]


def test_study_then_report_end_to_end(cli, tmp_path):
    words = "When shall we three meet again in thunder lightning or in rain fair is foul and foul is fair "
    (tmp_path / "train.txt").write_text(words * 60, encoding="utf-8")
    (tmp_path / "held").mkdir()
    for i in range(2):
        (tmp_path / "held" / f"scene{i}.txt").write_text((words * 6)[i * 7:], encoding="utf-8")
    cli("corpus", "add", str(tmp_path / "train.txt"), "--name", "train")
    cli("corpus", "add", str(tmp_path / "held"), "--name", "held")
    out = tmp_path / "report" / "tiny.html"
    done = cli("study", "--name", "tiny", "--corpus", "train", "--eval-corpus", "held", "--seeds", "0",
               "--losses", "ce", "--steps", "2", "--save-every", "2", "--batch-size", "2",
               "--seq-len", "16", "--device", "cpu", "--out", str(out))
    assert "--corpus train --eval-corpus held" in done.stdout
    markdown = out.with_suffix(".md").read_text(encoding="utf-8")
    summary, differences = markdown.split("Differences from ce")
    rows = {line.split(" | ")[0].strip("| "): line for line in summary.splitlines() if line.startswith("| ")}
    assert set(rows) == {"loss", "ce", "rho1:0.6"}
    assert "baseline" in rows["ce"] and "(one seed)" in rows["rho1:0.6"]
    assert [line.split(" | ")[0] for line in differences.splitlines() if line.startswith("| ")] == ["| loss", "| rho1:0.6"]
    page = out.read_text(encoding="utf-8")
    # Offline: plotly inline, no script or stylesheet fetched from anywhere.
    assert "Plotly.newPlot('chart-nucleus'" in page and 'src="http' not in page and "<link" not in page
    assert page.count('class=chart id="chart-') == 13 and "focalscope study --name tiny" in page
    again = tmp_path / "again.html"
    cli("report", "tiny", "--out", str(again))
    assert again.with_suffix(".md").read_text(encoding="utf-8") == markdown
    assert "no experiment 'nope'" in cli("report", "nope", "--out", str(again), expect=2).stderr
    assert "include ce" in cli("study", "--losses", "focal:2", expect=2).stderr
