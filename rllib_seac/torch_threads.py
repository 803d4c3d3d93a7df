"""The torch thread count of the processes that run SEAC's learner or env runners."""

import torch


def set_torch_threads(n: int | None) -> None:
    """`config.torch_num_threads` for this process (None: leave it as it is).

    Applied wherever SEAC's learner or env runner is built, the user's driver
    process included when they run there (the default, one-process mode): that
    is where SEAC's work runs, and its batches of tens of rows are faster on one
    thread than on several that spin against env stepping. Set None to keep the
    process's own setting.
    """
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
