"""What a context per purpose saves: reply openers interleaved with rerank scoring passes, with
every purpose in one llama.cpp context (each call evicts the other's prompt prefix) and with the
default ``kv_slots`` (the reply keeps its own context, so its system prompt and examples stay
computed).

    python benchmarks/llm_prefix.py [--turns 12]

Prints JSON: opener seconds p50/p95 for each layout, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.llm import LLMClient, LLMSettings  # noqa: E402
from agents.replies import llm_opener  # noqa: E402

MESSAGES = ["warm scarves for winter", "running shoes please", "a gift for my sister",
            "something in blue", "cheaper ones?", "a kettle for camping"]  # fmt: skip


def run(slots: tuple[str, ...], turns: int) -> list[float]:
    llm = LLMClient.from_settings(LLMSettings(kv_slots=slots, cache_size=0, timeout_s=120))
    products = "\n".join(f"{chr(65 + n)}. Product {n} | Brand | Category | $1{n}.00"
                         for n in range(20))  # fmt: skip
    seconds = []
    for n in range(turns):
        # a scoring pass of someone else's list in between, as on a busy server
        prompt = f"Products:\n{products}\nShopper (data): looked at item {n}\nAnswer:"
        llm.label_logprobs(prompt, list("ABCDEFGHIJKLMNOPQRST"), timeout_s=120)
        started = time.perf_counter()
        llm_opener(llm, MESSAGES[n % len(MESSAGES)] + f" ({n})", "draft", 120, 24, frozenset())
        seconds.append(time.perf_counter() - started)
    return seconds[1:]  # the first builds the context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=12)
    args = parser.parse_args()
    shared = run((), args.turns)
    own = run(("reply",), args.turns)
    report = {
        "turns": len(own),
        "opener_s_shared_context": {"p50": round(float(np.median(shared)), 3),
                                    "p95": round(float(np.percentile(shared, 95)), 3)},
        "opener_s_own_context": {"p50": round(float(np.median(own)), 3),
                                 "p95": round(float(np.percentile(own, 95)), 3)},
        "p50_ratio_shared_over_own": round(float(np.median(shared) / np.median(own)), 2),
    }  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
