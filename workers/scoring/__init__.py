"""Scoring documents with a causal LM (the `score` job): every per-token field, in float32.

job.py (`run_score_shards`, the queue handler) · model_cache.py (the model and scorer a worker keeps
between jobs) · scorer.py (the device side) · pipeline.py (tokenize and pool ahead of the device) ·
windows.py (context windows) · batching.py (batch plans) · staging.py (pinned transfer buffers) ·
metrics.py (the per-token statistics) · accel.py (oneDNN routing, float32 logits, torch.compile) ·
writer.py (commits behind the device).
"""
