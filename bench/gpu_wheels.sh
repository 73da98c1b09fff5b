#!/usr/bin/env bash
# The wheels bench/gpu_check.sh installs on a GPU machine that has torch and transformers but not
# our database stack: this project's own versions (from .venv), for CPython 3.12 on x86-64, into
# .whl/ (git-ignored). Run here once before a GPU session; the session's `run` carries ".whl".
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
PACKAGES=(sqlalchemy pydantic pydantic-core pydantic-settings python-dotenv typing-inspection annotated-types
          greenlet typing-extensions)
mkdir -p .whl
for name in "${PACKAGES[@]}"; do
  version=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d .whl "$name==$version"
done
ls .whl
