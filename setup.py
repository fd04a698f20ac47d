"""Packaging for kfp-cicd.

The repository keeps the layout of the users' design card (``components/``, ``pipelines/`` at the
top level); they install as sub-packages of ``kfp_cicd`` so nothing generic like ``components``
lands in a user's site-packages.
"""

from pathlib import Path

from setuptools import find_packages, setup

# The layers (docs/architecture.md) install from their folders: the library and the application from
# kfp_cicd/, and, when present, components/ and pipelines/. The predictor image builds from the library
# alone (images/predictor/Dockerfile: no components/, pipelines/ or CLI), so each is optional here.
LAYER_DIRS = {"kfp_cicd.components": "components", "kfp_cicd.pipelines": "pipelines"}
PRESENT = {package: folder for package, folder in LAYER_DIRS.items() if Path(folder).is_dir()}
# Every folder of components/ with an __init__.py is a component package.
COMPONENTS = (
    sorted(p.name for p in Path("components").iterdir() if (p / "__init__.py").is_file())
    if "kfp_cicd.components" in PRESENT
    else []
)
HAS_CLI = Path("kfp_cicd/cli/__init__.py").is_file()

packages = find_packages(include=["kfp_cicd", "kfp_cicd.*"])
packages += sorted(PRESENT)
packages += [f"kfp_cicd.components.{name}" for name in COMPONENTS]

version = {}
exec(Path("kfp_cicd/version.py").read_text(), version)

setup(
    name="kfp-cicd",
    version=version["__version__"],
    description="Kubeflow Pipelines components that take a model from fresh data to a served endpoint.",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=packages,
    package_dir=PRESENT,
    package_data={"kfp_cicd.components.validate_data": ["schemas/*.pbtxt"]} if COMPONENTS else {},
    install_requires=[
        "kfp>=2.17,<2.18",
        "kfp-kubernetes>=2.17,<2.18",
        "google-cloud-pipeline-components>=2.22,<3",
        "google-cloud-aiplatform>=1.165,<2",
        "google-cloud-storage",
        "kubernetes",
        "scikit-learn",
        "mlflow>=3.17,<3.18",
        "kserve>=0.21,<0.22",
        "torch>=2.13",
        "pandas>=2.2",
        "pyarrow",
        "matplotlib",
    ],
    entry_points={"console_scripts": ["kfp-cicd=kfp_cicd.cli:main"]} if HAS_CLI else {},
)
