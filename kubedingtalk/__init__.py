"""kube-dingtalk: announce failing Kubernetes pods in a DingTalk group."""

__version__ = "0.1.0"
