"""The webhook receiver: the HTTP app, group-commit landing, background workers, metrics."""
