"""The TFDV side: scripts run by file path with the TFDV interpreter; this package only locates them.

``tfdv_job.py`` (validate, infer_schema, describe_schema, evolve_schema) and ``tfdv_drift_job.py``
(a production window against baseline statistics) are the entry points; ``tfdv_inputs``, ``tfdv_statistics``,
``tfdv_checks``, ``tfdv_contract`` (observed ranges, tolerances, schema evolution) and
``tfdv_reports`` (self-contained HTML views) are their helpers, imported by bare name (each entry point
puts this folder first on ``sys.path``). They import only the standard library and what the TFDV
environment has. They live in the package so every install and image ships them;
:data:`JOB_SCRIPT` and :data:`DRIFT_JOB_SCRIPT` are where they are.
"""

from pathlib import Path

#: Validation, schema inference and schema description (``{"mode": ...}`` in the request).
JOB_SCRIPT = Path(__file__).with_name("tfdv_job.py")

#: The drift check of a production window against baseline statistics.
DRIFT_JOB_SCRIPT = Path(__file__).with_name("tfdv_drift_job.py")
