"""Pure components of the training methods: augmentations, losses and the episode sampler."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from taskspace.methods import augment  # noqa: E402
from taskspace.methods._image_ops import RANDAUGMENT_OPS, cutout, equalize  # noqa: E402
from taskspace.methods.episodes import EpisodeSampler  # noqa: E402
from taskspace.methods.losses import fixmatch_loss, nt_xent, prototypical_loss  # noqa: E402

AUGMENTATIONS = {
    "random_resized_crop": augment.random_resized_crop,
    "horizontal_flip": augment.horizontal_flip,
    "intensity_jitter": augment.intensity_jitter,
    "weak_augment": augment.weak_augment,
    "strong_augment": augment.strong_augment,
    "simclr_view_1": lambda x, g: augment.simclr_views(x, g)[0],
    "simclr_view_2": lambda x, g: augment.simclr_views(x, g)[1],
}


def gen(seed):
    return torch.Generator().manual_seed(seed)


def images(b=6, c=3, h=16, w=16, dtype=torch.float32, seed=0):
    return torch.rand(b, c, h, w, generator=gen(seed), dtype=dtype)


# ---------------------------------------------------------------------------------------------
# augmentations


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
@pytest.mark.parametrize(
    ("channels", "h", "w", "dtype"),
    [
        (1, 28, 28, torch.float32),
        (3, 32, 32, torch.float32),
        (3, 12, 20, torch.float64),
    ],
)
def test_augmentations_keep_shape_dtype_range_and_are_seeded(name, channels, h, w, dtype):
    f = AUGMENTATIONS[name]
    x = images(8, channels, h, w, dtype)
    x_before = x.clone()
    y = f(x, gen(3))
    assert y.shape == x.shape and y.dtype == dtype
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    torch.testing.assert_close(x, x_before, rtol=0, atol=0)  # the input is not modified
    torch.testing.assert_close(f(x, gen(3)), y, rtol=0, atol=0)
    assert not torch.equal(f(x, gen(4)), y)
    assert f(x[:0], gen(3)).shape == (0, channels, h, w)


def test_parameters_differ_across_the_batch():
    # the same image repeated must come out differently: parameters are drawn per sample
    x = images(1).expand(16, -1, -1, -1).contiguous()
    for name, f in AUGMENTATIONS.items():
        y = f(x, gen(0))
        distinct = {tuple(v.flatten()[:64].tolist()) for v in y}
        assert len(distinct) >= (2 if name == "horizontal_flip" else 8), name


def test_simclr_views_are_independent():
    v1, v2 = augment.simclr_views(images(), gen(0))
    assert not torch.equal(v1, v2)


def test_flip_is_exact():
    x = images()
    once = augment.horizontal_flip(x, gen(0), p=1.0)
    torch.testing.assert_close(once, x.flip(-1), rtol=0, atol=0)
    torch.testing.assert_close(augment.horizontal_flip(once, gen(1), p=1.0), x, rtol=0, atol=0)
    torch.testing.assert_close(augment.horizontal_flip(x, gen(0), p=0.0), x, rtol=0, atol=0)
    # with p = 0.5 each image is either itself or its mirror image
    y = augment.horizontal_flip(x, gen(2))
    for xi, yi in zip(x, y, strict=True):
        assert torch.equal(yi, xi) or torch.equal(yi, xi.flip(-1))


@pytest.mark.parametrize(("c", "h", "w"), [(1, 28, 28), (3, 32, 32), (3, 12, 20), (1, 20, 12)])
def test_full_crop_is_identity(c, h, w):
    x = images(5, c, h, w)
    y = augment.random_resized_crop(x, gen(0), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    torch.testing.assert_close(y, x, rtol=0, atol=1e-5)


def test_crop_zooms_in():
    # a crop of a quarter of the area of a horizontal gradient spans a narrower range of values
    ramp = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(4, 1, 32, 32).contiguous()
    y = augment.random_resized_crop(ramp, gen(0), scale=(0.25, 0.25), ratio=(1.0, 1.0))
    spans = y.amax(dim=(1, 2, 3)) - y.amin(dim=(1, 2, 3))
    torch.testing.assert_close(spans, torch.full((4,), 0.5 * 31 / 32), rtol=0, atol=0.02)


def test_zero_jitter_is_identity():
    for c in (1, 3):
        x = images(c=c)
        y = augment.intensity_jitter(x, gen(0), brightness=0.0, contrast=0.0)
        torch.testing.assert_close(y, x, rtol=0, atol=0)


def test_jitter_matches_its_formula():
    x = images(4, 1, 8, 8, torch.float64)
    y = augment.intensity_jitter(x, gen(5), brightness=0.5, contrast=0.3)
    u = torch.rand(2, 4, generator=gen(5), dtype=torch.float64)
    fb, fc = 0.5 + 1.0 * u[0], 0.7 + 0.6 * u[1]
    for i in range(4):
        bright = (x[i] * fb[i]).clamp(0, 1)
        m = bright.mean()
        torch.testing.assert_close(y[i], (m + fc[i] * (bright - m)).clamp(0, 1))


def test_weak_augment_shifts_whole_pixels():
    x = images(32, 1, 32, 32)
    y = augment.weak_augment(x, gen(0))
    centre = y[:, :, 4:-4, 4:-4]  # untouched by the reflected border for shifts <= 4
    found = 0
    for xi, ci in zip(x, centre, strict=True):
        for src in (xi, xi.flip(-1)):
            for dy in range(-4, 5):
                for dx in range(-4, 5):
                    if torch.equal(src[:, 4 + dy : 28 + dy, 4 + dx : 28 + dx], ci):
                        found += 1
    assert found == len(x)


def test_randaugment_ops_individually():
    x = images(4, 3, 16, 16, torch.float64)
    half, zero = torch.full((4,), 0.5, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    ops = dict(RANDAUGMENT_OPS)
    assert len(ops) == 14
    for name, op in RANDAUGMENT_OPS:
        y = op(x, torch.rand(4, generator=gen(1), dtype=torch.float64))
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1, name
    # magnitude 0.5 is the zero point of the symmetric geometric ranges
    for name in ("rotate", "shear_x", "shear_y", "translate_x", "translate_y"):
        torch.testing.assert_close(ops[name](x, half), x, atol=1e-6, rtol=0)
    torch.testing.assert_close(ops["solarize"](x, zero), 1 - x)
    torch.testing.assert_close(ops["brightness"](x, zero), x * 0.05)
    q = ops["posterize"](x, torch.full((4,), 0.999, dtype=torch.float64))  # 8 bits
    torch.testing.assert_close(q, (x * 255).round() / 255)
    q4 = ops["posterize"](x, zero) * 255  # 4 bits: multiples of 16
    torch.testing.assert_close(q4, (q4 / 16).round() * 16)
    stretched = ops["autocontrast"](x * 0.5 + 0.2, zero)
    torch.testing.assert_close(stretched.amin(dim=(2, 3)), torch.zeros(4, 3, dtype=x.dtype))
    torch.testing.assert_close(stretched.amax(dim=(2, 3)), torch.ones(4, 3, dtype=x.dtype))
    grey = images(4, 1, 16, 16, torch.float64)
    torch.testing.assert_close(ops["color"](grey, zero), grey)  # no saturation to change
    # translating by a whole number of pixels moves the image and fills with grey
    shift = torch.full((4,), 0.5 + 4 / 16 / 0.6, dtype=torch.float64)  # t = 4/16 of the width
    moved = ops["translate_x"](x, shift)
    torch.testing.assert_close(moved[..., :-4], x[..., 4:], atol=1e-6, rtol=0)
    torch.testing.assert_close(moved[..., -4:], torch.full_like(moved[..., -4:], 0.5))
    moved = ops["translate_y"](x, 1 - shift)
    torch.testing.assert_close(moved[..., 4:, :], x[..., :-4, :], atol=1e-6, rtol=0)
    torch.testing.assert_close(moved[..., :4, :], torch.full_like(moved[..., :4, :], 0.5))


def test_equalize_flattens_the_histogram():
    # 64 distinct levels squeezed into 100..163 spread out to rank / 63 (the CDF map)
    levels = torch.randperm(64, generator=gen(0)).double()
    y = equalize(((100 + levels) / 255).view(1, 1, 8, 8), None)
    torch.testing.assert_close(y.flatten(), levels / 63)
    constant = torch.full((1, 1, 4, 4), 0.3, dtype=torch.float64)
    torch.testing.assert_close(equalize(constant, None), constant)


def test_cutout_square():
    x = torch.zeros(2, 1, 10, 10)
    y = cutout(x, torch.tensor([0.4, 0.0]), torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]))
    assert (y[0] == 0.5).sum() == 16 and (y[0, 0, 3:7, 3:7] == 0.5).all()
    assert (y[1] == 0).all()


def test_strong_augment_cuts_out_grey():
    x = torch.zeros(64, 1, 16, 16)  # black stays black under every op except cutout (grey)
    y = augment.strong_augment(x, gen(0))
    assert ((y == 0.5).flatten(1).any(1)).float().mean() > 0.5


def test_augmentation_errors():
    x = images()
    with pytest.raises(ValueError, match=r"shape \(B, C, H, W\)"):
        augment.horizontal_flip(x[0], gen(0))
    with pytest.raises(ValueError, match="floating"):
        augment.weak_augment((x * 255).to(torch.uint8), gen(0))
    with pytest.raises(ValueError, match="scale"):
        augment.random_resized_crop(x, gen(0), scale=(0.5, 1.5))
    with pytest.raises(ValueError, match="ratio"):
        augment.random_resized_crop(x, gen(0), ratio=(0.0, 1.0))
    with pytest.raises(ValueError, match="p must be a probability"):
        augment.horizontal_flip(x, gen(0), p=1.5)
    with pytest.raises(ValueError, match="contrast must be >= 0"):
        augment.intensity_jitter(x, gen(0), contrast=-0.1)


# ---------------------------------------------------------------------------------------------
# losses


def nt_xent_loop(z1, z2, temperature):
    z = torch.cat([z1, z2]).double()
    n, b = len(z), len(z1)
    total = 0.0
    for i in range(n):
        sims = [float(z[i] @ z[k] / (z[i].norm() * z[k].norm())) / temperature for k in range(n)]
        positive = (i + b) % n
        denominator = sum(math.exp(sims[k]) for k in range(n) if k != i)
        total += -math.log(math.exp(sims[positive]) / denominator)
    return total / n


@pytest.mark.parametrize(("b", "d", "temperature"), [(1, 4, 0.5), (5, 8, 0.5), (7, 3, 0.1)])
def test_nt_xent_matches_loop(b, d, temperature):
    z1 = torch.randn(b, d, generator=gen(b))
    z2 = torch.randn(b, d, generator=gen(b + 100))
    loss = nt_xent(z1, z2, temperature)
    assert loss.shape == ()
    assert math.isclose(float(loss), nt_xent_loop(z1, z2, temperature), rel_tol=1e-5, abs_tol=1e-6)


def test_nt_xent_prefers_aligned_views_and_is_stable():
    z = torch.randn(16, 32, generator=gen(0))
    aligned = nt_xent(z, z + 0.01 * torch.randn(16, 32, generator=gen(1)))
    random = nt_xent(z, torch.randn(16, 32, generator=gen(2)))
    assert aligned < random
    tiny_temperature = nt_xent(z, z, temperature=1e-4)
    assert torch.isfinite(tiny_temperature) and tiny_temperature < 1e-3
    z1 = z.clone().requires_grad_()
    nt_xent(z1, torch.randn(16, 32, generator=gen(3))).backward()
    assert torch.isfinite(z1.grad).all()
    with pytest.raises(ValueError, match="z1 and z2 must both have shape"):
        nt_xent(z, z[:3])
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(z, z, temperature=0.0)


def prototypical_plain(s_emb, s_lab, q_emb, q_lab, n_way):
    s_emb, q_emb = s_emb.double(), q_emb.double()
    protos = [s_emb[s_lab == k].mean(0) for k in range(n_way)]
    total, correct = 0.0, 0
    for q, y in zip(q_emb, q_lab, strict=True):
        logits = [-float(((q - p) ** 2).sum()) for p in protos]
        log_norm = math.log(sum(math.exp(v - max(logits)) for v in logits)) + max(logits)
        total += log_norm - logits[int(y)]
        correct += int(np.argmax(logits) == int(y))
    return total / len(q_emb), correct / len(q_emb)


def test_prototypical_loss_matches_plain():
    n_way, k, q, d = 4, 3, 5, 6
    s_lab = torch.arange(n_way).repeat_interleave(k)[torch.randperm(n_way * k, generator=gen(0))]
    q_lab = torch.arange(n_way).repeat(q)
    s_emb = torch.randn(n_way * k, d, generator=gen(1))
    q_emb = torch.randn(n_way * q, d, generator=gen(2))
    loss, acc = prototypical_loss(s_emb, s_lab, q_emb, q_lab, n_way)
    want_loss, want_acc = prototypical_plain(s_emb, s_lab, q_emb, q_lab, n_way)
    assert math.isclose(float(loss), want_loss, rel_tol=1e-5)
    assert math.isclose(float(acc), want_acc, rel_tol=1e-6)
    assert not acc.requires_grad


def test_prototypical_loss_separated_clusters_and_gradient():
    centres = 10 * torch.eye(5, 8)
    s_lab, q_lab = torch.arange(5).repeat_interleave(2), torch.arange(5).repeat_interleave(3)
    s_emb = (centres[s_lab] + 0.1 * torch.randn(10, 8, generator=gen(0))).requires_grad_()
    q_emb = centres[q_lab] + 0.1 * torch.randn(15, 8, generator=gen(1))
    loss, acc = prototypical_loss(s_emb, s_lab, q_emb, q_lab, 5)
    assert float(acc) == 1.0 and float(loss.detach()) < 1e-3
    loss.backward()
    assert s_emb.grad is not None and torch.isfinite(s_emb.grad).all()


def test_prototypical_loss_errors():
    emb = torch.randn(4, 3)
    with pytest.raises(ValueError, match="class 2 of the episode has no support example"):
        prototypical_loss(emb, torch.tensor([0, 1, 0, 1]), emb, torch.tensor([0, 1, 2, 0]), 3)
    with pytest.raises(ValueError, match=r"query_labels must lie in 0 \.\. 1"):
        prototypical_loss(emb, torch.tensor([0, 1, 0, 1]), emb, torch.tensor([0, 1, 2, 0]), 2)
    with pytest.raises(ValueError, match="n_way must be >= 2"):
        prototypical_loss(emb, torch.zeros(4, dtype=torch.long), emb, torch.zeros(4), 1)


def test_fixmatch_loss_masking():
    weak = torch.randn(12, 5, generator=gen(0)) * 3
    strong = torch.randn(12, 5, generator=gen(1))
    loss, rate = fixmatch_loss(weak, strong, threshold=1.0)
    assert float(loss) == 0.0 and float(rate) == 0.0
    loss, rate = fixmatch_loss(weak, strong, threshold=0.0)
    full = torch.nn.functional.cross_entropy(strong, weak.argmax(1))
    torch.testing.assert_close(loss, full)
    assert float(rate) == 1.0
    # in between: the mean over the whole batch of the confident samples' cross-entropy
    conf = torch.softmax(weak, 1).amax(1)
    tau = float(conf.median())
    loss, rate = fixmatch_loss(weak, strong, threshold=tau)
    ce = torch.nn.functional.cross_entropy(strong, weak.argmax(1), reduction="none")
    torch.testing.assert_close(loss, (ce * (conf >= tau)).sum() / 12)
    torch.testing.assert_close(rate, (conf >= tau).float().mean())


def test_fixmatch_loss_gradient_only_through_strong():
    weak = (torch.randn(8, 4, generator=gen(0)) * 4).requires_grad_()
    strong = torch.randn(8, 4, generator=gen(1)).requires_grad_()
    loss, rate = fixmatch_loss(weak, strong, threshold=0.5)
    assert float(rate) > 0
    loss.backward()
    assert weak.grad is None
    assert strong.grad is not None and strong.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="threshold"):
        fixmatch_loss(weak, strong, threshold=1.5)
    with pytest.raises(ValueError, match="must both have shape"):
        fixmatch_loss(weak, strong[:3])


# ---------------------------------------------------------------------------------------------
# episodes


def task_labels():
    # classes 3, 5, 7, 9 with 6, 7, 8, 9 samples, shuffled
    labels = np.repeat([3, 5, 7, 9], [6, 7, 8, 9])
    return np.random.default_rng(0).permutation(labels)


def test_episode_shapes_labels_and_disjointness():
    labels = task_labels()
    sampler = EpisodeSampler(labels, n_way=3, k_shot=2, n_query=4, seed=1)
    for _ in range(20):
        s_idx, s_lab, q_idx, q_lab = sampler.sample()
        for t in (s_idx, s_lab, q_idx, q_lab):
            assert t.dtype == torch.int64
        assert s_idx.shape == s_lab.shape == (6,) and q_idx.shape == q_lab.shape == (12,)
        assert torch.equal(torch.bincount(s_lab), torch.full((3,), 2))
        assert torch.equal(torch.bincount(q_lab), torch.full((3,), 4))
        everything = torch.cat([s_idx, q_idx]).tolist()
        assert len(set(everything)) == len(everything)  # distinct, support ∩ query = ∅
        # each episode label stands for one task class, the same in support and query
        classes = {}
        for idx, lab in zip(everything, torch.cat([s_lab, q_lab]).tolist(), strict=True):
            classes.setdefault(lab, set()).add(int(labels[idx]))
        assert all(len(v) == 1 for v in classes.values())
        assert len(set().union(*classes.values())) == 3


def test_episodes_cover_the_classes_uniformly():
    sampler = EpisodeSampler(task_labels(), n_way=2, k_shot=1, n_query=1)
    labels = task_labels()
    drawn = [int(labels[int(i)]) for _ in range(400) for i in sampler.sample()[0]]
    counts = np.array([drawn.count(c) for c in (3, 5, 7, 9)])
    assert counts.min() > 0.8 * 200 and counts.max() < 1.2 * 200


def test_episodes_are_deterministic():
    labels = torch.as_tensor(task_labels())
    a = EpisodeSampler(labels, 4, 1, 3, seed=7)
    b = EpisodeSampler(labels, 4, 1, 3, seed=7)
    c = EpisodeSampler(labels, 4, 1, 3, seed=8)
    ea, eb, ec = ([s.sample() for _ in range(3)] for s in (a, b, c))
    for x, y in zip(ea, eb, strict=True):
        assert all(torch.equal(u, v) for u, v in zip(x, y, strict=True))
    assert any(not torch.equal(x[0], y[0]) for x, y in zip(ea, ec, strict=True))
    # an external generator, and the own generator's checkpointed state
    e1 = a.sample(gen(3))
    assert all(torch.equal(u, v) for u, v in zip(e1, b.sample(gen(3)), strict=True))
    state = a.state_dict()
    after = a.sample()
    a.load_state_dict(state)
    assert all(torch.equal(u, v) for u, v in zip(after, a.sample(), strict=True))


def test_episode_errors():
    labels = task_labels()
    with pytest.raises(ValueError, match="the task has 4 classes, the episode needs n_way = 5"):
        EpisodeSampler(labels, 5, 1, 1)
    with pytest.raises(ValueError, match=r"class 3 has 6 samples, the episode needs .* = 7"):
        EpisodeSampler(labels, 2, 3, 4)
    with pytest.raises(ValueError, match="n_way must be >= 2"):
        EpisodeSampler(labels, 1, 1, 1)
    with pytest.raises(ValueError, match="k_shot must be >= 1"):
        EpisodeSampler(labels, 2, 0, 1)
    with pytest.raises(ValueError, match="n_query must be >= 1"):
        EpisodeSampler(labels, 2, 1, 0)
    with pytest.raises(ValueError, match="labels must be integers"):
        EpisodeSampler(labels.astype(float), 2, 1, 1)
    with pytest.raises(ValueError, match="the task has 0 classes"):
        EpisodeSampler([], 2, 1, 1)
