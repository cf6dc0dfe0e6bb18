#!/usr/bin/env python3
"""Import cycles between the modules of Rust crates (issue 12: the modules must form a DAG).

Usage:
    scripts/import_cycles.py [--allow a::b,c]... SRC_DIR...

For each SRC_DIR (a crate's `src`), the module tree is built from the crate roots (`lib.rs`,
and `main.rs` as a crate of its own) by following `mod x;` declarations (to `x.rs` or
`x/mod.rs`) and inline `mod x { ... }` blocks. Modules under `#[cfg(test)]` are left out,
wherever they are in a file.

Module A has an edge to module B when A's code (comments and string literals removed):
  - imports from B: `use crate::b::X`, `use super::X`, `use self::b::X`, `use b::X` (b a
    child of A), every leaf of a use tree (`use crate::{b::X, c::{d::Y}}`) counted;
    `pub use` re-exports count too (a parent that re-exports from its child has an edge to it);
  - names a path into B in code: `crate::b::f()`, `super::X`, `self::b::T::<U>`, `b::X`.
A path goes to the deepest module it names; `crate::X` where the crate root re-exports `X`
(`pub use b::X;` in lib.rs) goes to `b`; other edges to the crate root are ignored (the root
only declares modules and re-exports). `pub(in path)` visibilities are not edges.

It prints each strongly connected component of more than one module (a cycle) with the
edges inside it (with --edges, every edge), and exits 1 if any is not allowed. `--allow a::b,c` allows the cycle made of
exactly the modules a::b and c (of any crate given); repeat it for more. No dependencies.

Not understood: `#[path]` attributes, modules made by macros, `include!`.
"""

import argparse
import os
import re
import sys


def strip_code(text):
    """`text` with comments and the contents of string and char literals made spaces
    (newlines kept), so that only code is left to search."""
    out = []
    i, n = 0, len(text)

    def blank(a, b):
        out.append(re.sub(r"[^\n]", " ", text[a:b]))

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c in "br" and (m := re.match(r'b?r(#*)"', text[i:i + 300])) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(text[i:i + m.end()])
            blank(i + m.end(), j)
            i = j
        elif c == '"' or (c == "b" and text.startswith('b"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))):
            start = i + (2 if c == "b" else 1)
            j = start
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:start])
            blank(start, j)
            out.append('"')
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{41}', '\''), else a lifetime or a label.
            m = re.match(r"'(\\u\{[0-9a-fA-F]*\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'\n])'", text[i:i + 16])
            if m:
                out.append("' '")
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(text, open_at):
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(text) - 1


MOD_DECL = re.compile(
    r"((?:#\s*!?\s*\[[^\]]*\]\s*)*)(?:pub\s*(?:\([^)]*\))?\s*)?\bmod\s+(r#)?(\w+)\s*([;{])"
)
CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")


