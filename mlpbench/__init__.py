"""mlpbench: measure how an MLP's design choices change training."""

import sys

__version__ = "0.1.0"


def _check_environment() -> None:
    """`python -m mlpbench...` with a Python that lacks the dependencies (the project's
    environment not activated, typically): say what to do instead of an import traceback."""
    from importlib.util import find_spec

    needed = ("hydra", "omegaconf", "torch", "lightning", "tensorboard", "matplotlib", "scipy", "optuna", "mlxtend")
    missing = [name for name in needed if find_spec(name) is None]
    if missing:
        from pathlib import Path

        made = Path(".venv/bin/mlpbench").exists()  # in the project folder, after `make setup`
        print(f"mlpbench: error: this Python ({sys.executable}) lacks mlpbench's dependencies "
              f"({', '.join(missing)}). {'Run' if made else 'Set up once with `make setup`, then run'} "
              f"`source .venv/bin/activate` and type `mlpbench ...` (or `.venv/bin/mlpbench ...` without "
              "activating).", file=sys.stderr)
        sys.exit(2)


# runpy sets argv[0] to "-m" while it imports the package of `python -m mlpbench[.report]`.
if sys.argv[:1] == ["-m"]:
    _check_environment()
