"""Train a tiny causal transformer on aⁿbⁿ (n = 1..16, uniform) in a few seconds on a CPU, and save it
for ``nonid audit``: a Hugging Face GPT-2 folder (``--arch gpt2``, needs the ``[hf]`` extra) or a nonid
transformer file (``--arch nonid``).

    python examples/train_tiny.py --arch gpt2 --out scratch/tiny-gpt2
    nonid audit scratch/tiny-gpt2 --language L3 --tokens a=0,b=1,eos=2,bos=3

Token ids: a = 0, b = 1, EOS = 2, BOS = 3 (and PAD = 4 for the nonid layout).  A word x is fed as
[BOS, x, EOS] and trained with the next-token loss at every position up to EOS.
"""

from __future__ import annotations

import argparse
import time

import torch


def words(n_max: int) -> list[str]:
    return ["a" * n + "b" * n for n in range(1, n_max + 1)]


def build(arch: str, d_model: int, layers: int, positions: int) -> torch.nn.Module:
    if arch == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        cfg = GPT2Config(vocab_size=4, n_positions=positions, n_embd=d_model, n_layer=layers, n_head=4,
                         activation_function="relu", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                         bos_token_id=3, eos_token_id=2)
        torch.manual_seed(0)
        return GPT2LMHeadModel(cfg)
    from constructions.transformer import DecoderTransformer, TransformerConfig

    return DecoderTransformer(TransformerConfig(alphabet="ab", d_model=d_model, n_heads=4, d_head=d_model // 4,
                                                d_mlp=4 * d_model, n_layers=layers, max_len=positions, dtype="float32"))


def batch(arch: str, ws: list[str], positions: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = {"a": 0, "b": 1}
    bos, eos, pad = 3, 2, (2 if arch == "gpt2" else 4)
    x = torch.full((len(ws), positions), pad, dtype=torch.long)
    y = torch.full((len(ws), positions), -100, dtype=torch.long)
    for i, w in enumerate(ws):
        seq = [bos] + [ids[c] for c in w]
        x[i, :len(seq)] = torch.tensor(seq)
        y[i, :len(seq)] = torch.tensor(seq[1:] + [eos])
    return x, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", choices=["gpt2", "nonid"], default="gpt2")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--d-model", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--n-max", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(2)
    positions = 2 * args.n_max + 2
    model = build(args.arch, args.d_model, args.layers, positions)
    x, y = batch(args.arch, words(args.n_max), positions)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    t0 = time.perf_counter()
    for step in range(args.steps):
        out = model(x)
        logits = out.logits if hasattr(out, "logits") else out
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100,
                                                 reduction="sum") / len(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 200 == 0 or step == args.steps - 1:
            print(f"step {step}: loss {loss.item():.4f} nats/sequence (floor ln 16 = 2.7726)")
    print(f"trained in {time.perf_counter() - t0:.1f} s")
    model.eval()
    if args.arch == "gpt2":
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        model.save_pretrained(args.out)
    else:
        model.save(args.out)
    print(f"saved: {args.out}")


if __name__ == "__main__":
    main()
