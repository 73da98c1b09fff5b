"""Training small causal LMs with cross-entropy or focal-family losses (the `train` job).

presets.py (model configs) · tokenizer.py (BPE or SmolLM2) · data.py (token stream, batches) ·
losses.py (the losses) · trainer.py (the loop) · checkpointing.py (save/load without pickle) ·
job.py (`run_train`, the queue handler that ties them together).
"""
