"""Exports tests/data/conv_bn_net.onnx and its PyTorch reference output.

A small Conv+BatchNorm+ReLU (twice) + Linear+ReLU+Linear network, random
initialisation (fixed seed) with non-trivial BatchNorm running statistics,
exported in eval mode with the TorchScript exporter at opset 17 and
do_constant_folding=False, so the BatchNormalization nodes stay in the file
for onnxi's load-time folding to work on. Run with the torch venv:

    /work/venv-torch/bin/python tests/data/make_conv_bn_net.py

Pinned: made with torch 2.15.0 (TorchScript exporter, dynamo=False) and
numpy 2.4.6. Writes
conv_bn_net.onnx, conv_bn_net_input.npy and conv_bn_net_output.npy beside
this script.
"""

import os

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False, groups=2)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc1 = nn.Linear(8 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 5)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        return self.fc2(x)


def main():
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        for bn in (net.bn1, net.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
    net.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        y = net(x)
    torch.onnx.export(
        net,
        (x,),
        os.path.join(HERE, "conv_bn_net.onnx"),
        dynamo=False,
        opset_version=17,
        training=torch.onnx.TrainingMode.EVAL,
        do_constant_folding=False,
        input_names=["x"],
        output_names=["y"],
    )
    np.save(os.path.join(HERE, "conv_bn_net_input.npy"), x.numpy())
    np.save(os.path.join(HERE, "conv_bn_net_output.npy"), y.numpy())


if __name__ == "__main__":
    main()
