"""Huawei Ascend NPUs for hami: one vendor spec per chip (910A, 910B2, 910B3, 910B4, 310P, 910C),
vNPU templates, `npu-smi` discovery and mounting through the Ascend container runtime."""
