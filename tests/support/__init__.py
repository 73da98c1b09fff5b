"""What the tests share: data and model builders, API and browser helpers. Test modules import from
here (and take fixtures from conftest.py), never from each other.

- models: tiny random-weight causal LMs as safetensors directories (fixtures tiny_llama_dir, tiny_gpt2_dir)
- data: the small corpora several tests score or train on (Macbeth scenes, five short texts)
- api: the REST client on an empty database and the error-shape check
- browser: a real `focalscope serve` and headless Chromium
- series: a hand-computed document across checkpoints for the series statistics
- timing: wait for a condition with a deadline instead of sleeping a fixed time; a lease clock
  past every held lease (an injected clock instead of waiting for a lease to run out)
"""
