"""stacklab's pytest plugin (:mod:`stacklab.pytest.plugin`), loaded by its ``pytest11`` entry
point whenever stacklab is installed: the ``simnet`` fixture, seeds, reproducible failures."""
