"""The fixed vocabularies (job statuses, window policies, dtypes, ...), so that the frontend never
repeats them."""

from __future__ import annotations

from fastapi import APIRouter

from app import vocab
from app.schemas.vocabulary import Vocabulary
from app.training_specs import TOKENIZERS

router = APIRouter(tags=["system"])


@router.get("/vocabulary", response_model=Vocabulary)
def vocabulary() -> Vocabulary:
    return Vocabulary(
        job_statuses=list(vocab.JOB_STATUSES),
        live_statuses=[s for s in vocab.JOB_STATUSES if s in vocab.LIVE_STATUSES],
        terminal_statuses=[s for s in vocab.JOB_STATUSES if s in vocab.TERMINAL_STATUSES],
        job_kinds=list(vocab.JOB_KINDS),
        window_policies=list(vocab.WINDOW_POLICIES),
        dtypes=list(vocab.WEIGHT_DTYPES),
        tokenizers=list(TOKENIZERS),
        checkpoint_formats=list(vocab.CHECKPOINT_FORMATS),
        checkpoint_file_suffixes=list(vocab.CHECKPOINT_FILE_SUFFIXES),
        token_fields=list(vocab.TOKEN_FIELDS),
    )
