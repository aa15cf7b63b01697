"""hydra-optuna-sweeper's import names for launcher's Optuna sweeper, on disk, so that
``hydra.utils.get_class("hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper")``
(and unpickling, and ``instantiate``) work in any interpreter, not only inside a Hydra app after
its plugin scan.

Why a module file here: the official package is the directory ``hydra_plugins/hydra_optuna_sweeper/``;
this file is ``hydra_plugins/hydra_optuna_sweeper.py``, a path no file of that package has, so pip
never overwrites or removes one with the other. Where both are installed in one directory, Python
imports the package directory (a package wins over a module of the same name), so the names are
the official plugin's and every Hydra start says both are installed (launcher.sweeper.official).
No ``.pth`` file or import hook is needed: ``hydra_plugins`` is a namespace package (no code
runs when it is imported), so a file at the name is the only thing a fresh interpreter finds.

The submodules are made here, in memory: ``optuna_sweeper`` (the sweeper class) and ``config``
(``raise_motpe_removed``, the motpe preset's target in the official HEAD).
"""
import sys
import types

from hydra_plugins.launcher_sweeper.optuna_sweeper import OfficialNameOptunaSweeper
from launcher.sweeper.config import raise_motpe_removed

# A package to the import system (``import hydra_plugins.hydra_optuna_sweeper.config`` works):
# its submodules are the two below, registered in sys.modules; nothing else is found under it.
__path__: list = []


def _submodule(name: str, doc: str, **members: object) -> types.ModuleType:
    module = types.ModuleType(f"{__name__}.{name}", doc)
    module.__dict__.update(members)
    sys.modules[module.__name__] = module
    return module


optuna_sweeper = _submodule("optuna_sweeper", "launcher's Optuna sweeper, by the official name",
                            OptunaSweeper=OfficialNameOptunaSweeper)
config = _submodule("config", "the official motpe preset's target",
                    raise_motpe_removed=raise_motpe_removed)
