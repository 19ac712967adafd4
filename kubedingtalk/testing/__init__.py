"""Emulators of the Kubernetes API and the DingTalk robot: the ground tests, demo and benchmarks stand on."""
