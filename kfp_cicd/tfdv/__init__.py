"""TensorFlow Data Validation, run from the main (kfp) environment.

TFDV 1.16 cannot be imported beside kfp 2.17 (their protobuf/pandas pins conflict), so it runs in a
separate interpreter and the main environment talks to it through JSON requests and result files:

- :mod:`~kfp_cicd.tfdv.environment`: where that interpreter is;
- :mod:`~kfp_cicd.tfdv.runner`: the one way to run a job script in it (output streamed, a tail
  kept for errors, the whole process group killed on timeout) and to read its result;
- :mod:`~kfp_cicd.tfdv.options`: the jobs' drift and scale settings from pipeline parameters;
- :mod:`~kfp_cicd.tfdv.staging`: local copies of remote tables (the TFDV side has no object-store
  clients);
- :mod:`kfp_cicd.tfdv.jobs`: the scripts that run *inside* the TFDV interpreter.
"""