class Crate:
    def __init__(self, root_file):
        self.root_file = root_file
        self.code = {}  # module path (tuple) -> its own code, children's bodies removed
        self.add_module((), root_file, os.path.dirname(root_file), strip_code(open(root_file, encoding="utf-8").read()))

    def add_module(self, path, file, child_dir, code):
        """Registers module `path` with `code` (already stripped); its `mod x;` children are
        looked for in `child_dir`."""
        own = []
        pos = 0
        for m in MOD_DECL.finditer(code):
            if m.start() < pos:
                continue
            attrs, name, kind = m.group(1), m.group(3), m.group(4)
            end = m.end()
            if kind == "{":
                end = matching_brace(code, m.end() - 1) + 1
            own.append(code[pos:m.start()])
            own.append(re.sub(r"[^\n]", " ", code[m.start():end]))
            pos = end
            if CFG_TEST.search(attrs):
                continue
            child = path + (name,)
            if kind == "{":
                self.add_module(child, file, os.path.join(child_dir, name), code[m.end():end - 1])
            else:
                for f, d in (
                    (os.path.join(child_dir, name + ".rs"), os.path.join(child_dir, name)),
                    (os.path.join(child_dir, name, "mod.rs"), os.path.join(child_dir, name)),
                ):
                    if os.path.exists(f):
                        self.add_module(child, f, d, strip_code(open(f, encoding="utf-8").read()))
                        break
                else:
                    print(f"warning: {file}: no file for `mod {name};`", file=sys.stderr)
        own.append(code[pos:])
        self.code[path] = "".join(own)

    # -- edges --

    def resolve(self, cur, segs):
        """The module a path (segments) used in module `cur` leads to, or None."""
        if not segs:
            return None
        if segs[0] in ("crate", "$crate"):
            base, rest = (), segs[1:]
        elif segs[0] == "super":
            base, rest = cur, segs
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        elif segs[0] == "self":
            base, rest = cur, segs[1:]
        elif cur + (segs[0],) in self.code:
            base, rest = cur, segs
        else:
            return None  # another crate, std, or a name in scope that is not a module
        i = len(rest)
        while i > 0 and base + tuple(rest[:i]) not in self.code:
            i -= 1
        target = base + tuple(rest[:i])
        if target == () and i < len(rest):
            target = self.root_reexports.get(rest[i], ())
        if target == () or target == cur:
            return None
        return target

    def edges(self):
        self.root_reexports = {}
        for path, name in use_paths(self.code[()]):
            if path and path[0] not in ("crate", "self", "super", "$crate") and (path[0],) not in self.code:
                continue
            segs = path[1:] if path[0] in ("crate", "self") else path
            if segs and (segs[0],) in self.code and name not in ("*", "self"):
                j = 1
                while j < len(segs) and tuple(segs[:j + 1]) in self.code:
                    j += 1
                self.root_reexports.setdefault(name, tuple(segs[:j]))
        edges = {m: set() for m in self.code}
        for m, code in self.code.items():
            code = re.sub(r"\bpub\s*\(\s*in\s+[^)]*\)", " ", code)
            for path, _ in use_paths(code):
                t = self.resolve(m, path)
                if t is not None:
                    edges[m].add(t)
            rest = USE.sub(" ", code)
            for p in re.finditer(r"(?<![\w:$])(\$crate|crate|super|self|\w+)((?:\s*::\s*\w+)+)", rest):
                segs = [p.group(1)] + re.findall(r"\w+", p.group(2))
                t = self.resolve(m, segs)
                if t is not None:
                    edges[m].add(t)
        return edges


USE = re.compile(r"(?<![\w$])use\s+([^;]*);")


def use_paths(code):
    """(path segments, name bound) of every leaf of every `use` tree in `code`."""
    out = []
    for m in USE.finditer(code):
        tokens = re.findall(r"::|\$?\w+|[{},*]", m.group(1))
        pos = [0]

        def tree(prefix):
            # a path, then `::{...}`, `::*`, or `as name`
            segs = list(prefix)
            while pos[0] < len(tokens):
                t = tokens[pos[0]]
                if t == "::":
                    pos[0] += 1
                elif t == "{":
                    pos[0] += 1
                    while pos[0] < len(tokens) and tokens[pos[0]] != "}":
                        if tokens[pos[0]] == ",":
                            pos[0] += 1
                            continue
                        tree(segs)
                    pos[0] += 1
                    return
                elif t == "*":
                    pos[0] += 1
                    out.append((segs, "*"))
                    return
                elif t in (",", "}"):
                    break
                elif t == "as":
                    pos[0] += 2
                    out.append((segs, tokens[pos[0] - 1]))
                    return
                elif t == "self" and segs:
                    pos[0] += 1
                    out.append((segs, segs[-1]))
                    return
                else:
                    segs.append(t)
                    pos[0] += 1
            if segs:
                out.append((segs, segs[-1]))

        tree([])
    return out


def cycles(edges):
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def name(m):
    return "::".join(m) or "crate"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", nargs="+", help="a crate's src directory")
    ap.add_argument("--allow", action="append", default=[], metavar="A,B",
                    help="a cycle that is allowed: exactly these modules, comma-separated")
    ap.add_argument("--edges", action="store_true", help="print every edge, too")
    args = ap.parse_args()
    allowed = [frozenset(a.split(",")) for a in args.allow]
    bad = 0
    for src in args.src:
        roots = [os.path.join(src, f) for f in ("lib.rs", "main.rs") if os.path.exists(os.path.join(src, f))]
        if not roots:
            print(f"{src}: no lib.rs or main.rs", file=sys.stderr)
            return 2
        for root in roots:
            crate = Crate(root)
            edges = crate.edges()
            found = cycles(edges)
            print(f"{root}: {len(crate.code)} modules, " + (f"{len(found)} cycle(s)" if found else "no cycles"))
            if args.edges:
                for a in sorted(edges):
                    print(f"  {name(a)} -> {' '.join(sorted(name(b) for b in edges[a]))}")
            for comp in found:
                ok = frozenset(map(name, comp)) in allowed
                bad += not ok
                print(f"  cycle{' (allowed)' if ok else ''}: {' '.join(map(name, comp))}")
                for a in comp:
                    inside = sorted(name(b) for b in edges[a] if b in comp)
                    print(f"      {name(a)} -> {' '.join(inside)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
