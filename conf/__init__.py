"""mlpbench's Hydra configs; installed as the package mlpbench.conf (see pyproject.toml)."""
