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


def label_of(probabilities: np.ndarray) -> tuple[str, str, float]:
    """The reported group (animal, person, vehicle) with the most probability mass, its most
    likely class and that mass (0..1); the caller decides whether the mass is enough."""
    group_mass = probabilities @ group_matrix()
    reported = [GROUPS.index(g) for g in GROUPS if g in REPORTED_GROUPS]
    best = max(reported, key=lambda index: group_mass[index])
    members = group_matrix()[:, best] > 0
    top_class = int(np.argmax(np.where(members, probabilities, -1.0)))
    return GROUPS[best], species_name(top_class), float(group_mass[best])
