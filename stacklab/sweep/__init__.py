"""Parameter sweeps: one scenario run over a grid of its fields and seeds (``stacklab sweep``).

* :mod:`~stacklab.sweep.grid`: ``--set KEY=V1,V2,...`` keys and values, the grid, the edits;
* :mod:`~stacklab.sweep.runs`: one run (:func:`stacklab.scenario.runner.run_scenario` on the
  edited scenario) and the engines: a local process pool or a Dask cluster;
* :mod:`~stacklab.sweep.table`: the tidy results table (CSV, Parquet);
* :mod:`~stacklab.sweep.report`: ``results.html`` (inline SVG) and the terminal summary;
* :mod:`~stacklab.sweep.driver`: a sweep from start to end (``--resume`` included).

This package imports the scenario layer and below; the CLI imports it.
"""

from .driver import Sweep, SweepResult, run_sweep
from .grid import Param, SweepError, parse_set

__all__ = ["Param", "Sweep", "SweepError", "SweepResult", "parse_set", "run_sweep"]
