"""Train the tiny CNN on generated shapes and write its weights (safetensors) and metadata.

    python scripts/train_tiny.py                      # -> assets/models/tiny_cnn.safetensors
    python scripts/train_tiny.py --epochs 2 --out /tmp/tiny.safetensors

Deterministic for a given ``--seed`` and thread count (one thread by default: for a model
this small, more threads only add synchronisation cost). Takes ≈ 10–25 s on a CPU.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "assets" / "models" / "tiny_cnn.safetensors"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the tiny shapes CNN used by rrs tests, "
                                                 "the evaluation pipeline and slow machines.")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of fresh images (default 10)")
    parser.add_argument("--train-size", type=int, default=4000, help="images per epoch (default 4000)")
    parser.add_argument("--test-size", type=int, default=2000, help="held-out images (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation and data (default 0)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"weights file (default {DEFAULT_OUT.relative_to(ROOT)}); "
                             "metadata goes next to it as .json")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.train_size < 1 or args.test_size < 1 or args.threads < 1:
        parser.error("--epochs, --train-size, --test-size and --threads must be ≥ 1")

    # Heavy imports after argument parsing: --help and bad arguments answer at once.
    import torch
    from safetensors.torch import save_file

    from rrs import tiny

    torch.set_num_threads(args.threads)

    def report(epoch: int, loss: float) -> None:
        if not args.quiet:
            print(f"epoch {epoch:3d}/{args.epochs}  loss {loss:.4f}", flush=True)

    result = tiny.train_tiny(epochs=args.epochs, seed=args.seed, train_size=args.train_size,
                             test_size=args.test_size, progress=report)
    meta = {
        "architecture": "TinyCNN",
        "classes": list(tiny.CLASSES),
        "input_size": tiny.INPUT_SIZE,
        "mean": list(tiny.MEAN),
        "std": list(tiny.STD),
        "epochs": result.epochs,
        "train_size": args.train_size,
        "seed": result.seed,
        "test_accuracy": round(result.test_accuracy, 4),
        "test_size": args.test_size,
        "final_loss": round(result.losses[-1], 5),
        "seconds": round(result.seconds, 1),
        "parameters": sum(p.numel() for p in result.net.parameters()),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "command": "python scripts/train_tiny.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in result.net.state_dict().items()}
    # safetensors metadata must be str -> str
    save_file(state, str(args.out), metadata={k: json.dumps(v) for k, v in meta.items()})
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"test accuracy {result.test_accuracy:.2%} on {args.test_size} new images, "
          f"{result.seconds:.1f} s, {meta['parameters']} parameters -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
