"""Puts the user's own config tree, ./conf, on Hydra's search path ahead of the shipped one.

A project that uses launcher keeps its configs in its own git repository: conf/model/my_net.yaml,
conf/experiment/churn.yaml, conf/hparams_search/mine.yaml in the directory a command starts
from are usable as model=my_net, experiment=churn, hparams_search=mine, and a file there with
the name of a shipped option replaces it. `python -m launcher --info searchpath` shows the path.

Only launcher's own apps are touched (those whose search path holds pkg://launcher.conf):
Hydra loads every plugin for every app in the environment.
"""
from __future__ import annotations

import os
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
from hydra.plugins.search_path_plugin import SearchPathPlugin

SHIPPED = "pkg://launcher.conf"
PROVIDER = "launcher-user-conf"


class UserConfSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        paths = [element.path for element in search_path.get_path()]
        if SHIPPED not in paths:
            return
        user = Path(os.getcwd()) / "conf"
        if not user.is_dir() or _same_tree(user):
            return
        anchor = next(e.provider for e in search_path.get_path() if e.path == SHIPPED)
        search_path.prepend(provider=PROVIDER, path=f"file://{user}", anchor=SearchPathQuery(provider=anchor))


def _same_tree(user: Path) -> bool:
    """In a checkout of launcher itself ./conf is the shipped tree: no need to add it twice."""
    from importlib import resources

    try:
        shipped = Path(str(resources.files("launcher.conf")))
    except ModuleNotFoundError:  # pragma: no cover - the plugin ships with launcher
        return False
    return user.resolve() == shipped.resolve()
