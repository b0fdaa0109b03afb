"""The method's network and its training (paper Sec. 2.2 and 3.1), and what was added beyond the paper.

- :mod:`ssimnet.net.architecture` -- what defines a network's shape, without torch
- :mod:`ssimnet.net.model` -- the U-Net
- :mod:`ssimnet.net.train` -- the loss (Eq. 5), training and per-image fine-tuning
- :mod:`ssimnet.net.augment` -- HED stain jitter (beyond the paper)
- :mod:`ssimnet.net.boundary` -- the boundary-aware target (beyond the paper)
- :mod:`ssimnet.net.separation` -- the learned separation output (beyond the paper)
- :mod:`ssimnet.net.selftrain` -- self-training rounds (beyond the paper)
- :mod:`ssimnet.net.onnxnet` -- a trained network's ONNX export, run without torch
- :mod:`ssimnet.net.onnxwire` -- tensors kept outside an ONNX model, found without the onnx package
"""
