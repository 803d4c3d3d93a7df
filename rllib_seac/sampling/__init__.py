"""Sampling shared by the algorithms: the env runner, its rollout collectors and env batches."""
