"""The heart-disease table (UCI Cleveland layout) and a synthetic generator with its schema.

The real table (UCI Cleveland, 303 rows) ships in ``datasets/``. Files have no header and 14
columns; '?' (or an empty cell) marks a missing value, allowed only in ``ca`` and ``thal``;
``num`` 0 means healthy and 1-4 grades of disease.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from conveyor.models.schema import Column, TableSchema

if TYPE_CHECKING:
    import numpy as np

HEART_SCHEMA = TableSchema(
    "heart",
    (
        Column("age", "numeric", 1, 120),
        Column("sex", "binary", 0, 1, allowed=(0, 1)),
        Column("cp", "categorical", 1, 4, allowed=(1, 2, 3, 4)),  # chest pain type
        Column("trestbps", "numeric", 50, 250),  # resting blood pressure, mm Hg
        Column("chol", "numeric", 50, 700),  # serum cholesterol, mg/dl
        Column("fbs", "binary", 0, 1, allowed=(0, 1)),  # fasting blood sugar > 120 mg/dl
        Column("restecg", "categorical", 0, 2, allowed=(0, 1, 2)),
        Column("thalach", "numeric", 50, 250),  # maximum heart rate
        Column("exang", "binary", 0, 1, allowed=(0, 1)),  # exercise-induced angina
        Column("oldpeak", "numeric", -5, 10),  # ST depression
        Column("slope", "categorical", 1, 3, allowed=(1, 2, 3)),
        Column("ca", "numeric", 0, 3, allowed=(0, 1, 2, 3), missing_allowed=True),
        Column("thal", "categorical", 3, 7, allowed=(3, 6, 7), missing_allowed=True),
        Column("num", "target", 0, 4, allowed=(0, 1, 2, 3, 4)),
    ),
)
# Ships with the package (datasets/README.md), so a pip install or a container trains as is.
CLEVELAND_SOURCE = "conveyor:heart/datasets/cleveland.csv (UCI Heart Disease, CC BY 4.0)"


def cleveland_csv() -> bytes:
    """The UCI Cleveland table (303 rows): the default dataset of ``conveyor train heart``."""
    return resources.files(__package__).joinpath("datasets", "cleveland.csv").read_bytes()


def synthetic_rows(rows: int, seed: int = 0, missing_rate: float = 0.02) -> list[list[str]]:
    """Rows that pass the heart schema, with a learnable link between features and disease."""
    import numpy as np

    generator = np.random.default_rng(seed)
    return [_synthetic_row(generator, missing_rate) for _ in range(rows)]


def synthetic_csv(rows: int, seed: int = 0, missing_rate: float = 0.02) -> bytes:
    lines = (",".join(row) for row in synthetic_rows(rows, seed, missing_rate))
    return ("\n".join(lines) + "\n").encode()


def _synthetic_row(generator: np.random.Generator, missing_rate: float) -> list[str]:
    sick = generator.random() < 0.46
    pick = generator.choice
    values = {
        "age": round(float(_clip(generator.normal(58 if sick else 52, 8), 29, 77))),
        "sex": int(generator.random() < (0.8 if sick else 0.55)),
        "cp": int(
            pick([1, 2, 3, 4], p=[0.05, 0.07, 0.13, 0.75] if sick else [0.1, 0.25, 0.45, 0.2])
        ),
        "trestbps": round(float(_clip(generator.normal(134 if sick else 129, 17), 94, 200))),
        "chol": round(float(_clip(generator.normal(251 if sick else 242, 50), 126, 564))),
        "fbs": int(generator.random() < 0.15),
        "restecg": int(pick([0, 1, 2], p=[0.45, 0.02, 0.53] if sick else [0.57, 0.01, 0.42])),
        "thalach": round(float(_clip(generator.normal(139 if sick else 158, 20), 71, 202))),
        "exang": int(generator.random() < (0.55 if sick else 0.14)),
        "oldpeak": round(
            float(_clip(generator.gamma(1.6, 1.0) if sick else generator.gamma(0.7, 0.8), 0, 6.2)),
            1,
        ),
        "slope": int(pick([1, 2, 3], p=[0.25, 0.65, 0.1] if sick else [0.65, 0.3, 0.05])),
        "ca": int(
            pick([0, 1, 2, 3], p=[0.33, 0.3, 0.22, 0.15] if sick else [0.8, 0.13, 0.05, 0.02])
        ),
        "thal": int(pick([3, 6, 7], p=[0.27, 0.09, 0.64] if sick else [0.79, 0.04, 0.17])),
        "num": int(pick([1, 2, 3, 4], p=[0.4, 0.26, 0.25, 0.09])) if sick else 0,
    }
    cells = [str(values[name]) for name in HEART_SCHEMA.names]
    for position in (11, 12):  # ca and thal, as in the Cleveland file
        if generator.random() < missing_rate:
            cells[position] = "?"
    return cells


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)
