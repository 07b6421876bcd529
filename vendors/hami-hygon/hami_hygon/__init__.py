"""Hygon DCUs for hami: discovery through hy-smi/rocm-smi, HAMi's legacy DCU registration,
whole-card and vDCU allocation with the device nodes and vDCU config mounted by hami itself."""
