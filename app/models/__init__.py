"""ORM tables, one module per domain. Importing this package registers every table on Base.metadata."""

from app.models.access import ApiToken
from app.models.checkpoint import Checkpoint, CheckpointFile, ModelSeries, TokenizerVocab
from app.models.corpus import Corpus, Document
from app.models.job import Job
from app.models.run import Run, RunSummary, TokenScores
from app.models.training import Experiment, TrainingMetric

__all__ = [
    "ApiToken", "Checkpoint", "CheckpointFile", "Corpus", "Document", "Experiment", "Job", "ModelSeries", "Run", "RunSummary",
    "TokenScores", "TokenizerVocab", "TrainingMetric",
]
