"""The project's error types, at the bottom of the house: this module imports nothing of posedenoise.

Bad input (a flag, a file, a combination of them) is the user's to fix. Every layer raises these, and the
command layer (posedenoise.cli.command) reports them as one line naming the flag or file, exit code 2. The
layers, bottom to top (tests/test_imports.py checks that every import points down or sideways):

    errors, install, layout, noise, files, memory, metrics     error types, tables, atomic writes
    reference                                                  the semantics of every kernel, in plain PyTorch
    ops, kernels                                               the one door to the kernels
    data                                                       readers, caches, windows, batches
    models                                                     the denoisers and the filters
    evaluation                                                 what training and evaluation share
    commands                                                   cli, train, evaluate, ... (the package's __init__ too)
"""


class InputError(ValueError):
    """Bad input the user can fix; the message names the flag or file and says what was expected."""


class DataError(InputError):
    """Bad input data: a missing or corrupt file, a wrong field or shape, an unknown layout. An InputError
    (a ValueError): every command reports it as one line, exit code 2 (posedenoise.cli.command)."""
