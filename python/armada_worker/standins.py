"""Puts armada's stand-ins of the original agent's modules (``src.monitoring_client`` and
friends, in the helper's ``src/`` folder) in place, whatever ``src`` the project has."""

import importlib.util
import os
import sys

from armada_worker.runtime import log

HELPER_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STANDINS = ("monitoring_client", "standard_output", "proxy_manager", "fingerprint_manager", "database_connector")


def install(workdir):
    """Registers each stand-in as ``src.<name>``. The helper's ``src`` has no ``__init__.py``,
    so a project's own ``src/`` merges with it; registering the modules by name also wins
    over a project ``src`` that is a regular package or ships files of the same names."""
    try:
        import src as package
    except Exception as exc:  # a broken project src/__init__.py: report it, keep the stand-ins
        log(f"cannot import the project's src package ({exc}); armada's src stand-ins are still available")
        package = None
    for name in STANDINS:
        if os.path.exists(os.path.join(workdir, "src", f"{name}.py")):
            log(f"src/{name}.py in the project is replaced by armada's stand-in of the original agent's module")
        spec = importlib.util.spec_from_file_location(f"src.{name}", os.path.join(HELPER_ROOT, "src", f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        if package is not None:
            setattr(package, name, module)
