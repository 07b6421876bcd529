"""hami vendor distribution for Moore Threads GPUs (MTT S4000 and the MUSA family)."""
