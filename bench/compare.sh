#!/usr/bin/env bash
# Side-by-side figures: this tree and an anchor commit, each benchmark run on both in turn, so both
# see the same machine. The side that goes first alternates between rounds (the second one starts while the
# database still digests the first one's thousands of rows) and each run waits for a quiet machine first.
# Usage: bash bench/compare.sh <anchor-commit> [rounds] [benchmarks, e.g. "spine flows"]
# Results: bench/results/compare-<anchor>/{anchor,here}-<round>-{spine,flows,live}.md
set -euo pipefail
cd "$(dirname "$0")/.."
anchor="${1:?usage: bench/compare.sh <anchor-commit> [rounds]}"
rounds="${2:-1}"
only="${3:-spine flows live}"
here="$PWD"
short="$(git rev-parse --short "$anchor")"
tree="$(mktemp -d /tmp/acc-anchor-XXXX)"
chmod 755 "$tree"  # the local backend's sandbox user must reach the jobs folder inside it
out="$here/bench/results/compare-$short"
mkdir -p "$out"
git worktree add -q --detach "$tree" "$anchor"
trap 'git worktree remove --force "$tree"' EXIT
ln -s "$here/.venv" "$tree/.venv"
[ -d "$here/node_modules" ] && ln -s "$here/node_modules" "$tree/node_modules"
bash scripts/services.sh >/dev/null
export DOCKER_HOST="${DOCKER_HOST:-unix:///run/acc-docker.sock}"
settle() {  # up to 60 s for the 1-minute load average to fall under 1.5
    for _ in $(seq 1 12); do
        awk '{ exit !($1 < 1.5) }' /proc/loadavg && return
        sleep 5
    done
}
for round in $(seq 1 "$rounds"); do
    sides="anchor here"; [ $((round % 2)) = 0 ] && sides="here anchor"
    for bench in "run.py --skip-docker:spine" "flows.py:flows" "live.py:live"; do
        script="${bench%%:*}" name="${bench##*:}"
        [[ " $only " == *" $name "* ]] || continue
        for side in $sides; do
            dir="$here"; [ "$side" = anchor ] && dir="$tree"
            settle
            echo "[compare] round $round: $side bench/$script (load $(cut -d' ' -f1 /proc/loadavg))"
            (cd "$dir" && .venv/bin/python bench/$script >/dev/null)
            cp "$dir/bench/results/$name.md" "$out/$side-$round-$name.md"
        done
    done
    git -C "$here" checkout -q -- bench/results/spine.md bench/results/spine.json bench/results/flows.md \
        bench/results/flows.json bench/results/live.md bench/results/live.json 2>/dev/null || true
done
echo "[compare] results in $out"
