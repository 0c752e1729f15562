"""What the reference scripts share: write the cases, or check that a committed file equals them."""
import json
import sys


def write_or_check(build, argv, doc):
    """`SCRIPT OUT.json` writes build()'s cases; `SCRIPT --check FILE.json` exits 1 unless FILE.json
    holds exactly them (so a changed formula cannot leave stale numbers behind)."""
    text = json.dumps(build(), indent=1) + "\n"
    if len(argv) == 3 and argv[1] == "--check":
        with open(argv[2]) as f:
            current = f.read()
        if current != text:
            print(f"{argv[2]} is stale: regenerate it with {argv[0]} {argv[2]}", file=sys.stderr)
            return 1
        print(f"{argv[2]} matches the reference")
        return 0
    if len(argv) != 2:
        print(doc, file=sys.stderr)
        return 2
    with open(argv[1], "w") as f:
        f.write(text)
    return 0
