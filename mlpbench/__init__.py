"""mlpbench: measure how an MLP's design choices change training."""

import os
import platform
import sys

__version__ = "0.1.0"


def _same_kernels_on_every_cpu() -> None:
    """One set of CPU kernels on every x86-64 machine with AVX2, so that a run's numbers (and
    README's, checked by value) do not depend on the machine or the thread count. Measured: an
    AVX-512 machine's own kernels gave other numbers than the machine README's tables were made
    on (the main job's verdicts changed), and its MKL's sgemm of a 32 x 784 by 784 x 128
    product differed between 1 and 2 threads; MKL's strict reproducible mode at the AVX2 level
    with ATen's AVX2 kernels gave equal products at 1 and 2 threads and cost about 6% of a
    sweep's time. Both are read at torch's first operation, so they work once mlpbench is
    imported before any tensor is made; a value the user set wins (ATEN_CPU_CAPABILITY=avx512
    for the machine's own, faster kernels)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:  # not Linux: its own kernels
        return
    if "avx2" in flags and "fma" in flags:  # requesting AVX2 kernels on a CPU without them would crash
        os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
        os.environ.setdefault("MKL_CBWR", "AVX2,STRICT")


_same_kernels_on_every_cpu()


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


def _conf_of_a_checkout() -> None:
    """The configs install as the package mlpbench.conf (pyproject.toml maps conf/ there). A
    source checkout used without installing (PYTHONPATH=the checkout: `make gpu-check` on a bare
    GPU machine) has them in conf/ beside this package: that folder is then mlpbench.conf."""
    from importlib.util import find_spec, module_from_spec, spec_from_file_location

    if find_spec("mlpbench.conf") is not None:
        return
    conf = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")
    if not os.path.isfile(os.path.join(conf, "__init__.py")):
        return
    spec = spec_from_file_location("mlpbench.conf", os.path.join(conf, "__init__.py"), submodule_search_locations=[conf])
    module = module_from_spec(spec)
    sys.modules["mlpbench.conf"] = module
    spec.loader.exec_module(module)
    globals()["conf"] = module  # as the import system sets a submodule on its package


_conf_of_a_checkout()


# runpy sets argv[0] to "-m" while it imports the package of `python -m mlpbench[.report]`.
if sys.argv[:1] == ["-m"]:
    _check_environment()
