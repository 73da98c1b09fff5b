"""Packed per-token arrays (app.db.packed) through the real TokenScores columns on SQLite and
PostgreSQL: bit-exact round trips, little-endian bytes on disk, and the values that are refused.
Also the shape validation of app.services.scores.score_rows, which builds the rows a worker writes."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker, undefer

from app.db.packed import FLOAT32, INT32, PackedArray, pack, unpack
from app.models import Checkpoint, Corpus, Document, ModelSeries, Run, TokenScores
from app.schemas.run import DocumentTokens
from app.services.scores import FIELD_DTYPES, DocumentScores, score_rows, store_scores
from app.vocab import TOKEN_FIELDS, TOP_K_FIELDS

TOP_K = 3
I32 = np.iinfo(np.int32)
F32 = np.finfo(np.float32)
# Values a lossy path would change: the ends of the ranges, the smallest normal and subnormal
# numbers, a subnormal with several mantissa bits set, negative zero (equal to 0.0, hence the
# comparisons by bytes below).
INT32_EDGES = [I32.min, I32.min + 1, -1, 0, 1, I32.max - 1, I32.max]
FLOAT32_EDGES = [
    -F32.max, F32.max, -F32.tiny, F32.tiny, F32.smallest_subnormal, -F32.smallest_subnormal,
    np.float32(1.5) * F32.smallest_subnormal * 1000, -0.0, 0.0, 1.0, np.pi, -1e-30,
]


def _seed(session: Session) -> tuple[int, int]:
    """A run and a document of its corpus: the rows a TokenScores row points at."""
    corpus = Corpus(name="c")
    series = ModelSeries(name="s")
    checkpoint = Checkpoint(
        series=series, format="safetensors", path="/m", weights_sha256="0" * 64, tokenizer_fingerprint="f" * 64
    )
    document = Document(corpus=corpus, position=0, text="hello", n_chars=5)
    run = Run(checkpoint=checkpoint, corpus=corpus, options={}, options_key="{}")
    session.add_all([document, run])
    session.commit()
    return run.id, document.id


def _arrays(n: int) -> dict[str, np.ndarray]:
    """Every token field for n tokens: int fields start with INT32_EDGES, float fields with
    FLOAT32_EDGES, then random values; top-k fields are (n, TOP_K)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for name in TOKEN_FIELDS:
        shape = (n, TOP_K) if name in TOP_K_FIELDS else (n,)
        size = int(np.prod(shape))
        if FIELD_DTYPES[name] == INT32:
            values = rng.integers(I32.min, I32.max, size=size, endpoint=True, dtype=np.int64)
            edges = INT32_EDGES
        else:
            values = rng.standard_normal(size).astype(np.float32)
            edges = FLOAT32_EDGES
        head = min(size, len(edges))
        values[:head] = np.asarray(edges[:head], dtype=values.dtype)
        arrays[name] = values.reshape(shape)
    return arrays


def _write_orm(sessions: sessionmaker[Session], run_id: int, document_id: int, arrays: dict) -> int:
    """Store through the ORM, so that PackedArray.process_bind_param does the packing."""
    with sessions() as session:
        row = TokenScores(
            run_id=run_id, document_id=document_id, n_tokens=len(arrays["logprob"]), top_k=TOP_K,
            sum_logprob=0.0, max_loss=0.0, **arrays,
        )
        session.add(row)
        session.commit()
        return row.id


def _read(sessions: sessionmaker[Session], row_id: int) -> TokenScores:
    with sessions() as session:
        return session.scalars(select(TokenScores).where(TokenScores.id == row_id).options(undefer("*"))).one()


