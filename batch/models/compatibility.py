"""Whether one package can stand in for another: the same target, and which features it adds.

A deployment's champion and its challengers score the same rows into the same
output columns (``<target>_<label>_PREDICTION``) and are compared on the same
actuals, so they must predict the same thing: the target's name, type, class
labels and positive class. A model that needs a feature the other did not may
meet rows that lack it; that is a choice for a person (``--force``), not an
incompatibility.
"""

from __future__ import annotations

from batch.errors import IncompatibleModelError
from batch.models.manifest import ModelManifest
from batch.models.package import ModelPackage


def target_differences(current: ModelManifest, other: ModelManifest) -> list[str]:
    """How ``other``'s target differs from ``current``'s, one phrase each (empty: the same
    target). Class labels are compared as a set: their order is the model's own column
    order, not part of what it predicts."""
    mine, theirs = current.target, other.target
    found = []
    if theirs.name != mine.name:
        found.append(f"target name {theirs.name!r} (not {mine.name!r})")
    if theirs.type != mine.type:
        found.append(f"target type {theirs.type} (not {mine.type})")
    elif set(theirs.classes) != set(mine.classes):
        found.append(f"classes {list(theirs.classes)} (not {list(mine.classes)})")
    elif theirs.positive != mine.positive:
        found.append(f"positive class {theirs.positive!r} (not {mine.positive!r})")
    return found


def added_features(current: ModelManifest, other: ModelManifest) -> list[str]:
    """Features ``other`` requires that ``current`` does not require, in ``other``'s
    order: rows made for ``current`` may lack them."""
    required = {f.name for f in current.features if f.required}
    return [f.name for f in other.features if f.required and f.name not in required]


def check_target(champion: ModelPackage, package: ModelPackage, *, where: str) -> None:
    """Refuse ``package`` beside or instead of ``champion`` when it predicts another target.

    Raises:
        IncompatibleModelError: naming each difference; ``where`` (``deployment 'x'``)
            starts the message.
    """
    differences = target_differences(champion.manifest, package.manifest)
    if differences:
        raise IncompatibleModelError(f"{where}: {package.label} predicts another target than "
                                     f"the champion {champion.label}: {'; '.join(differences)}")


def check_added_features(champion: ModelPackage, package: ModelPackage, *, force: bool,
                         where: str) -> tuple[str, ...]:
    """The features ``package`` requires that ``champion`` does not (empty: none), refused
    unless ``force``.

    Raises:
        IncompatibleModelError: there are some and not ``force``; the message names them.
    """
    added = tuple(added_features(champion.manifest, package.manifest))
    if added and not force:
        raise IncompatibleModelError(
            f"{where}: {package.label} needs features the champion {champion.label} does "
            f"not: {', '.join(added)} (inputs scored today may lack them); pass --force to "
            "make it the champion anyway")
    return added
