"""Class hierarchies: the WordNet reader, the shipped hierarchies and their queries."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskspace.data._wordnet import WordNet, open_wordnet
from taskspace.data.hierarchy import BUILTIN_DATASETS, ClassHierarchy

SYSTEM_WORDNET = Path("/usr/share/wordnet")
needs_wordnet = pytest.mark.skipif(
    not (SYSTEM_WORDNET / "data.noun").is_file(),
    reason="WordNet 3.0 (Debian wordnet-base) is not installed",
)
REPO = Path(__file__).resolve().parents[1]

FASHION_MNIST = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def wordnet():
    if not (SYSTEM_WORDNET / "data.noun").is_file():
        pytest.skip("WordNet 3.0 (Debian wordnet-base) is not installed")
    return open_wordnet(SYSTEM_WORDNET)


# A database in the real wndb(5WN) format, small enough to check by hand. Offsets are keys only
# (the reader never seeks), so they need not be byte positions.
TINY_DATA = """\
  1 This software and database is being provided to you, the LICENSEE, by  
00000001 03 n 01 entity 0 000 | the root  
00000002 05 n 02 animal 0 beast 0 002 @ 00000001 n 0000 + 00000099 v 0101 | a living thing  
00000003 05 n 01 dog 0 002 @ 00000002 n 0000 @ 00000005 n 0000 | it barks  
00000004 05 n 01 cat 0 001 @ 00000002 n 0000 | it meows  
00000005 05 n 01 pet 0 001 @ 00000001 n 0000 | kept at home  
00000006 18 n 01 Rex 0 002 @i 00000003 n 0000 @ 00000004 n 0000 | a dog that thinks it is a cat  
00000007 13 n 02 hotdog 0 dog 1 001 @ 00000001 n 0000 | a sausage; "a dog with mustard"  
00000008 03 n 0b w1 0 w2 0 w3 0 w4 0 w5 0 w6 0 w7 0 w8 0 w9 0 w10 0 w11 0 001 @ 00000001 n 0000 | 11  
"""  # noqa: E501, W291 - the real files end every line with two spaces
TINY_INDEX = """\
  1 This software and database is being provided to you, the LICENSEE, by  
