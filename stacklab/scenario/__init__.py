"""Scenario files: the TOML vocabulary on top of the simulator.

* :mod:`~stacklab.scenario.runner`: load, check, build and run a scenario (``stacklab run``);
* :mod:`~stacklab.scenario.registry`: the ``[[app]]`` kinds, built in and registered;
* :mod:`~stacklab.scenario.net_kinds` / :mod:`~stacklab.scenario.app_kinds`: the built-in kinds
  (the stack's tools; the applications of :mod:`stacklab.apps`);
* :mod:`~stacklab.scenario.node_options`: the ``[[node]]`` PMTU options;
* :mod:`~stacklab.scenario.params`: parameters the kinds share.

This package imports the simulator (:mod:`stacklab.net`), the API and the applications; nothing
below it imports this package.
"""