def test_the_token_field_list_is_the_packed_columns_and_the_api_fields():
    packed = {c.name: c.type.dtype for c in TokenScores.__table__.columns if isinstance(c.type, PackedArray)}
    assert packed == {name: np.dtype(FIELD_DTYPES[name]) for name in TOKEN_FIELDS}
    assert [name for name in TokenScores.__table__.columns.keys() if name in packed] == list(TOKEN_FIELDS)
    assert FIELD_DTYPES["token_id"] == INT32 and FIELD_DTYPES["logprob"] == FLOAT32
    assert set(TOKEN_FIELDS) <= set(DocumentTokens.model_fields)


@pytest.mark.parametrize("n_tokens", [0, 1, len(FLOAT32_EDGES), 100_000], ids=["empty", "one", "edges", "large"])
def test_arrays_round_trip_bit_exactly(sessions, n_tokens):
    with sessions() as session:
        run_id, document_id = _seed(session)
    arrays = _arrays(n_tokens)
    stored = _read(sessions, _write_orm(sessions, run_id, document_id, arrays))

    for name in TOKEN_FIELDS:
        got = getattr(stored, name)
        expected = np.asarray(arrays[name], dtype=FIELD_DTYPES[name]).reshape(-1)
        assert got.dtype == FIELD_DTYPES[name], name
        assert got.shape == expected.shape, name
        # Bytes, not values: -0.0 == 0.0 and a flushed subnormal would compare close.
        assert got.tobytes() == expected.tobytes(), name


def test_edge_values_are_really_in_the_edges_case():
    # Guards the test above: the "edges" case must carry every special value it claims to.
    arrays = _arrays(len(FLOAT32_EDGES))
    logprob_bits = arrays["logprob"].view(np.uint32)
    assert set(arrays["token_id"][: len(INT32_EDGES)]) == set(INT32_EDGES)
    assert np.uint32(0x80000000) in logprob_bits  # -0.0
    assert np.uint32(0x00000001) in logprob_bits  # smallest subnormal
    assert np.uint32(0x7F7FFFFF) in logprob_bits  # float32 max


def test_bytes_on_disk_are_little_endian(sessions):
    with sessions() as session:
        run_id, document_id = _seed(session)
    arrays = _arrays(5)
    # Big-endian input must still be stored little-endian.
    arrays["logprob"] = np.array([1.0, -2.5, 0.0, F32.smallest_subnormal, -0.0], dtype=">f4")
    arrays["token_id"] = np.array([1, -2, 256, I32.max, I32.min], dtype=">i4")
    row_id = _write_orm(sessions, run_id, document_id, arrays)

    with sessions() as session:
        raw = session.execute(
            text("SELECT logprob, token_id FROM token_scores WHERE id = :id"), {"id": row_id}
        ).one()
    logprob_bytes, token_bytes = bytes(raw.logprob), bytes(raw.token_id)
    assert logprob_bytes == np.asarray(arrays["logprob"], dtype=np.dtype("<f4")).tobytes()
    assert token_bytes == np.asarray(arrays["token_id"], dtype=np.dtype("<i4")).tobytes()
    # Independent of numpy: IEEE 754 1.0f is 0x3F800000, least significant byte first.
    assert logprob_bytes[:4] == b"\x00\x00\x80\x3f"
    assert token_bytes[:8] == b"\x01\x00\x00\x00\xfe\xff\xff\xff"


def test_store_scores_writes_rows_and_aggregates(sessions):
    with sessions() as session:
        run_id, document_id = _seed(session)
    arrays = _arrays(4)
    arrays["logprob"] = np.array([-0.5, -3.25, -0.125, -1.0], dtype=np.float32)
    with sessions() as session:
        written = store_scores(
            session=session, run_id=run_id,
            documents=[DocumentScores(document_id=document_id, top_k=TOP_K, arrays=arrays)],
        )
        session.commit()
    assert written == 4

    with sessions() as session:
        stored = session.scalars(select(TokenScores).options(undefer("*"))).one()
    assert (stored.run_id, stored.document_id, stored.n_tokens, stored.top_k) == (run_id, document_id, 4, TOP_K)
    assert stored.sum_logprob == -4.875
    assert stored.max_loss == 3.25
    assert stored.top_ids.tobytes() == np.asarray(arrays["top_ids"], dtype=INT32).tobytes()
    assert stored.top_logprobs.reshape(4, TOP_K).tolist() == arrays["top_logprobs"].tolist()


