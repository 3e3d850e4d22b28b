"""``bench/hessian.py`` on two checkouts of this project, in alternating rounds: is a change
slower? Each round runs the bench once in the old tree and once in this one (their order
alternating, so that load drifting over the run hits both alike), and the table gives, per
probe, the median over rounds of new time / old time in the same round, and each tree's median
speed-up over PyHessian (measured side by side inside each run, so load cancels there too).

    git worktree add --detach ../old <commit>
    python bench/before_after.py --old ../old --cases cnn --rounds 2 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(tree: str, args: argparse.Namespace, out: str) -> dict:
    env = {**os.environ, "PYTHONPATH": tree}
    subprocess.run([sys.executable, os.path.join(tree, "bench", "hessian.py"), "--cases",
                    args.cases, "--repeats", str(args.repeats), "--hvp-repeats",
                    str(args.hvp_repeats), "--json", out], cwd=tree, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    with open(out) as handle:
        return {case["case"]: case for case in json.load(handle)["cases"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="a checkout of the version to compare with")
    parser.add_argument("--cases", default="cnn")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hvp-repeats", type=int, default=20)
    args = parser.parse_args()
    results = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as folder:
        for r in range(args.rounds):
            for which in (("old", "new") if r % 2 == 0 else ("new", "old")):
                tree = os.path.abspath(args.old) if which == "old" else HERE
                results[which].append(run(tree, args, os.path.join(folder, f"{which}{r}.json")))
                print(f"round {r + 1}: {which} done", file=sys.stderr)
    median = statistics.median
    for case in results["new"][0]:
        print(f"\n[{case}] new/old: median over {args.rounds} rounds of the ratio in each round")
        print(f"{'probe':48s} {'old ms':>8s} {'new ms':>8s} {'new/old':>8s} "
              f"{'old ×PyH':>8s} {'new ×PyH':>8s}")
        for label in ["one HVP"] + [row["probe"] for row in results["new"][0][case]["rows"]]:
            def times(which, key):
                if label == "one HVP":
                    return [min((v for k, v in c[case]["hvp_s"].items() if k.startswith(key)),
                                default=None) for c in results[which]]
                rows = [{row["probe"]: row for row in c[case]["rows"]}.get(label)
                        for c in results[which]]
                return [row.get(f"{key}_s") if row else None for row in rows]

            old, new = times("old", "ours"), times("new", "ours")
            if None in old or None in new:
                continue
            old_pyh, new_pyh = times("old", "pyhessian" if label != "one HVP" else "PyH"), \
                times("new", "pyhessian" if label != "one HVP" else "PyH")
            speed = lambda ours, pyh: (f"{median(p / o for o, p in zip(ours, pyh)):8.2f}"  # noqa: E731
                                       if None not in pyh else f"{'-':>8s}")
            print(f"{label:48s} {median(old) * 1e3:8.2f} {median(new) * 1e3:8.2f} "
                  f"{median(n / o for o, n in zip(old, new)):8.2f} {speed(old, old_pyh)} "
                  f"{speed(new, new_pyh)}")


if __name__ == "__main__":
    main()
