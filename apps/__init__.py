"""Applications built only on kerascnn's public API (transfer learning, style transfer, DeepDream).

Apps import kerascnn; kerascnn's core never imports apps (only the CLI wires them in).
"""
