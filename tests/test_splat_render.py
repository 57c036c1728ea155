"""The CPU splat renderer against hand-computed one-, two- and three-Gaussian scenes, and against
a per-pixel brute force of the reference rasterizer's loop on a random scene."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from neurocodec.codecs.splat import render as R
from neurocodec.codecs.splat.scene import SH_C0, SplatScene
from neurocodec.errors import InputError

W = H = 33  # cx = cy = 16.5: a mean on the optical axis lands on the centre of pixel (16, 16)
F = 100.0


def cam(width=W, height=H, **kw):
    return R.Camera(np.eye(3), np.zeros(3), F, F, width / 2, height / 2, width, height, **kw)


def logit(p):
    return math.log(p / (1 - p))


def dc_for(rgb):
    return (np.asarray(rgb, np.float64) - 0.5) / SH_C0


def scene(means, sigma=0.1, opacity=0.5, rgb=(0.8, 0.5, 0.2), scales=None, quats=None, rest=None):
    means = np.asarray(means, np.float32).reshape(-1, 3)
    n = len(means)
    sc = np.log(np.broadcast_to(np.float32(sigma), (n, 3))) if scales is None else scales
    q = np.tile([1.0, 0, 0, 0], (n, 1)) if quats is None else quats
    op = np.array([logit(o) for o in np.broadcast_to(opacity, n)])
    dc = np.broadcast_to(dc_for(rgb), (n, 3)) if np.ndim(rgb) == 1 else dc_for(rgb)
    rest = np.zeros((n, 0, 3)) if rest is None else rest
    f = lambda a: np.ascontiguousarray(a, np.float32)  # noqa: E731
    return SplatScene(f(means), f(sc), f(q), f(op), f(dc), f(rest))


# ------------------------------------------------------------------------ one Gaussian

def test_single_gaussian_projection_and_2d_covariance():
    p = R.project(scene([0, 0, 5]), cam())
    # (fx·σ/z)² = (100·0.1/5)² = 4, plus the 0.3 low-pass
    np.testing.assert_allclose(p.cov2d[0], [4.3, 0, 4.3], rtol=1e-6)
    np.testing.assert_allclose(p.conics[0], [1 / 4.3, 0, 1 / 4.3], rtol=1e-6)
    np.testing.assert_allclose(p.means2d[0], [16.5, 16.5])
    assert p.depths[0] == pytest.approx(5)
    # λ = mid + sqrt(max(0.1, mid² - det)) = 4.3 + sqrt(0.1); ceil(3·sqrt(λ)) = ceil(6.45) = 7
    assert p.radii[0] == 7
    np.testing.assert_allclose(p.colors[0], [0.8, 0.5, 0.2], rtol=1e-6)
    assert p.opacities[0] == pytest.approx(0.5)


def test_single_gaussian_pixels_centre_and_falloff():
    img = R.render(scene([0, 0, 5], opacity=0.6), cam())
    col = np.array([0.8, 0.5, 0.2])
    assert img.shape == (H, W, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img[16, 16], 0.6 * col, rtol=1e-5)
    np.testing.assert_allclose(img[16, 18], 0.6 * math.exp(-0.5 * 4 / 4.3) * col, rtol=1e-5)
    np.testing.assert_allclose(img[17, 19], 0.6 * math.exp(-0.5 * 10 / 4.3) * col, rtol=1e-5)
    np.testing.assert_allclose(img[15, 13], img[17, 19], rtol=1e-5)  # symmetric


def test_rotated_anisotropic_covariance():
    sc = np.log([[0.2, 0.1, 0.3]])
    # 90° about z, unnormalised (2, 0, 0, 2): world variances x 0.01, y 0.04
    p = R.project(scene([0, 0, 5], scales=sc, quats=[[2.0, 0, 0, 2.0]]), cam())
    np.testing.assert_allclose(p.cov2d[0], [400 * 0.01 + 0.3, 0, 400 * 0.04 + 0.3], rtol=1e-5,
                               atol=1e-9)
    # 45° about z: Σ_xy = (0.04 - 0.01)/2, Σ_xx = Σ_yy = 0.025
    h = math.radians(22.5)
    p = R.project(scene([0, 0, 5], scales=sc, quats=[[math.cos(h), 0, 0, math.sin(h)]]), cam())
    np.testing.assert_allclose(p.cov2d[0], [10.3, 6.0, 10.3], rtol=1e-5)


def test_off_axis_jacobian_and_its_clamp():
    p = R.project(scene([1, 0, 5]), cam())
    # J row 0 = (fx/z, 0, -fx·x/z²) = (20, 0, -4): σ²·(400 + 16) + 0.3
    np.testing.assert_allclose(p.cov2d[0], [0.01 * 416 + 0.3, 0, 4.3], rtol=1e-5)
    np.testing.assert_allclose(p.means2d[0], [36.5, 16.5])
    # |x/z| = 0.24 is beyond 1.3·tan_fovx = 1.3·(33/200): J uses |x| = 1.3·tan_fovx·z
    p = R.project(scene([[1.2, 0, 5], [-1.2, 0, 5]], sigma=0.2), cam())
    j02 = -F * (1.3 * W / (2 * F)) * 5 / 25
    np.testing.assert_allclose(p.cov2d[:, 0], 0.04 * (400 + j02**2) + 0.3, rtol=1e-5)
    np.testing.assert_allclose(p.means2d[:, 0], [40.5, -7.5], rtol=1e-6)  # the mean itself is not clamped
    assert (p.radii > 0).all()


# ---------------------------------------------------------------------- compositing

def test_two_gaussians_front_to_back():
    bg = (0.2, 0.3, 0.4)
    c1, c2 = np.array([0.9, 0.1, 0.1]), np.array([0.1, 0.8, 0.3])
    want = 0.7 * c1 + 0.3 * 0.5 * c2 + 0.3 * 0.5 * np.array(bg)
    wrong = 0.5 * c2 + 0.5 * 0.7 * c1 + 0.5 * 0.3 * np.array(bg)
    front_first = scene([[0, 0, 4], [0, 0, 6]], opacity=[0.7, 0.5], rgb=[c1, c2])
    back_first = scene([[0, 0, 6], [0, 0, 4]], opacity=[0.5, 0.7], rgb=[c2, c1])
    a = R.render(front_first, cam(), bg)
    b = R.render(back_first, cam(), bg)
    np.testing.assert_allclose(a[16, 16], want, rtol=1e-5)
    np.testing.assert_array_equal(a, b)  # depth sorted, whatever the file order
    assert np.abs(a[16, 16] - wrong).max() > 0.05


def test_blend_weights_are_what_each_gaussian_adds_to_the_picture():
    # Over black, a Gaussian of colour 1 (the other colour 0) renders exactly its weights.
    two = scene([[0, 0, 4], [0.05, 0, 6]], opacity=[0.7, 0.5], rgb=[[1, 1, 1], [0, 0, 0]])
    w = R.blend_weights(two, [cam(), cam()])
    alone = R.render(two, cam()).sum() / 3
    np.testing.assert_allclose(w[0], 2 * alone, rtol=1e-5)
    swapped = scene([[0, 0, 4], [0.05, 0, 6]], opacity=[0.7, 0.5], rgb=[[0, 0, 0], [1, 1, 1]])
    np.testing.assert_allclose(w[1], 2 * R.render(swapped, cam()).sum() / 3, rtol=1e-5)
    assert 0 < w[1] < w[0]  # the back one shows through the front one only
    small = np.log(np.array([[0.1] * 3, [0.02] * 3, [0.1] * 3], np.float32))
    hidden = scene([[0, 0, 4], [0, 0, 6], [0, 0, -3]], opacity=[0.99, 0.5, 0.9], scales=small)
    w = R.blend_weights(hidden, [cam()])
    assert w[0] > 0 and w[2] == 0  # behind the camera: culled
    alone = R.blend_weights(hidden.subset(np.array([1])), [cam()])[0]
    assert 0 < w[1] < 0.1 * alone  # mostly behind the opaque core of the front one


def test_transmittance_stop():
    cols = np.array([[0.9, 0.2, 0.1], [0.1, 0.9, 0.2], [1.0, 1.0, 1.0]])
    bg = np.array([0.5, 0.5, 0.5])
    img = R.render(scene([[0, 0, 3], [0, 0, 4], [0, 0, 5]], opacity=[0.98, 0.9, 0.97], rgb=cols),
                   cam(), tuple(bg))
    # T: 1 -> 0.02 -> 0.002; the third would take it to 6e-5 < 1e-4: it is not composited
    want = 0.98 * cols[0] + 0.02 * 0.9 * cols[1] + 0.002 * bg
    np.testing.assert_allclose(img[16, 16], want, rtol=1e-5)


def test_alpha_clamp_and_skip():
    col = np.array([0.8, 0.5, 0.2])
    img = R.render(scene([0, 0, 5], opacity=1 / (1 + math.exp(-10))), cam())
    np.testing.assert_allclose(img[16, 16], 0.99 * col, rtol=1e-6)  # min(0.99, 0.99995)
    img = R.render(scene([0, 0, 5], opacity=0.0035), cam(), (0.1, 0.2, 0.3))
    np.testing.assert_array_equal(img, np.broadcast_to(np.float32([0.1, 0.2, 0.3]), img.shape))
    # falloff: alpha = 0.5·exp(-d²/8.6) passes 1/255 at d = 6, not at d = 7 (within the radius)
    img = R.render(scene([0, 0, 5], opacity=0.5), cam())
    np.testing.assert_allclose(img[16, 22], 0.5 * math.exp(-36 / 8.6) * col, rtol=1e-5)
    np.testing.assert_array_equal(img[16, 23], 0)


def test_sh_degree0_colour_clamped_at_zero():
    p = R.project(scene([0, 0, 5], rgb=(-0.3, 0.5, 1.4)), cam())
    np.testing.assert_allclose(p.colors[0], [0, 0.5, 1.4], rtol=1e-6)  # not clamped above
    img = R.render(scene([0, 0, 5], opacity=0.6, rgb=(-0.3, 0.5, 1.4)), cam(), (1, 1, 1))
    np.testing.assert_allclose(img[16, 16], [0.4, 0.6 * 0.5 + 0.4, 0.6 * 1.4 + 0.4], rtol=1e-5)


def test_sh_degree1_changes_with_view_direction():
    rest = np.array([[[0.3, -0.2, 0.1], [0.5, 0.4, -0.6], [-0.4, 0.2, 0.3]]])
    sc = scene([0, 0, 5], opacity=0.6, rgb=(0.5, 0.5, 0.5), rest=rest)
    C1 = 0.4886025119029199
    # from the origin the view direction is (0, 0, 1): only + C1·z·sh[2]
    a = R.render(sc, cam())[16, 16]
    np.testing.assert_allclose(a, 0.6 * (0.5 + C1 * rest[0, 1]), rtol=1e-5)
    # from (3, 0, 1) the direction is (-0.6, 0, 0.8): + C1·0.8·sh[2] - C1·(-0.6)·sh[3]
    side = R.look_at([3, 0, 1], [0, 0, 5], [0, -1, 0], F, F, W, H)
    b = R.render(sc, side)[16, 16]
    np.testing.assert_allclose(b, 0.6 * (0.5 + C1 * 0.8 * rest[0, 1] + C1 * 0.6 * rest[0, 2]),
                               rtol=1e-5)
    assert np.abs(a - b).max() > 0.05


def test_sh_degrees_2_and_3_terms():
    rng = np.random.default_rng(0)
    rest = rng.normal(size=(2, 15, 3))
    dc = rng.normal(size=(2, 3))
    got = R.sh_to_color(dc, rest, np.array([[0.0, 0, 1], [1, 0, 0]]))
    C1, C2, C3 = 0.4886025119029199, R.SH_C2, R.SH_C3
    # z: 2zz - xx - yy = 2 and z(2zz - 3xx - 3yy) = 2; every other term vanishes
    z = 0.5 + SH_C0 * dc[0] + C1 * rest[0, 1] + 2 * C2[2] * rest[0, 5] + 2 * C3[3] * rest[0, 11]
    x = (0.5 + SH_C0 * dc[1] - C1 * rest[1, 2] - C2[2] * rest[1, 5] + C2[4] * rest[1, 7]
         - C3[4] * rest[1, 12] + C3[6] * rest[1, 14])
    np.testing.assert_allclose(got, np.maximum([z, x], 0), rtol=1e-12)
    # degree 2 ignores the degree-3 block
    got2 = R.sh_to_color(dc[:1], rest[:1, :8], np.array([[0.0, 0, 1]]))
    np.testing.assert_allclose(got2[0], np.maximum(z - 2 * C3[3] * rest[0, 11], 0), rtol=1e-12)


def test_culling_behind_and_near():
    bg = np.float32([0.1, 0.2, 0.3])
    sc = scene([[0, 0, -5], [0, 0, 0.15], [0, 0, 0.2]], sigma=0.001, opacity=0.9)
    p = R.project(sc, cam())
    assert p.radii.tolist() == [0, 0, 0]  # z <= znear (0.2) is culled
    img = R.render(sc, cam(), tuple(bg))
    np.testing.assert_array_equal(img, np.broadcast_to(bg, img.shape))
    near = R.render(scene([0, 0, 0.25], sigma=0.001, opacity=0.9), cam(), tuple(bg))
    assert np.abs(near[16, 16] - bg).max() > 0.1


def test_background_and_empty_scene():
    empty = scene(np.zeros((0, 3)))
    img = R.render(empty, cam(20, 10), (0.25, 0.5, 1.0))
    assert img.shape == (10, 20, 3)
    np.testing.assert_array_equal(img, np.broadcast_to(np.float32([0.25, 0.5, 1.0]), img.shape))
    img = R.render(scene([0, 0, 5]), cam(), (0.25, 0.5, 1.0))
    np.testing.assert_array_equal(img[0, 0], np.float32([0.25, 0.5, 1.0]))  # far from the splat


def _brute_force(proj, width, height, bg):
    """The reference renderCUDA loop, pixel by pixel, over the reference's tile rectangles."""
    out = np.zeros((height, width, 3))
    vis = np.flatnonzero(proj.radii > 0)
    vis = vis[np.argsort(proj.depths[vis].astype(np.float32), kind="stable")]
    for py in range(height):
        for px in range(width):
            T, C = 1.0, np.zeros(3)
            for g in vis:
                x, y = proj.means2d[g] - 0.5
                r = proj.radii[g]
                rx0 = max(int((x - r) // 16), 0)
                rx1 = max(int((x + r + 15) // 16), 0)
                ry0 = max(int((y - r) // 16), 0)
                ry1 = max(int((y + r + 15) // 16), 0)
                if not (rx0 <= px // 16 < rx1 and ry0 <= py // 16 < ry1):
                    continue
                dx, dy = x - px, y - py
                a, b, c = proj.conics[g]
                power = -0.5 * (a * dx * dx + c * dy * dy) - b * dx * dy
                if power > 0:
                    continue
                alpha = min(0.99, proj.opacities[g] * math.exp(power))
                if alpha < 1 / 255:
                    continue
                if T * (1 - alpha) < 1e-4:
                    break
                C += proj.colors[g] * alpha * T
                T *= 1 - alpha
            out[py, px] = C + T * np.asarray(bg)
    return out


def test_matches_brute_force_reference_loop():
    rng = np.random.default_rng(1)
    n = 60
    means = rng.uniform([-1.5, -1, 2], [1.5, 1, 6], (n, 3))
    sc = SplatScene(means.astype(np.float32),
                    rng.uniform(-3.5, -1.5, (n, 3)).astype(np.float32),
                    rng.normal(size=(n, 4)).astype(np.float32),
                    rng.uniform(-2, 4, n).astype(np.float32),
                    rng.normal(0, 1, (n, 3)).astype(np.float32),
                    rng.normal(0, 0.3, (n, 15, 3)).astype(np.float32))
    camera = R.Camera(np.eye(3), np.zeros(3), 30, 32, 19.5, 11.0, 40, 24)  # 3 x 2 tiles, ragged
    bg = (0.1, 0.3, 0.2)
    proj = R.project(sc, camera)
    ref = _brute_force(proj, 40, 24, bg)
    img = R.rasterize(proj, 40, 24, bg)
    np.testing.assert_allclose(img, ref, atol=2e-5)
    banded = R.rasterize(proj, 40, 24, bg, max_pairs=1)  # pair lists one tile row at a time
    np.testing.assert_array_equal(banded, img)


# ------------------------------------------------------------------------------ cameras

def test_orbit_cameras_deterministic_and_looking_at_centre():
    rng = np.random.default_rng(2)
    core = rng.uniform(0, 1, (2000, 3)) + [10, -3, 5]
    sc = scene(np.concatenate([core, [[1e4, 0, 0], [0, -1e4, 0], [0, 0, 1e5]]]), sigma=0.01)
    cams = R.orbit_cameras(sc, 6, 64, 48, fov_deg=60)
    again = R.orbit_cameras(sc, 6, 64, 48, fov_deg=60)
    assert R.cameras_to_json(cams) == R.cameras_to_json(again)
    centre, radius = R.scene_bounds(sc)
    assert np.abs(centre - [10.5, -2.5, 5.5]).max() < 0.05  # the outliers do not move it
    assert radius < 1.0
    dists = [np.linalg.norm(c.centre - centre) for c in cams]
    np.testing.assert_allclose(dists, dists[0])
    assert len({tuple(np.round(c.centre, 6)) for c in cams}) == 6
    for c in cams:
        np.testing.assert_allclose(c.R @ c.R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(c.R) == pytest.approx(1)
        p = c.R @ centre + c.t
        np.testing.assert_allclose(p[:2], 0, atol=1e-9)  # the centre is on the optical axis
        assert p[2] > 0 and (c.cx, c.cy, c.width, c.height) == (32, 24, 64, 48)
        assert c.R[1] @ np.array([0, -1, 0]) < 0  # image y (down) points along +y: -y is up
    # the whole robust core is in front of every camera and inside its image
    img = R.render(scene(core, sigma=0.01, opacity=0.9), cams[0])
    assert img[24, 32].max() > 0.1


def test_cameras_json_round_trip_and_3dgs_format(tmp_path):
    cams = R.orbit_cameras(scene([0, 0, 0]), 3, 40, 30)
    path = tmp_path / "cams.json"
    R.cameras_to_json(cams, path)
    back = R.cameras_from_json(path)
    assert [c.to_dict() for c in back] == [c.to_dict() for c in cams]
    assert R.cameras_from_json(path.read_text())[1].to_dict() == cams[1].to_dict()
    # the reference training code's cameras.json: position = centre, rotation = camera-to-world
    c = cams[2]
    entry = {"id": 0, "img_name": "x", "width": 40, "height": 30, "position": c.centre.tolist(),
             "rotation": c.R.T.tolist(), "fx": c.fx, "fy": c.fy}
    g = R.cameras_from_json([entry])[0]
    np.testing.assert_allclose(g.R, c.R)
    np.testing.assert_allclose(g.t, c.t, atol=1e-12)
    assert (g.cx, g.cy) == (20, 15)
    for bad in ("[{\"R\": [1, 2]}]", "{}", "[1]", str(tmp_path / "missing.json"), "[{\"R\": "):
        with pytest.raises(InputError):
            R.cameras_from_json(bad)
    with pytest.raises(InputError):
        R.Camera(np.eye(3), np.zeros(3), -1, 1, 0, 0, 8, 8)
    json.loads(R.cameras_to_json([]))


# ------------------------------------------------------------------------------ quality

def test_render_views_and_quality():
    sc = scene([[0, 0, 5], [0.3, 0.2, 6]], opacity=[0.8, 0.6], rgb=[(0.9, 0.2, 0.1),
                                                                    (0.2, 0.9, 0.4)])
    cams = [cam(), R.look_at([1, 0, 0], [0, 0, 5.5], [0, -1, 0], F, F, W, H)]
    views = R.render_views(sc, cams)
    assert all(v.dtype == np.uint8 and v.shape == (H, W, 3) for v in views)
    np.testing.assert_array_equal(views[0][16, 16], np.floor(
        np.clip(R.render(sc, cams[0])[16, 16], 0, 1) * 255 + 0.5))
    same = R.render_quality(sc, sc, cams)
    assert same["psnr"] == math.inf and same["ssim"] == pytest.approx(1.0)
    dec = SplatScene(sc.means, sc.scales, sc.quats, sc.opacities, sc.sh_dc + 0.2, sc.sh_rest)
    q = R.render_quality(sc, dec, cams, reference_views=views)
    assert 10 < q["psnr"] < 60 and 0 < q["ssim"] < 1 and len(q["psnr_views"]) == 2


def test_render_cli(tmp_path, capsys):
    from PIL import Image

    from neurocodec.cli import main

    ply = Path(__file__).parent / "data" / "splat" / "biker_300.ply"
    out = tmp_path / "views"
    assert main(["render", str(ply), "-o", str(out), "--views", "2", "--size", "32x24"]) == 0
    first = [np.asarray(Image.open(out / f"view_{i:03d}.png")) for i in range(2)]
    assert first[0].shape == (24, 32, 3) and first[0].any()
    again = tmp_path / "again"
    assert main(["render", str(ply), "-o", str(again), "--cameras",
                 str(out / "cameras.json")]) == 0
    for i in range(2):
        assert np.array_equal(first[i], np.asarray(Image.open(again / f"view_{i:03d}.png")))
    assert main(["render", str(ply), "-o", str(out), "--views", "2", "--size", "32x24"]) == 1
    assert "exists" in capsys.readouterr().err  # views are not overwritten without --force
    (tmp_path / "file").write_text("x")
    assert main(["render", str(ply), "-o", str(tmp_path / "file")]) == 1
    assert main(["render", str(tmp_path / "missing.ply"), "-o", str(out)]) == 1
