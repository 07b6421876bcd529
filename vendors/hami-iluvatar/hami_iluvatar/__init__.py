"""hami vendor distribution for Iluvatar CoreX GPUs (MR-V100, MR-V50, BI-V150, BI-V100)."""
