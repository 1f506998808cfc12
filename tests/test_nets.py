"""Network architectures: shapes, the published parameter counts, heads and the registry."""

import pytest

torch = pytest.importorskip("torch")

from taskspace.nets import NETWORKS, build_network, resnet18, resnet50  # noqa: E402


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_resnets_match_published_parameter_counts():
    # the counts of the reference ImageNet models (He et al. 2016; torchvision's documentation)
    assert n_params(resnet18(1000)) == 11_689_512
    assert n_params(resnet50(1000)) == 25_557_032


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "channels", "size"),
    [
        ("mlp", 1, 8),
        ("small-cnn", 1, 28),
        ("small-cnn", 3, 32),
        ("resnet18-cifar", 3, 32),
        ("resnet18", 3, 64),
    ],
)
def test_forward_features_and_head(name, channels, size):
    torch.manual_seed(0)
    net = build_network(name, 5, in_channels=channels, image_size=size).eval()
    x = torch.randn(3, channels, size, size)
    feats = net.features(x)
    assert feats.shape == (3, net.feature_dim)
    torch.testing.assert_close(net(x), net.head(feats))
    net.replace_head(7)
    assert net(x).shape == (3, 7)
    torch.testing.assert_close(net.features(x), feats)  # the body is untouched


def test_registry_errors():
    assert {"mlp", "small-cnn", "resnet18-cifar", "resnet18", "resnet50"} <= set(NETWORKS)
    with pytest.raises(ValueError, match="unknown network 'vgg'; choose one of"):
        build_network("vgg", 10)
    with pytest.raises(ValueError, match="at least 2 classes"):
        build_network("mlp", 1)


@pytest.mark.slow
def test_untrained_resnet50_is_finite_on_small_inputs_in_eval_mode():
    # residual branches start as the identity (zero-initialised last BatchNorm); without it the
    # untrained network overflowed float32 on 32×32 inputs and recorded NaN predictions
    torch.manual_seed(0)
    net = resnet50(10).eval()
    with torch.no_grad():
        feats = net.features(torch.rand(4, 3, 32, 32))
    assert torch.isfinite(feats).all()
