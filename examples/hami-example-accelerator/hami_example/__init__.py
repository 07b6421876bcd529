"""An example third-party accelerator for hami."""
