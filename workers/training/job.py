"""The `train` job: train one model on one corpus with one loss, checkpointing into a series.

`run_train(ctx)` is what workers.loop calls for jobs of kind "train" (payload: an
app.schemas.training.TrainingRequest, as written by app.services.training.enqueue_training).

A job that was killed (its lease ran out and another worker claimed it) resumes from the latest
complete checkpoint — weights, AdamW moments, RNG state, step — and replays nothing but the updates
after that checkpoint: their metric rows are deleted and written again. The latest checkpoint is the
one on this host's disk, or a later one registered by a worker on another host, fetched (it published
its files: workers.checkpoint_publish) and copied into this host's series directory. Every database write
(metrics, checkpoint registration, scoring runs, completion) happens in a transaction that first
confirms the job is still ours, so a worker that lost its lease cannot register anything late.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import delete, select

from app.models.checkpoint import Checkpoint, ModelSeries
from app.models.corpus import Corpus, Document
from app.models.training import TrainingMetric
from app.schemas.run import RunOptions
from app.schemas.training import TrainingRequest, request_problems
from app.services import checkpoint_files, queue
from app.services.checkpoints import ensure_series, register_checkpoint
from app.services.errors import DomainError
from app.services.runs import create_run
from app.services.training import find_reference
from app.training_specs import PRESETS, RHO1, parse_loss_spec, train_directory
from workers.checkpoint_fetch import CheckpointSource, local_checkpoint
from workers.checkpoint_publish import publish_checkpoint, publishes
from workers.context import JobContext, JobInterrupted, PermanentError
from workers.models import resolve_device
from workers.training import checkpointing
from workers.training.data import BatchSampler, tokenize_corpus
from workers.training.evaluation import HeldoutEvaluator
from workers.training.presets import build_model, context_length, count_parameters, model_config
from workers.training.tokenizer import build_tokenizer, load_tokenizer
from workers.training.trainer import RunningLoss, StepResult, Trainer, TrainingDiverged, TrainPlan

log = logging.getLogger("focalscope.worker")

# A loss curve needs a few hundred points, not one per update of a long run.
METRIC_POINTS = 500
# Metric rows are buffered and written at most this often (and with every checkpoint).
METRIC_FLUSH_SECONDS = 2.0

# Checkpoint scoring jumps ahead of queued training jobs, so an experiment's curves fill in while
# its other series are still training (a scoring run of a tiny model takes seconds).
CHECKPOINT_SCORING_PRIORITY = 5


def run_train(ctx: JobContext) -> None:
    try:
        request = TrainingRequest.model_validate(ctx.claim.payload)
    except ValidationError as exc:
        raise PermanentError(f"bad training request: {request_problems(exc)}") from None
    texts, eval_texts = _load_inputs(ctx, request)
    job = TrainingJob(ctx, request)
    job.prepare(texts, eval_texts)
    try:
        job.trainer.run(job.start_step, job, job.running)
    except TrainingDiverged as exc:
        raise PermanentError(str(exc)) from None
    job.finish()


def _load_inputs(ctx: JobContext, request: TrainingRequest) -> tuple[list[str], list[str]]:
    """The training and held-out texts; checks the corpora exist and the series row is there (with its meta)."""
    with ctx.sessions() as session:
        corpus = session.get(Corpus, request.corpus_id)
        if corpus is None:
            raise PermanentError(f"training corpus {request.corpus_id} not found (deleted?)")
        if request.eval_corpus_id is not None and session.get(Corpus, request.eval_corpus_id) is None:
            raise PermanentError(f"evaluation corpus {request.eval_corpus_id} not found (deleted?)")
        texts, eval_texts = (list(session.scalars(
            select(Document.text).where(Document.corpus_id == corpus_id).order_by(Document.position)
        )) if corpus_id is not None else [] for corpus_id in (corpus.id, request.eval_corpus_id))
        series = ensure_series(session=session, name=request.series)
        if not series.meta:
            series.meta = {"training": request.model_dump()}
            series.job_id = ctx.claim.job_id
        session.commit()
    if not any(t.strip() for t in texts):
        raise PermanentError(f"training corpus {corpus.name!r} has no text")
    return texts, eval_texts


class TrainingJob:
    """One attempt at a training job: setup (fresh or resumed), the trainer's hooks, completion."""

    def __init__(self, ctx: JobContext, request: TrainingRequest):
        self.ctx, self.request = ctx, request
        self.preset = PRESETS[request.preset]
        self.spec = parse_loss_spec(request.loss)
        self.plan = TrainPlan(steps=request.steps, save_every=request.save_every, lr=request.lr, loss=self.spec)
        self.device = resolve_device(ctx.device)
        self.series_dir = train_directory(ctx.settings.data_dir, request.series)
        self.fingerprint = request.fingerprint()
        self.log_every = max(1, request.steps // METRIC_POINTS)
        self.pending: list[dict] = []
        self.last_flush = time.monotonic()
        self.last_log = (time.perf_counter(), 0)
        self.start_step, self.running = 0, RunningLoss()

    # --- setup -------------------------------------------------------------------------------------

    def prepare(self, texts: list[str], eval_texts: list[str]) -> None:
        request = self.request
        checkpointing.clean_temporaries(self.series_dir)
        try:
            latest = checkpointing.latest_checkpoint(self.series_dir, self.fingerprint)
            registered = self._latest_registered()
            if registered is not None and (latest is None or registered[0] > latest.step):
                latest = self._fetch(*registered)
        except ValueError as exc:
            raise PermanentError(str(exc)) from None
        if latest is not None:
            self.tokenizer = load_tokenizer(latest.path)
            model = checkpointing.load_model(latest.path, self.device)
        else:
            self.tokenizer = build_tokenizer(
                request.tokenizer, texts=texts, vocab_size=request.vocab_size, context=self.preset.context,
                cache=self.ctx.tokenizers,
            )
            config = model_config(self.preset, vocab_size=len(self.tokenizer),
                                  bos_token_id=self.tokenizer.bos_token_id, eos_token_id=self.tokenizer.eos_token_id)
            model = build_model(config, seed=request.seed).to(self.device)
        self.context = context_length(model.config)
        self.n_params = count_parameters(model)
        try:
            sampler = BatchSampler(tokenize_corpus(self.tokenizer, texts), batch_size=request.batch_size,
                                   seq_len=request.seq_len, seed=request.seed)
        except ValueError as exc:
            raise PermanentError(str(exc)) from None
        self.trainer = Trainer(model=model, sampler=sampler, plan=self.plan, device=self.device,
                               reference=self._reference_model() if self.spec.kind == RHO1 else None)
        self.evaluator = HeldoutEvaluator.from_texts(self.tokenizer, eval_texts, seq_len=request.seq_len, device=self.device)
        self.ctx.check()
        if latest is None:
            self.on_save(0, 0, RunningLoss())
            self.last_log = (time.perf_counter(), 0)
            return
        state = checkpointing.restore_trainer_state(latest.path, self.trainer.optimizer)
        self.start_step = int(state["step"])
        log.info("training job %d resumes at step %d from %s", self.ctx.claim.job_id, self.start_step, latest.path)
        with self.ctx.sessions() as session:
            self._confirm_ours(session, self.start_step)
            series = ensure_series(session=session, name=request.series)
            # Updates after the checkpoint are replayed: their rows from the lost attempt go.
            session.execute(delete(TrainingMetric).where(
                TrainingMetric.series_id == series.id, TrainingMetric.step > self.start_step))
            self._register(session, latest)
            session.commit()
        self.ctx.report(done=self.start_step, tokens=int(state["tokens_seen"]))
        self.last_log = (time.perf_counter(), int(state["tokens_seen"]))  # rates count from here

    def _latest_registered(self) -> tuple[int, CheckpointSource] | None:
        """The step and source of the series' latest registered checkpoint of this training
        configuration; ValueError when the series holds another configuration's."""
        with self.ctx.sessions() as session:
            found = session.scalars(select(Checkpoint).join(ModelSeries).where(
                ModelSeries.name == self.request.series).order_by(Checkpoint.step.desc())).all()
            fingerprints = {c.meta.get("fingerprint") for c in found} - {None}
            if fingerprints - {self.fingerprint}:
                raise ValueError(f"series {self.request.series!r} holds checkpoints of another training configuration; "
                                 "train into a new series name")
            latest = next((c for c in found if c.meta.get("fingerprint") == self.fingerprint), None)
            return None if latest is None else (latest.step, CheckpointSource.of(latest))

    def _fetch(self, step: int, source: CheckpointSource) -> checkpointing.SavedCheckpoint:
        """A checkpoint saved on another host (this series trained further there), in this host's
        series directory."""
        fetched = local_checkpoint(source, self.ctx.settings)
        log.info("training job %d resumes from step %d, saved on another host", self.ctx.claim.job_id, step)
        return checkpointing.adopt_checkpoint(self.series_dir, step, Path(fetched.path))

    def _reference_model(self):
        """rho1's reference checkpoint, loaded safely (safetensors, no custom code), after checking that
        its vocabulary is this run's token for token."""
        with self.ctx.sessions() as session:
            try:
                source = CheckpointSource.of(find_reference(session=session, reference=self.spec.reference or ""))
            except DomainError as exc:
                raise PermanentError(str(exc)) from None
        path = local_checkpoint(source, self.ctx.settings).path  # trained on another host: fetched
        reference_tokenizer = load_tokenizer(Path(path))
        if reference_tokenizer.get_vocab() != self.tokenizer.get_vocab():
            raise PermanentError(f"rho1 reference {self.spec.reference!r} has a different tokenizer than this run "
                                 f"({len(reference_tokenizer)} vs {len(self.tokenizer)} tokens, or other tokens)")
        return checkpointing.load_model(Path(path), self.device).eval().requires_grad_(False)

    # --- TrainingHooks -----------------------------------------------------------------------------

    def check(self) -> None:
        self.ctx.check()

    def on_step(self, result: StepResult, eta_s: float | None) -> None:
        now = time.perf_counter()
        then, tokens_then = self.last_log
        rate = (result.tokens_seen - tokens_then) / (now - then) if now > then else None
        self.ctx.report(done=result.step, tokens=result.tokens_seen, detail={
            "loss": result.loss, "ce": result.ce, "lr": result.lr, "eta_s": eta_s, "step": result.step,
            "steps": self.plan.steps, "tokens_per_s": rate, "gamma": result.gamma,
        })
        if result.step % self.log_every and not self.plan.saves_at(result.step):
            return
        self.last_log = (now, result.tokens_seen)
        self.pending.append({
            "step": result.step, "tokens_seen": result.tokens_seen, "loss": result.loss, "ce_loss": result.ce,
            "lr": result.lr, "tokens_per_s": rate,
            "extra": {"grad_norm": result.grad_norm, "gamma": result.gamma, "step_seconds": result.seconds},
        })
        if time.monotonic() - self.last_flush >= METRIC_FLUSH_SECONDS:
            with self.ctx.sessions() as session:
                self._confirm_ours(session, result.step)
                self._flush_metrics(session)
                session.commit()

    def on_save(self, step: int, tokens_seen: int, running: RunningLoss) -> None:
        train_loss, train_ce = running.means()
        meta = {
            **self.spec.as_meta(), "gamma_at_step": self.spec.gamma_at(max(step - 1, 0), self.plan.steps),
            "step": step, "steps": self.plan.steps, "save_every": self.plan.save_every, "tokens_seen": tokens_seen,
            "lr": self.plan.lr_at(max(step - 1, 0)) if step else 0.0, "peak_lr": self.plan.lr,
            "warmup_steps": self.plan.warmup_steps, "seed": self.request.seed, "train_loss": train_loss,
            "train_ce": train_ce, "preset": self.preset.name, "arch": self.preset.arch,
            "tokenizer": self.request.tokenizer, "vocab_size": len(self.tokenizer),
            "batch_size": self.request.batch_size, "seq_len": self.request.seq_len, "context": self.context,
            "n_params": self.n_params, "corpus_id": self.request.corpus_id,
            "eval_corpus_id": self.request.eval_corpus_id, "series": self.request.series,
            "job_id": self.ctx.claim.job_id, "fingerprint": self.fingerprint,
            "precision": self.trainer.precision, "device": self.device.type,
            "heldout": self.evaluator.metrics(self.trainer.model),
        }
        if step == self.plan.steps:
            meta["samples"] = self.evaluator.samples(self.trainer.model)
        state = {"step": step, "tokens_seen": tokens_seen, "fingerprint": self.fingerprint}
        saved = checkpointing.save_checkpoint(
            series_dir=self.series_dir, step=step, model=self.trainer.model, tokenizer=self.tokenizer,
            optimizer=self.trainer.optimizer, meta=meta, state=state,
        )
        files = checkpoint_files.inspect(saved.path)
        if publishes(self.ctx.settings):  # before registering: whatever is registered can be fetched
            publish_checkpoint(saved.path, files.manifest, self.ctx.settings)
        with self.ctx.sessions() as session:
            self._confirm_ours(session, step)
            self._flush_metrics(session)
            self._register(session, saved, files)
            session.commit()

    # --- completion --------------------------------------------------------------------------------

    def finish(self) -> None:
        tokens = self.plan.steps * self.trainer.sampler.tokens_per_step
        with self.ctx.writing() as session:
            self._flush_metrics(session)
            queue.complete(session=session, claim=self.ctx.claim, tokens_done=tokens, clock=self.ctx.clock)
            session.commit()
        log.info("training job %d: %d steps done, series %r", self.ctx.claim.job_id, self.plan.steps,
                 self.request.series)

    # --- database ----------------------------------------------------------------------------------

    def _confirm_ours(self, session, step: int) -> None:
        """Extend the lease in this transaction; refuse to write anything if the job is no longer ours."""
        if not queue.heartbeat(session=session, claim=self.ctx.claim, lease_seconds=self.ctx.settings.lease_seconds,
                               progress_done=step, clock=self.ctx.clock):
            session.rollback()
            self.ctx.lost.set()
            raise JobInterrupted("the job is no longer ours (lease lost or cancelled)")

    def _flush_metrics(self, session) -> None:
        if self.pending:
            series_id = session.scalar(select(ModelSeries.id).where(ModelSeries.name == self.request.series))
            session.add_all(TrainingMetric(series_id=series_id, **row) for row in self.pending)
            session.flush()
            self.pending = []
        self.last_flush = time.monotonic()

    def _register(self, session, saved: checkpointing.SavedCheckpoint,
                  files: checkpoint_files.CheckpointFiles | None = None) -> None:
        checkpoint, _ = register_checkpoint(
            session=session, path=saved.path, series=self.request.series, step=saved.step,
            tokens_seen=saved.meta.get("tokens_seen"), meta=saved.meta, files=files,
        )
        if self.request.eval_corpus_id is not None:
            # Scored with the context the model was trained with: positions beyond seq_len (when it is
            # shorter than the preset's context) were never trained and would only add noise.
            create_run(
                session=session, checkpoint_id=checkpoint.id, corpus_id=self.request.eval_corpus_id,
                options=RunOptions(max_length=self.request.seq_len), shard_chars=self.ctx.settings.shard_chars,
                priority=CHECKPOINT_SCORING_PRIORITY,
            )
