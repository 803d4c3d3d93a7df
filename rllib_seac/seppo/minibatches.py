"""Minibatches that hold the same env steps of every agent.

RLlib's `MiniBatchCyclicIterator` walks each module's batch on its own and, at
each epoch's end, shuffles each with its own permutation. SE-PPO evaluates module
i on agent k's minibatch next to its own, so the two must be the same env steps:
this iterator does what RLlib's does (`minibatch_size` rows per module, cycling
over the batch until every row was seen `num_epochs` times, a reshuffle at each
pass's end, or `num_total_minibatches` minibatches), with one start index and one
permutation for all modules. Each module's rows are shuffled by RLlib's own
`SampleBatch.shuffle`, from the same state of numpy's global generator.
"""

from __future__ import annotations

import numpy as np
from ray.rllib.policy.sample_batch import MultiAgentBatch, concat_samples


class AlignedMiniBatchIterator:
    def __init__(
        self,
        batch: MultiAgentBatch,
        *,
        num_epochs: int = 1,
        minibatch_size: int,
        shuffle_batch_per_epoch: bool = True,
        num_total_minibatches: int = 0,
    ) -> None:
        lengths = {mid: len(b) for mid, b in batch.policy_batches.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f"SE-PPO needs every module's batch to hold the same env steps; rows: {lengths}."
            )
        self._batch = batch
        self._length = next(iter(lengths.values()))
        if self._length == 0:
            raise ValueError("SE-PPO got an empty train batch.")
        self._minibatch_size = minibatch_size
        self._num_epochs = num_epochs
        self._shuffle = shuffle_batch_per_epoch
        self._num_total_minibatches = num_total_minibatches

    def _shuffle_all(self) -> None:
        state = np.random.get_state()
        for module_batch in self._batch.policy_batches.values():
            np.random.set_state(state)
            module_batch.shuffle()

    def __iter__(self):
        batches = self._batch.policy_batches
        start, epochs, count = 0, 0, 0
        while (self._num_total_minibatches == 0 and epochs < self._num_epochs) or (
            self._num_total_minibatches > 0 and count < self._num_total_minibatches
        ):
            parts = {mid: [] for mid in batches}
            n = self._minibatch_size
            s = start
            while s + n >= self._length:
                for mid, module_batch in batches.items():
                    parts[mid].append(module_batch[s:])
                n -= self._length - s
                s = 0
                epochs += 1
                if self._shuffle:
                    # The slices taken keep the rows they had: shuffle() swaps in new arrays.
                    self._shuffle_all()
            end = s + n
            if end > s:
                for mid, module_batch in batches.items():
                    parts[mid].append(module_batch[s:end])
            start = end
            minibatch = {mid: concat_samples(p) for mid, p in parts.items()}
            yield MultiAgentBatch(minibatch, len(self._batch))
            count += 1
