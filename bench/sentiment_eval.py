"""Accuracy of the offline sentiment scorer on its labelled evaluation set (negative vs not).

The set is apps/alerts/tests/sentiment_eval/: `dev.tsv` (used to tune the lexicon and rules) and
`heldout.tsv` (never used while tuning). Prints accuracy, precision and recall of "negative" per
part and language, and the messages it gets wrong (`--errors`).

Usage: python bench/sentiment_eval.py [--part dev|heldout] [--threshold -0.3] [--errors]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")

from apps.alerts.sentiment import NEGATIVE_BELOW, sentiment_score  # noqa: E402

EVAL = ROOT / "apps" / "alerts" / "tests" / "sentiment_eval"


def load(part: str) -> list[tuple[str, bool, str]]:
    """(language, negative?, text) of each labelled message of `part`."""
    rows = []
    for line in (EVAL / f"{part}.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            language, label, text = line.split("\t")
            rows.append((language, label == "neg", text))
    return rows


def evaluate(rows: list[tuple[str, bool, str]], threshold: float) -> dict[str, float]:
    tp = fp = fn = tn = 0
    for _, negative, text in rows:
        said = sentiment_score(text).score < threshold
        tp += said and negative
        fp += said and not negative
        fn += negative and not said
        tn += not said and not negative
    return {
        "n": len(rows),
        "accuracy": (tp + tn) / len(rows),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["dev", "heldout"], default="dev")
    parser.add_argument("--threshold", type=float, default=NEGATIVE_BELOW)
    parser.add_argument("--errors", action="store_true")
    args = parser.parse_args()
    rows = load(args.part)
    print(f"{args.part}, negative below {args.threshold}")
    print("| messages | n | accuracy | precision (negative) | recall (negative) |")
    print("|---|---|---|---|---|")
    for name, subset in (("all", rows), ("es", [r for r in rows if r[0] == "es"]),
                         ("en", [r for r in rows if r[0] == "en"])):  # fmt: skip
        got = evaluate(subset, args.threshold)
        print(
            f"| {name} | {got['n']:.0f} | {got['accuracy']:.3f} | {got['precision']:.3f} | {got['recall']:.3f} |"
        )
    if args.errors:
        for language, negative, text in rows:
            mood = sentiment_score(text)
            if (mood.score < args.threshold) != negative:
                label = "neg" if negative else "not"
                print(f"{label} {mood.score:+.2f} {language} {text}  {mood.cues}")


if __name__ == "__main__":
    main()
