"""C++ kernels for the CPU training step, built on first use with the host compiler.

``bn_act``: batch norm + residual add + ReLU fused for training (``cnnlab.kernels.bn_act``).
``build``: how the kernels are compiled, cached per torch version and CPU, and loaded.
"""
