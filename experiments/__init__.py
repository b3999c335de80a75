"""The studies (one folder each, README.md) and their diagnostic commands (`experiments.tools`).

Not installed with the project (pyproject.toml's packages): run from the checkout."""
