"""Time the reference implementation's CPU path, as `afgan-bench` times ours.

    python -m keras_afgan.reference_bench --src=/path/to/stylegan3 --mode=train --json=out.jsonl

The reference (NVlabs/stylegan3, PyTorch) is not shipped with keras_afgan:
`--src` points at a user's checkout, which this module imports (its
`training.networks_stylegan3`, `training.networks_stylegan2` and
`training.loss`). On the CPU the reference runs its plain PyTorch fallbacks
(`_upfirdn2d_ref`, `_filtered_lrelu_ref`, `_bias_act_ref`; the CUDA plugins
only build for CUDA tensors). Only torch and numpy are imported here, so the
process holds nothing of Keras.

What is timed mirrors `keras_afgan.bench` and the reference's own
`train.py` / `training_loop.py` for `--cfg=stylegan3-t|r` (float32: the
reference's `--fp32`, which also drops `conv_clamp`, does not matter on the
CPU, where its layers run in float32 anyway; we keep its defaults, clamp 256):

- forward: `G(z, c)` under `torch.no_grad()`, `batch` images per call.
- train: one iteration of `training_loop` with `D_reg_interval = r1_interval`
  and the StyleGAN3 recipe (no path-length term, so G's phase is `Gmain`):
  `Gmain`, then `Dmain` and (every `r1_interval`-th iteration) `Dreg`, each
  `accumulate_gradients` followed by the loop's gradient clean-up and its
  Adam step (lazy-regularisation-adjusted lr and betas for D), then the
  G-EMA update. One repeat is a whole R1 cycle, as in `keras_afgan.bench`.

`--reuse_freed_memory`: glibc keeps freed memory for reuse
(`keras_afgan.cpu_tuning.reuse_freed_memory`, which our tools apply to
torch), so the reference runs with our process settings; the result's
`backend` is then "reference-tuned".
"""

import argparse
import copy
import importlib.util
import json
import os
import resource
import statistics
import sys



def _import_reference(src):
    src = os.path.abspath(os.path.expanduser(src))
    for name in ("training/networks_stylegan3.py", "training/networks_stylegan2.py",
                 "training/loss.py", "torch_utils/ops/filtered_lrelu.py"):
        if not os.path.isfile(os.path.join(src, name)):
            raise SystemExit(f"--src={src!r} is not a checkout of the reference (NVlabs/stylegan3):"
                             f" {name} is missing.")
    # Run as a script, this file's folder (keras_afgan/, with its own
    # `training` package) heads sys.path: the checkout must come first.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [src] + [p for p in sys.path if os.path.abspath(p or ".") != here]
    _provide_pkg_resources()
    from training import loss as loss_module  # noqa: E402  (from the checkout)
    from training import networks_stylegan2
    from training import networks_stylegan3

    return networks_stylegan2, networks_stylegan3, loss_module


