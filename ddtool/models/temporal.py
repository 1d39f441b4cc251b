"""The DFDC student study's temporal models over Gaussian-residual ("distinguishment") data.

- cnn3d: 3D CNN on (N, T, H, W) residual volumes, T=20 faces of 100x100 per
  video in the study. Input -> Conv 20 tanh -> MaxPool -> Conv 16 ReLU ->
  Conv 8 ReLU -> global pooling -> Dense (sigmoid) -> fully connected.
- gru: GRU over (N, T, 1) sequences, each step the mean residual of one face.

The study gives layer types, widths and activations but no kernel sizes,
pool sizes or hidden sizes; the choices are in docs/models-seed.md. Global
pooling and the recurrent read-out make both models independent of T, H, W,
so short sequences or small faces work too. Both return (N, 2) logits,
index 1 = fake.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ddtool.errors import InputError
from ddtool.models.registry import ModelSpec, TrainDefaults, register_model


class ResidualVolumeCNN(nn.Module):
    def __init__(self, num_classes: int = 2, kernel: int = 3, hidden: int = 16):
        super().__init__()
        pad = kernel // 2
        self.features = nn.Sequential(
            nn.Conv3d(1, 20, kernel, padding=pad),
            nn.Tanh(),
            nn.MaxPool3d(2, ceil_mode=True),
            nn.Conv3d(20, 16, kernel, padding=pad),
            nn.ReLU(inplace=True),
            nn.Conv3d(16, 8, kernel, padding=pad),
            nn.ReLU(inplace=True),
        )
        self.num_features = 8
        self.head = nn.Sequential(
            nn.Linear(self.num_features, hidden),
            nn.Sigmoid(),
            nn.Linear(hidden, num_classes),
        )

    def forward_features(self, volume: torch.Tensor) -> torch.Tensor:
        """(N, T, H, W) residual volume -> (N, 8, T', H', W') feature volume."""
        if volume.dim() != 4:
            raise InputError(
                f"cnn3d expects residual volumes shaped (N, T, H, W), got {tuple(volume.shape)}; "
                "build them with the Gaussian-residual features (20 faces of 100x100 per video)"
            )
        return self.features(volume.unsqueeze(1))

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(volume).mean(dim=(2, 3, 4)))


class ResidualSequenceGRU(nn.Module):
    def __init__(self, num_classes: int = 2, hidden: int = 32, layers: int = 1):
        super().__init__()
        self.gru = nn.GRU(input_size=1, hidden_size=hidden, num_layers=layers, batch_first=True)
        self.num_features = hidden
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        if sequence.dim() == 2:  # (N, T) is the same data without the feature axis
            sequence = sequence.unsqueeze(-1)
        if sequence.dim() != 3 or sequence.shape[-1] != 1:
            raise InputError(
                f"gru expects mean-residual sequences shaped (N, T, 1), got {tuple(sequence.shape)}; "
                "average each face's residual map to one number per time step"
            )
        _, last_hidden = self.gru(sequence)
        return self.head(last_hidden[-1])


def build_cnn3d(**kwargs) -> ResidualVolumeCNN:
    return ResidualVolumeCNN(**kwargs)


def build_gru(**kwargs) -> ResidualSequenceGRU:
    return ResidualSequenceGRU(**kwargs)


SEED_STUDY = "DeepFake Detection in Deep Learning (DFDC student study), Model 1"
# The study's logs show 50 epochs; optimiser and batch size are not stated,
# so Keras' defaults it was written with are assumed (Adam lr 1e-3, batch 32;
# 21 steps per epoch in the logs fits ~670 upsampled videos at 32).
SEED_TEMPORAL_TRAINING = TrainDefaults(optimizer="adam", lr=1e-3, lr_decay=1.0, epochs=50, batch_size=32, seed=7, augment=())
# Residuals are used as ddtool.features.noise produces them: no further scaling.
NO_NORMALISATION = ((0.0,), (1.0,))

register_model(
    ModelSpec(
        name="cnn3d",
        builder=build_cnn3d,
        description="3D CNN over (20, 100, 100) Gaussian-residual face volumes (DFDC student study)",
        family="temporal",
        input_kind="volume",
        input_size=(20, 100, 100),
        mean=NO_NORMALISATION[0],
        std=NO_NORMALISATION[1],
        train=SEED_TEMPORAL_TRAINING,
        gradcam_layer=None,
        paper=SEED_STUDY,
    )
)

register_model(
    ModelSpec(
        name="gru",
        builder=build_gru,
        description="GRU over (20, 1) mean-residual sequences (DFDC student study)",
        family="temporal",
        input_kind="sequence",
        input_size=(20, 1),
        mean=NO_NORMALISATION[0],
        std=NO_NORMALISATION[1],
        train=SEED_TEMPORAL_TRAINING,
        gradcam_layer=None,
        paper=SEED_STUDY,
    )
)
