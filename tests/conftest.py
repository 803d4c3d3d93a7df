"""One Ray instance for the whole test session, with its files under /tmp."""

import pytest
import ray
import ray.tune.trainable.trainable as trainable_module

# Short: Ray's socket paths must stay under the 107-byte AF_UNIX limit.
RAY_TEMP_DIR = "/tmp/rllib_seac_ray_tests"


@pytest.fixture(scope="session", autouse=True)
def ray_session(tmp_path_factory):
    # Ray 2.60 no longer reads TUNE_RESULT_DIR (setting it makes Tune raise). Tune runs
    # get an explicit storage_path; `build_algo()` outside Tune logs to this default.
    with pytest.MonkeyPatch.context() as patch:
        results = tmp_path_factory.mktemp("ray_results")
        patch.setattr(trainable_module, "DEFAULT_STORAGE_PATH", str(results))
        # Tune reuses this instance instead of starting its own.
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=RAY_TEMP_DIR, log_to_driver=False)
        yield
        ray.shutdown()
