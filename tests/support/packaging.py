"""What a focalscope wheel is built from: the files the packaging test copies and the Dockerfile
must COPY before `pip install .` (setup.py copies the two top-level folders into the wheel)."""

WHEEL_SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "app", "workers", "focalscope",
                 "migrations", "frontend")
