"""Tools that read a run or a checkpoint: evaluate, render, plot, and their labels."""
