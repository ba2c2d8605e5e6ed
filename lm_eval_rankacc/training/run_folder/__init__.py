"""A training run's output folder (``--output_dir``), one job a module:

- :mod:`.files`: the names of its files, written atomically, read back (pure);
- :mod:`.start`: when a run may start there, and ``--fresh_start``;
- :mod:`.agree`: every process of a ``torchrun`` run takes the same start decision;
- :mod:`.checkpoints`: complete checkpoints, and which one a resumed run
  starts from (pure);
- :mod:`.marks`: the callbacks that mark the run's checkpoints and the best one;
- :mod:`.result`: ``training_config.json`` and :class:`~.result.RunResult`.

Nothing is imported here, so :mod:`.files` stays light (``rankacc plot-training``).
"""