def test_non_finite_floats_are_refused(sessions):
    with sessions() as session:
        run_id, document_id = _seed(session)
    for bad in (np.nan, np.inf, -np.inf):
        arrays = _arrays(3)
        arrays["entropy"] = np.array([0.5, bad, 1.0], dtype=np.float32)

        with pytest.raises(ValueError, match="NaN or infinite"):
            pack(arrays["entropy"], FLOAT32)
        # Through the column: SQLAlchemy wraps the ValueError raised while binding parameters.
        with pytest.raises(StatementError) as raised:
            _write_orm(sessions, run_id, document_id, arrays)
        assert isinstance(raised.value.orig, ValueError), bad
    with sessions() as session:
        assert session.scalars(select(TokenScores)).all() == []


@pytest.mark.parametrize(
    "values",
    [[I32.max + 1], [I32.min - 1], np.array([2**31], dtype=np.uint32), np.array([0, 2**40], dtype=np.int64)],
    ids=["max+1", "min-1", "uint32", "int64"],
)
def test_int32_overflow_is_refused(values):
    with pytest.raises(ValueError, match="outside int32 range"):
        pack(values, INT32)


@pytest.mark.parametrize(
    ("values", "dtype"),
    [([1e39], FLOAT32), ([1.5], INT32), ([np.nan], INT32)],
    ids=["float64-beyond-float32", "fraction-into-int32", "nan-into-int32"],
)
def test_values_that_would_not_round_trip_are_refused(values, dtype):
    with pytest.raises(ValueError):
        pack(values, dtype)


def test_unpack_of_null_is_an_empty_array_of_the_column_dtype():
    empty = unpack(None, FLOAT32)
    assert (empty.dtype, empty.shape) == (FLOAT32, (0,))


def _document(n: int, **overrides) -> DocumentScores:
    return DocumentScores(document_id=7, top_k=TOP_K, arrays=_arrays(n) | overrides)


def test_score_rows_packs_every_field_with_aggregates():
    document = _document(3, logprob=np.array([-1.0, -0.25, -2.0], dtype=np.float32))
    (row,) = score_rows(11, [document])

    assert (row["run_id"], row["document_id"], row["n_tokens"], row["top_k"]) == (11, 7, 3, TOP_K)
    assert (row["sum_logprob"], row["max_loss"]) == (-3.25, 2.0)
    for name in TOKEN_FIELDS:
        assert row[name] == np.asarray(document.arrays[name], dtype=FIELD_DTYPES[name]).tobytes(), name


def test_score_rows_of_an_empty_document():
    (row,) = score_rows(1, [_document(0)])
    assert (row["n_tokens"], row["sum_logprob"], row["max_loss"]) == (0, 0.0, 0.0)
    assert all(row[name] == b"" for name in TOKEN_FIELDS)


@pytest.mark.parametrize(
    ("field", "shape", "expected"),
    [
        ("entropy", (4,), (3,)),  # one value too many
        ("char_start", (2,), (3,)),
        ("top_ids", (3,), (3, TOP_K)),  # top-k flattened by the caller
        ("top_logprobs", (3, TOP_K + 1), (3, TOP_K)),
        ("context_len", (3, 1), (3,)),
    ],
)
def test_score_rows_refuses_a_field_of_the_wrong_shape(field, shape, expected):
    document = _document(3, **{field: np.zeros(shape, dtype=FIELD_DTYPES[field])})
    with pytest.raises(ValueError) as raised:
        score_rows(1, [document])
    assert str(raised.value) == f"document 7: {field} has shape {shape}, expected {expected}"
