"""Install mcir: ``pip install -e .``."""

from pathlib import Path

from setuptools import find_packages, setup

version: dict = {}
version_src = Path(__file__).with_name("mcir").joinpath("version.py").read_text()
for line in version_src.splitlines():
    if line.startswith("__version__"):
        version["__version__"] = line.split("=", 1)[1].strip().strip('"')

setup(
    name="mcir",
    version=version["__version__"],
    description="Image restoration with model-contrastive learning (learning from history)",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["mcir", "mcir.*"]),
    # NIQE's pristine model (from BasicSR, Apache-2.0; see the NOTICE file next to it).
    package_data={"mcir.metrics": ["niqe_pris_params.npz", "niqe_pris_params.NOTICE.md"]},
    python_requires=">=3.9",
    install_requires=[
        "torch>=2.0,<3",
        "torchvision>=0.15",
        "numpy>=1.22",
        "opencv-python-headless>=4.5",
        "lmdb>=1.0",
        "scikit-image>=0.19",
        "pyyaml>=5.4",
        "tensorboard>=2.10",
        "tqdm>=4.60",
        "matplotlib>=3.5",
        "pillow>=9",
        "scipy>=1.8",
        "lpips>=0.1.4",
    ],
    extras_require={
        # scripts/export_onnx.py: torch's dynamo exporter needs onnx + onnxscript; the check runs onnxruntime.
        "export": ["onnx>=1.16", "onnxscript>=0.3", "onnxruntime>=1.18"],
        "test": ["pytest>=7", "onnx>=1.16", "onnxscript>=0.3", "onnxruntime>=1.18"],
    },
    entry_points={
        "console_scripts": [
            "mcir-train=mcir.train:main",
            "mcir-test=mcir.test:main",
            "mcir-infer=mcir.infer:main",
            "mcir-convert-options=mcir.cli.convert_options:main",
        ]
    },
)
