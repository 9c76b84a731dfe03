def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "dask_cluster: starts a distributed.LocalCluster (seconds; deselect with "
        "-m 'not dask_cluster')",
    )