animal n 1 1 @ 1 0 00000002  
beast n 1 1 @ 1 0 00000002  
cat n 1 1 @ 1 0 00000004  
dog n 2 2 @ ~ 2 1 00000003 00000007  
entity n 1 0 1 0 00000001  
hotdog n 1 1 @ 1 0 00000007  
pet n 1 1 @ 1 0 00000005  
rex n 1 1 @i 1 0 00000006  
w1 n 1 1 @ 1 0 00000008  
"""  # noqa: W291


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "data.noun").write_text(TINY_DATA)
    (tmp_path / "index.noun").write_text(TINY_INDEX)
    return tmp_path


# -- the reader ------------------------------------------------------------------------------
def test_reader_parses_the_database_format(tiny):
    wn = WordNet(tiny)
    assert len(wn) == 8
    dog = wn.synset("dog.n.01")
    assert (dog.offset, dog.wnid, dog.lemmas, dog.gloss) == (3, "n00000003", ("dog",), "it barks")
    assert dog.hypernyms == (2, 5)
    assert wn.synset("animal.n.01").hypernyms == (1,)  # the verb pointer is not a hypernym
    # Names come from the first lemma and its sense number in index.noun.
    assert wn.synset(7).name == "hotdog.n.01"
    assert wn.synset("dog.n.02") == wn.synset(7)
    assert wn.synset("beast.n.01").name == "animal.n.01"
    assert wn.synset("n00000006").name == "rex.n.01"
    assert wn.synset(8).lemmas == tuple(f"w{i}" for i in range(1, 12))  # hexadecimal w_cnt
    assert [s.name for s in wn.synsets("Dog")] == ["dog.n.01", "hotdog.n.01"]
    assert wn.synsets("unicorn") == []


def test_reader_paths_put_class_hypernyms_before_instance_ones(tiny):
    wn = WordNet(tiny)
    assert [s.name for s in wn.hypernyms("rex.n.01")] == ["cat.n.01", "dog.n.01"]
    paths = [[s.name for s in p] for p in wn.hypernym_paths("rex.n.01")]
    assert paths == [
        ["entity.n.01", "animal.n.01", "cat.n.01", "rex.n.01"],
        ["entity.n.01", "animal.n.01", "dog.n.01", "rex.n.01"],
        ["entity.n.01", "pet.n.01", "dog.n.01", "rex.n.01"],
    ]


def test_reader_errors(tiny, tmp_path_factory):
    wn = WordNet(tiny)
    for key, message in [
        ("dog.n.03", "2 noun sense"),
        ("unicorn.n.01", "no noun 'unicorn'"),
        ("n00000042", "no noun synset"),
        ("dog", "neither a synset name"),
    ]:
        with pytest.raises(KeyError, match=message):
            wn.synset(key)
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        WordNet(tmp_path_factory.mktemp("empty"))


@needs_wordnet
def test_reader_agrees_with_known_wordnet_facts(wordnet):
    dog = wordnet.synset("dog.n.01")
    assert dog.wnid == "n02084071"
    assert wordnet.synset("domestic_dog.n.01") == dog
    assert [s.name for s in wordnet.synsets("dog")][:4] == [
        "dog.n.01",
        "frump.n.01",
        "dog.n.03",
        "cad.n.01",
    ]
    assert [s.name for s in wordnet.hypernyms(dog)] == ["canine.n.02", "domestic_animal.n.01"]
    paths = [[s.name for s in p] for p in wordnet.hypernym_paths(dog)]
    assert len(paths) == 2 and all(p[0] == "entity.n.01" and p[-1] == "dog.n.01" for p in paths)
    assert "canine.n.02" in paths[0] and all("animal.n.01" in p for p in paths)
    assert wordnet.synset("n03379051").name == "football_helmet.n.01"
    assert wordnet.synset("n01440764").name == "tench.n.01"
    # Instance hypernyms: Einstein is an instance of physicist.
    einstein = wordnet.hypernym_paths("einstein.n.01")
    assert {p[-2].name for p in einstein} == {"physicist.n.01"}


# -- shipped hierarchies ---------------------------------------------------------------------
@pytest.mark.parametrize("dataset", BUILTIN_DATASETS)
def test_shipped_hierarchies_are_well_formed(dataset):
    h = ClassHierarchy.for_dataset(dataset)
    assert (
        h.n_classes
        == {"fashion-mnist": 10, "cifar10": 10, "cifar100": 100, "imagenet1k": 1000}[dataset]
    )
    assert h.dataset == dataset
    for c in range(h.n_classes):
        for path in h.paths(c):
            assert path[0] == "entity.n.01" and path[-1] == h.synsets[c]
    assert all(len(w) == 9 and w[0] == "n" and w[1:].isdigit() for w in h.wnids)
    assert h.nodes()["entity.n.01"] == tuple(range(h.n_classes))
    assert ClassHierarchy.from_dict(json.loads(json.dumps(h.to_dict()))) == h


def test_shipped_class_orders():
    assert ClassHierarchy.for_dataset("fashion-mnist").class_names == tuple(FASHION_MNIST)
    assert ClassHierarchy.for_dataset("cifar10").class_names == tuple(CIFAR10)
    cifar100 = ClassHierarchy.for_dataset("cifar100").class_names
    assert cifar100 == tuple(sorted(cifar100)) and len(set(cifar100)) == 100
    assert {"aquarium_fish", "maple_tree", "sweet_pepper", "willow_tree"} <= set(cifar100)
    imagenet = ClassHierarchy.for_dataset("imagenet")
    assert len(set(imagenet.wnids)) == 1000 and list(imagenet.wnids) == sorted(imagenet.wnids)
    assert imagenet.class_names == imagenet.wnids
    assert (imagenet.wnids[0], imagenet.synsets[0]) == ("n01440764", "tench.n.01")
    assert imagenet.wnids[999] == "n15075141"


def test_footwear_covers_exactly_the_shoes_of_fashion_mnist():
    h = ClassHierarchy.for_dataset("Fashion_MNIST")
    below = h.classes_below("footwear.n.02")
    assert [h.class_names[c] for c in below] == ["Sandal", "Sneaker", "Ankle boot"]
    np.testing.assert_array_equal(h.classes_below("n03380867"), below)  # by wnid
    assert [h.class_names[c] for c in h.classes_below("clothing.n.01")] == [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Shirt",
    ]
    # In WordNet 3.0, footwear.n.01 is "clothing worn on a person's feet" (hosiery only).
    with pytest.raises(ValueError, match=r"did you mean 'footwear.n.02'.*shoe.n.01"):
        h.classes_below("footwear.n.01")


def test_cifar10_splits_into_vehicles_and_animals():
    h = ClassHierarchy.for_dataset("cifar10")
    vehicles, animals = h.classes_below("vehicle.n.01"), h.classes_below("animal.n.01")
    assert [h.class_names[c] for c in vehicles] == ["airplane", "automobile", "ship", "truck"]
    assert sorted([*vehicles, *animals]) == list(range(10))
    assert h.lowest_common_ancestor("cat", "dog") == "carnivore.n.01"
    assert h.lowest_common_ancestor("airplane", "ship") == "craft.n.02"
    assert h.lowest_common_ancestor("cat", "truck") == "whole.n.02"


def test_cifar100_nodes_match_its_superclasses():
    h = ClassHierarchy.for_dataset("cifar100")
    for node, superclass in [
        ("fish.n.01", ["aquarium_fish", "flatfish", "ray", "shark", "trout"]),
        ("person.n.01", ["baby", "boy", "girl", "man", "woman"]),
        ("tree.n.01", ["maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"]),
        ("reptile.n.01", ["crocodile", "dinosaur", "lizard", "snake", "turtle"]),
        ("produce.n.01", ["apple", "mushroom", "orange", "pear", "sweet_pepper"]),
    ]:
        assert [h.class_names[c] for c in h.classes_below(node)] == superclass


def test_imagenet_dogs_are_classes_151_to_268():
    h = ClassHierarchy.for_dataset("imagenet1k")
    np.testing.assert_array_equal(h.classes_below("dog.n.01"), np.arange(151, 269))


def test_subset_keeps_the_paths_of_the_chosen_classes():
    imagenet = ClassHierarchy.for_dataset("imagenet1k")
    wnids = ["n02085620", "n01440764", "n02123045"]  # chihuahua, tench, tabby
    sub = imagenet.subset(wnids, dataset="mini")
    assert sub.class_names == tuple(wnids) and sub.dataset == "mini"
    for k, wnid in enumerate(wnids):
        assert sub.paths(k) == imagenet.paths(wnid)
    np.testing.assert_array_equal(sub.classes_below("carnivore.n.01"), [0, 2])
    assert "dog.n.01" in sub.nodes() and "cyprinid.n.01" in sub.nodes()
    assert "bird.n.01" not in sub.nodes()
    with pytest.raises(ValueError, match="repeats"):
        imagenet.subset([0, 0])


def test_nodes_and_errors():
    h = ClassHierarchy.for_dataset("fashion-mnist")
    nodes = h.nodes(min_classes=2)
    assert all(len(cs) >= 2 for cs in nodes.values()) and "sandal.n.01" not in nodes
    assert nodes["shoe.n.01"] == (5, 7)
    assert h.nodes()["sandal.n.01"] == (5,)
    assert h.node_wnid("footwear.n.02") == "n03380867" and h.depth("entity.n.01") == 0
    with pytest.raises(ValueError, match="available: fashion-mnist"):
        ClassHierarchy.for_dataset("mnist")
    with pytest.raises(ValueError, match="unknown class 'Boot'"):
        h.paths("Boot")
    with pytest.raises(ValueError, match="out of range"):
        h.lowest_common_ancestor(0, 10)


def _brute_force_distances(h):
    """Tree distances written plainly from the stored paths (see `class_distances`)."""
    depth = {}
    for c in range(h.n_classes):
        for p in h.paths(c):
            for i, n in enumerate(p):
                depth[n] = max(depth.get(n, 0), i)
    height = max(depth[s] for s in h.synsets)
    C = h.n_classes
    path, coph = np.zeros((C, C)), np.zeros((C, C))
    for i in range(C):
        for j in range(C):
            best, deepest = np.inf, -1
            for p in h.paths(i):
                for q in h.paths(j):
                    for a in set(p) & set(q):
                        best = min(best, len(p) - 1 - p.index(a) + len(q) - 1 - q.index(a))
                        deepest = max(deepest, depth[a])
            path[i, j] = best
            coph[i, j] = 0 if i == j else height - deepest
    return path, coph


@pytest.mark.parametrize("dataset", ["fashion-mnist", "cifar10", "cifar100"])
def test_class_distances_match_a_direct_computation(dataset):
    h = ClassHierarchy.for_dataset(dataset)
    path, coph = _brute_force_distances(h)
    np.testing.assert_array_equal(h.class_distances("path"), path)
    np.testing.assert_array_equal(h.class_distances("cophenetic"), coph)
    assert (np.diag(path) == 0).all() and (path[~np.eye(h.n_classes, dtype=bool)] > 0).all()
    assert (path == path.T).all() and (coph == coph.T).all()
    with pytest.raises(ValueError, match="`kind`"):
        h.class_distances("euclidean")


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_on_a_tree_path_is_a_metric_and_cophenetic_an_ultrametric(data):
    n = data.draw(st.integers(2, 25))
    parent = [None] + [data.draw(st.integers(0, k - 1)) for k in range(1, n)]
    chain = [[0]]
    for k in range(1, n):
        chain.append([*chain[parent[k]], k])
    classes = data.draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=8, unique=True))
    name = [f"node{k}.n.01" for k in range(n)]
    h = ClassHierarchy(
        [f"c{k}" for k in classes],
        [name[k] for k in classes],
        [[[name[k] for k in chain[c]]] for c in classes],
        {name[k]: f"n{k:08d}" for k in range(n)},
    )
    path, coph = h.class_distances("path"), h.class_distances("cophenetic")
    expected_path, expected_coph = _brute_force_distances(h)
    np.testing.assert_array_equal(path, expected_path)
    np.testing.assert_array_equal(coph, expected_coph)
    assert (path[:, :, None] <= path[:, None, :] + path.T[None, :, :]).all()
    assert (coph[:, :, None] <= np.maximum(coph[:, None, :], coph.T[None, :, :])).all()


def test_fashion_mnist_distances_by_hand():
    h = ClassHierarchy.for_dataset("fashion-mnist")
    D = h.class_distances()
    sandal, sneaker, boot, shirt, tshirt = 5, 7, 9, 6, 0
    assert D[sandal, sneaker] == 2  # sandal → shoe ← gym_shoe
    assert D[sandal, boot] == 3  # sandal → shoe → footwear.n.02 ← boot
    assert D[shirt, tshirt] == 1  # jersey.n.03 is a shirt.n.01
    assert h.lowest_common_ancestor(sandal, boot) == "footwear.n.02"


# -- runtime hierarchies ---------------------------------------------------------------------
def test_from_wordnet_on_a_small_database(tiny):
    h = ClassHierarchy.from_wordnet(
        {"doggo": "dog.n.01", "kitty": "cat.n.01", "rex": "n00000006"}, root=tiny, dataset="pets"
    )
    assert h.class_names == ("doggo", "kitty", "rex") and h.synsets[2] == "rex.n.01"
    np.testing.assert_array_equal(h.classes_below("animal.n.01"), [0, 1, 2])
    np.testing.assert_array_equal(h.classes_below("pet.n.01"), [0, 2])
    np.testing.assert_array_equal(h.classes_below("n00000004"), [1, 2])
    assert h.lowest_common_ancestor("doggo", "kitty") == "animal.n.01"
    assert h.lowest_common_ancestor("rex", "kitty") == "cat.n.01"
    np.testing.assert_array_equal(h.class_distances(), [[0, 2, 1], [2, 0, 1], [1, 1, 0]])
    # H = depth(rex) = 3; LCA depths: animal 1, dog 2, cat 2.
    np.testing.assert_array_equal(
        h.class_distances("cophenetic"), [[0, 2, 1], [2, 0, 1], [1, 1, 0]]
    )
    by_wnid = ClassHierarchy.from_wordnet(["n00000003", "n00000004"], root=tiny)
    assert by_wnid.class_names == ("n00000003", "n00000004")
    with pytest.raises(ValueError, match=r"class 1 \('x'\).*no noun 'unicorn'"):
        ClassHierarchy.from_wordnet({"a": "dog.n.01", "x": "unicorn.n.01"}, root=tiny)


@needs_wordnet
@pytest.mark.parametrize("dataset", BUILTIN_DATASETS)
def test_generator_reproduces_the_shipped_files(dataset):
    spec = importlib.util.spec_from_file_location(
        "make_hierarchies", REPO / "scripts" / "make_hierarchies.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    shipped = REPO / "src" / "taskspace" / "data" / "hierarchies" / f"{dataset}.json"
    if dataset == "imagenet1k":  # its class list comes from a download; reuse the shipped one
        table = list(ClassHierarchy.for_dataset(dataset).wnids)
    else:
        table = script.class_tables()[dataset]()
    assert script.build(dataset, table, SYSTEM_WORDNET) == shipped.read_text(encoding="utf-8")


# ------------------------------------------------------------------ class trees declared by hand
TREE = {
    "digit": ["curved", "strokes"],
    "curved": ["loops", "open-curves"],
    "loops": ["one-loop", "8"],
    "one-loop": ["0", "6", "9"],
    "open-curves": ["2", "3", "5"],
    "strokes": ["1", "4", "7"],
}


def test_class_tree_paths_distances_and_round_trip():
    h = ClassHierarchy.from_tree(TREE, [str(d) for d in range(10)], dataset="demo")
    assert h.paths("0") == [("digit", "curved", "loops", "one-loop", "0")]
    assert h.paths("7") == [("digit", "strokes", "7")]
    D = h.class_distances("path")
    # counted by hand: 0-6 meet at one-loop (1 + 1 edges), 0-8 at loops (2 + 1), 0-2 at curved
    # (3 + 2), 0-1 at the root (4 + 2), 1-4 at strokes (1 + 1)
    assert (D[0, 6], D[0, 8], D[0, 2], D[0, 1], D[1, 4]) == (2, 3, 5, 6, 2)
    assert tuple(h.classes_below("loops")) == (0, 6, 8, 9)
    assert h.wnids[0] == "tree:0"  # never mistaken for a WordNet id
    assert ClassHierarchy.from_dict(h.to_dict()) == h


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"a": ["0", "1"], "b": ["2"]}, "exactly one root"),
        ({"r": ["a", "b"], "a": ["0", "1"], "b": ["1", "2"]}, "below both"),
        ({"r": ["0", "1", "2", "x"]}, "neither nodes nor classes"),
        ({"r": ["0", "1"]}, "not below the root"),
    ],
)
def test_class_tree_rejects_what_is_not_a_tree_of_the_classes(tree, message):
    with pytest.raises(ValueError, match=message):
        ClassHierarchy.from_tree(tree, ["0", "1", "2"])
