"""The small series document the checkpoint-statistics tests compute by hand: 3 steps, 4 tokens."""

import numpy as np

from app.analytics.trajectories import SeriesDocument

STEPS = [100, 200, 300]
# p of the true token: rows are steps, columns the 4 token occurrences.
P = [[0.90, 0.2, 0.6, 0.1],
     [0.85, 0.7, 0.8, 0.1],
     [0.95, 0.9, 0.3, 0.2]]
RANK = [[0, 3, 0, 5],
        [1, 0, 0, 2],
        [0, 0, 1, 4]]
TOKEN_ID = [7, 3, 7, 9]


def make_document(p=P, rank=RANK, token_id=TOKEN_ID, steps=STEPS) -> SeriesDocument:
    """Stored the way a scoring run stores it: float32 log p, int32 rank."""
    return SeriesDocument(steps=np.array(steps), logprob=np.log(np.array(p)).astype(np.float32),
                          rank=np.array(rank, dtype=np.int32), token_id=np.array(token_id))
