"""The `focalscope` command line."""
