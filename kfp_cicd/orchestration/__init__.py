"""Ship compiled pipelines: upload, submit and schedule on Kubeflow Pipelines and Vertex AI.

``kfp_pipelines`` talks to a KFP API server through the real ``kfp.Client``; ``vertex`` to Vertex AI
Pipelines through the real ``google-cloud-aiplatform`` SDK. ``spec`` and ``parameters`` read the
compiled specs so run parameters are typed as the pipeline declares them.
"""
