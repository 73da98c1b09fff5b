"""focalscope API side: settings, database, job queue, analytics and HTTP. Never imports torch."""
