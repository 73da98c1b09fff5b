"""GET /studies and /studies/{name} on SQLite and PostgreSQL, over a study written straight to the
store (tests/support/study_rows.py: no training): the page's table cells are the report's, the
differences from ce are the ones worked out by hand, and a study still training is served partial."""

from __future__ import annotations

import pytest

from app.models.checkpoint import ModelSeries
from app.models.corpus import Corpus
from app.models.job import Job
from app.models.training import Experiment
from app.services.study import study_view
from app.vocab import KIND_TRAIN, QUEUED
from focalscope.report import render_markdown
from tests.support.api import API, error_of
from tests.support.study_rows import COMMAND, heldout_ce, seed_study

SEEDS = [0, 1, 2]


def test_studies_list_and_results_match_the_report(api, sessions):
    with sessions() as session:
        train = Corpus(name="train")
        session.add(train)
        session.flush()
        # No eval corpus: the held-out numbers are the trainer's own (checkpoint meta), no scoring runs.
        seed_study(session, name="tiny", losses=["ce", "focal:2"], seeds=SEEDS, train_corpus_id=train.id,
                   eval_corpus_id=None)
        session.add(Experiment(name="alone", train_corpus_id=train.id, config={"losses": ["ce"]}))
        session.commit()

    listed = api.get(f"{API}/studies").json()
    assert listed["total"] == 1
    [summary] = listed["items"]
    assert (summary["name"], summary["seeds"], summary["losses"], summary["experiments"], summary["done"]) == (
        "tiny", SEEDS, ["ce", "focal:2"], 3, True)

    study = api.get(f"{API}/studies/tiny").json()
    assert not study["in_progress"] and study["command"] == COMMAND.format(name="tiny")
    assert [m["name"] for m in study["experiments"]] == ["tiny-s0", "tiny-s1", "tiny-s2"]
    with sessions() as session:
        markdown = render_markdown(study_view(session=session, ref="tiny"))
    # Every row of the page is a row of the report's table, cell for cell.
    for row in study["rows"]:
        assert "| " + " | ".join(row["cells"]) + " |" in markdown
    ce, focal = study["rows"]
    # focal:2 − ce per seed at the final step: 0.1 + 0.01·seed, and seed 1's late rise of 0.3.
    differences = [heldout_ce(1, s, 4) - heldout_ce(0, s, 4) for s in SEEDS]
    assert differences == pytest.approx([0.10, 0.41, 0.12])
    delta = focal["metrics"]["ce"]["vs_baseline"]
    assert delta["mean"] == pytest.approx(sum(differences) / 3) and delta["n"] == 3 and not delta["resolved"]
    assert focal["cells"][2] == f"+{sum(differences) / 3:.3f} ± {delta['half_width']:.3f} (within seed noise)"
    assert ce["cells"][2] == "baseline" and ce["deltas"] is None
    assert [d["text"].endswith("*") for d in focal["deltas"]] == [d["noise"] == "beyond" for d in focal["deltas"]]
    assert focal["deltas"][0]["noise"] == "within" and "beyond" in {d["noise"] for d in focal["deltas"]}
    assert focal["collapse"] == [{"seed": 1, "kind": "heldout_rise", "step": 4}]
    assert study["heldout"][1]["step"] == [2, 4]
    assert study["heldout"][1]["mean"][1] == pytest.approx(sum(heldout_ce(1, s, 4) for s in SEEDS) / 3)
    assert [c["loss"] for c in study["samples"][0]["continuations"]] == ["ce", "focal:2"]

    assert "no study 'nope'" in error_of(api.get(f"{API}/studies/nope"), 404, "not_found")
    # An experiment outside any study is not a study.
    error_of(api.get(f"{API}/studies/alone"), 404, "not_found")

    # A training job still queued: the results so far, flagged in progress.
    with sessions() as session:
        job = Job(kind=KIND_TRAIN, status=QUEUED, payload={}, progress_total=4)
        session.add(job)
        session.flush()
        session.query(ModelSeries).filter(ModelSeries.name == "tiny-s2-focal-2").one().job_id = job.id
        session.commit()
    assert api.get(f"{API}/studies/tiny").json()["in_progress"]
    assert not api.get(f"{API}/studies").json()["items"][0]["done"]
