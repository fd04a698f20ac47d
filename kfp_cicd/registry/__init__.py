"""The MLflow model registry client every step of the suite shares.

Works against any MLflow tracking URI: the embedded default (a local SQLite store with artifacts
beside it) or a real ``mlflow server`` (``http://…``). One concept per module:

- :mod:`~kfp_cicd.registry.client`: a client for a tracking URI, every call through bounded
  retries, reading versions, tags and files;
- :mod:`~kfp_cicd.registry.retries`: which failures are retried, how often and how patiently;
- :mod:`~kfp_cicd.registry.registration`: a model directory in, a complete READY version out;
- :mod:`~kfp_cicd.registry.aliases`: ``candidate``, ``champion``, ``previous``; promote, rollback;
- :mod:`~kfp_cicd.registry.tags`: the version tags the steps write and read back;
- :mod:`~kfp_cicd.registry.digest`: the ``model_digest`` every deployment must match;
- :mod:`~kfp_cicd.registry.history`: training curves as per-epoch metrics of the version's run.
"""
