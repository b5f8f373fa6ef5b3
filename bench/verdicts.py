"""The click verdict on labelled corpora (issue 21): ``python -m bench verdicts``.

Per corpus (tests/support/uacorpora.py): how many agents, the share counted, pass/fail of the gate
(at most 5 % of bots counted, at least 99 % of browsers), and per reason two numbers: the verdicts
that got that reason (the first rule that applies names it) / the agents the rule flags on its own.
Then the cost of one uncached verdict per rule, on the browsers (where every rule runs).
"""

from __future__ import annotations

import time

from advocacy_sharing.adapters import verdicts
from bench.common import append_results
from tests.support import uacorpora


def run() -> tuple[list[uacorpora.Measure], dict[str, float]]:
    measures = []
    for name in uacorpora.CORPORA:
        corpus = uacorpora.load(name)
        measures.append(uacorpora.measure(corpus, verdicts.ua_reason.__wrapped__, verdicts.UA_RULES))
        print(f"  {name}: {len(corpus.agents)} agents", flush=True)
    browsers = uacorpora.load("intoli").agents
    cost: dict[str, float] = {}
    for reason, applies in verdicts.UA_RULES.items():
        began = time.perf_counter()
        for ua in browsers:
            applies(ua)
        cost[reason] = (time.perf_counter() - began) / len(browsers) * 1e6
    began = time.perf_counter()
    for ua in browsers:
        verdicts.ua_reason.__wrapped__(ua)
    cost["whole verdict (uncached)"] = (time.perf_counter() - began) / len(browsers) * 1e6
    return measures, cost


def report(measures: list[uacorpora.Measure], cost: dict[str, float]) -> str:
    lines = [
        "Cells per reason: verdicts given that reason / agents the rule flags on its own.",
        "",
        uacorpora.table(measures),
        "",
        "Misjudged examples (first 3 per gated corpus):",
        "",
    ]
    for m in measures:
        if m.corpus.gated and m.examples:
            for ua in m.examples[:3]:
                lines.append(f"- {m.corpus.name}: `{ua[:160]}`")
    lines += ["", "Cost of one uncached call, µs, over the Intoli browsers (every rule runs):", ""]
    lines += [f"- {reason}: {us:.0f}" for reason, us in cost.items()]
    return "\n".join(lines)


def main() -> None:
    body = report(*run())
    print(body)
    append_results("Click verdict on labelled user-agent corpora (issue 21)", body)


if __name__ == "__main__":
    main()
