"""Cambricon MLUs for hami: discovery through cnmon, the capacity-based node model HAMi uses,
the dynamic-sMLU pod annotations Cambricon's device plugin reads, and built-in device mounting."""
