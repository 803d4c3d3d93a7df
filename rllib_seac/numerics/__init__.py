"""The math SEAC, SEQL and the rollouts share, written once: stacked ReLU MLPs (their
detection, forward and backward), global-norm gradient clipping, and Adam on flat
buffers for the fused update steps."""
