"""Generate the class hierarchies shipped in ``src/taskspace/data/hierarchies/`` from WordNet 3.0.

Usage::

    python scripts/make_hierarchies.py                     # all four datasets
    python scripts/make_hierarchies.py --check             # exit 1 if a shipped file differs
    python scripts/make_hierarchies.py --imagenet-synsets imagenet_synsets.txt

Re-running it reproduces the files byte for byte. Sources:

- WordNet 3.0: the noun database ``data.noun`` / ``index.noun`` (Debian package ``wordnet-base``,
  ``/usr/share/wordnet``; or ``--wordnet DIR``), read by ``taskspace.data._wordnet``.
- Fashion-MNIST: the ten class names in label order from the dataset's README
  (github.com/zalandoresearch/fashion-mnist, "Labels"); each class → synset by hand below.
- CIFAR-10: ``label_names`` of ``cifar-10-batches-py/batches.meta`` (airplane ... truck);
  each class → synset by hand below.
- CIFAR-100: ``fine_label_names`` of ``cifar-100-python/meta`` (alphabetical: apple ... worm);
  each class → synset by hand below.
- ImageNet-1k (ILSVRC-2012): the 1000 wnids in class-index order (the sorted wnids, as an
  ImageFolder over the official train folders gives them; ``n01440764`` tench is class 0). The
  list is ``timm/data/_info/imagenet_synsets.txt`` from the ``timm`` wheel on PyPI, which this
  script downloads into a temporary directory (``pip download --no-deps timm``) and reads from
  the zip, without installing it; or pass the file with ``--imagenet-synsets``. The wnids are
  WordNet 3.0 offsets, so each class's synset is the one at that offset.

Senses were chosen by reading each candidate's gloss; where WordNet has no synset for a class name
(CIFAR-100 ``aquarium_fish``) the closest synset that covers the images is used. Notes on the
choices sit beside the entries.
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from taskspace.data.hierarchy import ClassHierarchy  # noqa: E402

OUT_DIR = REPO / "src" / "taskspace" / "data" / "hierarchies"
TIMM_SYNSETS = "timm/data/_info/imagenet_synsets.txt"

FASHION_MNIST = {
    "T-shirt/top": "jersey.n.03",  # jersey / T-shirt / tee_shirt: a close-fitting pullover shirt
    "Trouser": "trouser.n.01",
    "Pullover": "pullover.n.01",  # a sweater put on by pulling it over the head
    "Dress": "dress.n.01",  # a one-piece garment for a woman
    "Coat": "coat.n.01",  # an outer garment with sleeves, worn outdoors
    "Sandal": "sandal.n.01",
    "Shirt": "shirt.n.01",
    "Sneaker": "gym_shoe.n.01",  # gym_shoe / sneaker / tennis_shoe
    "Bag": "bag.n.04",  # bag / handbag / pocketbook / purse
    "Ankle boot": "boot.n.01",  # footwear that covers the whole foot and lower leg
}
# WordNet 3.0 puts shoes and boots below footwear.n.02 ("covering for a person's feet");
# footwear.n.01 ("clothing worn on a person's feet") only has hosiery below it.

CIFAR10 = {
    "airplane": "airplane.n.01",
    "automobile": "car.n.01",
    "bird": "bird.n.01",
    "cat": "domestic_cat.n.01",  # the images are house cats (cat.n.01 is any true cat)
    "deer": "deer.n.01",
    "dog": "dog.n.01",  # the domestic dog
    "frog": "frog.n.01",
    "horse": "horse.n.01",
    "ship": "ship.n.01",
    "truck": "truck.n.01",
}

CIFAR100 = {
    "apple": "apple.n.01",  # the fruit (apple.n.02 is the tree)
    "aquarium_fish": "fish.n.01",  # no synset; the images are fish of many kinds
    "baby": "baby.n.01",
    "bear": "bear.n.01",
    "beaver": "beaver.n.07",  # the rodent
    "bed": "bed.n.01",
    "bee": "bee.n.01",
    "beetle": "beetle.n.01",
    "bicycle": "bicycle.n.01",
    "bottle": "bottle.n.01",
    "bowl": "bowl.n.01",
    "boy": "male_child.n.01",
    "bridge": "bridge.n.01",
    "bus": "bus.n.01",
    "butterfly": "butterfly.n.01",
    "camel": "camel.n.01",
    "can": "can.n.01",
    "castle": "castle.n.02",  # fortified building (castle.n.01 is palace)
    "caterpillar": "caterpillar.n.01",
    "cattle": "cattle.n.01",
    "chair": "chair.n.01",
    "chimpanzee": "chimpanzee.n.01",
    "clock": "clock.n.01",
    "cloud": "cloud.n.02",  # visible mass of water or ice particles
    "cockroach": "cockroach.n.01",
    "couch": "sofa.n.01",
    "crab": "crab.n.01",
    "crocodile": "crocodile.n.01",
    "cup": "cup.n.01",
    "dinosaur": "dinosaur.n.01",
    "dolphin": "dolphin.n.02",  # the toothed whale (dolphin.n.01 is the fish mahimahi)
    "elephant": "elephant.n.01",
    "flatfish": "flatfish.n.02",  # the fish, not its flesh
    "forest": "forest.n.02",  # land covered with trees (a scene, like plain and sea)
    "fox": "fox.n.01",
    "girl": "female_child.n.01",  # like boy: a youthful person
    "hamster": "hamster.n.01",
    "house": "house.n.01",
    "kangaroo": "kangaroo.n.01",
    "keyboard": "keyboard.n.01",  # keys of a piano, typewriter or computer
    "lamp": "lamp.n.02",  # piece of furniture holding light bulbs
    "lawn_mower": "lawn_mower.n.01",
    "leopard": "leopard.n.02",
    "lion": "lion.n.01",
    "lizard": "lizard.n.01",
    "lobster": "lobster.n.02",
    "man": "man.n.01",
    "maple_tree": "maple.n.02",
    "motorcycle": "motorcycle.n.01",
    "mountain": "mountain.n.01",
    "mouse": "mouse.n.01",
    "mushroom": "mushroom.n.05",  # CIFAR's "fruit and vegetables": under produce, with them
    "oak_tree": "oak.n.02",
    "orange": "orange.n.01",
    "orchid": "orchid.n.01",
    "otter": "otter.n.02",
    "palm_tree": "palm.n.03",
    "pear": "pear.n.01",
    "pickup_truck": "pickup.n.01",
    "pine_tree": "pine.n.01",
    "plain": "plain.n.01",
    "plate": "plate.n.04",  # dish on which food is served
    "poppy": "poppy.n.01",
    "porcupine": "porcupine.n.01",
    "possum": "opossum.n.02",  # the American opossum (first sense of "possum")
    "rabbit": "rabbit.n.01",
    "raccoon": "raccoon.n.02",
    "ray": "ray.n.07",
    "road": "road.n.01",
    "rocket": "rocket.n.01",
    "rose": "rose.n.01",
    "sea": "sea.n.01",
    "seal": "seal.n.09",
    "shark": "shark.n.01",
    "shrew": "shrew.n.02",
    "skunk": "skunk.n.04",
    "skyscraper": "skyscraper.n.01",
    "snail": "snail.n.01",
    "snake": "snake.n.01",
    "spider": "spider.n.01",
    "squirrel": "squirrel.n.01",
    "streetcar": "streetcar.n.01",
    "sunflower": "sunflower.n.01",
    "sweet_pepper": "sweet_pepper.n.02",  # the vegetable (sweet_pepper.n.01 is the plant)
    "table": "table.n.02",
    "tank": "tank.n.01",  # the armoured vehicle
    "telephone": "telephone.n.01",
    "television": "television_receiver.n.01",
    "tiger": "tiger.n.02",
    "tractor": "tractor.n.01",
    "train": "train.n.01",
    "trout": "trout.n.02",
    "tulip": "tulip.n.01",
    "turtle": "turtle.n.02",
    "wardrobe": "wardrobe.n.01",
    "whale": "whale.n.02",  # dolphin.n.02 lies below it (a toothed whale)
    "willow_tree": "willow.n.01",
    "wolf": "wolf.n.01",
    "woman": "woman.n.01",
    "worm": "worm.n.01",
}


def imagenet_wnids(path=None) -> list[str]:
    """The 1000 ImageNet-1k wnids in class-index order (see the module docstring)."""
    if path is not None:
        text = Path(path).read_text(encoding="utf-8")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--only-binary=:all:",
                    "timm",
                    "-d",
                    tmp,
                ],
                check=True,
            )
            (wheel,) = glob.glob(f"{tmp}/timm-*.whl")
            with zipfile.ZipFile(wheel) as z:
                text = z.read(TIMM_SYNSETS).decode("utf-8")
    wnids = text.split()
    if len(wnids) != 1000 or len(set(wnids)) != 1000 or wnids != sorted(wnids):
        raise SystemExit("the ImageNet synset list must hold 1000 distinct wnids in sorted order")
    return wnids


def class_tables(imagenet_synsets=None) -> dict:
    """Dataset → class-to-synset table (ImageNet read only when asked for)."""
    return {
        "fashion-mnist": lambda: FASHION_MNIST,
        "cifar10": lambda: CIFAR10,
        "cifar100": lambda: CIFAR100,
        "imagenet1k": lambda: imagenet_wnids(imagenet_synsets),
    }


def render(hierarchy: ClassHierarchy) -> str:
    """The shipped JSON text: one class per block and one path per line, for readable diffs."""
    data = hierarchy.to_dict()
    dumps = json.dumps
    lines = [
        "{",
        f' "format_version": {dumps(data["format_version"])},',
        f' "dataset": {dumps(data["dataset"])},',
        ' "source": "WordNet 3.0 noun hypernym paths; scripts/make_hierarchies.py",',
        ' "classes": [',
    ]
    for k, c in enumerate(data["classes"]):
        paths = ",\n".join(f"   {dumps(p, ensure_ascii=False)}" for p in c["paths"])
        lines.append(
            f'  {{"index": {c["index"]}, "name": {dumps(c["name"], ensure_ascii=False)}, '
            f'"synset": {dumps(c["synset"])}, "wnid": {dumps(c["wnid"])}, "paths": [\n{paths}]}}'
            + ("," if k < len(data["classes"]) - 1 else "")
        )
    lines.append(" ],")
    nodes = ",\n".join(f"  {dumps(n)}: {dumps(w)}" for n, w in data["nodes"].items())
    lines += [' "nodes": {', nodes, " }", "}"]
    return "\n".join(lines) + "\n"


def build(dataset: str, table, wordnet_root=None) -> str:
    return render(ClassHierarchy.from_wordnet(table, root=wordnet_root, dataset=dataset))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "datasets",
        nargs="*",
        default=list(class_tables()),
        help="datasets to generate (default: all)",
    )
    parser.add_argument("--wordnet", default=None, help="WordNet 3.0 database directory")
    parser.add_argument(
        "--imagenet-synsets",
        default=None,
        help="file with the 1000 ImageNet wnids (default: from the timm wheel)",
    )
    parser.add_argument("--out", default=str(OUT_DIR), help="output directory")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with the files in --out instead of writing them",
    )
    args = parser.parse_args(argv)
    tables = class_tables(args.imagenet_synsets)
    unknown = sorted(set(args.datasets) - set(tables))
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; choose from {list(tables)}")
    out, status = Path(args.out), 0
    out.mkdir(parents=True, exist_ok=True)
    for dataset in args.datasets:
        text = build(dataset, tables[dataset](), args.wordnet)
        target = out / f"{dataset}.json"
        if args.check:
            same = target.is_file() and target.read_text(encoding="utf-8") == text
            print(f"{target}: {'up to date' if same else 'DIFFERS'}")
            status |= not same
        else:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target} ({len(text):,} bytes)")
    return status


if __name__ == "__main__":
    sys.exit(main())
