"""focalscope workers: everything that runs a model (load, tokenize, score, train).

`python -m workers` (or `focalscope worker`) claims jobs from the database that the API uses.
scoring/ and training/ are the two halves; what both use stays here: the job loop (loop.py), what a
handler gets (context.py), safe checkpoint loading (models.py) and the command line (cli.py).
"""
