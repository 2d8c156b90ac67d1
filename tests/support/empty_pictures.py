"""Real pictures that installable packages ship (scikit-image's ``data``) with no animal,
person or vehicle in them: a detector must call each of them empty."""

EMPTY_PICTURES = (
    "coffee",
    "rocket",
    "chelsea",
    "coins",
    "page",
    "text",
    "moon",
    "brick",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
)
