"""The network: raw heart features in (NaN for a missing value), class probabilities out.

Imputation, scaling and one-hot encoding are layers of the network itself, with statistics of
the training rows kept as buffers, so the saved program, the ONNX file and the served endpoint
all take the features exactly as the table has them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from conveyor.models.schema import TableSchema


class TabularNetwork(nn.Module):
    """An MLP with one hidden layer over the schema's features."""

    def __init__(self, features: pd.DataFrame, schema: TableSchema, hidden: int) -> None:
        super().__init__()
        medians = features.median().fillna(0.0).to_numpy()
        filled = features.fillna(pd.Series(medians, index=features.columns))
        self.register_buffer("medians", _tensor(medians))
        self.register_buffer("means", _tensor(filled.mean().to_numpy()))
        self.register_buffer("scales", _tensor(filled.std().replace(0.0, 1.0).to_numpy()))
        columns = {column.name: column for column in schema.columns}
        self.categorical = [
            (position, f"values_{position}")
            for position, name in enumerate(schema.features)
            if columns[name].role == "categorical"
        ]
        for position, buffer in self.categorical:
            allowed = columns[schema.features[position]].allowed
            self.register_buffer(buffer, _tensor(np.array(allowed, dtype=float)))
        width = len(schema.features) + sum(
            len(columns[schema.features[p]].allowed) for p, _ in self.categorical
        )
        self.layers = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        filled = torch.where(torch.isnan(features), self.medians, features)
        parts = [(filled - self.means) / self.scales]
        for position, buffer in self.categorical:
            values = getattr(self, buffer)
            parts.append((filled[:, position : position + 1] == values).to(features.dtype))
        return torch.softmax(self.layers(torch.cat(parts, dim=1)), dim=1)


def train_network(
    features: pd.DataFrame,
    labels: pd.Series,
    schema: TableSchema,
    hidden: int,
    epochs: int,
    learning_rate: float,
    seed: int,
) -> TabularNetwork:
    """Full-batch Adam on cross-entropy: the tables are a few hundred rows."""
    torch.manual_seed(seed)
    network = TabularNetwork(features, schema, hidden)
    inputs = _tensor(features.to_numpy())
    targets = torch.tensor(labels.to_numpy(), dtype=torch.long)
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate, weight_decay=1e-3)
    network.train()
    for _ in range(epochs):
        optimizer.zero_grad()
        probabilities = network(inputs)
        loss = nn.functional.nll_loss(torch.log(probabilities + 1e-7), targets)
        loss.backward()
        optimizer.step()
    return network.eval()


def _tensor(values: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32))
