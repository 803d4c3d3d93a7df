"""Every use of a private part of RLlib, Ray Tune or Ray, in one place.

Each function wraps one internal behind a small, documented interface: what RLlib
does there and why the public API is not enough. `tests/test_rllib_internals.py`
checks each one so that an RLlib upgrade that changes it fails loudly, naming it.
"""
