"""Dataset cartography of a series on a corpus (Swayamdipta et al. 2020; forgetting events: Toneva et
al. 2019): occurrences per region, a bounded scatter sample of token occurrences, and per-type means.

One streamed pass builds a CartographyMap (cached per thresholds and sample size); the per-type list
is filtered, ordered and paged from it on each request. Definitions: app/analytics/cartography.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from app.analytics.cartography import REGIONS, Cartography, TypeCartographyTally, regions
from app.analytics.scatter_sample import ScatterPoints, ScatterSample
from app.services.errors import InvalidInput
from app.services.series_cache import ResultCache, cached
from app.services.series_output import round_significant, texts_at
from app.services.series_runs import AlignedRuns
from app.services.series_scores import invalid_input
from app.services.series_stream import series_documents

# The scatter sample's seed: a fixed one shows the same points on every request and every machine.
SCATTER_SEED = 0


class FirstOccurrences:
    """Where each token type first occurs in the stream; a type's text is shown from there (the API
    never loads a tokenizer, and a stored vocabulary is not guaranteed)."""

    def __init__(self):
        self.document_id = np.zeros(0, dtype=np.int64)
        self.position = np.zeros(0, dtype=np.int64)

    def add(self, document_id: int, token_id: np.ndarray) -> None:
        types, first = np.unique(token_id, return_index=True)
        if not types.size:
            return
        if types[-1] >= self.document_id.size:
            size = max(int(types[-1]) + 1, 2 * self.document_id.size)
            self.document_id = np.r_[self.document_id, np.full(size - self.document_id.size, -1)]
            self.position = np.r_[self.position, np.zeros(size - self.position.size, dtype=np.int64)]
        new = self.document_id[types] < 0
        self.document_id[types[new]] = document_id
        self.position[types[new]] = first[new]


@dataclass(frozen=True)
class CartographyMap:
    region_occurrences: np.ndarray  # occurrences per region code (index into REGIONS)
    per_type: Cartography  # every type seen, ascending by id
    type_document_id: np.ndarray  # per type: its first occurrence
    type_position: np.ndarray
    points: ScatterPoints
    point_text: list[str]
    occurrences: int  # every occurrence of the corpus, of which `points` is a sample


def cartography_map(*, session: Session, aligned: AlignedRuns, max_points: int, confidence_threshold: float,
                    variability_threshold: float, cache: ResultCache | None = None) -> CartographyMap:
    thresholds = {"confidence_threshold": confidence_threshold, "variability_threshold": variability_threshold}
    with invalid_input():
        regions(np.zeros(0), np.zeros(0), **thresholds)
        ScatterSample(max_points)

    def compute() -> CartographyMap:
        types, sample = TypeCartographyTally(aligned.steps), ScatterSample(max_points, seed=SCATTER_SEED)
        first, in_region = FirstOccurrences(), np.zeros(len(REGIONS), dtype=np.int64)
        for document_id, document in series_documents(session=session, aligned=aligned):
            occurrences = types.add(document)
            sample.add(document_id, occurrences)
            first.add(document_id, document.token_id)
            in_region += np.bincount(regions(occurrences.confidence, occurrences.variability, **thresholds),
                                     minlength=len(REGIONS))
        per_type, points = types.per_type(), sample.points()
        return CartographyMap(
            region_occurrences=in_region, per_type=per_type, type_document_id=first.document_id[per_type.token_id],
            type_position=first.position[per_type.token_id], points=points,
            point_text=texts_at(session=session, run_id=aligned.run_ids[0], document_id=points.document_id,
                                position=points.position),
            occurrences=sample.seen)

    key = ("cartography", aligned.key(), max_points, float(confidence_threshold), float(variability_threshold))
    return cached(cache, key, compute)


def series_cartography(*, session: Session, aligned: AlignedRuns, max_points: int, confidence_threshold: float,
                       variability_threshold: float, min_count: int, region: str | None, types_offset: int,
                       types_limit: int, cache: ResultCache | None = None) -> dict:
    """Regions, the scatter sample and one page of token types (most frequent first, with at least
    `min_count` occurrences, of one region when given)."""
    if region is not None and region not in REGIONS:
        raise InvalidInput(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
    thresholds = {"confidence_threshold": confidence_threshold, "variability_threshold": variability_threshold}
    chart = cartography_map(session=session, aligned=aligned, max_points=max_points, cache=cache, **thresholds)
    type_region = regions(chart.per_type.confidence, chart.per_type.variability, **thresholds)
    frequent = chart.per_type.count >= min_count
    listed = np.flatnonzero(frequent & (type_region == REGIONS.index(region)) if region else frequent)
    listed = listed[np.lexsort((chart.per_type.token_id[listed], -chart.per_type.count[listed]))]
    page = listed[types_offset:types_offset + types_limit]
    return {
        "steps": aligned.steps.tolist(), "run_ids": aligned.run_ids, **thresholds, "region_names": list(REGIONS),
        "regions": [{"region": name, "occurrences": int(chart.region_occurrences[code]),
                     "types": int((type_region[frequent] == code).sum())} for code, name in enumerate(REGIONS)],
        "points": _points(chart, thresholds),
        "types": {"items": _types(session, aligned, chart, page, type_region[page]), "total": int(listed.size),
                  "offset": types_offset, "limit": types_limit, "min_count": min_count},
    }


def _points(chart: CartographyMap, thresholds: dict) -> dict:
    points = chart.points
    return {
        "occurrences": chart.occurrences, "shown": int(points.position.size),
        "document_id": points.document_id.tolist(), "position": points.position.tolist(),
        "token_id": points.token_id.tolist(), "text": chart.point_text,
        "confidence": round_significant(points.confidence).tolist(),
        "variability": round_significant(points.variability).tolist(),
        "correctness": round_significant(points.correctness).tolist(),
        "forgetting": points.forgetting.tolist(),
        "region": regions(points.confidence, points.variability, **thresholds).tolist(),
    }


def _types(session: Session, aligned: AlignedRuns, chart: CartographyMap, page: np.ndarray,
           region_code: np.ndarray) -> list[dict]:
    per_type = chart.per_type
    text = texts_at(session=session, run_id=aligned.run_ids[0], document_id=chart.type_document_id[page],
                    position=chart.type_position[page])
    columns = {name: round_significant(getattr(per_type, name)[page]).tolist()
               for name in ("confidence", "variability", "correctness", "forgetting")}
    return [{"token_id": int(per_type.token_id[i]), "text": text[k], "count": int(per_type.count[i]),
             **{name: values[k] for name, values in columns.items()}, "region": REGIONS[region_code[k]]}
            for k, i in enumerate(page.tolist())]
