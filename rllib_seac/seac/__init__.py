"""SEAC (Christianos et al., 2020): its config, algorithm, learner, losses and module,
laid out like RLlib's algorithms/<name>/ folders."""
