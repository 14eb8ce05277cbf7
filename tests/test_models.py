"""Network shapes, the batched cross-correlation, and BN folding."""
import pytest
import torch

from tracker.networks.models import build_model, prepare_for_inference, xcorr


def naive_xcorr(z, x):
    """Sliding-window correlation, one position at a time."""
    c, h, w = z.shape
    _, H, W = x.shape
    out = torch.empty(H - h + 1, W - w + 1, dtype=torch.float64)
    for i in range(H - h + 1):
        for j in range(W - w + 1):
            out[i, j] = (x[:, i:i + h, j:j + w].double() * z.double()).sum()
    return out


@pytest.mark.parametrize("bz,k", [(1, 3), (2, 1), (3, 2)])
def test_batched_xcorr_equals_naive(bz, k):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(bz, 4, 3, 3, generator=g)
    x = torch.randn(bz * k, 4, 9, 8, generator=g)
    out = xcorr(z, x)
    assert out.shape == (bz * k, 1, 7, 6)
    for n in range(bz * k):
        ref = naive_xcorr(z[n // k], x[n])
        assert torch.allclose(out[n, 0].double(), ref, atol=1e-4)


def test_xcorr_rejects_mismatched_batches():
    with pytest.raises(ValueError, match="multiple"):
        xcorr(torch.zeros(2, 4, 3, 3), torch.zeros(3, 4, 9, 9))


@pytest.mark.parametrize("arch,channels", [("alexnet", 256), ("lite", 128)])
def test_embedding_and_response_sizes(arch, channels):
    net = build_model(arch).eval()
    with torch.no_grad():
        zf = net.template(torch.rand(1, 3, 127, 127) * 255)
        r = net.track(torch.rand(3, 3, 255, 255) * 255)
        xf = net.embed(torch.rand(1, 3, 255, 255))
    assert zf.shape == (1, channels, 6, 6)
    assert xf.shape == (1, channels, 22, 22)
    assert r.shape == (3, 1, 17, 17)


def test_track_before_template_is_an_error():
    with pytest.raises(RuntimeError, match="template"):
        build_model("lite").track(torch.zeros(1, 3, 255, 255))


@pytest.mark.parametrize("arch", ["alexnet", "lite", "effnet-lite0"])
def test_bn_folding_keeps_outputs(arch):
    torch.manual_seed(0)
    net = build_model(arch)
    # Non-trivial BN statistics, as after training.
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    net.eval()
    fused = prepare_for_inference(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    ez, ex = net.exemplar_sz, net.instance_sz
    z, x = torch.rand(1, 3, ez, ez) * 255, torch.rand(2, 3, ex, ex) * 255
    with torch.no_grad():
        a, b = net(z, x), fused(z, x)
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-3 * a.abs().max().item())


def test_update_template_blends_embeddings():
    net = build_model("lite").eval()
    z0, z1 = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 127, 127) * 255
    with torch.no_grad():
        e0, e1 = net.embed(z0), net.embed(z1)
        net.template(z0)
        blended = net.update_template(z1, 0.25)
    assert torch.allclose(blended, 0.75 * e0 + 0.25 * e1, atol=1e-5)
    with pytest.raises(RuntimeError, match="template"):
        build_model("lite").update_template(z1, 0.1)


def test_effnet_geometry_centres_exemplar_and_search_on_the_same_cell():
    net = build_model("effnet-lite0").eval()
    assert (net.exemplar_sz, net.instance_sz) == (129, 257)
    with torch.no_grad():
        zf = net.embed_exemplar(torch.rand(1, 3, 129, 129) * 255)
        xf = net.embed(torch.rand(1, 3, 257, 257) * 255)
        r = net(torch.rand(1, 3, 129, 129) * 255, torch.rand(2, 3, 257, 257) * 255)
    assert zf.shape == (1, 64, 7, 7) and xf.shape == (1, 64, 33, 33) and r.shape == (2, 1, 27, 27)
    assert net.response_size(129, 257) == 27
    # Unit-length feature vectors at every position (the neck normalises them).
    assert torch.allclose(xf.norm(dim=1), torch.ones(1, 33, 33), atol=1e-4)


def test_effnet_exemplar_peak_is_at_the_response_centre():
    """The exemplar crop cut out of the search crop's centre matches best at the centre cell
    (no half-cell offset between the two maps)."""
    torch.manual_seed(0)
    net = build_model("effnet-lite0").eval()
    x = torch.rand(1, 3, 257, 257) * 255
    z = x[:, :, 64:193, 64:193]  # the central 129 px
    with torch.no_grad():
        r = net(z, x)[0, 0]
    assert divmod(int(r.argmax()), 27) == (13, 13)


@pytest.mark.parametrize("k,h", [(6, 22), (7, 25), (7, 33)])
def test_xcorr_gather_equals_the_convolution(k, h):
    from tracker.networks.models import correlation_index, xcorr_gather

    z, x = torch.randn(1, 32, k, k), torch.randn(3, 32, h, h)
    ref = xcorr(z, x)
    got = xcorr_gather(z, x, correlation_index(k, h, h))
    assert got.shape == ref.shape == (3, 1, h - k + 1, h - k + 1)
    assert torch.allclose(got, ref, atol=1e-4 * float(ref.abs().max()))


def test_xcorr_gather_pairs_several_exemplars_with_their_maps():
    from tracker.networks.models import correlation_index, xcorr_gather

    z, x = torch.randn(4, 16, 5, 5), torch.randn(12, 16, 19, 19)  # 4 exemplars, 3 maps each
    got = xcorr_gather(z, x, correlation_index(5, 19, 19))
    ref = xcorr(z, x)
    assert got.shape == ref.shape == (12, 1, 15, 15)
    assert torch.allclose(got, ref, atol=1e-4 * float(ref.abs().max()))
    with pytest.raises(ValueError, match="not a multiple"):
        xcorr_gather(z, x[:10], correlation_index(5, 19, 19))


def test_respond_for_several_targets_equals_one_at_a_time():
    """The head with B kernels (image pyramid: B * S maps), with the box head's edges."""
    net = prepare_for_inference(build_model("effnet-lite0", box_head=True)).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        zf = net.embed_exemplar(torch.rand(3, 3, 127, 127) * 255)
        xf = net.embed(torch.rand(6, 3, 193, 193) * 255)
        both, _ = net.respond(xf, zf)  # 3 targets, 2 maps each
        one = torch.cat([net.respond(xf[2 * k:2 * k + 2], zf[k:k + 1])[0] for k in range(3)])
        assert torch.allclose(both, one, atol=1e-4 * float(one.abs().max()))
        both, edges = net.respond(xf, zf, boxes=True)
        parts = [net.respond(xf[2 * k:2 * k + 2], zf[k:k + 1], boxes=True) for k in range(3)]
        assert edges.shape == (6, 4, *one.shape[-2:])
        assert torch.allclose(edges, torch.cat([p[1] for p in parts]), atol=1e-3)
