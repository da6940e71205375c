"""Weight/bias graphs of a small conv net, written with plain torch.nn (the original README's demo).

For every sample, the network's output equals (weight * x).sum(input dims) + bias, where weight and
bias are the local affine map at x. Run: python examples/graph_demo.py
"""

import torch
from torch import nn

import exactrelu

torch.manual_seed(5)


class TestNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels=3, out_channels=8, kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(num_features=8)
        self.conv2 = nn.Conv2d(in_channels=8, out_channels=16, kernel_size=3, stride=2, padding=1)
        self.avg = nn.AvgPool2d(2, 1)
        self.linear = nn.Linear(16, 2)
        self.flatten = nn.Flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.avg(self.conv2(x))
        return self.linear(self.flatten(x))


def main() -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = TestNet().to(device).eval()
    data = torch.randn(2, 3, 8, 8, device=device)

    graphs = exactrelu.affine_maps(net, data)
    with torch.no_grad():
        output = net(data)
    print("output:")
    print(output)
    print("weight graph:", tuple(graphs.weight.shape), " bias graph:", tuple(graphs.bias.shape))
    print("reconstructed from the graphs, sample by sample:")
    for i in range(data.shape[0]):
        print((graphs.weight[i] * data[i]).sum(dim=(1, 2, 3)) + graphs.bias[i])
    exact = exactrelu.exact_forward(net, data[0])
    print("exact output of sample 0 (rationals):", [str(v) for v in exact])


if __name__ == "__main__":
    main()
