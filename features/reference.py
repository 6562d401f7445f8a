"""Reference tables: IPC subclasses used by the portfolio and their policy fit.

`STRATEGIC_EMERGING_IPC` approximates CNIPA's concordance between strategic emerging industries and
IPC (战略性新兴产业分类与国际专利分类参照关系表 2021) at subclass level: a curated subset, not the full
table. A bank with the full concordance passes its own set to the feature transformers.
"""

from __future__ import annotations

from features.schema import Industry

# subclass -> (short English title, strategic emerging industry fit)
IPC_SUBCLASSES: dict[str, tuple[str, bool]] = {
    "A01B": ("soil working", False),
    "A23L": ("foods and foodstuffs", False),
    "A61B": ("diagnosis, surgery", True),
    "A61K": ("medical preparations", True),
    "A61P": ("therapeutic activity of compounds", True),
    "B01D": ("separation", True),
    "B23K": ("soldering, welding", False),
    "B25J": ("manipulators, robots", True),
    "B33Y": ("additive manufacturing", True),
    "B60L": ("electric vehicle propulsion", True),
    "B65G": ("conveying, warehousing", False),
    "B65D": ("containers, packaging", False),
    "C01B": ("non-metallic elements", True),
    "C07D": ("heterocyclic compounds", True),
    "C08L": ("macromolecular compositions", True),
    "C12N": ("microorganisms, enzymes, genetic engineering", True),
    "C22C": ("alloys", True),
    "E04B": ("general building constructions", False),
    "F16H": ("gearing", False),
    "F24S": ("solar heat collectors", True),
    "G01N": ("investigating materials", True),
    "G05B": ("control systems", True),
    "G06F": ("electric digital data processing", True),
    "G06N": ("computing models, AI", True),
    "G06Q": ("business data processing", False),
    "G06T": ("image data processing", True),
    "H01L": ("semiconductor devices", True),
    "H01M": ("batteries, fuel cells", True),
    "H02J": ("power supply and distribution", True),
    "H04L": ("digital information transmission", True),
    "H04N": ("pictorial communication", True),
    "H05K": ("printed circuits, electronic assemblies", False),
}

STRATEGIC_EMERGING_IPC: frozenset[str] = frozenset(k for k, (_, fit) in IPC_SUBCLASSES.items() if fit)

# Where each industry files its patents and registers its marks (weights for the synthetic portfolio).
INDUSTRY_IPC: dict[Industry, dict[str, float]] = {
    Industry.ELECTRONICS: {"H01L": 3, "H05K": 3, "H04N": 2, "G06F": 2, "H02J": 1, "G01N": 1},
    Industry.BIOMEDICINE: {"A61K": 4, "A61P": 2, "C07D": 2, "C12N": 2, "A61B": 2, "G01N": 1},
    Industry.NEW_MATERIALS: {"C08L": 3, "C22C": 3, "C01B": 2, "B33Y": 1, "B01D": 1},
    Industry.ADVANCED_MANUFACTURING: {"B25J": 3, "B23K": 3, "F16H": 2, "G05B": 2, "B33Y": 1, "B65G": 1},
    Industry.SOFTWARE: {"G06F": 4, "G06N": 2, "G06Q": 3, "G06T": 2, "H04L": 2},
    Industry.ENERGY_ENVIRONMENT: {"H01M": 3, "H02J": 2, "F24S": 2, "B01D": 2, "B60L": 2},
    Industry.AGRI_FOOD: {"A23L": 4, "A01B": 2, "B65D": 2, "C12N": 1},
    Industry.LOGISTICS: {"B65G": 4, "G06Q": 3, "B65D": 2, "G05B": 1},
}

INDUSTRY_NICE: dict[Industry, dict[int, float]] = {
    Industry.ELECTRONICS: {9: 4, 11: 1, 35: 1, 42: 1},
    Industry.BIOMEDICINE: {5: 4, 10: 2, 44: 1, 35: 1},
    Industry.NEW_MATERIALS: {1: 3, 17: 2, 6: 2, 19: 1},
    Industry.ADVANCED_MANUFACTURING: {7: 4, 12: 1, 6: 1, 37: 1},
    Industry.SOFTWARE: {9: 3, 42: 4, 35: 2, 38: 1},
    Industry.ENERGY_ENVIRONMENT: {9: 2, 11: 3, 4: 1, 40: 1},
    Industry.AGRI_FOOD: {29: 3, 30: 3, 31: 2, 32: 1, 33: 1},
    Industry.LOGISTICS: {39: 4, 35: 2, 12: 1},
}
