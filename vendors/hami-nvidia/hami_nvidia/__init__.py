"""NVIDIA GPUs for hami: NVML discovery, HAMi-core slicing and NVLink-aware placement."""
