"""A user's model package, loaded as `plugin_models.graded:build` (the tests' plugin: its source digest is part of the run key)."""