def _sibling(name):
    """`keras_afgan.<name>` (a module needing only the standard library), loaded
    from its file: importing the package would import Keras."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_keras_afgan_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


timing = _sibling("timing")


def _provide_pkg_resources():
    """The checkout's `conv2d_gradfix` imports `pkg_resources.parse_version`.

    setuptools >= 81 no longer ships `pkg_resources`; where it is missing, a
    module holding `packaging`'s version parser stands in for it.
    """
    try:
        import pkg_resources  # noqa: F401  (only whether it imports)
    except ImportError:
        import types

        from packaging.version import parse

        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)


def build_reference(args, networks_stylegan2, networks_stylegan3):
    """The reference's G and D as its `train.py` builds them for these settings
    (the modules from `_import_reference`)."""
    channel_base, channel_max = args.cbase, args.cmax
    g_kwargs = dict(z_dim=args.zdim, c_dim=0, w_dim=args.wdim, img_resolution=args.res,
                    img_channels=3, channel_base=channel_base, channel_max=channel_max,
                    magnitude_ema_beta=0.5 ** (args.batch / (20 * 1e3)), num_fp16_res=4,
                    conv_clamp=256, mapping_kwargs=dict(num_layers=2),
                    num_layers=args.num_layers)
    if args.cfg == "stylegan3-r":
        g_kwargs.update(conv_kernel=1, channel_base=channel_base * 2,
                        channel_max=channel_max * 2, use_radial_filters=True)
    G = networks_stylegan3.Generator(**g_kwargs)
    D = networks_stylegan2.Discriminator(
        c_dim=0, img_resolution=args.res, img_channels=3, channel_base=channel_base,
        channel_max=channel_max, num_fp16_res=4, conv_clamp=256,
        epilogue_kwargs=dict(mbstd_group_size=min(4, args.batch)))
    return G, D


def _peak_memory_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def conv_roofline(batch=8, repeats=3):
    """GFLOP/s of torch's plain 3x3 128-to-128 convolution, 88 -> 86 px, float32.

    The same convolution as `keras_afgan.bench.conv_roofline` (here NCHW, as
    the reference runs), fastest of `repeats` after one untimed call.
    """
    import torch

    size = timing.ROOFLINE_SIZE
    x = torch.randn([batch, 128, size + 2, size + 2])
    w = torch.randn([128, 128, 3, 3])
    with torch.no_grad():
        times = timing.time_calls(lambda: torch.nn.functional.conv2d(x, w), 1, repeats)
    return timing.conv_gflop(3, 128, 128, size, batch) / min(times)


def run(args):
    if args.reuse_freed_memory and not _sibling("cpu_tuning").reuse_freed_memory():
        raise SystemExit("--reuse_freed_memory needs glibc (mallopt); not available here.")
    import torch

    torch.manual_seed(args.seed)
    networks_stylegan2, networks_stylegan3, loss_module = _import_reference(args.src)
    G, D = build_reference(args, networks_stylegan2, networks_stylegan3)
    device = torch.device("cpu")
    z = torch.randn([args.batch, G.z_dim])
    c = torch.zeros([args.batch, 0])
    if args.mode == "forward":
        G.eval().requires_grad_(False)

        def step():
            with torch.no_grad():
                G(z, c).numpy()

        images_per_call, per_call = args.batch, 1
    else:
        G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        blur = dict(blur_init_sigma=10, blur_fade_kimg=args.batch * 200 / 32) \
            if args.cfg == "stylegan3-r" else {}
        loss = loss_module.StyleGAN2Loss(device=device, G=G, D=D, r1_gamma=args.gamma, **blur)
        mb_ratio = args.r1_interval / (args.r1_interval + 1)
        g_opt = torch.optim.Adam(G.parameters(), lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
        d_opt = torch.optim.Adam(D.parameters(), lr=0.002 * mb_ratio,
                                 betas=(0.0, 0.99 ** mb_ratio), eps=1e-8)
        phases = [("Gmain", G, g_opt, 1), ("Dmain", D, d_opt, 1),
                  ("Dreg", D, d_opt, args.r1_interval)]
        real = torch.rand([args.batch, 3, args.res, args.res]) * 2 - 1
        ema_beta = 0.5 ** (args.batch / (args.batch * 10 / 32 * 1000))
        state = {"iteration": 0, "nimg": 0}

        def iteration():
            for name, module, opt, interval in phases:
                if state["iteration"] % interval != 0:
                    continue
                opt.zero_grad(set_to_none=True)
                module.requires_grad_(True)
                gen_z = torch.randn([args.batch, G.z_dim])
                loss.accumulate_gradients(phase=name, real_img=real, real_c=c, gen_z=gen_z,
                                          gen_c=c, gain=interval, cur_nimg=state["nimg"])
                module.requires_grad_(False)
                # The loop's clean-up: flatten, NaN/inf to finite, split back.
                params = [p for p in module.parameters() if p.grad is not None]
                if params:
                    flat = torch.cat([p.grad.flatten() for p in params])
                    torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
                    for p, g in zip(params, flat.split([p.numel() for p in params])):
                        p.grad = g.reshape(p.shape)
                opt.step()
            with torch.no_grad():
                for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                    p_ema.copy_(p.lerp(p_ema, ema_beta))
                for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                    b_ema.copy_(b)
            state["iteration"] += 1
            state["nimg"] += args.batch

        def step():
            for _ in range(args.r1_interval):
                iteration()

        images_per_call, per_call = args.batch * args.r1_interval, args.r1_interval
    times = timing.time_calls(step, args.warmup, args.repeats)
    median = statistics.median(times)
    roofline = conv_roofline(args.batch) if args.roofline else None
    return {
        "backend": "reference-tuned" if args.reuse_freed_memory else "reference",
        "mode": args.mode, "cfg": args.cfg, "res": args.res,
        "cbase": args.cbase, "cmax": args.cmax, "batch": args.batch, "precision": "float32",
        "jit": False, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "img_per_s": images_per_call / median, "sec_per_iteration": median / per_call,
        "times": times, "peak_mem_mb": _peak_memory_mb(), "roofline_gflops": roofline,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", required=True, help="a checkout of NVlabs/stylegan3")
    parser.add_argument("--mode", choices=("forward", "train"), default="forward")
    parser.add_argument("--cfg", choices=("stylegan3-t", "stylegan3-r"), default="stylegan3-t")
    for name, default in (("res", 64), ("cbase", 8192), ("cmax", 128), ("zdim", 512),
                          ("wdim", 512), ("batch", 8), ("num_layers", 14), ("warmup", 2),
                          ("repeats", 5), ("r1_interval", 16), ("seed", 0)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--gamma", type=float, default=2.0)
    parser.add_argument("--roofline", action="store_true",
                        help="afterwards, time a plain 3x3 128-to-128 convolution")
    parser.add_argument("--reuse_freed_memory", action="store_true",
                        help="keep freed memory for reuse, as our tools do for torch")
    parser.add_argument("--json", default=None, help="append the result as one JSON line")
    args = parser.parse_args(argv)
    for name in ("res", "cbase", "cmax", "zdim", "wdim", "batch", "repeats", "r1_interval"):
        if getattr(args, name) < 1:
            parser.error(f"expected --{name} >= 1, received {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"expected --warmup >= 0, received {args.warmup}")
    return args


def main(argv=None):
    args = parse_args(argv)
    result = run(args)
    print(f"reference   {result['mode']:<8} img/s {result['img_per_s']:.3f}  "
          f"s/iter {result['sec_per_iteration']:.3f}  peak MB {result['peak_mem_mb']:.0f}",
          flush=True)
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(result) + "\n")
    return result


if __name__ == "__main__":
    main()
