"""hami vendor distribution for MetaX GPUs (MXC500 / C500) in whole-card mode."""
