"""The 3DGS splat medium: scene files (``io.py``), a CPU renderer (``render.py``) and the
attribute coder."""
