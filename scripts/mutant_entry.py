#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Read and apply the mutant entries of tests/mutants/ (the format is in tests/mutants/README.md).
Helper of scripts/mutants.sh; it never builds or runs anything.

  mutant_entry.py list ROOT             check every entry against ROOT; print one TSV line each:
                                        id, file, expect (kill|survive), tests (space-separated)
  mutant_entry.py apply ENTRY TREE      write the mutant into TREE/file (original must occur
                                        exactly once there)
  mutant_entry.py field ENTRY NAME      print a field (breaks, survives, wanted, ...)
"""
import os
import re
import sys

FIELDS = {"file", "breaks", "test", "survives", "wanted"}
ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
CTEST_RE = re.compile(r"^[A-Za-z0-9_]+$")
PYTEST_RE = re.compile(r"^tests/integration/test_[a-z0-9_]+\.py(::[A-Za-z0-9_\[\]\-.]+)+$")


class EntryError(Exception):
    pass


def parse(path):
    """The entry at path as a dict: fields (lists for 'test'), 'original', 'mutant', 'id'."""
    entry = {"id": os.path.basename(path)[:-len(".mut")], "test": [], "path": path}
    if not ID_RE.match(entry["id"]):
        raise EntryError(f"{path}: the file name must be <id>.mut with id in [a-z0-9-]")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    block, blocks = None, {}
    for n, line in enumerate(lines, 1):
        if line.startswith("@@ "):
            name = line[3:].strip()
            if name == "end":
                block = None
                continue
            if name not in ("original", "mutant") or name in blocks:
                raise EntryError(f"{path}:{n}: expected '@@ original', '@@ mutant' or '@@ end'")
            block = name
            blocks[name] = []
            continue
        if block is not None:
            blocks[block].append(line)
            continue
        if line == "" or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or key not in FIELDS or not value:
            raise EntryError(f"{path}:{n}: expected 'field: value' with field one of "
                             f"{', '.join(sorted(FIELDS))}")
        if key == "test":
            entry["test"].extend(value.split())
        elif key in entry:
            raise EntryError(f"{path}:{n}: {key} given twice")
        else:
            entry[key] = value
    if block is not None:
        raise EntryError(f"{path}: the '@@ {block}' block has no '@@ end'")
    for need in ("file", "breaks"):
        if need not in entry:
            raise EntryError(f"{path}: '{need}:' is missing")
    if "original" not in blocks or "mutant" not in blocks:
        raise EntryError(f"{path}: needs an '@@ original' and an '@@ mutant' block")
    entry["original"] = "\n".join(blocks["original"])
    entry["mutant"] = "\n".join(blocks["mutant"])
    if entry["original"].strip() == "":
        raise EntryError(f"{path}: the original text is empty")
    if entry["original"] == entry["mutant"]:
        raise EntryError(f"{path}: the mutant is the original text")
    if not entry["test"]:
        raise EntryError(f"{path}: no 'test:' names a test that should kill it")
    for t in entry["test"]:
        if not (CTEST_RE.match(t) or PYTEST_RE.match(t)):
            raise EntryError(f"{path}: test '{t}' is neither a ctest name nor a pytest node id "
                             "tests/integration/test_x.py::test_y")
    if ("survives" in entry) != ("wanted" in entry):
        raise EntryError(f"{path}: 'survives:' (why no test kills it yet) and 'wanted:' (the test "
                         "that would) go together")
    return entry


def mutated(entry, tree):
    """The mutated text of entry's file under tree; EntryError unless the original occurs
    exactly once."""
    target = os.path.join(tree, entry["file"])
    try:
        with open(target, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise EntryError(f"{entry['path']}: {entry['file']}: {e.strerror}")
    n = text.count(entry["original"])
    if n != 1:
        raise EntryError(f"{entry['path']}: the original text occurs {n} times in "
                         f"{entry['file']} (must be exactly once: the code changed, or the "
                         "entry needs more context)")
    return target, text.replace(entry["original"], entry["mutant"], 1)


def cmd_list(root):
    mdir = os.path.join(root, "tests", "mutants")
    names = sorted(n for n in os.listdir(mdir) if n.endswith(".mut"))
    if not names:
        raise EntryError(f"{mdir}: no *.mut entries")
    for name in names:
        e = parse(os.path.join(mdir, name))
        mutated(e, root)
        expect = "survive" if "survives" in e else "kill"
        print(f"{e['id']}\t{e['file']}\t{expect}\t{' '.join(e['test'])}")


def cmd_apply(path, tree):
    target, text = mutated(parse(path), tree)
    with open(target, "w", encoding="utf-8") as f:
        f.write(text)


def cmd_field(path, name):
    e = parse(path)
    value = e.get(name, "")
    print(" ".join(value) if isinstance(value, list) else value)


def main(argv):
    try:
        if len(argv) == 3 and argv[1] == "list":
            cmd_list(argv[2])
        elif len(argv) == 4 and argv[1] == "apply":
            cmd_apply(argv[2], argv[3])
        elif len(argv) == 4 and argv[1] == "field":
            cmd_field(argv[2], argv[3])
        else:
            print(__doc__.strip(), file=sys.stderr)
            return 2
    except EntryError as e:
        print(f"mutants: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
