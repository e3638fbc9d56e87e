"""Sweeps: the same question over seeds and settings, answered with a mean and an interval.

A sweep is a base config, axes and seeds (``SWEEP.yaml``)::

    name: labels-curve
    base: examples/target_mnist_5-9_transfer.yaml   # a path (relative to the sweep file, then the
                                                    # working folder) or an inline config mapping
    before: [examples/source_mnist_0-4.yaml]        # runs needed first; a completed run with the
                                                    # same resolved config is reused
    seeds: [0, 1, 2, 3, 4]
    axes:                                           # grid = product of the axes, times the seeds
      data.train_per_class: [1, 2, 5, 10, 20, 50]   # dotted config path -> values
      variant:                                      # named axis -> label -> overrides
        scratch:  {backbones.0.weights: none, backbones.0.freeze: 0}
        transfer: {backbones.0.weights: "run:source-mnist-0-4", backbones.0.freeze: 3}
    search:                                         # optional: sampled ranges (Optuna TPE)
      n_trials: 20
      train.lr: {log_uniform: [1.0e-4, 1.0e-2]}     # also uniform: [a, b], int: [a, b], choice: [...]

Every trial is an ordinary run in the runs folder; its ``sweep.json`` records the sweep,
the trial's axis labels and seed. The sweep folder ``<runs>/_sweeps/<name>-<hash>`` (the
same spec always maps to the same folder, so re-running a command resumes it) holds
``sweep.yaml`` (resolved), ``trials.csv``, ``summary.csv``, ``paired.csv`` and the
Optuna storage ``optuna.journal``.

Modules: :mod:`.spec` (parse, validate, expand to trial configs), :mod:`.stats` (means,
t-intervals, paired differences), :mod:`.folder` (the sweep folder and its CSV files),
:mod:`.engine` (Optuna study, claiming trials, workers), :mod:`.jobs` (a sweep in a
background thread, for the app), :mod:`.builtin` (the built-in experiments),
:mod:`.headlines` (sentences computed from the numbers).

Trial row (``trials.csv``, and the dicts ``read_results`` returns): ``trial`` (0-based),
one column per axis (its label: the value for a dotted axis, the name for a named one),
one per search parameter, ``seed``, ``run_id``, ``state`` (pending | running | completed |
failed | stopped), ``val_acc`` (final epoch), ``best_val_acc``, ``train_s`` (sum of the
epochs' seconds) and ``wall_s`` (the whole trial as a user waits for it: data, feature
extraction, checkpoints). ``summary.csv`` summarises val_acc, train_s and wall_s.
"""
