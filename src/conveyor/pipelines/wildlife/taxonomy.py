"""ImageNet-1k class index -> coarse group (bird, mammal, ...) and a species name.

ImageNet's 1000 classes are ordered along the WordNet hierarchy, so the animal groups are
contiguous index ranges (checked against the class names in :mod:`.imagenet_classes`):

=========  ==========================================================================
group      ImageNet indices
=========  ==========================================================================
fish       0-6 (tench .. stingray), 389-397 (barracouta .. puffer)
bird       7-24 (cock .. great grey owl), 80-100 (black grouse .. black swan),
           127-146 (white stork .. albatross)
amphibian  25-32 (European fire salamander .. tailed frog)
reptile    33-68 (loggerhead .. sidewinder)
insect     70-79 (arachnids and centipede), 300-326 (beetles .. butterflies): insects and
           other small land arthropods
mammal     101-106 (tusker .. wombat), 147-150 (whales, dugong, sea lion),
           151-299 (dogs, wolves, foxes, cats, bears, mongoose, meerkat),
           330-388 (rabbits, rodents, hoofed animals, mustelids, primates, elephants, pandas)
person     scuba diver, groom, ballplayer and a few clothes that mostly show on people
vehicle    road and rail vehicles, bicycles, tractors, snowmobiles (named in VEHICLES)
other      everything else (plants, landscapes, objects, sea invertebrates, trilobite)
=========  ==========================================================================
"""

from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple

import numpy as np

from conveyor.pipelines.wildlife.imagenet_classes import IMAGENET_CLASSES

GROUPS = ("bird", "mammal", "reptile", "amphibian", "fish", "insect", "person", "vehicle", "other")
ANIMAL_GROUPS = frozenset({"bird", "mammal", "reptile", "amphibian", "fish", "insect"})
# Groups a camera-trap user wants reported: animals, and people and vehicles to filter out.
REPORTED_GROUPS = ANIMAL_GROUPS | {"person", "vehicle"}

GROUP_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "fish": ((0, 6), (389, 397)),
    "bird": ((7, 24), (80, 100), (127, 146)),
    "amphibian": ((25, 32),),
    "reptile": ((33, 68),),
    "insect": ((70, 79), (300, 326)),
    "mammal": ((101, 106), (147, 299), (330, 388)),
}
PEOPLE = (
    "scuba diver",
    "groom",
    "ballplayer",
    "military uniform",
    "jean",
    "sweatshirt",
    "jersey",
    "suit",
    "trench coat",
    "lab coat",
    "poncho",
)
VEHICLES = (
    "ambulance",
    "amphibian",
    "beach wagon",
    "bicycle-built-for-two",
    "cab",
    "convertible",
    "electric locomotive",
    "fire engine",
    "forklift",
    "freight car",
    "garbage truck",
    "go-kart",
    "golfcart",
    "half track",
    "harvester",
    "horse cart",
    "jeep",
    "jinrikisha",
    "limousine",
    "minibus",
    "minivan",
    "Model T",
    "moped",
    "motor scooter",
    "mountain bike",
    "moving van",
    "oxcart",
    "passenger car",
    "pickup",
    "police van",
    "racer",
    "recreational vehicle",
    "school bus",
    "snowmobile",
    "snowplow",
    "sports car",
    "steam locomotive",
    "streetcar",
    "tank",
    "thresher",
    "tow truck",
    "tractor",
    "trailer truck",
    "tricycle",
    "trolleybus",
    "unicycle",
)


def group_of(class_index: int) -> str:
    for group, ranges in GROUP_RANGES.items():
        if any(low <= class_index <= high for low, high in ranges):
            return group
    name = IMAGENET_CLASSES[class_index]
    # "amphibian" is also a vehicle class name (index 408); ranges above win for animals.
    if name in PEOPLE:
        return "person"
    if name in VEHICLES:
        return "vehicle"
    return "other"


def species_name(class_index: int) -> str:
    return IMAGENET_CLASSES[class_index]


@cache
def group_matrix() -> np.ndarray:
    """A (1000, len(GROUPS)) 0/1 matrix: class probabilities @ matrix = group probabilities."""
    matrix = np.zeros((len(IMAGENET_CLASSES), len(GROUPS)), dtype=np.float32)
    for index in range(len(IMAGENET_CLASSES)):
        matrix[index, GROUPS.index(group_of(index))] = 1.0
    return matrix


SPECIES_THRESHOLD = 0.5  # least class probability for a species name (else the group only)
ALTERNATIVES = 3


class Label(NamedTuple):
    group: str
    species: str  # the most likely class, or the group's name when that class is unlikely
    score: float  # the group's probability mass
    species_probability: float  # the most likely class's probability, named or not
    alternatives: list[list[Any]]  # [[class, probability], ...]: the next likeliest classes of
    # the group, or (when no species is named) the likeliest ones


def label_of(probabilities: np.ndarray, species_threshold: float = SPECIES_THRESHOLD) -> Label:
    """The reported group (animal, person, vehicle) with the most probability mass and that
    mass (0..1): the caller decides whether the mass is enough. The species is named only when
    its own probability reaches ``species_threshold``: ImageNet knows dog breeds by the
    hundred and no raccoon, so an unsure species is a wrong one more often than not."""
    group_mass = probabilities @ group_matrix()
    reported = [GROUPS.index(g) for g in GROUPS if g in REPORTED_GROUPS]
    best = max(reported, key=lambda index: group_mass[index])
    return _labelled(probabilities, best, float(group_mass[best]), species_threshold)


def _labelled(probabilities: np.ndarray, group: int, mass: float, threshold: float) -> Label:
    members = np.flatnonzero(group_matrix()[:, group] > 0)
    ranked = members[np.argsort(-probabilities[members])][: ALTERNATIVES + 1]
    top = float(probabilities[ranked[0]])
    named = top >= threshold
    others = ranked[1:] if named else ranked[:ALTERNATIVES]
    alternatives = [[species_name(int(i)), round(float(probabilities[i]), 4)] for i in others]
    return Label(
        GROUPS[group],
        species_name(int(ranked[0])) if named else GROUPS[group],
        mass,
        top,
        alternatives,
    )


def animal_label(probabilities: np.ndarray, threshold: float = SPECIES_THRESHOLD) -> Label:
    """The most likely animal group and its species for a box a detector called "animal"."""
    masses = probabilities @ group_matrix()
    groups = [GROUPS.index(g) for g in GROUPS if g in ANIMAL_GROUPS]
    best = max(groups, key=lambda index: masses[index])
    return _labelled(probabilities, best, float(masses[best]), threshold)
